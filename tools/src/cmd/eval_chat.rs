//! `pith eval chat`: next-turn selection, top-1 of 100 and MRR, for the reasoner and three
//! baselines (protocol in `crate::reasoner::eval`).

use std::path::PathBuf;

use anyhow::{bail, Result};
// How many of the best candidates the refinement step re-scores: as the device's `chat`.
use pith_runtime::console::chat::REFINE_TOP;

use crate::reasoner::eval::{
    candidates, cosine, mean_of, positions, rank, read_conversations, LinearMap, Score, SplitMix,
};
use crate::reasoner::predictor::{embed_turns, Engine, Predictor, TurnVectors};
use crate::reasoner::WINDOW;

/// Arguments of `eval chat`.
#[derive(clap::Args)]
pub struct ChatArgs {
    /// JSONL, one conversation a line: `{"turns": ["...", "...", ...]}`.
    #[arg(long)]
    pub conversations: PathBuf,
    #[command(flatten)]
    pub engine: Engine,
    /// Conversations the linear-map baseline is fitted on (default: data/chitchat/train.jsonl of
    /// this repository).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Seed of the candidate draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also evaluate the refinement gate: refine the positions whose margin between the best and
    /// second-best candidate is below this threshold (calibrate it on dev: the JSON lists the
    /// margins' quantiles).
    #[arg(long)]
    pub refine_below: Option<f32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Cosines of `query` to each candidate.
fn scores(query: &[f32], cands: &[usize], emb: &[Vec<f32>]) -> Vec<f32> {
    cands.iter().map(|&j| cosine(query, &emb[j])).collect()
}

/// Candidate order by score, best first (ties by position, so deterministic).
fn order(s: &[f32]) -> Vec<usize> {
    let mut o: Vec<usize> = (0..s.len()).collect();
    o.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
    o
}

/// One refinement step: each of the best [`REFINE_TOP`] candidates is fed back as the newest turn
/// and the reasoner predicts the turn after it; a candidate whose continuation points back to what
/// the first speaker was saying (cosine to the window's latest turn) gains that cosine. Returns the
/// index (into `cands`) of the refined best candidate.
fn refine(
    pred: &Predictor<'_>,
    (window, latest): (&[&[i8]], &[f32]),
    cands: &[usize],
    s: &[f32],
    q: &[Vec<i8>],
) -> Result<usize> {
    let mut best = (f32::NEG_INFINITY, 0);
    for &k in order(s).iter().take(REFINE_TOP) {
        let mut w: Vec<&[i8]> = vec![q[cands[k]].as_slice()];
        w.extend(window.iter().take(WINDOW - 1));
        let next = pred.predict(&w)?;
        let v = s[k] + cosine(&next, latest);
        if v > best.0 {
            best = (v, k);
        }
    }
    Ok(best.1)
}

/// Runs `eval chat`.
pub fn run_chat(a: ChatArgs) -> Result<()> {
    let convs = read_conversations(&a.conversations)?;
    let pos = positions(&convs);
    if pos.is_empty() {
        bail!(
            "{}: no conversation has two turns",
            a.conversations.display()
        );
    }
    let root = crate::defaults::repo_root();
    let loaded = a.engine.load()?;
    let (mut enc, pred) = loaded.open(a.engine.backend)?;
    let train = read_conversations(
        &a.train
            .clone()
            .unwrap_or_else(|| root.join("data/chitchat/train.jsonl")),
    )?;
    let map = LinearMap::fit(&positions(&train), &embed_turns(&mut enc, &train)?.f)?;
    let TurnVectors { q, f: emb } = embed_turns(&mut enc, &convs)?;
    let cands = candidates(&pos, emb.len(), 99, a.seed);
    let (mut r, mut last, mut mean, mut lin) = Default::default();
    let bar = indicatif::ProgressBar::new(pos.len() as u64);
    // Per position: (margin, right before refining, right after refining when refined).
    let mut gate: Vec<(f32, bool, Option<bool>)> = Vec::new();
    for (p, c) in pos.iter().zip(&cands) {
        let window: Vec<&[i8]> = p.window.iter().map(|&i| q[i].as_slice()).collect();
        let predicted = pred.predict(&window)?;
        Score::add(&mut r, rank(&predicted, c, &emb));
        let s = scores(&predicted, c, &emb);
        let o = order(&s);
        let margin = match (o.first(), o.get(1)) {
            (Some(&a), Some(&b)) => s[a] - s[b],
            _ => f32::INFINITY,
        };
        let right = o.first() == Some(&0);
        let after = match a.refine_below {
            // Every position gets its after-value: a random gate could pick any of them.
            Some(_) => Some(refine(&pred, (&window, &emb[p.window[0]]), c, &s, &q)? == 0),
            None => None,
        };
        gate.push((margin, right, after));
        Score::add(&mut last, rank(&emb[p.window[0]], c, &emb));
        let m = mean_of(&p.window, &emb);
        Score::add(&mut mean, rank(&m, c, &emb));
        Score::add(&mut lin, rank(&map.apply(&m), c, &emb));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let (r, last, mean, lin): (Score, Score, Score, Score) = (r, last, mean, lin);
    let mut out = serde_json::json!({
        "reasoner": r.json(),
        "baselines": {
            "last_turn": last.json(),
            "mean_context": mean.json(),
            "linear_map": lin.json(),
        },
        "n": pos.len(),
        "candidates": cands.first().map_or(0, Vec::len),
        "backend": a.engine.backend,
        "conversations": a.conversations,
    });
    let mut margins: Vec<f32> = gate.iter().map(|g| g.0).collect();
    margins.sort_by(f32::total_cmp);
    let q = |f: f64| margins[((margins.len() - 1) as f64 * f) as usize];
    out["margin_quantiles"] = serde_json::json!({
        "10": q(0.1), "20": q(0.2), "30": q(0.3), "50": q(0.5),
    });
    if let Some(t) = a.refine_below {
        let n = gate.len() as f64;
        let pct = |k: usize| 100.0 * k as f64 / n;
        let tally = |pick: &dyn Fn(usize) -> bool| {
            let (mut right, mut up, mut down) = (0, 0, 0);
            for (i, &(_, before, after)) in gate.iter().enumerate() {
                let now = if pick(i) {
                    after.unwrap_or(before)
                } else {
                    before
                };
                right += usize::from(now);
                up += usize::from(!before && now);
                down += usize::from(before && !now);
            }
            serde_json::json!({ "top1": pct(right), "wrong_to_right": up, "right_to_wrong": down })
        };
        let gated: Vec<bool> = gate.iter().map(|g| g.0 < t).collect();
        let k = gated.iter().filter(|&&g| g).count();
        // The random gate refines exactly as many positions, drawn with a fixed seed.
        let mut rng = SplitMix::new(a.seed ^ 0x5EED);
        let mut idx: Vec<usize> = (0..gate.len()).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut random = vec![false; gate.len()];
        for &i in idx.iter().take(k) {
            random[i] = true;
        }
        out["refinement"] = serde_json::json!({
            "threshold": t,
            "refined": pct(k),
            "top1_before": pct(gate.iter().filter(|g| g.1).count()),
            "margin_gate": tally(&|i| gated[i]),
            "random_gate": tally(&|i| random[i]),
            "refine_everything": tally(&|_| true),
        });
    }
    if a.json {
        println!("{out}");
    } else {
        println!(
            "{} positions, top-1 of {} / MRR (%)",
            pos.len(),
            cands.first().map_or(0, Vec::len)
        );
        for (name, s) in [
            ("reasoner", r),
            ("last_turn", last),
            ("mean_context", mean),
            ("linear_map", lin),
        ] {
            let j = s.json();
            println!(
                "  {name:<13} {:6.2} {:6.2}",
                j["top1"].as_f64().unwrap_or(0.0),
                j["mrr"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}
