//! The student's figures beside its teacher's, in one run: SICK dev Spearman (data/sts) and
//! StackFAQ retrieval (data/faq: the bank the device holds, the user queries). The student is
//! measured as the device runs it (the int8 package, integer bank search); the teacher is its
//! fp32 forward pass with the same scoring in float. Beside both, what needs no model at all:
//! TF-IDF cosine ([`crate::lexical`]: sublinear term frequency, BM25's IDF; over the SICK dev
//! sentences, and over each StackFAQ entry's question and answer together).

use std::path::Path;

use anyhow::{anyhow, Result};
use pith_runtime::kb::{Bank, Index, SCORE_ONE};
use pith_runtime::Model;
use rayon::prelude::*;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::fp32::cosine;
use crate::kb::rank_of;
use crate::kb::source::read_queries;
use crate::lexical::Lexicon;
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

/// Student and teacher, side by side, and the lexical baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    pub student: Scores,
    pub teacher: Scores,
    /// TF-IDF cosine, no model.
    pub lexical: Scores,
    /// SICK pairs and FAQ queries and entries measured.
    pub sick_pairs: usize,
    pub faq_queries: usize,
    pub faq_entries: usize,
}

/// The two benchmarks, loaded once, and the threads they run on.
struct Bench<'b> {
    pool: rayon::ThreadPool,
    pairs: Vec<(f64, String, String)>,
    bank: Bank<'b>,
    queries: Vec<(String, String)>,
    /// Each query's entry.
    gold: Vec<usize>,
}

/// A model's embedding of a text, as floats.
type EmbedFn<'f> = dyn Fn(&str) -> Result<Vec<f32>> + Sync + 'f;

impl Bench<'_> {
    /// What the teacher's figures depend on besides the teacher (`teacher_key`): the pairs,
    /// the queries, and the entries' texts and answer bias.
    fn key(&self, teacher_key: u64) -> u64 {
        let mut d = super::teacher::CRC.digest_with_initial(teacher_key);
        let mut text = |s: &str| {
            d.update(&(s.len() as u64).to_le_bytes());
            d.update(s.as_bytes());
        };
        for (score, a, b) in &self.pairs {
            text(&score.to_string());
            text(a);
            text(b);
        }
        for (id, q) in &self.queries {
            text(id);
            text(q);
        }
        for e in self.bank.entries() {
            text(&e.question.to_string());
            text(&e.answer.to_string());
        }
        text(&self.bank.answer_bias().to_string());
        d.finalize()
    }

    /// SICK dev Spearman (percent) of the cosines `embed` gives.
    fn sick(&self, embed: &EmbedFn<'_>) -> Result<f64> {
        let pred: Vec<f64> = self.pool.install(|| {
            self.pairs
                .par_iter()
                .map(|(_, a, b)| Ok(cosine(&embed(a)?, &embed(b)?) as f64))
                .collect::<Result<_>>()
        })?;
        let gold: Vec<f64> = self.pairs.iter().map(|p| p.0).collect();
        Ok(100.0 * crate::stats::spearman(&gold, &pred))
    }

    /// Top-1 and MRR (percent) when `scores(query)` scores every entry.
    fn faq(&self, scores: impl Fn(&str) -> Result<Vec<f64>> + Sync) -> Result<(f64, f64)> {
        let ranks: Vec<usize> = self.pool.install(|| {
            self.queries
                .par_iter()
                .zip(&self.gold)
                .map(|((_, q), &g)| Ok(rank_of(&scores(q)?, g)))
                .collect::<Result<_>>()
        })?;
        let n = ranks.len().max(1) as f64;
        let top1 = ranks.iter().filter(|&&r| r == 1).count() as f64;
        let rr: f64 = ranks.iter().map(|&r| 1.0 / r as f64).sum();
        Ok((100.0 * top1 / n, 100.0 * rr / n))
    }

    /// TF-IDF cosine: SICK pairs with the IDF of the SICK dev sentences, StackFAQ queries
    /// against each entry's question and answer as one document.
    fn lexical(&self) -> Result<Scores> {
        let sentences: Vec<&str> = self
            .pairs
            .iter()
            .flat_map(|(_, a, b)| [a.as_str(), b.as_str()])
            .collect();
        let lex = Lexicon::new(&sentences);
        let pred: Vec<f64> = self
            .pairs
            .iter()
            .map(|(_, a, b)| lex.cosine(a, b))
            .collect();
        let gold: Vec<f64> = self.pairs.iter().map(|p| p.0).collect();
        let docs: Vec<String> = self
            .bank
            .entries()
            .map(|e| format!("{} {}", e.question, e.answer))
            .collect();
        let faq = Lexicon::new(&docs);
        let (top1, mrr) = self.faq(|q| {
            let qv = faq.tfidf_query(&faq.query(&[q]));
            Ok((0..faq.len()).map(|i| faq.tfidf(&qv, i)).collect())
        })?;
        Ok(Scores {
            sick_dev: 100.0 * crate::stats::spearman(&gold, &pred),
            faq_top1: top1,
            faq_mrr: mrr,
        })
    }

    /// The device's search: integer scores of the bank's stored vectors.
    fn faq_device(&self, embed: impl Fn(&str) -> Result<Vec<i8>> + Sync) -> Result<(f64, f64)> {
        self.faq(|q| {
            let v = embed(q)?;
            (0..self.bank.len())
                .map(|i| {
                    self.bank
                        .score(&v, i, Index::Both)
                        .map(f64::from)
                        .ok_or_else(|| anyhow!("bank dimension"))
                })
                .collect()
        })
    }

    /// A float model on the same entries' texts: cosines, the same combination and units.
    fn faq_float(&self, embed: &EmbedFn<'_>) -> Result<(f64, f64)> {
        let texts: Vec<(String, String)> = self
            .bank
            .entries()
            .map(|e| (e.question.to_string(), e.answer.to_string()))
            .collect();
        let vecs: Vec<(Vec<f32>, Vec<f32>)> = self.pool.install(|| {
            texts
                .par_iter()
                .map(|(q, a)| Ok((embed(q)?, embed(a)?)))
                .collect::<Result<_>>()
        })?;
        let (bias, unit) = (self.bank.answer_bias() as f64, SCORE_ONE as f64);
        self.faq(|q| {
            let v = embed(q)?;
            Ok(vecs
                .iter()
                .map(|(qv, av)| {
                    let cq = cosine(&v, qv) as f64 * unit;
                    let ca = cosine(&v, av) as f64 * unit;
                    cq.max(ca + bias)
                })
                .collect())
        })
    }
}

