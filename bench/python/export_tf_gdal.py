"""Baseline for bench/export.ts: an image → TFRecord patch exporter written the usual way.

GDAL reads the raster into numpy, numpy slices tiles (patch + kernel margins, masked pixels → default),
each patch becomes a tf.train.Example with one FloatList per band, and tf.io.TFRecordWriter writes it
(GZIP at the given zlib level when compressed).

How it reads: there are no GDAL Python bindings on this machine, so instead of
`gdal.Open(src).ReadAsArray()` the script runs `gdal_translate -of ENVI -co INTERLEAVE=BSQ` (the same
GDAL decode of the COG) into a temporary file and memory-maps it with numpy. That is the closest
equivalent to ReadAsArray available here; the time of that step is included in the whole-process
wall time, as ReadAsArray's would be.

Usage: export_tf_gdal.py SRC.tif OUT_DIR PREFIX PATCH KERNEL LEVEL|0 [MAX_FILE_BYTES] [REGION_PX_W REGION_PX_H]
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf


def main():
    src, out_dir, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    patch, kernel, level = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    max_file = int(sys.argv[7]) if len(sys.argv) > 7 else 2**30
    info = json.loads(subprocess.check_output(['gdalinfo', '-json', src]))
    W, H = info['size']
    if len(sys.argv) > 9:
        W, H = int(sys.argv[8]), int(sys.argv[9])
    names = [b.get('description') or f"b{i + 1}" for i, b in enumerate(info['bands'])]
    nodata = [b.get('noDataValue') for b in info['bands']]
    nb = len(names)
    tmp = tempfile.mkdtemp()
    raw = os.path.join(tmp, 'src.bin')
    subprocess.check_call(['gdal_translate', '-q', '-of', 'ENVI', '-co', 'INTERLEAVE=BSQ', '-ot', 'Float32',
                           '-srcwin', '0', '0', str(W), str(H), src, raw])
    full = np.memmap(raw, dtype='<f4', mode='r', shape=(nb, H, W))
    m = kernel // 2
    tile = patch + 2 * m
    ppr, rows = W // patch, H // patch
    os.makedirs(out_dir, exist_ok=True)
    opts = tf.io.TFRecordOptions(compression_type='GZIP', compression_level=level) if level else None
    ext = '.tfrecord.gz' if level else '.tfrecord'
    shard, written, writer = 0, 0, None
    t0 = time.time()
    for r in range(rows):
        for c in range(ppr):
            # Tile window with margins, clipped to the image; outside and nodata → default 0.
            x0, y0 = c * patch - m, r * patch - m
            out = np.zeros((nb, tile, tile), np.float32)
            xa, ya = max(0, x0), max(0, y0)
            xb, yb = min(W, x0 + tile), min(H, y0 + tile)
            block = np.array(full[:, ya:yb, xa:xb])
            for b in range(nb):
                v = block[b]
                if nodata[b] is not None:
                    v = np.where(v == nodata[b], 0, v)
                else:
                    v = np.where(np.isnan(v), 0, v)
                out[b, ya - y0:yb - y0, xa - x0:xb - x0] = v
            ex = tf.train.Example(features=tf.train.Features(feature={
                n: tf.train.Feature(float_list=tf.train.FloatList(value=out[b].ravel())) for b, n in enumerate(names)
            }))
            data = ex.SerializeToString()
            if writer is None or written + len(data) + 16 > max_file and written > 0:
                if writer is not None:
                    writer.close()
                    shard += 1
                writer = tf.io.TFRecordWriter(os.path.join(out_dir, f"{prefix}-{shard:05d}{ext}"), options=opts)
                written = 0
            writer.write(data)
            written += len(data) + 16
    writer.close()
    shutil.rmtree(tmp)
    mixer = {'patchesPerRow': ppr, 'totalPatches': ppr * rows}
    with open(os.path.join(out_dir, f"{prefix}-mixer.json"), 'w') as f:
        json.dump(mixer, f)
    print(json.dumps({'patches': ppr * rows, 'loopSeconds': round(time.time() - t0, 3)}))


if __name__ == '__main__':
    main()
