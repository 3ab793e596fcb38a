//! x86-64 GEMM kernels over [`PackedLinear`]: one pass over a sentence's tokens per layer, weights
//! reused across every token of a register tile.
//!
//! AVX-512 VNNI: a tile is up to 8 tokens × 32 channels (16 zmm accumulators); per group of 4
//! inputs it loads 2 weight lines (unsigned `w + 128`) and issues `vpdpbusd` with each token's
//! 4-byte activation word broadcast straight from memory (64 MACs per instruction, no
//! intermediate saturation). The epilogue subtracts each token's `128 · Σx`.
//!
//! AVX2: a tile is up to 4 tokens × 16 channels; ggml's sign trick keeps `vpmaddubsw` exact:
//! `|x|` (0..=128) times `w · sign(x)` (-127..=127) pairs sum to at most 32512 < 32767.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::layout::{Isa, Line, PackedLinear, BLOCK};
use super::{meet, Input};
use crate::fixed::{GELU16_KNOTS, GELU16_MAX, GELU16_MIN};
use crate::kernels::epilogue::Epilogue;

/// Most tokens per VNNI tile (14 tokens × 2 blocks = 28 of the 32 zmm registers accumulate, 2
/// hold weights, 1 the broadcast).
const MR_VNNI: usize = 14;
/// Tokens per AVX2 tile (4 tokens × 2 ymm = 8 of the 16 ymm registers accumulate).
const MR_AVX2: usize = 4;
/// Raw sums of one tile: `[token][block][channel]`.
type Tile = [[[i32; BLOCK]; 2]; MR_VNNI];

/// `epi` ← the layer `p` over `tokens` rows of `x`.
pub fn gemm(p: &PackedLinear, x: Input<'_>, tokens: usize, epi: &mut Epilogue<'_>) {
    // The tiles read whole rows through raw pointers: never more rows than `x` holds, whatever
    // the caller passed (a safe function cannot rely on the caller's shapes).
    let tokens = x.rows(p.inputs().max(1), tokens);
    match p.isa() {
        // SAFETY: `PackedLinear::with_isa` only builds a layer for an ISA the CPU supports.
        Isa::Avx512Vnni => unsafe { gemm_vnni(p, x, tokens, epi) },
        // SAFETY: as above.
        Isa::Avx2 => unsafe { gemm_avx2(p, x, tokens, epi) },
    }
}

/// The 4-byte activation word of group `g` of the row at `row`.
///
/// # Safety
/// `row + 4g + 4` bytes must be readable.
#[inline(always)]
unsafe fn word(row: *const i8, g: usize) -> i32 {
    // SAFETY: the caller's bound.
    unsafe { (row.add(4 * g) as *const i32).read_unaligned() }
}

