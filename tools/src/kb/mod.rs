//! Knowledge banks on the host: embedding a source with the native int8 runtime (what the device
//! runs), writing the bank, calibrating its abstain threshold, and the default StackFAQ bank.

pub mod source;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use pith_runtime::kb::{
    package_tag, Bank, BankEntry, BankOptions, BankWriter, Hit, Index, SCORE_ONE,
};
use pith_runtime::Model;

use source::{read_queries, read_source, SourceEntry};

/// Threshold of a bank built without calibration queries: a cosine under which all-MiniLM-L6-v2
/// rarely pairs a question with a relevant passage. A generic prior, not fit to any query set.
pub const UNCALIBRATED_THRESHOLD: f32 = 0.40;

/// Share of the correctly answered calibration queries the calibrated threshold keeps answering.
pub const DEFAULT_KEEP: f64 = 0.99;

/// The StackFAQ bank source.
pub fn stackfaq_source() -> Result<PathBuf> {
    Ok(crate::defaults::data_dir()?.join("faq/stackfaq-bank.jsonl"))
}

/// The StackFAQ dev queries (`id<TAB>query`).
pub fn stackfaq_dev_queries() -> Result<PathBuf> {
    Ok(crate::defaults::data_dir()?.join("faq/stackfaq-dev-queries.tsv"))
}

/// Embeds texts with the native runtime, batched and in parallel ([`crate::batch`]).
pub fn embed_all(model: &Model<'_>, texts: &[&str]) -> Result<Vec<Vec<i8>>> {
    crate::batch::embed(model, texts)
}

/// Embeds every entry's question and answer and writes the bank (threshold as in `options`).
pub fn build(model: &Model<'_>, entries: &[SourceEntry], options: BankOptions) -> Result<Vec<u8>> {
    writer(model, entries, options)?
        .finish()
        .map_err(|e| anyhow!("writing the bank: {e}"))
}

/// [`build`], with a lexicon of the questions (the encoder's terms) at lexical weight `weight`
/// (a cosine: 1.0 adds the lexical score whole).
pub fn build_with_lexicon(
    model: &Model<'_>,
    entries: &[SourceEntry],
    options: BankOptions,
    weight: f32,
) -> Result<Vec<u8>> {
    let mut w = writer(model, entries, options)?;
    let questions: Vec<&str> = entries.iter().map(|e| e.question.as_str()).collect();
    let terms = crate::reasoner::mix::terms_of(model, &questions)?;
    let weight = (weight * SCORE_ONE as f32).round() as i32;
    w.lexicon(terms, model.tokenizer().vocab_len(), weight);
    w.finish().map_err(|e| anyhow!("writing the bank: {e}"))
}

/// The writer holding every entry of `entries`, embedded.
fn writer(model: &Model<'_>, entries: &[SourceEntry], options: BankOptions) -> Result<BankWriter> {
    let texts: Vec<&str> = entries
        .iter()
        .flat_map(|e| [e.question.as_str(), e.answer.as_str()])
        .collect();
    let vectors = embed_all(model, &texts)?;
    let mut w = BankWriter::new(
        model.dim(),
        BankOptions {
            model_tag: package_tag(model.package()),
            ..options
        },
    );
    for (e, v) in entries.iter().zip(vectors.chunks_exact(2)) {
        w.push(BankEntry {
            id: e.id.clone(),
            question: e.question.clone(),
            answer: e.answer.clone(),
            question_vector: v[0].clone(),
            answer_vector: v[1].clone(),
        });
    }
    Ok(w)
}

/// Result of calibrating the abstain threshold on labelled queries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Calibration {
    /// The threshold in score units.
    pub threshold: i32,
    /// Queries used.
    pub queries: usize,
    /// Queries whose best entry is the labelled one.
    pub correct: usize,
    /// Correct queries still answered at the threshold.
    pub correct_kept: usize,
    /// Wrong queries still answered at the threshold.
    pub wrong_kept: usize,
}

/// Chooses the highest threshold that still answers `keep` of the queries whose top answer is
/// right: abstaining then costs at most `1 - keep` of the good answers, and everything scoring
/// below the worst of them (typically off-topic input) is refused.
pub fn calibrate(
    bank: &Bank<'_>,
    model: &Model<'_>,
    queries: &[(String, String)],
    keep: f64,
) -> Result<Calibration> {
    let labelled = label(bank, queries)?;
    let texts: Vec<&str> = queries.iter().map(|(_, q)| q.as_str()).collect();
    let vectors = embed_all(model, &texts)?;
    let mut right = Vec::new();
    let mut wrong = Vec::new();
    for (v, gold) in vectors.iter().zip(&labelled) {
        let mut top = [Hit::default()];
        if bank.search(v, Index::Both, &mut top) == 0 {
            continue;
        }
        if top[0].index == *gold {
            right.push(top[0].score);
        } else {
            wrong.push(top[0].score);
        }
    }
    if right.is_empty() {
        bail!("no calibration query was answered correctly: cannot place a threshold");
    }
    right.sort_unstable();
    let drop =
        (((1.0 - keep.clamp(0.0, 1.0)) * right.len() as f64).floor() as usize).min(right.len() - 1);
    let threshold = right[drop];
    Ok(Calibration {
        threshold,
        queries: queries.len(),
        correct: right.len(),
        correct_kept: right.iter().filter(|&&s| s >= threshold).count(),
        wrong_kept: wrong.iter().filter(|&&s| s >= threshold).count(),
    })
}

/// Maps each query's id to the entry index holding that id.
pub fn label(bank: &Bank<'_>, queries: &[(String, String)]) -> Result<Vec<usize>> {
    let mut ids = std::collections::HashMap::new();
    for (i, e) in bank.entries().enumerate() {
        ids.entry(e.id.to_string()).or_insert(i);
    }
    queries
        .iter()
        .map(|(id, q)| {
            ids.get(id)
                .copied()
                .ok_or_else(|| anyhow!("query {q:?} names id {id:?}, which the bank lacks"))
        })
        .collect()
}

/// 1-based rank of `gold`, ties going to the lower index (as the bank's search orders them).
pub fn rank_of(scores: &[f64], gold: usize) -> usize {
    let g = scores[gold];
    1 + scores
        .iter()
        .enumerate()
        .filter(|&(j, &s)| s > g || (s == g && j < gold))
        .count()
}

/// Converts a cosine to score units.
pub fn to_score(cosine: f32) -> i32 {
    (cosine * SCORE_ONE as f32).round() as i32
}

/// Builds the StackFAQ bank with the default options, calibrated on the dev queries.
pub fn build_stackfaq(model: &Model<'_>) -> Result<(Vec<u8>, Calibration)> {
    let entries = read_source(&stackfaq_source()?, None)?;
    let mut bytes = build(model, &entries, BankOptions::default())?;
    let queries = read_queries(&stackfaq_dev_queries()?)?;
    let bank = Bank::new_checked(&bytes).map_err(|e| anyhow!("{e}"))?;
    let cal = calibrate(&bank, model, &queries, DEFAULT_KEEP)?;
    pith_runtime::kb::patch_threshold(&mut bytes, cal.threshold).map_err(|e| anyhow!("{e}"))?;
    Ok((bytes, cal))
}
