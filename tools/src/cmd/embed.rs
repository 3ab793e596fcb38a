//! `pith embed TEXT`: print the sentence embedding; `pith embed --file F --out O`: embed every
//! line of a file (on several threads) into raw little-endian f32 rows, e.g. distillation targets.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::backend::Kind;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The text to embed.
    #[arg(required_unless_present = "file")]
    pub text: Option<String>,
    /// Embed every non-empty line of this file instead (needs --out).
    #[arg(long, conflicts_with = "text", requires = "out")]
    pub file: Option<PathBuf>,
    /// With --file: where the embeddings go, as raw little-endian f32 rows (lines x dim).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With --file: worker threads (the native runtime embeds batches of consecutive lines, one
    /// GEMM per layer each; a tract backend runs one engine per thread on a share of the lines).
    #[arg(long, default_value_t = 1, value_parser = crate::args::count)]
    pub threads: usize,
    #[command(flatten)]
    pub model: crate::load::ModelArgs,
    /// Print JSON `{"embedding": [...]}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let bytes = a.model.package.read()?;
    if let (Some(file), Some(out)) = (&a.file, &a.out) {
        return embed_file(&bytes, &a, file, out);
    }
    let text = a.text.as_deref().unwrap_or_default();
    let mut e = a.model.embedder(&bytes, a.model.backend)?;
    let v = e.embed(text)?;
    if a.json {
        crate::outln!("{}", serde_json::json!({ "embedding": v }));
    } else {
        let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:+.4}")).collect();
        crate::outln!("dim {} [{} ...]", v.len(), head.join(", "));
    }
    Ok(())
}

fn embed_file(bytes: &[u8], a: &Args, file: &Path, out: &Path) -> Result<()> {
    let mut inputs: Vec<&Path> = vec![file];
    inputs.extend(a.model.package.model.as_deref());
    inputs.extend(a.model.onnx.as_deref());
    crate::output::refuse_input(out, "--out", &inputs)?;
    let lines = crate::text::read_lines(file)?;
    if lines.is_empty() {
        bail!("{} has no non-empty lines", file.display());
    }
    let threads = a.threads.clamp(1, 64);
    if a.model.backend == Kind::Native {
        // Batches of consecutive lines, one GEMM per layer each, on `threads` workers.
        let model = pith_runtime::Model::new(bytes).map_err(|e| anyhow!("loading package: {e}"))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("starting the worker threads")?;
        let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
        let vecs = pool.install(|| crate::batch::embed(&model, &texts))?;
        let rows: Vec<f32> = vecs
            .iter()
            .flat_map(|q| {
                let mut f = vec![0f32; q.len()];
                pith_runtime::Model::dequantize(q, &mut f);
                f
            })
            .collect();
        return write_rows(out, &[rows], lines.len());
    }
    let chunk = lines.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<f32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || -> Result<Vec<f32>> {
                    let mut e = a.model.embedder(bytes, a.model.backend)?;
                    let mut rows = Vec::new();
                    for l in part {
                        rows.extend(e.embed(l).with_context(|| format!("embedding {l:?}"))?);
                    }
                    Ok(rows)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked")))
            })
            .collect()
    });
    // Every worker must have finished before a byte is written: a failed line leaves no file.
    let parts: Vec<Vec<f32>> = parts.into_iter().collect::<Result<_>>()?;
    write_rows(out, &parts, lines.len())
}

/// Writes the rows of every part, in order, as one whole file.
fn write_rows(out: &Path, parts: &[Vec<f32>], lines: usize) -> Result<()> {
    let n: usize = parts.iter().map(Vec::len).sum();
    crate::output::write_whole_with(
        out,
        |w| {
            for x in parts.iter().flatten() {
                w.write_all(&x.to_le_bytes())?;
            }
            Ok(())
        },
        |_| Ok(()),
    )?;
    eprintln!(
        "{lines} lines x {} dims -> {}",
        n / lines.max(1),
        out.display()
    );
    Ok(())
}
