//! Tier M: a small BERT (4 layers × 128 by default, a package of at most 2 MB), initialised from
//! the teacher's own layers and distilled by `tools/train/tier_m_student.py` (numpy).
//!
//! This module writes what that trainer reads beyond the shared files ([`super::work`]): the
//! student's ids with `[CLS]`/`[SEP]`, the teacher's ids of the texts its PCA runs on, the recipe
//! with the teacher's folder and the kept teacher ids, and the float checkpoint's configuration
//! (a sentence-transformers BERT folder, so `pith quantize` reads it like any other). After
//! training it checks that pith's own fp32 forward pass of the saved checkpoint gives the
//! embeddings the trainer computed: a trainer whose model differs from the runtime's would
//! otherwise only show as a poor score.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::corpus::Corpus;
use super::recipe::TransformerRecipe;
use super::teacher::Labels;
use super::vocab::Choice;
use super::work::id_bytes;
use crate::checkpoint::Checkpoint;
use crate::output;
use crate::text::CheckpointTokenizer;

/// The student's longest input in tokens: the teacher's, within the position table.
pub fn max_len(teacher: &Checkpoint, r: &TransformerRecipe) -> u32 {
    teacher.tokenizer.max_len.min(r.positions as u32)
}

/// Refuses a shape the teacher cannot initialise, before any forward pass runs.
pub fn check_shape(teacher: &Checkpoint, r: &TransformerRecipe) -> Result<()> {
    let c = &teacher.config;
    let head = c.hidden / c.heads.max(1);
    ensure!(
        r.hidden == head * r.heads,
        "--dim {} / --heads {} must be the teacher's head width {head} (its heads are kept whole)",
        r.hidden,
        r.heads
    );
    ensure!(
        r.heads <= c.heads && r.layers <= c.layers && r.ffn <= c.ffn,
        "--layers {} --heads {} --ffn {}: the teacher has {} layers of {} heads and {} FFN neurons",
        r.layers,
        r.heads,
        r.ffn,
        c.layers,
        c.heads,
        c.ffn
    );
    ensure!(
        r.layers > 0 && r.ffn > 0,
        "--layers and --ffn must be at least 1"
    );
    ensure!(
        r.positions <= c.max_positions,
        "the student's {} positions exceed the teacher's {}",
        r.positions,
        c.max_positions
    );
    Ok(())
}

/// Writes the trainer's inputs and the float checkpoint's configuration files.
#[allow(clippy::too_many_arguments)]
pub fn write_inputs(
    work: &Path,
    teacher_dir: &Path,
    teacher: &Checkpoint,
    choice: &Choice,
    corpus: &Corpus,
    variants: &[String],
    labels: &Labels,
    recipe: &TransformerRecipe,
    checkpoint: &Path,
) -> Result<()> {
    let tok = choice.tokenizer();
    let ids = |texts: &[String]| -> Result<Vec<u8>> { Ok(id_bytes(tok.ids_all(texts)?)) };
    output::write_whole(&work.join("train.ids.u32"), &ids(&corpus.train)?)?;
    output::write_whole(&work.join("dev.ids.u32"), &ids(&corpus.dev)?)?;
    output::write_whole(&work.join("variants.ids.u32"), &ids(variants)?)?;
    let sample = &corpus.train[..corpus.train.len().min(recipe.pca_texts)];
    let teacher_ids = CheckpointTokenizer::new(teacher).ids_all(sample)?;
    output::write_whole(&work.join("pca.ids.u32"), &id_bytes(teacher_ids))?;
    let teacher_dir = teacher_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", teacher_dir.display()))?;
    super::work::write_recipe(
        work,
        recipe,
        labels,
        corpus,
        json!({ "teacher": teacher_dir, "kept": choice.kept }),
    )?;
    write_config(teacher, choice, recipe, checkpoint)
}

