//! `pith export`: a checkpoint directory to an fp32 ONNX graph (an encoder, or the reasoner:
//! input `[1, turns, dim]` turn vectors latest first, output the predicted next-turn vector).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::checkpoint::Checkpoint;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint directory (config.json, model.safetensors, vocab.txt or tokenizer.json; or a
    /// reasoner's reasoner.json + model.safetensors).
    pub checkpoint: PathBuf,
    /// Output ONNX file.
    #[arg(short, long, value_name = "FILE.onnx")]
    pub output: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    crate::output::refuse_input(&args.output, "--output", &[&args.checkpoint])?;
    if crate::reasoner::quantize::is_reasoner(&args.checkpoint) {
        let r = crate::reasoner::Reasoner::load(&args.checkpoint)?;
        crate::reasoner::onnx::write(&crate::reasoner::onnx::fp32_model(&r)?, &args.output)?;
        eprintln!("wrote {}", args.output.display());
        return Ok(());
    }
    let ckpt = Checkpoint::load(&args.checkpoint)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    crate::onnx::export_fp32(&ckpt, &args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
