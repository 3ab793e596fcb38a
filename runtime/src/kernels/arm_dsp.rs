//! Cortex-M DSP-extension dot product (M4, M7, M33): SXTB16 unpacks two int8 lanes to int16 and
//! SMLAD multiplies and accumulates both in one instruction. Exact: every partial sum is the
//! scalar oracle's, in a different order, and integer addition is associative.
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

/// Dot products of `x` with two rows at once: each unpacked word of `x` serves both rows, which
/// saves a third of the instructions of two separate [`dot_i8`] calls.
#[inline]
pub fn dot2_i8(x: &[i8], w0: &[i8], w1: &[i8]) -> (i32, i32) {
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
