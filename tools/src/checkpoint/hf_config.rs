//! The configuration files of a Hugging Face sentence-transformers checkpoint, typed: config.json
//! (required), tokenizer_config.json or tokenizer.json's normalizer, sentence_bert_config.json,
//! modules.json and 1_Pooling/config.json (optional). A missing optional file means Hugging Face's
//! defaults; a malformed one is an error naming the file and the field, never a silent default.

use std::path::Path;

use anyhow::{bail, Context, Result};
use pith_runtime::format::Pooling;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A JSON object read from `path`; `None` when the file does not exist.
struct JsonFile {
    name: String,
    obj: Map<String, Value>,
}

impl JsonFile {
    fn read(dir: &Path, rel: &str) -> Result<Option<JsonFile>> {
        let path = dir.join(rel);
        let Some(text) = crate::input::text_or_missing(&path)? else {
            return Ok(None);
        };
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let Value::Object(obj) = value else {
            bail!("{}: expected a JSON object", path.display())
        };
        Ok(Some(JsonFile {
            name: path.display().to_string(),
            obj,
        }))
    }

    /// Field `key` as a `T`; `None` when absent or null (Hugging Face writes null for "default").
    fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .with_context(|| format!("{}: field `{key}` is {v}", self.name)),
        }
    }

    /// Field `key` as a `T`, required.
    fn req<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        self.opt(key)?
            .with_context(|| format!("{}: lacks the field `{key}`", self.name))
    }
}

/// config.json: the encoder's shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// `vocab_size`.
    pub vocab_size: usize,
    /// `hidden_size`.
    pub hidden: usize,
    /// `num_hidden_layers`.
    pub layers: usize,
    /// `num_attention_heads`.
    pub heads: usize,
    /// `intermediate_size`.
    pub ffn: usize,
    /// `max_position_embeddings`.
    pub max_positions: usize,
    /// `layer_norm_eps` (default 1e-12, BERT's).
    pub layer_norm_eps: f32,
    /// MPNet's relative position buckets (`relative_attention_num_buckets`); 0 for BERT, whose
    /// positions are absolute only.
    pub rel_buckets: usize,
}

/// Rows at the head of MPNet's position table that no token uses: its positions count from
/// `pad_token_id + 1` (RoBERTa's convention), and pith's from 0.
pub fn mpnet_position_offset(pad_token_id: usize) -> usize {
    pad_token_id + 1
}

impl BertConfig {
    /// Reads and checks `dir/config.json`: a BERT or MPNet encoder with exact GELU, absolute
    /// positions (MPNet: and its relative position bias), at least one layer and head, heads
    /// dividing the width, and a positive LayerNorm epsilon.
    pub fn read(dir: &Path) -> Result<BertConfig> {
        let f = JsonFile::read(dir, "config.json")?
            .with_context(|| format!("{} has no config.json", dir.display()))?;
        let model_type: String = f.opt("model_type")?.unwrap_or_else(|| "bert".into());
        let mpnet = match model_type.as_str() {
            "bert" => false,
            "mpnet" => true,
            _ => bail!(
                "{}: model_type `{model_type}` is not an encoder pith supports (bert, mpnet)",
                f.name
            ),
        };
        if let Some(act) = f.opt::<String>("hidden_act")? {
            if act != "gelu" {
                bail!(
                    "{}: hidden_act `{act}` is not supported (only exact gelu)",
                    f.name
                );
            }
        }
        if let Some(pos) = f.opt::<String>("position_embedding_type")? {
            if pos != "absolute" {
                bail!(
                    "{}: position_embedding_type `{pos}` is not supported (only absolute)",
                    f.name
                );
            }
        }
        let table_rows: usize = f.req("max_position_embeddings")?;
        // MPNet's position rows below its offset are never used: pith's table starts after them.
        let (max_positions, rel_buckets) = match mpnet {
            false => (table_rows, 0),
            true => {
                let pad: usize = f.opt("pad_token_id")?.unwrap_or(1);
                let offset = mpnet_position_offset(pad);
                let buckets: usize = f.opt("relative_attention_num_buckets")?.unwrap_or(32);
                if !(4..=256).contains(&buckets) || !buckets.is_multiple_of(4) {
                    bail!(
                        "{}: relative_attention_num_buckets {buckets} is not a multiple of 4 in 4..=256",
                        f.name
                    );
                }
                (table_rows.saturating_sub(offset), buckets)
            }
        };
        let c = BertConfig {
            vocab_size: f.req("vocab_size")?,
            hidden: f.req("hidden_size")?,
            layers: f.req("num_hidden_layers")?,
            heads: f.req("num_attention_heads")?,
            ffn: f.req("intermediate_size")?,
            max_positions,
            layer_norm_eps: f.opt::<f64>("layer_norm_eps")?.unwrap_or(1e-12) as f32,
            rel_buckets,
        };
        c.validate(&f.name)?;
        Ok(c)
    }

