#!/usr/bin/env python3
"""A BERT encoder with mean pooling in numpy, forward and backward written out by hand.

The training-side twin of tools/src/fp32.rs for `pith distill --tier m` (tools/train/
tier_m_student.py): post-LayerNorm layers, exact GELU, absolute positions, token type 0, mean
pooling over the real tokens ([CLS] and [SEP] included), L2 normalisation. Parameters are a dict
under Hugging Face's BertModel names (weights ``[out, in]``), so a student is saved as a
checkpoint `pith quantize` reads like any other. numpy only: the test command has no PyTorch,
and a hand-written backward in one BLAS thread is deterministic, so an interrupted training
resumes to the same bytes.

``python3 bert_np.py --check`` compares the backward with central differences in float64 on a
small random model and exits non-zero on a mismatch (the test command runs it).
"""

import argparse
import math
import sys

import numpy as np

LN_NAMES = ("attention.output.LayerNorm", "output.LayerNorm")
LINEAR_NAMES = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")


class Shape:
    """The hyper-parameters of a BERT, from a Hugging Face config.json dict."""

    def __init__(self, cfg):
        self.hidden = int(cfg["hidden_size"])
        self.layers = int(cfg["num_hidden_layers"])
        self.heads = int(cfg["num_attention_heads"])
        self.ffn = int(cfg["intermediate_size"])
        self.positions = int(cfg["max_position_embeddings"])
        self.vocab = int(cfg["vocab_size"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        if self.hidden % self.heads:
            raise SystemExit(f"hidden_size {self.hidden} is not a multiple of {self.heads} heads")

    def config(self):
        return {"hidden_size": self.hidden, "num_hidden_layers": self.layers,
                "num_attention_heads": self.heads, "intermediate_size": self.ffn,
                "max_position_embeddings": self.positions, "vocab_size": self.vocab,
                "layer_norm_eps": self.eps}


def names(shape):
    """Every parameter's name and shape, in a fixed order."""
    h, f = shape.hidden, shape.ffn
    out = [("embeddings.word_embeddings.weight", (shape.vocab, h)),
           ("embeddings.position_embeddings.weight", (shape.positions, h)),
           ("embeddings.token_type_embeddings.weight", (2, h)),
           ("embeddings.LayerNorm.weight", (h,)), ("embeddings.LayerNorm.bias", (h,))]
    dims = {"attention.self.query": (h, h), "attention.self.key": (h, h),
            "attention.self.value": (h, h), "attention.output.dense": (h, h),
            "intermediate.dense": (f, h), "output.dense": (h, f)}
    for layer in range(shape.layers):
        p = f"encoder.layer.{layer}."
        for m in LINEAR_NAMES:
            out += [(p + m + ".weight", dims[m]), (p + m + ".bias", (dims[m][0],))]
            if m == "attention.output.dense":
                out += [(p + LN_NAMES[0] + ".weight", (h,)), (p + LN_NAMES[0] + ".bias", (h,))]
        out += [(p + LN_NAMES[1] + ".weight", (h,)), (p + LN_NAMES[1] + ".bias", (h,))]
    return out


def erf(x):
    """erf: in float32 (training) to 1.5e-7 by Abramowitz and Stegun 7.1.26 (numpy has none, and
    the weights are quantized to int8 afterwards); in float64 (the gradient check) exact, so the
    check sees the backward's formulas and not the approximation's slope."""
    if x.dtype == np.float64:
        return _erf64(x)
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-a * a)
    return s * y


_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def gelu(u):
    """GELU and the erf term its slope reuses."""
    phi = erf(u * (1.0 / math.sqrt(2.0)))
    return 0.5 * u * (1.0 + phi), phi


def gelu_grad(u, phi):
    return 0.5 * (1.0 + phi) + u * np.exp(-0.5 * u * u) * (1.0 / math.sqrt(2.0 * math.pi))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    inv = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    xhat = xc * inv
    return xhat * w + b, (xhat, inv, w)


def layer_norm_back(dy, cache):
    xhat, inv, w = cache
    dxhat = dy * w
    dx = inv * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    flat = dy.reshape(-1, dy.shape[-1])
    return dx, (flat * xhat.reshape(flat.shape)).sum(0), flat.sum(0)


def pad(seqs, rows, dtype):
    """ids ``[B, T]`` and mask ``[B, T]`` for the sequences ``seqs[rows]``."""
    t = max(len(seqs[i]) for i in rows)
    ids = np.zeros((len(rows), t), np.int64)
    mask = np.zeros((len(rows), t), dtype)
    for r, i in enumerate(rows):
        ids[r, :len(seqs[i])] = seqs[i]
        mask[r, :len(seqs[i])] = 1
    return ids, mask


# An MPNet teacher's relative position bias, ``[buckets, heads]`` (``teacher_params`` in
# tier_m_student.py renames the rest of an MPNet to BERT's names). Students never have it.
REL_BIAS = "encoder.relative_attention_bias.weight"


def relative_bucket(rel, buckets=32, max_distance=128):
    """MPNet's bucket of each offset ``key - query`` (tools/src/checkpoint/relpos.rs)."""
    half = buckets // 2
    exact = half // 2
    n = -rel
    side = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    ratio = np.log(np.maximum(n, 1).astype(np.float32) / np.float32(exact)) / np.float32(
        math.log(max_distance / exact))
    large = np.minimum(exact + (ratio * np.float32(half - exact)).astype(np.int64), half - 1)
    return side + np.where(n < exact, n, large)


def forward(p, shape, ids, mask, layers=None, keep=False):
    """Unit sentence embeddings ``[B, H]`` of padded ``ids`` (and, with ``keep``, what
    ``backward`` needs; with ``layers`` a list, every layer's output is appended to it)."""
    b, t = ids.shape
    h, nh = shape.hidden, shape.heads
    dh = h // nh
    dt = p["embeddings.LayerNorm.weight"].dtype
    x = (p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][:t]
         + p["embeddings.token_type_embeddings.weight"][0])
    x, ln0 = layer_norm(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], shape.eps)
    if layers is not None:
        layers.append(x)
    bias = ((1.0 - mask) * -1e4).astype(dt)[:, None, None, :]
    if REL_BIAS in p:
        if keep:
            raise ValueError("the backward pass has no relative position bias (teachers only)")
        table = p[REL_BIAS]
        rel = np.arange(t)[None, :] - np.arange(t)[:, None]
        bias = bias + table[relative_bucket(rel, table.shape[0])].transpose(2, 0, 1)[None].astype(dt)
    scale = dt.type(1.0 / math.sqrt(dh))
    caches = []
    for layer in range(shape.layers):
        pre = f"encoder.layer.{layer}."

        def lin(y, m):
            return y @ p[pre + m + ".weight"].T + p[pre + m + ".bias"]

        def heads(y):
            return y.reshape(b, t, nh, dh).transpose(0, 2, 1, 3)

        q, k, v = (heads(lin(x, m)) for m in LINEAR_NAMES[:3])
        s = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, t, h)
        y1, ln1 = layer_norm(x + lin(ctx, LINEAR_NAMES[3]), p[pre + LN_NAMES[0] + ".weight"],
                             p[pre + LN_NAMES[0] + ".bias"], shape.eps)
        u = lin(y1, LINEAR_NAMES[4])
        g, phi = gelu(u)
        y2, ln2 = layer_norm(y1 + lin(g, LINEAR_NAMES[5]), p[pre + LN_NAMES[1] + ".weight"],
                             p[pre + LN_NAMES[1] + ".bias"], shape.eps)
        if keep:
            caches.append((x, q, k, v, a, ctx, ln1, y1, u, phi, g, ln2))
        x = y2
        if layers is not None:
            layers.append(x)
    m = mask[:, :, None]
    count = np.maximum(m.sum(1), 1.0)
    pooled = (x * m).sum(1) / count
    norm = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    e = pooled / norm
    if not keep:
        return e
    return e, (ids, mask, ln0, caches, count, norm, e)


