//! Reading a Hugging Face sentence-transformers checkpoint of the BERT family (BERT, MiniLM,
//! bge-small, e5-small) or an MPNet (all-mpnet-base-v2): config.json, model.safetensors,
//! vocab.txt or tokenizer.json, special tokens, pooling config.

pub mod hf_config;
pub mod onnx;
pub mod prune;
pub mod relpos;

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::{Array1, Array2};
use pith_runtime::format::{Pooling, TokenizerConfig};
use serde_json::Value;

pub use crate::checkpoint::hf_config::BertConfig;
use hf_config::Normalizer;

/// One encoder layer's fp32 weights, PyTorch layout (`[out, in]`).
pub struct Layer {
    pub wq: Array2<f32>,
    pub bq: Array1<f32>,
    pub wk: Array2<f32>,
    pub bk: Array1<f32>,
    pub wv: Array2<f32>,
    pub bv: Array1<f32>,
    pub wo: Array2<f32>,
    pub bo: Array1<f32>,
    pub ln1_g: Array1<f32>,
    pub ln1_b: Array1<f32>,
    pub w1: Array2<f32>,
    pub b1: Array1<f32>,
    pub w2: Array2<f32>,
    pub b2: Array1<f32>,
    pub ln2_g: Array1<f32>,
    pub ln2_b: Array1<f32>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub name: String,
    pub config: BertConfig,
    pub word_emb: Array2<f32>,
    pub pos_emb: Array2<f32>,
    pub type_emb: Array2<f32>,
    pub emb_ln_g: Array1<f32>,
    pub emb_ln_b: Array1<f32>,
    pub layers: Vec<Layer>,
    /// MPNet's relative position bias, `[buckets, heads]`, shared by every layer (`None` for
    /// BERT).
    pub rel_bias: Option<Array2<f32>>,
    /// Vocabulary in id order.
    pub vocab: Vec<String>,
    pub tokenizer: TokenizerConfig,
    pub pooling: Pooling,
    pub normalize: bool,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = crate::input::text(path)?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

struct Tensors {
    map: HashMap<String, Array2<f32>>,
    /// The file, for errors.
    path: String,
}

impl Tensors {
    fn load(path: &Path) -> Result<Self> {
        let bytes = crate::input::bytes(path)?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        let mut map = HashMap::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let Some(data) = tensor_f32(&view) else {
                continue; // position_ids (int64) and the like are not weights
            };
            let (r, c) = match shape.as_slice() {
                [n] => (1, *n),
                [r, c] => (*r, *c),
                _ => continue,
            };
            // Accept the prefixes different exporters use ("bert.", "model.", "0.auto_model.").
            let key = name
                .trim_start_matches("0.auto_model.")
                .trim_start_matches("bert.")
                .trim_start_matches("mpnet.")
                .trim_start_matches("model.")
                .to_string();
            // One NaN weight would map every text to the same vector without a word of warning.
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                bail!(
                    "{}: tensor `{name}` holds a non-finite value ({}) at element {i}",
                    path.display(),
                    data[i]
                );
            }
            map.insert(key, Array2::from_shape_vec((r, c), data)?);
        }
        Ok(Tensors {
            map,
            path: path.display().to_string(),
        })
    }

    /// The matrix `name`, which must have `rows` × `cols` (what config.json implies).
    fn mat(&mut self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>> {
        let m = self
            .map
            .remove(name)
            .with_context(|| format!("{}: no tensor `{name}`", self.path))?;
        if m.dim() != (rows, cols) {
            bail!(
                "{}: `{name}` has shape {:?}, config.json implies [{rows}, {cols}]",
                self.path,
                [m.nrows(), m.ncols()]
            );
        }
        Ok(m)
    }

    /// The vector `name`, which must have `n` values.
    fn vec(&mut self, name: &str, n: usize) -> Result<Array1<f32>> {
        let m = self.mat(name, 1, n)?;
        Ok(m.into_shape_with_order(n)?)
    }

    /// The matrix `name` with `cols` columns and any number of rows (at least one).
    fn take_rows(&mut self, name: &str, cols: usize) -> Result<Array2<f32>> {
        let rows = self.map.get(name).map_or(1, |m| m.nrows().max(1));
        self.mat(name, rows, cols)
    }

    /// Fails when the file holds weights of layer `layers` or later: config.json names fewer
    /// layers than the checkpoint has, and the rest would be dropped silently.
    fn no_layer_beyond(&self, layers: usize) -> Result<()> {
        let extra = format!("encoder.layer.{layers}.");
        if self.map.keys().any(|k| k.starts_with(&extra)) {
            bail!(
                "{}: holds weights of layer {layers}, but config.json says num_hidden_layers {layers}",
                self.path
            );
        }
        Ok(())
    }
}

