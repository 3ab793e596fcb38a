//! `pith sim A B`: cosine similarity of two texts.

use anyhow::Result;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// First text.
    pub a: String,
    /// Second text.
    pub b: String,
    #[command(flatten)]
    pub model: crate::load::ModelArgs,
    /// Print JSON `{"similarity": s}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let bytes = a.model.package.read()?;
    let mut e = a.model.embedder(&bytes, a.model.backend)?;
    let s = crate::fp32::cosine(&e.embed(&a.a)?, &e.embed(&a.b)?);
    if a.json {
        crate::outln!("{}", serde_json::json!({ "similarity": s }));
    } else {
        crate::outln!("{s:.4}");
    }
    Ok(())
}
