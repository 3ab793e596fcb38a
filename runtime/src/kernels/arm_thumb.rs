//! Plain-Thumb kernels for Cortex-M cores without the DSP extension (M0, M0+, M3; the firmware's
//! M0+-class build is thumbv6m). No SIMD: one MULS per MAC. What can be saved is everything
//! around it, so each loaded activation byte serves four weight rows:
//! per K, 1 LDRSB (activation) + 4 × (LDRSB weight, MULS, ADD) + SUBS, and a BPL every second K
//! (the loop does two K per iteration): 14.5 instructions per 4 MACs. Exact: the same integer products and sums as the oracle, in another order.
#![allow(unsafe_code)]

use core::arch::global_asm;

// Thumb-1 addresses a signed byte only as [base, index], so all five streams share one index
// (r5, counting down) and each row keeps its own base: x r0, rows r1-r4. Only low registers can
// load and multiply, so the four accumulators live in r8-r11 (ADD works on high registers).
global_asm!(
    ".syntax unified",
    ".section .text.pith_thumb_dot_4rows,\"ax\",%progbits",
    ".global pith_thumb_dot_4rows",
    ".type pith_thumb_dot_4rows,%function",
    ".p2align 2",
    ".thumb_func",
    "pith_thumb_dot_4rows:",
    "    push {{r4-r7, lr}}",
    "    mov r4, r8",
    "    mov r5, r9",
    "    mov r6, r10",
    "    mov r7, r11",
    "    push {{r4-r7}}",
    "    movs r5, r3",
    "    movs r6, r2",
    "    adds r2, r1, r6",
    "    adds r3, r2, r6",
    "    adds r4, r3, r6",
    "    movs r6, #0",
    "    mov r8, r6",
    "    mov r9, r6",
    "    mov r10, r6",
    "    mov r11, r6",
    // r5 = k-1 (k ≥ 1). An odd k does index k-1 alone; then pairs of indices per iteration
    // (MULS sets the flags, so only the second SUBS can feed the branch).
    "    subs r5, #1",
    "    lsrs r6, r5, #1",
    "    bcs 1f",
    "    ldrsb r6, [r0, r5]",
    "    ldrsb r7, [r1, r5]",
    "    muls r7, r6, r7",
    "    add r8, r7",
    "    ldrsb r7, [r2, r5]",
    "    muls r7, r6, r7",
    "    add r9, r7",
    "    ldrsb r7, [r3, r5]",
    "    muls r7, r6, r7",
    "    add r10, r7",
    "    ldrsb r7, [r4, r5]",
    "    muls r7, r6, r7",
    "    add r11, r7",
    "    subs r5, #1",
    "    bmi 4f",
    "1:",
    "    ldrsb r6, [r0, r5]",
    "    ldrsb r7, [r1, r5]",
    "    muls r7, r6, r7",
    "    add r8, r7",
    "    ldrsb r7, [r2, r5]",
    "    muls r7, r6, r7",
    "    add r9, r7",
    "    ldrsb r7, [r3, r5]",
    "    muls r7, r6, r7",
    "    add r10, r7",
    "    ldrsb r7, [r4, r5]",
    "    muls r7, r6, r7",
    "    add r11, r7",
    "    subs r5, #1",
    "    ldrsb r6, [r0, r5]",
    "    ldrsb r7, [r1, r5]",
    "    muls r7, r6, r7",
    "    add r8, r7",
    "    ldrsb r7, [r2, r5]",
    "    muls r7, r6, r7",
    "    add r9, r7",
    "    ldrsb r7, [r3, r5]",
    "    muls r7, r6, r7",
    "    add r10, r7",
    "    ldrsb r7, [r4, r5]",
    "    muls r7, r6, r7",
    "    add r11, r7",
    "    subs r5, #1",
    "    bpl 1b",
    "4:",
    // The fifth argument (the output pointer) sits above the nine saved registers.
    "    ldr r0, [sp, #36]",
    "    mov r1, r8",
    "    str r1, [r0]",
    "    mov r1, r9",
    "    str r1, [r0, #4]",
    "    mov r1, r10",
    "    str r1, [r0, #8]",
    "    mov r1, r11",
    "    str r1, [r0, #12]",
    "    pop {{r4-r7}}",
    "    mov r8, r4",
    "    mov r9, r5",
    "    mov r10, r6",
    "    mov r11, r7",
    "    pop {{r4-r7, pc}}",
    ".size pith_thumb_dot_4rows, . - pith_thumb_dot_4rows",
);

