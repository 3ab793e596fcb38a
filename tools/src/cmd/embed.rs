//! `pith embed TEXT`: print the sentence embedding.

use std::path::PathBuf;

use anyhow::Result;

use crate::backend::{Embedder, Kind};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The text to embed.
    pub text: String,
    /// Package (default: models/minilm-l6.pith, built on first use).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Engine.
    #[arg(long, value_enum, default_value_t = Kind::Native)]
    pub backend: Kind,
    /// ONNX file for the tract backends (default: the default model's exports).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Print JSON `{"embedding": [...]}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let bytes = crate::artifacts::read_package(a.model.as_deref())?;
    let mut e = Embedder::new(&bytes, a.backend, a.onnx)?;
    let v = e.embed(&a.text)?;
    if a.json {
        println!("{}", serde_json::json!({ "embedding": v }));
    } else {
        let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:+.4}")).collect();
        println!("dim {} [{} ...]", v.len(), head.join(", "));
    }
    Ok(())
}
