"""Baseline for bench/table.ts: what an EE user's Python does without geotfr.

Reads newline-delimited GeoJSON (json) or CSV (csv module), builds one tf.train.Example per row with
the same encoding as `geotfr export-table` (numbers -> float_list of 1, strings -> bytes_list), and
writes one gzip TFRecord file with tf.io.TFRecordWriter.

usage: table_tf.py INPUT.geojsonl|INPUT.csv OUTPUT.tfrecord.gz
"""
import csv
import json
import sys

import tensorflow as tf


def feature(v):
    if isinstance(v, bool):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[1.0 if v else 0.0]))
    if isinstance(v, (int, float)):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
    if isinstance(v, str):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8")]))
    raise ValueError(f"unsupported value {v!r}")


def rows(path):
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                props = {}
                for k, v in rec.items():
                    if v == "":
                        continue
                    try:
                        props[k] = float(v)
                    except ValueError:
                        props[k] = v
                yield props
    else:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)["properties"]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n = 0
    with tf.io.TFRecordWriter(dst, options="GZIP") as w:
        for props in rows(src):
            ex = tf.train.Example(
                features=tf.train.Features(
                    feature={k: feature(v) for k, v in props.items() if v is not None}
                )
            )
            w.write(ex.SerializeToString())
            n += 1
    print(json.dumps({"features": n}))


if __name__ == "__main__":
    main()