extern "C" {
    /// `out[j] = x · w[j·stride ..][..k]` for j in 0..4.
    fn pith_thumb_dot_4rows(x: *const i8, w: *const i8, stride: usize, k: usize, out: *mut i32);
}

/// Rows per pass.
const ROWS: usize = 4;

/// `kernels::matmul` on plain-Thumb cores: four weight rows per pass over one token (rows past
/// the last multiple of four take the oracle's dot product); the 16-bit FFN's planes one pass
/// each in turn, `128·(hi·w) + lo·w` (no 16-bit multiply here to do better with).
#[inline]
pub fn matmul<S: super::Sink>(
    x: super::Input<'_>,
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) {
    match x {
        super::Input::I8(x) => passes([x], w, k, tokens, outs, sink),
        super::Input::Planes(hi, lo) => passes([hi, lo], w, k, tokens, outs, sink),
    }
}

/// The passes over `planes` (one or two), each plane's sums scaled by 128 before the next adds
/// (a constant count, so the int8 path keeps its one pass with nothing added).
#[inline(always)]
fn passes<const P: usize, S: super::Sink>(
    planes: [&[i8]; P],
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) {
    // The kernel's index counts down from k-1 with a signed test, so k must stay below 2^31.
    if k == 0 || k > i32::MAX as usize {
        return;
    }
    let Some((first, rest)) = planes.split_first() else {
        return;
    };
    // Whole rows only: the kernel reads exactly k bytes of each row it is given.
    let tokens = planes.iter().fold(tokens, |t, x| t.min(x.len() / k));
    let outs = outs.min(w.len() / k);
    let quads = outs / ROWS;
    for q in 0..quads {
        let n = q * ROWS;
        let c: [S::Channel; ROWS] = core::array::from_fn(|j| sink.channel(n + j));
        for t in 0..tokens {
            let dot = |x: &[i8], out: &mut [i32; ROWS]| {
                // SAFETY: token t < x.len()/k and rows n..n+4 ≤ outs ≤ w.len()/k are whole
                // k-byte rows; `out` has room for four i32.
                unsafe {
                    pith_thumb_dot_4rows(
                        x.as_ptr().add(t * k),
                        w.as_ptr().add(n * k),
                        k,
                        k,
                        out.as_mut_ptr(),
                    );
                }
            };
            // The first plane straight into the accumulators (the int8 path's only pass).
            let mut acc = [0i32; ROWS];
            dot(first, &mut acc);
            for x in rest {
                let mut part = [0i32; ROWS];
                dot(x, &mut part);
                for (a, p) in acc.iter_mut().zip(part) {
                    *a = a.wrapping_mul(128).wrapping_add(p);
                }
            }
            for (j, (&a, &c)) in acc.iter().zip(&c).enumerate() {
                sink.put(t, n + j, c, sink.start(c).wrapping_add(a));
            }
        }
    }
    for n in quads * ROWS..outs {
        let row = &w[n * k..(n + 1) * k];
        let c = sink.channel(n);
        let s = sink.start(c);
        for t in 0..tokens {
            let a = planes.iter().fold(0i32, |a, x| {
                let d = super::generic::dot_i8(&x[t * k..(t + 1) * k], row);
                a.wrapping_mul(128).wrapping_add(d)
            });
            sink.put(t, n, c, s.wrapping_add(a));
        }
    }
}
