#!/usr/bin/env python3
"""Independent numpy reference for sentence-transformers BERT and MPNet checkpoints.

Reads model.safetensors directly and runs the encoder in float64, one sentence at a time
(no padding), so it shares nothing with the ONNX exporter but the checkpoint. Used as the
ground truth the exported graphs are checked against. MPNet (Hugging Face's MPNetModel):
positions from pad id + 1, no token types, and a relative position bias (T5's bidirectional
buckets, 32 of them, max distance 128) shared by every layer and added to the scaled scores.

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
        self.mpnet = self.cfg.get("model_type") == "mpnet"
        # MPNet counts positions from pad id + 1 (RoBERTa's convention).
        self.pos0 = self.cfg.get("pad_token_id", 1) + 1 if self.mpnet else 0
        self.w = {}
        for k, v in raw.items():
            for p in ("0.auto_model.", "bert.", "mpnet.", "model."):
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
            max_len = self.cfg["max_position_embeddings"] - self.pos0
            st_path = os.path.join(model_dir, "sentence_bert_config.json")
            if os.path.exists(st_path):
                with open(st_path) as f:
                    max_len = min(max_len, json.load(f).get("max_seq_length", max_len))
        self.tok = load_tokenizer(model_dir)
        # tokenizer.json may carry fixed padding/truncation for another use; the reference wants
        # exactly the sentence, cut at the model's max length.
        self.tok.no_padding()
        self.tok.enable_truncation(max_len)

    def ids(self, text):
        return self.tok.encode(text).ids

    def name(self, module):
        """The checkpoint's name of a BERT module inside `encoder.layer.N.`."""
        if not self.mpnet:
            return module
        return {
            "attention.self.query": "attention.attn.q",
            "attention.self.key": "attention.attn.k",
            "attention.self.value": "attention.attn.v",
            "attention.output.dense": "attention.attn.o",
            "attention.output.LayerNorm": "attention.LayerNorm",
        }.get(module, module)

    def lin(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def position_bias(self, n):
        """[heads, n, n]: MPNet's bias of every query (row) and key (column), or zeros."""
        if not self.mpnet:
            return np.zeros((self.heads, n, n))
        rel = np.arange(n)[None, :] - np.arange(n)[:, None]  # key - query
        table = self.w["encoder.relative_attention_bias.weight"]
        return table[relative_bucket(rel)].transpose(2, 0, 1)

    def embed_ids(self, ids):
        w = self.w
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][self.pos0:self.pos0 + n]
        if not self.mpnet:
            x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hidden = x.shape[1]
        dh = hidden // self.heads
        bias = self.position_bias(n)
        for l in range(self.layers):
            p = f"encoder.layer.{l}."
            m = lambda module: p + self.name(module)
            q = self.lin(x, m("attention.self.query")).reshape(n, self.heads, dh).transpose(1, 0, 2)
            k = self.lin(x, m("attention.self.key")).reshape(n, self.heads, dh).transpose(1, 0, 2)
            v = self.lin(x, m("attention.self.value")).reshape(n, self.heads, dh).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(dh) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, hidden)
            a = self.lin(ctx, m("attention.output.dense"))
            ln1 = m("attention.output.LayerNorm")
            x = layer_norm(a + x, w[ln1 + ".weight"], w[ln1 + ".bias"], self.eps)
            u = gelu(self.lin(x, p + "intermediate.dense"))
            d = self.lin(u, p + "output.dense")
            x = layer_norm(d + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        e = x[0] if self.cls else x.mean(0)
        if self.normalize:
            e = e / max(np.linalg.norm(e), 1e-12)
        return e

    def embed(self, text):
        return self.embed_ids(self.ids(text))


def relative_bucket(rel, buckets=32, max_distance=128):
    """MPNet's bucket of each offset `key - query` (its relative_position_bucket: float32 log,
    truncated)."""
    half = buckets // 2
    exact = half // 2
    n = -rel
    side = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    with np.errstate(divide="ignore"):
        # Offsets under `exact` take their own bucket below; the log only serves the rest.
        ratio = np.log(np.maximum(n, 1).astype(np.float32) / np.float32(exact)) / np.float32(math.log(max_distance / exact))
    large = np.minimum(exact + (ratio * np.float32(half - exact)).astype(np.int64), half - 1)
    return side + np.where(n < exact, n, large)


def load_tokenizer(model_dir):
    """tokenizer.json, else Hugging Face's BERT WordPiece tokenizer over vocab.txt with the
    special tokens of special_tokens_map.json (BERT's when absent)."""
    path = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(path):
        return Tokenizer.from_file(path)
    from tokenizers import BertWordPieceTokenizer

    special = {}
    sp = os.path.join(model_dir, "special_tokens_map.json")
    if os.path.exists(sp):
        with open(sp) as f:
            special = json.load(f)
    pick = lambda k, d: special.get(k, d) if isinstance(special.get(k, d), str) else special[k]["content"]
    return BertWordPieceTokenizer(
        os.path.join(model_dir, "vocab.txt"),
        unk_token=pick("unk_token", "[UNK]"),
        sep_token=pick("sep_token", "[SEP]"),
        cls_token=pick("cls_token", "[CLS]"),
        pad_token=pick("pad_token", "[PAD]"),
        lowercase=True,
    )


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
