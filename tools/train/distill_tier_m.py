#!/usr/bin/env python3
"""Distils Tier M: a small BERT student of all-MiniLM-L6-v2 that fits a 2 MB `.pith` package.

Training only (PyTorch, CPU or CUDA); the runtime never imports torch. Stages, each cached under
``--cache`` so a run can stop and resume:

1. Corpus (tools/train/corpus.py) → teacher embeddings: the teacher's own pooled, normalised
   sentence embedding of every text (fp32, saved as fp16).
2. Vocabulary: the special tokens, the Latin-script single characters and their ``##`` forms
   (so WordPiece can always fall back on them; same rule as Tier S), then the tokens most frequent
   in the corpus under the teacher's tokenizer, up to ``--vocab``. The student tokenizes with this
   pruned vocabulary, exactly as the runtime will. ``--extend-vocab N`` appends the N tokens the
   teacher uses most on the SNLI training lines among those left out (with ``--init`` from a
   student of the base vocabulary, their rows come from a least-squares map of the teacher's).
3. Initialisation from the teacher, not at random (two CPU cores cannot train a transformer from
   scratch in a session): ``--layers`` of the teacher's six layers; in each, the ``--heads``
   heads and ``--ffn`` FFN neurons with the largest output-weight norms; the 384-wide residual
   stream projected onto its top ``--hidden`` principal axes (PCA of the teacher's hidden states
   on corpus text), so every matrix becomes ``P^T W P`` restricted to the kept rows/columns.
4. Distillation: AdamW, linear warm-up and decay; loss = MSE between the student's and the
   teacher's in-batch cosine-similarity matrices (what STS measures) + MSE between the student's
   embedding and the teacher's projected by the same PCA (anchors the geometry).
   With ``--aug`` (tools/train/augment.py: groups of a sentence and its near-duplicates, labelled
   by the teacher), ``--group-share`` of every batch is whole groups, and the MSE over the
   same-group entries of the cosine matrix is added again with ``--group-weight``: random texts
   alone never show the student the teacher's cosines between close sentences.
   ``--init DIR`` continues from a trained student instead of the teacher-derived initialisation
   (same vocabulary and PCA, checked); ``--init DIR DIR ...`` from the uniform average of their
   weights (a "model soup"; with ``--epochs 0`` the average is only dev-checked and saved).

Output: a Hugging Face-style checkpoint folder (config.json, model.safetensors in fp16,
vocab.txt, tokenizer_config.json, 1_Pooling/config.json, train.json with the losses), which
`pith quantize DIR -o PKG --max-len 64` turns into the package. Deterministic given the seed and
thread count. Dev check: Spearman of student vs teacher cosines on held-out SNLI line pairs
(never SICK).
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file
from safetensors.torch import save_file

from common import HERE, ROOT  # noqa: E402  (the script's own folder is on sys.path)
sys.path.insert(0, HERE)
from tiny_bert import Bert  # noqa: E402
from distill_static import SPECIALS, is_fallback_char, read_vocab, spearman, wordpiece  # noqa: E402
from corpus import SNLI, SNLI_TRAIN_LINES  # noqa: E402


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def batches_by_length(seqs, batch):
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for s in range(0, len(order), batch):
        yield order[s:s + batch]


def pad(seqs, idx, device="cpu"):
    t = max(len(seqs[i]) for i in idx)
    ids = torch.zeros(len(idx), t, dtype=torch.long)
    mask = torch.zeros(len(idx), t, dtype=torch.long)
    for r, i in enumerate(idx):
        ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
        mask[r, :len(seqs[i])] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def embed_all(model, seqs, batch=256, device="cpu", label=""):
    out = np.zeros((len(seqs), model.cfg["hidden_size"]), np.float32)
    for n, idx in enumerate(batches_by_length(seqs, batch)):
        ids, mask = pad(seqs, idx, device)
        out[idx] = model(ids, mask).float().cpu().numpy()
        if label and n % 100 == 0:
            log(f"{label}: {n * batch}/{len(seqs)}")
    return out


def read_rows(path, n, dim):
    """Raw little-endian f32 rows of `dim` (`pith embed --out`), normalised."""
    raw = np.fromfile(path, "<f4")
    if raw.size % dim or raw.size // dim < n:
        raise SystemExit(f"{path}: {raw.size} floats, not {n} rows of {dim}")
    e = raw.reshape(-1, dim)[:n]
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def read_groups(path, emb_path, dim):
    """--aug texts, their teacher embeddings, and the train and dev groups (lists of line numbers)."""
    with open(path, encoding="utf-8") as f:
        texts = [l.rstrip("\n") for l in f]
    with open(path + ".tsv") as f:
        meta = [l.split() for l in f if l.strip()]
    if len(meta) != len(texts):
        raise SystemExit(f"{path}: {len(texts)} lines but {len(meta)} in its .tsv")
    groups = {"train": {}, "dev": {}}
    for i, (g, split) in enumerate(meta):
        groups[split].setdefault(g, []).append(i)
    return texts, read_rows(emb_path, len(texts), dim), list(groups["train"].values()), list(groups["dev"].values())


def read_corpus_groups(path, n):
    """Groups of corpus line numbers, one group per line, tab-separated."""
    groups = []
    with open(path) as f:
        for k, line in enumerate(f, 1):
            try:
                g = np.array([int(x) for x in line.split()], dtype=np.int64)
            except ValueError:
                raise SystemExit(f"{path}:{k}: not a list of line numbers")
            if len(g) < 2 or g.min() < 0 or g.max() >= n:
                raise SystemExit(f"{path}:{k}: a group needs two or more corpus line numbers below {n}")
            groups.append(g)
    if not groups:
        raise SystemExit(f"{path}: no groups")
    return groups


def close_pairs(dev_groups, emb):
    """The close-pair dev check: the dev groups' line numbers (embed them in this order), each
    (source, variant) pair as row indices into that order, and the teacher's cosine of each pair."""
    lines = [i for g in dev_groups for i in g]
    at = {line: r for r, line in enumerate(lines)}
    pairs = (np.array([at[g[0]] for g in dev_groups for _ in g[1:]]),
             np.array([at[v] for g in dev_groups for v in g[1:]]))
    e = emb[lines]
    return lines, pairs, (e[pairs[0]] * e[pairs[1]]).sum(1)


