//! BERT WordPiece tokenizer giving the same ids as Hugging Face `tokenizers` (`BertNormalizer`,
//! `BertPreTokenizer`, `WordPiece`, `[CLS] $A [SEP]`), without heap or Unicode crates.
//!
//! The text streams through `normalize` (one char at a time), `pretokenize` (a stack buffer
//! holding the current word) and `wordpiece` (greedy longest match over the sorted
//! [`vocab`] section), writing ids straight into the caller's buffer and stopping once it is full.
//!
//! Like HF's added vocabulary, the texts of the special tokens (`[CLS]`, `[SEP]`, `[UNK]`, `[PAD]`
//! from the configuration, plus `[MASK]` when the vocabulary has it) are matched in the raw input
//! first, case-sensitively, and become that single id.

mod classes;
mod normalize;
mod pretokenize;
#[rustfmt::skip]
mod tables;
pub mod vocab;
mod wordpiece;

use crate::error::{Error, Result};
use crate::format::TokenizerConfig;

use normalize::{normalize_char, Steps};
use pretokenize::Word;
use pretokenize::{PreTokenizer, MAX_WORD_CHARS};
use vocab::Vocab;
use wordpiece::{encode_word, Pieces};

#[cfg(feature = "std")]
pub use vocab::build_vocab_section;

/// At most this many special tokens are recognised in text.
const MAX_SPECIAL: usize = 5;
/// The one special token HF BERT tokenizers add that the configuration does not name.
const MASK: &[u8] = b"[MASK]";

/// A tokenizer over a vocabulary section read in place.
#[derive(Clone, Copy)]
pub struct Tokenizer<'a> {
    vocab: Vocab<'a>,
    config: TokenizerConfig,
    special: [&'a [u8]; MAX_SPECIAL],
    special_ids: [u32; MAX_SPECIAL],
}

impl<'a> Tokenizer<'a> {
    /// Validates the vocabulary section once (never panics on any bytes).
    ///
    /// Fails with [`Error::VocabCorrupt`] for a malformed section or special ids outside it, and
    /// with [`Error::PackageBadConfig`] when `max_chars_per_word` exceeds the 128 chars the word
    /// buffer holds.
    pub fn new(vocab_section: &'a [u8], config: TokenizerConfig) -> Result<Self> {
        let vocab = Vocab::new(vocab_section)?;
        if !matches!(usize::try_from(config.max_chars_per_word), Ok(m) if m <= MAX_WORD_CHARS) {
            return Err(Error::PackageBadConfig);
        }
        let mut t = Tokenizer {
            vocab,
            config,
            special: [&[]; MAX_SPECIAL],
            special_ids: [0; MAX_SPECIAL],
        };
        let mask = vocab
            .longest_prefix(MASK, false)
            .filter(|&(len, _)| len == MASK.len())
            .map(|(_, id)| id);
        let ids = [
            Some(config.cls_id),
            Some(config.sep_id),
            Some(config.unk_id),
            Some(config.pad_id),
            mask,
        ];
        for (k, id) in ids.into_iter().flatten().enumerate() {
            let text = usize::try_from(id)
                .ok()
                .and_then(|i| vocab.token_bytes(i))
                .ok_or(Error::VocabCorrupt)?;
            if let (Some(s), Some(i)) = (t.special.get_mut(k), t.special_ids.get_mut(k)) {
                (*s, *i) = (text, id);
            }
        }
        Ok(t)
    }

    /// Writes `[CLS] pieces.. [SEP]` into `ids`, truncated to `min(ids.len(), config.max_len)`
    /// tokens like HF's truncation (`[CLS]`, the first pieces, `[SEP]`); returns the count.
    ///
    /// Works for any text without panicking and stops reading it once the output is full. With
    /// room for fewer than two tokens it writes what fits of the sequence: nothing, or `[CLS]`.
    pub fn encode(&self, text: &str, ids: &mut [u32]) -> Result<usize> {
        let max_len = usize::try_from(self.config.max_len).unwrap_or(usize::MAX);
        let limit = ids.len().min(max_len);
        let Some(body) = ids.get_mut(..limit) else {
            return Ok(0);
        };
        let Some((first, _)) = body.split_first_mut() else {
            return Ok(0);
        };
        *first = self.config.cls_id;
        let Some((_, head)) = body.split_last_mut() else {
            return Ok(1);
        };
        if head.is_empty() {
            return Ok(1);
        }

        let mut sink = Sink {
            vocab: &self.vocab,
            max_chars: usize::try_from(self.config.max_chars_per_word).unwrap_or(usize::MAX),
            unk: self.config.unk_id,
            out: Pieces::new(head, 1),
        };
        let steps = Steps {
            lowercase: self.config.lowercase,
            strip_accents: self.config.strip_accents,
            split_cjk: self.config.split_cjk,
        };
        let mut pre = PreTokenizer::new();
        let mut rest = text;
        // Pieces only appear when a word ends, and once the output is full nothing later can
        // change it (a word that fails to split rewinds only its own pieces), so stop reading.
        while !rest.is_empty() && !sink.out.is_full() {
            if let Some((id, len)) = self.special_at(rest) {
                pre.finish(&mut |w| sink.word(w));
                sink.out.push(id);
                rest = rest.get(len..).unwrap_or("");
                continue;
            }
            let mut chars = rest.chars();
            let Some(c) = chars.next() else { break };
            rest = chars.as_str();
            normalize_char(c, steps, &mut |n| pre.feed(n, &mut |w| sink.word(w)));
        }
        pre.finish(&mut |w| sink.word(w));

        let count = sink.out.count();
        if let Some(slot) = ids.get_mut(count) {
            *slot = self.config.sep_id;
        }
        Ok(count + 1)
    }

