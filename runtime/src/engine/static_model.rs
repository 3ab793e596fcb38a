//! The static model (Tier S): one int8 or int4 vector per token, mean-pooled, optionally followed
//! by a small head.
//!
//! Each row `i` of the token table has its own scale (token weights are folded in before
//! quantization); `StaticEmbRq[i]` = (multiplier, shift) brings it into one common i32 pooling
//! scale, so the sum over tokens is exact integer arithmetic. The table is `StaticEmb` (one i8 a
//! value) or `StaticEmb4` (two 4-bit values a byte: half the flash, so twice the vocabulary in
//! the same budget). The int8 output is scaled like the encoder's pooling (largest |value| =
//! 127), which also absorbs the division by the token count.
//!
//! The head (a package whose header has `ffn > 0`): `y = x + down(act(up(x)))` on the pooled
//! int8 vector `x`, an encoder FFN block without its LayerNorm, stored in layer 0's FFN sections
//! (`W1 B1 Rq1`, `GeluTable` holding the activation, `W2 B2 Rq2`) and run by the encoder's own
//! linear kernels, then pooled to int8 again. A bag of tokens can only add its rows; the head
//! lets the words of a sentence act on each other once (a negation on what it negates), for
//! `2 * dim * ffn` multiply-accumulates. Scratch is the token ids, one i32 row of `dim` and the
//! head's `ffn` int8 activations: a few hundred bytes.

use super::bert::{linear, pool};
use super::sections::{self, as_i8, Linear};
use super::words_for_bytes;
use crate::error::{Error, Result};
use crate::fixed::I32s;
use crate::format::int4::{nibbles, I4_MAX};
use crate::format::layout::{DOWN, GELU_LEN, UP};
use crate::format::{DType, Package, SectionKind};
use crate::kernels::Epilogue;

/// The head's residual holds the pooled int8 vector times `2^HEAD_RESIDUAL_SHIFT`: the units
/// its down projection's requantization adds in (`pith quantize` reads this constant).
pub const HEAD_RESIDUAL_SHIFT: u32 = 8;

/// How the table stores its values.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// `StaticEmb`: `dim` i8 values a row.
    I8(&'a [i8]),
    /// `StaticEmb4`: `dim / 2` bytes a row, the even column in the low nibble.
    I4(&'a [u8]),
}

/// The head's two linears and the activation table between them.
#[derive(Clone, Copy)]
struct Head<'a> {
    up: Linear<'a>,
    act: &'a [i8],
    down: Linear<'a>,
    ffn: usize,
}

/// The token table, its per-row requantization and the head, shape-checked at load.
#[derive(Clone, Copy)]
pub struct StaticView<'a> {
    rows: Rows<'a>,
    rq: I32s<'a>,
    dim: usize,
    head: Option<Head<'a>>,
}

impl<'a> StaticView<'a> {
    /// Resolves `StaticEmb4` (u8 [vocab, dim / 2]) if the package has it, else `StaticEmb`
    /// (i8 [vocab, dim]), and `StaticEmbRq` (i32 [vocab, 2]); with `ffn > 0`, the head's layer-0
    /// FFN sections and its int8 activation table.
    pub fn resolve(p: &Package<'a>, vocab: usize, dim: usize, ffn: usize) -> Result<Self> {
        let rows = if p.find(SectionKind::StaticEmb4, 0).is_some() {
            if !dim.is_multiple_of(2) {
                return Err(Error::PackageBadSection);
            }
            Rows::I4(p.tensor(SectionKind::StaticEmb4, 0, DType::U8, vocab, dim / 2)?)
        } else {
            Rows::I8(as_i8(p.tensor(
                SectionKind::StaticEmb,
                0,
                DType::I8,
                vocab,
                dim,
            )?))
        };
        let head = match ffn {
            0 => None,
            _ => Some(Head {
                up: sections::linear(p, 0, UP, dim, ffn)?,
                act: as_i8(p.tensor(SectionKind::GeluTable, 0, DType::I8, 1, GELU_LEN)?),
                down: sections::linear(p, 0, DOWN, dim, ffn)?,
                ffn,
            }),
        };
        Ok(StaticView {
            rows,
            rq: I32s(p.tensor(SectionKind::StaticEmbRq, 0, DType::I32, vocab, 2)?),
            dim,
            head,
        })
    }

    /// Whether the package has a head.
    pub fn has_head(&self) -> bool {
        self.head.is_some()
    }
}

