#!/usr/bin/env python3
"""Makes groups of near-duplicate sentences for the Tier M distillation (TinyBERT/EDA-style
augmentation, labelled by the teacher, not by hand).

Why: with random corpus texts in a batch, the in-batch cosine matrix the student learns from holds
only unrelated pairs (teacher cosines ~0-0.4). Sentence similarity is judged among close
sentences — a word swapped, dropped, negated or replaced by a related one — and the student never
saw the teacher's cosines for those. Each group here is one source sentence and variants of it;
the trainer puts whole groups into a batch, so the teacher's fine-grained cosines are in the loss.

Operations (WordNet 3.0 from wordnet-base, the same package as the corpus): synonym of a word
(another lemma of its first synset), co-hyponym of a noun (another hyponym of its first
hypernym: "guitar" -> "banjo"), antonym of an adjective/verb/adverb, negation (`not` after the
first auxiliary, or `No` for a leading article), deletion of one or two words, and a swap of two
words. Labels come from the teacher alone, so a clumsy variant is still a correct example.

Sources: the SNLI training lines (first 10,000 of data/calib/snli-dev-sentences.txt;
6 variants each) and ``--corpus-lines`` random 4-to-20-word corpus texts (2 variants each). The
last 3,086 SNLI lines (the dev check's) get 2 variants each, marked ``dev``: a second dev check
on close pairs. SICK is not used.

Output: TEXTS (one text per line, for `pith embed --file`) and TEXTS.tsv (group id, split). Fixed
seed, so the files are the same on a rerun.
"""

import argparse
import os
import random
import re

from corpus import ROOT, SNLI, SNLI_TRAIN_LINES

AUX = {"is", "are", "was", "were", "can", "will", "does", "do", "did", "has", "have", "could", "would", "should"}
PLURAL_DETS = {"two", "three", "some", "several", "many"}
ARTICLES = {"a", "an", "the"} | PLURAL_DETS
STOP = {"a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "with", "is", "are", "for", "by", "his",
        "her", "their", "its", "from", "as", "while", "into", "near", "next", "it", "that", "this", "be"}


