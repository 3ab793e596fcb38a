#!/usr/bin/env python3
"""Distils a static (one vector per token, mean-pooled) embedding model from a BERT teacher.

Tier S of pith: the model must fit a 512 KB package (vocabulary included) and run on a
Cortex-M0+, so it is a token table only. Method (no GPU, no torch; numpy + onnxruntime):

1. Token frequencies from a corpus: the wordfreq word list (English, Apache-2.0 code,
   CC BY-SA 4.0 data) with each word split by the teacher's WordPiece tokenizer, mixed with
   the SNLI sentences in data/calib (the BERT vocabulary is not frequency-sorted,
   so Zipf-by-rank weights would be wrong).
2. Every vocabulary token embedded through the teacher as ``[CLS] token [SEP]`` (the teacher's
   own pooled, normalised sentence embedding), through its fp32 ONNX export.
3. Vocabulary pruning to a byte budget: special tokens, the Latin-script single characters and
   their ``##`` forms (so WordPiece can always fall back on them), then the most frequent tokens.
4. PCA to ``--dim`` dimensions, then SIF weights ``a / (a + p(token))`` folded into the rows.
5. Optional refinement on a corpus (``--refine``): ridge regression of the table so that the
   mean of a text's token rows matches the teacher's embedding of that text (frequent words
   and the training half of the SNLI sentences), pulled towards the step-4 table.

Outputs a checkpoint folder: ``embeddings.safetensors`` (``embeddings``: fp16 [vocab, dim]),
``vocab.txt`` (ids in line order) and ``config.json`` (``"arch": "static"`` plus tokenizer
settings); ``pith quantize DIR -o PKG`` turns it into a ``.pith`` package.

The script prints its agreement with the teacher on held-out SNLI sentence pairs (a dev check
that never looks at SICK); ``--sick`` adds the float SICK Spearman for reporting. The defaults are
the shipped setting (models/tier-s.md). Everything is deterministic: no random numbers are drawn.
"""

import argparse
import gzip
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np

from common import HERE, ROOT, onnx_output_dim  # noqa: E402  (the script's own folder is on sys.path)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Bytes the package spends per vocabulary token besides its row: the (multiplier, shift) pair
# (8) and the vocabulary section's offset and sorted-index entries (3 + 3).
PER_TOKEN_OVERHEAD = 14
# Fixed package bytes: preamble, header, section table, vocabulary header, alignment, checksum.
FIXED_OVERHEAD = 512


# ---------------------------------------------------------------------------------------------
# Corpus: wordfreq's English list (msgpack "cB" format, read without the msgpack package).


def _msgpack(buf, i=0):
    """Decodes one msgpack value at ``buf[i:]``; returns (value, next index).

    Only the types wordfreq's files use: arrays, maps, strings and small integers."""
    b = buf[i]
    if b <= 0x7F:
        return b, i + 1
    if 0x80 <= b <= 0x8F:
        return _map(buf, i + 1, b & 0x0F)
    if 0x90 <= b <= 0x9F:
        return _array(buf, i + 1, b & 0x0F)
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return buf[i + 1:i + 1 + n].decode("utf-8"), i + 1 + n
    if b == 0xCC:
        return buf[i + 1], i + 2
    if b == 0xCD:
        return struct.unpack(">H", buf[i + 1:i + 3])[0], i + 3
    if b in (0xD9, 0xDA, 0xDB):
        w = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
        n = int.from_bytes(buf[i + 1:i + 1 + w], "big")
        s = i + 1 + w
        return buf[s:s + n].decode("utf-8"), s + n
    if b in (0xDC, 0xDD):
        w = 2 if b == 0xDC else 4
        return _array(buf, i + 1 + w, int.from_bytes(buf[i + 1:i + 1 + w], "big"))
    if b in (0xDE, 0xDF):
        w = 2 if b == 0xDE else 4
        return _map(buf, i + 1 + w, int.from_bytes(buf[i + 1:i + 1 + w], "big"))
    raise ValueError(f"msgpack type 0x{b:02x} not supported")


