//! `pith eval chat`: next-turn selection, top-1 of 100 and MRR, for the reasoner and every
//! baseline a user could run instead (protocol in `crate::reasoner::eval`): cosine in the
//! reasoner's encoder space (last turn, context mean, a fitted linear map), lexical TF-IDF and BM25
//! (`crate::reasoner::lexical`), the response bank's own lexical match alone and added to the
//! encoder's last-turn cosine (`crate::reasoner::mix`), and cosine in the space of other encoders
//! (`--baseline-model`, the teacher by default).
//!
//! The reasoner's score of a candidate is what the device's `chat` ranks bank sentences by: the
//! cosine to the predicted turn plus the bank's lexical weight × the reasoner's trust × the
//! candidate's lexical match with the window (for windows of two turns or more, as `chat`).

use std::path::PathBuf;

use anyhow::{bail, Result};
// How many of the best candidates the refinement step re-scores: as the device's `chat`.
use pith_console::chat::REFINE_TOP;

use crate::lexical::{self, Lexicon};
use crate::load::Engine;
use crate::reasoner::eval::{
    candidates, cosine, mean_of, positions, rank, rank_of, read_conversations, LinearMap, Position,
    Score, SplitMix,
};
use crate::reasoner::mix;
use crate::reasoner::predictor::{dequantize, embed_turns, Predictor, TurnVectors};
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
    /// Encoder packages whose plain cosine (to the last turn, to the context mean) is reported as
    /// a baseline, each embedding every turn itself (repeatable; default: the teacher,
    /// models/minilm-l6.pith).
    #[arg(long = "baseline-model")]
    pub baseline_models: Vec<PathBuf>,
    /// Response bank whose lexicon (IDF and lexical weight) the reasoner's score uses (default:
    /// the shipped reasoner's; a reasoner that is not shipped is scored without one unless given).
    #[arg(long)]
    pub bank: Option<PathBuf>,
    /// Lexical weight instead of the bank's (0: the predicted vector's cosine alone).
    #[arg(long)]
    pub lexical_weight: Option<f32>,
    /// Also report the reasoner's top-1 and MRR at each of these lexical weights (calibrate the
    /// weight on dev: `--lexical-sweep 0,0.5,1,1.5`).
    #[arg(long, value_delimiter = ',')]
    pub lexical_sweep: Vec<f32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Weights tried for the last-turn cosine + lexical baseline; it reports the best of them on the
/// evaluated file itself, an upper bound on what a weight tuned elsewhere would give.
const BASELINE_WEIGHTS: [f64; 10] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0];

/// The lexical baselines: TF-IDF and BM25, query = the last turn or the whole window.
fn lexical_baselines(
    turns: &[&str],
    pos: &[Position],
    cands: &[Vec<usize>],
    same: &dyn Fn(usize, usize) -> bool,
) -> Vec<(String, Score)> {
    let mut distinct: Vec<&str> = turns.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let doc = |i: usize| distinct.binary_search(&turns[i]).unwrap_or(0);
    let lex = Lexicon::new(&distinct);
    let mut s = [Score::default(); 4];
    for (p, c) in pos.iter().zip(cands) {
        let docs: Vec<usize> = c.iter().map(|&j| doc(j)).collect();
        let same_k = |k: usize| same(c[0], c[k]);
        let ctx: Vec<&str> = p.window.iter().map(|&i| turns[i]).collect();
        for (slot, query) in [(0, &ctx[..1]), (1, &ctx[..])] {
            let q = lex.query(query);
            let qv = lex.tfidf_query(&q);
            let tf: Vec<f64> = docs.iter().map(|&d| lex.tfidf(&qv, d)).collect();
            let bm: Vec<f64> = docs.iter().map(|&d| lex.bm25(&q, d)).collect();
            s[slot].add(rank_of(&tf, same_k));
            s[2 + slot].add(rank_of(&bm, same_k));
        }
    }
    [
        "tfidf_last_turn",
        "tfidf_context",
        "bm25_last_turn",
        "bm25_context",
    ]
    .iter()
    .map(|n| n.to_string())
    .zip(s)
    .collect()
}

