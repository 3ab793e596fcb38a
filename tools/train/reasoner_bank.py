#!/usr/bin/env python3
"""Writes the reasoner's response sentences, one a line, for `pith kb build`: distinct training
turns (data/chitchat/train.jsonl only) of 3 to 25 words, shuffled with a fixed seed, the first N.
Usage: reasoner_bank.py [TRAIN_JSONL] [OUT_TXT] [N]"""
import json
import random
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "data/chitchat/train.jsonl"
out = sys.argv[2] if len(sys.argv) > 2 else "models/reasoner-s-responses.txt"
n = int(sys.argv[3]) if len(sys.argv) > 3 else 4000
seen, keep = set(), []
for line in open(src, encoding="utf-8"):
    for t in json.loads(line)["turns"]:
        if 3 <= len(t.split()) <= 25 and t not in seen:
            seen.add(t)
            keep.append(t)
random.Random(0).shuffle(keep)
with open(out, "w", encoding="utf-8") as f:
    for t in keep[:n]:
        f.write(t + "\n")
print(f"{min(n, len(keep))} of {len(keep)} distinct 3-25-word training turns -> {out}")