def _array(buf, i, n):
    out = []
    for _ in range(n):
        v, i = _msgpack(buf, i)
        out.append(v)
    return out, i


def _map(buf, i, n):
    out = {}
    for _ in range(n):
        k, i = _msgpack(buf, i)
        v, i = _msgpack(buf, i)
        out[k] = v
    return out, i


def wordfreq_words(path, min_freq):
    """(word, frequency) pairs from wordfreq's large English list, most frequent first.

    ``path`` is the wordfreq wheel (or the extracted ``large_en.msgpack.gz``). Bin ``k`` of the
    cB format holds the words whose frequency is ``10 ** (-k / 100)``."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            raw = z.read("wordfreq/data/large_en.msgpack.gz")
    else:
        with open(path, "rb") as f:
            raw = f.read()
    data, _ = _msgpack(gzip.decompress(raw))
    header, bins = data[0], data[1:]
    if header.get("format") != "cB":
        raise ValueError("not a wordfreq cB file")
    out = []
    for k, words in enumerate(bins):
        f = 10.0 ** (-k / 100.0)
        if f < min_freq:
            break
        out.extend((w, f) for w in words)
    return out


def wordnet_texts(folder, count):
    """Glosses and example sentences of WordNet 3.0 (Debian package wordnet-base, files
    ``data.{noun,verb,adj,adv}``), at least three words each; ``count`` of them taken at an even
    stride, so the choice is deterministic and spread over all parts of speech."""
    texts = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(folder, f"data.{pos}"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # the license header lines start with two spaces
                for part in line.split("|", 1)[1].split(";"):
                    t = part.strip().strip('"').strip()
                    if len(t.split()) >= 3:
                        texts.append(t)
    if count and count < len(texts):
        step = len(texts) / count
        texts = [texts[int(i * step)] for i in range(count)]
    return texts


# ---------------------------------------------------------------------------------------------
# Teacher


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        toks = f.read().split("\n")
    if toks and toks[-1] == "":
        toks.pop()
    return toks


def wordpiece(vocab_tokens):
    """A Hugging Face BERT tokenizer over a vocabulary list (what the pith runtime reproduces)."""
    from tokenizers.implementations import BertWordPieceTokenizer

    vocab = {}
    for i, t in enumerate(vocab_tokens):
        vocab.setdefault(t, i)
    return BertWordPieceTokenizer(vocab, lowercase=True, strip_accents=None, clean_text=True,
                                  handle_chinese_chars=True, wordpieces_prefix="##")


class Teacher:
    """The teacher's fp32 ONNX export (inputs input_ids / attention_mask, output sentence_embedding)."""

    def __init__(self, onnx_path):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
        self.sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.dim = onnx_output_dim(self.sess)

    def embed_ids(self, seqs, batch=256, label=""):
        """Pooled, normalised teacher embeddings of id sequences (each with [CLS] .. [SEP])."""
        out = np.zeros((len(seqs), self.dim), np.float32)
        # Sorting by length keeps padding (and time) small; results go back to input order.
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            t = max(len(seqs[i]) for i in idx)
            ids = np.zeros((len(idx), t), np.int64)
            mask = np.zeros((len(idx), t), np.int64)
            for r, i in enumerate(idx):
                ids[r, :len(seqs[i])] = seqs[i]
                mask[r, :len(seqs[i])] = 1
            e = self.sess.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0]
            out[idx] = e
            if label and (s // batch) % 20 == 0:
                print(f"  {label}: {s + len(idx)}/{len(seqs)}", file=sys.stderr, flush=True)
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(n, 1e-12)


def cached(path, fn):
    if os.path.exists(path):
        return np.load(path)
    v = fn()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, v)
    return v