/// One VNNI tile: `MR` tokens from `x` (rows of `k`) × `NR` blocks from `w` (blocks `groups` lines apart).
///
/// # Safety
/// CPU with AVX-512F/BW/VNNI; `x` points at `MR` rows of `k = 4 · groups` readable bytes; `w` at
/// `NR` blocks of `groups` lines.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_vnni<const MR: usize, const NR: usize>(
    w: *const Line,
    groups: usize,
    x: *const i8,
    k: usize,
    out: &mut Tile,
) {
    let mut acc = [[_mm512_setzero_si512(); NR]; MR];
    for g in 0..groups {
        let mut wv = [_mm512_setzero_si512(); NR];
        for (j, v) in wv.iter_mut().enumerate() {
            // SAFETY: line j*groups+g lies in the caller's NR blocks; lines are 64-byte aligned.
            *v = unsafe { _mm512_load_si512(w.add(j * groups + g) as *const _) };
        }
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: row i has k = 4·groups readable bytes. (LLVM folds the broadcast into
            // `vpdpbusd`'s memory operand.)
            let xb = _mm512_set1_epi32(unsafe { word(x.add(i * k), g) });
            for (aj, &wj) in a.iter_mut().zip(wv.iter()) {
                *aj = _mm512_dpbusd_epi32(*aj, wj, xb);
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        for (oj, aj) in o.iter_mut().zip(a.iter()) {
            // SAFETY: `oj` is 16 i32 = 64 bytes; storeu has no alignment requirement.
            unsafe { _mm512_storeu_si512(oj.as_mut_ptr() as *mut _, *aj) };
        }
    }
}

/// Calls `$f::<MR, NR>` for runtime `mr` (1..=14) and `nr` (1 or 2).
macro_rules! by_shape {
    ($f:ident, $mr:expr, $nr:expr, ($($arg:expr),*)) => {
        match ($mr, $nr) {
            (1, 1) => $f::<1, 1>($($arg),*), (2, 1) => $f::<2, 1>($($arg),*),
            (3, 1) => $f::<3, 1>($($arg),*), (4, 1) => $f::<4, 1>($($arg),*),
            (5, 1) => $f::<5, 1>($($arg),*), (6, 1) => $f::<6, 1>($($arg),*),
            (7, 1) => $f::<7, 1>($($arg),*), (8, 1) => $f::<8, 1>($($arg),*),
            (9, 1) => $f::<9, 1>($($arg),*), (10, 1) => $f::<10, 1>($($arg),*),
            (11, 1) => $f::<11, 1>($($arg),*), (12, 1) => $f::<12, 1>($($arg),*),
            (13, 1) => $f::<13, 1>($($arg),*), (_, 1) => $f::<14, 1>($($arg),*),
            (1, _) => $f::<1, 2>($($arg),*), (2, _) => $f::<2, 2>($($arg),*),
            (3, _) => $f::<3, 2>($($arg),*), (4, _) => $f::<4, 2>($($arg),*),
            (5, _) => $f::<5, 2>($($arg),*), (6, _) => $f::<6, 2>($($arg),*),
            (7, _) => $f::<7, 2>($($arg),*), (8, _) => $f::<8, 2>($($arg),*),
            (9, _) => $f::<9, 2>($($arg),*), (10, _) => $f::<10, 2>($($arg),*),
            (11, _) => $f::<11, 2>($($arg),*), (12, _) => $f::<12, 2>($($arg),*),
            (13, _) => $f::<13, 2>($($arg),*), _ => $f::<14, 2>($($arg),*),
        }
    };
}

/// Tokens per VNNI tile for a sentence of `tokens`: as few passes over the weights as the 32
/// registers allow (14 tokens × 2 blocks = 28 accumulators), split evenly so no pass is a sliver.
fn tile_height(tokens: usize) -> usize {
    let passes = tokens.div_ceil(MR_VNNI);
    tokens.div_ceil(passes.max(1))
}

/// Row `t0` of each plane of `x` (only the first for int8 rows).
fn at(x: Input<'_>, t0: usize, k: usize) -> (*const i8, *const i8) {
    match x {
        Input::I8(x) => (x[t0 * k..].as_ptr(), core::ptr::null()),
        Input::Planes(h, l) => (h[t0 * k..].as_ptr(), l[t0 * k..].as_ptr()),
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_vnni(p: &PackedLinear, x: Input<'_>, tokens: usize, epi: &mut Epilogue<'_>) {
    let mut tile: Tile = [[[0; BLOCK]; 2]; MR_VNNI];
    // Each token's share of the `+128` in the weights: Σ (w + 128)·x = Σ w·x + 128 · Σ x.
    let corr: Vec<i32> = x
        .sums(p.inputs(), tokens)
        .iter()
        .map(|s| s.wrapping_mul(128))
        .collect();
    let mut b0 = 0;
    // Channel blocks outside, tokens inside: a block pair's weights (groups × 128 bytes) stay in
    // L1/L2 while every token tile reads them.
    while b0 < p.blocks() {
        let nr = (p.blocks() - b0).min(2);
        let height = tile_height(tokens);
        let mut t0 = 0;
        while t0 < tokens {
            let mr = (tokens - t0).min(height);
            let (x0, x1) = at(x, t0, p.inputs());
            // SAFETY: blocks b0..b0+nr and tokens t0..t0+mr are in range (loop bounds; both
            // planes hold `tokens` rows); the CPU features were checked when `p` was built.
            unsafe {
                let w = p.lines().as_ptr().add(b0 * p.groups());
                let (g, k) = (p.groups(), p.inputs());
                by_shape!(tile_vnni, mr, nr, (w, g, x0, k, &mut tile));
                if !x1.is_null() {
                    let high = tile;
                    by_shape!(tile_vnni, mr, nr, (w, g, x1, k, &mut tile));
                    meet(
                        tile.as_flattened_mut().as_flattened_mut(),
                        high.as_flattened().as_flattened(),
                    );
                }
            }
            for (i, row) in tile.iter().enumerate().take(mr) {
                for (j, sums) in row.iter().enumerate().take(nr) {
                    // SAFETY: AVX-512F/BW/VL were checked when `p` was built.
                    unsafe { epilogue_block(p, t0 + i, b0 + j, sums, corr[t0 + i], epi) };
                }
            }
            t0 += mr;
        }
        b0 += nr;
    }
}

/// One AVX2 tile: `MR` tokens × one block of 16 channels (two ymm of 8).
///
/// # Safety
/// CPU with AVX2; as [`tile_vnni`] with one block; the block's weights contain no -128.
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2<const MR: usize, const NR: usize>(
    w: *const Line,
    groups: usize,
    x: *const i8,
    k: usize,
    out: &mut Tile,
) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    for g in 0..groups {
        // SAFETY: line g of the block; 64-byte aligned, so both 32-byte halves are aligned.
        let (w0, w1) = unsafe {
            let l = w.add(g) as *const __m256i;
            (_mm256_load_si256(l), _mm256_load_si256(l.add(1)))
        };
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: row i has k readable bytes.
            let xb = _mm256_set1_epi32(unsafe { word(x.add(i * k), g) });
            let ax = _mm256_abs_epi8(xb);
            let p0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xb));
            let p1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xb));
            a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(p0, ones));
            a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(p1, ones));
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        // SAFETY: each half is 8 i32 = 32 bytes of the 16-lane block; storeu has no alignment need.
        unsafe {
            _mm256_storeu_si256(o[0].as_mut_ptr() as *mut __m256i, a[0]);
            _mm256_storeu_si256(o[0].as_mut_ptr().add(8) as *mut __m256i, a[1]);
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2(p: &PackedLinear, x: Input<'_>, tokens: usize, epi: &mut Epilogue<'_>) {
    let mut tile: Tile = [[[0; BLOCK]; 2]; MR_VNNI];
    for b in 0..p.blocks() {
        let mut t0 = 0;
        while t0 < tokens {
            let mr = (tokens - t0).min(MR_AVX2);
            let (x0, x1) = at(x, t0, p.inputs());
            // SAFETY: block b and tokens t0..t0+mr are in range; AVX2 and the absence of -128 were
            // checked when `p` was built.
            unsafe {
                let w = p.lines().as_ptr().add(b * p.groups());
                let (g, k) = (p.groups(), p.inputs());
                by_shape!(tile_avx2, mr, 1, (w, g, x0, k, &mut tile));
                if !x1.is_null() {
                    let high = tile;
                    by_shape!(tile_avx2, mr, 1, (w, g, x1, k, &mut tile));
                    meet(
                        tile.as_flattened_mut().as_flattened_mut(),
                        high.as_flattened().as_flattened(),
                    );
                }
            }
            for (i, row) in tile.iter().enumerate().take(mr) {
                p.store_block(t0 + i, b, &row[0], 0, epi);
            }
            t0 += mr;
        }
    }
}

/// The vector form of [`Epilogue::store`] for one 16-channel block of token `t`: the same i64
/// arithmetic as the oracle's `rq` (exact here because the pack-time bound keeps `|acc + b| < 2^31`,
/// so `(acc + b)·m` fits in 62 bits and adding the rounding term cannot overflow).
///
/// # Safety
/// CPU with AVX-512F/BW/VL (and VBMI when `p.vbmi()`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn epilogue_block(
    p: &PackedLinear,
    t: usize,
    block: usize,
    sums: &[i32; BLOCK],
    corr: i32,
    epi: &mut Epilogue<'_>,
) {
    let base = block * BLOCK;
    let valid = p.outputs().saturating_sub(base).min(BLOCK);
    let at = t * p.outputs() + base;
    let fits = match epi {
        Epilogue::I8(o) | Epilogue::Gelu(o, _) => at + valid <= o.len(),
        Epilogue::Residual(r) => at + valid <= r.len(),
        Epilogue::Gelu16 { hi, lo, .. } => at + valid <= hi.len().min(lo.len()),
    };
    let table_ok = match epi {
        Epilogue::Gelu(_, table) => table.len() >= 256 && p.vbmi(),
        Epilogue::Gelu16 { table, .. } => table.len() >= 4 * GELU16_KNOTS,
        _ => true,
    };
    if !fits || !table_ok {
        p.store_block(t, block, sums, corr, epi);
        return;
    }
    let mask = ((1u32 << valid) - 1) as u16;
    // SAFETY: the per-channel vectors are padded to blocks*16 and `base + 16` <= that length;
    // `sums` is 16 i32.
    let (bias, mult, shift) = p.constants();
    let (lo, hi) = unsafe {
        let s = _mm512_sub_epi32(
            _mm512_add_epi32(
                _mm512_loadu_si512(sums.as_ptr() as *const _),
                _mm512_loadu_si512(bias.as_ptr().add(base) as *const _),
            ),
            _mm512_set1_epi32(corr),
        );
        let m = _mm512_loadu_si512(mult.as_ptr().add(base) as *const _);
        let sh = _mm512_loadu_si512(shift.as_ptr().add(base) as *const _);
        let half = |v: __m512i, upper: bool| {
            _mm512_cvtepi32_epi64(if upper {
                _mm512_extracti64x4_epi64::<1>(v)
            } else {
                _mm512_castsi512_si256(v)
            })
        };
        let rq = |upper: bool| {
            let (s, m, sh) = (half(s, upper), half(m, upper), half(sh, upper));
            // 1 << (sh - 1), or 0 when sh == 0.
            let round = _mm512_srli_epi64::<1>(_mm512_sllv_epi64(_mm512_set1_epi64(1), sh));
            _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(s, m), round), sh)
        };
        (rq(false), rq(true))
    };
    match epi {
        Epilogue::I8(out) => {
            let v = i8_lanes(lo, hi);
            // SAFETY: `at + valid <= out.len()` (checked above); the store is masked to `valid`.
            unsafe { _mm_mask_storeu_epi8(out.as_mut_ptr().add(at), mask, v) };
        }
        Epilogue::Gelu(out, table) => {
            // SAFETY: the table has 256 entries; VBMI was detected (`p.vbmi()`); store as above.
            unsafe {
                let v = gelu_vbmi(i8_lanes(lo, hi), table);
                _mm_mask_storeu_epi8(out.as_mut_ptr().add(at), mask, v);
            }
        }
        Epilogue::Gelu16 {
            hi: oh,
            lo: ol,
            table,
        } => {
            // SAFETY: the table has GELU16_KNOTS words (checked above); stores masked as above.
            unsafe {
                let (h, l) = gelu16_planes(lo, hi, table);
                _mm_mask_storeu_epi8(oh.as_mut_ptr().add(at), mask, h);
                _mm_mask_storeu_epi8(ol.as_mut_ptr().add(at), mask, l);
            }
        }
        Epilogue::Residual(xr) => {
            // SAFETY: `at + valid <= xr.len()`; load and store are masked to `valid`.
            unsafe {
                let dst = xr.as_mut_ptr().add(at);
                let old = _mm512_maskz_loadu_epi32(mask, dst as *const _);
                let (min, max) = (
                    _mm512_set1_epi64(i32::MIN as i64),
                    _mm512_set1_epi64(i32::MAX as i64),
                );
                let clamp = |v: __m512i| _mm512_max_epi64(_mm512_min_epi64(v, max), min);
                let add = |r: __m512i, o: __m256i| {
                    _mm512_cvtepi64_epi32(clamp(_mm512_add_epi64(
                        clamp(r),
                        _mm512_cvtepi32_epi64(o),
                    )))
                };
                let new = _mm512_inserti64x4::<1>(
                    _mm512_castsi256_si512(add(lo, _mm512_castsi512_si256(old))),
                    add(hi, _mm512_extracti64x4_epi64::<1>(old)),
                );
                _mm512_mask_storeu_epi32(dst as *mut _, mask, new);
            }
        }
    }
}

