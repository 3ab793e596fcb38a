//! The static model (Tier S): one int8 vector per token, mean-pooled.
//!
//! Each row `i` of the `StaticEmb` table is int8 with its own scale (token weights are folded in
//! before quantization); `StaticEmbRq[i]` = (multiplier, shift) brings it into one common i32
//! pooling scale, so the sum over tokens is exact integer arithmetic. The int8 output is scaled
//! like the encoder's pooling (largest |value| = 127), which also absorbs the division by the
//! token count. Scratch is only the token ids and one i32 accumulator row: a few hundred bytes.

use super::bert::pool;
use super::sections::as_i8;
use crate::error::Result;
use crate::fixed::I32s;
use crate::format::{DType, Package, SectionKind};

/// The token table and its per-row requantization, shape-checked at load.
#[derive(Clone, Copy)]
pub struct StaticView<'a> {
    rows: &'a [i8],
    rq: I32s<'a>,
    dim: usize,
}

impl<'a> StaticView<'a> {
    /// Resolves `StaticEmb` (i8 [vocab, dim]) and `StaticEmbRq` (i32 [vocab, 2]).
    pub fn resolve(p: &Package<'a>, vocab: usize, dim: usize) -> Result<Self> {
        Ok(StaticView {
            rows: as_i8(p.tensor(SectionKind::StaticEmb, 0, DType::I8, vocab, dim)?),
            rq: I32s(p.tensor(SectionKind::StaticEmbRq, 0, DType::I32, vocab, 2)?),
            dim,
        })
    }
}

/// i32 words of scratch after the ids: one accumulator row of `dim`.
pub fn scratch_words(dim: usize) -> usize {
    dim
}

/// Sums the requantized rows of `ids` into `acc` (length `dim`) and writes the int8 pooled
/// vector to `out`. Ids outside the table contribute nothing (callers validate them anyway).
pub fn embed(ids: &[u32], v: &StaticView<'_>, acc: &mut [i32], out: &mut [i8]) {
    let d = v.dim;
    let n = d.min(acc.len());
    let acc = &mut acc[..n];
    acc.fill(0);
    for &id in ids {
        let id = id as usize;
        let Some(row) = id.checked_mul(d).and_then(|s| v.rows.get(s..s + d)) else {
            continue;
        };
        let (m, sh) = v.rq.rq(id);
        if m == 0 {
            continue; // an all-zero row ([CLS], [SEP], [PAD]): nothing to add
        }
        for (a, &q) in acc.iter_mut().zip(row) {
            *a = a.saturating_add(rq_small(q, m, sh));
        }
    }
    // The accumulator is the "residual" of a single pooled row: reuse the encoder's rounding.
    pool(acc, 1, acc.len(), false, out);
}

/// [`crate::fixed::rq`] for an int8 operand, in i64 (|q * m| < 2^38) and saturated to i32.
#[inline(always)]
fn rq_small(q: i8, m: i32, shift: i32) -> i32 {
    crate::fixed::rq_i32(q as i64, m, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_rows_in_the_common_scale_and_pools_to_127() {
        // Two tokens, dim 2: row 0 = (127, -64) at scale 1, row 1 = (0, 127) at scale 1/2.
        let rows: [i8; 4] = [127, -64, 0, 127];
        let rq: [i32; 4] = [1 << 30, 30, 1 << 30, 31];
        let rq_bytes: std::vec::Vec<u8> = rq.iter().flat_map(|x| x.to_le_bytes()).collect();
        let v = StaticView {
            rows: &rows,
            rq: I32s(&rq_bytes),
            dim: 2,
        };
        let mut acc = [0i32; 2];
        let mut out = [0i8; 2];
        embed(&[0, 1, 7], &v, &mut acc, &mut out);
        assert_eq!(acc, [127, -64 + 64]);
        assert_eq!(out, [127, 0]);
    }
}