    /// Checks the shapes any reader produced (config.json or a `pith export` ONNX's metadata):
    /// every size positive, heads dividing the width, a positive finite LayerNorm epsilon.
    /// `source` names where the values came from.
    pub fn validate(&self, source: &str) -> Result<()> {
        let c = self;
        let positive = [
            ("vocab_size", c.vocab_size),
            ("hidden_size", c.hidden),
            ("num_hidden_layers", c.layers),
            ("num_attention_heads", c.heads),
            ("intermediate_size", c.ffn),
            ("max_position_embeddings", c.max_positions),
        ];
        for (key, v) in positive {
            if v == 0 {
                bail!("{}: `{key}` is 0", source);
            }
        }
        if c.layers > pith_runtime::format::MAX_LAYERS {
            bail!(
                "{}: num_hidden_layers {} is more than the {} a package may have",
                source,
                c.layers,
                pith_runtime::format::MAX_LAYERS
            );
        }
        if !c.hidden.is_multiple_of(c.heads) {
            bail!(
                "{}: hidden_size {} is not a multiple of num_attention_heads {}",
                source,
                c.hidden,
                c.heads
            );
        }
        if !(c.layer_norm_eps.is_finite() && c.layer_norm_eps > 0.0) {
            bail!(
                "{}: layer_norm_eps {} must be a positive number",
                source,
                c.layer_norm_eps
            );
        }
        Ok(())
    }
}

/// How the tokenizer normalizes text (BERT's basic tokenizer settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalizer {
    /// Lowercase before WordPiece.
    pub lowercase: bool,
    /// Strip accents (Hugging Face: unset means "as lowercase").
    pub strip_accents: bool,
    /// Put spaces around CJK characters.
    pub split_cjk: bool,
}

impl Normalizer {
    /// From tokenizer_config.json (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`),
    /// else tokenizer.json's BertNormalizer (`lowercase`, `strip_accents`, `handle_chinese_chars`),
    /// else Hugging Face's defaults (lowercase, accents follow lowercase, split CJK).
    pub fn read(dir: &Path) -> Result<Normalizer> {
        let (lowercase, strip_accents, split_cjk) =
            if let Some(f) = JsonFile::read(dir, "tokenizer_config.json")? {
                (
                    f.opt::<bool>("do_lower_case")?,
                    f.opt::<bool>("strip_accents")?,
                    f.opt::<bool>("tokenize_chinese_chars")?,
                )
            } else if let Some(f) = JsonFile::read(dir, "tokenizer.json")? {
                match f.obj.get("normalizer") {
                    None | Some(Value::Null) => (None, None, None),
                    Some(Value::Object(n)) => {
                        let n = JsonFile {
                            name: format!("{} (normalizer)", f.name),
                            obj: n.clone(),
                        };
                        let kind: String = n.req("type")?;
                        if kind != "BertNormalizer" {
                            bail!(
                                "{}: normalizer type `{kind}` is not supported (BertNormalizer)",
                                f.name
                            );
                        }
                        (
                            n.opt::<bool>("lowercase")?,
                            n.opt::<bool>("strip_accents")?,
                            n.opt::<bool>("handle_chinese_chars")?,
                        )
                    }
                    Some(v) => bail!("{}: field `normalizer` is {v}", f.name),
                }
            } else {
                (None, None, None)
            };
        let lowercase = lowercase.unwrap_or(true);
        Ok(Normalizer {
            lowercase,
            strip_accents: strip_accents.unwrap_or(lowercase),
            split_cjk: split_cjk.unwrap_or(true),
        })
    }
}

