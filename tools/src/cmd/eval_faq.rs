//! `pith eval faq`: FAQ retrieval — for each `id<TAB>query` line, where does the bank rank entry
//! `id`? Reports top-1 accuracy and mean reciprocal rank in percent, optionally the abstain rule.
//!
//! The native backend scores with the bank's stored vectors and integer search (exactly what the
//! device computes); the tract backends re-embed the bank's texts and the queries in float and
//! apply the same combination, so the two differ only by the engine.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use pith_runtime::kb::{score_to_cosine, Bank, BankOptions, Index, NEVER_ABSTAIN};
use pith_runtime::Model;
use serde_json::json;

use crate::backend::{Embedder, Kind};
use crate::fp32::cosine;
use crate::kb::rank_of;
use crate::kb::source::{read_queries, read_source};

/// Which side of the entries the queries are compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexArg {
    /// Stored questions.
    Question,
    /// Stored answers.
    Answer,
    /// max(question, answer + bias).
    Both,
}

impl From<IndexArg> for Index {
    fn from(i: IndexArg) -> Index {
        match i {
            IndexArg::Question => Index::Question,
            IndexArg::Answer => Index::Answer,
            IndexArg::Both => Index::Both,
        }
    }
}

/// Arguments of `eval faq`.
#[derive(clap::Args)]
pub struct FaqArgs {
    /// A bank (.pithkb), or a source (.jsonl, .md, text) built in memory with the default options.
    #[arg(long)]
    pub bank: PathBuf,
    /// `id<TAB>query` lines.
    #[arg(long)]
    pub queries: PathBuf,
    /// What the queries are compared with.
    #[arg(long, value_enum, default_value_t = IndexArg::Both)]
    pub index: IndexArg,
    #[command(flatten)]
    pub model: crate::load::ModelArgs,
    /// Bits per vector element when `--bank` is a source (4 or 8).
    #[arg(long, default_value_t = 4, value_parser = crate::args::value_bits)]
    pub bits: u8,
    /// Also apply the bank's abstain threshold and report how many queries it answers.
    #[arg(long)]
    pub abstain: bool,
    /// Off-topic sentences (one a line): with `--abstain`, how many of them it refuses.
    #[arg(long, requires = "abstain")]
    pub negatives: Option<PathBuf>,
    /// Also rank every query with the fp32 engine (tract, the bank's texts re-embedded) and count
    /// the queries whose top-1 entry differs from this backend's.
    #[arg(long)]
    pub agreement: bool,
    /// Print JSON `{"queries": N, "top1": T, "mrr": M, ...}`.
    #[arg(long)]
    pub json: bool,
}

/// Scores every entry for a query: the index-combined score of each entry.
trait Scorer {
    fn scores(&mut self, query: &str) -> Result<Vec<f64>>;
}

/// The device path: the bank's own vectors, integer scores.
struct Native<'a> {
    bank: Bank<'a>,
    model: &'a Model<'a>,
    index: Index,
    arena: Vec<i32>,
}

impl Scorer for Native<'_> {
    fn scores(&mut self, query: &str) -> Result<Vec<f64>> {
        let mut q = vec![0i8; self.model.dim()];
        self.model
            .embed(query, &mut self.arena, &mut q)
            .map_err(|e| anyhow!("embedding {query:?}: {e}"))?;
        (0..self.bank.len())
            .map(|i| {
                self.bank
                    .score(&q, i, self.index)
                    .map(|s| s as f64)
                    .ok_or_else(|| anyhow!("bank dimension"))
            })
            .collect()
    }
}

/// A float engine: the bank's texts re-embedded, cosines in f64, same combination.
struct Float<'a> {
    embedder: Embedder<'a>,
    questions: Vec<Vec<f32>>,
    answers: Vec<Vec<f32>>,
    index: Index,
    bias: f64,
}

impl<'a> Float<'a> {
    /// Embeds the bank's questions and answers with the `kind` engine.
    fn new(
        package: &'a [u8],
        kind: Kind,
        onnx: Option<PathBuf>,
        bank: &Bank<'_>,
        index: Index,
    ) -> Result<Self> {
        let mut embedder = Embedder::new(package, kind, onnx)?;
        let bar = indicatif::ProgressBar::new(2 * bank.len() as u64);
        let mut questions = Vec::with_capacity(bank.len());
        let mut answers = Vec::with_capacity(bank.len());
        for e in bank.entries() {
            questions.push(embedder.embed(&e.question.to_string())?);
            answers.push(embedder.embed(&e.answer.to_string())?);
            bar.inc(2);
        }
        bar.finish_and_clear();
        Ok(Float {
            embedder,
            questions,
            answers,
            index,
            bias: bank.answer_bias() as f64,
        })
    }
}

impl Scorer for Float<'_> {
    fn scores(&mut self, query: &str) -> Result<Vec<f64>> {
        let q = self.embedder.embed(query)?;
        // Same units as the integer scores, so one threshold serves both.
        let unit = pith_runtime::kb::SCORE_ONE as f64;
        Ok(self
            .questions
            .iter()
            .zip(&self.answers)
            .map(|(qv, av)| {
                let cq = cosine(&q, qv) as f64 * unit;
                let ca = cosine(&q, av) as f64 * unit;
                match self.index {
                    Index::Question => cq,
                    Index::Answer => ca,
                    Index::Both => cq.max(ca + self.bias),
                }
            })
            .collect())
    }
}

/// Index of the best-scoring entry, ties going to the lower index.
fn top_entry(scores: &[f64]) -> usize {
    let b = best(scores);
    scores.iter().position(|&s| s == b).unwrap_or(0)
}

