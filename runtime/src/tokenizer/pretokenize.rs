//! Hugging Face's `BertPreTokenizer` over the normalizer's stream: whitespace ends a word, every
//! punctuation char is a word of its own. Words are collected in a fixed stack buffer, where the
//! NFD canonical reordering the normalizer could not do char by char also happens.

use super::classes::{is_punctuation, kept_combining_class};
use super::normalize::Norm;

/// Longest word (in chars) the buffer can always hold; longer `max_chars_per_word` settings are
/// refused by `Tokenizer::new`.
pub(crate) const MAX_WORD_CHARS: usize = 128;
const WORD_BYTES: usize = 4 * MAX_WORD_CHARS;

/// A finished word.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Word<'w> {
    /// Its UTF-8 bytes (meaningless when `overflow`).
    pub bytes: &'w [u8],
    /// Its length in chars.
    pub chars: usize,
    /// The word did not fit the buffer: it has more than [`MAX_WORD_CHARS`] chars.
    pub overflow: bool,
}

/// Splits the normalized stream into words.
pub(crate) struct PreTokenizer {
    buf: [u8; WORD_BYTES],
    len: usize,
    chars: usize,
    overflow: bool,
    /// Start of the trailing run of reorderable chars (non-zero combining class), if any.
    run_start: Option<usize>,
}

impl PreTokenizer {
    /// An empty pre-tokenizer.
    pub(crate) fn new() -> Self {
        PreTokenizer {
            buf: [0; WORD_BYTES],
            len: 0,
            chars: 0,
            overflow: false,
            run_start: None,
        }
    }

    /// Feeds one normalizer event; finished words go to `on_word`.
    pub(crate) fn feed(&mut self, event: Norm, on_word: &mut impl FnMut(Word<'_>)) {
        match event {
            Norm::RunBreak => self.run_start = None,
            Norm::Char { c, .. } if c.is_whitespace() => self.finish(on_word),
            Norm::Char { c, .. } if is_punctuation(c) => {
                self.finish(on_word);
                let mut one = [0u8; 4];
                let bytes = c.encode_utf8(&mut one).as_bytes();
                on_word(Word {
                    bytes,
                    chars: 1,
                    overflow: false,
                });
            }
            Norm::Char { c, ccc: 0 } => {
                self.run_start = None;
                self.push_at(self.len, c);
            }
            Norm::Char { c, ccc } => self.push_reordered(c, ccc),
        }
    }

    /// Ends the current word, if any.
    pub(crate) fn finish(&mut self, on_word: &mut impl FnMut(Word<'_>)) {
        if self.chars > 0 {
            let bytes = self.buf.get(..self.len).unwrap_or(&[]);
            on_word(Word {
                bytes,
                chars: self.chars,
                overflow: self.overflow,
            });
        }
        self.len = 0;
        self.chars = 0;
        self.overflow = false;
        self.run_start = None;
    }

    /// Inserts `c` into the trailing run after every char whose class is not greater: the stable
    /// sort by combining class that NFD's canonical ordering is.
    fn push_reordered(&mut self, c: char, ccc: u8) {
        let run_start = *self.run_start.get_or_insert(self.len);
        let mut at = self.len;
        if !self.overflow {
            let run = self.buf.get(run_start..self.len).unwrap_or(&[]);
            if let Ok(run) = core::str::from_utf8(run) {
                if let Some((i, _)) = run
                    .char_indices()
                    .find(|&(_, r)| kept_combining_class(r) > ccc)
                {
                    at = run_start + i;
                }
            }
        }
        self.push_at(at, c);
    }

    /// Inserts `c` at byte `at` of the word; past the buffer only the char count goes on.
    fn push_at(&mut self, at: usize, c: char) {
        self.chars = self.chars.saturating_add(1);
        if self.overflow {
            return;
        }
        let n = c.len_utf8();
        let end = self.len + n;
        if end > WORD_BYTES || at > self.len {
            self.overflow = true;
            return;
        }
        self.buf.copy_within(at..self.len, at + n);
        if let Some(slot) = self.buf.get_mut(at..at + n) {
            c.encode_utf8(slot);
        }
        self.len = end;
    }
}

// Against Hugging Face `tokenizers`, a dev-dependency of x86-64 hosts only: the cross-built
// aarch64 tests (under QEMU) check the kernels, and this logic is the same on every CPU.
#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use super::*;
    use crate::tokenizer::normalize::{normalize_char, Steps};
    use tokenizers::normalizers::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::{
        NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString,
        PreTokenizer as _,
    };

    const STEPS: Steps = Steps {
        lowercase: true,
        strip_accents: true,
        split_cjk: true,
    };

    fn ours(text: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut pre = PreTokenizer::new();
        let mut on_word = |w: Word<'_>| {
            words.push(if w.overflow || w.chars > MAX_WORD_CHARS {
                format!("<{} chars>", w.chars)
            } else {
                String::from_utf8(w.bytes.to_vec()).unwrap()
            })
        };
        for c in text.chars() {
            normalize_char(c, STEPS, &mut |n| pre.feed(n, &mut on_word));
        }
        pre.finish(&mut on_word);
        words
    }

