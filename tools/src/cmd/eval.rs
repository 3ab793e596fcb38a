//! `pith eval`: benchmarks (STS Spearman; FAQ retrieval; next-turn selection; int8 fidelity).

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
    /// int8 fidelity: cosine of the native embedding to the fp32 model, per held-out text domain.
    Fidelity(crate::cmd::eval_fidelity::FidelityArgs),
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

/// Reads (score, a, b) triples from either layout. A first line that does not parse is a header;
/// any later one, a score that is not a finite number, or a file with fewer than two pairs (or
/// with every gold score equal, where Spearman is undefined) is an error naming the file and line.
pub fn read_pairs(path: &Path) -> Result<Vec<(f64, String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let fields = match cols.len() {
            3 => Some((cols[0], cols[1], cols[2])),
            n if n >= 7 => Some((cols[4], cols[5], cols[6])),
            _ => None,
        };
        let parsed = fields.and_then(|(s, a, b)| Some((s.trim().parse::<f64>().ok()?, a, b)));
        match parsed {
            Some((s, a, b)) if s.is_finite() => out.push((s, a.to_string(), b.to_string())),
            Some((s, _, _)) => bail!(
                "{}:{}: the score {s} is not a finite number",
                path.display(),
                i + 1
            ),
            None if out.is_empty() && i == first_line(&text) => continue, // a header line
            None => bail!(
                "{}:{}: expected score<TAB>a<TAB>b or the STS-B layout",
                path.display(),
                i + 1
            ),
        }
    }
    if out.len() < 2 {
        bail!(
            "{}: {} scored pairs; Spearman needs at least two",
            path.display(),
            out.len()
        );
    }
    if out.iter().all(|p| p.0 == out[0].0) {
        bail!(
            "{}: every gold score is {}; Spearman is undefined",
            path.display(),
            out[0].0
        );
    }
    Ok(out)
}

/// Index of the first non-blank line (where a header may be).
fn first_line(text: &str) -> usize {
    text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0)
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
        crate::outln!(
            "{}",
            serde_json::json!({ "pairs": pairs.len(), "spearman": rho, "backend": a.backend })
        );
    } else {
        crate::outln!(
            "{} pairs, Spearman {:.2} ({:?})",
            pairs.len(),
            rho,
            a.backend
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<(f64, String, String)>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("sts.tsv");
        std::fs::write(&p, text)?;
        read_pairs(&p)
    }

    #[test]
    fn bad_scores_and_empty_files_are_errors_naming_the_line() {
        let e = |t: &str| format!("{:#}", read(t).unwrap_err());
        assert!(e("1\ta\tb\nNaN\tc\td\n").contains("sts.tsv:2: the score NaN"));
        assert!(e("inf\ta\tb\n1\tc\td\n").contains(":1: the score inf"));
        assert!(e("").contains("0 scored pairs"));
        assert!(e("score\ta\tb\n").contains("0 scored pairs"));
        assert!(e("header\nnot a pair\n").contains(":2: expected"));
        assert!(e("2\ta\tb\n2\tc\td\n").contains("undefined"));
        let ok = read("\nscore\ta\tb\n1\ta\tb\n2.5\tc\td\n").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].0, 2.5);
    }
}
