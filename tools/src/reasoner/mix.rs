//! The response bank's lexical match on the host: the runtime's terms and scores (the device's
//! integers), turned into the cosine units the float engines and `eval chat` add them in.

use anyhow::{anyhow, Result};
use pith_runtime::kb::lexicon::{self, Context, MAX_TERMS, TERM_TOKENS};
use pith_runtime::kb::{Lexicon, SCORE_ONE};
use pith_runtime::Model;
use rayon::prelude::*;

/// The lexical terms of each text, by the encoder's tokenizer (what a device stores and keeps).
pub fn terms_of(model: &Model<'_>, texts: &[&str]) -> Result<Vec<Vec<u16>>> {
    let tokenizer = model.tokenizer();
    texts
        .par_iter()
        .map_init(
            || vec![0u32; TERM_TOKENS],
            |scratch, t| {
                let mut out = [0u16; MAX_TERMS];
                let n = lexicon::terms(tokenizer, t, scratch, &mut out)
                    .map_err(|e| anyhow!("terms of {t:?}: {e}"))?;
                Ok(out[..n].to_vec())
            },
        )
        .collect()
}

/// The lexical score (a cosine in [0, 1]) of each candidate against the context `window`
/// (terms of its turns, latest first), by the runtime's integer arithmetic.
pub fn scores(lexicon: Lexicon<'_>, window: &[&[u16]], cands: &[&[u16]]) -> Vec<f32> {
    let c = Context::new(lexicon, window);
    cands
        .iter()
        .map(|t| c.score(t.iter().copied()) as f32 / SCORE_ONE as f32)
        .collect()
}

/// The lexical weight of a bank (a cosine multiplier; 0 without a lexicon).
pub fn weight(lexicon: Option<Lexicon<'_>>) -> f32 {
    lexicon.map_or(0.0, |l| l.weight() as f32 / SCORE_ONE as f32)
}
