//! `pith kb build SOURCE -o FILE` and `pith kb info FILE`: knowledge banks for `ask`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use pith_runtime::kb::{package_tag, score_to_cosine, Bank, BankOptions, NEVER_ABSTAIN};
use pith_runtime::Model;

use crate::kb::source::{read_queries, read_source, SourceFormat};
use crate::kb::{self as bank, to_score, DEFAULT_KEEP, UNCALIBRATED_THRESHOLD};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: KbCommand,
}

/// What to do with a bank.
#[derive(clap::Subcommand)]
pub enum KbCommand {
    /// Embed a JSONL, Markdown or text file with the native int8 runtime and write a bank.
    Build(BuildArgs),
    /// Describe a bank.
    Info(InfoArgs),
}

/// Arguments of `kb build`.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Source: .jsonl (`question`/`answer`, optional `id`, or `text`), .md (heading = question,
    /// body = answer) or anything else as text (one entry a line).
    pub source: PathBuf,
    /// Output bank (.pithkb).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub model: crate::load::PackageArg,
    /// Source format (default: from the extension).
    #[arg(long, value_enum)]
    pub format: Option<SourceFormat>,
    /// Bits per stored vector element, 4 or 8 (both question and answer vectors).
    #[arg(long, default_value_t = 4, value_parser = crate::args::value_bits)]
    pub bits: u8,
    /// Store texts plain instead of byte-pair coded (every answer then borrowable as &str on the device).
    #[arg(long)]
    pub raw_text: bool,
    /// Calibrate the abstain threshold on these `id<TAB>query` lines.
    #[arg(long)]
    pub calibrate: Option<PathBuf>,
    /// Share of correctly answered calibration queries that must stay answered.
    #[arg(long, default_value_t = DEFAULT_KEEP, value_parser = crate::args::fraction_f64)]
    pub keep: f64,
    /// Abstain threshold (cosine, -1..=1) instead of calibrating; a negative value never abstains.
    #[arg(long, conflicts_with = "calibrate", allow_hyphen_values = true, value_parser = crate::args::cosine)]
    pub threshold: Option<f32>,
    /// Added to the answer cosine before taking the max with the question cosine.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true, value_parser = crate::args::cosine)]
    pub answer_bias: f32,
    /// Add a lexicon of the questions (the model's WordPiece terms, IDF over the entries) that
    /// `chat` adds at this weight to each sentence's cosine (a response bank for a reasoner; 0..=8).
    #[arg(long, value_parser = crate::args::lexical_weight)]
    pub lexical_weight: Option<f32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kb info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// The bank.
    pub file: PathBuf,
    /// Also list every entry (id and question).
    #[arg(long)]
    pub entries: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    match a.cmd {
        KbCommand::Build(b) => build(b),
        KbCommand::Info(i) => info(i),
    }
}

fn build(a: BuildArgs) -> Result<()> {
    if a.bits != 4 && a.bits != 8 {
        bail!("--bits must be 4 or 8");
    }
    let mut inputs: Vec<&std::path::Path> = vec![&a.source];
    inputs.extend(a.model.model.as_deref());
    inputs.extend(a.calibrate.as_deref());
    crate::output::refuse_input(&a.output, "--output", &inputs)?;
    let entries = read_source(&a.source, a.format)?;
    let package = a.model.read()?;
    let model = Model::new(&package).map_err(|e| anyhow!("loading package: {e}"))?;
    let threshold = match a.threshold {
        Some(t) if t < 0.0 => NEVER_ABSTAIN,
        Some(t) => to_score(t),
        None => to_score(UNCALIBRATED_THRESHOLD),
    };
    let options = BankOptions {
        question_bits: a.bits,
        answer_bits: a.bits,
        compress: !a.raw_text,
        threshold,
        answer_bias: to_score(a.answer_bias),
        model_tag: package_tag(model.package()),
    };
    let mut bytes = match a.lexical_weight {
        Some(w) => bank::build_with_lexicon(&model, &entries, options, w)?,
        None => bank::build(&model, &entries, options)?,
    };
    let calibration = match &a.calibrate {
        Some(path) => {
            let queries = read_queries(path)?;
            let b = Bank::new_checked(&bytes).map_err(|e| anyhow!("{e}"))?;
            let cal = bank::calibrate(&b, &model, &queries, a.keep)?;
            pith_runtime::kb::patch_threshold(&mut bytes, cal.threshold)
                .map_err(|e| anyhow!("{e}"))?;
            Some(cal)
        }
        None => None,
    };
    crate::output::write_whole_with(
        &a.output,
        |w| Ok(w.write_all(&bytes)?),
        |tmp| {
            let written = std::fs::read(tmp)?;
            Bank::for_model(&written, &model)
                .map_err(|e| anyhow!("the bank does not load: {e}"))?;
            Ok(())
        },
    )?;
    let b = Bank::new_checked(&bytes).map_err(|e| anyhow!("{e}"))?;
    if a.json {
        crate::outln!(
            "{}",
            serde_json::json!({
                "file": a.output, "bytes": bytes.len(), "entries": b.len(),
                "threshold": threshold_json(&b), "calibration": calibration,
            })
        );
    } else {
        crate::outln!(
            "wrote {} ({} bytes, {} entries)",
            a.output.display(),
            bytes.len(),
            b.len()
        );
        if let Some(c) = calibration {
            crate::outln!(
                "threshold {:.4}: answers {}/{} correctly answered calibration queries, {} wrong ones still answered",
                score_to_cosine(c.threshold),
                c.correct_kept,
                c.correct,
                c.wrong_kept
            );
        }
    }
    Ok(())
}