/// Cosine to the last turn and to the context mean in the space of the encoder `package`
/// (`emb`: its turn vectors when already at hand).
fn encoder_baselines(
    package: &std::path::Path,
    emb: Option<&[Vec<f32>]>,
    convs: &[Vec<String>],
    pos: &[Position],
    cands: &[Vec<usize>],
    same: &dyn Fn(usize, usize) -> bool,
) -> Result<serde_json::Value> {
    let embedded;
    let emb = match emb {
        Some(e) => e,
        None => {
            let bytes = crate::framed_file::read(package, &crate::framed_file::PACKAGE)?;
            embedded = embed_turns(&bytes, convs)?.f;
            &embedded
        }
    };
    let (mut last, mut mean) = (Score::default(), Score::default());
    for (p, c) in pos.iter().zip(cands) {
        let same_k = |k: usize| same(c[0], c[k]);
        last.add(rank(&emb[p.window[0]], c, emb, same_k));
        mean.add(rank(&mean_of(&p.window, emb), c, emb, same_k));
    }
    Ok(serde_json::json!({
        "package": package,
        "dim": emb.first().map_or(0, Vec::len),
        "last_turn": last.json(),
        "mean_context": mean.json(),
    }))
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

/// FNV-1a, 64 bits: names a cache entry after the bytes it was computed from.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The training turns' vectors for the linear map. Embedding the whole training split with the
/// teacher takes a minute or more, so the int8 vectors are kept in models/cache under the
/// digests of the encoder package and the training file (any change to either misses).
fn train_vectors(
    encoder: &[u8],
    path: &std::path::Path,
    convs: &[Vec<String>],
) -> Result<Vec<Vec<f32>>> {
    let file = crate::input::bytes(path)?;
    let cache = crate::defaults::repo_root()?.join(format!(
        "models/cache/turns-{:016x}-{:016x}.i8",
        fnv64(encoder),
        fnv64(&file)
    ));
    let n: usize = convs.iter().map(Vec::len).sum();
    if let Ok(bytes) = std::fs::read(&cache) {
        if n > 0 && bytes.len() % n == 0 {
            let dim = bytes.len() / n;
            return Ok(bytes
                .chunks_exact(dim)
                .map(|r| dequantize(&r.iter().map(|&b| b as i8).collect::<Vec<_>>()))
                .collect());
        }
    }
    let t = embed_turns(encoder, convs)?;
    let flat: Vec<u8> = t.q.iter().flatten().map(|&x| x as u8).collect();
    // A cache that cannot be written only costs the next run the same minute.
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = crate::output::write_whole(&cache, &flat);
    Ok(t.f)
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
    let root = crate::defaults::repo_root()?;
    let loaded = a.engine.load()?;
    let (enc, pred) = loaded.open(a.engine.backend)?;
    let bank_path = match (&a.bank, loaded.shipped) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(r)) => Some(crate::artifacts::chat_bank(r)?),
        (None, None) => None,
    };
    let bank_bytes = match &bank_path {
        Some(p) => crate::framed_file::read(p, &crate::framed_file::BANK)?,
        None => Vec::new(),
    };
    let lexicon = match &bank_path {
        Some(p) => pith_runtime::kb::Bank::for_model(&bank_bytes, &enc.model)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            .lexicon(),
        None => None,
    };
    let weight = a.lexical_weight.unwrap_or(mix::weight(lexicon)) as f64;
    let train = read_conversations(
        &a.train
            .clone()
            .unwrap_or_else(|| root.join("data/chitchat/train.jsonl")),
    )?;
    let train_path = a
        .train
        .clone()
        .unwrap_or_else(|| root.join("data/chitchat/train.jsonl"));
    let map = LinearMap::fit(
        &positions(&train),
        &train_vectors(&loaded.encoder_bytes, &train_path, &train)?,
    )?;
    let TurnVectors { q, f: emb } = embed_turns(&loaded.encoder_bytes, &convs)?;
    let cands = candidates(&pos, emb.len(), 99, a.seed);
    // A candidate with the target's words (up to case and punctuation) is the same response.
    let turns: Vec<&str> = convs.iter().flatten().map(String::as_str).collect();
    let norm: Vec<Vec<String>> = turns.iter().map(|t| lexical::words(t)).collect();
    let same = |i: usize, j: usize| norm[i] == norm[j];
    let terms = match lexicon {
        Some(_) => mix::terms_of(&enc.model, &turns)?,
        None => vec![Vec::new(); turns.len()],
    };
    let (mut r, mut last, mut mean, mut lin) = Default::default();
    let mut lexical_only = Score::default();
    let mut sweep = vec![Score::default(); a.lexical_sweep.len()];
    let mut last_lexical = [Score::default(); BASELINE_WEIGHTS.len()];
    let bar = indicatif::ProgressBar::new(pos.len() as u64);
    // Per position: (margin, right before refining, right after refining when refined).
    let mut gate: Vec<(f32, bool, Option<bool>)> = Vec::new();
    for (p, c) in pos.iter().zip(&cands) {
        let window: Vec<&[i8]> = p.window.iter().map(|&i| q[i].as_slice()).collect();
        let predicted = pred.predict(&window)?;
        let same_k = |k: usize| same(c[0], c[k]);
        let lex: Vec<f64> = match lexicon {
            Some(l) => {
                let w: Vec<&[u16]> = p.window.iter().map(|&i| terms[i].as_slice()).collect();
                let cand: Vec<&[u16]> = c.iter().map(|&j| terms[j].as_slice()).collect();
                mix::scores(l, &w, &cand)
                    .into_iter()
                    .map(f64::from)
                    .collect()
            }
            None => vec![0.0; c.len()],
        };
        // As the device: no lexical match for a context of one turn.
        let trust = match pith_runtime::kb::lexicon::applies(window.len()) {
            true => pred.trust(window[0]) as f64,
            false => 0.0,
        };
        let dense = scores(&predicted, c, &emb);
        let with = |w: f64| -> Vec<f64> {
            dense
                .iter()
                .zip(&lex)
                .map(|(&d, &l)| d as f64 + w * trust * l)
                .collect()
        };
        let s64 = with(weight);
        Score::add(&mut r, rank_of(&s64, same_k));
        for (score, &w) in sweep.iter_mut().zip(&a.lexical_sweep) {
            score.add(rank_of(&with(w as f64), same_k));
        }
        // The encoder's last-turn cosines: a baseline alone and under the lexical match.
        let cos: Vec<f64> = scores(&emb[p.window[0]], c, &emb)
            .into_iter()
            .map(f64::from)
            .collect();
        Score::add(&mut last, rank_of(&cos, same_k));
        if lexicon.is_some() {
            lexical_only.add(rank_of(&lex, same_k));
            for (score, &w) in last_lexical.iter_mut().zip(&BASELINE_WEIGHTS) {
                let s: Vec<f64> = cos.iter().zip(&lex).map(|(&d, &l)| d + w * l).collect();
                score.add(rank_of(&s, same_k));
            }
        }
        let s: Vec<f32> = s64.iter().map(|&x| x as f32).collect();
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
        let m = mean_of(&p.window, &emb);
        Score::add(&mut mean, rank(&m, c, &emb, same_k));
        Score::add(&mut lin, rank(&map.apply(&m), c, &emb, same_k));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let (r, last, mean, lin): (Score, Score, Score, Score) = (r, last, mean, lin);
    let mut table: Vec<(String, Score)> = vec![
        ("last_turn".into(), last),
        ("mean_context".into(), mean),
        ("linear_map".into(), lin),
    ];
    table.extend(lexical_baselines(&turns, &pos, &cands, &same));
    let mut baselines = serde_json::Map::new();
    if lexicon.is_some() {
        table.push(("bank_lexicon_context".into(), lexical_only));
        let (k, best) = last_lexical
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.top1)
            .map(|(k, s)| (k, *s))
            .unwrap_or_default();
        table.push(("last_turn_plus_bank_lexicon".into(), best));
        baselines.insert(
            "last_turn_plus_bank_lexicon_weight".into(),
            BASELINE_WEIGHTS[k].into(),
        );
    }
    for (name, s) in &table {
        baselines.insert(name.clone(), s.json());
    }
    let teacher = [root.join(crate::catalog::PACKAGE)];
    let others: &[PathBuf] = if a.baseline_models.is_empty() {
        &teacher
    } else {
        &a.baseline_models
    };
    let mut encoders = Vec::new();
    for p in others {
        if p.as_path() == teacher[0].as_path() && !p.exists() {
            crate::artifacts::default_artifacts()?;
        }
        // The reasoner's own encoder has embedded every turn already.
        let own = std::fs::canonicalize(p).ok() == std::fs::canonicalize(&loaded.encoder_path).ok();
        let known = own.then_some(emb.as_slice());
        encoders.push(encoder_baselines(p, known, &convs, &pos, &cands, &same)?);
    }
    baselines.insert("encoders".into(), serde_json::Value::from(encoders.clone()));
    // The best of every baseline, by top-1: what the reasoner has to beat.
    let mut best = ("".to_string(), f64::NEG_INFINITY);
    let mut consider = |name: String, v: &serde_json::Value| {
        let t = v["top1"].as_f64().unwrap_or(f64::NEG_INFINITY);
        if t > best.1 {
            best = (name, t);
        }
    };
    for (name, s) in &table {
        consider(name.clone(), &s.json());
    }
    for e in &encoders {
        for k in ["last_turn", "mean_context"] {
            consider(
                format!("{k} [{}]", e["package"].as_str().unwrap_or("")),
                &e[k],
            );
        }
    }
    let mut out = serde_json::json!({
        "reasoner": r.json(),
        "lexical_weight": weight,
        "bank": bank_path,
        "lexical_sweep": a.lexical_sweep.iter().zip(&sweep)
            .map(|(w, s)| serde_json::json!({ "weight": w, "top1": s.json()["top1"], "mrr": s.json()["mrr"] }))
            .collect::<Vec<_>>(),
        "baselines": baselines,
        "best_baseline": { "name": best.0, "top1": best.1 },
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
        crate::outln!("{out}");
    } else {
        crate::outln!(
            "{} positions, top-1 of {} / MRR (%)",
            pos.len(),
            cands.first().map_or(0, Vec::len)
        );
        let line = |name: &str, j: &serde_json::Value| {
            crate::stdout::line(format_args!(
                "  {name:<16} {:6.2} {:6.2}",
                j["top1"].as_f64().unwrap_or(0.0),
                j["mrr"].as_f64().unwrap_or(0.0)
            ))
        };
        line("reasoner", &r.json())?;
        crate::outln!("  (lexical weight {weight:.2})");
        for (w, s) in a.lexical_sweep.iter().zip(&sweep) {
            line(&format!("  weight {w:.2}"), &s.json())?;
        }
        for (name, s) in &table {
            line(name, &s.json())?;
        }
        for e in &encoders {
            crate::outln!("  cosine in {}:", e["package"].as_str().unwrap_or(""));
            line("  last_turn", &e["last_turn"])?;
            line("  mean_context", &e["mean_context"])?;
        }
    }
    Ok(())
}
