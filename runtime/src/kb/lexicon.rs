//! The lexical match of a response bank: an IDF-weighted cosine between the words of a
//! conversation's recent turns and a bank entry's words, in integers, so that the device and the
//! host rank alike.
//!
//! Sentence embeddings of small encoders blur exact words; a reply usually repeats some of them
//! (names, topics, the question's noun). A bank that carries a lexicon lets `chat` add this match,
//! weighted, to the embedding score of each entry.
//!
//! - **Terms** of a text are its WordPiece ids (the encoder's own tokenizer, special tokens
//!   left out), the first [`MAX_TERMS`] distinct ones of the first [`TERM_TOKENS`] tokens,
//!   sorted. Only presence counts: chat turns are short, and a repeated word says little more.
//! - **IDF** is the bank's own: `ln((1 + N) / (1 + df)) + 1` over its `N` entries, one byte per
//!   vocabulary id in units of 1/[`IDF_ONE`], written when the bank is built.
//! - **Query**: turn `a` of the context (0 the latest) weighs [`DECAY`]`[a]`, so a term's query
//!   weight is its IDF times the summed weights of the turns that contain it. An entry's term
//!   weighs its IDF.
//! - **Score**: the cosine of the two weight vectors in score units (`SCORE_ONE` = 1.0), by the
//!   same exact arithmetic as the embedding cosines; [`mix`] adds it, scaled by the bank's
//!   lexical weight, to an embedding score.
//! - **Conversations only**: `chat` adds the match once the context holds
//!   [`MIN_CONTEXT_TURNS`] turns ([`applies`]). A lone question has no conversation whose words a
//!   reply could return to, and there the match mostly rewards candidates that repeat the
//!   question (a paraphrase of it beats its answer), so the reasoner answers alone.
//!
//! # Layout (after the coded text area when bit 0 of the bank's flags is set)
//!
//! | size | field |
//! |---|---|
//! | 4 | vocabulary size `V` (1..=65536) |
//! | 4 | number of stored terms `M` |
//! | V | IDF per vocabulary id, u8, units of 1/[`IDF_ONE`] |
//! | 4 N | per entry the end offset (u32, in terms) of its terms |
//! | 2 M | the terms (u16 ids): per entry strictly increasing, below `V`, at most [`MAX_TERMS`] |

use super::cosine_score;
use super::SCORE_ONE;
use crate::error::{Error, Result};
use crate::le::{u16_at, u32_at};
use crate::tokenizer::Tokenizer;

/// Most distinct terms a text contributes (the first ones in reading order).
pub const MAX_TERMS: usize = 64;
/// Tokens a text is cut to before its terms are taken: a fixed count, so that every arena size
/// gives the same terms.
pub const TERM_TOKENS: usize = 128;
/// Weight of each context turn, latest first: 0.7^age in 1/256 units (recent turns say more
/// about the next one; 0.7 chosen on the chit-chat dev part).
pub const DECAY: [u32; CONTEXT_TURNS] = [256, 179, 125, 88, 61, 43, 30, 21];
/// Most turns a context weighs.
pub const CONTEXT_TURNS: usize = 8;
/// Fewest context turns for which `chat` adds the lexical match.
pub const MIN_CONTEXT_TURNS: usize = 2;

/// Whether `chat` adds the lexical match for a context of `turns` turns.
pub fn applies(turns: usize) -> bool {
    turns >= MIN_CONTEXT_TURNS
}
/// The stored IDF unit: a byte of `16` is an IDF of 1.0.
pub const IDF_ONE: u32 = 16;
/// Size of the lexicon's fixed fields.
const LEXICON_HEAD: usize = 8;

/// The terms of `text` into `out` (at least [`MAX_TERMS`] long), sorted; returns their count.
/// `scratch` holds the token ids: at least [`TERM_TOKENS`] words.
pub fn terms(
    tokenizer: &Tokenizer<'_>,
    text: &str,
    scratch: &mut [u32],
    out: &mut [u16],
) -> Result<usize> {
    let ids = scratch.get_mut(..TERM_TOKENS).ok_or(Error::ArenaTooSmall)?;
    if out.len() < MAX_TERMS {
        return Err(Error::OutputSizeMismatch);
    }
    let n = tokenizer.encode(text, ids)?;
    let mut k = 0;
    for &id in ids.iter().take(n) {
        if k == MAX_TERMS {
            break;
        }
        let Ok(t) = u16::try_from(id) else { continue };
        if tokenizer.is_special(id) || out[..k].contains(&t) {
            continue;
        }
        out[k] = t;
        k += 1;
    }
    out[..k].sort_unstable();
    Ok(k)
}

/// Adds `lexical` (a lexical score) at `weight` (score units: `SCORE_ONE` adds it whole) to the
/// embedding score `dense`.
pub fn mix(dense: i32, lexical: i32, weight: i32) -> i32 {
    let add = (weight as i64 * lexical as i64) >> 16;
    dense.saturating_add(add.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
}

/// The validated lexicon of a bank, read in place.
#[derive(Clone, Copy)]
pub struct Lexicon<'a> {
    idf: &'a [u8],
    ends: &'a [u8],
    terms: &'a [u8],
    weight: i32,
}

