//! Cortex-M DSP-extension kernels (M4, M7, M33): SXTB16 unpacks two int8 lanes to int16 and
//! SMLAD multiplies and accumulates both in one instruction. Exact: every partial sum is the
//! scalar oracle's, in a different order, and integer addition is associative.
//!
//! The matmul works on 2×2 output tiles (2 tokens × 2 weight rows). The two tokens' activations are
//! unpacked to int16 pairs once per token pair into a stack buffer, so the inner loop loads four
//! ready words with one LDM and only unpacks the weights, each weight word serving both tokens:
//! per 16 MACs 1 LDM + 2 LDR + 4 SXTB16 + 8 SMLAD (15 instructions, see [`tile_2x2`]). The 16-bit
//! FFN's activations (`y = 128·hi + lo`, two int8 planes) widen into the same buffer as int16
//! values, so its down projection is the same single pass.
//!
//! Enabled by the `arm-dsp` feature, which the firmware turns on only for cores with the DSP
//! extension (the assembler rejects these instructions elsewhere).
#![allow(unsafe_code)]

use core::arch::asm;

/// Lanes 0 and 2 of `x`, sign-extended to two int16.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a pure register-to-register instruction of the DSP extension.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// Lanes 1 and 3 of `x`, sign-extended to two int16.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: as above.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    r
}

/// `acc + a.lo * b.lo + a.hi * b.hi` on int16 halves (SMLAD only sets the sticky Q flag on overflow,
/// which cannot happen here: |sum| < 2^31 for the lengths the kernel contract allows).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: as above; it writes the Q flag, so flags are not declared preserved.
    unsafe {
        asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, c = in(reg) acc, options(pure, nomem, nostack))
    };
    r
}

#[inline(always)]
fn word(c: &[i8]) -> u32 {
    u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8])
}

/// Dot product of two int8 vectors over the shorter length.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // Cut to the shorter length first, or the tails of unequal slices would pair wrongly.
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc0 = 0i32;
    let mut acc1 = 0i32;
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let (wx, wy) = (word(x), word(y));
        acc0 = smlad(sxtb16(wx), sxtb16(wy), acc0);
        acc1 = smlad(sxtb16_ror8(wx), sxtb16_ror8(wy), acc1);
    }
    let mut s = acc0.wrapping_add(acc1);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += *x as i32 * *y as i32;
    }
    s
}

/// Dot products of `x` with two rows at once: each unpacked word of `x` serves both rows (the
/// path for `k` beyond the tile kernel's buffer).
#[inline]
pub fn dot2_i8(x: &[i8], w0: &[i8], w1: &[i8]) -> (i32, i32) {
    // Each row over its own shorter length, as two `dot_i8` would; the shared loop below needs
    // one common length.
    let n = x.len().min(w0.len());
    if x.len().min(w1.len()) != n {
        return (dot_i8(x, w0), dot_i8(x, w1));
    }
    let (x, w0, w1) = (&x[..n], &w0[..n], &w1[..n]);
    let (mut a0, mut a1, mut b0, mut b1) = (0i32, 0i32, 0i32, 0i32);
    let mut cx = x.chunks_exact(4);
    let mut c0 = w0.chunks_exact(4);
    let mut c1 = w1.chunks_exact(4);
    for ((xc, p), q) in (&mut cx).zip(&mut c0).zip(&mut c1) {
        let wx = word(xc);
        let (xl, xh) = (sxtb16(wx), sxtb16_ror8(wx));
        let (wp, wq) = (word(p), word(q));
        a0 = smlad(xl, sxtb16(wp), a0);
        a1 = smlad(xh, sxtb16_ror8(wp), a1);
        b0 = smlad(xl, sxtb16(wq), b0);
        b1 = smlad(xh, sxtb16_ror8(wq), b1);
    }
    let (mut s0, mut s1) = (a0.wrapping_add(a1), b0.wrapping_add(b1));
    for ((x, p), q) in cx
        .remainder()
        .iter()
        .zip(c0.remainder())
        .zip(c1.remainder())
    {
        s0 += *x as i32 * *p as i32;
        s1 += *x as i32 * *q as i32;
    }
    (s0, s1)
}