/// config.json, vocab.txt, the tokenizer's and sentence-transformers' files.
fn write_config(
    teacher: &Checkpoint,
    choice: &Choice,
    r: &TransformerRecipe,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir.join("1_Pooling"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let config = json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": r.hidden,
        "num_hidden_layers": r.layers,
        "num_attention_heads": r.heads,
        "intermediate_size": r.ffn,
        "max_position_embeddings": r.positions,
        "vocab_size": choice.vocab.len(),
        "type_vocab_size": 2,
        "layer_norm_eps": teacher.config.layer_norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": choice.tokenizer.pad_id,
    });
    output::write_json(&dir.join("config.json"), &config)?;
    let mut vocab = choice.vocab.join("\n");
    vocab.push('\n');
    output::write_whole(&dir.join("vocab.txt"), vocab.as_bytes())?;
    let t = choice.tokenizer;
    // The teacher's special tokens by name (MPNet's `<s>` and `</s>` are not BERT's).
    let token = |id: u32| choice.vocab.get(id as usize).cloned().unwrap_or_default();
    output::write_json(
        &dir.join("special_tokens_map.json"),
        &json!({
            "cls_token": token(t.cls_id),
            "sep_token": token(t.sep_id),
            "unk_token": token(t.unk_id),
            "pad_token": token(t.pad_id),
        }),
    )?;
    output::write_json(
        &dir.join("tokenizer_config.json"),
        &json!({
            "do_lower_case": t.lowercase,
            "strip_accents": t.strip_accents,
            "tokenize_chinese_chars": t.split_cjk,
        }),
    )?;
    output::write_json(
        &dir.join("sentence_bert_config.json"),
        &json!({ "max_seq_length": t.max_len }),
    )?;
    output::write_json(
        &dir.join("1_Pooling/config.json"),
        &json!({ "word_embedding_dimension": r.hidden, "pooling_mode_mean_tokens": true }),
    )?;
    output::write_json(
        &dir.join("modules.json"),
        &json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]),
    )
}

/// Checks the trainer's embeddings of the first dev texts (`training.json`'s `probe`) against
/// pith's fp32 forward pass of the checkpoint it saved.
pub fn check_probe(checkpoint: &Path, dev: &[String], history: &Value) -> Result<()> {
    let rows: Vec<Vec<f32>> = history
        .pointer("/probe/embeddings")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .context("training.json has no probe embeddings")?;
    let ck = Checkpoint::load(checkpoint)
        .with_context(|| format!("loading the student {}", checkpoint.display()))?;
    let tok = CheckpointTokenizer::new(&ck);
    for (text, row) in dev.iter().zip(&rows) {
        let ours = crate::fp32::embed(&ck, &tok.ids(text)?, &mut ());
        let worst = ours
            .iter()
            .zip(row)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        ensure!(
            ours.len() == row.len() && worst < 1e-3,
            "the trainer's embedding of {text:?} differs from pith's fp32 forward pass of the \
             saved checkpoint by up to {worst}: the two models disagree"
        );
    }
    super::stage(&format!(
        "checkpoint: pith's fp32 forward agrees with the trainer on {} dev texts",
        rows.len()
    ));
    Ok(())
}

/// The method section of the model card.
pub fn method(r: &TransformerRecipe, budget: usize, tokens: usize, wordnet: bool) -> String {
    format!(
        "1. Vocabulary: the teacher's special and Latin-script single-character tokens, then its \
         tokens most frequent on the training texts (each source weighing the same), as many as \
         a {budget}-byte package holds beside the layers ({tokens} tokens).\n\
         2. Labels: the teacher's embedding (its int8 package with 16-bit FFNs, run by pith's \
         runtime) of every training, dev and variant text.\n\
         3. Initialisation from the teacher: {} of its layers, evenly spaced; in each, the {} \
         heads and {} FFN neurons with the largest output-weight norms; the residual stream \
         projected onto its top {} principal axes (uncentred PCA of every layer's hidden states \
         on the first {} training texts), so each matrix becomes `Pᵀ W P` on the kept rows.\n\
         4. {} AdamW steps (batch {}, peak step {}, {} % warm-up then linear decay, weight decay \
         {}, gradient norm clipped to 1, seed {}) on 10 × the squared error between the batch's \
         cosine matrix and the teacher's, {} % of each batch in whole groups whose within-group \
         entries count again (× {}): half groups of {} close texts (an anchor and neighbours \
         from its {} nearest by the teacher, near copies above {} skipped), half groups of a \
         text and its edited variants ({} training texts with {} variants each: {}); plus {} × the \
         squared distance to the teacher's embedding projected by the same PCA. The training \
         state is saved every {} steps: the same command resumes an interrupted run and ends \
         with the same bytes.\n\
         5. `pith quantize`: int8 weights per channel, SmoothQuant, calibrated on SNLI lines.\n",
        r.layers,
        r.heads,
        r.ffn,
        r.hidden,
        r.pca_texts,
        r.steps,
        r.batch,
        r.lr,
        r.warmup * 100.0,
        r.weight_decay,
        r.seed,
        r.group_share * 100.0,
        r.group_weight,
        r.group_size,
        r.neighbour_ranks,
        r.near_copy,
        r.variant_sources,
        r.variants_per_text,
        super::variants::operations(wordnet),
        r.anchor,
        r.save_every,
    )
}
