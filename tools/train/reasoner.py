#!/usr/bin/env python3
"""Trains the reasoner: a small post-LayerNorm transformer (the runtime's BERT layer) over the last
<= 8 turn embeddings of a conversation that predicts the embedding of the next turn.

Layout of one window (latest turn first, so the read-out is row 0, like CLS pooling):
  x_i = LN_emb(LN_in(e_i) + pos_i)        e_i: the encoder's embedding of turn t-1-i
  2 BERT layers (post-LN, GELU FFN), bidirectional attention over the window (every row is context:
  the whole window lies before the predicted turn, so no causal mask is needed)
  prediction = W_out h_0 + b_out + beta * e_0     ranked by cosine against candidate turn embeddings

The last term (--residual BETA, 0 turns it off) makes the prediction a correction of the latest
turn: with W_out and b_out initialised at zero, training starts exactly at the encoder's last-turn
cosine (the strongest simple baseline) and only moves away from it where the data says so; the
network also decides per context how far to move (the size of its correction against beta).

Losses: --loss infonce (softmax over the batch's next-turn embeddings plus --negatives random turns
of the training part, temperature --tau; the response side is the frozen encoder's vectors, so the
extra negatives cost one matrix product), --loss mse (the LCM recipe: MSE between the raw prediction
and the unit-length target) or --loss mse-norm (MSE between the unit-length prediction and target,
plus the InfoNCE term weighted by --mse-contrast).

Trust: the correction is only as good as the conversation is like the training conversations, so
the checkpoint carries --prototypes distinct training turns (seeded) and a ramp calibrated on dev
alone: trust = clamp((s - low) / (high - low), 0, 1), s the latest turn's largest cosine to a
prototype, low and high dev's 2nd and 20th percentiles of s. The engines scale the correction by
the trust, so a latest turn unlike any training turn gets the encoder's plain last-turn cosine.

Checkpoints: every --every steps the model, optimizer, schedule and generator state go to
OUT/train-state.pt; --resume continues from it to the same weights an uninterrupted run reaches.

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
    def __init__(self, d, heads, ffn, dropout=0.0):
        super().__init__()
        self.heads, self.p = heads, dropout
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
        a = F.dropout(s.softmax(-1), self.p, self.training)
        c = (a @ v).transpose(1, 2).reshape(b, n, d)
        x = self.ln1(x + F.dropout(self.o(c), self.p, self.training))
        return self.ln2(x + F.dropout(self.down(F.gelu(self.up(x))), self.p, self.training))


class Reasoner(nn.Module):
    def __init__(self, dim, layers=2, heads=4, ffn=256, residual=0.0, dropout=0.0):
        super().__init__()
        d = dim  # the window rows enter at the encoder's width
        self.residual = residual
        self.ln_in = nn.LayerNorm(d, eps=1e-12)
        self.pos = nn.Parameter(torch.randn(WINDOW, d) * 0.02)
        self.ln_emb = nn.LayerNorm(d, eps=1e-12)
        self.p = dropout
        self.layers = nn.ModuleList(Layer(d, heads, ffn, dropout) for _ in range(layers))
        self.out = nn.Linear(d, d)
        if residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, e, mask):
        x = self.ln_emb(self.ln_in(e) + self.pos[None, : e.shape[1]])
        x = F.dropout(x, self.p, self.training)
        for l in self.layers:
            x = l(x, mask)
        y = self.out(x[:, 0])
        if self.residual:
            y = y + self.residual * F.normalize(e[:, 0], dim=-1)
        return y


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
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=256)
    ap.add_argument("--residual", type=float, default=1.0,
                    help="beta of the latest-turn residual (0: the plain read-out)")
    ap.add_argument("--loss", choices=["infonce", "mse", "mse-norm"], default="infonce")
    ap.add_argument("--mse-contrast", type=float, default=0.0,
                    help="weight of the InfoNCE term added to --loss mse-norm")
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--negatives", type=int, default=0,
                    help="random training turns added to the in-batch negatives")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="dropout on attention probabilities and the layers' branches (training only)")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=500, help="dev check and checkpoint interval")
    ap.add_argument("--prototypes", type=int, default=1024,
                    help="distinct training turns the trust gate compares the latest turn with (0: none)")
    ap.add_argument("--encoder", default=None,
                    help="the encoder package the turn vectors came from (recorded in reasoner.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/train-state.pt")
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
    model = Reasoner(a.dim, a.layers, a.heads, a.ffn, a.residual, a.dropout)
    if a.reference_only:
        # Re-derive what a checkpoint carries besides its weights (the trust gate and the tract
        # reference) with this script's current rules, keeping the training record.
        from safetensors.torch import load_file
        sd = load_file(os.path.join(a.out, "model.safetensors"))
        sd.pop("trust.prototypes", None)
        model.load_state_dict(sd)
        model.eval()
        cfg = json.load(open(os.path.join(a.out, "reasoner.json")))
        t = cfg["train"]
        trust = trust_of(E, convs, dE, dctx, a) if a.prototypes else None
        save(model, a, t["parameters"], t["log"], t["seconds"], reference(model, dE, dctx[5:], trust),
             trust, train=t)
        return
    trust = trust_of(E, convs, dE, dctx, a) if a.prototypes else None
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(tgt)} training windows, {n_params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    warm = max(1, a.steps // 50)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (a.steps - s) / (a.steps - warm)))
    )
    os.makedirs(a.out, exist_ok=True)
    state_path = os.path.join(a.out, "train-state.pt")
    t0, log, first, spent = time.time(), [], 1, 0.0
    if a.resume and os.path.exists(state_path):
        st = torch.load(state_path, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        first, log, spent = st["step"] + 1, st["log"], st["seconds"]
        print(f"resumed after step {st['step']}", flush=True)
    Etorch = torch.from_numpy(E)
    for step in range(first, a.steps + 1):
        model.train()
        e, m, y = batch_of(E, ctx, tgt, rng.integers(0, len(tgt), a.batch))
        p = model(e, m)
        if a.loss == "mse":
            loss = F.mse_loss(p, y) * a.dim
        else:
            pn = F.normalize(p, dim=-1)
            cand = y
            if a.negatives:
                neg = Etorch[torch.from_numpy(rng.integers(0, len(E), a.negatives))]
                cand = torch.cat([y, neg])
            logits = pn @ cand.T / a.tau
            # A drawn turn that is (almost) the target itself ("lol", "yes") is not a negative.
            same = (y @ cand.T > 0.999) & ~torch.eye(len(y), len(cand), dtype=torch.bool)
            logits = logits.masked_fill(same, -1e4)
            nce = F.cross_entropy(logits, torch.arange(len(y)))
            if a.loss == "infonce":
                loss = nce
            else:
                loss = F.mse_loss(pn, y) * a.dim + a.mse_contrast * nce
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % a.every == 0 or step == a.steps:
            model.eval()
            acc = top1_of_100(model, dE, dctx, dtgt)
            secs = spent + time.time() - t0
            log.append({"step": step, "loss": round(loss.item(), 4), "dev_top1": round(acc, 2)})
            eta = secs / (step - first + 1) * (a.steps - step) if step >= first else 0
            print(f"step {step} loss {loss.item():.4f} dev top-1/100 {acc:.2f} ({secs:.0f}s, "
                  f"ETA {eta / 60:.0f} min)", flush=True)
            save(model, a, n_params, log, secs, reference(model, dE, dctx[5:], trust), trust)
            tmp = state_path + ".tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "step": step, "log": log,
                        "seconds": secs}, tmp)
            os.replace(tmp, state_path)


def gated(p, latest, residual, trust):
    """The prediction with its correction scaled by the trust gate (as the engines apply it)."""
    if trust is None:
        return p
    s = float((trust["prototypes"] @ latest).max())
    t = min(1.0, max(0.0, (s - trust["low"]) / (trust["high"] - trust["low"])))
    return t * (p - residual * latest) + residual * latest


def reference(model, E, ctx, trust=None, n=3):
    """Input and output of the float model on the first `n` dev windows: the ONNX export run by tract
    must reproduce them (tools tests). Dev windows whose latest turn gets a trust strictly between
    0 and 1 come first, so the gate's ramp is checked too."""
    out = []
    with torch.no_grad():
        for i in range(len(ctx)):
            if len(out) == n:
                break
            rows = [r for r in ctx[i] if r >= 0]
            e = torch.from_numpy(E[rows][None])
            p = model(e, torch.ones(1, len(rows), dtype=torch.bool))[0].numpy()
            g = gated(p, E[rows[0]], model.residual, trust)
            if trust is not None and len(out) < n - 1:
                s = float((trust["prototypes"] @ E[rows[0]]).max())
                if not trust["low"] < s < trust["high"]:
                    continue
            out.append({"window": E[rows].tolist(), "prediction": g.tolist()})
    return out


