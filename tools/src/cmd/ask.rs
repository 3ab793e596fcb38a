//! `pith ask QUESTION`: the bank's best answers, or an abstention when none is close enough.
//! Runs exactly what the device runs: native int8 embedding, integer search, the bank's threshold.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use pith_runtime::kb::{score_to_cosine, Bank, Hit, Index};
use pith_runtime::Model;
use serde_json::json;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The question.
    pub question: String,
    /// Knowledge bank (default: the model's StackFAQ bank beside its package, `.pithkb`, built
    /// on first use).
    #[arg(long)]
    pub kb: Option<PathBuf>,
    /// How many answers at most, at least 1 (all of them must clear the threshold).
    #[arg(short, default_value_t = 1, value_parser = crate::args::count)]
    pub k: usize,
    #[command(flatten)]
    pub model: crate::load::PackageArg,
    /// Answer even below the bank's threshold.
    #[arg(long)]
    pub no_abstain: bool,
    /// Print JSON `{"answers": [{"id", "score", "text", "question"}], "abstained": bool}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let package_path = a.model.path()?;
    let package = crate::framed_file::read(&package_path, &crate::framed_file::PACKAGE)?;
    let model = Model::new(&package).map_err(|e| anyhow!("loading package: {e}"))?;
    let bank_path = match &a.kb {
        Some(p) => p.clone(),
        None => crate::artifacts::bank_for(&package_path)?,
    };
    let bytes = crate::framed_file::read(&bank_path, &crate::framed_file::BANK)?;
    let bank = Bank::for_model(&bytes, &model).map_err(|e| {
        let which =
            a.kb.as_ref()
                .map_or("the default bank".to_string(), |p| p.display().to_string());
        anyhow!("{which}: {e} (rebuild it with `pith kb build`)")
    })?;
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut query = vec![0i8; model.dim()];
    model
        .embed(&a.question, &mut arena, &mut query)
        .map_err(|e| anyhow!("embedding the question: {e}"))?;
    // More hits than entries cannot be filled: `-k` beyond the bank's size means "all of them".
    let mut hits = vec![Hit::default(); a.k.min(bank.len()).max(1)];
    let n = bank.search(&query, Index::Both, &mut hits);
    hits.truncate(n);
    let best = hits.first().copied();
    if !a.no_abstain {
        hits.retain(|h| bank.is_confident(h.score));
    }
    let threshold = (bank.threshold() != pith_runtime::kb::NEVER_ABSTAIN)
        .then(|| score_to_cosine(bank.threshold()));
    let describe = |h: &Hit| {
        let e = bank.entry(h.index);
        json!({
            "id": e.map(|e| e.id.to_string()),
            "score": h.cosine(),
            "text": e.map(|e| e.answer.to_string()),
            "question": e.map(|e| e.question.to_string()),
        })
    };
    let abstained = hits.is_empty();
    if a.json {
        let mut v = json!({ "answers": hits.iter().map(describe).collect::<Vec<_>>(), "abstained": abstained });
        if abstained {
            v["best"] = best
                .as_ref()
                .map(describe)
                .unwrap_or(serde_json::Value::Null);
            v["threshold"] = json!(threshold);
        }
        crate::outln!("{v}");
        return Ok(());
    }
    if abstained {
        match best.and_then(|h| Some((h, bank.entry(h.index)?))) {
            Some((h, e)) => crate::outln!(
                "no confident answer (best {:.4} < threshold {:.4}: {} \"{}\")",
                h.cosine(),
                threshold.unwrap_or(0.0),
                e.id,
                e.question
            ),
            None => crate::outln!("no answer: the bank is empty"),
        }
        return Ok(());
    }
    for (i, h) in hits.iter().enumerate() {
        let Some(e) = bank.entry(h.index) else {
            continue;
        };
        if i > 0 {
            crate::outln!();
        }
        crate::outln!("[{:.4}] {}: {}", score_to_cosine(h.score), e.id, e.question);
        crate::outln!("{}", e.answer);
    }
    Ok(())
}
