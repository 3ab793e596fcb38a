//! What a linear layer does with each exact accumulator: the one definition every GEMM path
//! (scalar oracle, Cortex-M, host packed kernels) must reproduce byte for byte.

use crate::engine::requant::{rq, rq_i32, rq_i8};
use crate::engine::sections::I32s;

/// The output stage of one linear layer over `tokens × n` outputs, row-major `[token, out]`.
///
/// Every variant first computes `s = acc + b[j]` exactly (i64) and requantizes it with the output
/// channel's fixed-point `(m, shift)`; they differ in where the result goes.
pub enum Epilogue<'o> {
    /// `out = rq_i8(s)`: an int8 activation (Q, K, V).
    I8(&'o mut [i8]),
    /// `xr = xr +sat rq_i32(s)`: a projection added into the int32 residual stream.
    Residual(&'o mut [i32]),
    /// `out = table[rq_i8(s) + 128]`: the FFN's first linear followed by the GELU table.
    Gelu(&'o mut [i8], &'o [i8]),
    /// The 16-bit FFN: `y = gelu16(rq_i16(s))` ([`gelu16`], an interpolated table of 257
    /// little-endian i32 knots), stored as two int8 planes with `y = 128·hi + lo`.
    Gelu16 {
        /// High plane, `[token, out]`.
        hi: &'o mut [i8],
        /// Low plane, `[token, out]`.
        lo: &'o mut [i8],
        /// The `GeluTable16` section's bytes.
        table: &'o [u8],
    },
}

/// Knots of a 16-bit GELU table: one every 256 input steps over the i16 range, both ends included.
pub const GELU16_KNOTS: usize = 257;
/// Range of the 16-bit GELU output, chosen so that `y = 128·hi + lo` with `hi` in -128..=127 and
/// `lo` in -64..=63: both planes are int8 activations the int8 GEMM takes as they are.
pub const GELU16_MIN: i32 = -16384;
/// See [`GELU16_MIN`].
pub const GELU16_MAX: i32 = 16319;

/// GELU on the 16-bit grid: the input `x` (clamped to i16) falls between knots `i = (x + 32768) >> 8`
/// and `i + 1` of `table` (little-endian i32); the output interpolates them linearly with the low
/// 8 bits (rounding half up) and is clamped to [`GELU16_MIN`]..=[`GELU16_MAX`]. A table shorter
/// than [`GELU16_KNOTS`] reads missing knots as 0 (validation makes that unreachable).
#[inline(always)]
pub fn gelu16(x: i64, table: &[u8]) -> i32 {
    let u = (x.clamp(i16::MIN as i64, i16::MAX as i64) + 32768) as usize;
    let (i, f) = (u >> 8, (u & 255) as i64);
    let knot = |k: usize| I32s(table).at(k) as i64;
    let (a, b) = (knot(i), knot(i + 1));
    let y = a + (((b - a) * f + 128) >> 8);
    y.clamp(GELU16_MIN as i64, GELU16_MAX as i64) as i32
}

/// Splits a 16-bit GELU output into its planes: `hi = round(y / 128)` (half up), `lo = y - 128·hi`.
#[inline(always)]
pub fn planes(y: i32) -> (i8, i8) {
    let hi = (y + 64) >> 7;
    (hi as i8, (y - (hi << 7)) as i8)
}

impl Epilogue<'_> {
    /// Stores output `idx` (= `token * n + j`) from `s = acc + b[j]` and channel `j`'s `(m, shift)`.
    /// Out-of-range indices are ignored (the caller's shapes were validated at load).
    #[inline(always)]
    pub fn store(&mut self, idx: usize, s: i64, m: i32, shift: i32) {
        match self {
            Epilogue::I8(out) => store_i8(out, idx, s, m, shift),
            Epilogue::Residual(xr) => store_residual(xr, idx, s, m, shift),
            Epilogue::Gelu(out, table) => store_gelu(out, table, idx, s, m, shift),
            Epilogue::Gelu16 { hi, lo, table } => store_gelu16(hi, lo, table, idx, s, m, shift),
        }
    }

    /// Runs `outputs` once with [`store`](Self::store) already resolved to this variant: a loop
    /// over every output then compiles to one body per variant with the store inlined, instead
    /// of a call and a dispatch per output (on Cortex-M that call cost more than the store).
    #[inline(always)]
    pub fn specialized<O: Outputs>(&mut self, outputs: O) {
        match self {
            Epilogue::I8(out) => outputs.run(|i, s, m, sh| store_i8(out, i, s, m, sh)),
            Epilogue::Residual(xr) => outputs.run(|i, s, m, sh| store_residual(xr, i, s, m, sh)),
            Epilogue::Gelu(out, table) => {
                outputs.run(|i, s, m, sh| store_gelu(out, table, i, s, m, sh))
            }
            Epilogue::Gelu16 { hi, lo, table } => {
                outputs.run(|i, s, m, sh| store_gelu16(hi, lo, table, i, s, m, sh))
            }
        }
    }
}