/// `[t0·w0, t0·w1, t1·w0, t1·w1]` over `groups` groups of 4 K, each added to its row's `start`. `xw` holds `4·groups` widened
/// words (see [`Widen::widen`]); row 0 starts at `w`, row 1 at `w + stride_m4 + 4`.
///
/// Hand-scheduled because the loop needs 14 registers (LLVM's own code for it spills):
///   r0 widened activations, 4 words per 4 K: [t0 lanes 0,2 | t0 lanes 1,3 | t1 0,2 | t1 1,3]
///   r1 weight row 0 (post-incremented), row 1 at [r1, r2] (r2 = row stride - 4)
///   r3 groups left; r4..r7 accumulators (t0·w0, t0·w1, t1·w0, t1·w1)
///   r8, r9, r10, r12 the activation words; r11, lr one weight word unpacked
/// Two groups per iteration (an odd group first) halve the loop's SUBS+BNE. It is inline asm
/// (module-level asm does not get `-C target-cpu`, which the M33 needs for DSP instructions), so
/// r6 and r7, which Rust does not hand out, are saved and restored by the block itself.
///
/// # Safety
/// `xw` must be valid for `4·groups` word reads; both rows for `4·groups` byte reads.
#[inline(always)]
unsafe fn tile_2x2(
    xw: *const u32,
    w: *const i8,
    stride_m4: isize,
    groups: usize,
    start: [i32; 2],
) -> [i32; 4] {
    let mut acc = [start[0], start[1], start[0], start[1]];
    // SAFETY: the caller guarantees the reads; the block writes 16 bytes to `acc` and restores
    // the stack pointer, r6 and r7 before it ends.
    unsafe {
        asm!(
            "push {{r4, r6, r7}}",
            // The accumulators start at the caller's values (each row's start, per token).
            "ldm r4, {{r4, r5, r6, r7}}",
            "lsrs r3, r3, #1",
            "bcc 2f",
            // One odd group.
            "ldm r0!, {{r8, r9, r10, r12}}",
            "ldr r11, [r1], #4",
            "sxtb16 lr, r11, ror #8",
            "sxtb16 r11, r11",
            "smlad r4, r8, r11, r4",
            "smlad r4, r9, lr, r4",
            "smlad r6, r10, r11, r6",
            "smlad r6, r12, lr, r6",
            "ldr r11, [r1, r2]",
            "sxtb16 lr, r11, ror #8",
            "sxtb16 r11, r11",
            "smlad r5, r8, r11, r5",
            "smlad r5, r9, lr, r5",
            "smlad r7, r10, r11, r7",
            "smlad r7, r12, lr, r7",
            "2:",
            "cbz r3, 4f",
            "3:",
            "ldm r0!, {{r8, r9, r10, r12}}",
            "ldr r11, [r1], #4",
            "sxtb16 lr, r11, ror #8",
            "sxtb16 r11, r11",
            "smlad r4, r8, r11, r4",
            "smlad r4, r9, lr, r4",
            "smlad r6, r10, r11, r6",
            "smlad r6, r12, lr, r6",
            "ldr r11, [r1, r2]",
            "sxtb16 lr, r11, ror #8",
            "sxtb16 r11, r11",
            "smlad r5, r8, r11, r5",
            "smlad r5, r9, lr, r5",
            "smlad r7, r10, r11, r7",
            "smlad r7, r12, lr, r7",
            "ldm r0!, {{r8, r9, r10, r12}}",
            "ldr r11, [r1], #4",
            "sxtb16 lr, r11, ror #8",
            "sxtb16 r11, r11",
            "smlad r4, r8, r11, r4",
            "smlad r4, r9, lr, r4",
            "smlad r6, r10, r11, r6",
            "smlad r6, r12, lr, r6",
            "ldr r11, [r1, r2]",
            "sxtb16 lr, r11, ror #8",
            "sxtb16 r11, r11",
            "smlad r5, r8, r11, r5",
            "smlad r5, r9, lr, r5",
            "smlad r7, r10, r11, r7",
            "smlad r7, r12, lr, r7",
            "subs r3, r3, #1",
            "bne 3b",
            "4:",
            "ldr r12, [sp]",
            "stm r12, {{r4-r7}}",
            "pop {{r4, r6, r7}}",
            inout("r0") xw => _,
            inout("r1") w => _,
            in("r2") stride_m4,
            inout("r3") groups => _,
            inout("r4") acc.as_mut_ptr() => _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
        );
    }
    acc
}

