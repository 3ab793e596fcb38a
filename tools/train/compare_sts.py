#!/usr/bin/env python3
"""Two packages on one STS file: each one's Spearman and a paired bootstrap of the difference.

Why: successive Tier M students differ by tenths of a SICK point, and a single Spearman says
nothing about whether such a step is larger than what the choice of pairs alone would give.
Resampling the pairs (the same resample for both packages) gives an interval for the
difference. This is for reporting a step after the choice is made; choosing between students
on SICK would make SICK a training set.

Embeddings come from `pith embed --file` (the runtime the device runs), one file per side of
the pairs; numpy only.

    python3 tools/train/compare_sts.py data/sts/sick-dev.tsv OLD.pith models/tier-m.pith
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from common import HERE, ROOT  # noqa: E402  (the script's own folder is on sys.path)
sys.path.insert(0, HERE)
from distill_static import spearman  # noqa: E402


def read_pairs(path):
    """`score<TAB>a<TAB>b` lines; a header or any line whose first field is not a number is
    skipped, as `pith eval sts` does."""
    gold, a, b = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3:
                continue
            try:
                score = float(fields[0])
            except ValueError:
                continue
            gold.append(score)
            a.append(fields[1])
            b.append(fields[2])
    if not gold:
        raise SystemExit(f"{path}: no `score<TAB>a<TAB>b` lines")
    return np.array(gold), a, b


def embed(pith, package, lines, tmp, tag):
    text = os.path.join(tmp, f"{tag}.txt")
    out = os.path.join(tmp, f"{tag}.f32")
    with open(text, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    run = subprocess.run([pith, "embed", "--file", text, "--out", out, "--model", package],
                         capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"pith embed --model {package}: {run.stderr.strip()}")
    flat = np.fromfile(out, dtype=np.float32)
    if flat.size % len(lines):
        raise SystemExit(f"{out}: {flat.size} floats is not a whole number of {len(lines)} rows")
    return flat.reshape(len(lines), -1)


def cosines(pith, package, a, b, tmp, tag):
    ea, eb = embed(pith, package, a, tmp, tag + "a"), embed(pith, package, b, tmp, tag + "b")
    return (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sts", help="score<TAB>a<TAB>b file")
    ap.add_argument("old", help="the package the step starts from")
    ap.add_argument("new", help="the package after the step")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pith", default=os.path.join(ROOT, "target", "release", "pith"))
    args = ap.parse_args()
    if not os.path.exists(args.pith):
        raise SystemExit(f"{args.pith}: not built (cargo build --release --bin pith)")
    gold, a, b = read_pairs(args.sts)
    with tempfile.TemporaryDirectory() as tmp:
        old = cosines(args.pith, args.old, a, b, tmp, "old")
        new = cosines(args.pith, args.new, a, b, tmp, "new")
    s_old, s_new = spearman(gold, old), spearman(gold, new)
    rng = np.random.default_rng(args.seed)
    diffs = np.empty(args.resamples)
    for k in range(args.resamples):
        i = rng.integers(0, len(gold), len(gold))
        diffs[k] = spearman(gold[i], new[i]) - spearman(gold[i], old[i])
    lo, hi = np.percentile(diffs * 100, [2.5, 97.5])
    print(f"{len(gold)} pairs: old {100 * s_old:.2f}, new {100 * s_new:.2f}, "
          f"difference {100 * (s_new - s_old):+.2f}, 95 % paired-bootstrap interval "
          f"[{lo:+.2f}, {hi:+.2f}] ({args.resamples} resamples, seed {args.seed})")


if __name__ == "__main__":
    sys.exit(main())
