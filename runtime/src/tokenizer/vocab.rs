//! The WordPiece vocabulary section, read in place (zero copy, no alignment assumed).
//!
//! # Layout
//!
//! All integers are little-endian. Header fields are `u32`; table entries are 24-bit (`u24`), so a
//! vocabulary holds at most 16,777,215 tokens and 16 MiB of token text.
//!
//! | offset          | size          | field                                                       |
//! |-----------------|---------------|-------------------------------------------------------------|
//! | 0               | 4             | magic `WPV1`                                                |
//! | 4               | 4             | `n`: number of tokens (ids `0..n`)                          |
//! | 8               | 4             | `m`: entries in the sorted index (`m <= n`)                 |
//! | 12              | 4             | `c0`: first sorted entry whose token starts with `##`       |
//! | 16              | 4             | `c1`: one past the last sorted entry starting with `##`     |
//! | 20              | 4             | `blob_len`: bytes of token text                             |
//! | 24              | 3 × (n + 1)   | `offsets`: token `i` is `blob[offsets[i]..offsets[i + 1]]`  |
//! | 27 + 3n         | 3 × m         | `sorted`: ids ordered by their token's bytes                |
//! | 27 + 3n + 3m    | `blob_len`    | `blob`: UTF-8 token texts in id order, no separators        |
//!
//! The section is exactly `27 + 3n + 3m + blob_len` bytes. `offsets` starts at 0, never decreases
//! and ends at `blob_len`; every token is valid UTF-8. `sorted` is strictly increasing by bytes, so
//! a token listed twice in the vocabulary is indexed once (by its lowest id, which is what the
//! builder keeps). Because every continuation piece shares the `##` prefix, the continuation
//! pieces are the contiguous block `sorted[c0..c1]`, and among them the order by bytes equals the
//! order by the text after `##`: WordPiece looks up a continuation by comparing past the first two
//! bytes, without ever building `"##" + piece`.
//!
//! [`Tokenizer::new`](super::Tokenizer::new) checks all of this once, so no accessor can index out of bounds afterwards.

use crate::error::{Error, Result};

/// First four bytes of a vocabulary section.
pub const MAGIC: [u8; 4] = *b"WPV1";
/// Size of the fixed header.
const HEADER_LEN: usize = 24;
/// Width of a table entry.
const ENTRY: usize = 3;
/// The largest value a table entry can hold.
const ENTRY_MAX: usize = (1 << 24) - 1;
/// The continuing-subword prefix.
const CONT: &[u8] = b"##";

/// A validated vocabulary section.
#[derive(Clone, Copy)]
pub(crate) struct Vocab<'a> {
    offsets: &'a [u8],
    sorted: &'a [u8],
    blob: &'a [u8],
    n: usize,
    m: usize,
    cont: (usize, usize),
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let v = u32::from_le_bytes([b.first().copied()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]);
    usize::try_from(v).ok()
}

fn read_u24(bytes: &[u8], index: usize) -> Option<usize> {
    let at = index.checked_mul(ENTRY)?;
    let b = bytes.get(at..at.checked_add(ENTRY)?)?;
    let v = u32::from_le_bytes([b.first().copied()?, *b.get(1)?, *b.get(2)?, 0]);
    usize::try_from(v).ok()
}

/// Splits `len` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (head, tail) = (rest.get(..len)?, rest.get(len..)?);
    *rest = tail;
    Some(head)
}

