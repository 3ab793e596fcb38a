//! Static (Tier S) checkpoints: loading the folder tools/train/distill_static.py writes and
//! lowering it to a `.pith` package (int8 rows, per-row requantization into one pooling scale).
//!
//! Checkpoint layout: `config.json` (`"arch": "static"`, `dim`, `tokenizer` settings),
//! `vocab.txt` (one token a line, id = line number) and `embeddings.safetensors` (tensor
//! `embeddings`, fp16 or fp32 `[vocab, dim]`, token weights already folded in). `config.json`'s
//! `bits` (8 when absent, or 4) sets the package's table: int8 rows (`StaticEmb`) or 4-bit rows
//! (`StaticEmb4`, half the bytes, so twice the vocabulary in the same flash).
//!
//! A head (`config.json` `head` > 0, with `head_z_max`; tensors `head.up.weight` `[head, dim]`,
//! `head.up.bias` `[head]`, `head.down.weight` `[dim, head]`): `y = x + W2 relu(W1 x + b1)` on
//! the pooled vector scaled to a largest |value| of 1, written as layer 0's FFN sections with a
//! ReLU table in `GeluTable` (the runtime's `static_model` module).

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use ndarray::{Array1, Array2};
use serde_json::Value;

use super::build::{qlinear, quantize_rows};
use super::lower::{add_linear, multiplier};
use pith_runtime::engine::HEAD_RESIDUAL_SHIFT;
use pith_runtime::format::int4::I4_MAX;
use pith_runtime::format::layout::{DOWN, GELU_LEN, UP};
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
    /// Bits a table value takes in the package: 8 or 4.
    pub bits: u32,
    /// The head on the pooled vector, if the checkpoint has one.
    pub head: Option<StaticHead>,
}

/// A static model's head: `y = x + down · relu(up · x + up_bias)`, `x` scaled to a largest
/// |value| of 1.
pub struct StaticHead {
    /// `[head, dim]`.
    pub up: Array2<f32>,
    /// `[head]`.
    pub up_bias: Array1<f32>,
    /// `[dim, head]`.
    pub down: Array2<f32>,
    /// The largest ReLU input the int8 grid covers (config.json `head_z_max`).
    pub z_max: f32,
}

impl StaticHead {
    /// `x` (scaled to a largest |value| of 1) through the head.
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let x = Array1::from_vec(x.to_vec());
        let z = self.up.dot(&x) + &self.up_bias;
        // The device's int8 grid stops at z_max.
        let h = z.mapv(|v| v.clamp(0.0, self.z_max));
        (&x + &self.down.dot(&h)).to_vec()
    }
}

/// Reads `name` from `st` (the contents of `file`) as fp32 values with its shape, or says what
/// is wrong with it, naming the file: absent (`why` says why it must be there), not a float type,
/// or not finite.
fn f32_tensor(
    st: &safetensors::SafeTensors<'_>,
    name: &str,
    file: &Path,
    why: &str,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let view = st
        .tensor(name)
        .with_context(|| format!("{}: no `{name}` ({why})", file.display()))?;
    let Some(data) = crate::checkpoint::tensor_f32(&view) else {
        bail!(
            "{}: `{name}` is {:?}, not F16, BF16 or F32",
            file.display(),
            view.dtype()
        );
    };
    ensure!(
        data.iter().all(|v| v.is_finite()),
        "{}: `{name}` has non-finite values",
        file.display()
    );
    Ok((view.shape().to_vec(), data))
}