def fill_with_groups(idx, groups, size, rng):
    """Appends whole random groups to a batch of random texts until it holds ``size`` rows; returns
    the rows and each row's group number (0: a random text, k > 0: the k-th group added)."""
    parts, gid, k = [idx], [np.zeros(len(idx), np.int64)], 0
    while sum(len(x) for x in parts) < size:
        k += 1
        g = groups[rng.integers(len(groups))]
        parts.append(g)
        gid.append(np.full(len(g), k))
    return np.concatenate(parts), np.concatenate(gid)


def within_group_mse(se, te, gid):
    """MSE between two cosine matrices over the pairs of distinct rows of the same group."""
    g = torch.from_numpy(gid).to(se.device)
    same = (g[:, None] == g[None, :]) & (g[:, None] > 0)
    same.fill_diagonal_(False)
    return ((se - te)[same] ** 2).mean()


def encode(tok, texts, max_len):
    enc = tok.encode_batch(texts)
    out = []
    for e in enc:
        ids = e.ids
        if len(ids) > max_len:
            ids = ids[:max_len - 1] + [ids[-1]]  # keep [SEP], like the runtime's truncation
        out.append(ids)
    return out


# ---------------------------------------------------------------------------------------------
# Stage 3: initialisation from the teacher


@torch.no_grad()
def init_from_teacher(teacher, keep_ids, sample_seqs, args):
    h = args.hidden
    states = []
    for idx in list(batches_by_length(sample_seqs, 256)):
        ids, mask = pad(sample_seqs, idx)
        hs = teacher.hidden_states(ids, mask)
        m = mask.bool()
        states.append(torch.cat([x[m] for x in hs]).double())
    x = torch.cat(states)
    # Uncentred second moment: LayerNorm's beta puts a constant offset on the stream, and the
    # projection must carry it too.
    cov = x.T @ x / len(x)
    vals, vecs = torch.linalg.eigh(cov)
    order = torch.argsort(vals, descending=True)[:h]
    p = vecs[:, order]
    p = p * torch.sign(p[p.abs().argmax(0), torch.arange(h)])  # deterministic signs
    p = p.float()
    log(f"PCA: top {h} axes keep {float(vals[order].sum() / vals.sum()):.3f} of the energy")

    t_layers = [int(round(v)) for v in np.linspace(0, teacher.cfg["num_hidden_layers"] - 1, args.layers)]
    s = Bert(len(keep_ids), h, args.layers, args.heads, args.ffn, args.max_pos)
    dh = teacher.cfg["hidden_size"] // teacher.cfg["num_attention_heads"]
    if h // args.heads != dh:
        raise SystemExit(f"--hidden / --heads must equal the teacher's head size {dh}")

    def ln(dst, src):
        dst.weight.copy_(torch.diagonal(p.T @ torch.diag(src.weight) @ p))
        dst.bias.copy_(src.bias @ p)

    s.word.weight.copy_(teacher.word.weight[torch.tensor(keep_ids)] @ p)
    s.pos.weight.copy_(teacher.pos.weight[:args.max_pos] @ p)
    s.typ.weight.copy_(teacher.typ.weight @ p)
    ln(s.ln, teacher.ln)
    for sl, tl_i in zip(s.layers, t_layers):
        tl = teacher.layers[tl_i]
        # Heads: the ones whose value→output path carries the most weight.
        nh = teacher.cfg["num_attention_heads"]
        score = [tl.attn_out.weight[:, k * dh:(k + 1) * dh].norm() * tl.value.weight[k * dh:(k + 1) * dh].norm()
                 for k in range(nh)]
        heads = sorted(np.argsort([-float(v) for v in score])[:args.heads].tolist())
        rows = torch.tensor([k * dh + j for k in heads for j in range(dh)])
        for name in ("query", "key", "value"):
            src, dst = getattr(tl, name), getattr(sl, name)
            dst.weight.copy_(src.weight[rows] @ p)
            dst.bias.copy_(src.bias[rows])
        sl.attn_out.weight.copy_(p.T @ tl.attn_out.weight[:, rows])
        sl.attn_out.bias.copy_(tl.attn_out.bias @ p)
        ln(sl.ln1, tl.ln1)
        neuron = tl.down.weight.norm(dim=0) * tl.up.weight.norm(dim=1)
        sel = torch.sort(torch.argsort(neuron, descending=True)[:args.ffn]).values
        sl.up.weight.copy_(tl.up.weight[sel] @ p)
        sl.up.bias.copy_(tl.up.bias[sel])
        sl.down.weight.copy_(p.T @ tl.down.weight[:, sel])
        sl.down.bias.copy_(tl.down.bias @ p)
        ln(sl.ln2, tl.ln2)
    return s, p, t_layers


