#!/usr/bin/env python3
"""Builds the English training corpus of the Tier M student from text that can be had here.

No corpus is downloaded from a hub: every source is a Debian package (or the project's data/ folder), so the
corpus can be rebuilt on any Debian machine with

  apt-get install wordnet-base dict-gcide fortunes
  python3 tools/train/corpus.py -o models/cache/tier-m/corpus.txt

Sources (licenses in models/tier-m.md):
- WordNet 3.0 glosses and example sentences (wordnet-base; WordNet 3.0 license),
- definitions and quotations of GCIDE, the GNU Collaborative International Dictionary of
  English (dict-gcide; GPL-2+), mostly Webster's 1913,
- fortune cookies (fortunes; BSD-style / public domain, the offensive set is not used),
- the first 10,000 lines of data/calib/snli-dev-sentences.txt (SNLI, CC BY-SA 4.0);
  the last 3,086 lines are kept out as the dev check.

Output: one text per line, deduplicated (case-insensitively), 4 to 48 words, shuffled with a
fixed seed. Only the trained weights derived from it are committed, never the text.
"""

import argparse
import gzip
import os
import random
import re
import sys

from common import HERE, ROOT  # noqa: E402  (the script's own folder is on sys.path)
SNLI = os.path.join(ROOT, "data", "calib", "snli-dev-sentences.txt")
SNLI_TRAIN_LINES = 10000


def wordnet(folder):
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(folder, f"data.{pos}"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # license header
                for part in line.split("|", 1)[1].split(";"):
                    yield part.strip().strip('"').strip()


_BRACES = re.compile(r"[{}]")
_ATTRIB = re.compile(r"--\s*[A-Z][^.\"]{0,40}\.(\s|$)")
_TAG = re.compile(r"\[[^\]]*\]|\([A-Z][a-z]+\.(\s*[A-Za-z]+\.)*\)")
_NUM = re.compile(r"^\s*(\d+\.|\(\w\))\s*")
_QUOTE = re.compile(r"\"([^\"]{20,400})\"")
# Etymology and pronunciation debris of the dictionary ("fy`llon", "O\"ver*mod", "fr. ?").
_JUNK = re.compile(r"[`*\\|<>=_]|\bfr\.|--|\?\]|\bL\.|\bGr\.|\bOE\.|\bAS\.|\bF\.\s")


def gcide(path):
    """Definitions (split at ';') and quotations from the dictd GCIDE file."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    for para in text.split("\n\n"):
        lines = para.split("\n")
        # A headword paragraph starts at column 0 (`Word \Pron\, n. [etym]`); skip its first line.
        if lines and lines[0] and not lines[0].startswith(" "):
            lines = lines[1:]
        body = " ".join(l.strip() for l in lines)
        if not body or body.startswith(("Syn:", "Note:", "Usage:")):
            continue
        body = _BRACES.sub("", body)
        for q in _QUOTE.findall(body):
            yield _ATTRIB.sub(" ", q)
        body = _QUOTE.sub(" ", body)
        body = _ATTRIB.sub(" ", body)
        body = _TAG.sub(" ", body)
        body = _NUM.sub("", body)
        for part in body.split(";"):
            part = part.strip()
            if part.startswith("as,"):
                continue  # usage fragments ("as, to abjure errors")
            yield part


def fortunes(folder):
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        if "." in name or not os.path.isfile(p) or os.path.islink(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            for cookie in f.read().split("\n%\n"):
                t = " ".join(l.strip() for l in cookie.split("\n") if not l.strip().startswith("--"))
                yield t


def snli(path):
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= SNLI_TRAIN_LINES:
                break
            yield line.strip()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--wordnet", default="/usr/share/wordnet")
    p.add_argument("--gcide", default="/usr/share/dictd/gcide.dict.dz")
    p.add_argument("--fortunes", default="/usr/share/games/fortunes")
    p.add_argument("--snli", default=SNLI)
    p.add_argument("--max-per-source", type=int, default=200000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    sources = [("wordnet", wordnet(args.wordnet)), ("gcide", gcide(args.gcide)),
               ("fortunes", fortunes(args.fortunes)), ("snli", snli(args.snli))]
    seen = set()
    out = []
    rng = random.Random(args.seed)
    for name, gen in sources:
        kept = []
        for t in gen:
            t = " ".join(t.split())
            n = len(t.split())
            if n < 4 or n > 48 or not any(c.isalpha() for c in t) or _JUNK.search(t):
                continue
            key = t.lower()
            if key in seen:
                continue
            seen.add(key)
            kept.append(t)
        if len(kept) > args.max_per_source:
            kept = rng.sample(kept, args.max_per_source)
        print(f"{name}: {len(kept)} texts", file=sys.stderr)
        out.extend(kept)
    rng.shuffle(out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for t in out:
            f.write(t + "\n")
    print(f"{len(out)} texts -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
