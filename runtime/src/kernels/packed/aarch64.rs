//! aarch64 GEMM kernels over [`PackedLinear`]: one pass over a sentence's tokens per layer, each
//! block of weights reused by every token tile. Both kernels read the raw signed layout (offset 0).
//!
//! SDOT (Armv8.2 dotprod): a tile is up to 4 tokens × 16 channels. A 16-byte weight register is 4
//! channels × 4 inputs, so one 64-byte line (a block's group of 4 inputs) is 4 registers; one
//! 16-byte activation load covers 4 groups of a token, and `sdot acc.4s, w.16b, x.4b[lane]` picks
//! the group by lane. Registers: 16 accumulators + 4 activations + 4 weights = 24 of 32, the rest
//! left for the compiler to load the next line early. Per 4 groups: 16 weight loads + 4 activation
//! loads feed 64 `sdot` (1024 MACs).
//!
//! Plain NEON (Armv8.0): a tile is up to 2 tokens × 16 channels. Per pair of groups and 8 weight
//! bytes (2 channels × 4 inputs): `smull` (group g) + `smlal` (group g+1) into i16, then `sadalp`
//! folds adjacent i16 pairs into i32. Exact because weights are -127..=127 (checked at pack time):
//! `|w·x| <= 127·128`, so two products sum to at most 32512 < 32767. Each channel keeps two i32
//! lanes; `addp` folds them once per tile. Registers: 16 accumulators + 8 weights + 4 activations.
//!
//! `vdotq_laneq_s32` is still unstable in Rust (`stdarch_neon_dotprod`), so `sdot` is one inline
//! `asm!` instruction inside a `#[target_feature(enable = "dotprod")]` function (the feature is
//! stable and lets the assembler accept the instruction); loads, stores and the loop are stable
//! intrinsics, which leaves register allocation and scheduling to LLVM. The NEON step
//! (`smull`/`smull2`/`smlal`/`smlal2`/`sadalp` × 2) is one `asm!` block too: from the intrinsics
//! LLVM built every product of the tile first and spilled accumulators in the inner loop.
//!
//! The epilogue ([`epilogue_block`]) requantizes 16 channels in NEON registers with the oracle's
//! i64 arithmetic (`smull`, `sshl` by the channel's shift, saturating narrows); blocks whose
//! outputs are cut short take the scalar [`PackedLinear::store_block`].
#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

use super::layout::{Isa, Line, PackedLinear, BLOCK};
use super::{meet, Input};
use crate::fixed::{gelu16, planes};
use crate::kernels::epilogue::Epilogue;

/// Tokens per SDOT tile (4 tokens × 4 registers = 16 accumulators).
const MR_SDOT: usize = 4;
/// Tokens per NEON tile (2 tokens × 8 registers = 16 accumulators).
const MR_NEON: usize = 2;
/// Raw sums of one tile: `[token][channel]`.
type Tile = [[i32; BLOCK]; MR_SDOT];

