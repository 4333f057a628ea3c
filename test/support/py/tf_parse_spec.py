"""Runs the parse spec `geotfr inspect` printed, as a user would paste it, on every record of a file.

stdin: {"jobs": [{"path", "compression": ""|"GZIP", "spec": "<python from inspect>"}]}
stdout: {"jobs": [[per record: {name: {"shape": [...], "values": ...}} merged from `parsed` (Example)
         or `context` and `sequences` (SequenceExample)]]}
Values: float32 as little-endian hex, int64 as decimal strings, strings as hex; sparse tensors
(VarLenFeature) give their values and dense_shape.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf


def enc(t):
    if isinstance(t, tf.SparseTensor):
        return {"shape": [int(x) for x in t.dense_shape.numpy()], "values": enc(t.values)["values"], "sparse": True}
    flat = tf.reshape(t, [-1]).numpy()  # string scalars would come back as bare bytes otherwise
    if t.dtype == tf.float32:
        v = flat.astype("<f4").tobytes().hex()
    elif t.dtype == tf.int64:
        v = [str(int(x)) for x in flat]
    else:
        v = [bytes(x).hex() for x in flat.tolist()]
    return {"shape": [int(d) for d in t.shape], "values": v}


out = []
for job in json.load(sys.stdin)["jobs"]:
    recs = []
    for serialized in tf.data.TFRecordDataset(job["path"], compression_type=job.get("compression", "")):
        scope = {"tf": tf, "serialized": serialized}
        exec(job["spec"], scope)
        if "parsed" in scope:
            recs.append({k: enc(v) for k, v in scope["parsed"].items()})
        else:
            r = {k: enc(v) for k, v in scope["context"].items()}
            r.update({"seq:" + k: enc(v) for k, v in scope["sequences"].items()})
            recs.append(r)
    out.append(recs)
json.dump({"jobs": out}, sys.stdout)
