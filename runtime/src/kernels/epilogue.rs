//! What a linear layer does with each exact accumulator: the one definition every GEMM path
//! (scalar oracle, Cortex-M, host packed kernels) must reproduce byte for byte.

use crate::engine::requant::{rq_i32, rq_i8};

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
}

impl Epilogue<'_> {
    /// Stores output `idx` (= `token * n + j`) from `s = acc + b[j]` and channel `j`'s `(m, shift)`.
    /// Out-of-range indices are ignored (the caller's shapes were validated at load).
    #[inline(always)]
    pub fn store(&mut self, idx: usize, s: i64, m: i32, shift: i32) {
        match self {
            Epilogue::I8(out) => {
                if let Some(o) = out.get_mut(idx) {
                    *o = rq_i8(s, m, shift);
                }
            }
            Epilogue::Residual(xr) => {
                if let Some(r) = xr.get_mut(idx) {
                    *r = r.saturating_add(rq_i32(s, m, shift));
                }
            }
            Epilogue::Gelu(out, table) => {
                if let Some(o) = out.get_mut(idx) {
                    let x = rq_i8(s, m, shift);
                    *o = table.get((x as i32 + 128) as usize).copied().unwrap_or(0);
                }
            }
        }
    }
}