/// Widened-activation buffer, in words: 4 words per 4 K for a token pair, so `k` ≤ 1536 (the
/// teacher's FFN width). Larger `k` takes the portable path.
const WIDE_WORDS: usize = 1536;
/// The smaller buffer for `k` ≤ 512 (every linear of Tier M), so small models keep a small stack.
const WIDE_WORDS_SMALL: usize = 512;

/// A matmul's activations as the tile kernel takes them: a token pair widened to int16 pairs.
trait Widen: Copy {
    /// Whole `k`-element rows held.
    fn rows(self, k: usize) -> usize;
    /// Fills `out` (4 words per 4 K) with rows `t0` and `t1`'s first `out.len()` elements in the
    /// tile kernel's order: per 4 K, `[t0 lanes 0,2 | t0 lanes 1,3 | t1 0,2 | t1 1,3]`.
    fn widen(self, t0: usize, t1: usize, k: usize, out: &mut [u32]);
    /// Element `i` of row `t` (the last `k mod 4`, which the tiles leave).
    fn at(self, t: usize, k: usize, i: usize) -> i32;
}

/// int8 rows: SXTB16 unpacks each word's lanes 0,2 and 1,3.
impl Widen for &[i8] {
    fn rows(self, k: usize) -> usize {
        self.len() / k
    }

    #[inline]
    fn widen(self, t0: usize, t1: usize, k: usize, out: &mut [u32]) {
        let (x0, x1) = (&self[t0 * k..(t0 + 1) * k], &self[t1 * k..(t1 + 1) * k]);
        for ((a, b), o) in x0
            .chunks_exact(4)
            .zip(x1.chunks_exact(4))
            .zip(out.chunks_exact_mut(4))
        {
            let (wa, wb) = (word(a), word(b));
            o[0] = sxtb16(wa);
            o[1] = sxtb16_ror8(wa);
            o[2] = sxtb16(wb);
            o[3] = sxtb16_ror8(wb);
        }
    }

    #[inline(always)]
    fn at(self, t: usize, k: usize, i: usize) -> i32 {
        self[t * k + i] as i32
    }
}

/// The 16-bit FFN's planes `(hi, lo)`: widened straight to `y = 128·hi + lo`, which fits int16
/// for any int8 pair (-16512..=16383), so one SMLAD pass computes `y·w`.
impl Widen for (&[i8], &[i8]) {
    fn rows(self, k: usize) -> usize {
        self.0.len().min(self.1.len()) / k
    }

    #[inline]
    fn widen(self, t0: usize, t1: usize, k: usize, out: &mut [u32]) {
        let y = |t: usize, i: usize| -> u32 {
            let v = 128 * self.0[t * k + i] as i32 + self.1[t * k + i] as i32;
            v as u16 as u32
        };
        for (g, o) in out.chunks_exact_mut(4).enumerate() {
            let i = 4 * g;
            o[0] = y(t0, i) | y(t0, i + 2) << 16;
            o[1] = y(t0, i + 1) | y(t0, i + 3) << 16;
            o[2] = y(t1, i) | y(t1, i + 2) << 16;
            o[3] = y(t1, i + 1) | y(t1, i + 3) << 16;
        }
    }

    #[inline(always)]
    fn at(self, t: usize, k: usize, i: usize) -> i32 {
        128 * self.0[t * k + i] as i32 + self.1[t * k + i] as i32
    }
}

