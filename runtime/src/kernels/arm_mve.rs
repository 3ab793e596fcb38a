//! Cortex-M55 Helium (MVE) kernels. `VMLADAVA.S8` multiplies 16 int8 pairs and adds all 16
//! products into a scalar accumulator; sums are exact integers, so the result is the scalar
//! oracle's bit for bit.
//!
//! The matmul works on 2×2 output tiles (2 tokens × 2 weight rows): per 16 K, 4 `VLDRB.8` (two
//! activation vectors, two weight vectors; each loaded vector feeds two MACs) + 4 `VMLADAVA.S8` +
//! 1 `LETP` = 9 instructions per 64 MACs. The loop is tail-predicated (`WLSTP.8`/`LETP`): the last
//! iteration loads and multiplies only the remaining `k mod 16` lanes, so any `k` runs without a
//! scalar tail and without reading past a row. Loads alternate with MACs so that on hardware the
//! load and multiply beats overlap.
//!
//! Enabled by the `arm-mve` feature, for `thumbv8m.main` built with `-C target-cpu=cortex-m55`
//! (Armv8.1-M: MVE and the low-overhead-branch loops).
#![allow(unsafe_code)]

use core::arch::asm;

/// `[x0·w0, x0·w1, x1·w0, x1·w1]` over `k` int8 lanes of each of the four rows.
///
/// # Safety
/// Each pointer must be valid for `k` bytes of reads (predicated-off lanes are not accessed).
#[inline(always)]
unsafe fn tile_2x2(
    x0: *const i8,
    x1: *const i8,
    w0: *const i8,
    w1: *const i8,
    k: usize,
) -> [i32; 4] {
    let (mut a, mut b, mut c, mut d) = (0i32, 0i32, 0i32, 0i32);
    // SAFETY: the caller guarantees the four k-byte rows; q0-q3 (d0-d7) and LR are clobbered.
    // VMLADAVA takes even accumulators only, hence the explicit r0/r2/r4/r8.
    unsafe {
        asm!(
            "wlstp.8 lr, {k}, 2f",
            "1:",
            "vldrb.8 q0, [{x0}], #16",
            "vldrb.8 q2, [{w0}], #16",
            "vldrb.8 q1, [{x1}], #16",
            "vmladava.s8 r0, q0, q2",
            "vldrb.8 q3, [{w1}], #16",
            "vmladava.s8 r4, q1, q2",
            "vmladava.s8 r2, q0, q3",
            "vmladava.s8 r8, q1, q3",
            "letp lr, 1b",
            "2:",
            k = in(reg) k,
            x0 = inout(reg) x0 => _,
            x1 = inout(reg) x1 => _,
            w0 = inout(reg) w0 => _,
            w1 = inout(reg) w1 => _,
            inout("r0") a,
            inout("r2") b,
            inout("r4") c,
            inout("r8") d,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            options(nostack, readonly),
        );
    }
    [a, b, c, d]
}

/// Dot product of two int8 vectors over the shorter length.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let mut acc = 0i32;
    // SAFETY: the loop reads n bytes from each slice (predicated-off lanes are not accessed);
    // q0, q1 (d0-d3) and LR are clobbered; VMLADAVA needs an even accumulator (r0).
    unsafe {
        asm!(
            "wlstp.8 lr, {n}, 2f",
            "1:",
            "vldrb.8 q0, [{a}], #16",
            "vldrb.8 q1, [{b}], #16",
            "vmladava.s8 r0, q0, q1",
            "letp lr, 1b",
            "2:",
            n = in(reg) n,
            a = inout(reg) a.as_ptr() => _,
            b = inout(reg) b.as_ptr() => _,
            inout("r0") acc,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            options(nostack, readonly),
        );
    }
    acc
}

/// `kernels::matmul_i8` on Helium. Weight-row pairs outer, token pairs inner: every weight byte
/// is read from memory once per matmul (the activations, a few KB, stay in cache on hardware).
#[inline]
pub fn matmul_i8<S: super::Sink>(
    x: &[i8],
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) {
    if k == 0 {
        return;
    }
    // Whole rows only: the kernel reads exactly k bytes of each row it is given.
    let tokens = tokens.min(x.len() / k);
    let outs = outs.min(w.len() / k);
    let mut n = 0;
    while n < outs {
        // An odd last row (or token below) is paired with itself; only its own results are emitted.
        let n1 = (n + 1).min(outs - 1);
        let (c0, c1) = (sink.channel(n), sink.channel(n1));
        let mut t = 0;
        while t < tokens {
            let t1 = (t + 1).min(tokens - 1);
            // SAFETY: rows t, t1 < tokens ≤ x.len()/k and n, n1 < outs ≤ w.len()/k are whole k-byte
            // rows.
            let acc = unsafe {
                tile_2x2(
                    x.as_ptr().add(t * k),
                    x.as_ptr().add(t1 * k),
                    w.as_ptr().add(n * k),
                    w.as_ptr().add(n1 * k),
                    k,
                )
            };
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
            t += 2;
        }
        n += 2;
    }
}
