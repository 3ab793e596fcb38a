//! What a linear layer does with each exact accumulator: the one definition every GEMM path
//! (scalar oracle, Cortex-M, host packed kernels) must reproduce byte for byte.

use crate::fixed::{gelu16, planes, rq, GELU16_KNOTS, GELU16_MAX, GELU16_MIN};

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
    /// The 16-bit FFN: `y = gelu16(rq_i16(s))` ([`crate::fixed::gelu16`], an interpolated table of 257
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

impl Epilogue<'_> {
    /// Stores output `idx` (= `token * n + j`) from `s = acc + b[j]` and channel `j`'s `(m, shift)`.
    /// Out-of-range indices are ignored (the caller's shapes were validated at load).
    #[inline(always)]
    pub fn store(&mut self, idx: usize, s: i64, m: i32, shift: i32) {
        self.put(idx, Rq::Exact(rq(s, m, shift)));
    }

    /// Stores output `idx` from its requantized value `v` (= `rq(acc + b, m, shift)`).
    #[inline(always)]
    fn put(&mut self, idx: usize, v: Rq) {
        match self {
            Epilogue::I8(out) => put_i8(out, idx, v),
            Epilogue::Residual(xr) => put_residual(xr, idx, v),
            Epilogue::Gelu(out, table) => put_gelu(out, table, idx, v),
            Epilogue::Gelu16 { hi, lo, table } => put_gelu16(hi, lo, table, idx, v),
        }
    }

    /// Runs `outputs` once with the store already resolved to this variant: a loop over every
    /// output then compiles to one body per variant with the store inlined, instead of a call
    /// and a dispatch per output (on Cortex-M that call cost more than the store).
    #[inline(always)]
    pub fn specialized<O: Outputs>(&mut self, outputs: O) {
        match self {
            Epilogue::I8(out) => outputs.run(|i, v| put_i8(out, i, v)),
            Epilogue::Residual(xr) => outputs.run(|i, v| put_residual(xr, i, v)),
            Epilogue::Gelu(out, table) => outputs.run(|i, v| put_gelu(out, table, i, v)),
            Epilogue::Gelu16 { hi, lo, table } => {
                // Checked once per matmul, not per output: with every knot in the output range
                // the interpolation is exact in i32.
                if knots_in_range(table) {
                    outputs.run(|i, v| put_gelu16_i32(hi, lo, table, i, v))
                } else {
                    outputs.run(|i, v| put_gelu16(hi, lo, table, i, v))
                }
            }
        }
    }
}

