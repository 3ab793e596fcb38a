//! Integer LayerNorm with two output heads.
//!
//! The residual stream is int32. LayerNorm normalizes it exactly in integers (i64 mean and variance,
//! integer square root), giving `n` in Q16, then applies two per-channel affine maps:
//! the residual head (int32, the scale of the next residual add) and the matmul head (int8, with the
//! next linear's SmoothQuant divisor folded in). Both are `(n * gain + offset) >> 32`.

use crate::fixed::{div_round, isqrt_u128};
use crate::le;

/// Gains and offsets of one LayerNorm, read in place from an i64 [4, hidden] section.
#[derive(Clone, Copy)]
pub struct LnParams<'a> {
    raw: &'a [u8],
    hidden: usize,
    /// [`heads_narrow`] and the host's vector loop apply to every |n| below this (0: to none);
    /// 4 bytes, because every layer's views are held on the device's stack.
    n_limit: u32,
    /// Every gain below 2^62 and every offset at most 2^61 in magnitude: [`head_split`] applies
    /// to every admitted `n` that fits i32.
    split: bool,
}

impl<'a> LnParams<'a> {
    /// `raw` must hold 4 * hidden little-endian i64 (checked by the caller at validation).
    pub fn new(raw: &'a [u8], hidden: usize) -> Self {
        let max = (
            max_abs_rows(raw, hidden, [0, 2]),
            max_abs_rows(raw, hidden, [1, 3]),
        );
        LnParams {
            raw,
            hidden,
            n_limit: n_limit(max),
            split: max.0 < 1 << 62 && max.1 <= 1 << 61,
        }
    }

    #[inline(always)]
    fn get(&self, row: usize, j: usize) -> i64 {
        let at = (row * self.hidden + j) * 8;
        le::i64_at(self.raw, at).unwrap_or(0)
    }

    /// The four rows (residual gain, residual offset, matmul gain, matmul offset) as 8-byte
    /// chunks, or `None` when the section is short.
    fn rows(&self) -> Option<[&'a [u8]; 4]> {
        let w = self.hidden * 8;
        let row = |r: usize| self.raw.get(r * w..(r + 1) * w);
        Some([row(0)?, row(1)?, row(2)?, row(3)?])
    }
}

/// One more than the largest |n| for which `|n|·max_gain + max_offset + 2^31 < 2^63`, so that no
/// head can saturate, capped to u32 (a lower limit only sends more values to the oracle's
/// formula); 0 when even n = 0 could saturate.
fn n_limit((max_gain, max_offset): (u64, u64)) -> u32 {
    match (i64::MAX as u64).checked_sub(max_offset.saturating_add(1 << 31)) {
        Some(budget) => {
            budget
                .checked_div(max_gain)
                .unwrap_or(u64::MAX)
                .min(u32::MAX as u64 - 1) as u32
                + 1
        }
        None => 0,
    }
}

/// `max |v|` over the i64 little-endian `rows` of a `[4, hidden]` LayerNorm section
/// (`u64::MAX` when a row is missing, which keeps the fast paths off).
fn max_abs_rows(raw: &[u8], hidden: usize, rows: [usize; 2]) -> u64 {
    let mut max = 0u64;
    for r in rows {
        let Some(bytes) = raw.get(r * hidden * 8..(r + 1) * hidden * 8) else {
            return u64::MAX;
        };
        for b in bytes.chunks_exact(8) {
            max = max.max(chunk_i64(b).unsigned_abs());
        }
    }
    max
}

/// The i64 of an 8-byte chunk (the chunks come from `chunks_exact(8)`, so the 0 is never taken).
#[inline(always)]
fn chunk_i64(b: &[u8]) -> i64 {
    le::i64_at(b, 0).unwrap_or(0)
}

#[inline(always)]
fn head(n: i64, gain: i64, offset: i64) -> i64 {
    mul_sat(n, gain)
        .saturating_add(offset)
        .saturating_add(1 << 31)
        >> 32
}

