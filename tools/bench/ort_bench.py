#!/usr/bin/env python3
"""ONNX Runtime's side of `pith bench`: the same sentences, pre-tokenized by pith, batch 1.

  python3 ort_bench.py --fp32 MODEL.fp32.onnx --ids IDS.json --int8-cache OUT.onnx [--repeat 3]
                      [--batch-sizes 1,8,32,128]

IDS.json is a list of token-id lists (pith's WordPiece ids, which equal Hugging Face's). Two peers:
ONNX Runtime fp32 on the fp32 export, and ONNX Runtime dynamic int8 (`quantize_dynamic`,
per-channel QInt8 weights) of the same export, cached at --int8-cache. Each runs one thread
(intra- and inter-op threads 1, sequential) for latency, and all threads for throughput. A pass is
every sentence once; the best of --repeat passes is reported (the machine may be shared).
With --batch-sizes, only throughput on all threads instead: consecutive sentences in batches of
each size, padded to the batch's longest with the attention mask off on the padding (what a
user of ONNX Runtime does to raise its throughput). Prints one JSON object.
"""

import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def feeds(ids):
    out = []
    for x in ids:
        a = np.asarray([x], dtype=np.int64)
        out.append({"input_ids": a, "attention_mask": np.ones_like(a)})
    return out


def batch_feeds(ids, size):
    out = []
    for i in range(0, len(ids), size):
        chunk = ids[i:i + size]
        width = max(len(x) for x in chunk)
        a = np.zeros((len(chunk), width), dtype=np.int64)
        m = np.zeros_like(a)
        for r, x in enumerate(chunk):
            a[r, :len(x)] = x
            m[r, :len(x)] = 1
        out.append({"input_ids": a, "attention_mask": m})
    return out


def best_pass_seconds(sess, inputs, repeat):
    for f in inputs[:5]:  # warm-up: first-run allocations and kernel selection
        sess.run(None, f)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for f in inputs:
            sess.run(None, f)
        best = min(best, time.perf_counter() - start)
    return best


def ensure_int8(fp32, cache):
    if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(fp32):
        return cache
    tmp = cache + ".tmp"
    quantize_dynamic(fp32, tmp, per_channel=True, weight_type=QuantType.QInt8)
    os.replace(tmp, cache)
    return cache


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--int8-cache", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-sizes", default="")
    a = ap.parse_args()
    with open(a.ids) as f:
        ids = json.load(f)
    if not ids or not all(isinstance(x, list) and x for x in ids):
        raise SystemExit(f"{a.ids}: expected a non-empty list of non-empty token-id lists")
    cpus = os.cpu_count() or 1
    models = {"ort_fp32": a.fp32, "ort_int8": ensure_int8(a.fp32, a.int8_cache)}
    out = {"version": ort.__version__, "sentences": len(ids), "threads_all": cpus}
    if a.batch_sizes:
        sizes = [int(v) for v in a.batch_sizes.split(",")]
        for name, path in models.items():
            sess = session(path, cpus)
            out[name] = {
                str(size): len(ids) / best_pass_seconds(sess, batch_feeds(ids, size), a.repeat)
                for size in sizes
            }
        print(json.dumps(out))
        return
    inputs = feeds(ids)
    for name, path in models.items():
        one = best_pass_seconds(session(path, 1), inputs, a.repeat)
        every = best_pass_seconds(session(path, cpus), inputs, a.repeat)
        out[name] = {
            "ms_per_sentence": one * 1000.0 / len(ids),
            "sentences_per_s_all_threads": len(ids) / every,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
