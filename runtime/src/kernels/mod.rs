//! Integer kernels. The contract: every implementation returns exactly the scalar oracle's result
//! (integer sums are exact, so SIMD, lane order and thread count cannot change a single byte).
//!
//! `generic` is the scalar oracle and the portable fallback; per-architecture files may override
//! `dot_i8` where a faster exact implementation exists.

pub mod generic;

/// Dot product of two int8 vectors of equal length, exact in i32 for lengths below 133 144.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    generic::dot_i8(a, b)
}

/// `out[n] = bias[n] + dot(x, w[n])` for each output row `n` of the row-major `w` (`[out, k]`).
#[inline]
pub fn matvec_i8(x: &[i8], w: &[i8], k: usize, out: &mut [i32]) {
    generic::matvec_i8(x, w, k, out)
}

/// For every token `t < tokens` and output row `n < outs` of the row-major `w` (`[outs, k]`),
/// calls `emit(t, n, x[t] . w[n])`. Rows are visited output-major so each weight row is read once.
#[inline]
pub fn matmul_i8<F: FnMut(usize, usize, i32)>(x: &[i8], w: &[i8], k: usize, tokens: usize, outs: usize, emit: F) {
    generic::matmul_i8(x, w, k, tokens, outs, emit)
}