def backward(p, shape, cache, de, grads=None):
    """Gradients of every parameter given ``de`` = dLoss/d(embeddings), added into ``grads``
    (a dict like ``p``; a new one when None, so the backward of several batches of one loss can
    be summed)."""
    ids, mask, ln0, caches, count, norm, e = cache
    b, t = ids.shape
    h, nh = shape.hidden, shape.heads
    dh = h // nh
    scale = 1.0 / math.sqrt(dh)
    grads = {} if grads is None else grads

    def add(name, g):
        if name in grads:
            grads[name] += g
        else:
            grads[name] = g
    dpooled = (de - e * (de * e).sum(1, keepdims=True)) / norm
    dx = (dpooled / count)[:, None, :] * mask[:, :, None]
    for layer in reversed(range(shape.layers)):
        pre = f"encoder.layer.{layer}."
        x, q, k, v, a, ctx, ln1, y1, u, phi, g, ln2 = caches[layer]

        def lin_back(dy, y, m):
            w = p[pre + m + ".weight"]
            dy2 = dy.reshape(-1, dy.shape[-1])
            add(pre + m + ".weight", dy2.T @ y.reshape(-1, y.shape[-1]))
            add(pre + m + ".bias", dy2.sum(0))
            return dy @ w

        def ln_back(dy, c, m):
            dx, dw, db = layer_norm_back(dy, c)
            add(pre + m + ".weight", dw)
            add(pre + m + ".bias", db)
            return dx

        dz = ln_back(dx, ln2, LN_NAMES[1])
        dg = lin_back(dz, g, LINEAR_NAMES[5])
        dy1 = dz + lin_back(dg * gelu_grad(u, phi), y1, LINEAR_NAMES[4])
        dz = ln_back(dy1, ln1, LN_NAMES[0])
        dctx = lin_back(dz, ctx, LINEAR_NAMES[3]).reshape(b, t, nh, dh).transpose(0, 2, 1, 3)
        da = dctx @ v.transpose(0, 1, 3, 2)
        dv = a.transpose(0, 1, 3, 2) @ dctx
        ds = a * (da - (da * a).sum(-1, keepdims=True)) * scale
        dq = ds @ k
        dk = ds.transpose(0, 1, 3, 2) @ q

        def merged(y):
            return y.transpose(0, 2, 1, 3).reshape(b, t, h)

        dx = dz.copy()
        for dy, m in ((dq, LINEAR_NAMES[0]), (dk, LINEAR_NAMES[1]), (dv, LINEAR_NAMES[2])):
            dx += lin_back(merged(dy), x, m)
    dx, dw, db = layer_norm_back(dx, ln0)
    add("embeddings.LayerNorm.weight", dw)
    add("embeddings.LayerNorm.bias", db)
    for name in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                 "embeddings.token_type_embeddings.weight"):
        if name not in grads:
            grads[name] = np.zeros_like(p[name])
    np.add.at(grads["embeddings.word_embeddings.weight"], ids.reshape(-1), dx.reshape(-1, h))
    grads["embeddings.position_embeddings.weight"][:t] += dx.sum(0)
    grads["embeddings.token_type_embeddings.weight"][0] += dx.reshape(-1, h).sum(0)
    return grads


