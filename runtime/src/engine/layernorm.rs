//! Integer LayerNorm with two output heads.
//!
//! The residual stream is int32. LayerNorm normalizes it exactly in integers (i64 mean and variance,
//! integer square root), giving `n` in Q16, then applies two per-channel affine maps:
//! the residual head (int32, the scale of the next residual add) and the matmul head (int8, with the
//! next linear's SmoothQuant divisor folded in). Both are `(n * gain + offset) >> 32`.

use super::requant::{div_round, isqrt_u128};

/// Gains and offsets of one LayerNorm, read in place from an i64 [4, hidden] section.
#[derive(Clone, Copy)]
pub struct LnParams<'a> {
    raw: &'a [u8],
    hidden: usize,
}

impl<'a> LnParams<'a> {
    /// `raw` must hold 4 * hidden little-endian i64 (checked by the caller at validation).
    pub fn new(raw: &'a [u8], hidden: usize) -> Self {
        LnParams { raw, hidden }
    }

    #[inline(always)]
    fn get(&self, row: usize, j: usize) -> i64 {
        let at = (row * self.hidden + j) * 8;
        match self.raw.get(at..at + 8) {
            Some(b) => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => 0,
        }
    }
}

#[inline(always)]
fn head(n: i64, gain: i64, offset: i64) -> i64 {
    n.saturating_mul(gain)
        .saturating_add(offset)
        .saturating_add(1 << 31)
        >> 32
}

/// Normalizes `x` in place into the residual head and writes the matmul head into `mm`.
pub fn layernorm(x: &mut [i32], p: &LnParams<'_>, mm: &mut [i8]) {
    let h = x.len() as i64;
    if h == 0 {
        return;
    }
    let sum: i64 = x.iter().map(|&v| v as i64).sum();
    let mean = div_round(sum, h);
    let var: u128 = x
        .iter()
        .map(|&v| ((v as i64 - mean) as i128 * (v as i64 - mean) as i128) as u128)
        .sum::<u128>()
        / h as u128;
    // std in Q16; a constant row (var 0) normalizes to 0, leaving only the offsets.
    let std_q16 = isqrt_u128(var << 32);
    let inv: i128 = (1u128 << 64).checked_div(std_q16).unwrap_or(0) as i128;
    for (j, (v, m)) in x.iter_mut().zip(mm.iter_mut()).enumerate() {
        let d = *v as i64 - mean;
        let n = ((d as i128 * inv) >> 32).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        *v = head(n, p.get(0, j), p.get(1, j)).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        *m = head(n, p.get(2, j), p.get(3, j)).clamp(-127, 127) as i8;
    }
}
