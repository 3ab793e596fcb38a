"""A BERT encoder with sentence-transformers mean pooling, in PyTorch, for distillation only.

Tensor names follow Hugging Face's BertModel, so a student saved with ``state_dict_hf`` is a
checkpoint `pith quantize` reads like any other (post-LayerNorm, exact GELU, absolute positions).
The runtime never uses this file: it is the training-side twin of tools/src/fp32.rs.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, h, heads, ffn, eps):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.attn_out = nn.Linear(h, h)
        self.ln1 = nn.LayerNorm(h, eps=eps)
        self.up = nn.Linear(h, ffn)
        self.down = nn.Linear(ffn, h)
        self.ln2 = nn.LayerNorm(h, eps=eps)

    def forward(self, x, bias):
        b, t, h = x.shape
        dh = h // self.heads

        def split(y):
            return y.view(b, t, self.heads, dh).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(dh) + bias
        ctx = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)
        x = self.ln1(x + self.attn_out(ctx))
        return self.ln2(x + self.down(F.gelu(self.up(x))))


class Bert(nn.Module):
    def __init__(self, vocab, hidden, layers, heads, ffn, max_pos, eps=1e-12):
        super().__init__()
        self.cfg = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=ffn,
                        max_position_embeddings=max_pos, layer_norm_eps=eps)
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_pos, hidden)
        self.typ = nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(Layer(hidden, heads, ffn, eps) for _ in range(layers))

    def hidden_states(self, ids, mask):
        """All layers' outputs (embedding LayerNorm first), [B, T, H] each."""
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device)
        x = self.ln(self.word(ids) + self.pos(pos)[None] + self.typ.weight[0])
        bias = (1.0 - mask[:, None, None, :].float()) * -1e4
        out = [x]
        for layer in self.layers:
            x = layer(x, bias)
            out.append(x)
        return out

    def forward(self, ids, mask):
        """Mean-pooled (over real tokens, [CLS] and [SEP] included), L2-normalised embeddings."""
        x = self.hidden_states(ids, mask)[-1]
        m = mask[..., None].float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return F.normalize(pooled, dim=-1)

    # --- Hugging Face tensor names ---------------------------------------------------------

    _LAYER_NAMES = {
        "query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
        "attn_out": "attention.output.dense", "ln1": "attention.output.LayerNorm",
        "up": "intermediate.dense", "down": "output.dense", "ln2": "output.LayerNorm",
    }

    def state_dict_hf(self):
        sd = {
            "embeddings.word_embeddings.weight": self.word.weight,
            "embeddings.position_embeddings.weight": self.pos.weight,
            "embeddings.token_type_embeddings.weight": self.typ.weight,
            "embeddings.LayerNorm.weight": self.ln.weight,
            "embeddings.LayerNorm.bias": self.ln.bias,
        }
        for i, layer in enumerate(self.layers):
            for ours, theirs in self._LAYER_NAMES.items():
                mod = getattr(layer, ours)
                sd[f"encoder.layer.{i}.{theirs}.weight"] = mod.weight
                sd[f"encoder.layer.{i}.{theirs}.bias"] = mod.bias
        return {k: v.detach().contiguous() for k, v in sd.items()}

    @classmethod
    def from_hf(cls, tensors, cfg):
        """Builds the model from a Hugging Face state dict (prefixes such as ``bert.`` dropped)."""
        m = cls(cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"],
                cfg["num_attention_heads"], cfg["intermediate_size"],
                cfg["max_position_embeddings"], cfg.get("layer_norm_eps", 1e-12))
        own = m.state_dict_hf()
        with torch.no_grad():
            for k, v in own.items():
                v.copy_(torch.as_tensor(tensors[k]).to(v.dtype))
        return m
