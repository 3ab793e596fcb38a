//! The `metadata_props` of an fp32 export: what is not a tensor (layout version, configuration,
//! vocabulary), so `crate::checkpoint::onnx` reads the file back as the checkpoint it came from.

use anyhow::{bail, Result};
use pith_runtime::format::{Pooling, TokenizerConfig};
use serde::{Deserialize, Serialize};
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

/// The JSON under [`CONFIG_KEY`]: what of a checkpoint is not a tensor. Written and read back
/// through this one type.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// The model's name (older files may lack it: the reader then uses the file's stem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub max_positions: usize,
    /// f32 -> f64 is exact and serde_json prints the shortest f64 that parses back to the same
    /// value, so the epsilon survives the round trip bit for bit.
    pub layer_norm_eps: f64,
    pub pooling: PoolingName,
    pub normalize: bool,
    pub tokenizer: TokenizerConfig,
    /// MPNet's relative position buckets (absent, 0, for BERT).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rel_buckets: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Pooling as the export spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingName {
    Mean,
    Cls,
}

impl From<Pooling> for PoolingName {
    fn from(p: Pooling) -> Self {
        match p {
            Pooling::Mean => PoolingName::Mean,
            Pooling::Cls => PoolingName::Cls,
        }
    }
}

impl From<PoolingName> for Pooling {
    fn from(p: PoolingName) -> Self {
        match p {
            PoolingName::Mean => Pooling::Mean,
            PoolingName::Cls => Pooling::Cls,
        }
    }
}

/// The `metadata_props` that make an fp32 export readable back as `ck`.
pub fn metadata(ck: &Checkpoint) -> Result<Vec<StringStringEntryProto>> {
    let c = &ck.config;
    let config = ExportConfig {
        name: Some(ck.name.clone()),
        vocab_size: c.vocab_size,
        hidden: c.hidden,
        layers: c.layers,
        heads: c.heads,
        ffn: c.ffn,
        max_positions: c.max_positions,
        layer_norm_eps: c.layer_norm_eps as f64,
        pooling: ck.pooling.into(),
        normalize: ck.normalize,
        tokenizer: ck.tokenizer,
        rel_buckets: c.rel_buckets,
    };
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
        entry(
            CONFIG_KEY,
            serde_json::to_string(&serde_json::to_value(&config)?)?,
        ),
        entry(VOCAB_KEY, ck.vocab.join("\n")),
    ])
}
