//! Knowledge bank: FAQ entries (id, question, answer) with their embeddings, read in place from
//! flash and searched with integer arithmetic only, so a device and a host rank identically.
//!
//! [`Bank::new_checked`] validates everything once (magic, version, bounds, checksum, code table,
//! entry table, every text's UTF-8, every vector's range); afterwards no accessor can panic or fail
//! on the bank's contents. Nothing is copied and nothing is allocated.
//!
//! # Layout (`.pithkb`, format version 1, all integers little-endian, no padding)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `PIKB` |
//! | 4 | 2 | format version (1) |
//! | 6 | 2 | flags: bit 0 set when a [`lexicon`] follows the text area; other bits are refused |
//! | 8 | 4 | total length in bytes, checksum included (trailing bytes after it are ignored) |
//! | 12 | 4 | dimension `D` of the vectors (the model's output dimension) |
//! | 16 | 4 | number of entries `N` |
//! | 20 | 1 | bits per question-vector element `BQ` (8 or 4) |
//! | 21 | 1 | bits per answer-vector element `BA` (8 or 4) |
//! | 22 | 2 | reserved (0) |
//! | 24 | 4 | abstain threshold, i32 score units ([`SCORE_ONE`] = cosine 1.0); [`NEVER_ABSTAIN`] disables |
//! | 28 | 4 | answer bias, i32 score units, added to the answer cosine before the `max` of [`Index::Both`] |
//! | 32 | 4 | model tag: the CRC-32 trailing the `.pith` package that embedded the entries (0 = unknown) |
//! | 36 | 4 | length `T` of the coded text area |
//! | 40 | 4 | lexical weight, i32 score units: how much the [`lexicon`]'s match adds to an entry's score (0 without a lexicon) |
//! | 44 | 4 | reserved (0) |
//! | 48 | 32 | code bitmap: bit `b % 8` of byte `b / 8` set when byte value `b` is a pair code |
//! | 80 | 512 | pair table: bytes `2b, 2b+1` = (left, right) expansion of code `b` (0, 0 for literals) |
//! | 592 | 12 N | entry table: per entry the end offsets (u32, into the text area) of its id, question, answer |
//! | … | N·rowQ | question vectors, one row of `rowQ` bytes per entry |
//! | … | N·rowA | answer vectors, one row of `rowA` bytes per entry |
//! | … | T | coded text area: for each entry its id, question and answer, back to back |
//! | … | | the [`lexicon`] of the questions, when flag bit 0 is set |
//! | … | 4 | CRC-32/ISO-HDLC ([`crate::format::CHECKSUM`]) of every byte before it |
//!
//! A row of 8-bit elements is `D` i8 values in -127..=127 (never -128, so the SIMD dot product of
//! the host stays exact). A row of 4-bit elements is `ceil(D / 2)` bytes: element `2j` in the low
//! nibble of byte `j`, element `2j + 1` in the high nibble, each a two's-complement nibble.
//! Rows carry no scale: only cosines are ever taken, and they do not depend on it.
//!
//! Texts are byte-pair coded: a byte whose bit is set in the bitmap stands for its two table bytes,
//! each of which may be a code again (at most [`MAX_CODE_DEPTH`] levels; cycles are refused); every
//! other byte stands for itself. A text whose bytes are all literals is plain UTF-8 and can be
//! borrowed as `&str`; an empty bitmap means the whole bank is plain text. Each text decodes to
//! valid UTF-8. Entry `i`'s id starts where entry `i - 1`'s answer ends (0 for the first entry),
//! and the last answer ends at `T`. All texts together decode to at most `64 T + 65536` bytes
//! ([`decode_budget`]), which bounds the work of validating a hostile bank.
//!
//! # Scores
//!
//! A cosine is `(dot << 32) / isqrt((|q|² |v|²) << 32)` in 128-bit integer arithmetic (floor root,
//! division truncated toward zero, clamped to ±[`SCORE_ONE`]): `dot / (|q| |v|)` in units of 2^-16. [`Index::Both`] scores an entry `max(cos_question, cos_answer + bias)`: a
//! rephrased question usually matches the stored question, but some users describe the problem
//! the way the answer does, and the `max` lets either match count without diluting the other (a
//! weighted sum of the two blurs the sharp question match; see the project README for numbers).
//! Ties rank the lower entry index first.

