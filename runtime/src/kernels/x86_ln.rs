//! AVX-512 forms of the integer LayerNorm's two costly loops (statistics and the two affine heads),
//! exact by range checks: each runs only when every intermediate provably fits in 64 bits, where
//! the oracle's i128 and saturating arithmetic give the same numbers as plain i64 lanes. Otherwise
//! the caller keeps the scalar oracle (`engine::layernorm`).
#![allow(unsafe_code)]

use core::arch::x86_64::*;

/// True when this CPU runs the kernels here (AVX-512F/DQ/BW/VL).
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
}

/// `Σ (x - mean)²` exactly, or `None` when some `|x - mean|` reaches 2^26 (then squares
/// summed over up to 2^11 lanes could leave u64 and the caller's u128 loop must run).
pub fn stats(x: &[i32], mean: i64) -> Option<u128> {
    if !available() || x.len() > 2048 {
        return None;
    }
    // SAFETY: `available()` checked the features.
    unsafe { stats_avx512(x, mean) }
}

#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl")]
unsafe fn stats_avx512(x: &[i32], mean: i64) -> Option<u128> {
    let m = _mm512_set1_epi64(mean);
    let mut sq = _mm512_setzero_si512();
    let mut big = _mm512_setzero_si512();
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        // SAFETY: 8 i32 = 32 readable bytes.
        let v = unsafe { _mm256_loadu_si256(c.as_ptr() as *const __m256i) };
        let d = _mm512_abs_epi64(_mm512_sub_epi64(_mm512_cvtepi32_epi64(v), m));
        big = _mm512_or_si512(big, d);
        sq = _mm512_add_epi64(sq, _mm512_mul_epu32(d, d));
    }
    // Every |d| below 2^26 (OR of all of them): `mul_epu32` saw the whole value and no lane sum
    // of at most 2048/8 squares below 2^52 can overflow.
    let mut lanes = [0u64; 8];
    // SAFETY: 64 writable bytes.
    unsafe { _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, big) };
    if lanes.iter().any(|&l| l >= 1 << 26) {
        return None;
    }
    // SAFETY: as above.
    unsafe { _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, sq) };
    let mut total: u128 = lanes.iter().map(|&l| l as u128).sum();
    for &v in chunks.remainder() {
        let d = (v as i64 - mean).unsigned_abs() as u128;
        total += d * d;
    }
    Some(total)
}

/// The two heads of a normalized row, or `false` (nothing written) when the ranges do not
/// guarantee exactness. `n = (d · inv) >> 32` must fit i64 without the oracle's clamp, and every
/// |n| must lie below the section's `n_limit` (found at load), under which
/// `n · gain + offset + 2^31` cannot saturate: checked from `max |d|` and `inv`.
pub fn heads(x: &mut [i32], mm: &mut [i8], raw: &[u8], mean: i64, inv: i128, n_limit: u32) -> bool {
    let h = x.len();
    if !available() || mm.len() < h || raw.len() < 4 * h * 8 || !(0..1i128 << 62).contains(&inv) {
        return false;
    }
    let max_d = x
        .iter()
        .map(|&v| (v as i64 - mean).unsigned_abs())
        .max()
        .unwrap_or(0) as u128;
    let prod = max_d * inv as u128;
    if prod >= 1 << 63 {
        return false;
    }
    // |n| <= (|d| · inv >> 32) + 1 for the floor shift.
    if (prod >> 32) + 1 >= n_limit as u128 {
        return false;
    }
    // SAFETY: features checked by `available()`; lengths checked above.
    unsafe { heads_avx512(x, mm, raw, mean, inv as i64) };
    true
}

#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl")]
unsafe fn heads_avx512(x: &mut [i32], mm: &mut [i8], raw: &[u8], mean: i64, inv: i64) {
    let h = x.len();
    let (m, inv_v, half) = (
        _mm512_set1_epi64(mean),
        _mm512_set1_epi64(inv),
        _mm512_set1_epi64(1 << 31),
    );
    let (lo32, hi32) = (
        _mm512_set1_epi64(i32::MIN as i64),
        _mm512_set1_epi64(i32::MAX as i64),
    );
    let (lo8, hi8) = (_mm512_set1_epi64(-127), _mm512_set1_epi64(127));
    let p = raw.as_ptr() as *const i64;
    let full = h / 8 * 8;
    let mut j = 0;
    while j < full {
        // SAFETY: j + 8 <= h; the section holds 4 rows of h i64 (checked by the caller).
        unsafe {
            let v = _mm512_cvtepi32_epi64(_mm256_loadu_si256(x.as_ptr().add(j) as *const __m256i));
            let n = _mm512_srai_epi64::<32>(_mm512_mullo_epi64(_mm512_sub_epi64(v, m), inv_v));
            let row = |r: usize| _mm512_loadu_si512(p.add(r * h + j) as *const _);
            let head = |g: __m512i, o: __m512i| {
                _mm512_srai_epi64::<32>(_mm512_add_epi64(
                    _mm512_add_epi64(_mm512_mullo_epi64(n, g), o),
                    half,
                ))
            };
            let r = _mm512_max_epi64(_mm512_min_epi64(head(row(0), row(1)), hi32), lo32);
            let q = _mm512_max_epi64(_mm512_min_epi64(head(row(2), row(3)), hi8), lo8);
            _mm256_storeu_si256(
                x.as_mut_ptr().add(j) as *mut __m256i,
                _mm512_cvtepi64_epi32(r),
            );
            _mm_storel_epi64(
                mm.as_mut_ptr().add(j) as *mut __m128i,
                _mm512_cvtepi64_epi8(q),
            );
        }
        j += 8;
    }
    // The tail, with the same i64 arithmetic the vector lanes used (exact by the caller's bounds).
    let get = |r: usize, j: usize| crate::le::i64_at(raw, (r * h + j) * 8).unwrap_or(0);
    for j in full..h {
        let n = ((x[j] as i64 - mean) * inv) >> 32;
        let r = (n * get(0, j) + get(1, j) + (1 << 31)) >> 32;
        let q = (n * get(2, j) + get(3, j) + (1 << 31)) >> 32;
        x[j] = r.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        mm[j] = q.clamp(-127, 127) as i8;
    }
}