impl<'a> Lexicon<'a> {
    /// Validates the lexicon of a bank of `count` entries, which must fill `bytes` exactly.
    pub(super) fn new_checked(bytes: &'a [u8], count: usize, weight: i32) -> Result<Self> {
        let field = |at| {
            u32_at(bytes, at)
                .map(|v| v as usize)
                .ok_or(Error::BankCorrupt)
        };
        let (vocab, total) = (field(0)?, field(4)?);
        if vocab == 0 || vocab > 1 << 16 {
            return Err(Error::BankCorrupt);
        }
        let layout = (|| {
            let ends_at = LEXICON_HEAD.checked_add(vocab)?;
            let terms_at = ends_at.checked_add(count.checked_mul(4)?)?;
            let end = terms_at.checked_add(total.checked_mul(2)?)?;
            Some((ends_at, terms_at, end))
        })();
        let (ends_at, terms_at, end) = layout.ok_or(Error::BankCorrupt)?;
        if end != bytes.len() {
            return Err(Error::BankCorrupt);
        }
        let slice = |a: usize, b: usize| bytes.get(a..b).ok_or(Error::BankCorrupt);
        let lexicon = Lexicon {
            idf: slice(LEXICON_HEAD, ends_at)?,
            ends: slice(ends_at, terms_at)?,
            terms: slice(terms_at, end)?,
            weight,
        };
        let mut start = 0;
        for i in 0..count {
            let end = u32_at(lexicon.ends, 4 * i).ok_or(Error::BankCorrupt)? as usize;
            if end < start || end > total || end - start > MAX_TERMS {
                return Err(Error::BankCorrupt);
            }
            let mut last: Option<u16> = None;
            for j in start..end {
                let t = u16_at(lexicon.terms, 2 * j).ok_or(Error::BankCorrupt)?;
                if t as usize >= vocab || last.is_some_and(|l| t <= l) {
                    return Err(Error::BankCorrupt);
                }
                last = Some(t);
            }
            start = end;
        }
        if start != total {
            return Err(Error::BankCorrupt);
        }
        Ok(lexicon)
    }

    /// How much the lexical score counts beside the embedding score (score units).
    pub fn weight(&self) -> i32 {
        self.weight
    }

    /// Vocabulary ids the IDF table covers.
    pub fn vocab_len(&self) -> usize {
        self.idf.len()
    }

    /// The stored IDF of `term` (units of 1/[`IDF_ONE`]); 0 outside the vocabulary.
    pub fn idf(&self, term: u16) -> u32 {
        self.idf.get(term as usize).map_or(0, |&b| b as u32)
    }

    /// Entry `i`'s terms, ascending (none past the end).
    pub fn entry_terms(&self, i: usize) -> impl Iterator<Item = u16> + 'a {
        let start = match i.checked_sub(1) {
            None => Some(0),
            Some(p) => u32_at(self.ends, 4 * p),
        };
        let end = u32_at(self.ends, 4 * i);
        let range = match (start, end) {
            (Some(s), Some(e)) => s as usize..e as usize,
            _ => 0..0,
        };
        let terms = self.terms;
        range.filter_map(move |j| u16_at(terms, 2 * j))
    }
}

/// The recent turns of a conversation as a lexical query: each turn's terms (sorted, as
/// [`terms`] gives them), latest first.
pub struct Context<'t, 'a> {
    lexicon: Lexicon<'a>,
    turns: [&'t [u16]; CONTEXT_TURNS],
    n: usize,
    norm2: i64,
}

impl<'t, 'a> Context<'t, 'a> {
    /// The query of `turns` (latest first; those past [`CONTEXT_TURNS`] are left out).
    pub fn new(lexicon: Lexicon<'a>, turns: &[&'t [u16]]) -> Self {
        let mut c = Context {
            lexicon,
            turns: [&[]; CONTEXT_TURNS],
            n: 0,
            norm2: 0,
        };
        for (slot, &t) in c.turns.iter_mut().zip(turns) {
            *slot = t;
            c.n += 1;
        }
        let mut norm2 = 0i64;
        for (age, turn) in c.turns.iter().enumerate().take(c.n) {
            for &t in turn.iter() {
                // Each distinct term once: at the latest turn that has it.
                let seen = c.turns[..age].iter().any(|u| u.binary_search(&t).is_ok());
                if !seen {
                    norm2 += c.weight(t).pow(2);
                }
            }
        }
        c.norm2 = norm2;
        c
    }

    /// The query weight of `term`: its IDF times the summed [`DECAY`] of the turns that have it.
    fn weight(&self, term: u16) -> i64 {
        let turns: u32 = self
            .turns
            .iter()
            .zip(DECAY)
            .take(self.n)
            .filter(|(u, _)| u.binary_search(&term).is_ok())
            .map(|(_, d)| d)
            .sum();
        (self.lexicon.idf(term) * turns) as i64
    }

    /// The lexical score (score units, 0..=`SCORE_ONE`) of a text with `terms` (ascending,
    /// distinct).
    pub fn score(&self, terms: impl Iterator<Item = u16>) -> i32 {
        let (mut dot, mut norm2) = (0i64, 0i64);
        for t in terms {
            let idf = self.lexicon.idf(t) as i64;
            norm2 += idf * idf;
            dot += self.weight(t) * idf;
        }
        cosine_score(dot, self.norm2, norm2).clamp(0, SCORE_ONE)
    }

    /// The lexical score of bank entry `i`.
    pub fn entry_score(&self, i: usize) -> i32 {
        self.score(self.lexicon.entry_terms(i))
    }

    /// The lexicon the query reads.
    pub fn lexicon(&self) -> &Lexicon<'a> {
        &self.lexicon
    }
}
