#!/usr/bin/env python3
"""Independent numpy reference for sentence-transformers BERT checkpoints.

Reads model.safetensors directly and runs the encoder in float64, one sentence at a time
(no padding), so it shares nothing with the ONNX exporter but the checkpoint. Used as the
ground truth the exported graphs are checked against.

  python3 bert_ref.py MODEL_DIR --sentences FILE [--limit N] [--out ref.json]

writes {"ids": [[...]], "embeddings": [[...]]} (token ids and reference embeddings).
"""

import os

# The matrices here are small: threaded BLAS only spins and, on a shared machine, stalls.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def erf(x):
    # numpy has no erf and scipy may be absent. Abramowitz & Stegun 7.1.26 is accurate to 1.5e-7
    # absolute, far below what a 1e-5 cosine tolerance can see.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


class BertRef:
    """A BERT encoder + sentence-transformers pooling in float64."""

    def __init__(self, model_dir, max_len=None):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        raw = load_file(os.path.join(model_dir, "model.safetensors"))
        self.w = {}
        for k, v in raw.items():
            for p in ("0.auto_model.", "bert.", "model."):
                if k.startswith(p):
                    k = k[len(p):]
            self.w[k] = v.astype(np.float64)
        self.heads = self.cfg["num_attention_heads"]
        self.layers = self.cfg["num_hidden_layers"]
        self.eps = self.cfg.get("layer_norm_eps", 1e-12)

        pool_path = os.path.join(model_dir, "1_Pooling", "config.json")
        pool = {}
        if os.path.exists(pool_path):
            with open(pool_path) as f:
                pool = json.load(f)
        self.cls = bool(pool.get("pooling_mode_cls_token", False))
        self.normalize = False
        mod_path = os.path.join(model_dir, "modules.json")
        if os.path.exists(mod_path):
            with open(mod_path) as f:
                self.normalize = any(m.get("type") == "sentence_transformers.models.Normalize" for m in json.load(f))
        if max_len is None:
            max_len = self.cfg["max_position_embeddings"]
            st_path = os.path.join(model_dir, "sentence_bert_config.json")
            if os.path.exists(st_path):
                with open(st_path) as f:
                    max_len = min(max_len, json.load(f).get("max_seq_length", max_len))
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        # tokenizer.json may carry fixed padding/truncation for another use; the reference wants
        # exactly the sentence, cut at the model's max length.
        self.tok.no_padding()
        self.tok.enable_truncation(max_len)

    def ids(self, text):
        return self.tok.encode(text).ids

    def lin(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def embed_ids(self, ids):
        w = self.w
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:n]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hidden = x.shape[1]
        dh = hidden // self.heads
        for l in range(self.layers):
            p = f"encoder.layer.{l}."
            q = self.lin(x, p + "attention.self.query").reshape(n, self.heads, dh).transpose(1, 0, 2)
            k = self.lin(x, p + "attention.self.key").reshape(n, self.heads, dh).transpose(1, 0, 2)
            v = self.lin(x, p + "attention.self.value").reshape(n, self.heads, dh).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, hidden)
            a = self.lin(ctx, p + "attention.output.dense")
            x = layer_norm(a + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            u = gelu(self.lin(x, p + "intermediate.dense"))
            d = self.lin(u, p + "output.dense")
            x = layer_norm(d + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        e = x[0] if self.cls else x.mean(0)
        if self.normalize:
            e = e / max(np.linalg.norm(e), 1e-12)
        return e

    def embed(self, text):
        return self.embed_ids(self.ids(text))


def read_sentences(path, limit=None):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(line)
                if limit is not None and len(out) >= limit:
                    break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--sentences", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None, help="JSON file (default: stdout)")
    args = ap.parse_args()
    ref = BertRef(args.model_dir)
    ids, embs = [], []
    for s in read_sentences(args.sentences, args.limit):
        i = ref.ids(s)
        ids.append(i)
        embs.append(ref.embed_ids(i).astype(float).tolist())
    doc = json.dumps({"ids": ids, "embeddings": embs})
    if args.out:
        with open(args.out, "w") as f:
            f.write(doc)
    else:
        sys.stdout.write(doc)


if __name__ == "__main__":
    main()