pub mod lexicon;
mod search;
mod text;
#[cfg(feature = "std")]
mod write;

pub use lexicon::Lexicon;
pub use search::{cosine_i8, Hit, Index, Reply};
pub use text::Text;
#[cfg(feature = "std")]
pub use write::{patch_threshold, quantize_4bit, BankEntry, BankOptions, BankWriter};

use crate::error::{Error, Result};
use crate::format::{Package, SectionKind, CHECKSUM};
use crate::le::{u16_at, u32_at};
use crate::Model;
use text::Codes;

/// First four bytes of every bank.
pub const BANK_MAGIC: [u8; 4] = *b"PIKB";
/// The bank format version this runtime reads and writes.
pub const BANK_VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 48;
/// Size of the code bitmap plus the pair table.
pub const CODE_TABLE_LEN: usize = 32 + 512;
/// Size of one entry record (three u32 end offsets).
pub const ENTRY_RECORD_LEN: usize = 12;
/// Deepest nesting of pair codes; bounds the decoder's stack (one byte per level).
pub const MAX_CODE_DEPTH: usize = 24;
/// Largest dimension a bank may declare; keeps every integer dot product far inside i32.
pub const MAX_BANK_DIM: usize = 8192;
/// Most decoded text a bank may hold per coded text byte (plus [`DECODE_ALLOWANCE`]): bounds the
/// time validation can take on a hostile bank whose codes nest into huge expansions.
pub const MAX_EXPANSION: usize = 64;
/// Decoded bytes every bank may hold regardless of its coded size.
pub const DECODE_ALLOWANCE: usize = 1 << 16;

/// Most decoded text bytes a bank with `coded` bytes of coded text may hold.
pub const fn decode_budget(coded: usize) -> usize {
    coded
        .saturating_mul(MAX_EXPANSION)
        .saturating_add(DECODE_ALLOWANCE)
}
/// The score of a cosine of exactly 1.0.
pub const SCORE_ONE: i32 = 1 << 16;
/// Threshold value meaning "never abstain".
pub const NEVER_ABSTAIN: i32 = i32::MIN;

const ENTRIES_AT: usize = HEADER_LEN + CODE_TABLE_LEN;
/// Flag bit: a lexicon follows the text area.
pub const FLAG_LEXICON: u16 = 1;

/// Bytes of one stored vector of `dim` elements at `bits` per element; `None` for unsupported widths.
pub fn row_bytes(bits: u8, dim: usize) -> Option<usize> {
    match bits {
        8 => Some(dim),
        4 => Some(dim.div_ceil(2)),
        _ => None,
    }
}

/// Cosine in score units from an exact dot product and squared lengths.
pub fn cosine_score(dot: i64, norm2_a: i64, norm2_b: i64) -> i32 {
    if norm2_a <= 0 || norm2_b <= 0 {
        return 0;
    }
    // The root is taken 2^16 finer than the score so that its truncation stays far below one
    // score unit even for short 4-bit rows (a plain integer root would cost several units there).
    let den = crate::fixed::isqrt_u128((norm2_a as u128 * norm2_b as u128) << 32);
    if den == 0 {
        return 0;
    }
    let q = ((dot as i128) << 32) / den as i128;
    q.clamp(-(SCORE_ONE as i128), SCORE_ONE as i128) as i32
}

/// Converts a score to the cosine it stands for.
pub fn score_to_cosine(score: i32) -> f32 {
    score as f32 / SCORE_ONE as f32
}

/// One stored vector (question or answer side of an entry), read in place.
#[derive(Clone, Copy, Debug)]
pub struct Vector<'a> {
    bits: u8,
    dim: usize,
    raw: &'a [u8],
}

