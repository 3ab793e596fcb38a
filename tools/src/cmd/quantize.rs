//! `pith quantize`: an encoder checkpoint (BERT, fp32 export or static) or a reasoner checkpoint
//! into an int8 package, with its QDQ ONNX and a fidelity report.

use anyhow::{anyhow, Result};

use crate::catalog;
use crate::reasoner::quantize::is_reasoner;

/// Arguments: the quantizer's options.
pub use crate::quant::pipeline::Options as Args;

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    if !is_reasoner(&a.checkpoint) {
        return crate::quant::pipeline::run(a);
    }
    // A reasoner reads one encoder's vectors: `--encoder`, else the shipped table's, else the one
    // its reasoner.json names.
    let root = crate::defaults::repo_root()?;
    let encoder = match &a.encoder {
        Some(p) => p.clone(),
        None => match catalog::reasoner_with_checkpoint(&a.checkpoint, &root) {
            Some(r) => crate::artifacts::package(r.encoder)?,
            None => crate::reasoner::named_encoder(&a.checkpoint, &root)?.ok_or_else(|| {
                anyhow!(
                    "{} names no \"encoder\" in reasoner.json: pass --encoder",
                    a.checkpoint.display()
                )
            })?,
        },
    };
    crate::reasoner::quantize::run(&a, &encoder)
}