class WordNet:
    """Lemma -> first synsets, with their lemmas, hypernyms, hyponyms and antonyms (data.* files)."""

    def __init__(self, folder):
        self.first = {}  # (lemma, pos) -> offset of the first synset in the index file
        self.syn = {}  # (pos, offset) -> (lemmas, hypernyms, hyponyms, antonyms)
        for pos, tag in (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")):
            with open(os.path.join(folder, f"index.{pos}"), encoding="latin-1") as f:
                for line in f:
                    if line.startswith(" "):
                        continue
                    p = line.split()
                    n_ptr = int(p[3])
                    offsets = p[4 + n_ptr + 2:]
                    if offsets:
                        self.first[(p[0], tag)] = offsets[0]
            with open(os.path.join(folder, f"data.{pos}"), encoding="latin-1") as f:
                for line in f:
                    if line.startswith(" "):
                        continue
                    p = line.split("|", 1)[0].split()
                    w = int(p[3], 16)
                    lemmas = [p[4 + 2 * i] for i in range(w)]
                    k = 4 + 2 * w
                    n_ptr = int(p[k])
                    hyper, hypo, ant = [], [], []
                    for j in range(n_ptr):
                        sym, off, ppos, st = p[k + 1 + 4 * j: k + 5 + 4 * j]
                        if sym in ("@", "@i"):
                            hyper.append(off)
                        elif sym in ("~", "~i"):
                            hypo.append(off)
                        elif sym == "!":
                            ant.append((off, ppos if ppos != "s" else "a", int(st[2:], 16)))
                    self.syn[(tag, p[0])] = (lemmas, hyper, hypo, ant)
        # Irregular verb forms (verb.exc: "ridden ride"), for the passive: base -> forms.
        self.verb_forms = {}
        path = os.path.join(folder, "verb.exc")
        if os.path.exists(path):
            with open(path, encoding="latin-1") as f:
                for line in f:
                    form, base = line.split()[:2]
                    self.verb_forms.setdefault(base, []).append(form)

    def verb_base(self, ing):
        """`riding` -> `ride`, `running` -> `run` (the first candidate WordNet knows as a verb)."""
        stem = ing[:-3]
        for cand in (stem, stem + "e", stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else None):
            if cand and (cand, "v") in self.first:
                return cand
        return None

    def participle(self, base):
        forms = [f for f in self.verb_forms.get(base, []) if not f.endswith(("ing", "s"))]
        if forms:
            en = [f for f in forms if f.endswith("n")]
            return (en or forms)[-1]
        if base.endswith("e"):
            return base + "d"
        if base.endswith("y") and len(base) > 2 and base[-2] not in "aeiou":
            return base[:-1] + "ied"
        return base + "ed"

    def entry(self, word, pos):
        off = self.first.get((word, pos))
        return None if off is None else self.syn.get((pos, off))

    @staticmethod
    def clean(lemma):
        return re.sub(r"\(.*\)$", "", lemma).replace("_", " ")

    def synonym(self, word, rng):
        for pos in ("n", "v", "a", "r"):
            e = self.entry(word, pos)
            if e:
                alts = [self.clean(l) for l in e[0] if self.clean(l).lower() != word]
                if alts:
                    return rng.choice(alts)
        return None

    def cohyponym(self, word, rng):
        e = self.entry(word, "n")
        if not e or not e[1]:
            return None
        parent = self.syn.get(("n", e[1][0]))
        if not parent:
            return None
        sibs = [self.syn.get(("n", o)) for o in parent[2]]
        alts = [self.clean(s[0][0]) for s in sibs if s and self.clean(s[0][0]).lower() != word]
        return rng.choice(alts) if alts else None

    def antonym(self, word, rng):
        for pos in ("a", "v", "r"):
            e = self.entry(word, pos)
            if e and e[3]:
                off, ppos, target = rng.choice(e[3])
                t = self.syn.get((ppos, off))
                if t and 0 < target <= len(t[0]):
                    return self.clean(t[0][target - 1])
        return None


def inflect_lookup(fn, word, rng):
    """Looks a word up as is, then as a plural noun / third-person verb (re-adding the -s)."""
    w = word.lower()
    r = fn(w, rng)
    if r is None and len(w) > 3 and w.endswith("s"):
        r = fn(w[:-1], rng)
        if r is not None:
            r = r + "s"
    return r


PREPS = {"in", "on", "at", "with", "near", "while", "into", "through", "under", "over", "by", "for", "from",
         "to", "during", "behind", "beside", "across", "along", "outside", "inside", "down", "up", "and"}
DETS = ["A", "One", "Two", "Three", "Some", "Several", "Many", "The"]


def variants(sentence, wn, rng, n, structural=False):
    words = sentence.split()
    core = [i for i, w in enumerate(words) if re.sub(r"\W", "", w).lower() not in STOP and re.sub(r"\W", "", w)]

    def replace(fn):
        cands = core[:]
        rng.shuffle(cands)
        for i in cands:
            m = re.match(r"^(\W*)(\w[\w'-]*)(\W*)$", words[i])
            if not m:
                continue
            r = inflect_lookup(fn, m.group(2), rng)
            if r:
                return " ".join(words[:i] + [m.group(1) + r + m.group(3)] + words[i + 1:])
        return None

    def negate():
        for i, w in enumerate(words):
            if w.lower() in AUX and i + 1 < len(words) and words[i + 1].lower() != "not":
                return " ".join(words[:i + 1] + ["not"] + words[i + 1:])
        if words and words[0].lower() in ARTICLES:
            return " ".join(["No"] + words[1:])
        return None

    def delete():
        if len(words) < 4:
            return None
        k = 1 if len(words) < 8 else rng.choice((1, 2))
        drop = set(rng.sample(range(1, len(words)), k))
        return " ".join(w for i, w in enumerate(words) if i not in drop)

    def swap():
        if len(words) < 3:
            return None
        i, j = sorted(rng.sample(range(len(words)), 2))
        w = words[:]
        w[i], w[j] = w[j], w[i]
        return " ".join(w)

    def progressive():
        """(index of `is`/`are`, verb base) of `<subject> is/are <verb>ing ...`, or None."""
        for i, w in enumerate(words[1:-1], 1):
            if w.lower() in ("is", "are") and words[i + 1].lower().endswith("ing"):
                base = wn.verb_base(re.sub(r"\W", "", words[i + 1].lower()))
                if base:
                    return i, base
        return None

    def there_is_no():
        # "A man is playing a guitar" -> "There is no man playing a guitar"
        pv = progressive()
        if not pv or words[0].lower() not in ARTICLES:
            return None
        i, _ = pv
        be = "is" if words[i].lower() == "is" else "are"
        return " ".join(["There", be, "no"] + words[1:i] + words[i + 1:])

    def passive():
        # "A man is riding a horse in a field" -> "A horse is being ridden by a man in a field"
        pv = progressive()
        if not pv:
            return None
        i, base = pv
        if i + 3 >= len(words) or words[i + 2].lower() not in ARTICLES | {"his", "her", "their", "its"}:
            return None
        j = i + 3
        while j < len(words) and re.sub(r"\W", "", words[j]).lower() not in PREPS:
            j += 1
        obj = words[i + 2:j]
        tail = re.match(r"^(.*?)(\W*)$", obj[-1])
        obj[-1] = tail.group(1)
        end = tail.group(2) if j == len(words) else ""
        participle = wn.participle(base)
        if not participle:
            return None
        plural = obj[0].lower() in PLURAL_DETS or obj[-1].endswith("s")
        subj = [words[0][0].lower() + words[0][1:]] + words[1:i]
        out = [obj[0][0].upper() + obj[0][1:]] + obj[1:] + ["are" if plural else "is", "being",
                                                             participle, "by"] + subj
        return " ".join(out + words[j:]) + end

    def determiner():
        # "A man ..." -> "Two man ...": only the determiner changes (no agreement fixed); the
        # teacher labels the clumsy text as it is.
        if not words or words[0].capitalize() not in DETS:
            return None
        alts = [d for d in DETS if d != words[0].capitalize()]
        return " ".join([rng.choice(alts)] + words[1:])

    ops = [lambda: replace(wn.synonym), lambda: replace(wn.cohyponym), lambda: replace(wn.antonym),
           negate, delete, swap]
    if structural:
        ops += [there_is_no, passive, determiner]
    out, seen = [], {sentence}
    order = list(range(len(ops)))
    rng.shuffle(order)
    tries = 0
    while len(out) < n and tries < 4 * n + 8:
        op = ops[order[tries % len(ops)]]
        tries += 1
        v = op()
        if v and v not in seen:
            seen.add(v)
            out.append(v)
    if structural and out and n > 1:
        # The last slot goes to a variant of a variant: two edits from the source, so the group
        # also spans the middle of the similarity range.
        second = variants(out[0], wn, rng, 1)
        if second and second[0] not in seen:
            out[-1] = second[0]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wordnet", default="/usr/share/wordnet", help="folder with WordNet's index.* and data.*")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "models", "cache", "tier-m", "corpus.txt"))
    ap.add_argument("--corpus-lines", type=int, default=40000)
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "models", "cache", "tier-m", "aug.txt"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snli-variants", type=int, default=6, help="variants of each SNLI training line")
    ap.add_argument("--structural", action="store_true",
                    help="also 'There is no ...', the passive, a changed determiner, and two-edit variants")
    ap.add_argument("--neighbours", type=int, default=0,
                    help="also groups of K alphabetically adjacent SNLI training lines (the file is "
                         "sorted, so neighbours share their opening words but say different things)")
    ap.add_argument("--neighbour-offset", type=int, default=0,
                    help="first line of the first neighbour group (another offset gives other groups)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    wn = WordNet(args.wordnet)
    with open(SNLI, encoding="utf-8") as f:
        snli = [l.strip() for l in f]
    with open(args.corpus, encoding="utf-8") as f:
        corpus = [l.rstrip("\n") for l in f]
    snli_set = set(snli)
    pool = [t for t in corpus if 4 <= len(t.split()) <= 20 and t not in snli_set]
    rng.shuffle(pool)
    sources = ([(t, "train", args.snli_variants) for t in snli[:SNLI_TRAIN_LINES]]
               + [(t, "train", 2) for t in pool[:args.corpus_lines]]
               + [(t, "dev", 2) for t in snli[SNLI_TRAIN_LINES:]])
    texts, meta = [], []
    groups = [[src] + variants(src, wn, rng, n, args.structural) for src, split, n in sources]
    splits = [split for _, split, _ in sources]
    if args.neighbours:
        train = snli[:SNLI_TRAIN_LINES]
        for s in range(args.neighbour_offset, len(train) - args.neighbours + 1, args.neighbours):
            groups.append(train[s:s + args.neighbours])
            splits.append("train")
    for g, (group, split) in enumerate(zip(groups, splits)):
        if len(group) < 2:
            continue
        for t in group:
            texts.append(t.replace("\t", " "))
            meta.append(f"{g}\t{split}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    with open(args.out + ".tsv", "w") as f:
        f.write("\n".join(meta) + "\n")
    groups = len(set(m.split("\t")[0] for m in meta))
    print(f"{len(texts)} texts in {groups} groups -> {args.out}")


if __name__ == "__main__":
    main()
