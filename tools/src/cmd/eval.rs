//! `pith eval`: benchmarks (STS Spearman; FAQ retrieval).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::backend::{Embedder, Kind};
use crate::fp32::cosine;
use crate::stats::spearman;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub task: Task,
}

/// Which benchmark.
#[derive(clap::Subcommand)]
pub enum Task {
    /// Semantic textual similarity: Spearman (percent) between gold scores and cosines.
    Sts(StsArgs),
    /// FAQ retrieval: top-1 and MRR (percent) of the entry each `id<TAB>query` line names.
    Faq(crate::cmd::eval_faq::FaqArgs),
    /// Next-turn selection: top-1 of 100 and MRR of the reasoner and three baselines.
    Chat(crate::cmd::eval_chat::ChatArgs),
}

/// Arguments of `eval sts`.
#[derive(clap::Args)]
pub struct StsArgs {
    /// `score<TAB>a<TAB>b` lines (SICK) or the STS-B csv/tsv layout (score in column 5, sentences in 6 and 7).
    pub file: PathBuf,
    /// Engine.
    #[arg(long, value_enum, default_value_t = Kind::Native)]
    pub backend: Kind,
    /// Package (default: models/minilm-l6.pith).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// ONNX file for the tract backends.
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Print JSON `{"pairs": N, "spearman": S}`.
    #[arg(long)]
    pub json: bool,
}

/// Reads (score, a, b) triples from either layout.
pub fn read_pairs(path: &Path) -> Result<Vec<(f64, String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let parsed = if cols.len() == 3 {
            cols[0]
                .trim()
                .parse::<f64>()
                .ok()
                .map(|s| (s, cols[1], cols[2]))
        } else if cols.len() >= 7 {
            cols[4]
                .trim()
                .parse::<f64>()
                .ok()
                .map(|s| (s, cols[5], cols[6]))
        } else {
            None
        };
        match parsed {
            Some((s, a, b)) => out.push((s, a.to_string(), b.to_string())),
            None if i == 0 => continue, // a header line
            None => bail!(
                "{}:{}: expected score<TAB>a<TAB>b or the STS-B layout",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    match a.task {
        Task::Sts(s) => run_sts(s),
        Task::Faq(f) => crate::cmd::eval_faq::run_faq(f),
        Task::Chat(c) => crate::cmd::eval_chat::run_chat(c),
    }
}

fn run_sts(a: StsArgs) -> Result<()> {
    let pairs = read_pairs(&a.file)?;
    let bytes = crate::artifacts::read_package(a.model.as_deref())?;
    let mut e = Embedder::new(&bytes, a.backend, a.onnx)?;
    let bar = indicatif::ProgressBar::new(pairs.len() as u64);
    let mut gold = Vec::with_capacity(pairs.len());
    let mut pred = Vec::with_capacity(pairs.len());
    for (score, x, y) in &pairs {
        gold.push(*score);
        pred.push(cosine(&e.embed(x)?, &e.embed(y)?) as f64);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let rho = spearman(&gold, &pred) * 100.0;
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "pairs": pairs.len(), "spearman": rho, "backend": a.backend })
        );
    } else {
        println!(
            "{} pairs, Spearman {:.2} ({:?})",
            pairs.len(),
            rho,
            a.backend
        );
    }
    Ok(())
}