/// Two halves of i64 lanes clamped to -127..=127 and narrowed to 16 int8 lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn i8_lanes(lo: __m512i, hi: __m512i) -> __m128i {
    let (min, max) = (_mm512_set1_epi64(-127), _mm512_set1_epi64(127));
    let lo = _mm512_cvtepi64_epi8(_mm512_max_epi64(_mm512_min_epi64(lo, max), min));
    let hi = _mm512_cvtepi64_epi8(_mm512_max_epi64(_mm512_min_epi64(hi, max), min));
    _mm_unpacklo_epi64(lo, hi)
}

/// [`crate::fixed::gelu16`] and [`crate::fixed::planes`] of 16 requantized i64 lanes (`lo`: channels 0..8, `hi`: 8..16):
/// both knots of each lane by one 8-byte gather per 8 lanes, the interpolation in i32 lanes (|knot difference · 255| < 2^24).
///
/// # Safety
/// CPU with AVX-512F/BW/VL; `table` holds at least [`GELU16_KNOTS`] little-endian i32.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn gelu16_planes(lo: __m512i, hi: __m512i, table: &[u8]) -> (__m128i, __m128i) {
    let (min, max) = (
        _mm512_set1_epi64(i16::MIN as i64),
        _mm512_set1_epi64(i16::MAX as i64),
    );
    let clamp = |v: __m512i| _mm512_cvtepi64_epi32(_mm512_max_epi64(_mm512_min_epi64(v, max), min));
    let x = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(clamp(lo)), clamp(hi));
    let u = _mm512_add_epi32(x, _mm512_set1_epi32(32768));
    let i = _mm512_srli_epi32::<8>(u);
    let f = _mm512_and_si512(u, _mm512_set1_epi32(255));
    // Knots i and i + 1 are adjacent: one 8-byte gather at 4·i fetches both (8 lanes per
    // gather, half the elements of two 4-byte gathers), then the even and odd words are split.
    // SAFETY: i <= 255, so bytes 4·i..4·i + 8 are within the caller's GELU16_KNOTS words.
    let (a, b) = unsafe {
        let base = table.as_ptr() as *const i64;
        let p0 = _mm512_i32gather_epi64::<4>(_mm512_castsi512_si256(i), base as *const _);
        let p1 = _mm512_i32gather_epi64::<4>(_mm512_extracti64x4_epi64::<1>(i), base as *const _);
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        (
            _mm512_permutex2var_epi32(p0, even, p1),
            _mm512_permutex2var_epi32(p0, odd, p1),
        )
    };
    let d = _mm512_mullo_epi32(_mm512_sub_epi32(b, a), f);
    let y = _mm512_add_epi32(
        a,
        _mm512_srai_epi32::<8>(_mm512_add_epi32(d, _mm512_set1_epi32(128))),
    );
    let y = _mm512_max_epi32(
        _mm512_min_epi32(y, _mm512_set1_epi32(GELU16_MAX)),
        _mm512_set1_epi32(GELU16_MIN),
    );
    let h = _mm512_srai_epi32::<7>(_mm512_add_epi32(y, _mm512_set1_epi32(64)));
    let l = _mm512_sub_epi32(y, _mm512_slli_epi32::<7>(h));
    (_mm512_cvtepi32_epi8(h), _mm512_cvtepi32_epi8(l))
}

/// `table[x + 128]` for 16 int8 lanes: two 128-entry `vpermi2b` lookups chosen by the index's top bit.
///
/// # Safety
/// CPU with AVX-512VBMI; `table` has at least 256 entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
unsafe fn gelu_vbmi(x: __m128i, table: &[i8]) -> __m128i {
    // SAFETY: 256 readable bytes (caller).
    let (t0, t1, t2, t3) = unsafe {
        let p = table.as_ptr() as *const __m512i;
        (
            _mm512_loadu_si512(p as *const _),
            _mm512_loadu_si512(p.add(1) as *const _),
            _mm512_loadu_si512(p.add(2) as *const _),
            _mm512_loadu_si512(p.add(3) as *const _),
        )
    };
    let idx = _mm512_castsi128_si512(_mm_xor_si128(x, _mm_set1_epi8(-128)));
    let low = _mm512_permutex2var_epi8(t0, idx, t1);
    let high = _mm512_permutex2var_epi8(t2, idx, t3);
    let top = _mm512_movepi8_mask(idx);
    _mm512_castsi512_si128(_mm512_mask_blend_epi8(top, low, high))
}