/// `kernels::matmul` on DSP cores; `false` when `k` is beyond the widened buffer (the caller
/// then takes the portable path). Token pairs outer, weight-row pairs inner: the pair's widened
/// activations stay in the buffer while every weight row streams past once. The 16-bit FFN's
/// planes are widened straight to `y` (the int8 path widens to 16 bits anyway, so the 16-bit
/// FFN costs what the int8 one does).
#[inline]
pub fn matmul<S: super::Sink>(
    x: super::Input<'_>,
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) -> bool {
    match x {
        super::Input::I8(x) => tiles(x, w, k, tokens, outs, sink),
        super::Input::Planes(hi, lo) => tiles((hi, lo), w, k, tokens, outs, sink),
    }
}

#[inline]
fn tiles<X: Widen, S: super::Sink>(
    x: X,
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) -> bool {
    if k <= WIDE_WORDS_SMALL {
        matmul_buffered::<WIDE_WORDS_SMALL, X, S>(x, w, k, tokens, outs, sink);
        true
    } else if k <= WIDE_WORDS {
        matmul_buffered::<WIDE_WORDS, X, S>(x, w, k, tokens, outs, sink);
        true
    } else {
        false
    }
}

/// The tile loop with an `N`-word widened buffer in its own frame: models with `k` ≤ 512 never
/// pay the large buffer's stack, and each epilogue's matmul (one per kind, see
/// `Epilogue::specialized`) is a separate function, so their buffers do not add up in the
/// caller's frame.
#[inline(never)]
fn matmul_buffered<const N: usize, X: Widen, S: super::Sink>(
    x: X,
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) {
    let mut buf = [0u32; N];
    matmul_with(&mut buf, x, w, k, tokens, outs, sink);
}

#[inline(always)]
fn matmul_with<X: Widen, S: super::Sink>(
    buf: &mut [u32],
    x: X,
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) {
    if k == 0 {
        return;
    }
    let groups = k / 4;
    let k4 = groups * 4;
    // Whole rows only: the kernel reads `k4` bytes of each row it is given.
    let tokens = tokens.min(x.rows(k));
    let outs = outs.min(w.len() / k);
    let Some(buf) = buf.get_mut(..4 * groups) else {
        return;
    };
    let mut t = 0;
    while t < tokens {
        // An odd last token is paired with itself; only its own results are emitted.
        let t1 = (t + 1).min(tokens - 1);
        x.widen(t, t1, k, buf);
        let mut n = 0;
        while n < outs {
            let n1 = (n + 1).min(outs - 1);
            let (c0, c1) = (sink.channel(n), sink.channel(n1));
            let start = [sink.start(c0), sink.start(c1)];
            // SAFETY: `buf` holds 4·groups words; rows n and n1 < outs ≤ w.len()/k are whole, and
            // the kernel reads 4·groups ≤ k bytes from each (unaligned LDR is allowed on these
            // cores).
            let mut acc = unsafe {
                tile_2x2(
                    buf.as_ptr(),
                    w.as_ptr().add(n * k),
                    ((n1 - n) * k) as isize - 4,
                    groups,
                    start,
                )
            };
            // The last k mod 4 products (none for every shape of the shipped models).
            if k4 < k {
                let (w0, w1) = (&w[n * k..(n + 1) * k], &w[n1 * k..(n1 + 1) * k]);
                for i in k4..k {
                    let (a, b) = (x.at(t, k, i), x.at(t1, k, i));
                    let (p, q) = (w0[i] as i32, w1[i] as i32);
                    acc[0] = acc[0].wrapping_add(a.wrapping_mul(p));
                    acc[1] = acc[1].wrapping_add(a.wrapping_mul(q));
                    acc[2] = acc[2].wrapping_add(b.wrapping_mul(p));
                    acc[3] = acc[3].wrapping_add(b.wrapping_mul(q));
                }
            }
            sink.put(t, n, c0, acc[0]);
            if n1 != n {
                sink.put(t, n1, c1, acc[1]);
            }
            if t1 != t {
                sink.put(t1, n, c0, acc[2]);
                if n1 != n {
                    sink.put(t1, n1, c1, acc[3]);
                }
            }
            n += 2;
        }
        t += 2;
    }
}
