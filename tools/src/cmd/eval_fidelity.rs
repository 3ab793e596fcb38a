//! `pith eval fidelity`: how close the native int8 embedding is to the fp32 model, per text domain.
//!
//! The reference is tract running the fp32 ONNX export (another engine than the quantizer's own
//! float model), on the package's token ids. Every domain is text the quantizer never calibrated
//! on: SNLI lines after the 300 calibration lines, SICK sentences, FAQ user queries, FAQ bank
//! questions and answers. Per domain: mean and worst cosine.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::backend::{Embedder, Kind};
use crate::fp32::cosine;

/// Arguments of `eval fidelity`.
#[derive(clap::Args)]
pub struct FidelityArgs {
    #[command(flatten)]
    pub model: crate::load::PackageArg,
    /// fp32 ONNX of the same model (default: the default export).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Sentences per domain (the first N distinct ones, in file order).
    #[arg(long, default_value_t = 400, value_parser = crate::args::count)]
    pub per_domain: usize,
    /// Print JSON `{"domains": {NAME: {"sentences", "mean", "worst"}}, "all": {...}}`.
    #[arg(long)]
    pub json: bool,
    /// Also print the N least faithful texts of each domain (to stderr), to see what breaks.
    #[arg(long, default_value_t = 0)]
    pub show_worst: usize,
}

/// The calibration lines `pith quantize` reads by default (its `--calib-count`); held-out text
/// starts after them.
const CALIBRATION_LINES: usize = 300;

/// One held-out domain: a name and its sentences.
struct Domain {
    name: &'static str,
    sentences: Vec<String>,
}

/// The first `n` distinct non-empty strings, in order.
fn distinct(items: impl IntoIterator<Item = String>, n: usize) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .take(n)
        .collect()
}

/// The domains, read from the repository's data/ folder.
fn domains(n: usize) -> Result<Vec<Domain>> {
    let data = crate::defaults::data_dir()?;
    let snli = crate::text::read_lines(&crate::defaults::calib_file()?)?;
    let sick = crate::pairs::read_pairs(&data.join("sts/sick-dev.tsv"))?;
    let queries = crate::kb::source::read_queries(&data.join("faq/stackfaq-dev-queries.tsv"))?;
    let bank = crate::kb::source::read_source(&data.join("faq/stackfaq-bank.jsonl"), None)?;
    Ok(vec![
        Domain {
            name: "snli-heldout",
            sentences: distinct(snli.into_iter().skip(CALIBRATION_LINES), n),
        },
        Domain {
            name: "sick",
            sentences: distinct(sick.into_iter().flat_map(|(_, a, b)| [a, b]), n),
        },
        Domain {
            name: "faq-queries",
            sentences: distinct(queries.into_iter().map(|(_, q)| q), n),
        },
        Domain {
            name: "faq-questions",
            sentences: distinct(bank.iter().map(|e| e.question.clone()), n),
        },
        Domain {
            name: "faq-answers",
            sentences: distinct(bank.iter().map(|e| e.answer.clone()), n),
        },
    ])
}

/// Mean and worst of a list of cosines.
fn summary(c: &[f64]) -> serde_json::Value {
    let mean = c.iter().sum::<f64>() / c.len().max(1) as f64;
    let worst = c.iter().copied().fold(1.0, f64::min);
    json!({ "sentences": c.len(), "mean": mean, "worst": worst })
}

/// Runs `eval fidelity`.
pub fn run_fidelity(a: FidelityArgs) -> Result<()> {
    let package = a.model.read()?;
    let fp32 = match &a.onnx {
        Some(p) => p.clone(),
        None => crate::artifacts::default_artifacts()?.fp32_onnx,
    };
    let mut native = Embedder::new(&package, Kind::Native, None)?;
    let mut float = Embedder::new(&package, Kind::TractFp32, Some(fp32))?;
    let domains = domains(a.per_domain)?;
    let total = domains.iter().map(|d| d.sentences.len()).sum::<usize>();
    let bar = indicatif::ProgressBar::new(total as u64);
    let mut all = Vec::with_capacity(total);
    let mut per = serde_json::Map::new();
    for d in &domains {
        let mut c = Vec::with_capacity(d.sentences.len());
        for s in &d.sentences {
            c.push(cosine(&native.embed(s)?, &float.embed(s)?) as f64);
            bar.inc(1);
        }
        if a.show_worst > 0 {
            let mut order: Vec<usize> = (0..c.len()).collect();
            order.sort_by(|&i, &j| c[i].total_cmp(&c[j]));
            for &i in order.iter().take(a.show_worst) {
                let text: String = d.sentences[i].chars().take(100).collect();
                bar.suspend(|| eprintln!("{:<16}{:>10.5}  {text}", d.name, c[i]));
            }
        }
        per.insert(d.name.to_string(), summary(&c));
        all.extend(c);
    }
    bar.finish_and_clear();
    let out = json!({ "domains": per, "all": summary(&all) });
    if a.json {
        crate::outln!("{out}");
    } else {
        crate::outln!("native int8 vs tract fp32, cosine per sentence");
        crate::outln!(
            "{:<16}{:>10}{:>10}{:>10}",
            "domain",
            "sentences",
            "mean",
            "worst"
        );
        let all_name = "all".to_string();
        let rows = per.iter().chain(std::iter::once((&all_name, &out["all"])));
        for (name, s) in rows {
            crate::outln!(
                "{:<16}{:>10}{:>10.5}{:>10.5}",
                name,
                s["sentences"].as_u64().unwrap_or(0),
                s["mean"].as_f64().unwrap_or(f64::NAN),
                s["worst"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    Ok(())
}
