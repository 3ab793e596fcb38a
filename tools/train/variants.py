#!/usr/bin/env python3
"""Near-duplicate variants of training texts for `pith distill` (augment.py's operations).

A static student learns from in-batch cosine matrices; random texts are mostly unrelated, so the
fine differences STS pairs test (a negation, a dropped or swapped word, "There is no ...", another
determiner) are rarely in the loss. Each group here is a source text and edited copies of it; the
teacher labels every copy (no hand labels), and the trainer puts whole groups into batches.

Without WordNet the operations are the structural ones (negation, deletion, swap, "There is
no ...", determiner, and a two-edit variant); ``--wordnet DIR`` (Debian ``wordnet-base``) adds
synonyms, co-hyponyms, antonyms and the passive.

Input: the work folder's ``texts-train.txt`` and ``texts-dev.txt`` (one text a line, written by
`pith distill`). Output: ``variants.txt`` (one text a line) and ``variants.tsv`` (group id and
split per line: ``train`` groups are trained on, ``dev`` groups are the close-pair dev check).
Deterministic for a seed.
"""

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from augment import WordNet, variants  # noqa: E402


class NoWordNet:
    """The lexicon augment.py asks, when there is none: no word substitutions, no passive, and
    a verb base by the regular rule (only asked whether there is one)."""

    def synonym(self, word, rng):
        return None

    cohyponym = antonym = synonym

    def verb_base(self, ing):
        return ing[:-3] if len(ing) > 5 else None

    def participle(self, base):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sources", type=int, required=True, help="training texts (4 to 20 words) that get variants")
    ap.add_argument("--per-text", type=int, required=True, help="variants per training source")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--wordnet", default=None)
    ap.add_argument("--source-lines", default=None,
                    help="lines of each corpus source in texts-train.txt, in order (N1,N2,...): each "
                         "source gives the same share of the sources of variants")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    wn = WordNet(args.wordnet) if args.wordnet else NoWordNet()

    def lines(name):
        with open(os.path.join(args.work, name), encoding="utf-8") as f:
            return [l.rstrip("\n") for l in f if l.strip()]

    all_train = lines("texts-train.txt")
    sizes = [int(n) for n in args.source_lines.split(",")] if args.source_lines else [len(all_train)]
    if sum(sizes) != len(all_train):
        raise SystemExit(f"--source-lines adds up to {sum(sizes)}, texts-train.txt has {len(all_train)} lines")
    picked, start = [], 0
    for k, n in enumerate(sizes):
        train = [t for t in all_train[start:start + n] if 4 <= len(t.split()) <= 20]
        start += n
        rng.shuffle(train)
        quota = args.sources // len(sizes) + (1 if k < args.sources % len(sizes) else 0)
        picked += train[:quota]
    sources = [(t, "train", args.per_text) for t in picked]
    sources += [(t, "dev", 2) for t in lines("texts-dev.txt")]
    texts, meta = [], []
    for g, (src, split, n) in enumerate(sources):
        group = [src] + variants(src, wn, rng, n, structural=True)
        if len(group) < 2:
            continue
        for t in group:
            texts.append(t.replace("\t", " "))
            meta.append(f"{g}\t{split}")
    for name, rows in (("variants.txt", texts), ("variants.tsv", meta)):
        tmp = os.path.join(args.work, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
        os.replace(tmp, os.path.join(args.work, name))
    print(f"[variants] {len(texts)} texts in {len(set(m.split()[0] for m in meta))} groups", file=sys.stderr)


if __name__ == "__main__":
    main()