/// Whether `table` holds all [`GELU16_KNOTS`] knots, each within `GELU16_MIN..=GELU16_MAX` (as
/// package validation requires).
fn knots_in_range(table: &[u8]) -> bool {
    table.len() >= 4 * GELU16_KNOTS
        && table.chunks_exact(4).take(GELU16_KNOTS).all(|b| {
            (GELU16_MIN..=GELU16_MAX).contains(&i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        })
}

/// A loop that produces each output's index and requantized value `rq(acc + b, m, shift)` for
/// [`Epilogue::specialized`].
pub trait Outputs {
    /// Calls `store(idx, value)` once per output.
    fn run(self, store: impl FnMut(usize, Rq));
}

/// A requantized value, as the definition computes it or one step short of it.
#[derive(Clone, Copy)]
pub enum Rq {
    /// `rq(acc + b, m, shift)`.
    Exact(i64),
    /// `y` with `rq(acc + b, m, shift) = (y + 1) >> 1` ([`crate::fixed::rq_narrow_by`] without
    /// its last step, `y < i32::MAX`): the int8 stores clamp `y` before halving, one compare
    /// pair instead of a clamp after it.
    Halve(i32),
}

impl Rq {
    /// The requantized value.
    #[inline(always)]
    pub fn value(self) -> i64 {
        match self {
            Rq::Exact(v) => v,
            Rq::Halve(y) => (y.wrapping_add(1) >> 1) as i64,
        }
    }

    /// The value clamped to -127..=127. For `Halve`: `y` clamped to -255..=253 then halved is
    /// the halved value clamped (253 and 254 halve to 127, -255 and -254 to -127).
    #[inline(always)]
    pub fn sat_i8(self) -> i8 {
        match self {
            Rq::Exact(v) => v.clamp(-127, 127) as i8,
            Rq::Halve(y) => ((y.clamp(-255, 253) + 1) >> 1) as i8,
        }
    }
}

// The stores take the value as i64 (the definition's width); a caller holding an i32 passes it
// sign-extended and the clamps below then compile to 32-bit compares.

#[inline(always)]
fn put_i8(out: &mut [i8], idx: usize, v: Rq) {
    if let Some(o) = out.get_mut(idx) {
        *o = v.sat_i8();
    }
}

#[inline(always)]
fn put_residual(xr: &mut [i32], idx: usize, v: Rq) {
    let v = v.value();
    if let Some(r) = xr.get_mut(idx) {
        *r = r.saturating_add(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
    }
}

#[inline(always)]
fn put_gelu(out: &mut [i8], table: &[i8], idx: usize, v: Rq) {
    if let Some(o) = out.get_mut(idx) {
        let x = v.sat_i8() as i32;
        *o = table.get((x + 128) as usize).copied().unwrap_or(0);
    }
}

/// [`put_gelu16`] for a table whose knots are all in range ([`knots_in_range`]): both knots in
/// one read and the interpolation in i32 (|knot difference| < 2^15, times a fraction < 2^8),
/// which is [`gelu16`]'s i64 arithmetic exactly. The definition's final clamp is left out: the
/// rounded chord between two knots lies between them (`((b - a)·f + 128) >> 8` is within
/// `0..=b - a` for `f` < 256), so with in-range knots it never applies.
#[inline(always)]
fn put_gelu16_i32(hi: &mut [i8], lo: &mut [i8], table: &[u8], idx: usize, v: Rq) {
    let v = v.value();
    let u = (v.clamp(i16::MIN as i64, i16::MAX as i64) as i32 + 32768) as usize;
    let (i, f) = (u >> 8, (u & 255) as i32);
    let y = match table.get(i * 4..i * 4 + 8) {
        Some(&[a0, a1, a2, a3, b0, b1, b2, b3]) => {
            let (a, b) = (
                i32::from_le_bytes([a0, a1, a2, a3]),
                i32::from_le_bytes([b0, b1, b2, b3]),
            );
            a + (((b - a) * f + 128) >> 8)
        }
        _ => gelu16(v, table),
    };
    let (h, l) = planes(y);
    if let (Some(oh), Some(ol)) = (hi.get_mut(idx), lo.get_mut(idx)) {
        (*oh, *ol) = (h, l);
    }
}

#[inline(always)]
fn put_gelu16(hi: &mut [i8], lo: &mut [i8], table: &[u8], idx: usize, v: Rq) {
    let (h, l) = planes(gelu16(v.value(), table));
    if let (Some(oh), Some(ol)) = (hi.get_mut(idx), lo.get_mut(idx)) {
        (*oh, *ol) = (h, l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The i32 interpolation is the definition for every input on an in-range table (its
    /// extremes included: constant, alternating extreme and random knots), and an out-of-range
    /// or short table is not admitted.
    #[test]
    fn gelu16_in_i32_is_the_definition_on_valid_tables() {
        let mut seed = 0x9e37_79b9u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for case in 0..8 {
            let knots: Vec<i32> = (0..GELU16_KNOTS)
                .map(|k| match case {
                    0 => GELU16_MIN,
                    1 => GELU16_MAX,
                    2 if k % 2 == 0 => GELU16_MIN,
                    2 => GELU16_MAX,
                    3 if k % 2 == 0 => GELU16_MAX,
                    3 => GELU16_MIN,
                    _ => GELU16_MIN + (next() % (GELU16_MAX - GELU16_MIN + 1) as u32) as i32,
                })
                .collect();
            let table: Vec<u8> = knots.iter().flat_map(|k| k.to_le_bytes()).collect();
            assert!(knots_in_range(&table));
            let (mut h1, mut l1, mut h2, mut l2) = ([0i8; 1], [0i8; 1], [0i8; 1], [0i8; 1]);
            let edges = [i64::MIN, i64::MAX, -32768, 32767, -32769, 32768];
            for v in (-33_000i64..33_000).chain(edges) {
                put_gelu16_i32(&mut h1, &mut l1, &table, 0, Rq::Exact(v));
                put_gelu16(&mut h2, &mut l2, &table, 0, Rq::Exact(v));
                assert_eq!((h1, l1), (h2, l2), "case {case} v {v}");
            }
        }
        let mut bad: Vec<u8> = [0i32; GELU16_KNOTS]
            .iter()
            .flat_map(|k| k.to_le_bytes())
            .collect();
        assert!(knots_in_range(&bad));
        bad[4 * 100..4 * 101].copy_from_slice(&(GELU16_MAX + 1).to_le_bytes());
        assert!(!knots_in_range(&bad));
        assert!(!knots_in_range(&bad[..40]));
    }

    /// Both forms of a requantized value give the same value and the same int8 clamp, over
    /// every `y` around the clamp's edges and at the ends of its range.
    #[test]
    fn halved_values_clamp_like_exact_ones() {
        let ys = (-70_000i32..70_000).chain([i32::MIN, i32::MIN + 1, i32::MAX - 1]);
        for y in ys {
            let v = (y.wrapping_add(1) >> 1) as i64;
            assert_eq!(Rq::Halve(y).value(), v, "{y}");
            assert_eq!(Rq::Halve(y).sat_i8(), Rq::Exact(v).sat_i8(), "{y}");
        }
    }
}