def trust_of(E, convs, dE, dctx, a):
    """Prototypes (distinct training turns, seeded) and the dev-calibrated ramp of the trust gate."""
    texts = [t for c in convs for t in c]
    first = {}
    for i, t in enumerate(texts):
        first.setdefault(t, i)
    distinct = np.array(sorted(first.values()))
    pick = np.random.default_rng(a.seed + 1).choice(distinct, a.prototypes, replace=False)
    P = E[np.sort(pick)]
    s = (dE[dctx[:, 0]] @ P.T).max(1)
    low, high = np.percentile(s, [2, 20])
    return {"prototypes": P, "low": float(low), "high": float(high)}


def save(model, a, n_params, log, secs, ref, trust, train=None):
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if trust is not None:
        sd["trust.prototypes"] = torch.from_numpy(trust["prototypes"]).contiguous()
    # Written beside and renamed, so an interrupted run never leaves half a checkpoint.
    save_file(sd, os.path.join(a.out, "model.safetensors.tmp"))
    os.replace(os.path.join(a.out, "model.safetensors.tmp"), os.path.join(a.out, "model.safetensors"))
    cfg = {
        "kind": "pith-reasoner",
        "dim": a.dim, "hidden": a.dim, "layers": a.layers, "heads": a.heads, "ffn": a.ffn,
        "window": WINDOW, "residual": a.residual,
        "layer_norm_eps": 1e-12, "gelu": "erf", "order": "latest turn first, read-out row 0",
        "train": {"loss": a.loss, "tau": a.tau, "negatives": a.negatives, "steps": a.steps,
                  "batch": a.batch, "lr": a.lr, "mse_contrast": a.mse_contrast,
                  "dropout": a.dropout, "weight_decay": a.weight_decay,
                  "seed": a.seed, "train_emb": os.path.basename(a.train_emb),
                  "parameters": n_params, "seconds": round(secs), "torch": torch.__version__,
                  "log": log},
        "reference": ref,
    }
    if train is not None:
        cfg["train"] = train
    if a.encoder:
        cfg["encoder"] = a.encoder
    if trust is not None:
        cfg["trust"] = {"low": trust["low"], "high": trust["high"],
                        "prototypes": len(trust["prototypes"]),
                        "rule": "dev 2nd and 20th percentiles of the latest turn's best prototype cosine"}
    with open(os.path.join(a.out, "reasoner.json.tmp"), "w") as f:
        json.dump(cfg, f, indent=1)
    os.replace(os.path.join(a.out, "reasoner.json.tmp"), os.path.join(a.out, "reasoner.json"))


if __name__ == "__main__":
    main()