/// sentence_bert_config.json's `max_seq_length`; `None` when the file or the field is absent.
pub fn max_seq_length(dir: &Path) -> Result<Option<usize>> {
    let Some(f) = JsonFile::read(dir, "sentence_bert_config.json")? else {
        return Ok(None);
    };
    let n: Option<usize> = f.opt("max_seq_length")?;
    // [CLS] and [SEP] alone take two tokens.
    if let Some(n) = n.filter(|&n| n < 2) {
        bail!(
            "{}: `max_seq_length` {n} leaves no room for a token",
            f.name
        );
    }
    Ok(n)
}

/// 1_Pooling/config.json's mode; mean pooling when the file is absent.
pub fn pooling(dir: &Path) -> Result<Pooling> {
    let Some(f) = JsonFile::read(dir, "1_Pooling/config.json")? else {
        return Ok(Pooling::Mean);
    };
    let flag = |k: &str| -> Result<bool> { Ok(f.opt::<bool>(k)?.unwrap_or(false)) };
    let (cls, mean) = (
        flag("pooling_mode_cls_token")?,
        flag("pooling_mode_mean_tokens")?,
    );
    let others = [
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
    ];
    for k in others {
        if flag(k)? {
            bail!(
                "{}: `{k}` is a pooling mode pith does not support (mean or cls)",
                f.name
            );
        }
    }
    match (cls, mean) {
        (true, false) => Ok(Pooling::Cls),
        (false, true) => Ok(Pooling::Mean),
        _ => bail!(
            "{}: exactly one of pooling_mode_cls_token and pooling_mode_mean_tokens must be true",
            f.name
        ),
    }
}