# ---------------------------------------------------------------------------------------------
# Static model


def is_fallback_char(tok):
    """Single characters (plain or ``##``) that are always kept: Latin script, punctuation,
    symbols and digits below U+0250, plus general punctuation and currency signs."""
    c = tok[2:] if tok.startswith("##") else tok
    if len(c) != 1:
        return False
    o = ord(c)
    return o < 0x250 or 0x2000 <= o < 0x20D0


def select_vocab(tokens, freq, budget_bytes, dim):
    """Chooses ids to keep (in teacher id order) so the package fits ``budget_bytes``."""
    keep = set()
    for i, t in enumerate(tokens):
        if t in SPECIALS or is_fallback_char(t):
            keep.add(i)
    used = FIXED_OVERHEAD + sum(dim + PER_TOKEN_OVERHEAD + len(tokens[i].encode()) for i in keep)
    # Then by frequency; ties (mostly zero frequency) are broken by id for determinism.
    for i in sorted(range(len(tokens)), key=lambda i: (-freq[i], i)):
        if i in keep or tokens[i].startswith("[unused") or freq[i] <= 0:
            continue
        cost = dim + PER_TOKEN_OVERHEAD + len(tokens[i].encode())
        if used + cost > budget_bytes:
            continue  # a shorter, rarer token may still fit
        keep.add(i)
        used += cost
    return sorted(keep), used


def pca(x, dim, weights=None):
    """Principal axes of the rows of ``x`` (weighted mean and covariance), deterministic signs."""
    w = np.ones(len(x)) if weights is None else weights
    w = w / w.sum()
    mu = (w[:, None] * x).sum(0)
    xc = x - mu
    cov = (xc * w[:, None]).T @ xc
    vals, vecs = np.linalg.eigh(cov.astype(np.float64))
    order = np.argsort(vals)[::-1][:dim]
    vecs = vecs[:, order]
    # Fix each axis' sign so its largest-magnitude component is positive: same output every run.
    signs = np.sign(vecs[np.abs(vecs).argmax(0), np.arange(vecs.shape[1])])
    return mu, vecs * signs, vals[order]


def bags(texts_ids, n):
    """Each text as (unique ids, share of the text's tokens): one row of the bag-of-ids matrix."""
    out = []
    for ids in texts_ids:
        u, c = np.unique(np.asarray(ids, np.int64), return_counts=True)
        out.append((u, c / max(1, c.sum())))
    return out


def ridge_refine(bag, targets, weights, table, lam):
    """argmin_E sum_r w_r |bag_r E - t_r|^2 + lam |E - table|^2, built sparsely (texts touch few ids)."""
    v = table.shape[0]
    lhs = np.zeros(v * v)
    rhs = lam * table.astype(np.float64)
    for (u, a), t, w in zip(bag, targets, weights):
        if len(u) == 0:
            continue
        np.add.at(lhs, (u[:, None] * v + u[None, :]).ravel(), (w * np.outer(a, a)).ravel())
        rhs[u] += (w * a)[:, None] * t[None, :]
    lhs = lhs.reshape(v, v)
    lhs[np.diag_indices(v)] += lam
    return np.linalg.solve(lhs, rhs)


def embed_static(table, tok, texts):
    out = np.zeros((len(texts), table.shape[1]), np.float32)
    for r, enc in enumerate(tok.encode_batch(texts)):
        ids = enc.ids
        out[r] = table[ids].sum(0)  # [CLS]/[SEP]/[PAD] rows are zero
    n = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(n, 1e-12)


