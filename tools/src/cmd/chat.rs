//! `pith chat`: the reasoner on the host. Every turn (yours and its answers) is embedded by the
//! encoder into a ring of the last 8; the reasoner predicts the next turn's embedding and the
//! answer is the nearest sentence of the response bank, with its cosine; a close call between the
//! best two is refined first. `reset` clears the ring. The native engine runs the device
//! console's own `chat` code.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use pith_console::chat::{self, Chat, REFINE_TOP};
use pith_console::reply::ChatLines;
use pith_console::{Board, NoClock, Service};
use pith_runtime::kb::lexicon::Context as LexicalContext;
use pith_runtime::kb::{Bank, Hit, Index, SCORE_ONE};

use crate::backend::Kind;
use crate::load::Engine;
use crate::reasoner::eval::cosine;
use crate::reasoner::mix::terms_of;
use crate::reasoner::predictor::dequantize;
use crate::reasoner::WINDOW;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Your turns, in order (default: one a line from standard input; `reset` clears the context).
    pub turns: Vec<String>,
    #[command(flatten)]
    pub engine: Engine,
    /// Response bank (`pith kb build` over response texts, one a line; default:
    /// models/reasoner-s.pithkb, 4,000 training turns, built on first use).
    #[arg(long)]
    pub bank: Option<PathBuf>,
    /// Refine when the best two bank sentences are closer than this (cosine; negative: never).
    /// Default: the calibrated gate (the package's for native, the checkpoint's gate.json for
    /// tract).
    #[arg(long, allow_hyphen_values = true)]
    pub refine_below: Option<f32>,
    /// Print one JSON object per turn.
    #[arg(long)]
    pub json: bool,
}

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
    let loaded = a.engine.load()?;
    let bank_path = match (&a.bank, loaded.shipped) {
        (Some(p), _) => p.clone(),
        (None, Some(r)) => crate::artifacts::chat_bank(r)?,
        (None, None) => bail!(
            "{} is not a shipped reasoner: pass --bank (a response bank built with its encoder)",
            loaded.checkpoint_dir.display()
        ),
    };
    let bank_bytes = crate::framed_file::read(&bank_path, &crate::framed_file::BANK)?;
    // Standard input is read a line at a time, so a person typing gets each answer at once.
    let turns: Turns<'_> = if a.turns.is_empty() {
        Box::new(crate::text::Lines::new(
            std::io::stdin().lock(),
            "standard input",
        ))
    } else {
        Box::new(a.turns.iter().cloned().map(Ok))
    };
    // Printing returns the write error (a closed pipe ends the run quietly in `main`).
    let print = |you: &str, answer: &Said| -> std::io::Result<()> {
        if a.json {
            crate::stdout::line(format_args!(
                "{}",
                serde_json::json!({
                    "you": you, "answer": answer.text, "score": answer.score,
                    "prediction": format!("{:08x}", answer.prediction),
                    "margin": answer.margin, "refined": answer.refined,
                })
            ))
        } else {
            crate::stdout::line(format_args!("> {you}\n{}", answer.lines))
        }
    };
    let reset = || -> std::io::Result<()> {
        if a.json {
            crate::stdout::line(format_args!("{}", serde_json::json!({ "reset": true })))
        } else {
            crate::stdout::line(format_args!("(context cleared)"))
        }
    };
    let session = Session {
        a: &a,
        loaded: &loaded,
        bank_path: &bank_path,
        bank_bytes: &bank_bytes,
        turns: std::cell::RefCell::new(turns),
    };
    match a.engine.backend {
        Kind::Native => native(&session, print, reset),
        _ => float(&session, print, reset),
    }
}

/// One answer, as printed.
struct Said {
    text: String,
    score: f32,
    prediction: u32,
    margin: f32,
    refined: bool,
    /// The device console's reply lines (runtime `console::reply::ChatLines`).
    lines: String,
}

/// What both engines' loops read.
struct Session<'s> {
    a: &'s Args,
    loaded: &'s crate::load::Loaded,
    bank_path: &'s std::path::Path,
    bank_bytes: &'s [u8],
    /// The turns as they arrive (blank ones are skipped).
    turns: std::cell::RefCell<Turns<'s>>,
}

/// The user's turns: the arguments, or standard input line by line.
type Turns<'s> = Box<dyn Iterator<Item = Result<String>> + 's>;

