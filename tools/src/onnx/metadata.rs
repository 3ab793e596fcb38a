//! The `metadata_props` of an fp32 export: what is not a tensor (layout version, configuration,
//! vocabulary), so `crate::checkpoint::onnx` reads the file back as the checkpoint it came from.

use anyhow::{bail, Result};
use pith_runtime::format::Pooling;
use serde_json::json;
use tract_onnx::pb::StringStringEntryProto;

use crate::checkpoint::Checkpoint;

/// Metadata key of the layout version.
pub const FORMAT_KEY: &str = "pith.format";
/// Metadata key of the JSON configuration.
pub const CONFIG_KEY: &str = "pith.config";
/// Metadata key of the vocabulary.
pub const VOCAB_KEY: &str = "pith.vocab";
/// The layout version this module writes and reads.
pub const FORMAT_VERSION: &str = "1";

fn pooling_name(p: Pooling) -> &'static str {
    match p {
        Pooling::Mean => "mean",
        Pooling::Cls => "cls",
    }
}

/// The `metadata_props` that make an fp32 export readable back as `ck`.
pub fn metadata(ck: &Checkpoint) -> Result<Vec<StringStringEntryProto>> {
    let c = &ck.config;
    let t = &ck.tokenizer;
    // f32 -> f64 is exact and serde_json prints the shortest f64 that parses back to the same
    // value, so the epsilon survives the round trip bit for bit.
    let config = json!({
        "name": ck.name,
        "vocab_size": c.vocab_size,
        "hidden": c.hidden,
        "layers": c.layers,
        "heads": c.heads,
        "ffn": c.ffn,
        "max_positions": c.max_positions,
        "layer_norm_eps": c.layer_norm_eps as f64,
        "pooling": pooling_name(ck.pooling),
        "normalize": ck.normalize,
        "tokenizer": {
            "lowercase": t.lowercase,
            "strip_accents": t.strip_accents,
            "split_cjk": t.split_cjk,
            "cls_id": t.cls_id,
            "sep_id": t.sep_id,
            "unk_id": t.unk_id,
            "pad_id": t.pad_id,
            "max_len": t.max_len,
            "max_chars_per_word": t.max_chars_per_word,
        },
    });
    // One token a line only works if no token holds a line break.
    if let Some(bad) = ck.vocab.iter().find(|tok| tok.contains('\n')) {
        bail!(
            "vocabulary token {bad:?} contains a line break; it cannot be stored one token a line"
        );
    }
    let entry = |k: &str, v: String| StringStringEntryProto {
        key: k.to_string(),
        value: v,
    };
    Ok(vec![
        entry(FORMAT_KEY, FORMAT_VERSION.to_string()),
        entry(CONFIG_KEY, serde_json::to_string(&config)?),
        entry(VOCAB_KEY, ck.vocab.join("\n")),
    ])
}
