//! AVX-512 VNNI attention for one head over a whole sentence: `Q·Kᵀ` and `P·V` as `vpdpbusd`
//! products on small transposed copies, the score and context requantizations in i64 lanes. The
//! softmax row itself is the caller's (the oracle's) scalar code, so only the two products and
//! their requantizations are re-expressed here, each exactly.
//!
//! Scores: `Kᵀ` is stored as unsigned `k + 128` words (4 head dimensions × one token per lane), the
//! query word is broadcast signed, and each token's `128 · Σ_d q[t][d]` is subtracted.
//! Context: `Vᵀ` words hold 4 consecutive tokens of one head dimension; the probabilities are
//! already unsigned (0..=255) and are broadcast 4 tokens at a time.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use crate::fixed::ctx_rq;

/// Longest sentence and widest head this path takes (longer ones stay on the scalar path).
pub const MAX_TOKENS: usize = 128;
const MAX_HEAD: usize = 64;

/// One head's shapes and constants.
pub struct Head {
    /// Tokens in the sentence.
    pub tokens: usize,
    /// Row stride of Q, K, V and the context (the hidden size).
    pub hidden: usize,
    /// First column of this head.
    pub offset: usize,
    /// Head width.
    pub width: usize,
    /// Score requantization `(m, shift)` to i32.
    pub score_rq: (i32, i32),
    /// Context requantization `(m, shift)` to i8 for probabilities summing to 255.
    pub ctx_rq: (i32, i32),
}

/// True when this CPU runs the path (AVX-512F/BW/VL/VNNI).
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni")
}

/// Computes the head's context into `ctx` (`[tokens, hidden]`, this head's columns) with
/// `softmax((head, row), scores, probs)` turning each row of i32 scores into u8 probabilities
/// (adding whatever it adds to the scores first) and returning their sum (the context divides by it, [`ctx_rq`]). Returns `false`
/// (nothing written) when the shapes are outside this path; the caller then runs the oracle.
pub fn head<F: FnMut((usize, usize), &mut [i32], &mut [u8]) -> u32>(
    h: &Head,
    q: &[i8],
    k: &[i8],
    v: &[i8],
    mut softmax: F,
    ctx: &mut [i8],
) -> bool {
    let (t, w) = (h.tokens, h.width);
    let need = t * h.hidden;
    if !available()
        || t == 0
        || t > MAX_TOKENS
        || w == 0
        || w > MAX_HEAD
        || !w.is_multiple_of(16)
        || h.offset + w > h.hidden
        || q.len() < need
        || k.len() < need
        || v.len() < need
        || ctx.len() < need
    {
        return false;
    }
    // Kᵀ: word (g, u) = k[u][off + 4g .. +4] + 128 per byte; Vᵀ: word (ug, d) = v[4ug .. 4ug+4][off + d].
    let mut kt = [0u32; MAX_HEAD / 4 * MAX_TOKENS];
    let mut vt = [0u32; MAX_TOKENS / 4 * MAX_HEAD];
    let ublocks = t.div_ceil(16);
    let stride = ublocks * 16;
    for u in 0..t {
        let row = &k[u * h.hidden + h.offset..u * h.hidden + h.offset + w];
        for (g, c) in row.chunks_exact(4).enumerate() {
            let word = u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
            kt[g * stride + u] = word ^ 0x8080_8080;
        }
    }
    let groups = t.div_ceil(4);
    for ug in 0..groups {
        for d in 0..w {
            let mut b = [0u8; 4];
            for (i, byte) in b.iter_mut().enumerate() {
                let u = 4 * ug + i;
                if u < t {
                    *byte = v[u * h.hidden + h.offset + d] as u8;
                }
            }
            vt[ug * w + d] = u32::from_le_bytes(b);
        }
    }
    let mut scores = [0i32; MAX_TOKENS];
    let mut probs = [0u8; MAX_TOKENS];
    for row in 0..t {
        let qrow = &q[row * h.hidden + h.offset..row * h.hidden + h.offset + w];
        let corr = 128 * qrow.iter().map(|&x| x as i32).sum::<i32>();
        // SAFETY: features checked; kt holds w/4 groups of `stride` words, `scores` MAX_TOKENS.
        unsafe { scores_row(&kt, stride, ublocks, qrow, corr, h.score_rq, &mut scores) };
        let at = (h.offset / w, row);
        let row_rq = ctx_rq(h.ctx_rq, softmax(at, &mut scores[..t], &mut probs[..t]));
        probs[t..t.next_multiple_of(4)].fill(0);
        let out = &mut ctx[row * h.hidden + h.offset..row * h.hidden + h.offset + w];
        // SAFETY: features checked; vt holds `groups` rows of w words; `out` is w bytes.
        unsafe { context_row(&vt, w, groups, &probs, row_rq, out) };
    }
    true
}