/// Whether modules.json ends the pipeline with a Normalize module; false when the file is absent.
pub fn normalize(dir: &Path) -> Result<bool> {
    let path = dir.join("modules.json");
    let Some(text) = crate::input::text_or_missing(&path)? else {
        return Ok(false);
    };
    #[derive(serde::Deserialize)]
    struct Module {
        #[serde(rename = "type")]
        kind: String,
    }
    let modules: Vec<Module> = serde_json::from_str(&text).with_context(|| {
        format!(
            "parsing {}: expected a list of modules, each with a `type`",
            path.display()
        )
    })?;
    Ok(modules
        .iter()
        .any(|m| m.kind == "sentence_transformers.models.Normalize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"model_type": "bert", "hidden_act": "gelu", "vocab_size": 10,
        "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "max_position_embeddings": 32, "layer_norm_eps": 1e-12,
        "position_embedding_type": "absolute"}"#;

    fn dir_with(tag: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pith-hfcfg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("1_Pooling")).unwrap();
        for (name, text) in files {
            std::fs::write(d.join(name), text).unwrap();
        }
        d
    }

    fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn missing_optional_files_mean_hugging_face_defaults() {
        let d = dir_with("defaults", &[("config.json", CONFIG)]);
        assert_eq!(BertConfig::read(&d).unwrap().heads, 2);
        let n = Normalizer::read(&d).unwrap();
        assert!(n.lowercase && n.strip_accents && n.split_cjk);
        assert_eq!(max_seq_length(&d).unwrap(), None);
        assert_eq!(pooling(&d).unwrap(), Pooling::Mean);
        assert!(!normalize(&d).unwrap());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn settings_come_from_the_files() {
        let d = dir_with(
            "set",
            &[
                (
                    "tokenizer_config.json",
                    r#"{"do_lower_case": false, "strip_accents": null}"#,
                ),
                ("sentence_bert_config.json", r#"{"max_seq_length": 128}"#),
                (
                    "1_Pooling/config.json",
                    r#"{"pooling_mode_cls_token": true}"#,
                ),
                (
                    "modules.json",
                    r#"[{"type": "sentence_transformers.models.Normalize"}]"#,
                ),
            ],
        );
        let n = Normalizer::read(&d).unwrap();
        assert!(!n.lowercase && !n.strip_accents, "{n:?}");
        assert_eq!(max_seq_length(&d).unwrap(), Some(128));
        assert_eq!(pooling(&d).unwrap(), Pooling::Cls);
        assert!(normalize(&d).unwrap());
        // Without tokenizer_config.json, tokenizer.json's normalizer decides.
        std::fs::remove_file(d.join("tokenizer_config.json")).unwrap();
        std::fs::write(
            d.join("tokenizer.json"),
            r#"{"normalizer": {"type": "BertNormalizer", "lowercase": false, "handle_chinese_chars": false}}"#,
        )
        .unwrap();
        let n = Normalizer::read(&d).unwrap();
        assert!(!n.lowercase && !n.strip_accents && !n.split_cjk, "{n:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn malformed_files_are_errors_naming_file_and_field() {
        let d = dir_with(
            "bad",
            &[
                ("config.json", CONFIG),
                ("tokenizer_config.json", r#"{"do_lower_case": "yes"}"#),
                ("sentence_bert_config.json", r#"{"max_seq_length": -1}"#),
                (
                    "1_Pooling/config.json",
                    r#"{"pooling_mode_max_tokens": true}"#,
                ),
                ("modules.json", r#"{"not": "a list"}"#),
            ],
        );
        let e = err(Normalizer::read(&d));
        assert!(
            e.contains("tokenizer_config.json") && e.contains("do_lower_case"),
            "{e}"
        );
        let e = err(max_seq_length(&d));
        assert!(
            e.contains("sentence_bert_config.json") && e.contains("max_seq_length"),
            "{e}"
        );
        let e = err(pooling(&d));
        assert!(e.contains("pooling_mode_max_tokens"), "{e}");
        let e = err(normalize(&d));
        assert!(e.contains("modules.json"), "{e}");
        std::fs::write(d.join("tokenizer_config.json"), "{not json").unwrap();
        let e = err(Normalizer::read(&d));
        assert!(
            e.contains("parsing") && e.contains("tokenizer_config.json"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn unsupported_or_degenerate_configs_are_refused() {
        let cases = [
            (
                r#""position_embedding_type": "absolute""#,
                r#""position_embedding_type": "relative_key""#,
                "position_embedding_type",
            ),
            (
                r#""num_attention_heads": 2"#,
                r#""num_attention_heads": 0"#,
                "num_attention_heads",
            ),
            (
                r#""num_hidden_layers": 1"#,
                r#""num_hidden_layers": 0"#,
                "num_hidden_layers",
            ),
            (
                r#""layer_norm_eps": 1e-12"#,
                r#""layer_norm_eps": 0.0"#,
                "layer_norm_eps",
            ),
            (
                r#""layer_norm_eps": 1e-12"#,
                r#""layer_norm_eps": -1e-5"#,
                "layer_norm_eps",
            ),
            (
                r#""hidden_act": "gelu""#,
                r#""hidden_act": "relu""#,
                "hidden_act",
            ),
            (r#""vocab_size": 10,"#, "", "vocab_size"),
        ];
        for (i, (from, to, field)) in cases.iter().enumerate() {
            let d = dir_with(
                &format!("refuse{i}"),
                &[("config.json", &CONFIG.replace(from, to))],
            );
            let e = err(BertConfig::read(&d));
            assert!(
                e.contains(field) && e.contains("config.json"),
                "{field}: {e}"
            );
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

/// The special tokens' texts: special_tokens_map.json's, else tokenizer_config.json's, else
/// BERT's (`[CLS]`, `[SEP]`, `[UNK]`, `[PAD]`). MPNet names its own (`<s>`, `</s>`, `<pad>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    pub cls: String,
    pub sep: String,
    pub unk: String,
    pub pad: String,
}

impl SpecialTokens {
    /// Reads them from `dir`; a field that is neither a string nor `{"content": string}` is an
    /// error naming the file.
    pub fn read(dir: &Path) -> Result<SpecialTokens> {
        let files = [
            JsonFile::read(dir, "special_tokens_map.json")?,
            JsonFile::read(dir, "tokenizer_config.json")?,
        ];
        let pick = |key: &str, default: &str| -> Result<String> {
            for f in files.iter().flatten() {
                match f.obj.get(key) {
                    None | Some(Value::Null) => continue,
                    Some(Value::String(s)) => return Ok(s.clone()),
                    Some(v) => match v.get("content").and_then(Value::as_str) {
                        Some(s) => return Ok(s.to_string()),
                        None => bail!("{}: field `{key}` is {v}", f.name),
                    },
                }
            }
            Ok(default.to_string())
        };
        Ok(SpecialTokens {
            cls: pick("cls_token", "[CLS]")?,
            sep: pick("sep_token", "[SEP]")?,
            unk: pick("unk_token", "[UNK]")?,
            pad: pick("pad_token", "[PAD]")?,
        })
    }
}
