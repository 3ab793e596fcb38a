//! Writing banks (host only): byte-pair coding of the texts, 4-bit packing, layout and checksum.

use std::string::String;
use std::vec;
use std::vec::Vec;

use super::*;

/// One entry to write: its texts and the model's int8 embeddings of its question and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankEntry {
    /// Identifier (printed by `ask`, matched by evaluations).
    pub id: String,
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
    /// int8 embedding of the question (model dimension).
    pub question_vector: Vec<i8>,
    /// int8 embedding of the answer (model dimension).
    pub answer_vector: Vec<i8>,
}

/// How a bank is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankOptions {
    /// Bits per question-vector element: 8 (the embedding as is) or 4 (half the flash).
    pub question_bits: u8,
    /// Bits per answer-vector element: 8 or 4.
    pub answer_bits: u8,
    /// Byte-pair code the texts (about 0.57 of plain English); off keeps every text borrowable as `&str`.
    pub compress: bool,
    /// Abstain threshold in score units.
    pub threshold: i32,
    /// Answer bias in score units.
    pub answer_bias: i32,
    /// Model tag (see [`package_tag`]), 0 when unknown.
    pub model_tag: u32,
}

impl Default for BankOptions {
    fn default() -> Self {
        BankOptions {
            question_bits: 4,
            answer_bits: 4,
            compress: true,
            threshold: NEVER_ABSTAIN,
            answer_bias: 0,
            model_tag: 0,
        }
    }
}

/// Collects entries and lays out a bank.
#[derive(Debug, Clone)]
pub struct BankWriter {
    dim: usize,
    options: BankOptions,
    entries: Vec<BankEntry>,
    lexicon: Option<LexiconSpec>,
}

/// What [`BankWriter::lexicon`] was given.
#[derive(Debug, Clone)]
struct LexiconSpec {
    terms: Vec<Vec<u16>>,
    vocab: usize,
    weight: i32,
}

impl BankWriter {
    /// Starts a bank of vectors of `dim` elements.
    pub fn new(dim: usize, options: BankOptions) -> Self {
        BankWriter {
            dim,
            options,
            entries: Vec::new(),
            lexicon: None,
        }
    }

    /// Adds a [`super::lexicon`]: `terms` are each entry's question terms (as
    /// [`super::lexicon::terms`] gives them), `vocab` the tokenizer's vocabulary size and `weight`
    /// how much the lexical match counts (score units). The IDF is computed over the entries.
    pub fn lexicon(&mut self, terms: Vec<Vec<u16>>, vocab: usize, weight: i32) {
        self.lexicon = Some(LexiconSpec {
            terms,
            vocab,
            weight,
        });
    }

    /// Adds an entry.
    pub fn push(&mut self, entry: BankEntry) {
        self.entries.push(entry);
    }

