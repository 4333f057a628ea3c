"""TensorFlow reads files geotfr wrote (issue 2, "Prove"): tf.data.TFRecordDataset + tf.io.parse_example
(Examples) or tf.io.parse_single_sequence_example (SequenceExamples).

stdin: {"files": [{"path", "compression": ""|"GZIP", "kind": "raw"|"example"|"seq",
        "features": {name: {"type": "float_list"|"int64_list"|"bytes_list", "fixed": L or null}},
        "lists": {name: {...same...}}}]}
stdout: {"files": [{"sha256": [per record], "records": [{"context": {name: [type, values]},
         "lists": {name: [[type, values] per step]}}]}]}
Values as tf_write.py encodes them (float32 hex, int64 decimal strings, bytes hex). VarLen features
come back per record (sparse -> ragged rows) so missing/empty lists are visible.
"""
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

DTYPE = {"float_list": tf.float32, "int64_list": tf.int64, "bytes_list": tf.string}


def spec_of(features, seq=False):
    out = {}
    for name, f in features.items():
        dt = DTYPE[f["type"]]
        if f.get("fixed") is None:
            out[name] = tf.io.VarLenFeature(dt)
        elif seq:
            out[name] = tf.io.FixedLenSequenceFeature([f["fixed"]], dt)
        else:
            out[name] = tf.io.FixedLenFeature([f["fixed"]], dt)
    return out


def enc(kind, arr):
    if hasattr(arr, "numpy"):
        arr = arr.numpy()
    if kind == "bytes_list":
        # Never through np.asarray: numpy's fixed-width bytes drop trailing NUL bytes.
        items = arr.reshape(-1).tolist() if isinstance(arr, np.ndarray) else list(arr)
        return [bytes(x).hex() for x in items]
    a = np.asarray(arr)
    if kind == "float_list":
        return a.astype("<f4").tobytes().hex()
    return [str(int(x)) for x in a.reshape(-1)]


def rows(t):
    """A batch's per-record values: dense -> its rows, sparse -> ragged rows."""
    if isinstance(t, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(t).to_list()
    return [r for r in t.numpy()]


job = json.load(sys.stdin)
result = []
for f in job["files"]:
    ds = tf.data.TFRecordDataset(f["path"], compression_type=f.get("compression", ""))
    serialized = [r.numpy() for r in ds]
    entry = {"sha256": [hashlib.sha256(s).hexdigest() for s in serialized], "records": []}
    if f["kind"] == "example" and serialized:
        feats = f["features"]
        parsed = tf.io.parse_example(tf.constant(serialized), spec_of(feats))
        per = {name: rows(parsed[name]) for name in feats}
        for i in range(len(serialized)):
            entry["records"].append({"context": {n: [feats[n]["type"], enc(feats[n]["type"], per[n][i])] for n in feats}})
    elif f["kind"] == "seq":
        cspec, lspec = spec_of(f["features"]), spec_of(f["lists"], seq=True)
        for s in serialized:
            ctx, seqs = tf.io.parse_single_sequence_example(s, context_features=cspec, sequence_features=lspec)
            rec = {"context": {}, "lists": {}}
            for n, t in ctx.items():
                k = f["features"][n]["type"]
                rec["context"][n] = [k, enc(k, t.values if isinstance(t, tf.SparseTensor) else t)]
            for n, t in seqs.items():
                k = f["lists"][n]["type"]
                rec["lists"][n] = [[k, enc(k, step)] for step in rows(t)]
            entry["records"].append(rec)
    result.append(entry)
json.dump({"files": result}, sys.stdout)