/// `epi` ← the layer `p` over `tokens` rows of `x` (`x.len() == tokens * p.inputs()`).
pub fn gemm(p: &PackedLinear, x: Input<'_>, tokens: usize, epi: &mut Epilogue<'_>) {
    let tokens = x.rows(p.inputs().max(1), tokens);
    let mut tile: Tile = [[0; BLOCK]; MR_SDOT];
    let mut high: Tile = [[0; BLOCK]; MR_SDOT];
    let mr_max = match p.isa() {
        Isa::Sdot => MR_SDOT,
        Isa::Neon => MR_NEON,
    };
    // Tiles of even height (13 tokens on SDOT: 4+3+3+3, not 4+4+4+1): the same number of passes
    // over the weights, without a last pass that loads a whole block for one token.
    let height = tokens.div_ceil(tokens.div_ceil(mr_max).max(1)).max(1);
    // Channel blocks outside, tokens inside: a block's weights (groups × 64 bytes, 24 KB for 384
    // inputs) stay in L1 while every token tile reads them.
    for b in 0..p.blocks() {
        let mut t0 = 0;
        while t0 < tokens {
            let mr = (tokens - t0).min(height);
            // SAFETY: block b < p.blocks() has p.groups() lines; tokens t0..t0+mr are rows of x, each
            // k = 4 · groups bytes (loop bounds above). `with_isa` built `p` only for a kernel this
            // CPU supports and, for NEON, only for weights without -128.
            unsafe {
                let w = p.lines().as_ptr().add(b * p.groups());
                let (g, k) = (p.groups(), p.inputs());
                let run = |xr: *const i8, tile: &mut Tile| match (p.isa(), mr) {
                    (Isa::Sdot, 1) => tile_sdot::<1>(w, g, xr, k, tile),
                    (Isa::Sdot, 2) => tile_sdot::<2>(w, g, xr, k, tile),
                    (Isa::Sdot, 3) => tile_sdot::<3>(w, g, xr, k, tile),
                    (Isa::Sdot, _) => tile_sdot::<4>(w, g, xr, k, tile),
                    (Isa::Neon, 1) => tile_neon::<1>(w, g, xr, k, tile),
                    (Isa::Neon, _) => tile_neon::<2>(w, g, xr, k, tile),
                };
                match x {
                    Input::I8(x) => run(x.as_ptr().add(t0 * k), &mut tile),
                    Input::Planes(hi, lo) => {
                        run(hi.as_ptr().add(t0 * k), &mut high);
                        run(lo.as_ptr().add(t0 * k), &mut tile);
                        meet(tile.as_flattened_mut(), high.as_flattened());
                    }
                }
            }
            for (i, sums) in tile.iter().enumerate().take(mr) {
                // SAFETY: both kernels need NEON, which `with_isa` checked when `p` was built.
                unsafe { epilogue_block(p, t0 + i, b, sums, epi) };
            }
            t0 += mr;
        }
    }
}

/// `acc.4s += w.16b · x.4b[LANE]`: lane `c` of `acc` gains the dot product of bytes `4c..4c+4`
/// of `w` with bytes `4·LANE..4·LANE+4` of `x`, exactly (products and sums in i32).
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot_lane<const LANE: u32>(mut acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    // SAFETY: `sdot` (by element) only reads and writes the three vector registers; dotprod is
    // enabled for this function, and its callers run only where the CPU has it.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// The four 16-byte registers of one weight line: register `j` = channels `4j..4j+4`, 4 inputs
/// each.
///
/// # Safety
/// `line` points at a readable [`Line`].
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load_line(line: *const Line) -> [int8x16_t; 4] {
    let l = line as *const i8;
    // SAFETY: the line's 64 bytes are readable (caller); `vld1q_s8` needs no alignment.
    unsafe {
        [
            vld1q_s8(l),
            vld1q_s8(l.add(16)),
            vld1q_s8(l.add(32)),
            vld1q_s8(l.add(48)),
        ]
    }
}

/// The 4-byte activation word of group `g` of the row at `row`, in every 32-bit lane.
///
/// # Safety
/// `row + 4g + 4` bytes must be readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn word_dup(row: *const i8, g: usize) -> int8x16_t {
    // SAFETY: the caller's bound; arena rows carry no 4-byte alignment guarantee, hence unaligned.
    let v = unsafe { (row.add(4 * g) as *const i32).read_unaligned() };
    vreinterpretq_s8_s32(vdupq_n_s32(v))
}

/// Adds one weight line times lane `LANE` of each token's activation register.
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot_line<const MR: usize, const LANE: u32>(
    wv: &[int8x16_t; 4],
    xv: &[int8x16_t; MR],
    acc: &mut [[int32x4_t; 4]; MR],
) {
    for (a, &xi) in acc.iter_mut().zip(xv.iter()) {
        for (aj, &wj) in a.iter_mut().zip(wv.iter()) {
            *aj = sdot_lane::<LANE>(*aj, wj, xi);
        }
    }
}

