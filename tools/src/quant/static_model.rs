//! Static (Tier S) checkpoints: loading the folder tools/train/distill_static.py writes and
//! lowering it to a `.pith` package (int8 rows, per-row requantization into one pooling scale).
//!
//! Checkpoint layout: `config.json` (`"arch": "static"`, `dim`, `tokenizer` settings),
//! `vocab.txt` (one token a line, id = line number) and `embeddings.safetensors` (tensor
//! `embeddings`, fp16 or fp32 `[vocab, dim]`, token weights already folded in).

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use ndarray::Array2;
use serde_json::Value;

use super::build::quantize_rows;
use super::lower::multiplier;
use pith_runtime::format::{
    Arch, DType, Header, ModelConfig, PackageWriter, Pooling, SectionKind as K, TokenizerConfig,
};

/// Units of the i32 pooling accumulator per largest |table value|: 2^20 leaves 2^11 of headroom,
/// more than the 256-token maximum needs (the sum of 256 rows stays below 2^28).
pub const POOL_UNITS: f64 = (1u32 << 20) as f64;

/// A loaded static checkpoint.
pub struct StaticCheckpoint {
    /// Model name for the package header.
    pub name: String,
    /// Token table `[vocab, dim]`.
    pub table: Array2<f32>,
    /// Vocabulary in id order.
    pub vocab: Vec<String>,
    /// Tokenizer settings (ids resolved against `vocab`).
    pub tokenizer: TokenizerConfig,
}

/// Whether `dir/config.json` declares a static model.
pub fn is_static(dir: &Path) -> bool {
    crate::input::text(&dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("arch").and_then(Value::as_str).map(|a| a == "static"))
        .unwrap_or(false)
}

impl StaticCheckpoint {
    /// Loads and checks the folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let cfg: Value = serde_json::from_str(&crate::input::text(&dir.join("config.json"))?)
            .with_context(|| format!("parsing {}", dir.join("config.json").display()))?;
        ensure!(
            cfg.get("arch").and_then(Value::as_str) == Some("static"),
            "config.json: arch is not \"static\""
        );
        let vocab = crate::checkpoint::read_vocab_txt(&dir.join("vocab.txt"))?;
        let bytes = crate::input::bytes(&dir.join("embeddings.safetensors"))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .context("parsing embeddings.safetensors")?;
        let view = st
            .tensor("embeddings")
            .context("embeddings.safetensors lacks `embeddings`")?;
        let (rows, dim) = match view.shape() {
            [r, c] => (*r, *c),
            s => bail!("embeddings has shape {s:?}, expected [vocab, dim]"),
        };
        let Some(data) = crate::checkpoint::tensor_f32(&view) else {
            bail!(
                "embeddings dtype {:?} (expected F16, BF16 or F32)",
                view.dtype()
            );
        };
        ensure!(
            data.iter().all(|v| v.is_finite()),
            "embeddings contain non-finite values"
        );
        ensure!(
            rows == vocab.len(),
            "embeddings have {rows} rows, vocab.txt has {} tokens",
            vocab.len()
        );
        if let Some(d) = cfg.get("dim").and_then(Value::as_u64) {
            ensure!(
                d as usize == dim,
                "config.json dim {d} but embeddings are {dim} wide"
            );
        }
        let table = Array2::from_shape_vec((rows, dim), data)?;

        let t = cfg.get("tokenizer").cloned().unwrap_or(Value::Null);
        let flag = |k: &str, d: bool| t.get(k).and_then(Value::as_bool).unwrap_or(d);
        let num = |k: &str, d: u64| t.get(k).and_then(Value::as_u64).unwrap_or(d) as u32;
        let id = |k: &str, d: &str| -> Result<u32> {
            let tok = t.get(k).and_then(Value::as_str).unwrap_or(d);
            vocab
                .iter()
                .position(|v| v == tok)
                .map(|i| i as u32)
                .with_context(|| format!("vocabulary lacks {tok}"))
        };
        let tokenizer = TokenizerConfig {
            lowercase: flag("lowercase", true),
            strip_accents: flag("strip_accents", true),
            split_cjk: flag("split_cjk", true),
            cls_id: id("cls_token", "[CLS]")?,
            sep_id: id("sep_token", "[SEP]")?,
            unk_id: id("unk_token", "[UNK]")?,
            pad_id: id("pad_token", "[PAD]")?,
            max_len: num("max_len", 256),
            max_chars_per_word: num("max_chars_per_word", 100),
        };
        let name = cfg
            .get("name")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| {
                dir.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "static".into())
            });
        Ok(StaticCheckpoint {
            name,
            table,
            vocab,
            tokenizer,
        })
    }

    /// The float reference: mean of the rows of `ids` (un-normalized; cosine ignores the scale).
    pub fn embed_ids(&self, ids: &[u32]) -> Vec<f32> {
        let dim = self.table.ncols();
        let mut out = vec![0f32; dim];
        for &i in ids {
            for (o, v) in out.iter_mut().zip(self.table.row(i as usize)) {
                *o += v;
            }
        }
        out
    }
}

/// Writes the Static package: vocabulary, int8 rows (symmetric per row) and their (multiplier,
/// shift) into the common pooling scale.
pub fn write_package(ck: &StaticCheckpoint, name: &str) -> Result<Vec<u8>> {
    let (vocab, dim) = ck.table.dim();
    let max_abs = ck.table.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    ensure!(max_abs > 0.0, "the embedding table is all zeros");
    let pool_scale = max_abs / POOL_UNITS;
    let (q, row_scale) = quantize_rows(&ck.table);
    // An all-zero row keeps the quantizer's placeholder scale 1: give it multiplier 0 so the
    // runtime skips it instead of scaling zeros.
    let rq: Vec<i32> = ck
        .table
        .rows()
        .into_iter()
        .zip(&row_scale)
        .flat_map(|(row, &s)| {
            let (m, sh) = if row.iter().all(|&v| v == 0.0) {
                (0, 0)
            } else {
                multiplier(s as f64 / pool_scale)
            };
            [m, sh]
        })
        .collect();
    let header = Header {
        name: super::lower::header_name(name),
        arch: Arch::Static,
        model: ModelConfig {
            vocab_size: vocab as u32,
            hidden: dim as u32,
            layers: 0,
            heads: 0,
            ffn: 0,
            max_positions: ck.tokenizer.max_len,
            pooling: Pooling::Mean,
            normalize: true,
        },
        tokenizer: ck.tokenizer,
        pool_scale: pool_scale as f32,
        score_step_log2: 0,
    };
    let mut w = PackageWriter::new(header);
    let section = pith_runtime::tokenizer::build_vocab_section(&ck.vocab);
    w.add(K::Vocab, 0, DType::U8, 1, section.len(), section);
    w.add_i8(
        K::StaticEmb,
        0,
        vocab,
        dim,
        &q.iter().copied().collect::<Vec<_>>(),
    );
    w.add_i32(K::StaticEmbRq, 0, vocab, 2, &rq);
    Ok(w.finish())
}