def spearman(a, b):
    def rank(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        # average ranks of ties
        xs = np.asarray(x)[order]
        i = 0
        while i < len(xs):
            j = i
            while j + 1 < len(xs) and xs[j + 1] == xs[i]:
                j += 1
            if j > i:
                r[order[i:j + 1]] = (i + j) / 2.0
            i = j + 1
        return r

    ra, rb = rank(a), rank(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--teacher", default=os.path.join(ROOT, "models/cache/all-MiniLM-L6-v2"))
    p.add_argument("--onnx", default=os.path.join(ROOT, "models/minilm-l6.fp32.onnx"),
                   help="teacher fp32 ONNX (pith export TEACHER -o FILE)")
    p.add_argument("--wordfreq", required=True,
                   help="wordfreq 3.1.1 wheel (pip download --no-deps wordfreq==3.1.1)")
    p.add_argument("--corpus", default=os.path.join(ROOT, "data/calib/snli-dev-sentences.txt"))
    p.add_argument("--corpus-train", type=int, default=10000,
                   help="corpus lines used for frequencies/refinement; the rest are the dev check")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--budget", type=int, default=512 * 1024, help="package bytes")
    p.add_argument("--sif", type=float, default=0.0, help="SIF weight a / (a + p) (0: none)")
    p.add_argument("--refine", type=float, default=0.1,
                   help="ridge strength pulling towards the distilled table (0: no refinement)")
    p.add_argument("--refine-words", type=int, default=30000)
    p.add_argument("--wordnet", default=None,
                   help="WordNet dict folder (apt-get download wordnet-base; dpkg-deb -x): its "
                        "glosses and examples join the refinement texts")
    p.add_argument("--wordnet-texts", type=int, default=40000)
    p.add_argument("--extra-texts", default=None,
                   help="one more group of refinement texts, one a line (e.g. the Tier M corpus, "
                        "tools/train/corpus.py)")
    p.add_argument("--extra-emb", default=None,
                   help="the teacher's embeddings of --extra-texts as raw little-endian f32 rows "
                        "(pith embed --file TEXTS --out F)")
    p.add_argument("--pca", choices=("tokens", "texts"), default="tokens",
                   help="fit the PCA on the token vectors, or on the refinement texts' teacher "
                        "embeddings (the space sentences live in)")
    p.add_argument("--targets", choices=("match", "unit"), default="match",
                   help="refinement targets: scaled to each text's current norm, or unit length")
    p.add_argument("--cache", default=os.path.join(ROOT, "models/cache/tier-s"))
    p.add_argument("--out", default=None, help="checkpoint folder to write")
    p.add_argument("--sick", default=None, help="report float SICK Spearman (evaluation only)")
    args = p.parse_args()

    tokens = read_vocab(os.path.join(args.teacher, "vocab.txt"))
    n = len(tokens)
    full_tok = wordpiece(tokens)
    full_tok.no_padding()
    full_tok.no_truncation()

    # 1. Frequencies.
    words = wordfreq_words(args.wordfreq, 1e-8)
    with open(args.corpus, encoding="utf-8") as f:
        lines = [l.strip() for l in f if l.strip()]
    train_lines, dev_lines = lines[:args.corpus_train], lines[args.corpus_train:]
    p_wf = np.zeros(n)
    for (w, fw), enc in zip(words, full_tok.encode_batch([w for w, _ in words], add_special_tokens=False)):
        for i in enc.ids:
            p_wf[i] += fw
    p_wf /= p_wf.sum()
    p_corpus = np.zeros(n)
    for enc in full_tok.encode_batch(train_lines, add_special_tokens=False):
        for i in enc.ids:
            p_corpus[i] += 1
    p_corpus /= p_corpus.sum()
    # Mostly the general-English list; the corpus adds the everyday vocabulary of short sentences.
    freq = 0.7 * p_wf + 0.3 * p_corpus
    print(f"frequencies: {len(words)} wordfreq words, {len(train_lines)} corpus lines", file=sys.stderr)

    # 2. Teacher token vectors.
    cls_id, sep_id = tokens.index("[CLS]"), tokens.index("[SEP]")
    teacher = None

    def get_teacher():
        nonlocal teacher
        if teacher is None:
            teacher = Teacher(args.onnx)
        return teacher

    tok_vecs = cached(os.path.join(args.cache, "teacher_tokens.npy"),
                      lambda: get_teacher().embed_ids([[cls_id, i, sep_id] for i in range(n)], 1024, "tokens"))

    # 3. Vocabulary.
    keep, used = select_vocab(tokens, freq, args.budget, args.dim)
    kept_tokens = [tokens[i] for i in keep]
    v = len(keep)
    print(f"vocabulary: {v} tokens, ~{used} package bytes", file=sys.stderr)

    # 4. PCA (fitted with frequency weights, so frequent tokens' directions dominate) + SIF.
    x = tok_vecs[keep].astype(np.float64)
    f_kept = freq[keep]
    mu, axes, _ = pca(x, args.dim, weights=f_kept + 1e-7)
    table = (x - mu) @ axes
    sif = args.sif / (args.sif + f_kept) if args.sif > 0 else np.ones(v)
    table = table * sif[:, None]
    for s in ("[CLS]", "[SEP]", "[PAD]"):
        table[kept_tokens.index(s)] = 0.0

    small_tok = wordpiece(kept_tokens)
    small_tok.no_padding()
    small_tok.enable_truncation(256)

    # 5. Refinement: mean of token rows ≈ teacher embedding (projected by the same PCA) for
    # frequent words and corpus sentences; ridge towards the distilled table keeps rare tokens.
    if args.refine > 0:
        ws = [w for w, _ in words[:args.refine_words]]
        w_ids = [e.ids for e in full_tok.encode_batch(ws)]
        s_ids = [e.ids for e in full_tok.encode_batch(train_lines)]
        t_words = cached(os.path.join(args.cache, f"teacher_words{args.refine_words}.npy"),
                         lambda: get_teacher().embed_ids(w_ids, 512, "words"))
        t_sents = cached(os.path.join(args.cache, f"teacher_sents{len(train_lines)}.npy"),
                         lambda: get_teacher().embed_ids(s_ids, 128, "sentences"))
        wn = wordnet_texts(args.wordnet, args.wordnet_texts) if args.wordnet else []
        wn_ids = [e.ids for e in full_tok.encode_batch(wn)]
        t_wn = cached(os.path.join(args.cache, f"teacher_wordnet{len(wn)}.npy"),
                      lambda: get_teacher().embed_ids(wn_ids, 128, "wordnet")) if wn else np.zeros((0, get_teacher().dim))
        extra, t_extra = [], np.zeros((0, get_teacher().dim))
        if args.extra_texts:
            with open(args.extra_texts, encoding="utf-8") as f:
                extra = [l.strip() for l in f if l.strip()]
            t_extra = np.fromfile(args.extra_emb, "<f4").reshape(len(extra), -1).astype(np.float64)
            t_extra /= np.maximum(np.linalg.norm(t_extra, axis=1, keepdims=True), 1e-12)
        texts = ws + train_lines + wn + extra
        targets = np.concatenate([t_words, t_sents, t_wn, t_extra]).astype(np.float64)
        # Words weigh by (dampened) frequency; each group of texts (words, corpus sentences,
        # WordNet glosses) weighs as much in total as each other.
        ww = np.array([f for _, f in words[:args.refine_words]]) ** 0.5
        ww = ww / ww.sum()
        sw = np.full(len(train_lines), 1.0 / len(train_lines))
        gw = np.full(len(wn), 1.0 / max(1, len(wn)))
        xw = np.full(len(extra), 1.0 / max(1, len(extra)))
        rw = np.concatenate([ww, sw, gw, xw])
        rw = rw * (len(rw) / rw.sum())
        if args.pca == "texts":
            mu, axes, _ = pca(targets, args.dim, weights=rw)
            table = ((x - mu) @ axes) * sif[:, None]
            for s in ("[CLS]", "[SEP]", "[PAD]"):
                table[kept_tokens.index(s)] = 0.0
        targets = (targets - mu) @ axes
        skip = {kept_tokens.index(t) for t in ("[CLS]", "[SEP]")}
        bag = bags([[i for i in e.ids if i not in skip] for e in small_tok.encode_batch(texts)], v)
        if args.targets == "match":
            # Each text's target is scaled to the norm its current static embedding has, so the
            # regression fits directions (cosine is all that is used) and leaves magnitudes alone.
            cur = np.stack([(a[:, None] * table[u]).sum(0) for u, a in bag])
            scale = np.linalg.norm(cur, axis=1) / np.maximum(np.linalg.norm(targets, axis=1), 1e-12)
        else:
            scale = 1.0 / np.maximum(np.linalg.norm(targets, axis=1), 1e-12)
        targets *= scale[:, None]
        # lam is relative: per id, the data term's typical diagonal weight.
        diag = np.zeros(v)
        for (u, a), w in zip(bag, rw):
            diag[u] += w * a * a
        refined = ridge_refine(bag, targets, rw, table, args.refine * float(np.mean(diag)))
        for s in ("[CLS]", "[SEP]", "[PAD]"):
            refined[kept_tokens.index(s)] = 0.0
        table = refined

    table = table.astype(np.float32)

    # Dev check on held-out corpus pairs (consecutive SNLI lines share a premise): Spearman of
    # the static model's cosines against the teacher's.
    dev_a, dev_b = dev_lines[:-1], dev_lines[1:]
    dev_ids = [e.ids for e in full_tok.encode_batch(dev_lines)]
    t_dev = cached(os.path.join(args.cache, f"teacher_dev{len(dev_lines)}.npy"),
                   lambda: get_teacher().embed_ids(dev_ids, 128, "dev"))
    t_cos = np.einsum("ij,ij->i", t_dev[:-1], t_dev[1:])
    s_dev = embed_static(table, small_tok, dev_lines)
    s_cos = np.einsum("ij,ij->i", s_dev[:-1], s_dev[1:])
    dev = spearman(t_cos, s_cos) * 100
    result = {"dim": args.dim, "vocab": v, "params": v * args.dim, "sif": args.sif,
              "refine": args.refine, "dev_teacher_agreement": round(dev, 2)}
    if args.sick:
        gold, sa, sb = [], [], []
        with open(args.sick, encoding="utf-8") as f:
            for line in f:
                c = line.rstrip("\n").split("\t")
                if len(c) == 3:
                    gold.append(float(c[0]))
                    sa.append(c[1])
                    sb.append(c[2])
        ea, eb = embed_static(table, small_tok, sa), embed_static(table, small_tok, sb)
        result["sick_float"] = round(spearman(gold, np.einsum("ij,ij->i", ea, eb)) * 100, 2)
    print(json.dumps(result))

    if args.out:
        from safetensors.numpy import save_file

        os.makedirs(args.out, exist_ok=True)
        save_file({"embeddings": table.astype(np.float16)}, os.path.join(args.out, "embeddings.safetensors"))
        with open(os.path.join(args.out, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(kept_tokens) + "\n")
        cfg = {
            "arch": "static",
            "name": f"pith-tier-s-{args.dim}x{v}",
            "teacher": "sentence-transformers/all-MiniLM-L6-v2",
            "dim": args.dim,
            "vocab_size": v,
            "pooling": "mean",
            "normalize": True,
            "tokenizer": {"lowercase": True, "strip_accents": True, "split_cjk": True,
                          "cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]",
                          "pad_token": "[PAD]", "max_len": 256, "max_chars_per_word": 100},
            "distillation": {k: val for k, val in vars(args).items()
                             if k in ("dim", "budget", "sif", "refine", "refine_words", "corpus_train",
                                      "wordnet_texts")},
            "extra_texts": len(extra) if args.refine > 0 else 0,
        }
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