/// [`head`] in 32-bit steps, for `n` that fits i32 and is below `n_limit` (so `head` does not
/// saturate and its result fits i32) on a section with `split` (|gain| < 2^62, |offset| ≤ 2^61).
/// With the gain split as `g = gh·2^32 + gl`, `gl` its low word read as i32 and
/// `gh = (g - gl) / 2^32` (its high word, plus one when `gl` is negative):
/// `(n·g + o + 2^31) >> 32 = n·gh + ((n·gl + o + 2^31) >> 32)` exactly, the inner sum cannot
/// overflow i64 (|n·gl| ≤ 2^62, |o| + 2^31 < 2^62), and the outer sum is computed modulo 2^32,
/// which is exact because the result fits i32. One 32×32+64 multiply-accumulate and one 32-bit
/// multiply-add on 32-bit cores, where the definition takes a 64×64 multiply and saturation.
#[inline(always)]
fn head_split(n: i32, gain: i64, offset: i64) -> i32 {
    let gl = gain as i32;
    let gh = ((gain >> 32) as i32).wrapping_sub(gl >> 31);
    let inner = offset + (1 << 31) + n as i64 * gl as i64;
    n.wrapping_mul(gh).wrapping_add((inner >> 32) as i32)
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
/// into 32×32 products: with `inv = hi·2^32 + lo`, the shift is `d·hi + ((d·lo) >> 32)` exactly,
/// and `lo` read as i32 is `lo − 2^32·[lo ≥ 2^31]`, whose 2^32 multiple passes through the floor
/// shift as `d`. So both products are signed 32×32 (one SMULL each on 32-bit cores) and
/// |result| < 2^63 (no clamp needed); otherwise the i128 product.
#[inline(always)]
fn scale_q32(d: i64, inv: i128) -> i64 {
    if let (Ok(d32), Ok(inv63)) = (i32::try_from(d), i64::try_from(inv)) {
        if inv63 >= 0 {
            // inv63 < 2^63, so hi < 2^31 fits i32.
            let (lo, hi) = (inv63 as u32 as i32, (inv63 >> 32) as i32);
            let d = d32 as i64;
            let low = ((d * lo as i64) >> 32) + if lo < 0 { d } else { 0 };
            return d * hi as i64 + low;
        }
    }
    ((d as i128 * inv) >> 32).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Which loops [`normalize`] runs; all give the oracle's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    /// The scalar formulas in i64/i128 with saturation: the definition.
    Oracle,
    /// Plain 64-bit heads where the section's ranges prove them exact ([`heads_narrow`]).
    Narrow,
    /// The host's AVX-512 loops where provably exact, else `Narrow`.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Vector,
}

/// Normalizes `x` in place into the residual head and writes the matmul head into `mm`.
pub fn layernorm(x: &mut [i32], p: &LnParams<'_>, mm: &mut [i8]) {
    if crate::kernels::scalar_forced() {
        return normalize(x, p, mm, Path::Oracle);
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    return normalize(x, p, mm, Path::Vector);
    #[allow(unreachable_code)]
    normalize(x, p, mm, Path::Narrow)
}

/// [`layernorm`] along `path`.
fn normalize(x: &mut [i32], p: &LnParams<'_>, mm: &mut [i8], path: Path) {
    let h = x.len() as i64;
    if h == 0 {
        return;
    }
    // The sum and the row's range (the fast paths' checks need the range): in one scalar pass
    // on 32-bit cores, in three that vectorize on 64-bit hosts.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    let (sum, lo, hi) = (
        x.iter().map(|&v| v as i64).sum::<i64>(),
        x.iter().copied().min().unwrap_or(0),
        x.iter().copied().max().unwrap_or(0),
    );
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let (sum, lo, hi) = x
        .iter()
        .fold((0i64, i32::MAX, i32::MIN), |(s, lo, hi), &v| {
            (s + v as i64, lo.min(v), hi.max(v))
        });
    let mean = div_round(sum, h);
    let var = squares(x, mean, (lo, hi), path) / h as u128;
    // std in Q16; a constant row (var 0) normalizes to 0, leaving only the offsets.
    let std_q16 = isqrt_u128(var << 32);
    let inv: i128 = (1u128 << 64).checked_div(std_q16).unwrap_or(0) as i128;
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if path == Path::Vector && crate::kernels::x86_ln::heads(x, mm, p.raw, mean, inv, p.n_limit) {
        return;
    }
    if path != Path::Oracle && heads_split(x, p, mm, mean, inv, (lo, hi)) {
        return;
    }
    if path != Path::Oracle && heads_narrow(x, p, mm, mean, inv) {
        return;
    }
    for (j, (v, m)) in x.iter_mut().zip(mm.iter_mut()).enumerate() {
        let d = *v as i64 - mean;
        let n = scale_q32(d, inv);
        *v = head(n, p.get(0, j), p.get(1, j)).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        *m = head(n, p.get(2, j), p.get(3, j)).clamp(-127, 127) as i8;
    }
}

/// `Σ (x - mean)²`, on the host's vector loop where `path` allows it and it is exact.
/// `(lo, hi)` is the row's range: where every squared deviation and their sum fit u64, the sum
/// runs on plain 32×32→64 multiply-accumulates (one per value on 32-bit cores).
fn squares(x: &[i32], mean: i64, (lo, hi): (i32, i32), path: Path) -> u128 {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if path == Path::Vector {
        if let Some(s) = crate::kernels::x86_ln::stats(x, mean) {
            return s;
        }
    }
    let dev = (hi as i64 - mean).max(mean - lo as i64).unsigned_abs();
    let fits = dev < 1 << 31 && (dev as u128 * dev as u128) * (x.len() as u128) < 1 << 64;
    if let (true, true, Ok(mean32)) = (path != Path::Oracle, fits, i32::try_from(mean)) {
        // Every deviation fits i32 (|d| ≤ dev), so the wrapping subtraction is exact.
        return x
            .iter()
            .map(|&v| {
                let d = v.wrapping_sub(mean32) as i64;
                (d * d) as u64
            })
            .fold(0u64, u64::wrapping_add) as u128;
    }
    sum_sq(x, mean)
}

/// The two heads in 32-bit steps ([`head_split`]) for a row whose every `n` is admitted (below
/// `n_limit`, fitting i32, from a deviation that fits i32) on a section with `split`, with `inv`
/// below 2^63; `false`, touching nothing, otherwise. `n` grows with the value (`inv` ≥ 0), so checking the row's smallest and
/// largest value (`lo`, `hi`) admits the row, and the loop over it has no branch.
fn heads_split(
    x: &mut [i32],
    p: &LnParams<'_>,
    mm: &mut [i8],
    mean: i64,
    inv: i128,
    (lo, hi): (i32, i32),
) -> bool {
    let Some([g0, o0, g1, o1]) = p.rows() else {
        return false;
    };
    let (Ok(mean32), Ok(inv64)) = (i32::try_from(mean), i64::try_from(inv)) else {
        return false;
    };
    if !p.split || inv64 < 0 || x.len() > p.hidden {
        return false;
    }
    let admitted = |v: i32| {
        let n = scale_q32(v as i64 - mean, inv);
        let deviation_fits = i32::try_from(v as i64 - mean).is_ok();
        deviation_fits && n.unsigned_abs() < p.n_limit as u64 && i32::try_from(n).is_ok()
    };
    if !admitted(lo) || !admitted(hi) {
        return false;
    }
    // scale_q32 with the row's inverse split once: inv = ih·2^32 + il, il read as i32 (its
    // 2^32 multiple, when il is negative, passes through the floor shift as d). Every n fits
    // i32 (checked above), so its sum may be formed modulo 2^32.
    let (il, ih) = (inv64 as i32, (inv64 >> 32) as i32);
    let carry = if il < 0 { -1i32 } else { 0 };
    // Whole 8-byte parameters, as arrays: the loop below then reads them without length checks.
    let rows: [&[[u8; 8]]; 4] = [g0, o0, g1, o1].map(bytemuck::cast_slice);
    let [g0, o0, g1, o1] = rows;
    let params = g0.iter().zip(o0).zip(g1.iter().zip(o1));
    for ((v, m), ((g0, o0), (g1, o1))) in x.iter_mut().zip(mm.iter_mut()).zip(params) {
        // Between the row's extremes, whose deviations were admitted: it fits i32.
        let d = v.wrapping_sub(mean32);
        let n = d
            .wrapping_mul(ih)
            .wrapping_add(((d as i64 * il as i64) >> 32) as i32)
            .wrapping_add(d & carry);
        let le = |b: &[u8; 8]| i64::from_le_bytes(*b);
        *v = head_split(n, le(g0), le(o0));
        *m = head_split(n, le(g1), le(o1)).clamp(-127, 127) as i8;
    }
    true
}

/// The two heads without saturating arithmetic wherever the section's ranges (found at load,
/// `n_limit`) prove it cannot saturate; `false`, touching nothing, when the section is short.
/// For |n| < n_limit, `n·gain + offset + 2^31` stays below 2^63 in magnitude, so [`head`] is the
/// plain 64-bit sum; on 32-bit cores that is three multiplies and two add pairs, where the
/// saturating 64×64 arithmetic and byte-wise parameter reads of the oracle cost several times as
/// many instructions. A larger n (never seen in real rows) takes the oracle's formula.
fn heads_narrow(x: &mut [i32], p: &LnParams<'_>, mm: &mut [i8], mean: i64, inv: i128) -> bool {
    let Some([g0, o0, g1, o1]) = p.rows() else {
        return false;
    };
    if x.len() > p.hidden {
        return false;
    }
    let params = g0
        .chunks_exact(8)
        .zip(o0.chunks_exact(8))
        .zip(g1.chunks_exact(8).zip(o1.chunks_exact(8)));
    for ((v, m), ((g0, o0), (g1, o1))) in x.iter_mut().zip(mm.iter_mut()).zip(params) {
        let n = scale_q32(*v as i64 - mean, inv);
        let (g0, o0, g1, o1) = (chunk_i64(g0), chunk_i64(o0), chunk_i64(g1), chunk_i64(o1));
        let (r, q) = if n.unsigned_abs() < p.n_limit as u64 {
            (
                (n * g0 + o0 + (1 << 31)) >> 32,
                (n * g1 + o1 + (1 << 31)) >> 32,
            )
        } else {
            (head(n, g0, o0), head(n, g1, o1))
        };
        *v = r.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        *m = q.clamp(-127, 127) as i8;
    }
    true
}

#[cfg(all(test, feature = "std"))]
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

    /// Parameters of the ranges real packages have (gains below 2^40, offsets below 2^61),
    /// with edges where some n passes `n_limit` and some does not.
    fn narrow_params(h: usize) -> impl Strategy<Value = Vec<u8>> {
        let gain = prop_oneof![
            8 => -(1i64 << 20)..(1i64 << 20),
            1 => Just((1i64 << 40) - 1),
            1 => Just(-(1i64 << 40) + 1),
            1 => -(1i64 << 40) + 1..(1i64 << 40),
        ];
        let offset = prop_oneof![
            8 => -(1i64 << 40)..(1i64 << 40),
            1 => Just(1i64 << 61),
            1 => Just(-(1i64 << 61)),
            1 => -(1i64 << 61)..=(1i64 << 61),
        ];
        proptest::collection::vec((gain.clone(), offset.clone(), gain, offset), h).prop_map(|v| {
            let rows: [Vec<i64>; 4] = [
                v.iter().map(|p| p.0).collect(),
                v.iter().map(|p| p.1).collect(),
                v.iter().map(|p| p.2).collect(),
                v.iter().map(|p| p.3).collect(),
            ];
            rows.iter()
                .flatten()
                .flat_map(|g| g.to_le_bytes())
                .collect()
        })
    }

    /// Runs `path` and the oracle on copies of `x`; both heads must agree.
    fn agree(x: Vec<i32>, raw: &[u8], path: Path) -> Result<(), TestCaseError> {
        let h = x.len();
        let p = LnParams::new(raw, h);
        let (mut a, mut b) = (x.clone(), x);
        let (mut ma, mut mb) = (vec![0i8; h], vec![0i8; h]);
        normalize(&mut a, &p, &mut ma, path);
        normalize(&mut b, &p, &mut mb, Path::Oracle);
        prop_assert_eq!(a, b);
        prop_assert_eq!(ma, mb);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The host's vector statistics and heads give the oracle's bytes (or step aside).
        #[cfg(target_arch = "x86_64")]
        #[test]
        #[cfg_attr(not(pith_cpu_avx512_ln), ignore = "not run: CPU lacks AVX-512 F/DQ/BW/VL")]
        fn vector_equals_oracle((x, raw) in row().prop_flat_map(|x| { let h = x.len(); (Just(x), params(h)) })) {
            // Without the instructions the vector path is the oracle: comparing would prove nothing.
            prop_assert!(crate::kernels::x86_ln::available(), "built on a CPU with AVX-512, run on one without");
            agree(x, &raw, Path::Vector)?;
        }

        /// The unsaturated heads give the oracle's bytes inside their ranges and step aside outside.
        #[test]
        fn narrow_equals_oracle((x, raw) in row().prop_flat_map(|x| { let h = x.len(); (Just(x), narrow_params(h)) })) {
            agree(x, &raw, Path::Narrow)?;
        }

        #[test]
        fn narrow_steps_aside_outside_its_ranges((x, raw) in row().prop_flat_map(|x| { let h = x.len(); (Just(x), params(h)) })) {
            agree(x, &raw, Path::Narrow)?;
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
        // n_limit is the exact bound: the largest admitted |n| cannot saturate, the next one can
        // (unless the u32 cap decided).
        for max_gain in [
            0u64,
            1,
            3,
            1 << 20,
            (1 << 31) - 1,
            1 << 40,
            1 << 62,
            u64::MAX,
        ] {
            for max_offset in [
                0u64,
                1 << 40,
                1 << 61,
                (1 << 63) - (1 << 31) - 1,
                1 << 63,
                u64::MAX,
            ] {
                let fits = |n: u64| {
                    (n as u128) * max_gain as u128 + max_offset as u128 + (1 << 31) < 1 << 63
                };
                let limit = n_limit((max_gain, max_offset)) as u64;
                if limit == 0 {
                    assert!(!fits(0), "{max_gain} {max_offset}");
                    continue;
                }
                assert!(fits(limit - 1), "{max_gain} {max_offset}");
                assert!(
                    limit == u32::MAX as u64 || !fits(limit),
                    "{max_gain} {max_offset}"
                );
            }
        }
        // head_split at the edges of its domain: wherever n is admitted it is the definition.
        let gains = [
            0i64,
            1,
            -1,
            (1 << 31) - 1,
            -(1 << 31),
            1 << 31,
            (1 << 33) + 12_345,
            -(1 << 40) + 7,
            (1 << 62) - 1,
            -(1 << 62) + 1,
        ];
        let offsets = [0i64, 1 << 61, -(1 << 61), (1 << 48) - 3, -(1 << 31)];
        for &g in &gains {
            for &o in &offsets {
                let limit = n_limit((g.unsigned_abs(), o.unsigned_abs())) as i64;
                for n in [
                    0i64,
                    1,
                    -1,
                    limit - 1,
                    1 - limit,
                    i32::MAX as i64,
                    i32::MIN as i64,
                    65_536,
                    -1_234_567,
                ] {
                    if n.unsigned_abs() < limit as u64 && i32::try_from(n).is_ok() {
                        assert_eq!(
                            head_split(n as i32, g, o) as i64,
                            head(n, g, o),
                            "{n} {g} {o}"
                        );
                    }
                }
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