/// A safetensors tensor's values as f32 (F32, F16 or BF16, little-endian, as the format stores
/// them); `None` for other dtypes.
pub(crate) fn tensor_f32(view: &safetensors::tensor::TensorView<'_>) -> Option<Vec<f32>> {
    let d = view.data();
    Some(match view.dtype() {
        safetensors::Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        safetensors::Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        safetensors::Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// The tokens of a `vocab.txt` (one a line, id = line number, a byte-order mark dropped); a
/// token on two lines is an error naming both (one of the two ids could never come out of the
/// tokenizer, and which one would depend on the lookup).
pub fn read_vocab_txt(path: &Path) -> Result<Vec<String>> {
    let text = crate::input::text(path)?;
    let vocab: Vec<String> = text.lines().map(String::from).collect();
    let mut seen = std::collections::HashMap::with_capacity(vocab.len());
    for (i, t) in vocab.iter().enumerate() {
        if let Some(first) = seen.insert(t.as_str(), i) {
            bail!(
                "{}:{}: the token {t:?} is already on line {}",
                path.display(),
                i + 1,
                first + 1
            );
        }
    }
    Ok(vocab)
}

fn load_vocab(dir: &Path) -> Result<Vec<String>> {
    let txt = dir.join("vocab.txt");
    if txt.exists() {
        return read_vocab_txt(&txt);
    }
    let tj =
        read_json(&dir.join("tokenizer.json")).context("no vocab.txt and no tokenizer.json")?;
    let vocab = tj
        .pointer("/model/vocab")
        .and_then(Value::as_object)
        .context("tokenizer.json has no WordPiece model.vocab")?;
    let mut pairs: Vec<(usize, String)> = vocab
        .iter()
        .filter_map(|(k, v)| Some((v.as_u64()? as usize, k.clone())))
        .collect();
    pairs.sort();
    for (i, (id, _)) in pairs.iter().enumerate() {
        if *id != i {
            bail!("tokenizer.json vocabulary ids are not contiguous");
        }
    }
    Ok(pairs.into_iter().map(|(_, t)| t).collect())
}

/// MPNet's name of a BERT module inside `encoder.layer.N.` (the attention's four linears and
/// its LayerNorm differ; the FFN's modules are named alike).
fn mpnet_name(bert: &str) -> String {
    const RENAMES: [(&str, &str); 5] = [
        ("attention.self.query", "attention.attn.q"),
        ("attention.self.key", "attention.attn.k"),
        ("attention.self.value", "attention.attn.v"),
        ("attention.output.dense", "attention.attn.o"),
        ("attention.output.LayerNorm", "attention.LayerNorm"),
    ];
    for (from, to) in RENAMES {
        if let Some(rest) = bert.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    bert.to_string()
}

impl Checkpoint {
    /// Loads every piece the exporter and quantizer need, failing with a message naming what is missing.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = BertConfig::read(dir)?;
        let mpnet = config.rel_buckets > 0;
        let mut t = Tensors::load(&dir.join("model.safetensors"))?;
        let mut layers = Vec::new();
        let (h, f) = (config.hidden, config.ffn);
        for l in 0..config.layers {
            let p = format!("encoder.layer.{l}.");
            // MPNet names the attention's modules its own way; the rest as BERT does.
            let n = |s: &str| match mpnet {
                true => format!("{p}{}", mpnet_name(s)),
                false => format!("{p}{s}"),
            };
            layers.push(Layer {
                wq: t.mat(&n("attention.self.query.weight"), h, h)?,
                bq: t.vec(&n("attention.self.query.bias"), h)?,
                wk: t.mat(&n("attention.self.key.weight"), h, h)?,
                bk: t.vec(&n("attention.self.key.bias"), h)?,
                wv: t.mat(&n("attention.self.value.weight"), h, h)?,
                bv: t.vec(&n("attention.self.value.bias"), h)?,
                wo: t.mat(&n("attention.output.dense.weight"), h, h)?,
                bo: t.vec(&n("attention.output.dense.bias"), h)?,
                ln1_g: t.vec(&n("attention.output.LayerNorm.weight"), h)?,
                ln1_b: t.vec(&n("attention.output.LayerNorm.bias"), h)?,
                w1: t.mat(&n("intermediate.dense.weight"), f, h)?,
                b1: t.vec(&n("intermediate.dense.bias"), f)?,
                w2: t.mat(&n("output.dense.weight"), h, f)?,
                b2: t.vec(&n("output.dense.bias"), h)?,
                ln2_g: t.vec(&n("output.LayerNorm.weight"), h)?,
                ln2_b: t.vec(&n("output.LayerNorm.bias"), h)?,
            });
        }
        t.no_layer_beyond(config.layers)?;
        let word_emb = t.mat("embeddings.word_embeddings.weight", config.vocab_size, h)?;
        let pos_name = "embeddings.position_embeddings.weight";
        let (pos_emb, type_emb, rel_bias) = match mpnet {
            false => (
                t.mat(pos_name, config.max_positions, h)?,
                t.take_rows("embeddings.token_type_embeddings.weight", h)?,
                None,
            ),
            true => {
                // The first rows belong to positions no token has (see mpnet_position_offset).
                let table = t.take_rows(pos_name, h)?;
                let offset = table.nrows().saturating_sub(config.max_positions);
                let pos = table.slice(ndarray::s![offset.., ..]).to_owned();
                let bias = t.mat(
                    "encoder.relative_attention_bias.weight",
                    config.rel_buckets,
                    config.heads,
                )?;
                (pos, Array2::zeros((1, h)), Some(bias))
            }
        };
        let emb_ln_g = t.vec("embeddings.LayerNorm.weight", h)?;
        let emb_ln_b = t.vec("embeddings.LayerNorm.bias", h)?;

        let vocab = load_vocab(dir)?;
        if vocab.len() != config.vocab_size {
            bail!(
                "vocabulary has {} tokens, config.json says {}",
                vocab.len(),
                config.vocab_size
            );
        }
        let id = |tok: &str| -> Result<u32> {
            vocab
                .iter()
                .position(|t| t == tok)
                .map(|i| i as u32)
                .with_context(|| format!("vocabulary lacks {tok}"))
        };
        let norm = Normalizer::read(dir)?;
        let special = hf_config::SpecialTokens::read(dir)?;
        let max_len = hf_config::max_seq_length(dir)?
            .unwrap_or(config.max_positions)
            .min(config.max_positions);
        let tokenizer = TokenizerConfig {
            lowercase: norm.lowercase,
            strip_accents: norm.strip_accents,
            split_cjk: norm.split_cjk,
            cls_id: id(&special.cls)?,
            sep_id: id(&special.sep)?,
            unk_id: id(&special.unk)?,
            pad_id: id(&special.pad)?,
            max_len: max_len as u32,
            max_chars_per_word: 100,
        };
        let pooling = hf_config::pooling(dir)?;
        let normalize = hf_config::normalize(dir)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into());
        Ok(Checkpoint {
            name,
            config,
            word_emb,
            pos_emb,
            type_emb,
            emb_ln_g,
            emb_ln_b,
            layers,
            rel_bias,
            vocab,
            tokenizer,
            pooling,
            normalize,
        })
    }
}