def extra_tokens(t_tok, t_vocab, kept, n):
    """The `n` teacher tokens that the teacher's tokenizer uses most often on the SNLI training
    lines and the student vocabulary lacks (ties by id). The corpus-frequency vocabulary follows
    the corpus, two thirds dictionary text; everyday words of scenes ("bikes", "toddler",
    "helmets") fall outside it and cost the student two or three pieces each."""
    if n <= 0:
        return []
    with open(SNLI, encoding="utf-8") as f:
        lines = [l.strip() for l in f][:SNLI_TRAIN_LINES]
    freq = np.zeros(len(t_vocab))
    for s in encode(t_tok, lines, 128):
        np.add.at(freq, s, 1)
    out = []
    for i in np.argsort(-freq, kind="stable"):
        if len(out) >= n or freq[i] <= 0:
            break
        if int(i) not in kept and not t_vocab[i].startswith("[unused"):
            out.append(int(i))
    return out


def grow_embeddings(s_word, t_word):
    """Appends rows for the tokens a trained student lacks. The student's rows have drifted from
    their teacher-derived start (`E_t P`), so a least-squares map `W` from the teacher's rows to
    the student's, fitted on the tokens both have, places each new token where the trained
    student would expect it."""
    k = len(s_word)
    x = np.concatenate([t_word, np.ones((len(t_word), 1))], axis=1).astype(np.float64)  # with an offset
    w, *_ = np.linalg.lstsq(x[:k], s_word.astype(np.float64), rcond=None)
    return np.concatenate([s_word, (x[k:] @ w).astype(np.float32)])


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", default=os.path.join(ROOT, "models", "cache", "all-MiniLM-L6-v2"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "models", "cache", "tier-m", "corpus.txt"))
    ap.add_argument("--texts", type=int, default=0, help="use the first N corpus texts (0: all)")
    ap.add_argument("--teacher-emb", default=None,
                    help="teacher embeddings of the corpus lines as raw little-endian f32 rows, e.g. "
                         "`pith embed --file CORPUS --out F --threads 2` (the int8 teacher package, "
                         "4x faster than the fp32 teacher in torch on a CPU); default: run the fp32 "
                         "teacher here")
    ap.add_argument("--cache", default=os.path.join(ROOT, "models", "cache", "tier-m"))
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "models", "tier-m"))
    ap.add_argument("--vocab", type=int, default=7000)
    ap.add_argument("--extend-vocab", type=int, default=0,
                    help="append the N teacher tokens most used on the SNLI training lines that --vocab leaves out")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--max-pos", type=int, default=128)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--minutes", type=float, default=0, help="stop training after this long (0: no limit)")
    ap.add_argument("--steps", type=int, default=0,
                    help="cut the schedule to this many steps (0: --epochs decides). Applied at step 100, "
                         "where --minutes fits its budget, so a run recorded with --minutes is rebuilt "
                         "exactly by --steps with its recorded step count")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--anchor", type=float, default=1.0, help="weight of the PCA-target MSE term")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--teacher-only", action="store_true", help="stop after the teacher embeddings")
    ap.add_argument("--init", nargs="+", default=None,
                    help="continue from this student checkpoint folder (several: from their weight average)")
    ap.add_argument("--aug", default=None, help="augmented texts (tools/train/augment.py; AUG.tsv beside it)")
    ap.add_argument("--aug-emb", default=None, help="teacher embeddings of the --aug lines (raw f32 rows)")
    ap.add_argument("--corpus-groups", default=None,
                    help="more train groups, of corpus line numbers (tools/train/mine_groups.py)")
    ap.add_argument("--group-share", type=float, default=0.5, help="share of each batch taken by groups (--aug, --corpus-groups)")
    ap.add_argument("--group-weight", type=float, default=1.0, help="weight of the same-group cosine MSE")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    os.makedirs(args.cache, exist_ok=True)

    with open(args.corpus, encoding="utf-8") as f:
        texts = [l.rstrip("\n") for l in f if l.strip()]
    if args.texts:
        texts = texts[:args.texts]
    with open(SNLI, encoding="utf-8") as f:
        dev = [l.strip() for l in f][SNLI_TRAIN_LINES:]
    log(f"{len(texts)} training texts, {len(dev)} dev texts")

    cfg = json.load(open(os.path.join(args.teacher, "config.json")))
    teacher = Bert.from_hf(load_file(os.path.join(args.teacher, "model.safetensors")), cfg).eval()
    t_vocab = read_vocab(os.path.join(args.teacher, "vocab.txt"))
    t_tok = wordpiece(t_vocab)
    t_seqs = encode(t_tok, texts, 128)
    dev_t_seqs = encode(t_tok, dev, 128)

    # Stage 1
    tpath = os.path.join(args.cache, f"teacher_{len(texts)}.npy")
    if args.teacher_emb:
        t_emb = read_rows(args.teacher_emb, len(texts), cfg["hidden_size"])
    elif os.path.exists(tpath):
        t_emb = np.load(tpath).astype(np.float32)
    else:
        t_emb = embed_all(teacher.to(device), t_seqs, 256, device, "teacher")
        np.save(tpath, t_emb.astype(np.float16))
        teacher.cpu()
    dev_t = embed_all(teacher, dev_t_seqs)
    if args.teacher_only:
        return

    # Stage 2
    freq = np.zeros(len(t_vocab))
    for s in t_seqs:
        np.add.at(freq, s, 1)
    keep = [i for i, t in enumerate(t_vocab) if t in SPECIALS or is_fallback_char(t)]
    kept = set(keep)
    for i in np.argsort(-freq, kind="stable"):
        if len(keep) >= args.vocab or freq[i] <= 0:
            break
        if int(i) not in kept and not t_vocab[i].startswith("[unused"):
            keep.append(int(i))
            kept.add(int(i))
    keep.sort()
    base_vocab = [t_vocab[i] for i in keep]
    extra = extra_tokens(t_tok, t_vocab, kept, args.extend_vocab)
    keep = keep + extra
    s_vocab = [t_vocab[i] for i in keep]
    if extra:
        log(f"--extend-vocab: {len(extra)} tokens appended, from {' '.join(t_vocab[i] for i in extra[:12])} "
            f"to {' '.join(t_vocab[i] for i in extra[-4:])}")
    log(f"vocabulary: {len(keep)} tokens ({len([t for t in s_vocab if is_fallback_char(t)])} fallback characters)")
    s_tok = wordpiece(s_vocab)
    s_seqs = encode(s_tok, texts, args.max_len)
    dev_s_seqs = encode(s_tok, dev, args.max_len)
    unk = s_vocab.index("[UNK]")
    log(f"[UNK] share: {sum(s.count(unk) for s in s_seqs) / sum(len(s) for s in s_seqs):.5f}")

    # Stage 3
    sample = t_seqs[:2000]
    t_word = teacher.word.weight.detach().clone()
    student, p, t_layers = init_from_teacher(teacher, keep, sample, args)
    del teacher
    previous = None
    if args.init:
        weights, grow = [], []
        for d in args.init:
            i_vocab = read_vocab(os.path.join(d, "vocab.txt"))
            if i_vocab != s_vocab and not (extra and i_vocab == base_vocab):
                raise SystemExit(f"{d}: its vocabulary is not the one this corpus, --vocab and --extend-vocab give")
            grow.append(i_vocab != s_vocab)
            icfg = json.load(open(os.path.join(d, "config.json")))
            if any(icfg[k] != v for k, v in student.cfg.items() if k != "vocab_size"):
                raise SystemExit(f"{d}: shape differs from the --hidden/--layers/--heads/--ffn asked for")
            weights.append(load_file(os.path.join(d, "model.safetensors")))
        if any(grow) and not all(grow):
            raise SystemExit("--init: some folders have the extended vocabulary and some do not")
        # Several folders: their uniform weight average (checkpoints that descend from one
        # another, or from one parent, lie in one basin, and their mean often generalises better).
        avg = {k: np.mean([w[k].astype(np.float32) for w in weights], axis=0) for k in weights[0]}
        if all(grow):
            key = "embeddings.word_embeddings.weight"
            avg[key] = grow_embeddings(avg[key], t_word[torch.tensor(keep)].numpy())
            log(f"--extend-vocab: new rows mapped from the teacher's through a least-squares fit "
                f"over the {len(base_vocab)} shared tokens")
        icfg = dict(icfg, vocab_size=len(s_vocab))
        student = Bert.from_hf(avg, icfg)
        parents = [json.load(open(tj)) if os.path.exists(tj) else None
                   for tj in (os.path.join(d, "train.json") for d in args.init)]
        previous = parents[0] if len(parents) == 1 else parents
        log(f"continuing from {' + '.join(args.init)}")
    student = student.to(device)
    n = len(texts)
    train_groups, close = [], None
    if args.aug:
        a_texts, a_emb, train_groups, dev_groups = read_groups(args.aug, args.aug_emb, cfg["hidden_size"])
        a_seqs = encode(s_tok, a_texts, args.max_len)
        train_groups = [np.array(g) + n for g in train_groups]
        s_seqs = s_seqs + a_seqs
        t_emb = np.concatenate([t_emb, a_emb])
        # Close-pair dev check: each held-out SNLI line against its own variants.
        dev_lines, close, close_t = close_pairs(dev_groups, a_emb)
        close_seqs = [a_seqs[i] for i in dev_lines]
        log(f"--aug: {len(a_texts)} texts, {len(train_groups)} train groups, {len(close[0])} close dev pairs")
    if args.corpus_groups:
        mined = read_corpus_groups(args.corpus_groups, n)
        train_groups = train_groups + mined
        log(f"--corpus-groups: {len(mined)} groups of corpus texts")
    target = torch.from_numpy(np.ascontiguousarray(t_emb, dtype=np.float32))
    target_p = F.normalize(target @ p, dim=-1)
    pairs = (np.arange(0, len(dev) - 1, 2), np.arange(1, len(dev), 2))
    t_cos = (dev_t[pairs[0]] * dev_t[pairs[1]]).sum(1)

    def dev_check():
        student.eval()
        e = embed_all(student, dev_s_seqs, 256, device)
        r = {"dev_agreement": 100 * spearman((e[pairs[0]] * e[pairs[1]]).sum(1), t_cos)}
        if close is not None:
            e = embed_all(student, close_seqs, 256, device)
            r["close_agreement"] = 100 * spearman((e[close[0]] * e[close[1]]).sum(1), close_t)
        student.train()
        return r

    history = [{"step": 0, **dev_check()}]
    log(f"init: {history[0]}")

    # Stage 4
    steps_per_epoch = n // args.batch
    total = int(args.epochs * steps_per_epoch)
    warm = max(1, total // 50)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.01)
    n_rand = args.batch - int(round(args.group_share * args.batch)) if train_groups else args.batch
    # With --minutes, the schedule is fitted to the time budget after 100 steps (the learning
    # rate then still decays to zero at the end, instead of being cut off mid-schedule).
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1.0 - s / max(total, 1)))
    rng = np.random.default_rng(args.seed)
    # Batches of similar length (bucketed shuffle): less padding, 2-3x faster on a CPU.
    lengths = np.array([len(s) for s in s_seqs])
    step, t0, run = 0, time.time(), []
    stopped_early = False
    while step < total:
        perm = rng.permutation(n)
        chunks = [perm[i:i + n_rand * 50] for i in range(0, n, n_rand * 50)]
        order = []
        for c in chunks:
            c = c[np.argsort(lengths[c], kind="stable")]
            order.extend(c[i:i + n_rand] for i in range(0, len(c) - n_rand + 1, n_rand))
        rng.shuffle(order)
        for idx in order:
            if step >= total:
                break
            if train_groups:
                idx, gid = fill_with_groups(idx, train_groups, args.batch, rng)
            ids, mask = pad(s_seqs, idx, device)
            e = student(ids, mask)
            t = target[idx].to(device)
            se, te = e @ e.T, t @ t.T
            rel = F.mse_loss(se, te)
            anc = F.mse_loss(e, target_p[idx].to(device)) * e.shape[1]
            loss = rel * 10.0 + args.anchor * anc
            if train_groups:
                grp = within_group_mse(se, te, gid)
                loss = loss + args.group_weight * 10.0 * grp
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            run.append((rel.item(), anc.item(), grp.item() if train_groups else 0.0))
            if step % 200 == 0:
                r = np.mean(run, 0)
                run = []
                log(f"step {step}/{total} rel {r[0]:.5f} anchor {r[1]:.4f} group {r[2]:.5f} lr {sched.get_last_lr()[0]:.2e} "
                    f"{(time.time() - t0) / step:.3f} s/step")
                if step % 2000 == 0:
                    history.append({"step": step, "rel_loss": float(r[0]), "anchor_loss": float(r[1]),
                                    "group_loss": float(r[2]),
                                    **dev_check()})
                    log(f"dev check {history[-1]}")
            if (args.minutes or args.steps) and step == 100:
                fit = args.steps or int(args.minutes * 60 / ((time.time() - t0) / step))
                if fit < total:
                    log(f"schedule cut: {fit} steps of {total} ({fit / steps_per_epoch:.2f} epochs)")
                    total = fit
                    stopped_early = True
    history.append({"step": step, **dev_check()})
    log(f"done: {step} steps, {history[-1]}")

    # Output
    os.makedirs(args.out, exist_ok=True)
    sd = {k: v.cpu().half() for k, v in student.state_dict_hf().items()}
    save_file(sd, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    config = dict(cfg)
    config.update(student.cpu().cfg)
    config.update({"_name_or_path": "pith-tier-m", "architectures": ["BertModel"], "type_vocab_size": 2})
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(s_vocab) + "\n")
    shutil.copy(os.path.join(args.teacher, "tokenizer_config.json"), args.out)
    os.makedirs(os.path.join(args.out, "1_Pooling"), exist_ok=True)
    shutil.copy(os.path.join(args.teacher, "1_Pooling", "config.json"), os.path.join(args.out, "1_Pooling"))
    with open(os.path.join(args.out, "train.json"), "w") as f:
        json.dump({"teacher": "sentence-transformers/all-MiniLM-L6-v2", "teacher_layers": t_layers,
                   "texts": len(texts), "steps": step, "epochs": round(step * n_rand / n, 3),  # passes over the corpus
                   "schedule_fitted_to_time_budget": stopped_early,
                   "args": {k: v for k, v in vars(args).items() if k not in ("teacher", "corpus", "cache", "out")},
                   "device": device, "torch": torch.__version__, "history": history,
                   "continued_from": previous}, f, indent=2)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
