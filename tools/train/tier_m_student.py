#!/usr/bin/env python3
"""Trains a Tier M student (a small BERT) from the files `pith distill --tier m` writes: numpy only.

`pith distill CHECKPOINT --tier m -o DIR` chooses the vocabulary, labels every text with the
teacher and tokenizes the texts with the student's vocabulary (the device's own tokenizer), then
runs this script on DIR/work (tools/src/distill/work.rs documents the files; recipe.json holds
every setting, tools/src/distill/recipe.rs declares them). Steps:

1. **Initialisation from the teacher** (two CPU cores cannot train a transformer from scratch):
   ``layers`` of the teacher's layers, evenly spaced; in each, the ``heads`` heads and ``ffn``
   FFN neurons with the largest output-weight norms; the residual stream projected onto its top
   ``hidden`` principal axes (uncentred PCA of every layer's hidden states on the first training
   texts, run through the teacher here), so every matrix becomes ``P^T W P`` on the kept rows.
2. **Distillation**: AdamW with warm-up and linear decay, gradient norm clipped to 1; loss = 10 x
   MSE between the batch's cosine matrix and the teacher's (what STS measures) + the same over
   pairs within a group again (groups of a text and its edited variants, or of a text and its
   nearest training texts by the teacher's cosine) + ``anchor`` x the squared distance to the
   teacher's embedding projected by the same PCA. Each step's batch is drawn from a generator
   seeded by (seed, step), so a resumed run draws what an uninterrupted one would have; it runs
   through the model in pieces of ``micro_batch`` texts of similar length (little padding),
   and the gradients of the whole batch's loss are summed over the pieces.

**Checkpoints**: every ``save_every`` steps the whole state (weights, Adam moments, step, dev
history) goes to ``work/tier-m-state.npz``, written whole (temporary file, then rename), keyed by
a hash of recipe.json and the id files. The same command after an interruption resumes from it
and ends with the same bytes as a run that was never stopped (with the same number of BLAS
threads, which the caller sets: a BLAS splits a product the same way for the same count). A
state with another key (another recipe or corpus) is ignored and replaced.

Writes OUT/model.safetensors (fp32, Hugging Face BertModel names) and OUT/training.json (dev
checks: Spearman of the student's cosines against the teacher's on consecutive held-out SNLI
lines, and on held-out lines against their own variants; and the first dev texts' embeddings,
which pith compares with its own fp32 forward of the saved checkpoint).
"""

import hashlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_np  # noqa: E402
from distill_static import spearman  # noqa: E402
from static_student import neighbour_groups, read_rows, read_seqs, read_variants, trainer_args, unit  # noqa: E402

STATE = "tier-m-state.npz"
# Embeddings of this many dev texts go to training.json for pith's own check of the checkpoint.
PROBES = 4


def log(*a):
    print(time.strftime("%H:%M:%S"), "[tier_m_student]", *a, file=sys.stderr, flush=True)


