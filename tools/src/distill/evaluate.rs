//! The student's figures beside its teacher's, in one run: SICK dev Spearman (data/sts) and
//! StackFAQ retrieval (data/faq: the bank the device holds, the user queries). The student is
//! measured as the device runs it (the int8 package, integer bank search); the teacher is its
//! fp32 forward pass with the same scoring in float.

use std::path::Path;

use anyhow::{anyhow, Result};
use pith_runtime::kb::{Bank, Index, SCORE_ONE};
use pith_runtime::Model;
use rayon::prelude::*;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::cmd::eval_faq::rank_of;
use crate::fp32::cosine;
use crate::kb::source::read_queries;
use crate::text::CheckpointTokenizer;

/// The SICK dev pairs.
pub const SICK_DEV: &str = "data/sts/sick-dev.tsv";

/// One model's figures (percent).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Scores {
    /// SICK dev Spearman.
    pub sick_dev: f64,
    /// StackFAQ top-1 of the queries (question and answer index).
    pub faq_top1: f64,
    /// StackFAQ mean reciprocal rank.
    pub faq_mrr: f64,
}

/// Student and teacher, side by side.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    pub student: Scores,
    pub teacher: Scores,
    /// SICK pairs and FAQ queries and entries measured.
    pub sick_pairs: usize,
    pub faq_queries: usize,
    pub faq_entries: usize,
}

/// Measures both models and writes the student's StackFAQ bank (abstain threshold calibrated
/// on the queries, as `pith kb build` does) to `bank_path`. The teacher's figures are cached in
/// `work` under the hash of its files (`teacher_key`): its fp32 passes take longer than the rest.
pub fn run(
    teacher: &Checkpoint,
    teacher_key: u64,
    package: &[u8],
    bank_path: &Path,
    work: &Path,
    threads: usize,
) -> Result<Figures> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| anyhow!("starting {threads} threads: {e}"))?;
    let model = Model::new(package).map_err(|e| anyhow!("the student package: {e}"))?;
    let tok = CheckpointTokenizer::new(teacher);
    let student_i8 = |s: &str| -> Result<Vec<i8>> {
        let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
        let mut v = vec![0i8; model.dim()];
        model
            .embed(s, &mut arena, &mut v)
            .map_err(|e| anyhow!("embedding {s:?}: {e}"))?;
        Ok(v)
    };
    let student_vec =
        |s: &str| -> Result<Vec<f32>> { Ok(student_i8(s)?.into_iter().map(f32::from).collect()) };
    let teacher_vec = |s: &str| -> Result<Vec<f32>> {
        Ok(crate::fp32::embed(teacher, &tok.ids(s)?, &mut ()).to_vec())
    };

    super::stage("evaluate: SICK dev and StackFAQ, student and teacher");
    let root = crate::defaults::repo_root()?;
    let pairs = crate::pairs::read_pairs(&root.join(SICK_DEV))?;
    let gold: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let sick = |embed: &(dyn Fn(&str) -> Result<Vec<f32>> + Sync)| -> Result<f64> {
        let pred: Vec<f64> = pool.install(|| {
            pairs
                .par_iter()
                .map(|(_, a, b)| Ok(cosine(&embed(a)?, &embed(b)?) as f64))
                .collect::<Result<_>>()
        })?;
        Ok(100.0 * crate::stats::spearman(&gold, &pred))
    };
    let student_sick = sick(&student_vec)?;

    let (bytes, _) = crate::kb::build_stackfaq(&model)?;
    crate::output::write_whole(bank_path, &bytes)?;
    let bank = Bank::for_model(&bytes, &model).map_err(|e| anyhow!("the student bank: {e}"))?;
    let queries = read_queries(&crate::kb::stackfaq_dev_queries()?)?;
    let faq_gold = crate::kb::label(&bank, &queries)?;
    let figures = |scores: &[Vec<f64>]| -> (f64, f64) {
        let n = scores.len().max(1) as f64;
        let ranks: Vec<usize> = scores
            .iter()
            .zip(&faq_gold)
            .map(|(s, &g)| rank_of(s, g))
            .collect();
        let top1 = ranks.iter().filter(|&&r| r == 1).count() as f64;
        let rr: f64 = ranks.iter().map(|&r| 1.0 / r as f64).sum();
        (100.0 * top1 / n, 100.0 * rr / n)
    };
    // The device's search: integer scores of the bank's stored vectors.
    let student_scores: Vec<Vec<f64>> = pool.install(|| {
        queries
            .par_iter()
            .map(|(_, q)| {
                let v = student_i8(q)?;
                (0..bank.len())
                    .map(|i| {
                        bank.score(&v, i, Index::Both)
                            .map(f64::from)
                            .ok_or_else(|| anyhow!("bank dimension"))
                    })
                    .collect()
            })
            .collect::<Result<_>>()
    })?;
    let (s1, smrr) = figures(&student_scores);
    let cache = work.join(format!("teacher-figures-{teacher_key:016x}.json"));
    let cached: Option<Scores> =
        crate::input::text_or_missing(&cache)?.and_then(|t| serde_json::from_str(&t).ok());
    let teacher_figures = match cached {
        Some(s) => s,
        None => {
            let teacher_sick = sick(&teacher_vec)?;
            // The teacher: the same entries' texts, float cosines, the same combination and units.
            let texts: Vec<(String, String)> = bank
                .entries()
                .map(|e| (e.question.to_string(), e.answer.to_string()))
                .collect();
            let bias = bank.answer_bias() as f64;
            let unit = SCORE_ONE as f64;
            let teacher_scores: Vec<Vec<f64>> = pool.install(|| -> Result<_> {
                let vecs: Vec<(Vec<f32>, Vec<f32>)> = texts
                    .par_iter()
                    .map(|(q, a)| Ok((teacher_vec(q)?, teacher_vec(a)?)))
                    .collect::<Result<_>>()?;
                queries
                    .par_iter()
                    .map(|(_, q)| {
                        let v = teacher_vec(q)?;
                        Ok(vecs
                            .iter()
                            .map(|(qv, av)| {
                                let cq = cosine(&v, qv) as f64 * unit;
                                let ca = cosine(&v, av) as f64 * unit;
                                cq.max(ca + bias)
                            })
                            .collect())
                    })
                    .collect()
            })?;
            let (t1, tmrr) = figures(&teacher_scores);
            let s = Scores {
                sick_dev: teacher_sick,
                faq_top1: t1,
                faq_mrr: tmrr,
            };
            crate::output::write_whole(&cache, serde_json::to_string(&s)?.as_bytes())?;
            s
        }
    };
    Ok(Figures {
        student: Scores {
            sick_dev: student_sick,
            faq_top1: s1,
            faq_mrr: smrr,
        },
        teacher: teacher_figures,
        sick_pairs: pairs.len(),
        faq_queries: queries.len(),
        faq_entries: bank.len(),
    })
}