fn best(scores: &[f64]) -> f64 {
    scores.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Whether the file at `path` begins like a bank (otherwise it is read as a source; a file that
/// cannot be opened is left to the source reader, whose error names it).
fn starts_with_bank_magic(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; pith_runtime::kb::BANK_MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == pith_runtime::kb::BANK_MAGIC)
}

/// Runs `eval faq`.
pub fn run_faq(a: FaqArgs) -> Result<()> {
    let package = a.model.package.read()?;
    let model = Model::new(&package).map_err(|e| anyhow!("loading package: {e}"))?;
    let bytes = if starts_with_bank_magic(&a.bank) {
        crate::framed_file::read(&a.bank, &crate::framed_file::BANK)?
    } else {
        if a.bits != 4 && a.bits != 8 {
            bail!("--bits must be 4 or 8");
        }
        let entries = read_source(&a.bank, None)?;
        let options = BankOptions {
            question_bits: a.bits,
            answer_bits: a.bits,
            ..BankOptions::default()
        };
        crate::kb::build(&model, &entries, options)?
    };
    let bank = Bank::for_model(&bytes, &model).map_err(|e| anyhow!("{}: {e}", a.bank.display()))?;
    let queries = read_queries(&a.queries)?;
    let gold = crate::kb::label(&bank, &queries)?;
    let index: Index = a.index.into();

    let mut scorer: Box<dyn Scorer + '_> = match a.model.backend {
        Kind::Native => Box::new(Native {
            bank,
            model: &model,
            index,
            arena: vec![0i32; model.arena_words(model.max_tokens())],
        }),
        kind => Box::new(Float::new(
            &package,
            kind,
            a.model.onnx_for(kind)?,
            &bank,
            index,
        )?),
    };
    let mut reference = match a.agreement {
        true => Some(Float::new(
            &package,
            Kind::TractFp32,
            a.model.onnx_for(Kind::TractFp32)?,
            &bank,
            index,
        )?),
        false => None,
    };
    let mut disagreements = Vec::new();

    let threshold = bank.threshold();
    let abstain = a.abstain && threshold != NEVER_ABSTAIN;
    if a.abstain && !abstain {
        bail!("{} has no abstain threshold", a.bank.display());
    }
    let bar = indicatif::ProgressBar::new(queries.len() as u64);
    let (mut top1, mut rr, mut answered, mut answered_right) = (0usize, 0f64, 0usize, 0usize);
    for ((_, q), &g) in queries.iter().zip(&gold) {
        let s = scorer.scores(q)?;
        if let Some(f) = reference.as_mut() {
            let (mine, theirs) = (top_entry(&s), top_entry(&f.scores(q)?));
            if mine != theirs {
                disagreements.push(json!({ "query": q, "entry": mine, "fp32_entry": theirs }));
            }
        }
        let r = rank_of(&s, g);
        top1 += (r == 1) as usize;
        rr += 1.0 / r as f64;
        if best(&s) >= threshold as f64 {
            answered += 1;
            answered_right += (r == 1) as usize;
        }
        bar.inc(1);
    }
    let mut negatives_refused = None;
    if let Some(path) = &a.negatives {
        let text = crate::input::text(path)?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            bail!("{}: no negative queries", path.display());
        }
        bar.inc_length(lines.len() as u64);
        let mut refused = 0usize;
        for l in &lines {
            refused += (best(&scorer.scores(l)?) < threshold as f64) as usize;
            bar.inc(1);
        }
        negatives_refused = Some((lines.len(), refused));
    }
    bar.finish_and_clear();

    let n = queries.len().max(1) as f64;
    let pct = |x: usize| 100.0 * x as f64 / n;
    let mut out = json!({
        "queries": queries.len(), "top1": pct(top1), "mrr": 100.0 * rr / n,
        "index": a.index, "backend": a.model.backend, "entries": bank.len(),
    });
    if a.agreement {
        out["fp32_top1_agreement"] = json!(pct(queries.len() - disagreements.len()));
        out["fp32_disagreements"] = json!(disagreements);
    }
    if abstain {
        out["threshold"] = json!(score_to_cosine(threshold));
        out["answered"] = json!(pct(answered));
        out["answered_correct"] = json!(pct(answered_right));
        out["precision"] = json!(100.0 * answered_right as f64 / answered.max(1) as f64);
        if let Some((count, refused)) = negatives_refused {
            out["negatives"] = json!(count);
            out["negatives_refused"] = json!(100.0 * refused as f64 / count.max(1) as f64);
        }
    }
    if a.json {
        crate::outln!("{out}");
    } else {
        crate::outln!(
            "{} queries, {} entries, index {:?} ({:?}): top-1 {:.2}, MRR {:.2}",
            queries.len(),
            bank.len(),
            a.index,
            a.model.backend,
            pct(top1),
            100.0 * rr / n
        );
        if a.agreement {
            crate::outln!(
                "same top-1 entry as fp32 (tract) for {:.2} % of the queries ({} differ)",
                pct(queries.len() - disagreements.len()),
                disagreements.len()
            );
        }
        if abstain {
            crate::outln!(
                "threshold {:.4}: answers {:.2} % of the queries, {:.2} % correctly (precision {:.2})",
                score_to_cosine(threshold),
                pct(answered),
                pct(answered_right),
                out["precision"].as_f64().unwrap_or(0.0)
            );
            if let Some((count, refused)) = negatives_refused {
                crate::outln!(
                    "off-topic: refuses {refused} of {count} ({:.2} %)",
                    100.0 * refused as f64 / count.max(1) as f64
                );
            }
        }
    }
    Ok(())
}