/// `round(s · m / 2^shift)` in i64 lanes, as the oracle's `rq` (exact: |s| < 2^31 here, so the
/// product fits 62 bits and the rounding add cannot overflow).
#[target_feature(enable = "avx512f")]
fn rq_lanes(s: __m512i, m: i32, shift: i32) -> __m512i {
    let sh = _mm512_set1_epi64(shift.clamp(0, 62) as i64);
    let round = _mm512_srli_epi64::<1>(_mm512_sllv_epi64(_mm512_set1_epi64(1), sh));
    let p = _mm512_mul_epi32(s, _mm512_set1_epi64(m as i64));
    _mm512_srav_epi64(_mm512_add_epi64(p, round), sh)
}

/// One row of scores: `rq_i32(q · k[u])` for every token `u` of the `ublocks` 16-token blocks.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; `kt` has `qrow.len() / 4` groups of `stride >= 16·ublocks` words.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn scores_row(
    kt: &[u32],
    stride: usize,
    ublocks: usize,
    qrow: &[i8],
    corr: i32,
    (m, shift): (i32, i32),
    scores: &mut [i32; MAX_TOKENS],
) {
    let (lo, hi) = (
        _mm512_set1_epi64(i32::MIN as i64),
        _mm512_set1_epi64(i32::MAX as i64),
    );
    for b in 0..ublocks {
        let mut acc = _mm512_setzero_si512();
        for (g, c) in qrow.chunks_exact(4).enumerate() {
            let word = i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
            // SAFETY: g·stride + 16b + 16 <= (w/4)·stride words.
            let kv =
                unsafe { _mm512_loadu_si512(kt.as_ptr().add(g * stride + 16 * b) as *const _) };
            acc = _mm512_dpbusd_epi32(acc, kv, _mm512_set1_epi32(word));
        }
        let s = _mm512_sub_epi32(acc, _mm512_set1_epi32(corr));
        let halves = [_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64::<1>(s)];
        for (i, half) in halves.into_iter().enumerate() {
            let r = rq_lanes(_mm512_cvtepi32_epi64(half), m, shift);
            let r = _mm512_cvtepi64_epi32(_mm512_max_epi64(_mm512_min_epi64(r, hi), lo));
            // SAFETY: 16b + 8i + 8 <= 16·ublocks <= MAX_TOKENS.
            unsafe {
                _mm256_storeu_si256(scores.as_mut_ptr().add(16 * b + 8 * i) as *mut __m256i, r)
            };
        }
    }
}