def state_key(work):
    """Hash of what decides the training: the recipe (with the label files' names, which carry
    their contents' hash) and the student's id files."""
    h = hashlib.sha256()
    for name in ("recipe.json", "train.ids.u32", "dev.ids.u32", "variants.ids.u32", "pca.ids.u32"):
        path = os.path.join(work, name)
        if os.path.exists(path):
            h.update(name.encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def teacher_params(folder):
    from safetensors.numpy import load_file

    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    raw = load_file(os.path.join(folder, "model.safetensors"))
    if cfg.get("model_type") == "mpnet":
        cfg, raw = mpnet_as_bert(cfg, raw)
    shape = bert_np.Shape(cfg)
    p = {}
    for name, dims in bert_np.names(shape):
        for key in (name, "bert." + name):
            if key in raw:
                p[name] = raw[key].astype(np.float32)
                break
        else:
            raise SystemExit(f"{folder}/model.safetensors lacks {name}")
        if p[name].shape != dims and name != "embeddings.token_type_embeddings.weight":
            raise SystemExit(f"{folder}: {name} is {p[name].shape}, config.json gives {dims}")
    if bert_np.REL_BIAS in raw:
        p[bert_np.REL_BIAS] = raw[bert_np.REL_BIAS].astype(np.float32)
    return shape, p


MPNET_NAMES = {"attention.attn.q": "attention.self.query", "attention.attn.k": "attention.self.key",
               "attention.attn.v": "attention.self.value", "attention.attn.o": "attention.output.dense",
               "attention.LayerNorm": "attention.output.LayerNorm"}


def mpnet_as_bert(cfg, raw):
    """An MPNet teacher under BERT's names (as tools/src/checkpoint reads one): its position
    rows from pad id + 1 on, zero token types, and its relative position bias kept for the
    teacher's forward pass (``bert_np.REL_BIAS``)."""
    offset = int(cfg.get("pad_token_id", 1)) + 1
    out = {}
    for key, v in raw.items():
        key = key[len("mpnet."):] if key.startswith("mpnet.") else key
        for old, new in MPNET_NAMES.items():
            if f".{old}." in key:
                key = key.replace(f".{old}.", f".{new}.")
        out[key] = v
    pos = "embeddings.position_embeddings.weight"
    out[pos] = out[pos][offset:]
    h = out[pos].shape[1]
    out["embeddings.token_type_embeddings.weight"] = np.zeros((2, h), out[pos].dtype)
    cfg = dict(cfg, max_position_embeddings=int(cfg["max_position_embeddings"]) - offset)
    return cfg, out


def init_from_teacher(t_shape, t, r, kept, sample):
    """The student's weights from the teacher's (method step 1) and the projection ``P``."""
    h = r["hidden"]
    dh = t_shape.hidden // t_shape.heads
    if h % r["heads"] or h // r["heads"] != dh:
        raise SystemExit(f"hidden {h} / heads {r['heads']} must equal the teacher's head size {dh}")
    moment = np.zeros((t_shape.hidden, t_shape.hidden))
    count = 0
    order = np.argsort([len(s) for s in sample], kind="stable")
    for s in range(0, len(order), 64):
        rows = order[s:s + 64]
        ids, mask = bert_np.pad(sample, rows, np.float32)
        states = []
        bert_np.forward(t, t_shape, ids, mask, layers=states)
        real = mask.astype(bool)
        for x in states:
            x = x[real].astype(np.float64)
            moment += x.T @ x
            count += len(x)
    # Uncentred: LayerNorm's beta puts a constant offset on the stream, and P must carry it.
    vals, vecs = np.linalg.eigh(moment / max(count, 1))
    top = np.argsort(-vals, kind="stable")[:h]
    p = vecs[:, top]
    p = p * np.sign(p[np.abs(p).argmax(0), np.arange(h)])  # deterministic signs
    kept_energy = float(vals[top].sum() / vals.sum())
    p = p.astype(np.float32)
    layers = [int(round(v)) for v in np.linspace(0, t_shape.layers - 1, r["layers"])]

    def ln(dst, src):
        s[dst + ".weight"] = np.diagonal(p.T @ np.diag(t[src + ".weight"]) @ p).copy()
        s[dst + ".bias"] = t[src + ".bias"] @ p

    s = {"embeddings.word_embeddings.weight": t["embeddings.word_embeddings.weight"][kept] @ p,
         "embeddings.position_embeddings.weight":
             t["embeddings.position_embeddings.weight"][:r["positions"]] @ p,
         "embeddings.token_type_embeddings.weight": t["embeddings.token_type_embeddings.weight"][:2] @ p}
    ln("embeddings.LayerNorm", "embeddings.LayerNorm")
    for i, tl in enumerate(layers):
        src, dst = f"encoder.layer.{tl}.", f"encoder.layer.{i}."

        def w(m):
            return t[src + m + ".weight"]

        # Heads: the ones whose value -> output path carries the most weight.
        score = [np.linalg.norm(w("attention.output.dense")[:, k * dh:(k + 1) * dh])
                 * np.linalg.norm(w("attention.self.value")[k * dh:(k + 1) * dh]) for k in range(t_shape.heads)]
        heads = sorted(np.argsort([-v for v in score], kind="stable")[:r["heads"]].tolist())
        rows = np.array([k * dh + j for k in heads for j in range(dh)])
        for m in ("attention.self.query", "attention.self.key", "attention.self.value"):
            s[dst + m + ".weight"] = w(m)[rows] @ p
            s[dst + m + ".bias"] = t[src + m + ".bias"][rows]
        s[dst + "attention.output.dense.weight"] = p.T @ w("attention.output.dense")[:, rows]
        s[dst + "attention.output.dense.bias"] = t[src + "attention.output.dense.bias"] @ p
        ln(dst + "attention.output.LayerNorm", src + "attention.output.LayerNorm")
        neuron = np.linalg.norm(w("output.dense"), axis=0) * np.linalg.norm(w("intermediate.dense"), axis=1)
        sel = np.sort(np.argsort(-neuron, kind="stable")[:r["ffn"]])
        s[dst + "intermediate.dense.weight"] = w("intermediate.dense")[sel] @ p
        s[dst + "intermediate.dense.bias"] = t[src + "intermediate.dense.bias"][sel]
        s[dst + "output.dense.weight"] = p.T @ w("output.dense")[:, sel]
        s[dst + "output.dense.bias"] = t[src + "output.dense.bias"] @ p
        ln(dst + "output.LayerNorm", src + "output.LayerNorm")
    s = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in s.items()}
    return s, p, layers, kept_energy