/// A head tensor: `name` from `st`, of exactly `shape`.
fn head_tensor(
    st: &safetensors::SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    file: &Path,
) -> Result<Vec<f32>> {
    let (got, data) = f32_tensor(st, name, file, "config.json declares a head")?;
    ensure!(
        got == shape,
        "{}: `{name}` has shape {got:?}, expected {shape:?}",
        file.display()
    );
    Ok(data)
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
        let file = dir.join("embeddings.safetensors");
        let bytes = crate::input::bytes(&file)?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .with_context(|| format!("parsing {}", file.display()))?;
        let (shape, data) = f32_tensor(&st, "embeddings", &file, "the token table")?;
        let [rows, dim] = shape[..] else {
            bail!(
                "{}: `embeddings` has shape {shape:?}, expected [vocab, dim]",
                file.display()
            );
        };
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
        let bits = match cfg.get("bits") {
            None => 8,
            Some(b) => match b.as_u64() {
                Some(8) => 8,
                Some(4) if dim.is_multiple_of(2) => 4,
                Some(4) => bail!(
                    "{}: bits 4 needs an even dim, not {dim}",
                    dir.join("config.json").display()
                ),
                _ => bail!(
                    "{}: bits is {b}; it must be 8 or 4",
                    dir.join("config.json").display()
                ),
            },
        };
        let config = dir.join("config.json");
        let head = match cfg.get("head").map(|h| (h.as_u64(), cfg.get("head_z_max"))) {
            None | Some((Some(0), _)) => None,
            Some((Some(f), Some(z))) => {
                let f = f as usize;
                let z_max = z
                    .as_f64()
                    .filter(|z| z.is_finite() && *z > 0.0)
                    .with_context(|| {
                        format!("{}: head_z_max must be a positive number", config.display())
                    })? as f32;
                let up = head_tensor(&st, "head.up.weight", &[f, dim], &file)?;
                let up_bias = head_tensor(&st, "head.up.bias", &[f], &file)?;
                let down = head_tensor(&st, "head.down.weight", &[dim, f], &file)?;
                Some(StaticHead {
                    up: Array2::from_shape_vec((f, dim), up)?,
                    up_bias: Array1::from_vec(up_bias),
                    down: Array2::from_shape_vec((dim, f), down)?,
                    z_max,
                })
            }
            Some((None, _)) => bail!("{}: head must be a whole number", config.display()),
            Some((Some(_), None)) => bail!("{}: a head needs head_z_max", config.display()),
        };

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
            bits,
            head,
        })
    }

    /// The float reference: mean of the rows of `ids` (un-normalized; cosine ignores the scale),
    /// through the head when there is one.
    pub fn embed_ids(&self, ids: &[u32]) -> Vec<f32> {
        let dim = self.table.ncols();
        let mut out = vec![0f32; dim];
        for &i in ids {
            for (o, v) in out.iter_mut().zip(self.table.row(i as usize)) {
                *o += v;
            }
        }
        match &self.head {
            None => out,
            Some(h) => {
                let m = out.iter().fold(0f32, |m, v| m.max(v.abs()));
                if m == 0.0 {
                    return out;
                }
                h.apply(&out.iter().map(|v| v / m).collect::<Vec<_>>())
            }
        }
    }
}

/// Writes the Static package: vocabulary, int8 or 4-bit rows (symmetric per row) and their
/// (multiplier, shift) into the common pooling scale.
pub fn write_package(ck: &StaticCheckpoint, name: &str) -> Result<Vec<u8>> {
    let (vocab, dim) = ck.table.dim();
    let max_abs = ck.table.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    ensure!(max_abs > 0.0, "the embedding table is all zeros");
    let pool_scale = max_abs / POOL_UNITS;
    let (q, row_scale) = match ck.bits {
        4 => quantize_rows4(&ck.table),
        _ => {
            let (q, s) = quantize_rows(&ck.table);
            (q.into_raw_vec_and_offset().0, s)
        }
    };
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
            ffn: ck.head.as_ref().map_or(0, |h| h.up.nrows() as u32),
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
    match ck.bits {
        4 => w.add_i4(K::StaticEmb4, 0, vocab, dim, &q),
        _ => w.add_i8(K::StaticEmb, 0, vocab, dim, &q),
    }
    w.add_i32(K::StaticEmbRq, 0, vocab, 2, &rq);
    if let Some(h) = &ck.head {
        add_head(&mut w, h);
    }
    Ok(w.finish())
}

