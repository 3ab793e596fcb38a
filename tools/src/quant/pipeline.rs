//! Quantizing an encoder: calibrate a checkpoint, write the int8 `.pith` package (and a QDQ
//! ONNX), report fidelity. `pith quantize` and the default-artifact recipes both run it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{build, calibrate, lower, report, static_model};
use crate::checkpoint::Checkpoint;
use crate::defaults;
use crate::output;
use crate::text::{read_lines, CheckpointTokenizer};

/// Calibration lines (or conversations) by default.
pub const CALIB_COUNT: usize = 300;
/// Held-out lines (or conversations) of the fidelity report by default.
pub const EVAL_COUNT: usize = 400;

/// What to quantize and how (the options of `pith quantize`).
#[derive(clap::Args)]
pub struct Options {
    /// Checkpoint directory, or an fp32 ONNX written by `pith export`.
    pub checkpoint: PathBuf,
    /// Sentences for calibration (one a line); the lines after the calibration ones are held out for the report.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// How many lines calibrate.
    #[arg(long, default_value_t = CALIB_COUNT, value_parser = crate::args::count)]
    pub calib_count: usize,
    /// How many held-out lines the fidelity report uses.
    #[arg(long, default_value_t = EVAL_COUNT, value_parser = crate::args::count)]
    pub eval_count: usize,
    /// SmoothQuant strength for the LayerNorm-fed linears, 0..=1 (0 disables).
    #[arg(long, default_value_t = build::SMOOTH_ALPHA, value_parser = crate::args::fraction)]
    pub alpha: f32,
    /// The layers whose FFN runs at 16 bits (GELU on an i16 input grid, 15-bit output, FFN down
    /// one product over its two int8 planes): `all`, `none` or a list like `0,5`.
    #[arg(long, default_value = "none", value_parser = crate::args::layers)]
    pub ffn16: u64,
    /// Output package.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also write the same quantized model as a QDQ ONNX.
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Model name stored in the package.
    #[arg(long)]
    pub name: Option<String>,
    /// Prune the vocabulary to this many tokens (for boards with less memory; see prune.rs).
    #[arg(long, value_parser = crate::args::count)]
    pub vocab_size: Option<usize>,
    /// Text files whose tokens pruning keeps first (default: the calibration file).
    #[arg(long)]
    pub vocab_corpus: Vec<PathBuf>,
    /// Reasoner checkpoints only: the encoder package whose int8 turn vectors calibrate it
    /// (default: a shipped reasoner's own, else the one its reasoner.json names). `--calib` is
    /// then a conversations JSONL (default: data/chitchat/train.jsonl) and the counts are
    /// conversations.
    #[arg(long)]
    pub encoder: Option<PathBuf>,
}

impl Options {
    /// `pith quantize CHECKPOINT -o OUTPUT` with every other option at its default.
    pub fn new(checkpoint: PathBuf, output: PathBuf) -> Self {
        Options {
            checkpoint,
            calib: None,
            calib_count: CALIB_COUNT,
            eval_count: EVAL_COUNT,
            alpha: build::SMOOTH_ALPHA,
            ffn16: 0,
            output,
            onnx: None,
            name: None,
            vocab_size: None,
            vocab_corpus: Vec::new(),
            encoder: None,
        }
    }
}

/// Refuses outputs that would overwrite an input or each other; the checks clap cannot do
/// (`Options` is also built in code, by the default-artifact recipes).
pub fn check(a: &Options) -> Result<()> {
    anyhow::ensure!(a.calib_count > 0, "--calib-count must be at least 1");
    anyhow::ensure!(a.eval_count > 0, "--eval-count must be at least 1");
    anyhow::ensure!(
        a.alpha.is_finite() && (0.0..=1.0).contains(&a.alpha),
        "--alpha {} is outside 0..=1",
        a.alpha
    );
    if let Some(name) = &a.name {
        use pith_runtime::format::NAME_MAX;
        // The header keeps 48 bytes; a longer name would be cut without a word.
        anyhow::ensure!(
            name.len() <= NAME_MAX,
            "--name is {} bytes; a package name holds at most {NAME_MAX}",
            name.len()
        );
    }
    let report = a.output.with_extension("report.json");
    let plot = a.output.with_extension("report.svg");
    let mut inputs: Vec<&Path> = vec![&a.checkpoint];
    inputs.extend(a.calib.as_deref());
    inputs.extend(a.vocab_corpus.iter().map(PathBuf::as_path));
    inputs.extend(a.encoder.as_deref());
    output::refuse_input(&a.output, "--output", &inputs)?;
    output::refuse_input(&report, "the report", &inputs)?;
    output::refuse_input(&plot, "the report", &inputs)?;
    if let Some(onnx) = &a.onnx {
        output::refuse_input(onnx, "--onnx", &inputs)?;
        output::refuse_input(onnx, "--onnx", &[&a.output, &report, &plot])?;
    }
    Ok(())
}