/// One row of context: `rq_i8(Σ_u p[u] · v[u][d])` for every head dimension `d`.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; `vt` has `groups` rows of `out.len()` words (a multiple of 16); `probs`
/// covers `4·groups` entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn context_row(
    vt: &[u32],
    w: usize,
    groups: usize,
    probs: &[u8; MAX_TOKENS],
    (m, shift): (i32, i32),
    out: &mut [i8],
) {
    let (lo, hi) = (_mm512_set1_epi64(-127), _mm512_set1_epi64(127));
    for db in 0..w / 16 {
        let mut acc = _mm512_setzero_si512();
        for ug in 0..groups {
            let p = u32::from_le_bytes([
                probs[4 * ug],
                probs[4 * ug + 1],
                probs[4 * ug + 2],
                probs[4 * ug + 3],
            ]);
            // SAFETY: ug·w + 16db + 16 <= groups·w words.
            let vv = unsafe { _mm512_loadu_si512(vt.as_ptr().add(ug * w + 16 * db) as *const _) };
            acc = _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(p as i32), vv);
        }
        let halves = [
            _mm512_castsi512_si256(acc),
            _mm512_extracti64x4_epi64::<1>(acc),
        ];
        let mut bytes = [0i8; 16];
        for (i, half) in halves.into_iter().enumerate() {
            let r = rq_lanes(_mm512_cvtepi32_epi64(half), m, shift);
            let b = _mm512_cvtepi64_epi8(_mm512_max_epi64(_mm512_min_epi64(r, hi), lo));
            // SAFETY: 8 bytes into the 16-byte buffer.
            unsafe { _mm_storel_epi64(bytes.as_mut_ptr().add(8 * i) as *mut __m128i, b) };
        }
        out[16 * db..16 * db + 16].copy_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generic::attention;
    use proptest::prelude::*;

    /// A stand-in softmax with the same shape (any row function will do: both paths call it on
    /// the same scores), sensitive to every score so a wrong score shows.
    fn toy_softmax(sc: &[i32], p: &mut [u8]) -> u32 {
        for (x, y) in sc.iter().zip(p.iter_mut()) {
            *y = (x.wrapping_mul(2_654_435_761u32 as i32) >> 24) as u8;
        }
        p.iter().map(|&x| x as u32).sum()
    }

    /// Q, K and V come out of `rq_i8`, so they are -127..=127 (the oracle's `dot_i8` relies on it).
    fn byte() -> impl Strategy<Value = i8> {
        prop_oneof![
            Just(-127i8),
            Just(127i8),
            Just(0i8),
            -127..=127i8,
            -127..=127i8
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every sentence length (tails of 4 and 16 tokens) and head width this path takes.
        #[test]
        #[cfg_attr(not(pith_cpu_avx512_vnni), ignore = "not run: CPU lacks AVX-512 F/BW/VL/VNNI")]
        fn equals_oracle(
            (tn, heads, dh, q, k, v) in (1..=40usize, 1..=4usize, prop_oneof![Just(16usize), Just(32), Just(64)])
                .prop_flat_map(|(tn, heads, dh)| {
                    let n = tn * heads * dh;
                    (Just(tn), Just(heads), Just(dh),
                     proptest::collection::vec(byte(), n),
                     proptest::collection::vec(byte(), n),
                     proptest::collection::vec(byte(), n))
                }),
            srq in (any::<i32>(), -3..70i32),
            crq in (any::<i32>(), -3..70i32),
        ) {
            let h = heads * dh;
            let mut want = vec![0i8; tn * h];
            let (mut sc, mut pr) = (vec![0i32; tn], vec![0u8; tn]);
            let mut s1 = Vec::new();
            attention(&q, &k, &v, (tn, h, heads), srq, crq, |_, s: &mut [i32], p: &mut [u8]| { s1.push(s.to_vec()); toy_softmax(s, p) }, (&mut sc, &mut pr), &mut want);
            let mut s2 = Vec::new();
            let mut got = vec![0i8; tn * h];
            for hd in 0..heads {
                let head = Head { tokens: tn, hidden: h, offset: hd * dh, width: dh, score_rq: srq, ctx_rq: crq };
                let ok = super::head(&head, &q, &k, &v, |_, s: &mut [i32], p: &mut [u8]| { s2.push(s.to_vec()); toy_softmax(s, p) }, &mut got);
                // Every case in range is taken (the suite only runs where the CPU has the path).
                prop_assert!(ok, "refused a case in range (available: {})", available());
            }
            let bad = got.iter().zip(&want).position(|(a, b)| a != b);
            prop_assert!(bad.is_none(), "tn {} heads {} dh {} first mismatch {:?} srq {:?} crq {:?} scores same {} {:?} {:?}", tn, heads, dh, bad.map(|i| (i / h, i % h)), srq, crq, s1 == s2, s1.first(), s2.first());
        }
    }
}

/// Without AVX-512 the path refuses and leaves the context alone, so the caller runs the oracle.
#[cfg(test)]
#[cfg(not(pith_cpu_avx512_vnni))]
#[test]
fn refuses_without_avx512() {
    let (q, mut ctx) = (vec![1i8; 64], vec![0i8; 64]);
    let h = Head {
        tokens: 4,
        hidden: 16,
        offset: 0,
        width: 16,
        score_rq: (1 << 30, 31),
        ctx_rq: (1 << 30, 31),
    };
    let mut called = false;
    let ok = head(
        &h,
        &q,
        &q,
        &q,
        |_: &[i32], _: &mut [u8]| {
            called = true;
            0
        },
        &mut ctx,
    );
    assert!(!ok && !called && ctx.iter().all(|&c| c == 0));
}
