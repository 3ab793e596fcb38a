//! `pith chat`: the reasoner on the host. Every turn (yours and its answers) is embedded by the
//! encoder into a ring of the last 8; the reasoner predicts the next turn's embedding and the
//! answer is the nearest sentence of the response bank, with its cosine. `reset` clears the ring.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use pith_runtime::kb::{Bank, Hit, Index};

use crate::backend::Kind;
use crate::reasoner::eval::cosine;
use crate::reasoner::predictor::{dequantize, Paths};
use crate::reasoner::WINDOW;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Your turns, in order (default: one a line from standard input; `reset` clears the context).
    pub turns: Vec<String>,
    /// Reasoner checkpoint directory, for tract-fp32 (default: models/reasoner-s of this
    /// repository).
    #[arg(long)]
    pub reasoner: Option<PathBuf>,
    /// Integer reasoner package, for native (default: models/reasoner-s.pith, built on first use).
    #[arg(long)]
    pub package: Option<PathBuf>,
    /// Engine of the reasoner: native (the integer package: the device's answers, byte for byte)
    /// or tract-fp32 (the fp32 checkpoint).
    #[arg(long, value_enum, default_value_t = Kind::Native)]
    pub backend: Kind,
    /// Encoder package (the one the reasoner and the bank were built with;
    /// default: models/tier-s.pith, built on first use).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Response bank (`pith kb build` over response texts, one a line; default:
    /// models/reasoner-s.pithkb of this repository).
    #[arg(long)]
    pub bank: Option<PathBuf>,
    /// Refine when the best two bank sentences are closer than this (cosine); negative: never.
    #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
    pub refine_below: f32,
    /// Print one JSON object per turn.
    #[arg(long)]
    pub json: bool,
}

/// Bank sentences the refinement step re-scores.
const REFINE_TOP: usize = 4;

/// The predicted vector as the int8 query the bank searches with (largest |value| → 127).
fn to_i8(v: &[f32]) -> Vec<i8> {
    let m = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    v.iter()
        .map(|x| {
            if m == 0.0 {
                0
            } else {
                (x / m * 127.0).round().clamp(-127.0, 127.0) as i8
            }
        })
        .collect()
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let root = crate::defaults::repo_root();
    let bank_path = a
        .bank
        .clone()
        .unwrap_or_else(|| root.join("models/reasoner-s.pithkb"));
    let loaded = Paths {
        checkpoint: a.reasoner.clone(),
        package: a.package.clone(),
        model: a.model.clone(),
    }
    .load(a.backend)?;
    let (mut enc, pred) = loaded.open(a.backend)?;
    let bank_bytes = std::fs::read(&bank_path).with_context(|| {
        format!(
            "reading {} (build it: python3 tools/train/reasoner_bank.py, then pith kb build \
             models/reasoner-s-responses.txt -o {} --model models/tier-s.pith --threshold -1)",
            bank_path.display(),
            bank_path.display()
        )
    })?;
    let bank = Bank::for_model(&bank_bytes, &enc.model).map_err(|e| {
        anyhow!(
            "{}: {e} (rebuild it with `pith kb build`)",
            bank_path.display()
        )
    })?;
    if bank.is_empty() {
        bail!("{} has no sentences", bank_path.display());
    }
    let turns: Vec<String> = if a.turns.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<_>>()?
    } else {
        a.turns.clone()
    };
    // The ring of int8 turn vectors (what the device keeps), latest first.
    let mut ring: Vec<Vec<i8>> = Vec::with_capacity(WINDOW);
    let push = |ring: &mut Vec<Vec<i8>>, v: Vec<i8>| {
        ring.insert(0, v);
        ring.truncate(WINDOW);
    };
    for turn in turns.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if turn == "reset" {
            ring.clear();
            if a.json {
                println!("{}", serde_json::json!({ "reset": true }));
            } else {
                println!("(context cleared)");
            }
            continue;
        }
        push(&mut ring, enc.embed_i8(turn)?);
        let window: Vec<&[i8]> = ring.iter().map(Vec::as_slice).collect();
        let predicted = pred.predict(&window)?;
        let mut hits = vec![Hit::default(); REFINE_TOP];
        let query = to_i8(&predicted);
        let n = bank.search(&query, Index::Question, &mut hits);
        hits.truncate(n);
        let margin = match (hits.first(), hits.get(1)) {
            (Some(a), Some(b)) => a.cosine() - b.cosine(),
            _ => f32::INFINITY,
        };
        let mut best = *hits.first().context("the bank search returned nothing")?;
        let refined = margin < a.refine_below;
        if refined {
            // Feed each candidate back as the newest turn; keep the one whose continuation
            // points back to what was just said.
            let mut top = f32::NEG_INFINITY;
            let latest = dequantize(window[0]);
            for h in &hits {
                let text = bank
                    .entry(h.index)
                    .map(|e| e.question.to_string())
                    .unwrap_or_default();
                let c = enc.embed_i8(&text)?;
                let mut w: Vec<&[i8]> = vec![c.as_slice()];
                w.extend(window.iter().take(WINDOW - 1));
                let v = h.cosine() + cosine(&pred.predict(&w)?, &latest);
                if v > top {
                    (top, best) = (v, *h);
                }
            }
        }
        let text = bank
            .entry(best.index)
            .map(|e| e.question.to_string())
            .unwrap_or_default();
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "you": turn, "answer": text, "score": best.cosine(),
                    "prediction": format!("{:08x}", pith_runtime::console::fnv1a(&query)),
                    "margin": margin, "refined": refined,
                })
            );
        } else {
            // The device console's `chat` reply lines (runtime console::reply::chat), so the
            // two can be compared byte for byte.
            println!("> {turn}");
            if refined {
                println!("(refined)");
            }
            println!(
                "score {:.4}\nanswer {text}\nprediction {:08x}",
                best.cosine(),
                pith_runtime::console::fnv1a(&query)
            );
        }
        push(&mut ring, enc.embed_i8(&text)?);
    }
    Ok(())
}