/// Writes the package whole, after checking that it loads.
pub fn write_package(path: &Path, bytes: &[u8]) -> Result<()> {
    pith_runtime::Model::new(bytes)
        .map_err(|e| anyhow::anyhow!("the quantized package does not load: {e}"))?;
    output::write_whole(path, bytes)
}

/// Quantizes the encoder checkpoint (a BERT directory, an fp32 export, or a static model).
pub fn run(a: Options) -> Result<()> {
    check(&a)?;
    if static_model::is_static(&a.checkpoint) {
        ensure_no_ffn16(&a, "a static model")?;
        return run_static(a);
    }
    let is_onnx = a.checkpoint.is_file()
        && a.checkpoint
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    let mut ck = if is_onnx {
        Checkpoint::from_onnx(&a.checkpoint)
    } else {
        Checkpoint::load(&a.checkpoint)
    }
    .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let calib = a.calib.map_or_else(defaults::calib_file, Ok)?;
    let lines = read_lines(&calib)?;
    if let Some(size) = a.vocab_size {
        let mut corpus = Vec::new();
        for f in if a.vocab_corpus.is_empty() {
            vec![calib.clone()]
        } else {
            a.vocab_corpus.clone()
        } {
            corpus.extend(read_lines(&f)?);
        }
        crate::checkpoint::prune::prune(&mut ck, &corpus, size)?;
        eprintln!("vocabulary pruned to {} tokens", ck.vocab.len());
    }
    anyhow::ensure!(
        lines.len() > a.calib_count,
        "{} has only {} lines",
        calib.display(),
        lines.len()
    );
    let tok = CheckpointTokenizer::new(&ck);
    let ids: Vec<Vec<u32>> = lines.iter().map(|l| tok.ids(l)).collect::<Result<_>>()?;
    let (cal, rest) = ids.split_at(a.calib_count);
    let held = &rest[..a.eval_count.min(rest.len())];

    let layers = ck.layers.len();
    if a.ffn16 != u64::MAX && layers < 64 && a.ffn16 >> layers != 0 {
        anyhow::bail!(
            "--ffn16 names layer {} but {} has {layers} layers (0..{})",
            63 - a.ffn16.leading_zeros(),
            a.checkpoint.display(),
            layers.saturating_sub(1)
        );
    }
    let stats = calibrate::calibrate(&ck, cal);
    let plan = build::plan(
        &ck,
        &stats,
        build::Options {
            smooth_alpha: a.alpha,
            ffn16: a.ffn16,
        },
    );
    let name = a.name.unwrap_or_else(|| ck.name.clone());
    let bytes = lower::write_package(&ck, &plan, &name)?;
    write_package(&a.output, &bytes)?;
    if let Some(onnx) = &a.onnx {
        crate::onnx::export_qdq(&ck, &plan.q, onnx)?;
        eprintln!("wrote {}", onnx.display());
    }

    let model = pith_runtime::Model::new(&bytes)
        .map_err(|e| anyhow::anyhow!("the written package does not load: {e}"))?;
    let mut scales: Vec<f32> = plan.res_attn.iter().skip(1).copied().collect();
    scales.push(plan.pool_scale);
    let fid = report::measure(&ck, &model, held, &scales);
    crate::outln!(
        "package      {} ({:.2} MB)",
        a.output.display(),
        bytes.len() as f64 / 1e6
    );
    crate::outln!(
        "calibration  {} sentences of {}",
        cal.len(),
        calib.display()
    );
    crate::outln!(
        "held out     {} sentences (the next lines of the same file)",
        fid.sentences
    );
    for (l, c) in fid.layer_cosine.iter().enumerate() {
        crate::outln!("layer {l:<2}     residual cosine to fp32 {c:.5}");
    }
    crate::outln!(
        "embedding    mean cosine to fp32 {:.5}, worst {:.5}",
        fid.mean_cosine,
        fid.worst_cosine
    );
    let plot_path = a.output.with_extension("report.svg");
    let plot = crate::quant::plot::svg(&fid, &stats, model.dim())?;
    output::write_whole(&plot_path, plot.as_bytes())?;
    crate::outln!("plot         {}", plot_path.display());
    let report_path = a.output.with_extension("report.json");
    let json = serde_json::json!({
        "package": a.output, "bytes": bytes.len(), "calib_file": calib, "calib_sentences": cal.len(),
        "fidelity": fid, "smooth_alpha": a.alpha,
    });
    output::write_json(&report_path, &json)?;
    Ok(())
}

