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
    /// Also score this package (native runtime) on the same pairs and report the difference with
    /// a paired bootstrap interval (both scored on the same resampled pairs).
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// Resamples of the paired bootstrap (with --against).
    #[arg(long, default_value_t = 1000, value_parser = crate::args::count)]
    pub resamples: usize,
    /// Seed of the paired bootstrap (the same seed, the same interval).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print JSON `{"pairs": N, "spearman": S}` (and `"against"` with --against).
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

/// Each pair's cosine under `e`.
fn cosines(
    e: &mut crate::backend::Embedder<'_>,
    pairs: &[(f64, String, String)],
) -> Result<Vec<f64>> {
    let bar = indicatif::ProgressBar::new(pairs.len() as u64);
    let mut pred = Vec::with_capacity(pairs.len());
    for (_, x, y) in pairs {
        pred.push(cosine(&e.embed(x)?, &e.embed(y)?) as f64);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(pred)
}

fn run_sts(a: StsArgs) -> Result<()> {
    let pairs = crate::pairs::read_pairs(&a.file)?;
    let bytes = a.model.package.read()?;
    let mut e = a.model.embedder(&bytes, a.model.backend)?;
    let gold: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let pred = cosines(&mut e, &pairs)?;
    let rho = spearman(&gold, &pred) * 100.0;
    let against = match &a.against {
        None => None,
        Some(path) => {
            let other = crate::load::PackageArg {
                model: Some(path.clone()),
            }
            .read()?;
            let mut o = crate::backend::Embedder::new(&other, crate::backend::Kind::Native, None)?;
            let theirs = cosines(&mut o, &pairs)?;
            let b = crate::stats::paired_bootstrap(&gold, &pred, &theirs, a.resamples, a.seed);
            Some((path, spearman(&gold, &theirs) * 100.0, b))
        }
    };
    if a.json {
        let against = against.map(|(path, rho, b)| {
            serde_json::json!({ "package": path, "spearman": rho, "bootstrap": b, "seed": a.seed })
        });
        crate::outln!(
            "{}",
            serde_json::json!({ "pairs": pairs.len(), "spearman": rho, "backend": a.model.backend,
                "against": against })
        );
        return Ok(());
    }
    crate::outln!(
        "{} pairs, Spearman {:.2} ({:?})",
        pairs.len(),
        rho,
        a.model.backend
    );
    if let Some((path, theirs, b)) = against {
        crate::outln!("against {}: Spearman {theirs:.2} (native)", path.display());
        crate::outln!(
            "difference {:+.2}, 95 % paired bootstrap interval [{:+.2}, {:+.2}] ({} resamples, \
             seed {}); not better in {:.1} % of them",
            b.diff,
            b.low,
            b.high,
            b.resamples,
            a.seed,
            b.share_not_better * 100.0
        );
    }
    Ok(())
}
