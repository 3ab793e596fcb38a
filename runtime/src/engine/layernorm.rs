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
    /// Largest |gain| and |offset| of both heads: the host's vector path checks its ranges with them.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    max: (u64, u64),
}

impl<'a> LnParams<'a> {
    /// `raw` must hold 4 * hidden little-endian i64 (checked by the caller at validation).
    pub fn new(raw: &'a [u8], hidden: usize) -> Self {
        LnParams {
            raw,
            hidden,
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            max: (
                crate::kernels::x86_ln::max_abs_rows(raw, hidden, [0, 2]),
                crate::kernels::x86_ln::max_abs_rows(raw, hidden, [1, 3]),
            ),
        }
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
    mul_sat(n, gain)
        .saturating_add(offset)
        .saturating_add(1 << 31)
        >> 32
}

/// `a.saturating_mul(b)`, without the checked 64×64 multiply (a library call on 32-bit cores)
/// when `a` fits i32 and |b| < 2^32: then |a·b| < 2^63 and the plain product is exact.
#[inline(always)]
fn mul_sat(a: i64, b: i64) -> i64 {
    if i32::try_from(a).is_ok() && b.unsigned_abs() < 1 << 32 {
        a.wrapping_mul(b)
    } else {
        a.saturating_mul(b)
    }
}

/// Exact `Σ (v - mean)²`: in u64 with single 32×32 multiplies while every deviation fits i32
/// and the sum cannot overflow (always, for real residual streams), in u128 otherwise.
fn sum_sq(x: &[i32], mean: i64) -> u128 {
    let mut s: u64 = 0;
    for &v in x {
        let d = v as i64 - mean;
        let Ok(d) = i32::try_from(d) else {
            return sum_sq_wide(x, mean);
        };
        let (next, over) = s.overflowing_add((d as i64 * d as i64) as u64);
        if over {
            return sum_sq_wide(x, mean);
        }
        s = next;
    }
    s as u128
}

fn sum_sq_wide(x: &[i32], mean: i64) -> u128 {
    x.iter()
        .map(|&v| ((v as i64 - mean) as i128 * (v as i64 - mean) as i128) as u128)
        .sum()
}

/// `((d · inv) >> 32)` clamped to i64 (floor shift). When d fits i32 and inv < 2^63 it is split
/// into 32×32 products: d·inv = d·hi·2^32 + d·lo, so the shift is d·hi + ((d·lo) >> 32) exactly,
/// with |result| < 2^63 (no clamp needed); otherwise the i128 product.
#[inline(always)]
fn scale_q32(d: i64, inv: i128) -> i64 {
    if let (Ok(d32), Ok(inv63)) = (i32::try_from(d), i64::try_from(inv)) {
        if inv63 >= 0 {
            let (lo, hi) = (inv63 as u32 as i64, inv63 >> 32);
            let d = d32 as i64;
            return d * hi + ((d * lo) >> 32);
        }
    }
    ((d as i128 * inv) >> 32).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Normalizes `x` in place into the residual head and writes the matmul head into `mm`.
pub fn layernorm(x: &mut [i32], p: &LnParams<'_>, mm: &mut [i8]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let vector = !crate::kernels::scalar_forced();
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let vector = false;
    normalize(x, p, mm, vector);
}

/// [`layernorm`]; `vector` lets the host's AVX-512 loops run where they are provably exact
/// (`false` is the scalar oracle they are tested against).
fn normalize(x: &mut [i32], p: &LnParams<'_>, mm: &mut [i8], vector: bool) {
    let h = x.len() as i64;
    if h == 0 {
        return;
    }
    let sum: i64 = x.iter().map(|&v| v as i64).sum();
    let mean = div_round(sum, h);
    let squares = || sum_sq(x, mean);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let fast = vector
        .then(|| crate::kernels::x86_ln::stats(x, mean))
        .flatten();
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let fast = vector.then_some(None).flatten();
    let var = fast.unwrap_or_else(squares) / h as u128;
    // std in Q16; a constant row (var 0) normalizes to 0, leaving only the offsets.
    let std_q16 = isqrt_u128(var << 32);
    let inv: i128 = (1u128 << 64).checked_div(std_q16).unwrap_or(0) as i128;
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if vector && crate::kernels::x86_ln::heads(x, mm, p.raw, mean, inv, p.max.0, p.max.1) {
        return;
    }
    for (j, (v, m)) in x.iter_mut().zip(mm.iter_mut()).enumerate() {
        let d = *v as i64 - mean;
        let n = scale_q32(d, inv);
        *v = head(n, p.get(0, j), p.get(1, j)).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        *m = head(n, p.get(2, j), p.get(3, j)).clamp(-127, 127) as i8;
    }
}

#[cfg(all(test, feature = "std", target_arch = "x86_64"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A residual row with occasional outliers (LayerNorm inputs have a few huge channels).
    fn row() -> impl Strategy<Value = Vec<i32>> {
        (1..=130usize, 0u32..31).prop_flat_map(|(h, bits)| {
            proptest::collection::vec(
                prop_oneof![
                    8 => -(1i32 << bits)..=(1i32 << bits),
                    1 => any::<i32>(),
                    1 => Just(0i32),
                ],
                h,
            )
        })
    }

    fn params(h: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                8 => -(1i64 << 34)..(1i64 << 34),
                1 => any::<i64>(),
            ],
            4 * h,
        )
        .prop_map(|v| v.iter().flat_map(|g| g.to_le_bytes()).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The host's vector statistics and heads give the oracle's bytes (or step aside).
        #[test]
        fn vector_equals_oracle((x, raw) in row().prop_flat_map(|x| { let h = x.len(); (Just(x), params(h)) })) {
            let h = x.len();
            let p = LnParams::new(&raw, h);
            let (mut a, mut b) = (x.clone(), x);
            let (mut ma, mut mb) = (vec![0i8; h], vec![0i8; h]);
            normalize(&mut a, &p, &mut ma, true);
            normalize(&mut b, &p, &mut mb, false);
            prop_assert_eq!(a, b);
            prop_assert_eq!(ma, mb);
        }
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The 32-bit fast paths equal the wide formulas, including at and past their limits.
    #[test]
    fn fast_paths_equal_the_wide_arithmetic() {
        let mut s = StdRng::seed_from_u64(0x1234_5678_9abc_def1);
        let edges = [
            0i64,
            1,
            -1,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 + 1,
            i32::MIN as i64 - 1,
            (1 << 32) - 1,
            1 << 32,
            -(1 << 32),
            i64::MAX,
            i64::MIN,
        ];
        for i in 0..20_000 {
            let r = s.random::<i64>();
            let a = if i < 144 {
                edges[i % 12]
            } else {
                r >> (i % 40)
            };
            let b = if i < 144 {
                edges[i / 12]
            } else {
                s.random::<i64>() >> (i % 33)
            };
            assert_eq!(mul_sat(a, b), a.saturating_mul(b), "{a} {b}");
            for inv in [b as i128, (b as i128).abs(), 1i128 << 64, (1i128 << 63) + 5] {
                let wide = ((a as i128 * inv) >> 32).clamp(i64::MIN as i128, i64::MAX as i128);
                assert_eq!(scale_q32(a, inv) as i128, wide, "{a} {inv}");
            }
        }
        let rows: [&[i32]; 4] = [
            &[i32::MAX, i32::MIN, 0, 5],
            &[7; 384],
            &[i32::MAX; 1024],
            &[1, -1, 1 << 30, -(1 << 30), 123_456_789],
        ];
        for row in rows {
            for mean in [0i64, -3, 1 << 20, i32::MIN as i64] {
                assert_eq!(sum_sq(row, mean), sum_sq_wide(row, mean));
            }
        }
    }
}