/// A loop that produces outputs `(idx, s, m, shift)` for [`Epilogue::specialized`].
pub trait Outputs {
    /// Calls `store` once per output.
    fn run(self, store: impl FnMut(usize, i64, i32, i32));
}

#[inline(always)]
fn store_i8(out: &mut [i8], idx: usize, s: i64, m: i32, shift: i32) {
    if let Some(o) = out.get_mut(idx) {
        *o = rq_i8(s, m, shift);
    }
}

#[inline(always)]
fn store_residual(xr: &mut [i32], idx: usize, s: i64, m: i32, shift: i32) {
    if let Some(r) = xr.get_mut(idx) {
        *r = r.saturating_add(rq_i32(s, m, shift));
    }
}

#[inline(always)]
fn store_gelu(out: &mut [i8], table: &[i8], idx: usize, s: i64, m: i32, shift: i32) {
    if let Some(o) = out.get_mut(idx) {
        let x = rq_i8(s, m, shift);
        *o = table.get((x as i32 + 128) as usize).copied().unwrap_or(0);
    }
}

#[inline(always)]
fn store_gelu16(
    hi: &mut [i8],
    lo: &mut [i8],
    table: &[u8],
    idx: usize,
    s: i64,
    m: i32,
    shift: i32,
) {
    let (h, l) = planes(gelu16(rq(s, m, shift), table));
    if let (Some(oh), Some(ol)) = (hi.get_mut(idx), lo.get_mut(idx)) {
        (*oh, *ol) = (h, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output in range splits into planes that are valid int8 activations and rebuild it.
    #[test]
    fn planes_rebuild_every_output() {
        for y in GELU16_MIN..=GELU16_MAX {
            let (hi, lo) = planes(y);
            assert!((-64..=63).contains(&lo), "{y}");
            assert_eq!(128 * hi as i32 + lo as i32, y);
        }
    }

    /// On the knots the table is returned exactly, between them the chord, at the ends clamped.
    #[test]
    fn gelu16_interpolates_the_knots() {
        let knots: Vec<i32> = (0..GELU16_KNOTS as i32).map(|k| 3 * k - 300).collect();
        let table: Vec<u8> = knots.iter().flat_map(|k| k.to_le_bytes()).collect();
        for (k, &knot) in knots.iter().enumerate().take(256) {
            let x = k as i64 * 256 - 32768;
            assert_eq!(gelu16(x, &table), knot);
            assert_eq!(gelu16(x + 128, &table), knot + 2); // 1.5 rounds half up
        }
        assert_eq!(gelu16(i64::MAX, &table), gelu16(32767, &table));
        assert_eq!(gelu16(i64::MIN, &table), knots[0]);
        let huge: Vec<u8> = [i32::MAX; GELU16_KNOTS]
            .iter()
            .flat_map(|k| k.to_le_bytes())
            .collect();
        assert_eq!(gelu16(0, &huge), GELU16_MAX);
        assert_eq!(gelu16(0, &[]), 0);
    }
}
