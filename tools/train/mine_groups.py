#!/usr/bin/env python3
"""Groups of real corpus texts that the teacher finds close: each anchor with a few of its
nearest corpus neighbours by the teacher's cosine (training only, for distill_tier_m.py
--corpus-groups).

Why: the variant groups of augment.py are edits of one sentence; STS pairs are often two
different sentences about the same scene. The nearest corpus neighbours of an SNLI line are
exactly that kind of pair, already labelled (their targets are the corpus targets), so this
costs no teacher time. Anchors: every SNLI training line in the corpus plus a seeded sample of
other corpus texts. Each group is the anchor, its nearest neighbour, and neighbours drawn from
ranks 2..--ranks, so a group spans close and middling similarity. The held-out SNLI lines are
not in the corpus (corpus.py keeps them out), and a corpus text equal to one is never used.

Output: one group per line, tab-separated corpus line numbers (0-based, blank lines skipped as
distill_tier_m.py skips them).
"""
import argparse
import os
import sys

import numpy as np

from common import HERE  # noqa: E402  (the script's own folder is on sys.path)
sys.path.insert(0, HERE)
from corpus import SNLI, SNLI_TRAIN_LINES  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="the corpus distill_tier_m.py trains on")
    ap.add_argument("--targets", required=True, help="the teacher's embeddings of its lines (raw f32 rows)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--other-anchors", type=int, default=20000, help="corpus texts (4-20 words) used as anchors besides SNLI")
    ap.add_argument("--neighbours", type=int, default=3, help="neighbours per group")
    ap.add_argument("--ranks", type=int, default=20, help="the further neighbours are drawn from ranks 2..RANKS")
    ap.add_argument("--max-cos", type=float, default=0.98, help="skip neighbours closer than this (near copies)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        texts = [l.rstrip("\n") for l in f if l.strip()]
    emb = np.fromfile(args.targets, dtype=np.float32)
    if emb.size != len(texts) * args.dim:
        raise SystemExit(f"{args.targets}: {emb.size} floats, expected {len(texts)} x {args.dim}")
    emb = emb.reshape(len(texts), args.dim)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)

    with open(SNLI, encoding="utf-8") as f:
        snli = [l.strip() for l in f]
    train, held = set(snli[:SNLI_TRAIN_LINES]), set(snli[SNLI_TRAIN_LINES:])
    usable = np.array([t not in held for t in texts])
    rng = np.random.default_rng(args.seed)
    snli_rows = [i for i, t in enumerate(texts) if t in train]
    others = [i for i, t in enumerate(texts) if t not in train and usable[i] and 4 <= len(t.split()) <= 20]
    anchors = snli_rows + sorted(rng.choice(others, size=min(args.other_anchors, len(others)), replace=False).tolist())
    print(f"{len(snli_rows)} SNLI anchors, {len(anchors) - len(snli_rows)} others", file=sys.stderr)

    groups, chunk = [], 1024
    for start in range(0, len(anchors), chunk):
        a = np.array(anchors[start:start + chunk])
        cos = emb[a] @ emb.T
        cos[:, ~usable] = -2.0
        cos[np.arange(len(a)), a] = -2.0
        cos[cos > args.max_cos] = -2.0
        top = np.argpartition(-cos, args.ranks, axis=1)[:, :args.ranks]
        for r, row in enumerate(top):
            row = row[np.argsort(-cos[r, row])]
            far = rng.choice(row[1:], size=args.neighbours - 1, replace=False)
            groups.append([int(a[r]), int(row[0]), *map(int, far)])
        print(f"{start + len(a)} / {len(anchors)}", file=sys.stderr)

    tmp = args.out + ".part"
    with open(tmp, "w") as f:
        for g in groups:
            f.write("\t".join(map(str, g)) + "\n")
    os.replace(tmp, args.out)
    sims = [float(emb[g[0]] @ emb[g[1]]) for g in groups]
    print(f"wrote {len(groups)} groups to {args.out}; nearest-neighbour cosine median {np.median(sims):.3f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
