//! `pith eval`: benchmarks (STS Spearman; FAQ retrieval; next-turn selection; int8 fidelity).

use std::path::PathBuf;

use anyhow::Result;

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
    /// int8 fidelity: cosine of the native embedding to the fp32 model, per held-out text domain.
    Fidelity(crate::cmd::eval_fidelity::FidelityArgs),
}

/// Arguments of `eval sts`.
#[derive(clap::Args)]
pub struct StsArgs {
    /// `score<TAB>a<TAB>b` lines (SICK) or the STS-B csv/tsv layout (score in column 5, sentences in 6 and 7).
    pub file: PathBuf,
    #[command(flatten)]
    pub model: crate::load::ModelArgs,
    /// Print JSON `{"pairs": N, "spearman": S}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    match a.task {
        Task::Sts(s) => run_sts(s),
        Task::Faq(f) => crate::cmd::eval_faq::run_faq(f),
        Task::Chat(c) => crate::cmd::eval_chat::run_chat(c),
        Task::Fidelity(f) => crate::cmd::eval_fidelity::run_fidelity(f),
    }
}

fn run_sts(a: StsArgs) -> Result<()> {
    let pairs = crate::pairs::read_pairs(&a.file)?;
    let bytes = a.model.package.read()?;
    let mut e = a.model.embedder(&bytes, a.model.backend)?;
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
        crate::outln!(
            "{}",
            serde_json::json!({ "pairs": pairs.len(), "spearman": rho, "backend": a.model.backend })
        );
    } else {
        crate::outln!(
            "{} pairs, Spearman {:.2} ({:?})",
            pairs.len(),
            rho,
            a.model.backend
        );
    }
    Ok(())
}