fn threshold_json(b: &Bank<'_>) -> serde_json::Value {
    if b.threshold() == NEVER_ABSTAIN {
        serde_json::Value::Null
    } else {
        serde_json::json!(score_to_cosine(b.threshold()))
    }
}

fn info(a: InfoArgs) -> Result<()> {
    let bytes = crate::framed_file::read(&a.file, &crate::framed_file::BANK)?;
    let b = match Bank::new_checked(&bytes) {
        Ok(b) => b,
        Err(e) => bail!("{}: {e}", a.file.display()),
    };
    let (bq, ba) = b.bits();
    let vectors = b.len()
        * (pith_runtime::kb::row_bytes(bq, b.dim()).unwrap_or(0)
            + pith_runtime::kb::row_bytes(ba, b.dim()).unwrap_or(0));
    let plain: usize = b
        .entries()
        .map(|e| e.id.len() + e.question.len() + e.answer.len())
        .sum();
    let ids: Vec<serde_json::Value> = if a.entries {
        b.entries().map(|e| serde_json::json!({ "id": e.id.to_string(), "question": e.question.to_string() })).collect()
    } else {
        Vec::new()
    };
    if a.json {
        let mut v = serde_json::json!({
            "file": a.file, "bytes": b.bytes().len(), "entries": b.len(), "dim": b.dim(),
            "question_bits": bq, "answer_bits": ba, "vector_bytes": vectors,
            "text_bytes": b.text_bytes(), "plain_text_bytes": plain, "compressed": b.is_compressed(),
            "threshold": threshold_json(&b), "answer_bias": score_to_cosine(b.answer_bias()),
            "model_tag": format!("{:08x}", b.model_tag()),
            "lexical_weight": b.lexicon().map(|l| score_to_cosine(l.weight())),
        });
        if a.entries {
            v["list"] = serde_json::Value::Array(ids);
        }
        crate::outln!("{v}");
        return Ok(());
    }
    crate::outln!(
        "{}: {} bytes, {} entries, dim {}",
        a.file.display(),
        b.bytes().len(),
        b.len(),
        b.dim()
    );
    crate::outln!("vectors   {vectors} bytes ({bq}-bit questions, {ba}-bit answers)");
    let how = if b.is_compressed() {
        "byte-pair coded"
    } else {
        "plain"
    };
    crate::outln!(
        "texts     {} bytes {how} ({plain} bytes plain)",
        b.text_bytes()
    );
    match b.threshold() {
        NEVER_ABSTAIN => crate::outln!("threshold none (never abstains)"),
        t => crate::outln!("threshold {:.4}", score_to_cosine(t)),
    }
    crate::outln!("answer bias {:.4}", score_to_cosine(b.answer_bias()));
    crate::outln!("model tag {:08x}", b.model_tag());
    if let Some(l) = b.lexicon() {
        crate::outln!(
            "lexicon   weight {:.4}, {} vocabulary ids",
            score_to_cosine(l.weight()),
            l.vocab_len()
        );
    }
    for e in &ids {
        crate::outln!(
            "{}\t{}",
            e["id"].as_str().unwrap_or(""),
            e["question"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
