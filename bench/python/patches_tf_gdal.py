"""Baseline for bench/patches.ts: patches around points written the usual way.

For each point of a GeoJSON FeatureCollection (coordinates in the raster's CRS): the containing
pixel, a K×K GDAL window read around it (`Dataset.ReadRaster`, clipped to the image, the rest
padded), nodata → 0, one tf.train.Example with a FloatList per band plus the `label` property, and
tf.io.TFRecordWriter with GZIP (zlib level 6, TensorFlow's default).

How it reads: Debian's GDAL Python bindings are built against numpy 1.x, and the TensorFlow venv
has numpy 2, so `ReadAsArray` (gdal_array) cannot load there; `ReadRaster` is the call ReadAsArray
wraps, without the numpy glue, and `np.frombuffer` turns its bytes into the same array.

Usage: patches_tf_gdal.py SRC.tif POINTS.geojson OUT.tfrecord.gz K
"""
import json
import math
import sys
import time

sys.path.append('/usr/lib/python3/dist-packages')  # Debian's python3-gdal
from osgeo import gdal  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    src, points, out, K = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ds = gdal.Open(src)
    W, H, nb = ds.RasterXSize, ds.RasterYSize, ds.RasterCount
    c, a, _, f, _, e = ds.GetGeoTransform()
    names = [ds.GetRasterBand(i + 1).GetDescription() or f'b{i + 1}' for i in range(nb)]
    nodata = [ds.GetRasterBand(i + 1).GetNoDataValue() for i in range(nb)]
    with open(points) as fh:
        feats = json.load(fh)['features']
    opts = tf.io.TFRecordOptions(compression_type='GZIP', compression_level=6)
    t0 = time.time()
    n = 0
    with tf.io.TFRecordWriter(out, options=opts) as w:
        for ft in feats:
            x, y = ft['geometry']['coordinates'][:2]
            col, row = math.floor((x - c) / a), math.floor((y - f) / e)
            x0, y0 = col - K // 2, row - K // 2
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + K), min(H, y0 + K)
            patch = np.zeros((nb, K, K), np.float32)
            if xb > xa and yb > ya:
                buf = ds.ReadRaster(xa, ya, xb - xa, yb - ya, buf_type=gdal.GDT_Float32)
                v = np.frombuffer(buf, '<f4').reshape(nb, yb - ya, xb - xa)
                for b in range(nb):
                    vb = v[b] if nodata[b] is None else np.where(v[b] == nodata[b], 0, v[b])
                    patch[b, ya - y0:yb - y0, xa - x0:xb - x0] = vb
            feature = {nm: tf.train.Feature(float_list=tf.train.FloatList(value=patch[b].ravel())) for b, nm in enumerate(names)}
            feature['label'] = tf.train.Feature(float_list=tf.train.FloatList(value=[ft['properties']['label']]))
            w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            n += 1
    print(json.dumps({'records': n, 'loopSeconds': round(time.time() - t0, 3)}))


if __name__ == '__main__':
    main()
