#!/usr/bin/env python3
"""Splits the BYU Chit-Chat Challenge conversations (PyPI chitchat-dataset 0.9.0, MIT) into
train / dev / test-seen / test-unseen JSONL files, one conversation per line as {"turns": [...]}.

The split was fixed before any model was trained or evaluated and depends only on the data:
- a turn is one speaker's consecutive messages joined with a space (the dataset already groups them);
  whitespace is collapsed, empty turns dropped, conversations with fewer than 2 turns dropped;
- unseen topics: the UNSEEN_PROMPTS prompts whose sha256 (UTF-8) sorts first among the non-empty
  prompts; all their conversations go to test-unseen and nothing of them is trained on;
- every other conversation by the first 8 hex digits of sha256(conversation id) modulo 20:
  0-15 train, 16-17 dev, 18-19 test-seen.
Usage: split.py DATASET_JSON OUT_DIR
"""
import hashlib
import json
import os
import sys

UNSEEN_PROMPTS = 4


def sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def turns_of(conv):
    out = []
    for group in conv["messages"]:
        text = " ".join(" ".join(m["text"].split()) for m in group).strip()
        if text:
            out.append(text)
    return out


def main():
    src, out_dir = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    prompts = sorted({c.get("prompt", "") for c in data.values()} - {""}, key=sha)
    unseen = set(prompts[:UNSEEN_PROMPTS])
    parts = {"train": [], "dev": [], "test-seen": [], "test-unseen": []}
    for cid in sorted(data):
        conv = data[cid]
        turns = turns_of(conv)
        if len(turns) < 2:
            continue
        if conv.get("prompt", "") in unseen:
            part = "test-unseen"
        else:
            b = int(sha(cid)[:8], 16) % 20
            part = "train" if b < 16 else "dev" if b < 18 else "test-seen"
        parts[part].append(turns)
    os.makedirs(out_dir, exist_ok=True)
    for name, convs in parts.items():
        with open(os.path.join(out_dir, name + ".jsonl"), "w", encoding="utf-8") as f:
            for t in convs:
                f.write(json.dumps({"turns": t}, ensure_ascii=False) + "\n")
        print(f"{name}: {len(convs)} conversations, {sum(len(t) for t in convs)} turns")
    print("unseen prompts:")
    for p in sorted(unseen):
        print(f"  {p}")


if __name__ == "__main__":
    main()