    /// Number of entries so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lays the bank out and appends its checksum. Refuses vectors of another dimension
    /// ([`Error::BankDimensionMismatch`]) and unsupported widths or sizes ([`Error::BankCorrupt`]).
    pub fn finish(&self) -> Result<Vec<u8>> {
        let o = &self.options;
        let dim = self.dim;
        let row_q = row_bytes(o.question_bits, dim).ok_or(Error::BankCorrupt)?;
        let row_a = row_bytes(o.answer_bits, dim).ok_or(Error::BankCorrupt)?;
        if dim == 0 || dim > MAX_BANK_DIM {
            return Err(Error::BankCorrupt);
        }
        if self
            .entries
            .iter()
            .any(|e| e.question_vector.len() != dim || e.answer_vector.len() != dim)
        {
            return Err(Error::BankDimensionMismatch);
        }
        let mut texts: Vec<Vec<u8>> = Vec::with_capacity(3 * self.entries.len());
        for e in &self.entries {
            for t in [&e.id, &e.question, &e.answer] {
                texts.push(t.as_bytes().to_vec());
            }
        }
        let plain: Vec<Vec<u8>> = texts.clone();
        let mut table = if o.compress {
            train_codes(&mut texts)
        } else {
            [None; 256]
        };
        let coded_len: usize = texts.iter().map(Vec::len).sum();
        let plain_len: usize = plain.iter().map(Vec::len).sum();
        if plain_len > decode_budget(coded_len) {
            // Text this repetitive would exceed what readers agree to decode: store it plain.
            texts = plain;
            table = [None; 256];
        }

        let mut out = Vec::new();
        out.extend_from_slice(&BANK_MAGIC);
        out.extend_from_slice(&BANK_VERSION.to_le_bytes());
        let flags = if self.lexicon.is_some() {
            FLAG_LEXICON
        } else {
            0
        };
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // total length, patched below
        out.extend_from_slice(&u32_len(dim)?.to_le_bytes());
        out.extend_from_slice(&u32_len(self.entries.len())?.to_le_bytes());
        out.extend_from_slice(&[o.question_bits, o.answer_bits, 0, 0]);
        out.extend_from_slice(&o.threshold.to_le_bytes());
        out.extend_from_slice(&o.answer_bias.to_le_bytes());
        out.extend_from_slice(&o.model_tag.to_le_bytes());
        let text_len: usize = texts.iter().map(Vec::len).sum();
        out.extend_from_slice(&u32_len(text_len)?.to_le_bytes());
        let weight = self.lexicon.as_ref().map_or(0, |l| l.weight);
        out.extend_from_slice(&weight.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        debug_assert_eq!(out.len(), HEADER_LEN);

        let mut bitmap = [0u8; 32];
        let mut pairs = [0u8; 512];
        for (b, p) in table.iter().enumerate() {
            if let Some((l, r)) = p {
                bitmap[b / 8] |= 1 << (b % 8);
                pairs[2 * b] = *l;
                pairs[2 * b + 1] = *r;
            }
        }
        out.extend_from_slice(&bitmap);
        out.extend_from_slice(&pairs);

        let mut end = 0usize;
        for t in &texts {
            end += t.len();
            out.extend_from_slice(&u32_len(end)?.to_le_bytes());
        }
        for e in &self.entries {
            pack_row(&mut out, &e.question_vector, o.question_bits, row_q);
        }
        for e in &self.entries {
            pack_row(&mut out, &e.answer_vector, o.answer_bits, row_a);
        }
        for t in &texts {
            out.extend_from_slice(t);
        }
        if let Some(l) = &self.lexicon {
            write_lexicon(&mut out, l, self.entries.len())?;
        }
        let total = u32_len(out.len() + 4)?;
        out[8..12].copy_from_slice(&total.to_le_bytes());
        let crc = CHECKSUM.checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }
}

/// The lexicon's bytes (layout in [`super::lexicon`]); the IDF is the entries' own.
fn write_lexicon(out: &mut Vec<u8>, l: &LexiconSpec, count: usize) -> Result<()> {
    use super::lexicon::{IDF_ONE, MAX_TERMS};
    let sorted = |t: &[u16]| t.windows(2).all(|w| w[0] < w[1]);
    if l.terms.len() != count
        || l.vocab == 0
        || l.vocab > 1 << 16
        || l.terms
            .iter()
            .any(|t| t.len() > MAX_TERMS || !sorted(t) || t.iter().any(|&x| x as usize >= l.vocab))
    {
        return Err(Error::BankCorrupt);
    }
    let mut df = vec![0u32; l.vocab];
    for t in &l.terms {
        for &x in t {
            df[x as usize] += 1;
        }
    }
    let n = count as f64;
    out.extend_from_slice(&u32_len(l.vocab)?.to_le_bytes());
    let total: usize = l.terms.iter().map(Vec::len).sum();
    out.extend_from_slice(&u32_len(total)?.to_le_bytes());
    out.extend(df.iter().map(|&d| {
        let idf = ((1.0 + n) / (1.0 + d as f64)).ln() + 1.0;
        (idf * IDF_ONE as f64).round().clamp(1.0, 255.0) as u8
    }));
    let mut end = 0usize;
    for t in &l.terms {
        end += t.len();
        out.extend_from_slice(&u32_len(end)?.to_le_bytes());
    }
    for t in &l.terms {
        for &x in t {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(())
}

fn u32_len(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::BankCorrupt)
}

fn pack_row(out: &mut Vec<u8>, v: &[i8], bits: u8, row: usize) {
    let start = out.len();
    if bits == 8 {
        // -128 is kept out of stored rows (see the layout notes); the model never emits it anyway.
        out.extend(v.iter().map(|&x| x.max(-127) as u8));
    } else {
        for pair in quantize_4bit(v).chunks(2) {
            // An odd dimension's last byte pads its high nibble with 0.
            out.push(crate::format::int4::pack(
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ));
        }
    }
    out.resize(start + row, 0);
}

/// Requantizes an int8 vector to -7..=7, picking the clipping level that keeps the cosine to the
/// original highest (clipping a few large elements buys resolution for all the others).
pub fn quantize_4bit(v: &[i8]) -> Vec<i8> {
    let max = v.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0) as f64;
    if max == 0.0 {
        return vec![0; v.len()];
    }
    let norm_v = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let mut best: (f64, Vec<i8>) = (f64::NEG_INFINITY, Vec::new());
    const STEPS: u32 = 48;
    for step in 0..=STEPS {
        let clip = max * (0.3 + 0.7 * step as f64 / STEPS as f64);
        let q: Vec<i8> = v
            .iter()
            .map(|&x| (x as f64 * 7.0 / clip).round().clamp(-7.0, 7.0) as i8)
            .collect();
        let dot: f64 = q.iter().zip(v).map(|(&a, &b)| a as f64 * b as f64).sum();
        let norm_q = q.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        let cos = if norm_q > 0.0 {
            dot / (norm_q * norm_v)
        } else {
            -1.0
        };
        if cos > best.0 {
            best = (cos, q);
        }
    }
    best.1
}

/// Greedy byte-pair coding (Gage, 1994) over all texts at once: repeatedly replaces the most
/// frequent adjacent pair with a byte value no text uses, while such values remain. Rewrites
/// `texts` in place and returns the table (code -> pair).
fn train_codes(texts: &mut [Vec<u8>]) -> [Option<(u8, u8)>; 256] {
    let mut used = [false; 256];
    for t in texts.iter() {
        for &b in t {
            used[b as usize] = true;
        }
    }
    let mut table = [None; 256];
    let mut depth = [0usize; 256];
    let mut counts = vec![0u32; 1 << 16];
    for code in (0..=255u8).filter(|&b| !used[b as usize]) {
        counts.iter_mut().for_each(|c| *c = 0);
        for t in texts.iter() {
            for w in t.windows(2) {
                counts[(w[0] as usize) << 8 | w[1] as usize] += 1;
            }
        }
        let mut best: Option<(u32, usize)> = None;
        for (p, &n) in counts.iter().enumerate() {
            // A pair seen once saves nothing once its own table slot is counted as spent.
            if n < 2 || best.is_some_and(|(bn, _)| n <= bn) {
                continue;
            }
            if depth[p >> 8].max(depth[p & 0xff]) < MAX_CODE_DEPTH {
                best = Some((n, p));
            }
        }
        let Some((_, p)) = best else { break };
        let (a, b) = ((p >> 8) as u8, (p & 0xff) as u8);
        for t in texts.iter_mut() {
            let mut w = 0;
            let mut r = 0;
            while r < t.len() {
                if r + 1 < t.len() && t[r] == a && t[r + 1] == b {
                    t[w] = code;
                    r += 2;
                } else {
                    t[w] = t[r];
                    r += 1;
                }
                w += 1;
            }
            t.truncate(w);
        }
        table[code as usize] = Some((a, b));
        depth[code as usize] = 1 + depth[a as usize].max(depth[b as usize]);
    }
    table
}

/// Sets the abstain threshold of an existing bank (after calibrating on it) and re-seals it.
pub fn patch_threshold(bytes: &mut [u8], threshold: i32) -> Result<()> {
    let total = Bank::new_checked(bytes)?.bytes().len();
    bytes[24..28].copy_from_slice(&threshold.to_le_bytes());
    let crc = CHECKSUM.checksum(&bytes[..total - 4]);
    bytes[total - 4..total].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}