    fn hf(text: &str) -> Vec<String> {
        let mut ns = NormalizedString::from(text);
        BertNormalizer::new(true, true, Some(true), true)
            .normalize(&mut ns)
            .unwrap();
        let mut pre = PreTokenizedString::from(ns);
        BertPreTokenizer.pre_tokenize(&mut pre).unwrap();
        pre.get_splits(OffsetReferential::Normalized, OffsetType::Byte)
            .into_iter()
            .map(|(s, _, _)| {
                if s.chars().count() > MAX_WORD_CHARS {
                    format!("<{} chars>", s.chars().count())
                } else {
                    s.to_string()
                }
            })
            .collect()
    }

    #[test]
    fn every_code_point_splits_like_hugging_face() {
        let mut bad = Vec::new();
        for cp in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let text = format!("a{c}b");
            if ours(&text) != hf(&text) {
                bad.push(format!(
                    "U+{cp:04X}: ours {:?} hf {:?}",
                    ours(&text),
                    hf(&text)
                ));
            }
        }
        assert!(
            bad.is_empty(),
            "{} mismatches: {:#?}",
            bad.len(),
            &bad[..bad.len().min(40)]
        );
    }

    #[test]
    fn canonical_reordering_matches_hugging_face() {
        // Kept marks with different classes (9, 216, 226, 230), with dropped marks of class 0
        // (U+0B56, U+0C46) and non-zero class (U+0301) between them, and a decomposition that
        // brings its own reorderable marks (U+1D160).
        let pool = [
            "\u{1D16D}",
            "\u{1D165}",
            "\u{1734}",
            "\u{08D4}",
            "\u{302E}",
            "\u{0B56}",
            "\u{0301}",
            "\u{1D160}",
            "\u{0C48}",
            "x",
            "\u{1E94A}",
            "\u{11446}",
        ];
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x2545_F491_4F6C_DD1D);
        for _ in 0..20_000 {
            let mut text = String::from("q");
            for _ in 0..rng.random_range(0..9) {
                text.push_str(pool[rng.random_range(0..pool.len())]);
            }
            assert_eq!(
                ours(&text),
                hf(&text),
                "{:?}",
                text.chars().map(|c| c as u32).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn long_words_overflow_but_keep_counting() {
        let long = "é".repeat(300);
        assert_eq!(ours(&long), vec!["<300 chars>".to_string()]);
        assert_eq!(
            ours(&format!("{long} ok")),
            vec!["<300 chars>".to_string(), "ok".to_string()]
        );
        let just = "ab".repeat(MAX_WORD_CHARS / 2);
        assert_eq!(ours(&just), vec![just.clone()]);
    }
}
