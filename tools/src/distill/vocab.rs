//! The student's vocabulary: as many of the teacher's tokens as the package budget holds.
//!
//! Kept first: the special tokens and every single character of the Latin script, punctuation,
//! digits and common symbols (plain and `##`), so WordPiece can always fall back on them and no
//! English word becomes `[UNK]`. Then the tokens the teacher's tokenizer uses most on the training
//! corpus (the BERT vocabulary is not sorted by frequency; each source of the corpus weighs the
//! same, and so does a word-frequency list when one is given), ties by id; a token that would
//! not fit is skipped and a shorter, rarer one may still fit. The kept tokens keep the teacher's
//! order.

use anyhow::{ensure, Result};
use pith_runtime::format::TokenizerConfig;

use crate::checkpoint::Checkpoint;
use crate::text::CheckpointTokenizer;

/// Package bytes per token besides its row of values: the (multiplier, shift) pair (8) and
/// the vocabulary section's offset and sorted-index entries (3 + 3); the token's text comes on
/// top. The finished package is measured against the budget again.
pub const PER_TOKEN_BYTES: usize = 14;
/// Package bytes that do not grow with the vocabulary: preamble, header, section table,
/// vocabulary header, alignment, checksum.
pub const FIXED_BYTES: usize = 512;

/// The chosen vocabulary.
pub struct Choice {
    /// Teacher ids of the kept tokens, ascending.
    pub kept: Vec<u32>,
    /// The kept tokens' texts (the student's vocab.txt: id = position).
    pub vocab: Vec<String>,
    /// The student's tokenizer settings (special ids resolved in `vocab`).
    pub tokenizer: TokenizerConfig,
    /// Estimated package bytes.
    pub bytes: usize,
}

impl Choice {
    /// The tokenizer the device will run with this vocabulary.
    pub fn tokenizer(&self) -> CheckpointTokenizer {
        CheckpointTokenizer::from_vocab(&self.vocab, self.tokenizer)
    }
}

/// Whether `tok` is a single character that is always kept: Latin script, punctuation, symbols
/// and digits below U+0250, general punctuation and currency signs (plain or `##`).
fn is_fallback_char(tok: &str) -> bool {
    let body = tok.strip_prefix("##").unwrap_or(tok);
    let mut chars = body.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => (c as u32) < 0x250 || (0x2000..0x20D0).contains(&(c as u32)),
        _ => false,
    }
}

fn is_special(tok: &str) -> bool {
    tok.starts_with('[') && tok.ends_with(']') && !tok.starts_with("[unused")
}

/// Chooses the vocabulary for a table of `row_bytes` a row within `budget` package bytes, of which
/// `fixed` go to what is not the vocabulary (a transformer's layers). `weights` gives each
/// text's share in the frequencies; `word_list` (words and their shares of a word-frequency
/// list, summing to 1) adds its words' tokens as one more source.
pub fn choose(
    teacher: &Checkpoint,
    train: &[String],
    weights: &[f64],
    word_list: &[(String, f64)],
    row_bytes: usize,
    budget: usize,
    fixed: usize,
) -> Result<Choice> {
    let n = teacher.vocab.len();
    let t = teacher.tokenizer;
    let tok = CheckpointTokenizer::new(teacher);
    let mut freq = vec![0f64; n];
    let words: Vec<String> = word_list.iter().map(|(w, _)| w.clone()).collect();
    let shares = weights.iter().chain(word_list.iter().map(|(_, s)| s));
    for (ids, w) in tok
        .ids_all(train)?
        .into_iter()
        .chain(tok.ids_all(&words)?)
        .zip(shares)
    {
        for id in ids {
            if id != t.cls_id && id != t.sep_id {
                freq[id as usize] += w;
            }
        }
    }
    let cost = |i: usize| row_bytes + PER_TOKEN_BYTES + teacher.vocab[i].len();
    let mut keep = vec![false; n];
    let mut bytes = FIXED_BYTES + fixed;
    let specials = [t.cls_id, t.sep_id, t.unk_id, t.pad_id].map(|i| i as usize);
    for (i, v) in teacher.vocab.iter().enumerate() {
        if specials.contains(&i) || is_special(v) || is_fallback_char(v) {
            keep[i] = true;
            bytes += cost(i);
        }
    }
    ensure!(
        bytes <= budget,
        "the special and single-character tokens (and the layers, if any) alone take about \
         {bytes} bytes at {row_bytes} bytes a row, more than the {budget} byte budget"
    );
    let mut order: Vec<usize> = (0..n).filter(|&i| !keep[i] && freq[i] > 0.0).collect();
    order.sort_by(|&i, &j| freq[j].total_cmp(&freq[i]).then(i.cmp(&j)));
    for i in order {
        if bytes + cost(i) <= budget {
            keep[i] = true;
            bytes += cost(i);
        }
    }
    let kept: Vec<u32> = (0..n as u32).filter(|&i| keep[i as usize]).collect();
    let vocab: Vec<String> = kept
        .iter()
        .map(|&i| teacher.vocab[i as usize].clone())
        .collect();
    let pos = |id: u32| -> u32 {
        // The specials are kept above, so each is found.
        kept.iter().position(|&k| k == id).unwrap_or(0) as u32
    };
    let tokenizer = TokenizerConfig {
        cls_id: pos(t.cls_id),
        sep_id: pos(t.sep_id),
        unk_id: pos(t.unk_id),
        pad_id: pos(t.pad_id),
        ..t
    };
    Ok(Choice {
        kept,
        vocab,
        tokenizer,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_characters_are_latin_punctuation_and_symbols() {
        for t in ["a", "##a", "é", "##ß", "!", "7", "€", "–"] {
            assert!(is_fallback_char(t), "{t}");
        }
        for t in ["ab", "##ab", "中", "##ا", "", "##"] {
            assert!(!is_fallback_char(t), "{t}");
        }
        assert!(is_special("[CLS]") && is_special("[MASK]") && !is_special("[unused3]"));
    }
}