/// One SDOT tile: `MR` tokens from `x` (rows of `k`) × the block of `groups` lines at `w`.
///
/// # Safety
/// CPU with dotprod; `x` points at `MR` rows of `k = 4 · groups` readable bytes; `w` at `groups`
/// readable lines.
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_sdot<const MR: usize>(
    w: *const Line,
    groups: usize,
    x: *const i8,
    k: usize,
    out: &mut Tile,
) {
    let mut acc = [[vdupq_n_s32(0); 4]; MR];
    let quads = groups / 4;
    for q in 0..quads {
        let mut xv = [vdupq_n_s8(0); MR];
        for (i, v) in xv.iter_mut().enumerate() {
            // SAFETY: bytes 16q..16q+16 of row i lie inside its k = 4·groups >= 16(q+1) bytes.
            *v = unsafe { vld1q_s8(x.add(i * k + 16 * q)) };
        }
        // SAFETY (each load_line): lines 4q..4q+4 < groups of the caller's block.
        let line = |j: usize| unsafe { load_line(w.add(4 * q + j)) };
        sdot_line::<MR, 0>(&line(0), &xv, &mut acc);
        sdot_line::<MR, 1>(&line(1), &xv, &mut acc);
        sdot_line::<MR, 2>(&line(2), &xv, &mut acc);
        sdot_line::<MR, 3>(&line(3), &xv, &mut acc);
    }
    // 1 to 3 trailing groups: one group per pass, its word in every lane.
    for g in 4 * quads..groups {
        let mut xv = [vdupq_n_s8(0); MR];
        for (i, v) in xv.iter_mut().enumerate() {
            // SAFETY: g < groups, so bytes 4g..4g+4 of row i are readable.
            *v = unsafe { word_dup(x.add(i * k), g) };
        }
        // SAFETY: line g < groups of the caller's block.
        let wv = unsafe { load_line(w.add(g)) };
        sdot_line::<MR, 0>(&wv, &xv, &mut acc);
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        for (j, &aj) in a.iter().enumerate() {
            // SAFETY: `o` holds 16 i32; lanes 4j..4j+4 with j < 4 are in range.
            unsafe { vst1q_s32(o.as_mut_ptr().add(4 * j), aj) };
        }
    }
}

/// Adds `w0 · x0 + w1 · x1` (two groups' lines against each token's two words) into a NEON tile's
/// accumulators: register `2j` holds channels `4j, 4j+1` and `2j+1` channels `4j+2, 4j+3`, two
/// partial-sum lanes per channel. `w1`/`x1` = `None` for a lone last group.
#[target_feature(enable = "neon")]
#[inline]
fn neon_pair<const MR: usize>(
    w0: &[int8x16_t; 4],
    w1: Option<&[int8x16_t; 4]>,
    x0: &[int8x16_t; MR],
    x1: &[int8x16_t; MR],
    acc: &mut [[int32x4_t; 8]; MR],
) {
    for ((a, &xa), &xb) in acc.iter_mut().zip(x0.iter()).zip(x1.iter()) {
        for (j, &wa) in w0.iter().enumerate() {
            let (mut lo, mut hi) = (a[2 * j], a[2 * j + 1]);
            match w1 {
                Some(w1) => smull_smlal_sadalp(&mut lo, &mut hi, wa, w1[j], xa, xb),
                None => smull_sadalp(&mut lo, &mut hi, wa, xa),
            }
            (a[2 * j], a[2 * j + 1]) = (lo, hi);
        }
    }
}

