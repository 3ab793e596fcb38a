//! Greedy longest-match-first WordPiece, as Hugging Face's `WordPiece` model does it.

use super::pretokenize::Word;
use super::vocab::Vocab;

/// The ids written so far, bounded by the space left before `[SEP]`.
pub(crate) struct Pieces<'o> {
    ids: &'o mut [u32],
    count: usize,
}

impl<'o> Pieces<'o> {
    /// Writes into `ids` from index `count` on.
    pub(crate) fn new(ids: &'o mut [u32], count: usize) -> Self {
        Pieces { ids, count }
    }

    /// Appends `id` if there is room; beyond it HF's truncation would drop the piece anyway.
    pub(crate) fn push(&mut self, id: u32) {
        if let Some(slot) = self.ids.get_mut(self.count) {
            *slot = id;
            self.count += 1;
        }
    }

    /// No room left: later pieces cannot change the output.
    pub(crate) fn is_full(&self) -> bool {
        self.count >= self.ids.len()
    }

    /// Number of ids written, including any before the first piece.
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

/// Appends the pieces of `word`: its greedy longest-match split, or a single `unk` when it is
/// longer than `max_chars` or some position has no matching piece.
pub(crate) fn encode_word(
    vocab: &Vocab<'_>,
    word: Word<'_>,
    max_chars: usize,
    unk: u32,
    out: &mut Pieces<'_>,
) {
    if out.is_full() {
        return;
    }
    if word.overflow || word.chars > max_chars {
        return out.push(unk);
    }
    // Pieces go straight to the output; a word that turns out to have no full cover rewinds.
    let first = out.count;
    let mut rest = word.bytes;
    while !rest.is_empty() {
        let Some((len, id)) = vocab.longest_prefix(rest, rest.len() < word.bytes.len()) else {
            out.count = first;
            return out.push(unk);
        };
        out.push(id);
        rest = rest.get(len..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::vocab::build_vocab_section;

    fn run(vocab: &[&str], word: &str, room: usize) -> Vec<u32> {
        let tokens: Vec<String> = vocab.iter().map(|s| s.to_string()).collect();
        let bytes = build_vocab_section(&tokens);
        let v = Vocab::new(&bytes).unwrap();
        let mut ids = vec![u32::MAX; room];
        let mut out = Pieces::new(&mut ids, 0);
        let w = Word {
            bytes: word.as_bytes(),
            chars: word.chars().count(),
            overflow: false,
        };
        encode_word(&v, w, 100, 0, &mut out);
        let n = out.count();
        ids.truncate(n);
        ids
    }

    const VOCAB: &[&str] = &["[UNK]", "un", "##aff", "##able", "u", "##n", "##a", "aff"];

    #[test]
    fn greedy_longest_match() {
        assert_eq!(run(VOCAB, "unaffable", 10), vec![1, 2, 3]);
        assert_eq!(run(VOCAB, "una", 10), vec![1, 6]);
        assert_eq!(run(VOCAB, "aff", 10), vec![7]);
    }

    #[test]
    fn no_cover_is_one_unk_even_when_truncated() {
        assert_eq!(run(VOCAB, "unaffablez", 10), vec![0]);
        assert_eq!(run(VOCAB, "unaffablez", 2), vec![0]);
        assert_eq!(run(VOCAB, "unaffable", 2), vec![1, 2]);
        assert_eq!(run(VOCAB, "unaffable", 0), Vec::<u32>::new());
    }

    #[test]
    fn too_long_is_unk() {
        let long = "u".repeat(101);
        assert_eq!(run(&["[UNK]", "u", "##u"], &long, 5), vec![0]);
        assert_eq!(run(&["[UNK]", "u", "##u"], &long[..100], 200).len(), 100);
    }
}
