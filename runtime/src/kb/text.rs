//! Byte-pair coded texts: decoding without a heap, into a caller's buffer or a formatter.

use core::fmt;

use super::MAX_CODE_DEPTH;
use crate::error::{Error, Result};

/// The code bitmap and pair table of a bank.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Codes<'a> {
    bitmap: &'a [u8],
    pairs: &'a [u8],
}

impl<'a> Codes<'a> {
    /// Validates the table: literals have a (0, 0) pair, and every code expands to literals
    /// within [`MAX_CODE_DEPTH`] levels (which also rules out cycles).
    pub(crate) fn new(table: &'a [u8]) -> Result<Self> {
        let (bitmap, pairs) = (
            table.get(..32).ok_or(Error::BankCorrupt)?,
            table.get(32..544).ok_or(Error::BankCorrupt)?,
        );
        let c = Codes { bitmap, pairs };
        const UNKNOWN: u8 = u8::MAX;
        let mut depth = [0u8; 256];
        for b in 0..=255u8 {
            if c.is_code(b) {
                depth[b as usize] = UNKNOWN;
            } else if c.pair(b) != (0, 0) {
                return Err(Error::BankCorrupt);
            }
        }
        // A code of depth d resolves by round d at the latest, whatever the order of the table.
        for _ in 0..MAX_CODE_DEPTH {
            let mut changed = false;
            for b in 0..=255u8 {
                let (l, r) = c.pair(b);
                let (dl, dr) = (depth[l as usize], depth[r as usize]);
                if depth[b as usize] == UNKNOWN && dl != UNKNOWN && dr != UNKNOWN {
                    depth[b as usize] = 1 + dl.max(dr);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if depth
            .iter()
            .any(|&d| d == UNKNOWN || d as usize > MAX_CODE_DEPTH)
        {
            return Err(Error::BankCorrupt);
        }
        Ok(c)
    }

    pub(crate) fn is_code(&self, b: u8) -> bool {
        self.bitmap
            .get(b as usize / 8)
            .is_some_and(|m| m & (1 << (b % 8)) != 0)
    }

    fn pair(&self, b: u8) -> (u8, u8) {
        let at = 2 * b as usize;
        (
            self.pairs.get(at).copied().unwrap_or(0),
            self.pairs.get(at + 1).copied().unwrap_or(0),
        )
    }

    pub(crate) fn any(&self) -> bool {
        self.bitmap.iter().any(|&m| m != 0)
    }
}

/// One text of a bank (an id, a question or an answer), possibly byte-pair coded.
///
/// Borrow it with [`Text::as_str`] when it is plain, or decode it with [`Text::decode_into`] or
/// through `Display` (`write!(uart, "{}", entry.answer)`), neither of which needs a heap.
#[derive(Clone, Copy, Debug)]
pub struct Text<'a> {
    coded: &'a [u8],
    codes: Codes<'a>,
}

/// Decoded bytes are handed out in valid UTF-8 pieces of at most this many bytes.
const CHUNK: usize = 64;

impl<'a> Text<'a> {
    pub(crate) fn new(coded: &'a [u8], codes: Codes<'a>) -> Self {
        Text { coded, codes }
    }

    /// The text itself when it contains no pair code (zero-copy), `None` otherwise.
    pub fn as_str(&self) -> Option<&'a str> {
        if self.coded.iter().any(|&b| self.codes.is_code(b)) {
            return None;
        }
        core::str::from_utf8(self.coded).ok()
    }

    /// Bytes the text takes in the bank.
    pub fn coded_len(&self) -> usize {
        self.coded.len()
    }

    /// Length of the decoded text in bytes.
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.expand(&mut |_| {
            n += 1;
            true
        });
        n
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.coded.is_empty()
    }

    /// Feeds every decoded byte to `f` until it returns false; false when the expansion stopped
    /// early (by `f`, or on a table that [`Codes::new`] would have refused).
    fn expand(&self, f: &mut dyn FnMut(u8) -> bool) -> bool {
        let mut stack = [0u8; MAX_CODE_DEPTH + 1];
        for &c in self.coded {
            let mut sp = 1;
            stack[0] = c;
            while sp > 0 {
                sp -= 1;
                let x = stack.get(sp).copied().unwrap_or(0);
                if self.codes.is_code(x) {
                    let (l, r) = self.codes.pair(x);
                    match stack.get_mut(sp..sp + 2) {
                        Some([a, b]) => {
                            // Right first: the stack pops the left half next.
                            *a = r;
                            *b = l;
                        }
                        _ => return false,
                    }
                    sp += 2;
                } else if !f(x) {
                    return false;
                }
            }
        }
        true
    }

    /// Hands the decoded text to `emit` in valid UTF-8 pieces, stopping when `emit` returns false;
    /// true when the whole text was handed out and is valid UTF-8.
    fn chunks(&self, emit: &mut dyn FnMut(&str) -> bool) -> bool {
        let mut buf = [0u8; CHUNK];
        let mut len = 0usize;
        let mut ok = true;
        // Emits the longest valid prefix of `buf` and keeps an incomplete trailing character.
        let mut flush = |buf: &mut [u8; CHUNK], len: &mut usize, last: bool| -> bool {
            let Some(filled) = buf.get(..*len) else {
                return false;
            };
            let (valid, complete) = match core::str::from_utf8(filled) {
                Ok(_) => (*len, true),
                Err(e) => (e.valid_up_to(), e.error_len().is_none() && !last),
            };
            if !complete {
                return false;
            }
            let s = buf
                .get(..valid)
                .and_then(|v| core::str::from_utf8(v).ok())
                .unwrap_or("");
            if !s.is_empty() && !emit(s) {
                return false;
            }
            buf.copy_within(valid..*len, 0);
            *len -= valid;
            true
        };
        let finished = self.expand(&mut |b| {
            if len == CHUNK && !flush(&mut buf, &mut len, false) {
                ok = false;
                return false;
            }
            if let Some(slot) = buf.get_mut(len) {
                *slot = b;
                len += 1;
            }
            true
        });
        finished && ok && flush(&mut buf, &mut len, true)
    }

    /// Whether the text decodes completely to valid UTF-8 within `budget` bytes, which it then
    /// reduces by the decoded length (checked once by the bank).
    pub(crate) fn check(&self, budget: &mut usize) -> bool {
        self.chunks(&mut |s| match budget.checked_sub(s.len()) {
            Some(left) => {
                *budget = left;
                true
            }
            None => false,
        })
    }

    /// Decodes into `buf` and returns the text, cut at a character boundary if `buf` is too short
    /// (compare its length with [`Text::len`] to detect the cut).
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> &'b str {
        let mut n = 0usize;
        self.chunks(&mut |s| {
            let room = buf.len() - n;
            let mut take = s.len().min(room);
            while !s.is_char_boundary(take) {
                take -= 1;
            }
            if let (Some(dst), Some(src)) = (buf.get_mut(n..n + take), s.as_bytes().get(..take)) {
                dst.copy_from_slice(src);
                n += take;
            }
            take == s.len()
        });
        buf.get(..n)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Whether the decoded text equals `s`, without decoding it anywhere.
    pub fn eq_str(&self, s: &str) -> bool {
        let mut rest = s.as_bytes();
        let whole = self.expand(&mut |b| match rest.split_first() {
            Some((&first, tail)) if first == b => {
                rest = tail;
                true
            }
            _ => false,
        });
        whole && rest.is_empty()
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.chunks(&mut |s| {
            result = f.write_str(s);
            result.is_ok()
        });
        result
    }
}
