"""What the training scripts share: where the repository is, and a model's width read from its
checkpoint or ONNX graph (never assumed), so one script serves any teacher."""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def checkpoint_config(path):
    """The config.json of the checkpoint folder `path`, with an error naming the file."""
    cfg = os.path.join(path, "config.json")
    try:
        with open(cfg) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{cfg}: {e}")


def embedding_dim(path):
    """Width of the sentence embeddings the checkpoint `path` gives (`hidden_size`, or `dim` of a
    static model)."""
    cfg = checkpoint_config(path)
    for key in ("hidden_size", "dim"):
        if isinstance(cfg.get(key), int) and cfg[key] > 0:
            return cfg[key]
    raise SystemExit(f"{path}/config.json: no positive hidden_size or dim")


def onnx_output_dim(sess):
    """Width of an onnxruntime session's last output (the pooled sentence embedding)."""
    shape = sess.get_outputs()[-1].shape
    if not shape or not isinstance(shape[-1], int):
        raise SystemExit(f"the ONNX graph's output {sess.get_outputs()[-1].name} has no fixed width")
    return shape[-1]
