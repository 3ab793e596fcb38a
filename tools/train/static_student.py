#!/usr/bin/env python3
"""Trains a static (Tier S) student from the files `pith distill` writes: numpy only.

`pith distill CHECKPOINT --tier s -o DIR` chooses the vocabulary, labels every kept token and
every text with the teacher and tokenizes the texts with the student's vocabulary (the device's
own tokenizer), then runs this script on DIR/work (tools/src/distill/work.rs documents the files;
recipe.json holds every setting, tools/src/distill/recipe.rs declares them). Steps:

1. PCA of the teacher's token vectors (``[CLS] token [SEP]``), weighted by the tokens'
   frequency in the training texts, to ``dim`` dimensions; ``[CLS]``, ``[SEP]``, ``[PAD]`` rows
   zero.
2. Adam on the loss STS measures: the squared error between the batch's cosine matrix and the
   teacher's, with part of every batch made of neighbour groups (a text and its nearest training
   texts by the teacher's cosine, or a text and its edited variants, variants.py) whose
   within-group entries count again, part made of single words as one-word texts (the training
   texts' most frequent words, whole even where the vocabulary splits them, with the teacher's
   vectors), and a weak pull towards the step-1 table. Gradients are written out by hand (no autograd needed for a bag of rows).
3. With ``head`` > 0 in the recipe, the same loss trains a head with the table: the pooled
   vector, divided by its largest |value| as the device's int8 pooling does, goes through
   ``x + W2 relu(W1 x + b1)`` (``head`` hidden units), so the words of a sentence act on each
   other once. Its ReLU inputs' 99.99th percentile over training texts sets the int8 grid
   ``pith quantize`` gives them (``head_z_max`` in config.json).

(The ridge fit of pooled texts to the teacher that tools/train/distill_static.py runs before its
cosine tuning -- model2vec's tokenlearn, solved exactly -- lowered the dev check here, 58.6 ->
35.9 after PCA and 82.1 -> 80.4 after 2,000 steps on the default corpus; fitted on the frequent
words and the 373,643-text Debian corpus of models/tier-m.md it ended at 84.68 against 85.22
without it (SICK dev 68.52 against 68.76), so it is not a step.)

Writes OUT/embeddings.safetensors (fp16 ``[vocab, dim]``; with a head also fp32
``head.up.weight`` ``[head, dim]``, ``head.up.bias`` ``[head]`` and ``head.down.weight``
``[dim, head]``), adds ``head`` and ``head_z_max`` to OUT/config.json, and writes
OUT/training.json (the dev
check's history: Spearman of the student's cosines against the teacher's on consecutive
held-out SNLI lines). Deterministic for a seed with one BLAS thread (the caller sets it).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distill_static import pca, spearman  # noqa: E402


def log(*a):
    print(time.strftime("%H:%M:%S"), "[static_student]", *a, file=sys.stderr, flush=True)


def read_seqs(path):
    """Length-prefixed little-endian u32 id lists."""
    a = np.fromfile(path, "<u4").astype(np.int64)
    seqs, i = [], 0
    while i < len(a):
        n = int(a[i])
        if n == 0 or i + 1 + n > len(a):
            raise SystemExit(f"{path}: malformed at word {i}")
        seqs.append(a[i + 1:i + 1 + n])
        i += 1 + n
    return seqs


def read_rows(path, rows):
    a = np.fromfile(path, "<f4")
    if rows == 0 or a.size % rows:
        raise SystemExit(f"{path}: {a.size} values do not make {rows} rows")
    return a.reshape(rows, -1)


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def summed(table, seqs, scaled=False):
    """Each text's sum of rows; ``scaled``: divided by its largest |value|, the head's input
    (what the device's int8 pooling gives, up to its 127)."""
    flat = np.concatenate(seqs)
    starts = np.cumsum([0] + [len(s) for s in seqs[:-1]])
    x = np.add.reduceat(table[flat], starts, axis=0)
    return x / np.maximum(np.abs(x).max(1, keepdims=True), 1e-12) if scaled else x


def pooled(table, seqs, head=None):
    """Unit mean-pooled vectors (sums: the scale does not matter to a cosine), through the head
    when there is one."""
    x = summed(table, seqs, scaled=head is not None)
    if head is not None:
        w1, b1, w2 = head
        x = x + np.maximum(x @ w1 + b1, 0) @ w2
    return unit(x)


def read_variants(work, spec, train, t_train):
    """The variant groups (tools/train/variants.py): the training ones join the training texts
    (drawn only as whole groups; their rows come after ``train``'s), the dev ones make the
    close-pair check: (the dev groups' texts, each pair's two positions among them, the
    teacher's cosine of each pair), or None. Returns (groups, check, texts, labels)."""
    if not spec.get("variants"):
        return [], None, train, t_train
    n_train = len(train)
    vs = read_seqs(os.path.join(work, "variants.ids.u32"))
    t_var = unit(read_rows(os.path.join(work, spec["variants"]), len(vs)).astype(np.float32))
    with open(os.path.join(work, "variants.tsv"), encoding="utf-8") as f:
        meta = [line.split() for line in f if line.strip()]
    if len(meta) != len(vs):
        raise SystemExit("variants.tsv and variants.ids.u32 disagree on the number of texts")
    by = {}
    for i, (g, split) in enumerate(meta):
        by.setdefault((split, g), []).append(i)
    groups = [np.array(ix) + n_train for (split, _), ix in by.items() if split == "train"]
    pairs = np.array([(ix[0], j) for (split, _), ix in by.items() if split == "dev" for j in ix[1:]])
    close = None
    if len(pairs):
        # Only the dev groups' texts are embedded at each check; the positions index them.
        used = np.unique(pairs)
        close = ([vs[i] for i in used], np.searchsorted(used, pairs),
                 (t_var[pairs[:, 0]] * t_var[pairs[:, 1]]).sum(1))
    log(f"{len(groups)} variant groups, {len(pairs)} close dev pairs")
    return groups, close, train + vs, np.concatenate([t_train, t_var])


def read_words(work, spec):
    """The frequent corpus words as one-word texts: (student ids, teacher rows), or None when the
    recipe has none."""
    if not spec.get("words"):
        return None
    seqs = read_seqs(os.path.join(work, "words.ids.u32"))
    rows = unit(read_rows(os.path.join(work, spec["words"]), len(seqs)).astype(np.float32))
    if len(seqs) != spec["word_texts"]:
        raise SystemExit("words.ids.u32 and recipe.json disagree on the number of words")
    return seqs, rows


def neighbour_groups(t, r, rng):
    """Groups of ``group_size`` training texts: an anchor, its nearest text by the teacher's
    cosine and others drawn from its ``neighbour_ranks`` nearest; near copies skipped."""
    n = len(t)
    anchors = rng.permutation(n)[:min(n, r["group_anchors"])]
    k = min(r["neighbour_ranks"], n - 1)
    groups = []
    for s in range(0, len(anchors), 512):
        a = anchors[s:s + 512]
        sims = t[a] @ t.T
        sims[np.arange(len(a)), a] = -2.0
        sims[sims > r["near_copy"]] = -2.0
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for row, cand in zip(range(len(a)), top):
            cand = cand[np.argsort(-sims[row, cand], kind="stable")]
            cand = cand[sims[row, cand] > -2.0]
            if len(cand) < r["group_size"] - 1:
                continue
            rest = rng.choice(cand[1:], size=r["group_size"] - 2, replace=False)
            groups.append(np.concatenate([[a[row], cand[0]], rest]))
    return np.array(groups, dtype=np.int64).reshape(-1, r["group_size"])


def batch_grads(a, w, head, t, gid):
    """The loss of one batch and its gradients (written out: a bag of rows needs no autograd).

    ``a``: texts x vocabulary token counts; ``w``: the table; ``head``: [W1, b1, W2] or None;
    ``t``: the teacher's unit vectors; ``gid``: each text's group (-1: none). The loss is
    ``10 mean(d^2) + 10 mean over same-group pairs of d^2``, ``d`` the batch's cosine matrix
    minus the teacher's. Returns (mean d^2, same-group mean d^2, loss, d loss / d w, the head's
    gradients)."""
    b = a.shape[0]
    s = a @ w
    if head is not None:
        rows_b = np.arange(b)
        am = np.abs(s).argmax(1)
        mx = np.maximum(np.abs(s[rows_b, am]), 1e-12)[:, None]
        x = s / mx
        z = x @ head[0] + head[1]
        hh = np.maximum(z, 0)
        y = x + hh @ head[2]
    else:
        y = s
    n = np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    e = y / n
    d = e @ e.T - t @ t.T
    same = (gid[:, None] == gid[None, :]) & (gid[:, None] >= 0)
    np.fill_diagonal(same, False)
    n_same = max(1, int(same.sum()))
    rel = float((d * d).mean())
    grp = float((d * d)[same].sum() / n_same)
    g = (20.0 / (b * b)) * d + (20.0 / n_same) * same * d
    de = 2.0 * g @ e
    ds = (de - e * (de * e).sum(1, keepdims=True)) / n
    head_grads = []
    if head is not None:
        dy = ds
        dh = (dy @ head[2].T) * (z > 0)
        head_grads = [x.T @ dh, dh.sum(0), hh.T @ dy]
        dx = dy + dh @ head[0].T
        # Through x = s / |s[am]|: the largest entry's scale carries the rest's gradient too.
        ds = dx / mx
        ds[rows_b, am] -= (dx * x).sum(1) / mx[:, 0] * np.sign(s[rows_b, am])
    return rel, grp, 10.0 * rel + 10.0 * grp, a.T @ ds, head_grads


def check_gradients():
    """Compares batch_grads with central differences on a small random batch, table and head;
    prints the worst relative error and fails above 1e-4."""
    rng = np.random.default_rng(0)
    b, v, dim, f = 12, 30, 8, 10
    a = rng.integers(0, 3, size=(b, v)).astype(np.float64)
    w = rng.standard_normal((v, dim))
    head = [rng.standard_normal((dim, f)), rng.standard_normal(f) * 0.3, rng.standard_normal((f, dim)) * 0.5]
    t = unit(rng.standard_normal((b, dim)))
    gid = np.array([0, 0, 0, 1, 1, -1, -1, 2, 2, 2, -1, -1])
    _, _, _, gw, hg = batch_grads(a, w, head, t, gid)
    worst = 0.0
    for p, g in [(w, gw)] + list(zip(head, hg)):
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 25), replace=False):
            old, eps = flat[i], 1e-6
            flat[i] = old + eps
            up = batch_grads(a, w, head, t, gid)[2]
            flat[i] = old - eps
            down = batch_grads(a, w, head, t, gid)[2]
            flat[i] = old
            num = (up - down) / (2 * eps)
            worst = max(worst, abs(num - gflat[i]) / max(1e-6, abs(num) + abs(gflat[i])))
    print(f"static_student gradients: worst relative error {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit("gradients disagree with central differences")


def die_with_parent():
    """On Linux, have the kernel send this trainer SIGTERM when `pith distill` (its parent) ends,
    however it ends: a killed `pith distill` must not leave a trainer writing into its work folder
    (Ctrl-C stops the whole process group anyway; `kill PID` or an OOM kill stops only the parent).
    Elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        sys.exit("pith distill, which started this trainer, has already ended")


def trainer_args(doc):
    """The command line every `pith distill` trainer takes (--work, --out) and the work folder's
    recipe.json. Also ties the trainer's life to pith distill's (die_with_parent)."""
    die_with_parent()
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="the work folder pith distill wrote")
    ap.add_argument("--out", required=True, help="the float checkpoint folder (its configuration is there)")
    args = ap.parse_args()
    with open(os.path.join(args.work, "recipe.json")) as f:
        return args, json.load(f)


def main():
    started = time.time()
    args, spec = trainer_args(__doc__)
    r = spec["recipe"]
    rng = np.random.default_rng(r["seed"])
    v, dim = spec["vocab_size"], r["dim"]
    zero = np.array(spec["zero_rows"], dtype=np.int64)

    tok = read_rows(os.path.join(args.work, spec["tokens"]), v).astype(np.float64)
    train = read_seqs(os.path.join(args.work, "train.ids.u32"))
    dev = read_seqs(os.path.join(args.work, "dev.ids.u32"))
    t_train = unit(read_rows(os.path.join(args.work, spec["train"]), len(train)).astype(np.float32))
    t_dev = unit(read_rows(os.path.join(args.work, spec["dev"]), len(dev)).astype(np.float32))
    if len(train) != spec["train_texts"] or len(dev) != spec["dev_texts"]:
        raise SystemExit("the id files and recipe.json disagree on the number of texts")
    t_cos = (t_dev[:-1] * t_dev[1:]).sum(1)
    n_train = len(train)
    log(f"{v} tokens x {dim}, {n_train} training texts, {len(dev)} dev texts")

    var_groups, close, train, t_train = read_variants(args.work, spec, train, t_train)
    words = read_words(args.work, spec)

    def check(table, head=None):
        e = pooled(table, dev, head)
        out = {"dev_agreement": 100 * spearman((e[:-1] * e[1:]).sum(1), t_cos)}
        if close is not None:
            seqs, pos, t_close = close
            ec = pooled(table, seqs, head)
            out["close_agreement"] = 100 * spearman((ec[pos[:, 0]] * ec[pos[:, 1]]).sum(1), t_close)
        return out

    # 1. PCA.
    counts = np.bincount(np.concatenate(train[:n_train]), minlength=v).astype(np.float64)
    mu, axes, _ = pca(tok, dim, weights=counts / counts.sum() + 1e-7)
    table = (tok - mu) @ axes
    table[zero] = 0.0
    history = [{"stage": "pca", **check(table.astype(np.float32))}]
    log(history[-1])

    # 2. Adam on the in-batch cosine matrices.
    w0 = table.astype(np.float32)
    w = w0.copy()
    groups = neighbour_groups(t_train[:n_train], r, rng) if r["group_share"] > 0 else []
    slots = int(round(r["batch"] * r["group_share"])) if len(groups) or var_groups else 0
    log(f"{len(groups)} neighbour groups of {r['group_size']}")

    def draw_groups():
        """Whole groups until the batch's group slots are full: variant groups with probability
        ``variant_share``, neighbour groups otherwise; each group gets its own id."""
        parts, ids, filled = [], [], 0
        while filled < slots:
            pool = var_groups if var_groups and (not len(groups) or rng.random() < r["variant_share"]) else groups
            grp = pool[rng.integers(len(pool))][:slots - filled]
            parts.append(grp)
            ids.append(np.full(len(grp), len(parts) - 1))
            filled += len(grp)
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(parts).astype(np.int64), np.concatenate(ids)

    # Single words as texts: the teacher's vector of each frequent word (or of each kept token,
    # without words) keeps what a word means to the teacher in every batch (a bag of words has
    # nothing else to carry meaning).
    if words is not None:
        one_seqs, t_one = words[0], words[1]
    else:
        one_seqs = [np.array([i]) for i in np.setdiff1d(np.arange(v), zero)]
        t_one = unit(tok.astype(np.float32))[np.setdiff1d(np.arange(v), zero)]
    one_lens = np.array([len(s) for s in one_seqs])
    n_words = min(int(round(r["batch"] * r["token_share"])), len(one_seqs))
    rms = float(np.sqrt((w0 ** 2).mean()))
    lr = r["lr"] * rms
    m, s2 = np.zeros_like(w), np.zeros_like(w)
    b1, b2, eps = 0.9, 0.999, 1e-8
    pull_scale = 2.0 * r["pull"] / (v * rms * rms * dim)
    lens = np.array([len(s) for s in train])
    running = []
    # 3. The head (none when the recipe's ``head`` is 0): W2 starts at zero, so training starts
    # from the bag of tokens; its own generator leaves the batch draws as without a head.
    n_head = int(r.get("head", 0))
    head, head_adam = None, []
    if n_head:
        hrng = np.random.default_rng(r["seed"] + 1)
        x_rms = 0.3  # typical |value| of a pooled vector scaled to a largest |value| of 1
        head = [(hrng.standard_normal((dim, n_head)) / (np.sqrt(dim) * x_rms)).astype(np.float32),
                np.zeros(n_head, np.float32), np.zeros((n_head, dim), np.float32)]
        head_lr = [0.01 / (np.sqrt(dim) * x_rms), 0.01, 0.01 * x_rms / np.sqrt(n_head)]
        head_adam = [(np.zeros_like(p), np.zeros_like(p)) for p in head]
    for step in range(1, r["steps"] + 1):
        g_idx, g_ids = draw_groups()
        idx = np.concatenate([g_idx, rng.integers(n_train, size=r["batch"] - n_words - len(g_idx))])
        ones = rng.choice(len(one_seqs), size=n_words, replace=False) if n_words else np.zeros(0, np.int64)
        gid = np.concatenate([g_ids, np.full(r["batch"] - len(g_idx), -1)])
        b = r["batch"]
        # The batch as a dense count matrix (texts x vocabulary): pooling and its gradient are
        # then two matrix products, far faster than scattering rows one by one. Texts first, then
        # the one-word texts.
        flat = np.concatenate([train[i] for i in idx] + [one_seqs[i] for i in ones])
        rows = np.repeat(np.arange(b), np.concatenate([lens[idx], one_lens[ones]]))
        a = np.bincount(rows * v + flat, minlength=b * v).reshape(b, v).astype(np.float32)
        t = np.concatenate([t_train[idx], t_one[ones]])
        rel, grp, _, gw, head_grads = batch_grads(a, w, head, t, gid)
        for i, g_ in enumerate(head_grads):
            m1, m2 = head_adam[i]
            head_adam[i] = (b1 * m1 + (1 - b1) * g_, b2 * m2 + (1 - b2) * g_ * g_)
        grad = gw + pull_scale * (w - w0)
        grad[zero] = 0.0
        m = b1 * m + (1 - b1) * grad
        s2 = b2 * s2 + (1 - b2) * grad * grad
        sched = min(1.0, step / 100) * max(0.0, 1 - (step - 1) / r["steps"])
        w -= (lr * sched / (1 - b1 ** step)) * m / (np.sqrt(s2 / (1 - b2 ** step)) + eps)
        for p, (m1, m2), plr in zip(head or [], head_adam, head_lr if head else []):
            p -= (plr * sched / (1 - b1 ** step)) * m1 / (np.sqrt(m2 / (1 - b2 ** step)) + eps)
        w[zero] = 0.0
        running.append((rel, grp))
        if step % r["check_every"] == 0 or step == r["steps"]:
            mean = np.mean(running, 0)
            running = []
            history.append({"stage": "adam", "step": step, **check(w, head),
                            "rel_loss": float(mean[0]), "group_loss": float(mean[1])})
            log(history[-1])

    from safetensors.numpy import save_file

    os.makedirs(args.out, exist_ok=True)
    tensors = {"embeddings": w.astype(np.float16)}
    if head is not None:
        # The device's int8 grid for the ReLU inputs: their 99.99th percentile over (up to)
        # 20,000 training texts, pooled with the table as stored (fp16).
        w16 = w.astype(np.float16).astype(np.float32)
        zs = summed(w16, train[:min(n_train, 20000)], scaled=True) @ head[0] + head[1]
        z_max = float(np.percentile(zs[zs > 0], 99.99)) if (zs > 0).any() else 1.0
        tensors.update({"head.up.weight": np.ascontiguousarray(head[0].T),
                        "head.up.bias": head[1],
                        "head.down.weight": np.ascontiguousarray(head[2].T)})
        cfg_path = os.path.join(args.out, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg.update({"head": n_head, "head_z_max": z_max})
        tmp = os.path.join(args.out, ".config.json.tmp")
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        os.replace(tmp, cfg_path)
    tmp = os.path.join(args.out, ".embeddings.safetensors.tmp")
    save_file(tensors, tmp)
    os.replace(tmp, os.path.join(args.out, "embeddings.safetensors"))
    record = {"history": history, "neighbour_groups": int(len(groups)), "variant_groups": len(var_groups), "numpy": np.__version__,
              "python": sys.version.split()[0], "seconds": round(time.time() - started, 1)}
    tmp = os.path.join(args.out, ".training.json.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(args.out, "training.json"))
    log(f"wrote {args.out} in {record['seconds']} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        check_gradients()
    else:
        main()