/// Measures both models and writes the student's StackFAQ bank (abstain threshold calibrated
/// on the queries, as `pith kb build` does) to `bank_path`. The teacher's figures are cached in
/// `work` under the hash of its files (`teacher_key`) and of the benchmarks' texts: its fp32
/// passes take longer than the rest.
pub fn run(
    teacher: &Checkpoint,
    teacher_key: u64,
    package: &[u8],
    bank_path: &Path,
    work: &Path,
    threads: usize,
) -> Result<Figures> {
    super::stage("evaluate: SICK dev and StackFAQ, student and teacher");
    let model = Model::new(package).map_err(|e| anyhow!("the student package: {e}"))?;
    let (bytes, _) = crate::kb::build_stackfaq(&model)?;
    crate::output::write_whole(bank_path, &bytes)?;
    let bank = Bank::for_model(&bytes, &model).map_err(|e| anyhow!("the student bank: {e}"))?;
    let queries = read_queries(&crate::kb::stackfaq_dev_queries()?)?;
    let bench = Bench {
        pool: rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| anyhow!("starting {threads} threads: {e}"))?,
        pairs: crate::pairs::read_pairs(&crate::defaults::repo_root()?.join(SICK_DEV))?,
        gold: crate::kb::label(&bank, &queries)?,
        bank,
        queries,
    };

    let student_i8 = |s: &str| -> Result<Vec<i8>> {
        let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
        let mut v = vec![0i8; model.dim()];
        model
            .embed(s, &mut arena, &mut v)
            .map_err(|e| anyhow!("embedding {s:?}: {e}"))?;
        Ok(v)
    };
    let student_f32 =
        |s: &str| -> Result<Vec<f32>> { Ok(student_i8(s)?.into_iter().map(f32::from).collect()) };
    let (top1, mrr) = bench.faq_device(student_i8)?;
    let student = Scores {
        sick_dev: bench.sick(&student_f32)?,
        faq_top1: top1,
        faq_mrr: mrr,
    };

    let cache = work.join(format!(
        "teacher-figures-{:016x}.json",
        bench.key(teacher_key)
    ));
    let cached: Option<Scores> =
        crate::input::text_or_missing(&cache)?.and_then(|t| serde_json::from_str(&t).ok());
    let teacher = match cached {
        Some(s) => s,
        None => {
            let tok = CheckpointTokenizer::new(teacher);
            let fp32 = |s: &str| -> Result<Vec<f32>> {
                Ok(crate::fp32::embed(teacher, &tok.ids(s)?, &mut ()).to_vec())
            };
            let (top1, mrr) = bench.faq_float(&fp32)?;
            let s = Scores {
                sick_dev: bench.sick(&fp32)?,
                faq_top1: top1,
                faq_mrr: mrr,
            };
            crate::output::write_whole(&cache, serde_json::to_string(&s)?.as_bytes())?;
            s
        }
    };
    Ok(Figures {
        student,
        teacher,
        lexical: bench.lexical()?,
        sick_pairs: bench.pairs.len(),
        faq_queries: bench.queries.len(),
        faq_entries: bench.bank.len(),
    })
}
