#!/usr/bin/env python3
"""Writes the out-of-domain two-turn sets of `pith eval chat` from data this repository already
keeps (sources and licenses: data/README.md). Each line is a conversation {"turns": [context, reply]}.

- stackfaq-query-answer.jsonl: each of the 625 user queries of faq/stackfaq-dev-queries.tsv, then
  the answer of the FAQ entry it asks for (faq/stackfaq-bank.jsonl).
- stackfaq-question-answer.jsonl: each of the 125 FAQ entries' own question, then its answer.
- sick-related.jsonl: SICK pairs rated 4.5 or more (sts/sick-dev.tsv): a statement, then a closely
  related one.

None of them is used for training or for choosing settings: they only report how far a reasoner
trained on chit-chat falls from its encoder's plain cosine on conversations of another kind.
Run from the repository root: python3 data/ood/build.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)


def write(name, convs):
    tmp = os.path.join(HERE, name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for c in convs:
            f.write(json.dumps({"turns": c}, ensure_ascii=False) + "\n")
    os.replace(tmp, os.path.join(HERE, name))


def one_line(s):
    return " ".join(s.split())


bank = {}
with open(os.path.join(DATA, "faq/stackfaq-bank.jsonl"), encoding="utf-8") as f:
    for line in f:
        e = json.loads(line)
        bank[e["id"]] = (one_line(e["question"]), one_line(e["answer"]))
queries = []
with open(os.path.join(DATA, "faq/stackfaq-dev-queries.tsv"), encoding="utf-8") as f:
    for line in f:
        i, q = line.rstrip("\n").split("\t", 1)
        queries.append([one_line(q), bank[int(i)][1]])
write("stackfaq-query-answer.jsonl", queries)
write("stackfaq-question-answer.jsonl", [[q, a] for _, (q, a) in sorted(bank.items())])
pairs = []
with open(os.path.join(DATA, "sts/sick-dev.tsv"), encoding="utf-8") as f:
    for line in f:
        score, a, b = line.rstrip("\n").split("\t")
        if float(score) >= 4.5:
            pairs.append([one_line(a), one_line(b)])
write("sick-related.jsonl", pairs)
