//! `pith export`: a checkpoint directory to an fp32 ONNX graph.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::checkpoint::Checkpoint;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint directory (config.json, model.safetensors, vocab.txt or tokenizer.json).
    pub checkpoint: PathBuf,
    /// Output ONNX file.
    #[arg(short, long, value_name = "FILE.onnx")]
    pub output: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let ckpt = Checkpoint::load(&args.checkpoint)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    crate::onnx::export_fp32(&ckpt, &args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
