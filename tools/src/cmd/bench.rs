//! `pith bench`: native int8 against tract fp32 and tract int8, same sentences, one run, side by side.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::backend::{Embedder, Kind};
use crate::defaults;
use crate::text::read_lines;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Package (default: models/minilm-l6.pith).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// fp32 ONNX for tract (default: the default model's export).
    #[arg(long)]
    pub fp32_onnx: Option<PathBuf>,
    /// QDQ ONNX for tract (default: the default model's export).
    #[arg(long)]
    pub int8_onnx: Option<PathBuf>,
    /// Sentence file (default: the calibration file's SNLI sentences).
    #[arg(long)]
    pub sentences: Option<PathBuf>,
    /// How many sentences (taken from the end of the file, away from the calibration lines).
    #[arg(short, long, default_value_t = 200)]
    pub count: usize,
    /// Skip the tract backends (for packages without an ONNX export).
    #[arg(long)]
    pub native_only: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let file = a.sentences.unwrap_or_else(defaults::calib_file);
    let lines = read_lines(&file)?;
    let sents: Vec<&str> = lines
        .iter()
        .rev()
        .take(a.count)
        .map(String::as_str)
        .collect();
    let bytes = crate::artifacts::read_package(a.model.as_deref())?;
    let mut kinds = vec![(Kind::Native, None)];
    if !a.native_only {
        kinds.push((Kind::TractFp32, a.fp32_onnx.clone()));
        kinds.push((Kind::TractInt8, a.int8_onnx.clone()));
    }
    let mut rows = Vec::new();
    for (kind, onnx) in kinds {
        let mut e = Embedder::new(&bytes, kind, onnx)?;
        // One warm-up pass over a few sentences so first-call allocation and plan setup are not timed.
        for s in sents.iter().take(5) {
            e.embed(s)?;
        }
        let start = Instant::now();
        for s in &sents {
            e.embed(s)?;
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / sents.len().max(1) as f64;
        rows.push((kind, ms));
    }
    let native = rows[0].1;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(k, ms)| serde_json::json!({"backend": k, "ms_per_sentence": ms, "ratio_to_native": ms / native}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"sentences": sents.len(), "file": file, "results": v, "cpus": threads})
        );
    } else {
        println!(
            "{} sentences from {}, one thread each, same machine, one run",
            sents.len(),
            file.display()
        );
        println!(
            "{:<12} {:>14} {:>16}",
            "backend", "ms/sentence", "time / native"
        );
        for (k, ms) in &rows {
            println!(
                "{:<12} {:>14.3} {:>16.2}",
                format!("{k:?}"),
                ms,
                ms / native
            );
        }
    }
    Ok(())
}
