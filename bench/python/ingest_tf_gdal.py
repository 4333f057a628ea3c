"""Baseline for bench/ingest.ts: prediction ingest written the usual way in Python.

tf.data reads the (gzip) TFRecords and parses every Example with fixed-length float features, numpy
assembles the mosaic from the mixer (record i -> patch row i // patchesPerRow, column i % patchesPerRow),
then GDAL's COG driver writes a DEFLATE Cloud-Optimized GeoTIFF (with its default overviews).
There are no GDAL Python bindings in the benchmark's environment, so the mosaic is written as raw
band-sequential float32 with an ENVI header (band names, no copy in memory) and converted with the
GDAL CLI: `gdal_translate -of COG -co COMPRESS=DEFLATE -a_srs ... -a_ullr ...`.

usage: ingest_tf_gdal.py MIXER.json OUT.tif BAND[,BAND...] FILE...
"""
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main() -> None:
    mixer_path, out, bands, files = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4:]
    with open(mixer_path) as f:
        mixer = json.load(f)
    pw, ph = mixer["patchDimensions"]
    ppr, total = mixer["patchesPerRow"], mixer["totalPatches"]
    rows = total // ppr
    width, height = ppr * pw, rows * ph
    a, b, c, d, e, f_ = mixer["projection"]["affine"]["doubleMatrix"]

    spec = {name: tf.io.FixedLenFeature([ph * pw], tf.float32) for name in bands}
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    ds = ds.map(lambda x: tf.io.parse_single_example(x, spec), num_parallel_calls=tf.data.AUTOTUNE)

    mosaic = np.zeros((len(bands), height, width), dtype=np.float32)
    n = 0
    for ex in ds.as_numpy_iterator():
        r, col = divmod(n, ppr)
        for k, name in enumerate(bands):
            mosaic[k, r * ph:(r + 1) * ph, col * pw:(col + 1) * pw] = ex[name].reshape(ph, pw)
        n += 1
    if n != total:
        sys.exit(f"expected {total} records, got {n}")

    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "mosaic.bin")
        mosaic.tofile(raw)
        with open(raw[:-4] + ".hdr", "w") as h:
            h.write("ENVI\n")
            h.write(f"samples = {width}\nlines = {height}\nbands = {len(bands)}\n")
            h.write("header offset = 0\nfile type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\n")
            h.write("band names = {" + ", ".join(bands) + "}\n")
        ulx, uly = c, f_
        lrx, lry = c + a * width, f_ + e * height
        subprocess.run(
            ["gdal_translate", "-q", "-of", "COG", "-co", "COMPRESS=DEFLATE", "-a_srs", mixer["projection"]["crs"],
             "-a_ullr", repr(ulx), repr(uly), repr(lrx), repr(lry), raw, out],
            check=True,
        )
    print(json.dumps({"patches": n, "width": width, "height": height}))


if __name__ == "__main__":
    main()