def save_state(work, key, step, params, m, v, history, running, extra, proj):
    arrays = {"key": np.array(key), "step": np.array(step), "projection": proj,
              "history": np.array(json.dumps(history)), "running": np.array(running, np.float64).reshape(-1, 3),
              "extra": np.array(json.dumps(extra))}
    for name, a in params.items():
        arrays["p/" + name] = a
        arrays["m/" + name] = m[name]
        arrays["v/" + name] = v[name]
    tmp = os.path.join(work, "." + STATE + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, os.path.join(work, STATE))


def load_state(work, key):
    path = os.path.join(work, STATE)
    if not os.path.exists(path):
        return None
    try:
        z = np.load(path)
        if str(z["key"]) != key:
            log(f"{path} belongs to another recipe or corpus: starting afresh")
            return None
        params = {n[2:]: z[n] for n in z.files if n.startswith("p/")}
        return (int(z["step"]), params, {n: z["m/" + n] for n in params}, {n: z["v/" + n] for n in params},
                json.loads(str(z["history"])), [tuple(x) for x in z["running"]], json.loads(str(z["extra"])),
                z["projection"])
    except Exception as e:  # a truncated zip, a missing array, a bad header: all the same to a user
        raise SystemExit(f"{path}: unreadable training state ({type(e).__name__}: {e}); delete it to start afresh")