/// Writes the head as layer 0's FFN sections. Up reads the pooled int8 vector (127 a unit) and
/// writes the ReLU input on the grid of `z_max / 127`; the activation table is the ReLU on that
/// grid; down adds into the pooled vector's residual, `127 * 2^HEAD_RESIDUAL_SHIFT` a unit.
fn add_head(w: &mut PackageWriter, h: &StaticHead) {
    let (f, dim) = h.up.dim();
    let z_scale = h.z_max / 127.0;
    let up = qlinear(&h.up, &h.up_bias, &vec![1.0; dim], None);
    add_linear(w, 0, UP, &up, Some(z_scale), None);
    let relu: Vec<i8> = (0..GELU_LEN as i32)
        .map(|i| (i - 128).max(0) as i8)
        .collect();
    w.add_i8(K::GeluTable, 0, 1, GELU_LEN, &relu);
    let down = qlinear(&h.down, &Array1::zeros(dim), &vec![h.z_max; f], None);
    let residual_unit = 1.0 / (127.0 * (1u32 << HEAD_RESIDUAL_SHIFT) as f32);
    add_linear(w, 0, DOWN, &down, Some(residual_unit), None);
}

/// Clipping ratios tried for each 4-bit row: the one with the least squared error wins (with 15
/// levels, clipping a row's largest value often costs less than the coarser grid it would
/// force on the rest).
const CLIPS4: [f64; 9] = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6];

/// Symmetric 4-bit rows (−7..=7, row-major) and each row's scale; an all-zero row gets zeros and
/// the placeholder scale 1, as [`quantize_rows`] gives it.
pub fn quantize_rows4(t: &Array2<f32>) -> (Vec<i8>, Vec<f32>) {
    let max = I4_MAX as f64;
    let mut q = Vec::with_capacity(t.len());
    let mut scales = Vec::with_capacity(t.nrows());
    for row in t.rows() {
        let m = row.iter().fold(0f64, |a, &v| a.max((v as f64).abs()));
        if m == 0.0 {
            q.extend(std::iter::repeat_n(0i8, row.len()));
            scales.push(1.0);
            continue;
        }
        let code = |v: f32, s: f64| (v as f64 / s).round().clamp(-max, max);
        let error = |s: f64| -> f64 {
            row.iter()
                .map(|&v| (code(v, s) * s - v as f64).powi(2))
                .sum()
        };
        let mut best = m / max;
        let mut least = error(best);
        for c in &CLIPS4[1..] {
            let s = m * c / max;
            let e = error(s);
            if e < least {
                (best, least) = (s, e);
            }
        }
        q.extend(row.iter().map(|&v| code(v, best) as i8));
        scales.push(best as f32);
    }
    (q, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_bit_rows_stay_in_range_and_clip_only_when_it_helps() {
        // Row 0: values just off the grid that max/7 gives (clipping the largest a little
        // moves the grid onto the rest); row 1: values on that grid (no clipping); row 2: zeros.
        let t = Array2::from_shape_vec(
            (3, 8),
            vec![
                1.0, 0.64, -0.64, 0.64, -0.64, 0.64, -0.64, 0.64, //
                7.0, -7.0, 6.0, -5.0, 4.0, -3.0, 2.0, -1.0, //
                0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ],
        )
        .unwrap();
        let (q, s) = quantize_rows4(&t);
        assert!(q.iter().all(|v| (-I4_MAX..=I4_MAX).contains(v)));
        assert!(s[0] < 1.0 / 7.0, "the first row is clipped: scale {}", s[0]);
        assert_eq!(&q[..3], &[7, 5, -5]);
        assert_eq!(s[1], 1.0);
        assert_eq!(&q[8..16], &[7, -7, 6, -5, 4, -3, 2, -1]);
        assert_eq!((&q[16..], s[2]), (&[0i8; 8][..], 1.0));
    }
}
