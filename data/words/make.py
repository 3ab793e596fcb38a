#!/usr/bin/env python3
"""Writes wordfreq-en.tsv: the most frequent English words of wordfreq 3.1.1's large list.

Usage: pip download --no-deps wordfreq==3.1.1 -d /tmp/wf
       python3 data/words/make.py /tmp/wf/wordfreq-3.1.1-py3-none-any.whl > data/words/wordfreq-en.tsv

Keeps words of two or more lowercase letters only (no digits, apostrophes or hyphens: what
`pith distill --words` reads), most frequent first, ties in the list's own order, with each
word's frequency to three significant digits.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "train"))
from distill_static import wordfreq_words  # noqa: E402

WORDS = 30000


def main():
    kept = 0
    for word, freq in wordfreq_words(sys.argv[1], 1e-8):
        if len(word) >= 2 and word.isalpha() and word == word.lower():
            print(f"{word}\t{freq:.3g}")
            kept += 1
            if kept == WORDS:
                break


if __name__ == "__main__":
    main()