def write_outputs(out, params, record):
    from safetensors.numpy import save_file

    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, ".model.safetensors.tmp")
    save_file(params, tmp)
    os.replace(tmp, os.path.join(out, "model.safetensors"))
    tmp = os.path.join(out, ".training.json.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "training.json"))


def main():
    started = time.time()
    args, spec = trainer_args(__doc__)
    r = spec["recipe"]
    key = state_key(args.work)
    kept = np.array(spec["kept"], dtype=np.int64)
    shape = bert_np.Shape({"hidden_size": r["hidden"], "num_hidden_layers": r["layers"],
                           "num_attention_heads": r["heads"], "intermediate_size": r["ffn"],
                           "max_position_embeddings": r["positions"], "vocab_size": len(kept)})

    train = read_seqs(os.path.join(args.work, "train.ids.u32"))
    dev = read_seqs(os.path.join(args.work, "dev.ids.u32"))
    if len(train) != spec["train_texts"] or len(dev) != spec["dev_texts"]:
        raise SystemExit("the id files and recipe.json disagree on the number of texts")
    t_train = unit(read_rows(os.path.join(args.work, spec["train"]), len(train)).astype(np.float32))
    t_dev = unit(read_rows(os.path.join(args.work, spec["dev"]), len(dev)).astype(np.float32))
    t_cos = (t_dev[:-1] * t_dev[1:]).sum(1)
    n_train = len(train)
    rng0 = np.random.default_rng(r["seed"])
    groups = list(neighbour_groups(t_train, r, rng0)) if r["group_share"] > 0 else []
    var_groups, close, train, t_train = read_variants(args.work, spec, train, t_train)
    log(f"{len(kept)} tokens, {r['layers']} layers x {r['hidden']}, {n_train} training texts, "
        f"{len(groups)} neighbour groups, {len(var_groups)} variant groups, {len(dev)} dev texts")

    def check(params):
        e = bert_np.embed(params, shape, dev)
        out = {"dev_agreement": 100 * spearman((e[:-1] * e[1:]).sum(1), t_cos)}
        if close is not None:
            seqs, pos, t_close = close
            ec = bert_np.embed(params, shape, seqs)
            out["close_agreement"] = 100 * spearman((ec[pos[:, 0]] * ec[pos[:, 1]]).sum(1), t_close)
        return out

    state = load_state(args.work, key)
    if state:
        step, params, m, v, history, running, extra, p_proj = state
        log(f"resuming from step {step} of {r['steps']} ({os.path.join(args.work, STATE)})")
    else:
        t_shape, t = teacher_params(spec["teacher"])
        sample = read_seqs(os.path.join(args.work, "pca.ids.u32"))
        params, p_proj, layers, energy = init_from_teacher(t_shape, t, r, kept, sample)
        del t
        log(f"initialised from teacher layers {layers}; the top {r['hidden']} axes keep {energy:.3f} of the energy")
        m = {n: np.zeros_like(a) for n, a in params.items()}
        v = {n: np.zeros_like(a) for n, a in params.items()}
        step, running = 0, []
        history = [{"step": 0, **check(params)}]
        log(history[-1])
        extra = {"teacher_layers": layers, "pca_energy": energy}
        save_state(args.work, key, step, params, m, v, history, running, extra, p_proj)

    target_p = unit(t_train @ p_proj)
    lens = np.array([len(s) for s in train])
    slots = int(round(r["batch"] * r["group_share"])) if (groups or var_groups) else 0
    n_rand = r["batch"] - slots
    warm = max(1, int(r["steps"] * r["warmup"]))
    b1, b2, eps = 0.9, 0.999, 1e-8
    t0, s0 = time.time(), step
    while step < r["steps"]:
        step += 1
        rng = np.random.default_rng([r["seed"], step])
        # Random texts of similar length (less padding): a window of a sorted random draw.
        pool = rng.integers(n_train, size=n_rand * 8)
        pool = pool[np.argsort(lens[pool], kind="stable")]
        at = int(rng.integers(len(pool) - n_rand + 1))
        idx, gid = [pool[at:at + n_rand]], [np.full(n_rand, -1)]
        filled = 0
        while filled < slots:
            src = var_groups if var_groups and (not groups or rng.random() < r["variant_share"]) else groups
            g = src[int(rng.integers(len(src)))][:slots - filled]
            idx.append(g)
            gid.append(np.full(len(g), len(gid)))
            filled += len(g)
        idx, gid = np.concatenate(idx), np.concatenate(gid)
        e, parts = bert_np.forward_batches(params, shape, train, idx, r["micro_batch"])
        t = t_train[idx]
        b = len(idx)
        d = e @ e.T - t @ t.T
        same = (gid[:, None] == gid[None, :]) & (gid[:, None] >= 0)
        np.fill_diagonal(same, False)
        n_same = max(1, int(same.sum()))
        diff = e - target_p[idx]
        rel = float((d * d).mean())
        grp = float((d * d)[same].sum() / n_same)
        anc = float((diff * diff).sum() / b)
        # d/de of 10 rel + 10 gw grp + anchor anc (the cosine matrix is symmetric: 2 G e).
        g_mat = (20.0 / (b * b)) * d + (20.0 * r["group_weight"] / n_same) * same * d
        de = (2.0 * g_mat @ e + (2.0 * r["anchor"] / b) * diff).astype(np.float32)
        grads = bert_np.backward_batches(params, shape, parts, de)
        norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
        clip = min(1.0, 1.0 / (norm + 1e-6))
        lr = r["lr"] * min(1.0, step / warm) * max(0.0, 1.0 - (step - 1) / r["steps"])
        c1, c2 = 1 - b1 ** step, 1 - b2 ** step
        for n, g in grads.items():
            g = g * np.float32(clip)
            m[n] = b1 * m[n] + (1 - b1) * g
            v[n] = b2 * v[n] + (1 - b2) * g * g
            params[n] *= np.float32(1.0 - lr * r["weight_decay"])
            params[n] -= (lr / c1) * m[n] / (np.sqrt(v[n] / c2) + eps)
        running.append((rel, grp, anc))
        if step % r["progress_every"] == 0 or step == r["steps"]:
            rate = (time.time() - t0) / (step - s0)
            eta = rate * (r["steps"] - step)
            mean = np.mean(running, 0)
            log(f"step {step}/{r['steps']} rel {mean[0]:.5f} group {mean[1]:.5f} anchor {mean[2]:.4f} "
                f"lr {lr:.2e} {rate:.3f} s/step, ETA {int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}")
        if step % r["check_every"] == 0 or step == r["steps"]:
            mean = np.mean(running, 0)
            running = []
            history.append({"step": step, **check(params), "rel_loss": float(mean[0]),
                            "group_loss": float(mean[1]), "anchor_loss": float(mean[2])})
            log(history[-1])
        if step % r["save_every"] == 0 or step == r["steps"]:
            save_state(args.work, key, step, params, m, v, history, running, extra, p_proj)
            log(f"saved step {step}")

    probe = bert_np.embed(params, shape, dev[:PROBES])
    record = {"history": history, "teacher_layers": extra["teacher_layers"], "pca_energy": extra["pca_energy"],
              "neighbour_groups": len(groups), "variant_groups": len(var_groups),
              "probe": {"dev_texts": PROBES, "embeddings": probe.tolist()},
              "numpy": np.__version__, "python": sys.version.split()[0],
              "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
              "seconds_this_run": round(time.time() - started, 1)}
    write_outputs(args.out, params, record)
    log(f"wrote {args.out} in {record['seconds_this_run']} s")


if __name__ == "__main__":
    main()