    /// The special token whose text starts `rest` (the longest, as HF matches leftmost-longest).
    fn special_at(&self, rest: &str) -> Option<(u32, usize)> {
        let first = *rest.as_bytes().first()?;
        let mut best: Option<(u32, usize)> = None;
        for (text, &id) in self.special.iter().zip(&self.special_ids) {
            if text.first() == Some(&first)
                && rest.as_bytes().starts_with(text)
                && !matches!(best, Some((_, len)) if len >= text.len())
            {
                best = Some((id, text.len()));
            }
        }
        best
    }

    /// Whether `id` is one of the special tokens (`[CLS]`, `[SEP]`, `[UNK]`, `[PAD]`, `[MASK]`).
    pub fn is_special(&self, id: u32) -> bool {
        self.special
            .iter()
            .zip(&self.special_ids)
            .any(|(text, &s)| !text.is_empty() && s == id)
    }

    /// Token text for an id (for debugging and `info`), `None` if out of range.
    pub fn token(&self, id: u32) -> Option<&'a str> {
        self.vocab.token(usize::try_from(id).ok()?)
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_len(&self) -> usize {
        self.vocab.len()
    }
}

/// Where finished words go: WordPiece into the output.
struct Sink<'v, 'a, 'o> {
    vocab: &'v Vocab<'a>,
    max_chars: usize,
    unk: u32,
    out: Pieces<'o>,
}

impl Sink<'_, '_, '_> {
    fn word(&mut self, word: Word<'_>) {
        encode_word(self.vocab, word, self.max_chars, self.unk, &mut self.out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: TokenizerConfig = TokenizerConfig {
        lowercase: true,
        strip_accents: true,
        split_cjk: true,
        cls_id: 2,
        sep_id: 3,
        unk_id: 1,
        pad_id: 0,
        max_len: 16,
        max_chars_per_word: 100,
    };

    fn section() -> Vec<u8> {
        let tokens = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "un", "##aff",
            "##able", "!", "cafe", "中", "##s",
        ];
        vocab::build_vocab_section(&tokens.map(String::from))
    }

    fn encode(text: &str, room: usize) -> Vec<u32> {
        let bytes = section();
        let tok = Tokenizer::new(&bytes, CONFIG).unwrap();
        let mut ids = vec![u32::MAX; room];
        let n = tok.encode(text, &mut ids).unwrap();
        assert!(ids[n..].iter().all(|&i| i == u32::MAX));
        ids.truncate(n);
        ids
    }

    #[test]
    fn encodes_with_special_tokens() {
        assert_eq!(encode("Hello, WORLD!", 16), vec![2, 5, 1, 6, 10, 3]);
        assert_eq!(
            encode("unaffable café 中s", 16),
            vec![2, 7, 8, 9, 11, 12, 1, 3]
        );
        assert_eq!(encode("", 16), vec![2, 3]);
        assert_eq!(encode(" \t\n", 16), vec![2, 3]);
        assert_eq!(
            encode("hello[MASK]world [SEP][cls]", 16),
            vec![2, 5, 4, 6, 3, 1, 1, 1, 3]
        );
    }

    #[test]
    fn tiny_buffers_get_what_fits() {
        assert_eq!(encode("hello world", 0), Vec::<u32>::new());
        assert_eq!(encode("hello world", 1), vec![2]);
        assert_eq!(encode("hello world", 2), vec![2, 3]);
        assert_eq!(encode("hello world", 3), vec![2, 5, 3]);
        assert_eq!(encode("hello world", 4), vec![2, 5, 6, 3]);
        assert_eq!(encode("unaffable", 3), vec![2, 7, 3]);
    }

    #[test]
    fn max_len_caps_a_larger_buffer() {
        let text = "hello ".repeat(40);
        let ids = encode(&text, 100);
        assert_eq!(ids.len(), 16);
        assert_eq!((ids[0], ids[15]), (2, 3));
        assert!(ids[1..15].iter().all(|&i| i == 5));
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let bytes = section();
        let tok = Tokenizer::new(
            &bytes,
            TokenizerConfig {
                max_len: u32::MAX,
                ..CONFIG
            },
        )
        .unwrap();
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        let mut raw = vec![0u8; 100_000];
        for b in raw.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = (state >> 24) as u8;
        }
        let text = String::from_utf8_lossy(&raw);
        for room in [0, 1, 2, 3, 64, 200_000] {
            let mut ids = vec![0u32; room];
            let n = tok.encode(&text, &mut ids).unwrap();
            assert!(n <= room);
            assert!(ids[..n].iter().all(|&i| (i as usize) < tok.vocab_len()));
        }
    }

    #[test]
    fn bad_sections_and_configs_are_errors() {
        let bytes = section();
        for len in 0..bytes.len() {
            assert_eq!(
                Tokenizer::new(&bytes[..len], CONFIG).err(),
                Some(Error::VocabCorrupt)
            );
        }
        let far = TokenizerConfig {
            unk_id: 14,
            ..CONFIG
        };
        assert_eq!(Tokenizer::new(&bytes, far).err(), Some(Error::VocabCorrupt));
        let long = TokenizerConfig {
            max_chars_per_word: 129,
            ..CONFIG
        };
        assert_eq!(
            Tokenizer::new(&bytes, long).err(),
            Some(Error::PackageBadConfig)
        );
    }

    #[test]
    fn token_and_vocab_len() {
        let bytes = section();
        let tok = Tokenizer::new(&bytes, CONFIG).unwrap();
        assert_eq!(tok.vocab_len(), 14);
        assert_eq!(tok.token(8), Some("##aff"));
        assert_eq!(tok.token(14), None);
        assert_eq!(tok.token(u32::MAX), None);
    }
}