impl<'a> Vector<'a> {
    /// Bits per element (8 or 4).
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Number of elements.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The stored bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Element `j` (0 past the end).
    pub fn get(&self, j: usize) -> i8 {
        if j >= self.dim {
            return 0;
        }
        match self.bits {
            8 => self.raw.get(j).map_or(0, |&b| b as i8),
            _ => self.raw.get(j / 2).map_or(0, |&b| nibble(b, j % 2 == 1)),
        }
    }

    /// Writes the elements into `out` (as many as fit).
    pub fn unpack(&self, out: &mut [i8]) {
        for (j, o) in out.iter_mut().enumerate().take(self.dim) {
            *o = self.get(j);
        }
    }

    /// Exact dot product with `query` over the shorter length.
    pub fn dot(&self, query: &[i8]) -> i64 {
        match self.bits {
            8 => crate::kernels::dot_i8(query, as_i8(self.raw)) as i64,
            _ => {
                let mut acc = 0i64;
                for (pair, &b) in query.chunks(2).zip(self.raw) {
                    let lo = pair
                        .first()
                        .map_or(0, |&x| x as i64 * nibble(b, false) as i64);
                    let hi = pair
                        .get(1)
                        .map_or(0, |&x| x as i64 * nibble(b, true) as i64);
                    acc += lo + hi;
                }
                acc
            }
        }
    }

    /// Squared length.
    pub fn norm2(&self) -> i64 {
        match self.bits {
            8 => {
                let v = as_i8(self.raw);
                crate::kernels::dot_i8(v, v) as i64
            }
            _ => {
                let mut acc = 0i64;
                for (j, &b) in self.raw.iter().enumerate() {
                    let lo = nibble(b, false) as i64;
                    // The high nibble of an odd dimension's last byte is padding.
                    let hi = if 2 * j + 1 < self.dim {
                        nibble(b, true) as i64
                    } else {
                        0
                    };
                    acc += lo * lo + hi * hi;
                }
                acc
            }
        }
    }
}

fn nibble(b: u8, high: bool) -> i8 {
    let (even, odd) = crate::format::int4::nibbles(b);
    if high {
        odd
    } else {
        even
    }
}

fn as_i8(b: &[u8]) -> &[i8] {
    bytemuck::try_cast_slice(b).unwrap_or(&[])
}

/// One entry of the bank: its texts and vectors, all borrowed from the bank bytes.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    /// The entry's identifier (the source's `id`, or its ordinal).
    pub id: Text<'a>,
    /// The question the entry answers.
    pub question: Text<'a>,
    /// The answer the device speaks.
    pub answer: Text<'a>,
    /// Embedding of the question.
    pub question_vector: Vector<'a>,
    /// Embedding of the answer.
    pub answer_vector: Vector<'a>,
}

/// A validated, zero-copy view of a knowledge bank. Cheap to copy; borrows the bytes.
#[derive(Clone, Copy)]
pub struct Bank<'a> {
    bytes: &'a [u8],
    dim: usize,
    count: usize,
    question_bits: u8,
    answer_bits: u8,
    threshold: i32,
    answer_bias: i32,
    model_tag: u32,
    codes: Codes<'a>,
    entries: &'a [u8],
    question_rows: &'a [u8],
    answer_rows: &'a [u8],
    text: &'a [u8],
    lexicon: Option<Lexicon<'a>>,
}

