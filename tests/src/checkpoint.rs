//! A tiny Hugging Face sentence-transformers BERT (or MPNet) checkpoint with random (seeded)
//! weights, written the way `transformers` and `sentence-transformers` save one: `pith export`,
//! `quantize` and `distill` read it like any other teacher. The weights mean nothing, but the
//! same seed writes the same bytes, so whatever is made from it must come out the same twice.

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use safetensors::tensor::TensorView;

/// Width, layers, heads, FFN and positions of the tiny teacher.
pub const HIDDEN: usize = 32;
const LAYERS: usize = 2;
const HEADS: usize = 2;
const FFN: usize = 64;
const POSITIONS: usize = 128;
/// MPNet's relative position buckets.
const BUCKETS: usize = 32;

/// The encoder family of a tiny checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// BERT: absolute positions and token types.
    Bert,
    /// MPNet: positions from row 2, no token types, a relative position bias shared by the
    /// layers, its own module names and special tokens (`<s>`, `</s>`, `<pad>`).
    Mpnet,
}

/// MPNet's special tokens, which [`mpnet_vocab`] puts in a BERT vocabulary.
pub const MPNET_SPECIALS: [&str; 4] = ["<s>", "<pad>", "</s>", "<unk>"];

/// A BERT vocabulary made MPNet's: its first four tokens (`[PAD]` and three unused ones) give
/// way to MPNet's specials at MPNet's ids (0 to 3); `[UNK]` stays the unknown token, as in
/// all-mpnet-base-v2.
pub fn mpnet_vocab(bert: &[String]) -> Vec<String> {
    let mut v = bert.to_vec();
    for (slot, s) in v.iter_mut().zip(MPNET_SPECIALS) {
        *slot = s.to_string();
    }
    v
}

/// Writes the BERT checkpoint into `dir` (created) with `vocab` as its vocabulary (which must
/// hold `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`).
pub fn tiny_bert_checkpoint(dir: &Path, seed: u64, vocab: &[String]) -> std::io::Result<()> {
    tiny_checkpoint(dir, seed, vocab, Family::Bert)
}

/// Writes a checkpoint of `family` into `dir` (created) with `vocab` as its vocabulary (BERT's
/// specials for [`Family::Bert`], [`mpnet_vocab`]'s for [`Family::Mpnet`]).
pub fn tiny_checkpoint(
    dir: &Path,
    seed: u64,
    vocab: &[String],
    family: Family,
) -> std::io::Result<()> {
    let mpnet = family == Family::Mpnet;
    // MPNet's position rows 0 and 1 are never used (its positions start at pad id + 1 = 2).
    let position_rows = POSITIONS + if mpnet { 2 } else { 0 };
    std::fs::create_dir_all(dir.join("1_Pooling"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    let mut put = |name: &str, shape: &[usize], scale: f32, offset: f32| {
        let n = shape.iter().product();
        let v = (0..n)
            .map(|_| offset + scale * rng.random_range(-1.0f32..1.0))
            .collect();
        tensors.insert(name.to_string(), (shape.to_vec(), v));
    };
    let h = HIDDEN;
    put(
        "embeddings.word_embeddings.weight",
        &[vocab.len(), h],
        1.0,
        0.0,
    );
    put(
        "embeddings.position_embeddings.weight",
        &[position_rows, h],
        0.3,
        0.0,
    );
    if mpnet {
        // Large enough to move the attention: a bias of ±2 logits.
        put(
            "encoder.relative_attention_bias.weight",
            &[BUCKETS, HEADS],
            2.0,
            0.0,
        );
    } else {
        put("embeddings.token_type_embeddings.weight", &[2, h], 0.1, 0.0);
    }
    // MPNet's names of the attention's modules (the FFN's are BERT's).
    let name = |bert: &'static str| -> &'static str {
        match (mpnet, bert) {
            (false, _) => bert,
            (true, "attention.self.query") => "attention.attn.q",
            (true, "attention.self.key") => "attention.attn.k",
            (true, "attention.self.value") => "attention.attn.v",
            (true, "attention.output.dense") => "attention.attn.o",
            (true, "attention.output.LayerNorm") => "attention.LayerNorm",
            (true, other) => other,
        }
    };
    put("embeddings.LayerNorm.weight", &[h], 0.2, 1.0);
    put("embeddings.LayerNorm.bias", &[h], 0.1, 0.0);
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}.");
        let w = (1.0 / h as f32).sqrt() * 1.7;
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
        ] {
            put(&format!("{p}{}.weight", name(m)), &[h, h], w, 0.0);
            put(&format!("{p}{}.bias", name(m)), &[h], 0.1, 0.0);
        }
        let (o, ln) = (
            name("attention.output.dense"),
            name("attention.output.LayerNorm"),
        );
        put(&format!("{p}{o}.weight"), &[h, h], w, 0.0);
        put(&format!("{p}{o}.bias"), &[h], 0.1, 0.0);
        put(&format!("{p}{ln}.weight"), &[h], 0.2, 1.0);
        put(&format!("{p}{ln}.bias"), &[h], 0.1, 0.0);
        put(&format!("{p}intermediate.dense.weight"), &[FFN, h], w, 0.0);
        put(&format!("{p}intermediate.dense.bias"), &[FFN], 0.1, 0.0);
        let w2 = (1.0 / FFN as f32).sqrt() * 1.7;
        put(&format!("{p}output.dense.weight"), &[h, FFN], w2, 0.0);
        put(&format!("{p}output.dense.bias"), &[h], 0.1, 0.0);
        put(&format!("{p}output.LayerNorm.weight"), &[h], 0.2, 1.0);
        put(&format!("{p}output.LayerNorm.bias"), &[h], 0.1, 0.0);
    }
    let bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(k, (s, v))| (k, (s, v.iter().flat_map(|x| x.to_le_bytes()).collect())))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(k, (s, b))| {
            let view = TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok((k.clone(), view))
        })
        .collect::<std::io::Result<_>>()?;
    let st =
        safetensors::serialize(views, None).map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::write(dir.join("model.safetensors"), st)?;
    let config = match family {
        Family::Bert => serde_json::json!({
            "model_type": "bert", "hidden_act": "gelu", "vocab_size": vocab.len(),
            "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "intermediate_size": FFN, "max_position_embeddings": POSITIONS,
            "layer_norm_eps": 1e-12, "position_embedding_type": "absolute",
        }),
        Family::Mpnet => serde_json::json!({
            "model_type": "mpnet", "hidden_act": "gelu", "vocab_size": vocab.len(),
            "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "intermediate_size": FFN, "max_position_embeddings": position_rows,
            "layer_norm_eps": 1e-5, "pad_token_id": 1, "relative_attention_num_buckets": BUCKETS,
        }),
    };
    std::fs::write(dir.join("config.json"), config.to_string())?;
    if mpnet {
        std::fs::write(
            dir.join("special_tokens_map.json"),
            r#"{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "[UNK]", "sep_token": "</s>",
 "pad_token": "<pad>", "cls_token": "<s>"}"#,
        )?;
    }
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n")?;
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"do_lower_case": true, "tokenize_chinese_chars": true, "strip_accents": null}"#,
    )?;
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        format!(r#"{{"word_embedding_dimension": {HIDDEN}, "pooling_mode_mean_tokens": true}}"#),
    )?;
    std::fs::write(
        dir.join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
 {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]"#,
    )?;
    Ok(())
}