impl<'a> Vocab<'a> {
    /// Validates `bytes` as a vocabulary section.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        Self::parse(bytes).ok_or(Error::VocabCorrupt)
    }

    fn parse(bytes: &'a [u8]) -> Option<Self> {
        if bytes.get(..4)? != MAGIC {
            return None;
        }
        let n = read_u32(bytes, 4)?;
        let m = read_u32(bytes, 8)?;
        let cont = (read_u32(bytes, 12)?, read_u32(bytes, 16)?);
        let blob_len = read_u32(bytes, 20)?;
        if n > ENTRY_MAX || m > n || blob_len > ENTRY_MAX || cont.0 > cont.1 || cont.1 > m {
            return None;
        }
        let mut rest = bytes.get(HEADER_LEN..)?;
        let offsets = take(&mut rest, n.checked_add(1)?.checked_mul(ENTRY)?)?;
        let sorted = take(&mut rest, m.checked_mul(ENTRY)?)?;
        let blob = take(&mut rest, blob_len)?;
        if !rest.is_empty() {
            return None;
        }
        let vocab = Vocab {
            offsets,
            sorted,
            blob,
            n,
            m,
            cont,
        };
        vocab.check_tokens(blob_len)?;
        vocab.check_sorted()?;
        Some(vocab)
    }

    /// Offsets start at 0, never decrease, end at the blob's end, and cut it into UTF-8 tokens.
    fn check_tokens(&self, blob_len: usize) -> Option<()> {
        let mut start = read_u24(self.offsets, 0)?;
        if start != 0 {
            return None;
        }
        for i in 1..=self.n {
            let end = read_u24(self.offsets, i)?;
            core::str::from_utf8(self.blob.get(start..end)?).ok()?;
            start = end;
        }
        (start == blob_len).then_some(())
    }

    /// Ids are in range, tokens strictly increase, and `##` tokens are exactly `c0..c1`.
    fn check_sorted(&self) -> Option<()> {
        let mut prev: Option<&[u8]> = None;
        for k in 0..self.m {
            let id = read_u24(self.sorted, k)?;
            let token = self.token_bytes(id)?;
            if prev.is_some_and(|p| p >= token) {
                return None;
            }
            if token.starts_with(CONT) != (self.cont.0..self.cont.1).contains(&k) {
                return None;
            }
            prev = Some(token);
        }
        Some(())
    }

    /// Number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The bytes of token `id`.
    pub(crate) fn token_bytes(&self, id: usize) -> Option<&'a [u8]> {
        if id >= self.n {
            return None;
        }
        let start = read_u24(self.offsets, id)?;
        let end = read_u24(self.offsets, id.checked_add(1)?)?;
        self.blob.get(start..end)
    }

    /// The text of token `id`.
    pub(crate) fn token(&self, id: usize) -> Option<&'a str> {
        core::str::from_utf8(self.token_bytes(id)?).ok()
    }

    /// Id and bytes of the `k`-th entry of the sorted index.
    fn entry(&self, k: usize) -> Option<(usize, &'a [u8])> {
        if k >= self.m {
            return None;
        }
        let id = read_u24(self.sorted, k)?;
        Some((id, self.token_bytes(id)?))
    }

    /// Exact lookup: the id of `piece` (after `##` when `continuation`).
    #[cfg(test)]
    pub(crate) fn find(&self, piece: &[u8], continuation: bool) -> Option<u32> {
        match self.longest_prefix(piece, continuation) {
            Some((len, id)) if len == piece.len() => Some(id),
            _ => None,
        }
    }

    /// The longest non-empty prefix of `text` that is a token (a continuation piece when
    /// `continuation`, compared past its `##`): its length in bytes and its id.
    ///
    /// Walks down the sorted index one byte at a time: the entries extending the prefix read so
    /// far form a contiguous range, which each byte narrows by two binary searches, and the
    /// prefix itself, if it is a token, is the first entry of that range. So the greedy
    /// longest-match costs O(len · log m) instead of one full lookup per candidate length.
    pub(crate) fn longest_prefix(&self, text: &[u8], continuation: bool) -> Option<(usize, u32)> {
        let (skip, mut lo, mut hi) = if continuation {
            (CONT.len(), self.cont.0, self.cont.1)
        } else {
            (0, 0, self.m)
        };
        if text.is_empty() {
            return None;
        }
        let mut best = None;
        for (k, &byte) in text.iter().enumerate() {
            let depth = skip + k;
            if k > 0 {
                best = self.exact_at(lo, hi, depth, k).or(best);
            }
            // Entries ending at `depth` or with a smaller byte there sort before the new range.
            lo = self.partition(lo, hi, |e| !matches!(e.get(depth), Some(&b) if b >= byte));
            hi = self.partition(lo, hi, |e| !matches!(e.get(depth), Some(&b) if b > byte));
            if lo >= hi {
                return best;
            }
        }
        self.exact_at(lo, hi, skip + text.len(), text.len())
            .or(best)
    }

    /// `(k, id)` when the first entry of `lo..hi` is exactly `depth` bytes long.
    fn exact_at(&self, lo: usize, hi: usize, depth: usize, k: usize) -> Option<(usize, u32)> {
        if lo >= hi {
            return None;
        }
        let (id, bytes) = self.entry(lo)?;
        (bytes.len() == depth).then_some((k, u32::try_from(id).ok()?))
    }

    /// First index in `lo..hi` whose entry does not satisfy `before` (which must be monotone).
    fn partition(&self, mut lo: usize, mut hi: usize, before: impl Fn(&[u8]) -> bool) -> usize {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid) {
                Some((_, e)) if before(e) => lo = mid + 1,
                Some(_) => hi = mid,
                None => return lo,
            }
        }
        lo
    }
}

