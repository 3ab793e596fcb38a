//! Fixed-point requantization: `real multiplier = m * 2^-shift`, applied with round-half-up.
//! The same integer arithmetic on every CPU, hence the same bytes everywhere.

/// `round(acc * m / 2^shift)`, computed in i64 (acc and m both fit i32, so the product cannot
/// overflow). `shift` is clamped to 0..=62 so a hostile package cannot make a shift panic.
#[inline(always)]
pub fn rq(acc: i64, m: i32, shift: i32) -> i64 {
    let sh = shift.clamp(0, 62) as u32;
    // An accumulator that fits i32 (nearly all: a dot product plus a bias) needs neither the
    // saturating 64×64 multiply nor the saturating add: |acc·m| ≤ 2^62 and the rounding term
    // ≤ 2^61 cannot overflow. On 32-bit cores this is one SMULL instead of a library call.
    if let Ok(a) = i32::try_from(acc) {
        let p = a as i64 * m as i64;
        return if sh == 0 {
            p
        } else {
            (p + (1i64 << (sh - 1))) >> sh
        };
    }
    let p = acc.saturating_mul(m as i64);
    if sh == 0 {
        p
    } else {
        p.saturating_add(1i64 << (sh - 1)) >> sh
    }
}

/// [`rq`] then saturation to the symmetric int8 range.
#[inline(always)]
pub fn rq_i8(acc: i64, m: i32, shift: i32) -> i8 {
    rq(acc, m, shift).clamp(-127, 127) as i8
}

