#!/usr/bin/env python3
"""Trains the reasoner: a small post-LayerNorm transformer (the runtime's BERT layer) over the last
<= 8 turn embeddings of a conversation that predicts the embedding of the next turn.

Layout of one window (latest turn first, so the read-out is row 0, like CLS pooling):
  x_i = LN_emb(LN_in(e_i) + pos_i)        e_i: the encoder's embedding of turn t-1-i
  2 BERT layers (post-LN, GELU FFN), bidirectional attention over the window (every row is context:
  the whole window lies before the predicted turn, so no causal mask is needed)
  prediction = W_out h_0 + b_out          ranked by cosine against candidate turn embeddings

Losses: --loss infonce (in-batch softmax over the batch's next-turn embeddings, temperature --tau)
or --loss mse (the LCM recipe: MSE between the raw prediction and the unit-length target).

Input: JSONL conversations and the raw little-endian f32 rows that `pith embed --file` wrote for
their turns, in order (one row per turn). Output dir: model.safetensors (fp32) + reasoner.json.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

WINDOW = 8


def load(jsonl, emb, dim):
    convs = [json.loads(l)["turns"] for l in open(jsonl, encoding="utf-8")]
    e = np.fromfile(emb, dtype="<f4").reshape(-1, dim)
    n = sum(len(c) for c in convs)
    assert e.shape[0] == n, f"{emb}: {e.shape[0]} rows for {n} turns"
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    starts = np.cumsum([0] + [len(c) for c in convs])
    return convs, e.astype(np.float32), starts


def windows(convs, starts):
    """(context rows latest first, padded with -1; target row) for every position t >= 1."""
    ctx, tgt = [], []
    for c, s in zip(convs, starts):
        for t in range(1, len(c)):
            rows = [s + t - 1 - i for i in range(min(WINDOW, t))]
            ctx.append(rows + [-1] * (WINDOW - len(rows)))
            tgt.append(s + t)
    return np.array(ctx, dtype=np.int64), np.array(tgt, dtype=np.int64)


class Layer(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1 = nn.LayerNorm(d, eps=1e-12)
        self.up, self.down = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x, mask):
        b, n, d = x.shape
        h, dh = self.heads, d // self.heads
        q = self.q(x).view(b, n, h, dh).transpose(1, 2)
        k = self.k(x).view(b, n, h, dh).transpose(1, 2)
        v = self.v(x).view(b, n, h, dh).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(dh)
        s = s.masked_fill(~mask[:, None, None, :], -1e9)
        c = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = self.ln1(x + self.o(c))
        return self.ln2(x + self.down(F.gelu(self.up(x))))


class Reasoner(nn.Module):
    def __init__(self, dim, d=128, layers=2, heads=4, ffn=256):
        super().__init__()
        assert dim == d, "the window rows enter at the encoder's width"
        self.ln_in = nn.LayerNorm(d, eps=1e-12)
        self.pos = nn.Parameter(torch.randn(WINDOW, d) * 0.02)
        self.ln_emb = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(Layer(d, heads, ffn) for _ in range(layers))
        self.out = nn.Linear(d, d)

    def forward(self, e, mask):
        x = self.ln_emb(self.ln_in(e) + self.pos[None, : e.shape[1]])
        for l in self.layers:
            x = l(x, mask)
        return self.out(x[:, 0])


def batch_of(E, ctx, tgt, idx):
    c = ctx[idx]
    mask = c >= 0
    e = E[np.where(mask, c, 0)] * mask[..., None]
    return torch.from_numpy(e), torch.from_numpy(mask), torch.from_numpy(E[tgt[idx]])


def top1_of_100(model, E, ctx, tgt, seed=0, limit=4000):
    """Dev check: the eval protocol on the first `limit` positions (candidates from the same file)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(min(limit, len(tgt)))
    with torch.no_grad():
        e, m, _ = batch_of(E, ctx, tgt, idx)
        p = F.normalize(model(e, m), dim=-1).numpy()
    hits = 0
    for i, pi in enumerate(p):
        others = rng.integers(0, len(E) - 1, 99)  # a dev check: rare repeats are harmless
        others = others + (others >= tgt[i])
        cand = np.concatenate([[tgt[i]], others])
        s = E[cand] @ pi
        hits += int(np.all(s[0] > s[1:]))
    return 100.0 * hits / len(idx)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default="data/chitchat/train.jsonl")
    ap.add_argument("--train-emb", required=True)
    ap.add_argument("--dev", default="data/chitchat/dev.jsonl")
    ap.add_argument("--dev-emb", required=True)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--loss", choices=["infonce", "mse"], default="infonce")
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=500, help="dev check and checkpoint interval")
    ap.add_argument("--out", required=True)
    ap.add_argument("--reference-only", action="store_true",
                    help="only (re)write the tract reference of the checkpoint in --out")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    convs, E, starts = load(a.train, a.train_emb, a.dim)
    ctx, tgt = windows(convs, starts)
    dconvs, dE, dstarts = load(a.dev, a.dev_emb, a.dim)
    dctx, dtgt = windows(dconvs, dstarts)
    model = Reasoner(a.dim)
    if a.reference_only:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(os.path.join(a.out, "model.safetensors")))
        model.eval()
        path = os.path.join(a.out, "reasoner.json")
        cfg = json.load(open(path))
        cfg["reference"] = reference(model, dE, dctx[5:])
        json.dump(cfg, open(path, "w"), indent=1)
        return
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(tgt)} training windows, {n_params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    warm = max(1, a.steps // 50)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (a.steps - s) / (a.steps - warm)))
    )
    os.makedirs(a.out, exist_ok=True)
    t0, log = time.time(), []
    for step in range(1, a.steps + 1):
        model.train()
        e, m, y = batch_of(E, ctx, tgt, rng.integers(0, len(tgt), a.batch))
        p = model(e, m)
        if a.loss == "infonce":
            logits = F.normalize(p, dim=-1) @ y.T / a.tau
            loss = F.cross_entropy(logits, torch.arange(len(y)))
        else:
            loss = F.mse_loss(p, y) * a.dim
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % a.every == 0 or step == a.steps:
            model.eval()
            acc = top1_of_100(model, dE, dctx, dtgt)
            log.append({"step": step, "loss": round(loss.item(), 4), "dev_top1": round(acc, 2)})
            print(f"step {step} loss {loss.item():.4f} dev top-1/100 {acc:.2f} ({time.time() - t0:.0f}s)", flush=True)
            save(model, a, n_params, log, time.time() - t0, reference(model, dE, dctx[5:]))


def reference(model, E, ctx, n=3):
    """Input and output of the float model on the first `n` dev windows: the ONNX export run by tract
    must reproduce them (tools tests)."""
    out = []
    with torch.no_grad():
        for i in range(n):
            rows = [r for r in ctx[i] if r >= 0]
            e = torch.from_numpy(E[rows][None])
            p = model(e, torch.ones(1, len(rows), dtype=torch.bool))[0]
            out.append({"window": E[rows].tolist(), "prediction": p.tolist()})
    return out


def save(model, a, n_params, log, secs, ref):
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(a.out, "model.safetensors"))
    cfg = {
        "kind": "pith-reasoner",
        "dim": a.dim, "hidden": 128, "layers": 2, "heads": 4, "ffn": 256, "window": WINDOW,
        "layer_norm_eps": 1e-12, "gelu": "erf", "order": "latest turn first, read-out row 0",
        "train": {"loss": a.loss, "tau": a.tau, "steps": a.steps, "batch": a.batch, "lr": a.lr,
                  "seed": a.seed, "train_emb": os.path.basename(a.train_emb),
                  "parameters": n_params, "seconds": round(secs), "torch": torch.__version__,
                  "log": log},
        "reference": ref,
    }
    with open(os.path.join(a.out, "reasoner.json"), "w") as f:
        json.dump(cfg, f, indent=1)


if __name__ == "__main__":
    main()