/// Static checkpoints (`"arch": "static"`): no calibration, just int8 rows; the report compares
/// the runtime's int8 output with the float static model on held-out sentences.
fn run_static(a: Options) -> Result<()> {
    let ck = static_model::StaticCheckpoint::load(&a.checkpoint)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let name = a.name.unwrap_or_else(|| ck.name.clone());
    let calib = a.calib.map_or_else(defaults::calib_file, Ok)?;
    let lines = read_lines(&calib)?;
    // The same held-out lines as the BERT report: after the first calib_count.
    let held: Vec<&String> = lines
        .iter()
        .skip(a.calib_count)
        .take(a.eval_count)
        .collect();
    anyhow::ensure!(
        !held.is_empty(),
        "{} has only {} lines: none left after the first {} (--calib-count) for the report",
        calib.display(),
        lines.len(),
        a.calib_count
    );
    let bytes = static_model::write_package(&ck, &name)?;
    write_package(&a.output, &bytes)?;
    let model = pith_runtime::Model::new(&bytes)
        .map_err(|e| anyhow::anyhow!("the written package does not load: {e}"))?;
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut ids = vec![0u32; model.max_tokens()];
    let mut q = vec![0i8; model.dim()];
    let (mut sum, mut worst, mut count) = (0f64, 1f64, 0usize);
    for line in &held {
        let n = model
            .tokenizer()
            .encode(line, &mut ids)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        model
            .embed(line, &mut arena, &mut q)
            .map_err(|e| anyhow::anyhow!("embedding: {e}"))?;
        let f = ck.embed_ids(&ids[..n]);
        let (mut dot, mut nf, mut nq) = (0f64, 0f64, 0f64);
        for (x, y) in f.iter().zip(&q) {
            dot += *x as f64 * *y as f64;
            nf += *x as f64 * *x as f64;
            nq += *y as f64 * *y as f64;
        }
        if nf == 0.0 && nq == 0.0 {
            continue; // only zero rows ([CLS], [SEP]): both are the zero vector, nothing to compare
        }
        let c = if nf > 0.0 && nq > 0.0 {
            dot / (nf * nq).sqrt()
        } else {
            0.0
        };
        sum += c;
        worst = worst.min(c);
        count += 1;
    }
    let mean = sum / count.max(1) as f64;
    let (vocab, dim) = ck.table.dim();
    let ram = model.arena_words(model.max_tokens()) * 4;
    crate::outln!(
        "package      {} ({} bytes, {:.1} KiB)",
        a.output.display(),
        bytes.len(),
        bytes.len() as f64 / 1024.0
    );
    crate::outln!(
        "model        static, vocab {vocab} x dim {dim} = {} parameters",
        vocab * dim
    );
    crate::outln!("arena        {ram} bytes at {} tokens", model.max_tokens());
    crate::outln!("held out     {count} sentences of {}", calib.display());
    crate::outln!("embedding    mean cosine to the float static model {mean:.5}, worst {worst:.5}");
    let report_path = a.output.with_extension("report.json");
    let json = serde_json::json!({
        "package": a.output, "bytes": bytes.len(), "arch": "static", "vocab": vocab, "dim": dim,
        "parameters": vocab * dim, "arena_bytes": ram, "eval_file": calib, "eval_sentences": count,
        "fidelity": {"mean_cosine": mean, "worst_cosine": worst},
    });
    output::write_json(&report_path, &json)?;
    Ok(())
}

/// `--ffn16` only means something for BERT encoders.
pub fn ensure_no_ffn16(a: &Options, what: &str) -> Result<()> {
    anyhow::ensure!(
        a.ffn16 == 0,
        "--ffn16 applies to BERT encoders; {} is {what}",
        a.checkpoint.display()
    );
    Ok(())
}
