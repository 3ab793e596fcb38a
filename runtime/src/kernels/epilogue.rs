//! What a linear layer does with each exact accumulator: the one definition every GEMM path
//! (scalar oracle, Cortex-M, host packed kernels) must reproduce byte for byte.

use crate::fixed::{gelu16, planes, rq};

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
        self.put(idx, rq(s, m, shift));
    }

    /// Stores output `idx` from its requantized value `v` (= `rq(acc + b, m, shift)`).
    #[inline(always)]
    fn put(&mut self, idx: usize, v: i64) {
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
                outputs.run(|i, v| put_gelu16(hi, lo, table, i, v))
            }
        }
    }
}

/// A loop that produces each output's index and requantized value `rq(acc + b, m, shift)` for
/// [`Epilogue::specialized`] (a loop that knows its channels admit
/// [`crate::fixed::rq_narrow`] may compute it that way: the value is the same).
pub trait Outputs {
    /// Calls `store(idx, value)` once per output.
    fn run(self, store: impl FnMut(usize, i64));
}

// The stores take the value as i64 (the definition's width); a caller holding an i32 passes it
// sign-extended and the clamps below then compile to 32-bit compares.

#[inline(always)]
fn put_i8(out: &mut [i8], idx: usize, v: i64) {
    if let Some(o) = out.get_mut(idx) {
        *o = v.clamp(-127, 127) as i8;
    }
}

#[inline(always)]
fn put_residual(xr: &mut [i32], idx: usize, v: i64) {
    if let Some(r) = xr.get_mut(idx) {
        *r = r.saturating_add(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
    }
}

#[inline(always)]
fn put_gelu(out: &mut [i8], table: &[i8], idx: usize, v: i64) {
    if let Some(o) = out.get_mut(idx) {
        let x = v.clamp(-127, 127) as i32;
        *o = table.get((x + 128) as usize).copied().unwrap_or(0);
    }
}

#[inline(always)]
fn put_gelu16(hi: &mut [i8], lo: &mut [i8], table: &[u8], idx: usize, v: i64) {
    let (h, l) = planes(gelu16(v, table));
    if let (Some(oh), Some(ol)) = (hi.get_mut(idx), lo.get_mut(idx)) {
        (*oh, *ol) = (h, l);
    }
}
