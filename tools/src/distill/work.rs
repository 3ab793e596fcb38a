//! The files `pith distill` hands the trainer, in the work folder, and the ones it reads back.
//!
//! - `recipe.json`: the recipe ([`super::recipe`]), the names of the label files, and what else
//!   the tier's trainer needs (Tier S: the zero rows; Tier M: the teacher's folder and the kept
//!   teacher ids);
//! - `labels-*.f32`: the teacher's rows, raw little-endian f32 ([`super::teacher`]);
//! - `variants.txt`, `variants.tsv`: the variant groups (tools/train/variants.py);
//! - `train.ids.u32`, `dev.ids.u32`, `variants.ids.u32` (Tier S also `words.ids.u32`, the
//!   frequent corpus words as one-word texts): each text's student token ids as
//!   little-endian u32, each text as its length then its ids (Tier S without `[CLS]`/`[SEP]`);
//!   Tier M also `pca.ids.u32`, the teacher's ids of the first training texts ([`super::tier_m`]);
//! - the float checkpoint's configuration and `vocab.txt` (written here or in
//!   [`super::tier_m`]), its weights and `training.json` (written by the trainer).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::corpus::Corpus;
use super::recipe::StaticRecipe;
use super::teacher::Labels;
use super::vocab::Choice;
use crate::checkpoint::Checkpoint;
use crate::output;

/// Id lists as the trainers read them: each one's length, then its ids, little-endian u32.
pub fn id_bytes(seqs: impl IntoIterator<Item = Vec<u32>>) -> Vec<u8> {
    let mut out = Vec::new();
    for ids in seqs {
        out.extend((ids.len() as u32).to_le_bytes());
        out.extend(ids.iter().flat_map(|i| i.to_le_bytes()));
    }
    out
}

/// Each text's student ids for the static trainer (`[CLS]`/`[SEP]` dropped; a text with no
/// other token becomes `[UNK]`).
fn id_file(choice: &Choice, texts: &[String]) -> Result<Vec<u8>> {
    let tok = choice.tokenizer();
    let t = choice.tokenizer;
    Ok(id_bytes(tok.ids_all(texts)?.into_iter().map(|ids| {
        let ids: Vec<u32> = ids
            .into_iter()
            .filter(|&i| i != t.cls_id && i != t.sep_id)
            .collect();
        if ids.is_empty() {
            vec![t.unk_id]
        } else {
            ids
        }
    })))
}

/// Writes everything the static trainer reads, and the float checkpoint's config.json and
/// vocab.txt.
#[allow(clippy::too_many_arguments)]
pub fn write_inputs(
    work: &Path,
    teacher: &Checkpoint,
    choice: &Choice,
    corpus: &Corpus,
    variants: &[String],
    words: &[String],
    labels: &Labels,
    recipe: &StaticRecipe,
    name: &str,
    checkpoint: &Path,
) -> Result<()> {
    output::write_whole(
        &work.join("train.ids.u32"),
        &id_file(choice, &corpus.train)?,
    )?;
    output::write_whole(&work.join("dev.ids.u32"), &id_file(choice, &corpus.dev)?)?;
    output::write_whole(&work.join("variants.ids.u32"), &id_file(choice, variants)?)?;
    output::write_whole(&work.join("words.ids.u32"), &id_file(choice, words)?)?;
    let t = choice.tokenizer;
    write_recipe(
        work,
        recipe,
        labels,
        corpus,
        json!({
            "vocab_size": choice.vocab.len(),
            "words": labels.words,
            "word_texts": words.len(),
            // Pooled as nothing: mean pooling over every token (as the runtime does) then equals
            // pooling over the words, up to a scale cosine ignores.
            "zero_rows": [t.cls_id, t.sep_id, t.pad_id],
        }),
    )?;

    std::fs::create_dir_all(checkpoint)
        .with_context(|| format!("creating {}", checkpoint.display()))?;
    let token = |id: u32| choice.vocab[id as usize].clone();
    let config = json!({
        "arch": "static",
        "name": name,
        "teacher": teacher.name,
        "dim": recipe.dim,
        "bits": recipe.bits,
        "vocab_size": choice.vocab.len(),
        "pooling": "mean",
        "normalize": true,
        "tokenizer": {
            "lowercase": t.lowercase,
            "strip_accents": t.strip_accents,
            "split_cjk": t.split_cjk,
            "cls_token": token(t.cls_id),
            "sep_token": token(t.sep_id),
            "unk_token": token(t.unk_id),
            "pad_token": token(t.pad_id),
            "max_len": t.max_len,
            "max_chars_per_word": t.max_chars_per_word,
        },
    });
    output::write_json(&checkpoint.join("config.json"), &config)?;
    let mut vocab = choice.vocab.join("\n");
    vocab.push('\n');
    output::write_whole(&checkpoint.join("vocab.txt"), vocab.as_bytes())
}

/// Writes `recipe.json`: the recipe, the label files and the text counts every trainer reads,
/// and the tier's own `fields` (a JSON object).
pub fn write_recipe(
    work: &Path,
    recipe: &impl serde::Serialize,
    labels: &Labels,
    corpus: &Corpus,
    fields: Value,
) -> Result<()> {
    let mut doc = json!({
        "recipe": recipe,
        "teacher_dim": labels.dim,
        "tokens": labels.tokens,
        "train": labels.train,
        "dev": labels.dev,
        "variants": labels.variants,
        "train_texts": corpus.train.len(),
        "dev_texts": corpus.dev.len(),
    });
    if let (Some(doc), Value::Object(fields)) = (doc.as_object_mut(), fields) {
        doc.extend(fields);
    }
    output::write_json(&work.join("recipe.json"), &doc)
}

/// The trainer's record (`training.json` in the float checkpoint).
pub fn read_history(checkpoint: &Path) -> Result<Value> {
    let path = checkpoint.join("training.json");
    serde_json::from_str(&crate::input::text(&path)?)
        .with_context(|| format!("parsing {}", path.display()))
}
