//! `pith quantize`: calibrate a checkpoint, write the int8 `.pith` package (and a QDQ ONNX), report fidelity.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::checkpoint::Checkpoint;
use crate::defaults;
use crate::quant::{build, calibrate, lower, report};
use crate::text::{read_lines, CheckpointTokenizer};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Sentence-transformers checkpoint directory (config.json, model.safetensors, vocab).
    pub checkpoint: PathBuf,
    /// Sentences for calibration (one a line); the lines after the calibration ones are held out for the report.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// How many lines calibrate.
    #[arg(long, default_value_t = 300)]
    pub calib_count: usize,
    /// How many held-out lines the fidelity report uses.
    #[arg(long, default_value_t = 400)]
    pub eval_count: usize,
    /// SmoothQuant strength for the LayerNorm-fed linears (0 disables).
    #[arg(long, default_value_t = 0.7)]
    pub alpha: f32,
    /// Output package.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also write the same quantized model as a QDQ ONNX.
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Model name stored in the package.
    #[arg(long)]
    pub name: Option<String>,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let ck = Checkpoint::load(&a.checkpoint).with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let calib = a.calib.unwrap_or_else(defaults::calib_file);
    let lines = read_lines(&calib)?;
    anyhow::ensure!(lines.len() > a.calib_count, "{} has only {} lines", calib.display(), lines.len());
    let tok = CheckpointTokenizer::new(&ck);
    let ids: Vec<Vec<u32>> = lines.iter().map(|l| tok.ids(l)).collect::<Result<_>>()?;
    let (cal, rest) = ids.split_at(a.calib_count);
    let held = &rest[..a.eval_count.min(rest.len())];

    let stats = calibrate::calibrate(&ck, cal);
    let plan = build::plan(&ck, &stats, build::Options { smooth_alpha: a.alpha });
    let name = a.name.unwrap_or_else(|| ck.name.clone());
    let bytes = lower::write_package(&ck, &plan, &name)?;
    std::fs::write(&a.output, &bytes).with_context(|| format!("writing {}", a.output.display()))?;
    if let Some(onnx) = &a.onnx {
        crate::onnx::export_qdq(&ck, &plan.q, onnx)?;
        eprintln!("wrote {}", onnx.display());
    }

    let model = pith_runtime::Model::new(&bytes).map_err(|e| anyhow::anyhow!("the written package does not load: {e}"))?;
    let mut scales: Vec<f32> = plan.res_attn.iter().skip(1).copied().collect();
    scales.push(plan.pool_scale);
    let fid = report::measure(&ck, &model, held, &scales);
    println!("package      {} ({:.2} MB)", a.output.display(), bytes.len() as f64 / 1e6);
    println!("calibration  {} sentences of {}", cal.len(), calib.display());
    println!("held out     {} sentences (the next lines of the same file)", fid.sentences);
    for (l, c) in fid.layer_cosine.iter().enumerate() {
        println!("layer {l:<2}     residual cosine to fp32 {c:.5}");
    }
    println!("embedding    mean cosine to fp32 {:.5}, worst {:.5}", fid.mean_cosine, fid.worst_cosine);
    let report_path = a.output.with_extension("report.json");
    let json = serde_json::json!({
        "package": a.output, "bytes": bytes.len(), "calib_file": calib, "calib_sentences": cal.len(),
        "fidelity": fid, "smooth_alpha": a.alpha,
    });
    std::fs::write(&report_path, serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