/// `lo += pairs(w0.lo · x0.lo + w1.lo · x1.lo)`, `hi` likewise with the high halves: one channel
/// pair's products in i16 (exact, see the module doc), folded into i32 by `sadalp`.
///
/// One `asm!` block because LLVM, given the intrinsics, computes every product of the tile before
/// accumulating any and rewrites `sadalp` as `saddlp` + `add`: 16 products live at once make the
/// 2-token tile spill accumulators to the stack in its inner loop. Here each product is folded in
/// as soon as it exists (two scratch registers).
#[target_feature(enable = "neon")]
#[inline]
fn smull_smlal_sadalp(
    lo: &mut int32x4_t,
    hi: &mut int32x4_t,
    w0: int8x16_t,
    w1: int8x16_t,
    x0: int8x16_t,
    x1: int8x16_t,
) {
    // SAFETY: register-only arithmetic; `p` and `q` are scratch registers distinct from the inputs
    // (`out`, not `lateout`, because they are written before `w1` and `x1` are read).
    unsafe {
        asm!(
            "smull  {p:v}.8h, {w0:v}.8b, {x0:v}.8b",
            "smull2 {q:v}.8h, {w0:v}.16b, {x0:v}.16b",
            "smlal  {p:v}.8h, {w1:v}.8b, {x1:v}.8b",
            "smlal2 {q:v}.8h, {w1:v}.16b, {x1:v}.16b",
            "sadalp {lo:v}.4s, {p:v}.8h",
            "sadalp {hi:v}.4s, {q:v}.8h",
            lo = inout(vreg) *lo,
            hi = inout(vreg) *hi,
            w0 = in(vreg) w0,
            w1 = in(vreg) w1,
            x0 = in(vreg) x0,
            x1 = in(vreg) x1,
            p = out(vreg) _,
            q = out(vreg) _,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
}

/// [`smull_smlal_sadalp`] for a lone last group.
#[target_feature(enable = "neon")]
#[inline]
fn smull_sadalp(lo: &mut int32x4_t, hi: &mut int32x4_t, w0: int8x16_t, x0: int8x16_t) {
    // SAFETY: register-only arithmetic; scratch registers as in `smull_smlal_sadalp`.
    unsafe {
        asm!(
            "smull  {p:v}.8h, {w0:v}.8b, {x0:v}.8b",
            "smull2 {q:v}.8h, {w0:v}.16b, {x0:v}.16b",
            "sadalp {lo:v}.4s, {p:v}.8h",
            "sadalp {hi:v}.4s, {q:v}.8h",
            lo = inout(vreg) *lo,
            hi = inout(vreg) *hi,
            w0 = in(vreg) w0,
            x0 = in(vreg) x0,
            p = out(vreg) _,
            q = out(vreg) _,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
}

/// One NEON tile: `MR` tokens × one block, as [`tile_sdot`].
///
/// # Safety
/// CPU with NEON; as [`tile_sdot`]; the block's weights contain no -128.
#[target_feature(enable = "neon")]
unsafe fn tile_neon<const MR: usize>(
    w: *const Line,
    groups: usize,
    x: *const i8,
    k: usize,
    out: &mut Tile,
) {
    let mut acc = [[vdupq_n_s32(0); 8]; MR];
    let mut g = 0;
    while g < groups {
        let pair = g + 1 < groups;
        let (mut x0, mut x1) = ([vdupq_n_s8(0); MR], [vdupq_n_s8(0); MR]);
        for i in 0..MR {
            // SAFETY: g < groups (and g + 1 < groups when `pair`): inside row i's k bytes.
            unsafe {
                x0[i] = word_dup(x.add(i * k), g);
                if pair {
                    x1[i] = word_dup(x.add(i * k), g + 1);
                }
            }
        }
        // SAFETY: lines g (and g + 1 when `pair`) < groups of the caller's block.
        let w0 = unsafe { load_line(w.add(g)) };
        if pair {
            // SAFETY: as above.
            let w1 = unsafe { load_line(w.add(g + 1)) };
            neon_pair::<MR>(&w0, Some(&w1), &x0, &x1, &mut acc);
        } else {
            neon_pair::<MR>(&w0, None, &x0, &x1, &mut acc);
        }
        g += 2;
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        for j in 0..4 {
            // [c0 + c0', c1 + c1', c2 + c2', c3 + c3'] for channels 4j..4j+4.
            let s = vpaddq_s32(a[2 * j], a[2 * j + 1]);
            // SAFETY: `o` holds 16 i32; lanes 4j..4j+4 with j < 4 are in range.
            unsafe { vst1q_s32(o.as_mut_ptr().add(4 * j), s) };
        }
    }
}

/// The vector form of [`Epilogue::store`] for the 16 channels of block `block` of token `t`, from
/// the raw sums: the oracle's `rq` in i64 lanes. Exact without the oracle's saturating steps: the
/// pack-time bound keeps `|acc + b| < 2^31`, so `(acc + b)·m` fits in 62 bits and adding the
/// rounding term `2^(shift-1)` (shift <= 62) cannot overflow.
#[target_feature(enable = "neon")]
fn epilogue_block(
    p: &PackedLinear,
    t: usize,
    block: usize,
    sums: &[i32; BLOCK],
    epi: &mut Epilogue<'_>,
) {
    let base = block * BLOCK;
    let at = t * p.outputs() + base;
    let len = match epi {
        Epilogue::I8(o) | Epilogue::Gelu(o, _) => o.len(),
        Epilogue::Residual(r) => r.len(),
        Epilogue::Gelu16 { hi, lo, .. } => hi.len().min(lo.len()),
    };
    let (bias, mult, shift) = p.constants();
    let consts = (
        bias.get(base..base + BLOCK),
        mult.get(base..base + BLOCK),
        shift.get(base..base + BLOCK),
    );
    // A block past the last channel, or outputs cut short: the scalar epilogue stores what exists.
    let (Some(b), Some(m), Some(sh)) = consts else {
        p.store_block(t, block, sums, 0, epi);
        return;
    };
    if base + BLOCK > p.outputs() || at + BLOCK > len {
        p.store_block(t, block, sums, 0, epi);
        return;
    }
    // `rq_i32` of each channel: 4 registers of 4 lanes.
    let mut r = [vdupq_n_s32(0); 4];
    for (q, rq) in r.iter_mut().enumerate() {
        // SAFETY: lanes 4q..4q+4 (q < 4) of 16-element slices.
        let (s, m, sh) = unsafe {
            (
                vaddq_s32(
                    vld1q_s32(sums.as_ptr().add(4 * q)),
                    vld1q_s32(b.as_ptr().add(4 * q)),
                ),
                vld1q_s32(m.as_ptr().add(4 * q)),
                vld1q_s32(sh.as_ptr().add(4 * q)),
            )
        };
        let lo = shift_round(
            vmull_s32(vget_low_s32(s), vget_low_s32(m)),
            vget_low_s32(sh),
        );
        let hi = shift_round(vmull_high_s32(s, m), vget_high_s32(sh));
        // Saturating narrows: the clamp to i32 of `rq_i32`.
        *rq = vqmovn_high_s64(vqmovn_s64(lo), hi);
    }
    match epi {
        Epilogue::Residual(xr) => {
            for (q, &v) in r.iter().enumerate() {
                // SAFETY: `at + 16 <= xr.len()` (checked above).
                unsafe {
                    let dst = xr.as_mut_ptr().add(at + 4 * q);
                    vst1q_s32(dst, vqaddq_s32(vld1q_s32(dst), v));
                }
            }
        }
        Epilogue::I8(out) => {
            // SAFETY: `at + 16 <= out.len()` (checked above).
            unsafe { vst1q_s8(out.as_mut_ptr().add(at), i8_lanes(&r)) };
        }
        Epilogue::Gelu16 {
            hi: oh,
            lo: ol,
            table,
        } => {
            let mut v = [0i32; BLOCK];
            for (q, &x) in r.iter().enumerate() {
                // SAFETY: lanes 4q..4q+4 of 16.
                unsafe { vst1q_s32(v.as_mut_ptr().add(4 * q), x) };
            }
            // `rq_i32` saturated to i32 here; the i16 clamp of `gelu16` makes that the same input.
            for (c, &x) in v.iter().enumerate() {
                let (h, l) = planes(gelu16(x as i64, table));
                oh[at + c] = h;
                ol[at + c] = l;
            }
        }
        Epilogue::Gelu(out, table) => {
            let mut v = [0i8; BLOCK];
            // SAFETY: `v` holds 16 bytes.
            unsafe { vst1q_s8(v.as_mut_ptr(), i8_lanes(&r)) };
            if let Some(o) = out.get_mut(at..at + BLOCK) {
                for (o, &x) in o.iter_mut().zip(v.iter()) {
                    *o = table.get((x as i32 + 128) as usize).copied().unwrap_or(0);
                }
            }
        }
    }
}

/// `(p + 2^(sh-1)) >> sh` per i64 lane (`sh` in 0..=62; no rounding term when 0): `sshl` by a
/// negative count is the arithmetic right shift.
#[target_feature(enable = "neon")]
#[inline]
fn shift_round(p: int64x2_t, sh: int32x2_t) -> int64x2_t {
    let sh = vmovl_s32(sh);
    // 1 << (sh - 1); for sh = 0 a shift by -1, i.e. 1 >> 1 = 0.
    let round = vshlq_s64(vdupq_n_s64(1), vsubq_s64(sh, vdupq_n_s64(1)));
    vshlq_s64(vaddq_s64(p, round), vnegq_s64(sh))
}

/// 16 i32 lanes clamped to -127..=127 (`rq_i8`) and narrowed to 16 int8 lanes.
#[target_feature(enable = "neon")]
#[inline]
fn i8_lanes(r: &[int32x4_t; 4]) -> int8x16_t {
    let (lo, hi) = (vdupq_n_s32(-127), vdupq_n_s32(127));
    let c = |v: int32x4_t| vmaxq_s32(vminq_s32(v, hi), lo);
    let a = vcombine_s16(vmovn_s32(c(r[0])), vmovn_s32(c(r[1])));
    let b = vcombine_s16(vmovn_s32(c(r[2])), vmovn_s32(c(r[3])));
    vcombine_s8(vmovn_s16(a), vmovn_s16(b))
}