/// i32 words of scratch after the ids: one accumulator row of `dim`, then the head's `ffn` int8
/// activations (`ffn` is 0 without a head).
pub fn scratch_words(dim: usize, ffn: usize) -> usize {
    dim + words_for_bytes(ffn)
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
        // Past the table's end the pair reads as zeros: such ids add nothing either.
        let (m, sh) = v.rq.rq(id);
        if m == 0 {
            continue; // an all-zero row ([CLS], [SEP], [PAD]): nothing to add
        }
        match v.rows {
            Rows::I8(rows) => {
                let Some(row) = id.checked_mul(d).and_then(|s| rows.get(s..s + d)) else {
                    continue;
                };
                for (a, &q) in acc.iter_mut().zip(row) {
                    *a = a.saturating_add(rq_small(q, m, sh));
                }
            }
            Rows::I4(rows) => {
                let h = d / 2;
                let Some(row) = id.checked_mul(h).and_then(|s| rows.get(s..s + h)) else {
                    continue;
                };
                // Fifteen values can occur: requantize each once, then look them up (the
                // same numbers as `rq_small` per value, without a 64-bit product per column).
                let mut lut = [0i32; 2 * I4_MAX as usize + 1];
                for (q, l) in (-I4_MAX..=I4_MAX).zip(lut.iter_mut()) {
                    *l = rq_small(q, m, sh);
                }
                let at = |q: i8| lut[(q.clamp(-I4_MAX, I4_MAX) + I4_MAX) as usize];
                for (pair, &b) in acc.chunks_exact_mut(2).zip(row) {
                    let (lo, hi) = nibbles(b);
                    pair[0] = pair[0].saturating_add(at(lo));
                    pair[1] = pair[1].saturating_add(at(hi));
                }
            }
        }
    }
    // The accumulator is the "residual" of a single pooled row: reuse the encoder's rounding.
    pool(acc, 1, acc.len(), false, out);
}

/// The head's up projection and activation: `out` (the pooled vector) to the int8 activations
/// after the accumulator row of `scratch`. Nothing to do without a head.
pub fn head_up(v: &StaticView<'_>, scratch: &mut [i32], out: &[i8]) {
    let Some(h) = &v.head else {
        return;
    };
    let (d, f) = (v.dim, h.ffn);
    let Some(act) = scratch.get_mut(d..d + words_for_bytes(f)) else {
        return; // the caller sized the arena with `scratch_words`
    };
    let act = &mut bytemuck::cast_slice_mut::<i32, i8>(act)[..f];
    linear(&h.up, None, out, d, f, 1, Epilogue::Gelu(act, h.act));
}

/// The head's down projection added to the pooled vector `out` (`2^HEAD_RESIDUAL_SHIFT` units
/// a step in the accumulator row of `scratch`), pooled to int8 again in `out`.
pub fn head_down(v: &StaticView<'_>, scratch: &mut [i32], out: &mut [i8]) {
    let Some(h) = &v.head else {
        return;
    };
    let (d, f) = (v.dim, h.ffn);
    if scratch.len() < d + words_for_bytes(f) || out.len() < d {
        return;
    }
    let (acc, act) = scratch.split_at_mut(d);
    let act = &bytemuck::cast_slice::<i32, i8>(act)[..f];
    for (a, &x) in acc.iter_mut().zip(out.iter()) {
        *a = (x as i32) << HEAD_RESIDUAL_SHIFT;
    }
    linear(&h.down, None, act, f, d, 1, Epilogue::Residual(acc));
    pool(acc, 1, d, false, out);
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
            rows: Rows::I8(&rows),
            rq: I32s(&rq_bytes),
            dim: 2,
            head: None,
        };
        let mut acc = [0i32; 2];
        let mut out = [0i8; 2];
        embed(&[0, 1, 7], &v, &mut acc, &mut out);
        assert_eq!(acc, [127, -64 + 64]);
        assert_eq!(out, [127, 0]);
    }

    proptest::proptest! {
        /// The 4-bit table (its lookup of fifteen requantized values) adds exactly what the
        /// 8-bit path adds for the same values and requantization pairs.
        #[test]
        fn four_bit_rows_sum_like_the_same_values_at_eight_bits(
            values in proptest::collection::vec(-I4_MAX..=I4_MAX, 5 * 6),
            pairs in proptest::collection::vec((0i32..i32::MAX, 20i32..45), 5),
            ids in proptest::collection::vec(0u32..7, 0..12),
        ) {
            let (vocab, dim) = (5, 6);
            let packed: std::vec::Vec<u8> = values
                .chunks_exact(2)
                .map(|p| crate::format::int4::pack(p[0], p[1]))
                .collect();
            let rq: std::vec::Vec<u8> = pairs
                .iter()
                .flat_map(|&(m, s)| [m, s])
                .flat_map(|x| x.to_le_bytes())
                .collect();
            let at = |rows| StaticView { rows, rq: I32s(&rq), dim, head: None };
            let (mut a8, mut a4) = ([0i32; 6], [0i32; 6]);
            let (mut o8, mut o4) = ([0i8; 6], [0i8; 6]);
            embed(&ids, &at(Rows::I8(&values)), &mut a8, &mut o8);
            embed(&ids, &at(Rows::I4(&packed)), &mut a4, &mut o4);
            proptest::prop_assert_eq!(a8, a4);
            proptest::prop_assert_eq!(o8, o4);
            proptest::prop_assert_eq!(packed.len(), vocab * dim / 2);
        }
    }
}