def forward_batches(p, shape, seqs, rows, size):
    """Unit embeddings ``[len(rows), H]`` of ``seqs[rows]``, run as batches of ``size`` texts of
    similar length (little padding), and what ``backward_batches`` needs."""
    dt = p["embeddings.LayerNorm.weight"].dtype
    order = np.argsort([len(seqs[i]) for i in rows], kind="stable")
    e = np.zeros((len(rows), shape.hidden), dt)
    parts = []
    for s in range(0, len(order), size):
        at = order[s:s + size]
        ids, mask = pad(seqs, [rows[i] for i in at], dt)
        e[at], cache = forward(p, shape, ids, mask, keep=True)
        parts.append((at, cache))
    return e, parts


def backward_batches(p, shape, parts, de):
    """The gradients of one loss over every batch of ``forward_batches``, summed in a fixed order."""
    grads = {}
    for at, cache in parts:
        backward(p, shape, cache, de[at], grads)
    return grads


def embed(p, shape, seqs, batch=128):
    """Unit embeddings of every sequence, batched by length (padding changes nothing but time)."""
    dt = p["embeddings.LayerNorm.weight"].dtype
    out = np.zeros((len(seqs), shape.hidden), dt)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    for s in range(0, len(order), batch):
        rows = order[s:s + batch]
        ids, mask = pad(seqs, rows, dt)
        out[rows] = forward(p, shape, ids, mask)
    return out


def check():
    """Backward against central differences, float64, on a random 2-layer model: the loss of one
    padded batch, the gradient summed over two smaller ones (as the trainer runs it); returns the
    worst relative error over sampled coordinates."""
    rng = np.random.default_rng(0)
    shape = Shape({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "intermediate_size": 12, "max_position_embeddings": 10, "vocab_size": 11})
    p = {n: rng.normal(0, 0.5, s) + (1.0 if n.endswith("LayerNorm.weight") else 0.0)
         for n, s in names(shape)}
    seqs = [np.array([1, 4, 5, 2]), np.array([1, 7, 2]), np.array([1, 3, 9, 8, 6, 2]),
            np.array([1, 10, 2])]
    rows = [2, 0, 3, 1]
    ids, mask = pad(seqs, rows, np.float64)
    target = rng.normal(0, 1, (len(rows), shape.hidden))

    def loss(params):
        e = forward(params, shape, ids, mask)
        return float(((e @ e.T - 0.3) ** 2).sum() + (e * target).sum())

    # The gradient as the trainer takes it: batches of two texts of similar length, summed.
    e, parts = forward_batches(p, shape, seqs, rows, 2)
    de = 4.0 * (e @ e.T - 0.3) @ e + target
    grads = backward_batches(p, shape, parts, de)
    worst = 0.0
    for n, s in names(shape):
        flat = p[n].reshape(-1)
        for i in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + 1e-5
            up = loss(p)
            flat[i] = old - 1e-5
            down = loss(p)
            flat[i] = old
            num = (up - down) / 2e-5
            ana = grads[n].reshape(-1)[i]
            # The floor: some true gradients are zero (a key bias shifts every score of a row
            # alike, which softmax ignores), where both sides are rounding noise.
            worst = max(worst, abs(num - ana) / max(1e-3, abs(num) + abs(ana)))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="check the backward against finite differences")
    args = ap.parse_args()
    if args.check:
        worst = check()
        print(f"bert_np backward: worst relative error {worst:.2e} against central differences")
        sys.exit(0 if worst < 1e-5 else 1)
    ap.print_help()


if __name__ == "__main__":
    main()
