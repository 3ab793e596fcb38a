//! `pith sim A B`: cosine similarity of two texts.

use std::path::PathBuf;

use anyhow::Result;

use crate::backend::{Embedder, Kind};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// First text.
    pub a: String,
    /// Second text.
    pub b: String,
    /// Package (default: models/minilm-l6.pith).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Engine.
    #[arg(long, value_enum, default_value_t = Kind::Native)]
    pub backend: Kind,
    /// Print JSON `{"similarity": s}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let bytes = crate::artifacts::read_package(a.model.as_deref())?;
    let mut e = Embedder::new(&bytes, a.backend, None)?;
    let s = crate::fp32::cosine(&e.embed(&a.a)?, &e.embed(&a.b)?);
    if a.json {
        crate::outln!("{}", serde_json::json!({ "similarity": s }));
    } else {
        crate::outln!("{s:.4}");
    }
    Ok(())
}