/// [`rq`] then saturation to i32.
#[inline(always)]
pub fn rq_i32(acc: i64, m: i32, shift: i32) -> i32 {
    rq(acc, m, shift).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Whether every output of a channel with bias `b` and requantization `(m, shift)` over `k` int8
/// products can take [`rq_narrow`]: `shift` in 1..=62, `acc + b` fits i32 for any int8 inputs
/// (|acc| ≤ k·128·128), and `(acc + b)·m >> (shift - 1)` fits i32 with room for the rounding
/// step. Checked once per linear layer at load; real packages meet it everywhere (their
/// multipliers are ~2^30..2^31 with shifts of 25 or more).
pub fn narrow_ok(k: usize, b: i32, m: i32, shift: i32) -> bool {
    narrow_ok_for((k as u128) * 128 * 128 + b.unsigned_abs() as u128, m, shift)
}

/// [`narrow_ok`] for a channel whose `|acc + b|` is at most `smax`, however that bound was
/// found (the 16-bit FFN's comes from its weights, see [`wide_bound`]).
pub fn narrow_ok_for(smax: u128, m: i32, shift: i32) -> bool {
    if !(1..=62).contains(&shift) {
        return false;
    }
    let limit = (i32::MAX as u128 - 1) << (shift - 1);
    smax < i32::MAX as u128 && smax * (m.unsigned_abs() as u128) < limit
}

/// The largest `|s|` of the 16-bit FFN's down projection for one channel: `s = y·w + 128·b` with
/// every 16-bit activation `|y| ≤ 2^14` ([`super::GELU16_MIN`]) and `abs_w = Σ|w|` over the
/// channel's weight row. A bound from the weights themselves: the worst case over any int8 row
/// (2^14·127·k) does not fit i32 for k = 1536, real rows (Σ|w| ≈ 30·k) do by far.
pub fn wide_bound(abs_w: u64, b: i32) -> u128 {
    (super::GELU16_MIN.unsigned_abs() as u128) * abs_w as u128 + 128 * b.unsigned_abs() as u128
}

/// [`rq_i32`]`(s, m, shift)` for a channel that [`narrow_ok`] admits, in 32-bit steps: one
/// 32×32→64 multiply, one 64-bit shift by `shift - 1` of which only the low word is kept, then
/// the last halving with rounding half up. Exact because `floor((p + 2^(sh-1)) / 2^sh)` equals
/// `floor((floor(p / 2^(sh-1)) + 1) / 2)` and `narrow_ok` keeps `p >> (sh-1)` below `i32::MAX`.
/// Out of its domain it returns some value without fault (no panic, no overflow trap).
#[inline(always)]
pub fn rq_narrow(s: i32, m: i32, shift: i32) -> i32 {
    rq_narrow_by(s, m, narrow_by(shift))
}

/// The first shift of [`rq_narrow`], `shift - 1` (kept in 0..=63), for a caller that computes it
/// once per channel and calls [`rq_narrow_by`] per output.
#[inline(always)]
pub fn narrow_by(shift: i32) -> i32 {
    shift.wrapping_sub(1) & 63
}

/// [`rq_narrow`] with its first shift from [`narrow_by`].
#[inline(always)]
pub fn rq_narrow_by(s: i32, m: i32, by: i32) -> i32 {
    rq_narrow_half(s, m, by).wrapping_add(1) >> 1
}

/// [`rq_narrow_by`] short of its last step: `y` with the result `(y + 1) >> 1` (and, in the
/// domain of [`narrow_ok`], `y < i32::MAX`), for a caller that clamps before halving.
#[inline(always)]
pub fn rq_narrow_half(s: i32, m: i32, by: i32) -> i32 {
    ((s as i64 * m as i64) >> (by & 63)) as i32
}

/// Rounded division of `a` by a positive `b` (half away from zero).
#[inline]
pub fn div_round(a: i64, b: i64) -> i64 {
    if b <= 0 {
        return 0;
    }
    if a >= 0 {
        (a + b / 2) / b
    } else {
        -((-a + b / 2) / b)
    }
}

/// The context requantization of one row whose probabilities sum to `sum`: the layer's `(m, shift)`
/// (for probabilities summing to 255) times `255 / sum`, as `(m', shift + k)` with `k` the largest
/// such that `255·2^k <= sum`, which keeps `m'` within `m` and its precision at 31 bits.
#[inline]
pub fn ctx_rq((m, shift): (i32, i32), sum: u32) -> (i32, i32) {
    let s = sum.max(1);
    let k = (s / 255).max(1).ilog2();
    let m2 = div_round(((m as i64) * 255) << k, s as i64);
    (
        m2.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        shift.saturating_add(k as i32),
    )
}

/// Floor of the square root of a u128.
pub fn isqrt_u128(v: u128) -> u128 {
    if v < 2 {
        return v;
    }
    // Bit-by-bit method: exact, branch-light and without floating point.
    let mut rem = v;
    let mut root: u128 = 0;
    let mut bit: u128 = 1 << ((127 - v.leading_zeros()) & !1);
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

#[cfg(test)]
mod narrow_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 20_000,
            max_global_rejects: 1_000_000,
            ..ProptestConfig::default()
        })]
        /// Wherever `narrow_ok` admits a channel, the short path is the definition exactly.
        #[test]
        fn rq_narrow_is_rq_where_admitted(
            k in 1usize..4096,
            b in prop_oneof![any::<i32>(), -(1i32 << 26)..(1 << 26)],
            m in any::<i32>(),
            shift in prop_oneof![-2i32..70, 20i32..45],
            frac in -1.0f64..=1.0,
        ) {
            prop_assume!(narrow_ok(k, b, m, shift));
            // Any accumulator the k products can make, the extremes included.
            let amax = (k * 128 * 128) as f64;
            for acc in [(frac * amax) as i64, amax as i64, -(amax as i64), 0, 1, -1] {
                let s = acc + b as i64;
                prop_assert_eq!(rq_narrow(s as i32, m, shift), rq_i32(s, m, shift), "s {} m {} shift {}", s, m, shift);
            }
        }
    }

    #[test]
    fn narrow_ok_refuses_what_could_overflow() {
        assert!(narrow_ok(384, 28_576, 2_147_382_496, 25));
        assert!(!narrow_ok(384, 0, 1 << 30, 0)); // no rounding bit to split off
        assert!(!narrow_ok(384, 0, 1 << 30, 63));
        assert!(!narrow_ok(384, i32::MAX, 1, 40)); // acc + b overflows i32
        assert!(!narrow_ok(1536, 0, i32::MAX, 20)); // the product's shifted value does not fit
    }

    /// At the edge of the domain: for each shift the largest admitted multiplier, both signs,
    /// against the largest accumulators of either sign.
    #[test]
    fn rq_narrow_is_exact_at_the_edge_of_its_domain() {
        for k in [1usize, 384, 1536] {
            for b in [0i32, 1000, -1000] {
                for shift in 1..=62 {
                    let (mut lo, mut hi) = (0i64, i32::MAX as i64 + 1);
                    while hi - lo > 1 {
                        let mid = (lo + hi) / 2;
                        if narrow_ok(k, b, mid as i32, shift) {
                            lo = mid
                        } else {
                            hi = mid
                        }
                    }
                    let amax = (k * 128 * 128) as i64;
                    for m in [lo as i32, -(lo as i32)] {
                        for s in [
                            amax + b as i64,
                            -amax + b as i64,
                            b as i64 + 1,
                            b as i64 - 1,
                        ] {
                            assert_eq!(
                                rq_narrow(s as i32, m, shift),
                                rq_i32(s, m, shift),
                                "{k} {b} {shift} {m} {s}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_floor_sqrt() {
        for v in (0u128..5000).chain([u64::MAX as u128, (1u128 << 100) + 12345, u128::MAX]) {
            let r = isqrt_u128(v);
            assert!(r * r <= v, "{v}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|s| s > v), "{v}");
        }
    }

    #[test]
    fn rq_rounds_half_up_and_never_panics() {
        assert_eq!(rq(3, 1 << 30, 31), 2); // 1.5 -> 2
        assert_eq!(rq(-3, 1 << 30, 31), -1); // -1.5 -> -1 (half up)
                                             // A shift past 62 is clamped: (2^31-1)^2 / 2^62 rounds to 1.
        assert_eq!(rq(i32::MAX as i64, i32::MAX, 200), 1);
        assert_eq!(rq(5, 7, -4), 35);
        assert_eq!(rq_i8(1 << 40, 1 << 30, 1), 127);
    }

    /// The i32 fast path gives what the saturating i64 arithmetic gives, at the extremes too.
    #[test]
    fn rq_fast_path_equals_the_saturating_formula() {
        let slow = |acc: i64, m: i32, shift: i32| {
            let sh = shift.clamp(0, 62) as u32;
            let p = acc.saturating_mul(m as i64);
            if sh == 0 {
                p
            } else {
                p.saturating_add(1i64 << (sh - 1)) >> sh
            }
        };
        let accs = [i32::MIN as i64, -5, -1, 0, 1, 3, 1 << 20, i32::MAX as i64];
        let ms = [i32::MIN, -7, 0, 1, 1 << 30, i32::MAX];
        for &a in &accs {
            for &m in &ms {
                for sh in [-3, 0, 1, 2, 15, 31, 32, 61, 62, 63, 200] {
                    assert_eq!(rq(a, m, sh), slow(a, m, sh), "{a} {m} {sh}");
                }
            }
        }
    }

    /// A row summing to 255 keeps the layer's constants; any other sum scales them by 255/sum to
    /// within one unit of the multiplier's last place, and the multiplier never grows.
    #[test]
    fn ctx_rq_divides_by_the_row_sum() {
        for m in [1 << 30, 1_518_500_250, i32::MAX, 3] {
            assert_eq!(ctx_rq((m, 20), 255), (m, 20));
            for sum in (255..100_000).step_by(37).chain([255 * 128, u32::MAX]) {
                let (m2, sh2) = ctx_rq((m, 20), sum);
                assert!(m2 <= m && sh2 >= 20, "{m} {sum}");
                let want = m as f64 * 255.0 / sum as f64 / 2f64.powi(20);
                let got = m2 as f64 / 2f64.powi(sh2);
                assert!(
                    (got - want).abs() <= want * 1e-8 + 2f64.powi(-sh2),
                    "{m} {sum}"
                );
            }
        }
        // A hostile table can make a row sum to 0: no division by zero, no overflow.
        assert_eq!(ctx_rq((i32::MAX, 3), 0).1, 3);
    }
}
