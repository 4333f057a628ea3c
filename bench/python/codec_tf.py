"""TensorFlow's side of bench/codec.ts: the same 8 x 65,536 float32 features, timed in one run.

Usage: codec_tf.py RAW.f32 NAMES_COMMA_SEPARATED RUNS
Prints one JSON object: medians (MB/s of serialized Example bytes) for
  tf_example_encode   tf.train.Example(...) from numpy arrays + SerializeToString()
  tf_record_write     tf.io.TFRecordWriter.write() of the serialized payloads (framing + CRC, to a file)
  tf_parse_decode     tf.io.parse_single_example with FixedLenFeature (eager), per record
  tf_proto_decode     tf.train.Example.FromString (the protobuf runtime TensorFlow uses)
  tf_record_read      tf.data.TFRecordDataset iteration over the written file (framing + CRC check)
"""
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

raw, names, runs = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
data = np.fromfile(raw, dtype="<f4").reshape(len(names), -1)


def build():
    return tf.train.Example(
        features=tf.train.Features(feature={n: tf.train.Feature(float_list=tf.train.FloatList(value=data[i])) for i, n in enumerate(names)})
    ).SerializeToString()


payload = build()
size = len(payload)


def rate(fn, bytes_per_call, min_secs=0.4):
    out = []
    for _ in range(runs):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_secs:
                break
        out.append(bytes_per_call * n / dt / 1e6)
    return statistics.median(out)


spec = {n: tf.io.FixedLenFeature([data.shape[1]], tf.float32) for n in names}
tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "bench.tfrecord")
RECORDS = 16


def write_file():
    with tf.io.TFRecordWriter(path) as w:
        for _ in range(RECORDS):
            w.write(payload)


def read_file():
    for _ in tf.data.TFRecordDataset(path, buffer_size=1 << 20):
        pass


res = {
    "payloadBytes": size,
    "tf_example_encode": rate(build, size),
    "tf_proto_decode": rate(lambda: tf.train.Example.FromString(payload), size),
    "tf_parse_decode": rate(lambda: tf.io.parse_single_example(payload, spec), size),
    "tf_record_write": rate(write_file, (size + 16) * RECORDS),
}
write_file()
res["tf_record_read"] = rate(read_file, (size + 16) * RECORDS)
res["tensorflow"] = tf.__version__
os.remove(path)
os.rmdir(tmp)
json.dump(res, sys.stdout)