impl Session<'_> {
    /// The next non-blank turn, trimmed; `None` at the end.
    fn next_turn(&self) -> Option<Result<String>> {
        let mut turns = self.turns.borrow_mut();
        loop {
            match turns.next()? {
                Ok(t) if t.trim().is_empty() => continue,
                Ok(t) => return Some(Ok(t.trim().to_string())),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

type Parts<'s> = (
    &'s Args,
    &'s crate::load::Loaded,
    &'s std::path::Path,
    &'s [u8],
);

impl<'s> Session<'s> {
    fn parts(&self) -> Parts<'s> {
        (self.a, self.loaded, self.bank_path, self.bank_bytes)
    }
}

fn bank_error(path: &std::path::Path, e: pith_runtime::Error) -> anyhow::Error {
    anyhow!("{}: {e} (rebuild it with `pith kb build`)", path.display())
}

/// The integer reasoner through the runtime's console `chat`, the code the device runs: the
/// same answers, scores, refinements and prediction digests, byte for byte.
fn native(
    s: &Session<'_>,
    print: impl Fn(&str, &Said) -> std::io::Result<()>,
    reset: impl Fn() -> std::io::Result<()>,
) -> Result<()> {
    let (a, loaded, bank_path, bank_bytes) = s.parts();
    let model = pith_runtime::Model::new(&loaded.encoder_bytes)
        .map_err(|e| anyhow!("{}: {e}", loaded.encoder_path.display()))?;
    loaded.check_encoder(&model)?;
    let reasoner = pith_runtime::Reasoner::new(&loaded.reasoner_bytes)
        .map_err(|e| anyhow!("loading the reasoner package: {e}"))?;
    let dim = model.dim();
    let bank = Bank::for_model(bank_bytes, &model).map_err(|e| bank_error(bank_path, e))?;
    let arena_words = model
        .arena_words(model.max_tokens())
        .max(reasoner.arena_words(reasoner.window()));
    let mut mem = vec![0i32; arena_words + chat::words(dim)];
    let (arena, ring) = mem.split_at_mut(arena_words);
    let mut c = Chat::new(&reasoner, bank, &model, ring).map_err(|e| {
        anyhow!(
            "{} does not go with {} and {}: {e}",
            bank_path.display(),
            loaded.encoder_path.display(),
            a.engine
                .package
                .as_deref()
                .map_or("the reasoner".into(), |p| p.display().to_string())
        )
    })?;
    if let Some(g) = a.refine_below {
        c.set_gate((g * SCORE_ONE as f32).round() as i32);
    }
    let board = Board {
        package_bytes: u32::try_from(loaded.encoder_bytes.len()).unwrap_or(u32::MAX),
        arena_bytes: u32::try_from(arena.len() * 4).unwrap_or(u32::MAX),
        ..Board::host("host", std::env::consts::ARCH)
    };
    let mut service = Service::new(Ok(&model), arena, board, NoClock);
    service.attach_chat(c).map_err(|e| anyhow!("{e}"))?;
    while let Some(turn) = s.next_turn() {
        let turn = turn?;
        let turn = turn.as_str();
        if turn == "reset" {
            service.chat_reset().map_err(|f| anyhow!("{}", f.cause))?;
            reset()?;
            continue;
        }
        let ans = service
            .chat(turn)
            .map_err(|f| anyhow!("chat {turn:?}: {}", f.cause))?;
        let said = Said {
            text: ans.text.to_string(),
            score: ans.score,
            prediction: ans.prediction,
            margin: ans.margin,
            refined: ans.refined,
            lines: ChatLines(&ans).to_string().replace("\r\n", "\n"),
        };
        print(turn, &said)?;
    }
    Ok(())
}

/// A tract engine (float reference): the same steps in f32, refinement by float cosines.
fn float(
    s: &Session<'_>,
    print: impl Fn(&str, &Said) -> std::io::Result<()>,
    reset: impl Fn() -> std::io::Result<()>,
) -> Result<()> {
    let (a, loaded, bank_path, bank_bytes) = s.parts();
    let (mut enc, pred) = loaded.open(a.engine.backend)?;
    let bank = Bank::for_model(bank_bytes, &enc.model).map_err(|e| bank_error(bank_path, e))?;
    if bank.is_empty() {
        bail!("{} has no sentences", bank_path.display());
    }
    let gate = match a.refine_below {
        Some(g) => g,
        None => loaded.gate()?,
    };
    // The ring of int8 turn vectors and lexical terms (what the device keeps), latest first.
    let mut ring: Vec<(Vec<i8>, Vec<u16>)> = Vec::with_capacity(WINDOW);
    let push = |ring: &mut Vec<(Vec<i8>, Vec<u16>)>, v: Vec<i8>, t: Vec<u16>| {
        ring.insert(0, (v, t));
        ring.truncate(WINDOW);
    };
    let lexicon = bank.lexicon().filter(|l| l.weight() != 0);
    while let Some(turn) = s.next_turn() {
        let turn = turn?;
        let turn = turn.as_str();
        if turn == "reset" {
            ring.clear();
            reset()?;
            continue;
        }
        let terms = match lexicon {
            Some(_) => terms_of(&enc.model, &[turn])?.remove(0),
            None => Vec::new(),
        };
        push(&mut ring, enc.embed_i8(turn)?, terms);
        let window: Vec<&[i8]> = ring.iter().map(|(v, _)| v.as_slice()).collect();
        let predicted = pred.predict(&window)?;
        let mut hits = vec![Hit::default(); REFINE_TOP];
        let query = to_i8(&predicted);
        let turn_terms: Vec<&[u16]> = ring.iter().map(|(_, t)| t.as_slice()).collect();
        let context = lexicon
            .filter(|_| pith_runtime::kb::lexicon::applies(turn_terms.len()))
            .map(|l| LexicalContext::new(l, &turn_terms));
        let trust = pred.trust(window[0]);
        let lexical = context
            .as_ref()
            .map(|c| (c, (c.lexicon().weight() as f32 * trust).round() as i32));
        let n = bank.search_mixed(&query, lexical, Index::Question, &mut hits);
        hits.truncate(n);
        let first = *hits.first().context("the bank search returned nothing")?;
        let margin = first.cosine() - hits.get(1).map_or(-1.0, |h| h.cosine());
        let mut best = first;
        let refined = margin < gate;
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
        let prediction = pith_console::fnv1a(&query);
        let lines = format!(
            "score {:.4}\nanswer {text}\nprediction {prediction:08x}\nmargin {margin:.4}{}",
            best.cosine(),
            if refined { " refined" } else { "" }
        );
        let terms = lexicon.map_or_else(Vec::new, |l| l.entry_terms(best.index).collect());
        push(&mut ring, enc.embed_i8(&text)?, terms);
        print(
            turn,
            &Said {
                text,
                score: best.cosine(),
                prediction,
                margin,
                refined,
                lines,
            },
        )?;
    }
    Ok(())
}
