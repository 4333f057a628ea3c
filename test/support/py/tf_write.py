"""TensorFlow writes TFRecord test files; geotfr must read them exactly (issue 2, "Prove").

Usage: tf_write.py OUTDIR SEED
Writes plain and gzip files (empty, zero-length record, 1 B .. 16 MiB records, Examples with every
feature kind, SequenceExamples) with tf.io.TFRecordWriter and prints one JSON manifest on stdout:
{"files": {name: {"compressed": bool, "kind": "raw"|"example"|"seq", "sha256": [per record],
 "expected": [decoded values, for example/seq]}}}.
Values: float lists as hex of little-endian float32 bytes, int64 as decimal strings, bytes as hex.
"""
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

out, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
manifest = {}


def write(name, payloads, kind, expected=None):
    for compressed in (False, True):
        fname = name + (".tfrecord.gz" if compressed else ".tfrecord")
        opts = tf.io.TFRecordOptions(compression_type="GZIP" if compressed else "")
        with tf.io.TFRecordWriter(os.path.join(out, fname), opts) as w:
            for p in payloads:
                w.write(p)
        manifest[fname] = {
            "compressed": compressed,
            "kind": kind,
            "sha256": [hashlib.sha256(p).hexdigest() for p in payloads],
            "expected": expected,
        }


def floats(n):
    v = rng.standard_normal(n).astype("<f4") * np.float32(10.0 ** int(rng.integers(-3, 6)))
    if n > 3:  # special values survive the round trip bit for bit
        v[:4] = np.array([np.nan, np.inf, -0.0, -np.inf], dtype="<f4")
    return v


INT64_EDGES = [0, 1, -1, 127, 128, -128, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63)]


def ints(n):
    v = [int(x) for x in rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)]
    return (INT64_EDGES + v)[:n] if rng.random() < 0.5 else v


def byteses(n):
    return [rng.bytes(int(rng.integers(0, 40))) for _ in range(n)]


def random_feature():
    k = rng.integers(0, 3)
    n = int(rng.integers(0, 50))
    if k == 0:
        v = floats(n)
        return tf.train.Feature(float_list=tf.train.FloatList(value=v)), ["float_list", v.tobytes().hex()]
    if k == 1:
        v = ints(n)
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v)), ["int64_list", [str(x) for x in v]]
    v = byteses(n)
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=v)), ["bytes_list", [x.hex() for x in v]]


NAMES = ["B2", "B3", "ndvi", "élévation", "名前", "a b", "x'y", "", "longitude", "emoji_🌍"]


def random_features():
    feats, exp = {}, {}
    for name in rng.choice(NAMES, size=int(rng.integers(0, 6)), replace=False):
        f, e = random_feature()
        feats[str(name)] = f
        exp[str(name)] = e
    return feats, exp


# 1. Raw payloads from 0 B (zero-length record) and 1 B to 16 MiB.
sizes = [0, 1, 2, 3, 7, 127, 128, 255, 256, 4095, 4096, 65535, 65536, 65537, 1 << 20, (1 << 20) + 3, 16 << 20]
write("sizes", [rng.bytes(n) for n in sizes], "raw")
write("zero", [b""], "raw")
write("empty", [], "raw")

# 2. Examples with every feature kind (plus an empty Example).
payloads, expected = [], []
for i in range(60):
    feats, exp = random_features()
    payloads.append(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    expected.append({"context": exp})
payloads.append(tf.train.Example().SerializeToString())
expected.append({"context": {}})
write("examples", payloads, "example", expected)

# 3. SequenceExamples: context + feature lists of varying steps and kinds.
payloads, expected = [], []
for i in range(30):
    ctx, cexp = random_features()
    lists, lexp = {}, {}
    for name in rng.choice(NAMES, size=int(rng.integers(0, 4)), replace=False):
        steps, sexp = [], []
        for _ in range(int(rng.integers(0, 6))):
            f, e = random_feature()
            steps.append(f)
            sexp.append(e)
        lists[str(name)] = tf.train.FeatureList(feature=steps)
        lexp[str(name)] = sexp
    se = tf.train.SequenceExample(context=tf.train.Features(feature=ctx), feature_lists=tf.train.FeatureLists(feature_list=lists))
    payloads.append(se.SerializeToString())
    expected.append({"context": cexp, "lists": lexp})
write("sequences", payloads, "seq", expected)

json.dump({"files": manifest}, sys.stdout)
