//! x86-64 AVX2 dot product, exact: the same i32 as the scalar oracle for every input where the
//! second operand has no -128 (weights are quantized to -127..=127; see `generic`).
#![allow(unsafe_code)]

use core::arch::x86_64::*;

/// True when the CPU has AVX2 (checked once by std's cached detection).
#[inline]
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx2")
}

/// Dot product of `a` (any int8) and `b` (int8 without -128) over the shorter length. On a CPU
/// without AVX2 it is the scalar oracle's, so the function is sound for any caller.
///
/// Why exact: `maddubs` multiplies |a| (0..=128, as u8) by b·sign(a) (-127..=127) and adds pairs
/// into i16 with saturation; |pair| <= 2·128·127 = 32512 < 32767, so it never saturates.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // A public safe function cannot rely on its caller having checked the CPU; std caches the
    // detection, so this is one relaxed load.
    if !available() {
        return super::generic::dot_i8(a, b);
    }
    // SAFETY: AVX2 is present (checked just above).
    unsafe { dot_i8_avx2(a, b) }
}

#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let chunks = n / 32;
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    for c in 0..chunks {
        // SAFETY: c*32+32 <= n <= len of both slices; loadu has no alignment requirement.
        let va = unsafe { _mm256_loadu_si256(a.as_ptr().add(c * 32) as *const __m256i) };
        let vb = unsafe { _mm256_loadu_si256(b.as_ptr().add(c * 32) as *const __m256i) };
        let abs_a = _mm256_abs_epi8(va);
        let sb = _mm256_sign_epi8(vb, va);
        let pairs = _mm256_maddubs_epi16(abs_a, sb);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 32 bytes, storeu has no alignment requirement.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
    let mut s: i32 = lanes.iter().sum();
    for i in chunks * 32..n {
        s += a[i] as i32 * b[i] as i32;
    }
    s
}
