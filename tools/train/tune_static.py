#!/usr/bin/env python3
"""Tunes a Tier S static table (tools/train/distill_static.py's output) by gradient descent on
the objective STS actually measures: cosines between sentences.

distill_static.py fits each text's pooled vector to the teacher's embedding of it (a ridge
regression: exact, but on absolute vectors, one text at a time). Here the table is trained so
that the *cosine matrix* of a batch of texts matches the teacher's, with whole groups of close
sentences (tools/train/augment.py: a sentence and its negated, shortened, reworded variants) in
every batch, the same loss as the Tier M student's. A pull towards the starting table keeps rare
tokens where the ridge put them.

Inputs: the Tier M corpus and its teacher embeddings, the augmented groups and theirs (see
models/tier-m.md); PyTorch (training only). Output: a checkpoint folder in the same layout
(`pith quantize DIR` reads it). Dev checks as in distill_static.py (held-out SNLI consecutive
pairs vs the fp32 teacher) plus the close-pair check on the held-out SNLI lines' variants. SICK is
never read here.
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file, save_file

from common import HERE, ROOT  # noqa: E402  (the script's own folder is on sys.path)
sys.path.insert(0, HERE)
from distill_static import read_vocab, spearman, wordpiece  # noqa: E402
from corpus import SNLI, SNLI_TRAIN_LINES  # noqa: E402
from distill_tier_m import close_pairs, fill_with_groups, read_groups, read_rows, within_group_mse  # noqa: E402


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def bag_inputs(seqs, idx):
    flat, offsets = [], []
    for i in idx:
        offsets.append(len(flat))
        flat.extend(seqs[i])
    return torch.tensor(flat, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", default=os.path.join(ROOT, "models", "tier-s"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "models", "cache", "tier-m", "corpus.txt"))
    ap.add_argument("--teacher-emb", default=os.path.join(ROOT, "models", "cache", "tier-m", "teacher-int8.f32"))
    ap.add_argument("--aug", default=os.path.join(ROOT, "models", "cache", "tier-m", "aug.txt"))
    ap.add_argument("--aug-emb", default=os.path.join(ROOT, "models", "cache", "tier-m", "aug-teacher-int8.f32"))
    ap.add_argument("--dev-teacher", default=os.path.join(ROOT, "models", "cache", "tier-s", "teacher_dev3087.npy"),
                    help="fp32 teacher embeddings of the held-out SNLI lines (distill_static.py's cache)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--group-share", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--lr", type=float, default=0.02, help="Adam step, relative to the table's RMS value")
    ap.add_argument("--pull", type=float, default=1e-3, help="weight of the squared distance to the start table")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    cfg = json.load(open(os.path.join(args.init, "config.json")))
    vocab = read_vocab(os.path.join(args.init, "vocab.txt"))
    table0 = load_file(os.path.join(args.init, "embeddings.safetensors"))["embeddings"].astype(np.float32)
    tok = wordpiece(vocab)
    drop = {vocab.index(t) for t in ("[CLS]", "[SEP]", "[PAD]")}  # zero rows: pooled as nothing
    max_len = cfg["tokenizer"]["max_len"] - 2

    def encode(texts):
        return [[i for i in e.ids if i not in drop][:max_len] or [vocab.index("[UNK]")]
                for e in tok.encode_batch(texts)]

    with open(args.corpus, encoding="utf-8") as f:
        corpus = [l.rstrip("\n") for l in f if l.strip()]
    seqs = encode(corpus)
    target = read_rows(args.teacher_emb, len(corpus))
    a_texts, a_emb, train_groups, dev_groups = read_groups(args.aug, args.aug_emb)
    n = len(seqs)
    seqs += encode(a_texts)
    target = torch.from_numpy(np.concatenate([target, a_emb]).astype(np.float32))
    train_groups = [np.array(g) + n for g in train_groups]
    log(f"{n} corpus texts, {len(a_texts)} augmented in {len(train_groups)} train groups")

    with open(SNLI, encoding="utf-8") as f:
        dev = [l.strip() for l in f][SNLI_TRAIN_LINES:]
    dev_seqs = encode(dev)
    t_dev = np.load(args.dev_teacher).astype(np.float32)
    t_cos = (t_dev[:-1] * t_dev[1:]).sum(1)
    dev_lines, close, close_t = close_pairs(dev_groups, a_emb)
    close_seqs = [seqs[n + i] for i in dev_lines]

    start = torch.from_numpy(table0)
    bag = torch.nn.EmbeddingBag.from_pretrained(start.clone(), freeze=False, mode="sum")

    @torch.no_grad()
    def embed(s):
        return F.normalize(bag(*bag_inputs(s, range(len(s)))), dim=-1).numpy()

    def check(step):
        e = embed(dev_seqs)
        c = embed(close_seqs)
        return {"step": step, "dev_agreement": 100 * spearman((e[:-1] * e[1:]).sum(1), t_cos),
                "close_agreement": 100 * spearman((c[close[0]] * c[close[1]]).sum(1), close_t)}

    history = [check(0)]
    log(history[-1])
    rms = float(start.pow(2).mean().sqrt())
    opt = torch.optim.Adam(bag.parameters(), lr=args.lr * rms)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * max(0.0, 1 - s / args.steps))
    n_rand = args.batch - int(round(args.group_share * args.batch))
    run = []
    for step in range(1, args.steps + 1):
        idx, gid = fill_with_groups(rng.integers(n, size=n_rand), train_groups, args.batch, rng)
        e = F.normalize(bag(*bag_inputs(seqs, idx)), dim=-1)
        t = target[idx]
        se, te = e @ e.T, t @ t.T
        rel = F.mse_loss(se, te)
        grp = within_group_mse(se, te, gid)
        pull = (bag.weight - start).pow(2).sum(1).mean() / (rms * rms * start.shape[1])
        loss = 10 * rel + 10 * grp + args.pull * pull
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            bag.weight[list(drop)] = 0.0
        run.append((rel.item(), grp.item(), pull.item()))
        if step % 500 == 0 or step == args.steps:
            r = np.mean(run, 0)
            run = []
            history.append({**check(step), "rel_loss": float(r[0]), "group_loss": float(r[1]), "pull": float(r[2])})
            log(history[-1])

    table = bag.weight.detach().numpy().astype(np.float16)
    os.makedirs(args.out, exist_ok=True)
    save_file({"embeddings": table}, os.path.join(args.out, "embeddings.safetensors"))
    shutil.copy(os.path.join(args.init, "vocab.txt"), args.out)
    cfg["name"] = cfg["name"] + "-tuned"
    cfg["cosine_tune"] = {"args": {k: v for k, v in vars(args).items() if k in
                                   ("batch", "group_share", "steps", "lr", "pull", "seed", "threads")},
                          "corpus_texts": n, "augmented_texts": len(a_texts), "torch": torch.__version__,
                          "history": history}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