impl<'a> Bank<'a> {
    /// Validates the whole bank (see the module documentation) and returns a view of it.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN + 4 {
            return Err(Error::BankCorrupt);
        }
        if bytes.get(0..4) != Some(&BANK_MAGIC[..]) {
            return Err(Error::BankCorrupt);
        }
        let field = |at| u32_at(bytes, at).ok_or(Error::BankCorrupt);
        let version = u16_at(bytes, 4).ok_or(Error::BankCorrupt)?;
        if version != BANK_VERSION {
            return Err(Error::BankUnsupportedVersion(version));
        }
        let total = field(8)? as usize;
        if total > bytes.len() || total < HEADER_LEN + CODE_TABLE_LEN + 4 {
            return Err(Error::BankCorrupt);
        }
        // Trailing bytes beyond `total` are allowed: flash images are often padded.
        let bytes = bytes.get(..total).ok_or(Error::BankCorrupt)?;
        let body_end = total - 4;
        let (body, stored_crc) = (
            bytes.get(..body_end).ok_or(Error::BankCorrupt)?,
            field(body_end)?,
        );
        if CHECKSUM.checksum(body) != stored_crc {
            return Err(Error::BankCorrupt);
        }
        let flags = u16_at(bytes, 6).ok_or(Error::BankCorrupt)?;
        let reserved = u16_at(bytes, 22).ok_or(Error::BankCorrupt)? as u32 | field(44)?;
        let has_lexicon = flags == FLAG_LEXICON;
        let weight = field(40)? as i32;
        if flags & !FLAG_LEXICON != 0 || reserved != 0 || (!has_lexicon && weight != 0) {
            return Err(Error::BankCorrupt);
        }
        let dim = field(12)? as usize;
        let count = field(16)? as usize;
        let (question_bits, answer_bits) = (
            bytes.get(20).copied().unwrap_or(0),
            bytes.get(21).copied().unwrap_or(0),
        );
        let row_q = row_bytes(question_bits, dim).ok_or(Error::BankCorrupt)?;
        let row_a = row_bytes(answer_bits, dim).ok_or(Error::BankCorrupt)?;
        if dim == 0 || dim > MAX_BANK_DIM {
            return Err(Error::BankCorrupt);
        }
        let text_len = field(36)? as usize;
        // Every size is checked before any slice is taken, so a huge count cannot overflow.
        let layout = (|| {
            let entries_end = ENTRIES_AT.checked_add(count.checked_mul(ENTRY_RECORD_LEN)?)?;
            let q_end = entries_end.checked_add(count.checked_mul(row_q)?)?;
            let a_end = q_end.checked_add(count.checked_mul(row_a)?)?;
            let text_end = a_end.checked_add(text_len)?;
            Some((entries_end, q_end, a_end, text_end))
        })();
        let (entries_end, q_end, a_end, text_end) = layout.ok_or(Error::BankCorrupt)?;
        if text_end > body_end || (!has_lexicon && text_end != body_end) {
            return Err(Error::BankCorrupt);
        }
        let slice = |from: usize, to: usize| bytes.get(from..to).ok_or(Error::BankCorrupt);
        let lexicon = match has_lexicon {
            true => Some(Lexicon::new_checked(
                slice(text_end, body_end)?,
                count,
                weight,
            )?),
            false => None,
        };
        let codes = Codes::new(slice(HEADER_LEN, ENTRIES_AT)?)?;
        let bank = Bank {
            bytes,
            dim,
            count,
            question_bits,
            answer_bits,
            threshold: field(24)? as i32,
            answer_bias: field(28)? as i32,
            model_tag: field(32)?,
            codes,
            entries: slice(ENTRIES_AT, entries_end)?,
            question_rows: slice(entries_end, q_end)?,
            answer_rows: slice(q_end, a_end)?,
            text: slice(a_end, text_end)?,
            lexicon,
        };
        bank.check_entries()?;
        // -128 would break the exactness contract of the host's SIMD dot product.
        for (bits, rows) in [
            (question_bits, bank.question_rows),
            (answer_bits, bank.answer_rows),
        ] {
            if bits == 8 && rows.contains(&0x80) {
                return Err(Error::BankCorrupt);
            }
        }
        Ok(bank)
    }

    /// [`Bank::new_checked`], then refuses a bank built for another model: its dimension must be
    /// the model's, and a recorded model tag must match the package's checksum.
    pub fn for_model(bytes: &'a [u8], model: &Model<'_>) -> Result<Self> {
        let bank = Self::new_checked(bytes)?;
        bank.check_model(model)?;
        Ok(bank)
    }

    /// The bank stored as the [`SectionKind::Bank`] section of a package (one flash image for
    /// model and bank). Its model tag is not compared: a package cannot contain its own checksum.
    pub fn from_package(package: &Package<'a>) -> Result<Self> {
        let (_, data) = package
            .find(SectionKind::Bank, 0)
            .ok_or(Error::PackageMissingSection)?;
        let bank = Self::new_checked(data)?;
        if bank.dim != package.header().model.hidden as usize {
            return Err(Error::BankDimensionMismatch);
        }
        Ok(bank)
    }

    /// Checks that `model` produces the vectors this bank was built from.
    pub fn check_model(&self, model: &Model<'_>) -> Result<()> {
        if model.dim() != self.dim {
            return Err(Error::BankDimensionMismatch);
        }
        if self.model_tag != 0 && self.model_tag != package_tag(model.package()) {
            return Err(Error::BankModelMismatch);
        }
        Ok(())
    }

    fn check_entries(&self) -> Result<()> {
        let mut start = 0usize;
        let mut budget = decode_budget(self.text.len());
        for i in 0..self.count {
            for k in 0..3 {
                let end = u32_at(self.entries, i * ENTRY_RECORD_LEN + 4 * k)
                    .ok_or(Error::BankCorrupt)? as usize;
                let coded = self.text.get(start..end).ok_or(Error::BankCorrupt)?;
                if !Text::new(coded, self.codes).check(&mut budget) {
                    return Err(Error::BankCorrupt);
                }
                start = end;
            }
        }
        if start != self.text.len() {
            return Err(Error::BankCorrupt);
        }
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the bank has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Dimension of the vectors (the model's output dimension).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bits per element of the question vectors and of the answer vectors.
    pub fn bits(&self) -> (u8, u8) {
        (self.question_bits, self.answer_bits)
    }

    /// The abstain threshold in score units ([`NEVER_ABSTAIN`] when disabled).
    pub fn threshold(&self) -> i32 {
        self.threshold
    }

    /// Added to the answer cosine before [`Index::Both`] takes the `max`.
    pub fn answer_bias(&self) -> i32 {
        self.answer_bias
    }

    /// The lexicon of the entries' questions, when the bank carries one.
    pub fn lexicon(&self) -> Option<Lexicon<'a>> {
        self.lexicon
    }

    /// Checksum of the package that embedded the entries (0 when not recorded).
    pub fn model_tag(&self) -> u32 {
        self.model_tag
    }

    /// The validated bytes (up to and including the checksum).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Bytes taken by the coded texts.
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// Whether texts are byte-pair coded (otherwise every text is plain UTF-8 borrowable as `&str`).
    pub fn is_compressed(&self) -> bool {
        self.codes.any()
    }

    /// Entry `i`, or `None` past the end.
    pub fn entry(&self, i: usize) -> Option<Entry<'a>> {
        if i >= self.count {
            return None;
        }
        let end = |k: usize| u32_at(self.entries, i * ENTRY_RECORD_LEN + 4 * k).map(|v| v as usize);
        let start = if i == 0 {
            Some(0)
        } else {
            u32_at(self.entries, i * ENTRY_RECORD_LEN - 4).map(|v| v as usize)
        };
        let (s, e0, e1, e2) = (start?, end(0)?, end(1)?, end(2)?);
        let text = |a: usize, b: usize| Text::new(self.text.get(a..b).unwrap_or(&[]), self.codes);
        let row = |rows: &'a [u8], bits: u8| {
            let n = row_bytes(bits, self.dim).unwrap_or(0);
            Vector {
                bits,
                dim: self.dim,
                raw: rows.get(i * n..(i + 1) * n).unwrap_or(&[]),
            }
        };
        Some(Entry {
            id: text(s, e0),
            question: text(e0, e1),
            answer: text(e1, e2),
            question_vector: row(self.question_rows, self.question_bits),
            answer_vector: row(self.answer_rows, self.answer_bits),
        })
    }

    /// The entries in order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        (0..self.count).filter_map(move |i| self.entry(i))
    }

    /// Index of the entry whose id is `id`.
    pub fn find_id(&self, id: &str) -> Option<usize> {
        self.entries().position(|e| e.id.eq_str(id))
    }
}

/// The model tag of a package: the CRC-32 stored in its last four bytes.
pub fn package_tag(package: &Package<'_>) -> u32 {
    let b = package.bytes();
    b.len()
        .checked_sub(4)
        .and_then(|at| u32_at(b, at))
        .unwrap_or(0)
}