/// Serializes a vocabulary (tokens in id order) into the section layout `Tokenizer::new` reads.
///
/// Panics if the vocabulary exceeds the 24-bit limits of the layout (16,777,215 tokens, 16 MiB of
/// text): a host-side build error, not a runtime input.
#[cfg(any(test, feature = "std"))]
pub fn build_vocab_section(tokens: &[String]) -> Vec<u8> {
    let mut blob = Vec::new();
    let mut offsets = vec![0usize];
    for t in tokens {
        blob.extend_from_slice(t.as_bytes());
        offsets.push(blob.len());
    }
    assert!(
        tokens.len() <= ENTRY_MAX && blob.len() <= ENTRY_MAX,
        "vocabulary too large"
    );
    let mut sorted: Vec<usize> = (0..tokens.len()).collect();
    // Stable sort by bytes keeps the lowest id first among duplicates; dedup keeps that one.
    sorted.sort_by(|&a, &b| tokens[a].as_bytes().cmp(tokens[b].as_bytes()));
    sorted.dedup_by(|b, a| tokens[*a] == tokens[*b]);
    let c0 = sorted.partition_point(|&i| tokens[i].as_bytes() < CONT);
    let c1 = c0 + sorted[c0..].partition_point(|&i| tokens[i].as_bytes().starts_with(CONT));

    let mut out =
        Vec::with_capacity(HEADER_LEN + ENTRY * (offsets.len() + sorted.len()) + blob.len());
    out.extend_from_slice(&MAGIC);
    for v in [tokens.len(), sorted.len(), c0, c1, blob.len()] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    for v in offsets.iter().chain(&sorted) {
        out.extend_from_slice(&(*v as u32).to_le_bytes()[..ENTRY]);
    }
    out.extend_from_slice(&blob);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(tokens: &[&str]) -> Vec<String> {
        tokens.iter().map(|s| s.to_string()).collect()
    }

    fn small() -> Vec<u8> {
        build_vocab_section(&strings(&[
            "[PAD]", "[UNK]", "un", "##aff", "##able", "u", "una", "##a", "ff", "##", "##ff", "un",
        ]))
    }

    #[test]
    fn exact_and_longest_lookups() {
        let bytes = small();
        let v = Vocab::new(&bytes).unwrap();
        assert_eq!(v.len(), 12);
        assert_eq!(
            v.find(b"un", false),
            Some(2),
            "duplicates resolve to the lowest id"
        );
        assert_eq!(v.find(b"aff", true), Some(3));
        assert_eq!(v.find(b"aff", false), None);
        assert_eq!(
            v.find(b"##aff", false),
            Some(3),
            "word-initial lookups see ## tokens too"
        );
        assert_eq!(v.find(b"", true), None);
        assert_eq!(v.longest_prefix(b"unaffable", false), Some((3, 6)));
        assert_eq!(v.longest_prefix(b"uzz", false), Some((1, 5)));
        assert_eq!(v.longest_prefix(b"affable", true), Some((3, 3)));
        assert_eq!(v.longest_prefix(b"ffx", true), Some((2, 10)));
        assert_eq!(v.longest_prefix(b"able", true), Some((4, 4)));
        assert_eq!(v.longest_prefix(b"zzz", false), None);
        assert_eq!(v.longest_prefix(b"", false), None);
        assert_eq!(v.token(4), Some("##able"));
        assert_eq!(v.token(12), None);
        assert_eq!(v.token(usize::MAX), None);
    }

    #[test]
    fn every_token_is_found_by_its_own_text() {
        let tokens = strings(&[
            "a", "ab", "abc", "##b", "##bc", "b", "é", "##é", "日本", "##本", "z",
        ]);
        let bytes = build_vocab_section(&tokens);
        let v = Vocab::new(&bytes).unwrap();
        for (id, t) in tokens.iter().enumerate() {
            let found = match t.strip_prefix("##") {
                Some(rest) => v.find(rest.as_bytes(), true),
                None => v.find(t.as_bytes(), false),
            };
            assert_eq!(found, Some(id as u32), "{t}");
        }
    }

    #[test]
    fn empty_vocabulary_is_valid_and_finds_nothing() {
        let bytes = build_vocab_section(&[]);
        let v = Vocab::new(&bytes).unwrap();
        assert_eq!(v.len(), 0);
        assert_eq!(v.longest_prefix(b"a", false), None);
        assert_eq!(v.longest_prefix(b"a", true), None);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = small();
        for len in 0..bytes.len() {
            assert!(Vocab::new(&bytes[..len]).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Vocab::new(&longer).is_err());
    }

    fn patched(at: usize, value: &[u8]) -> Vec<u8> {
        let mut b = small();
        b[at..at + value.len()].copy_from_slice(value);
        b
    }

    #[test]
    fn targeted_corruptions_are_rejected() {
        // small(): 12 tokens, 11 sorted entries ("un" twice), continuation block 0..5.
        let offsets_at = HEADER_LEN;
        let sorted_at = offsets_at + ENTRY * 13;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("magic", patched(0, b"XPV1")),
            ("n too large", patched(4, &13u32.to_le_bytes())),
            ("m larger than n", patched(8, &13u32.to_le_bytes())),
            ("c0 after c1", patched(12, &9u32.to_le_bytes())),
            ("c1 past m", patched(16, &12u32.to_le_bytes())),
            (
                "continuation block too short",
                patched(16, &4u32.to_le_bytes()),
            ),
            (
                "continuation block too long",
                patched(16, &6u32.to_le_bytes()),
            ),
            ("first offset not zero", patched(offsets_at, &[1, 0, 0])),
            (
                "offsets decrease",
                patched(offsets_at + 2 * ENTRY, &[1, 0, 0]),
            ),
            (
                "offset past the blob",
                patched(offsets_at + ENTRY, &[200, 0, 0]),
            ),
            (
                "sorted id out of range",
                patched(sorted_at, &[0xFF, 0xFF, 0]),
            ),
            ("sorted order broken", {
                let mut b = small();
                b.swap(sorted_at, sorted_at + ENTRY);
                b.swap(sorted_at + 1, sorted_at + ENTRY + 1);
                b
            }),
            ("invalid UTF-8", {
                let mut b = small();
                let last = b.len() - 1;
                b[last] = 0xFF;
                b
            }),
        ];
        for (what, bytes) in cases {
            assert!(Vocab::new(&bytes).is_err(), "{what}");
        }
    }

    #[test]
    fn random_corruption_never_panics() {
        let base = small();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut b = base.clone();
            for _ in 0..1 + (state % 4) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % b.len();
                b[at] = (state >> 32) as u8;
            }
            if let Ok(v) = Vocab::new(&b) {
                for id in 0..v.len() + 2 {
                    let _ = v.token(id);
                }
                let _ = v.longest_prefix(b"unaffable", false);
                let _ = v.longest_prefix(b"ffable", true);
            }
        }
    }
}
