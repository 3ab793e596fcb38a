#!/usr/bin/env python3
"""Runs an exported ONNX graph through onnxruntime and compares it with a reference.

  python3 check_onnx.py MODEL.onnx --model MODEL_DIR --sentences FILE [--limit N]
                        [--batches 1,8] [--against OTHER.onnx] [--ref-json ref.json]
                        [--dump emb.json]

The reference is the numpy BERT of bert_ref.py (default), the embeddings of a ref.json that
bert_ref.py wrote (--ref-json, whose token ids are then used instead of --sentences), or another
ONNX graph run unpadded (--against). Each batch size in --batches groups consecutive sentences
and pads them to the longest, so batch sizes > 1 check that padding does not leak into the
embeddings.

Runs the ONNX checker (full_check) first. Prints one JSON object: n, mean and min cosine (worst
over batch sizes) and per-batch details.
"""

import os

# The matrices here are small: threaded BLAS only spins and, on a shared machine, stalls.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bert_ref import BertRef, read_sentences  # noqa: E402


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run_batches(sess, ids, batch, pad_id=0):
    out = []
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        n = max(len(x) for x in chunk)
        input_ids = np.full((len(chunk), n), pad_id, dtype=np.int64)
        mask = np.zeros((len(chunk), n), dtype=np.int64)
        for r, x in enumerate(chunk):
            input_ids[r, : len(x)] = x
            mask[r, : len(x)] = 1
        (emb,) = sess.run(["sentence_embedding"], {"input_ids": input_ids, "attention_mask": mask})
        out.extend(emb.astype(np.float64))
    return np.array(out)


def cosines(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("--model", help="checkpoint directory (tokenizer, numpy reference; not needed with --ref-json)")
    ap.add_argument("--sentences", help="one sentence per line (not needed with --ref-json)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--against", help="reference ONNX graph instead of the numpy model")
    ap.add_argument("--ref-json", help="ids and embeddings written by bert_ref.py --out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dump", help="also write this graph's unpadded embeddings to a JSON file")
    args = ap.parse_args()

    doc = None
    if args.ref_json:
        with open(args.ref_json) as f:
            doc = json.load(f)
        ids = doc["ids"][: args.limit] if args.limit else doc["ids"]
    else:
        if not (args.sentences and args.model):
            ap.error("--model and --sentences are required without --ref-json")
        bert = BertRef(args.model)
        ids = [bert.ids(s) for s in read_sentences(args.sentences, args.limit)]
    if args.against:
        ref = run_batches(session(args.against, args.threads), ids, 1)
    elif doc is not None:
        ref = np.array(doc["embeddings"][: len(ids)])
    else:
        ref = np.array([bert.embed_ids(i) for i in ids])

    # The ONNX checker with shape inference catches spec violations a lenient runtime would accept.
    onnx.checker.check_model(args.onnx, full_check=True)
    sess = session(args.onnx, args.threads)
    per_batch = {}
    for b in [int(x) for x in args.batches.split(",") if x]:
        c = cosines(run_batches(sess, ids, b), ref)
        per_batch[str(b)] = {"mean": float(c.mean()), "min": float(c.min()), "argmin": int(c.argmin())}
    if args.dump:
        with open(args.dump, "w") as f:
            json.dump(run_batches(sess, ids, 1).tolist(), f)
    result = {
        "n": len(ids),
        "mean": min(v["mean"] for v in per_batch.values()),
        "min": min(v["min"] for v in per_batch.values()),
        "reference": "onnx" if args.against else ("ref-json" if doc is not None else "numpy"),
        "checker": "ok",
        "per_batch": per_batch,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
