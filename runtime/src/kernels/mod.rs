//! Integer kernels. The contract: every implementation returns exactly the scalar oracle's result
//! (integer sums are exact, so SIMD, lane order and thread count cannot change a single byte).
//!
//! `generic` is the scalar oracle and the portable fallback; the per-architecture files (`x86*`,
//! `packed/x86`, `packed/aarch64`, `arm_dsp`, `arm_mve`, `arm_thumb`) are the only unsafe code of the runtime and
//! are tested against `generic` on random and extreme inputs (the Cortex-M ones on the simulated
//! core itself, through `check`).

#[cfg(all(feature = "arm-dsp", not(feature = "arm-mve"), target_arch = "arm"))]
pub mod arm_dsp;
#[cfg(all(feature = "arm-mve", target_arch = "arm"))]
pub mod arm_mve;
#[cfg(all(
    target_arch = "arm",
    target_os = "none",
    not(any(feature = "arm-dsp", feature = "arm-mve"))
))]
pub mod arm_thumb;
pub mod check;
pub mod epilogue;
pub mod generic;
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub mod packed;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub mod x86;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub mod x86_attn;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub mod x86_ln;

pub use epilogue::Epilogue;

#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
static FORCE_SCALAR: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Routes every kernel to the scalar oracle (`true`) or back to the fastest one: lets tests and
/// `pith` check that SIMD and scalar builds give the same bytes.
#[cfg(feature = "std")]
pub fn force_scalar(on: bool) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    FORCE_SCALAR.store(on, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = on;
}

#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
static FORCE_PORTABLE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Routes every linear layer past the host's packed kernels to the portable matmul the devices
/// run, with the devices' short requantization where the package admits it (`true`), or back:
/// lets tests check the devices' arithmetic on the host, against [`force_scalar`]'s oracle.
#[cfg(feature = "std")]
pub fn force_portable(on: bool) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    FORCE_PORTABLE.store(on, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = on;
}

/// True while [`force_portable`] keeps the linear layers off the host's packed kernels.
#[cfg(feature = "std")]
pub fn portable_forced() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    return FORCE_PORTABLE.load(core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    false
}

/// True while `force_scalar` (a `std` switch) routes every kernel to the oracle; always false on
/// a build without the switch (a device, any build without `std`), so callers need no `cfg`.
pub fn scalar_forced() -> bool {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    return FORCE_SCALAR.load(core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    false
}

/// Dot product of two int8 vectors over the shorter length, exact in i32 for lengths below 133 144.
/// `b` (the weight operand) must not contain -128 for SIMD paths to be exact; quantized weights
/// are -127..=127 by construction.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if x86::available() && !FORCE_SCALAR.load(core::sync::atomic::Ordering::Relaxed) {
        return x86::dot_i8(a, b);
    }
    #[cfg(all(feature = "arm-mve", target_arch = "arm"))]
    return arm_mve::dot_i8(a, b);
    #[cfg(all(feature = "arm-dsp", not(feature = "arm-mve"), target_arch = "arm"))]
    return arm_dsp::dot_i8(a, b);
    #[allow(unreachable_code)]
    generic::dot_i8(a, b)
}

/// `(x . w0, x . w1)`: two rows against one activation vector.
#[inline]
pub fn dot2_i8(x: &[i8], w0: &[i8], w1: &[i8]) -> (i32, i32) {
    #[cfg(all(feature = "arm-dsp", not(feature = "arm-mve"), target_arch = "arm"))]
    return arm_dsp::dot2_i8(x, w0, w1);
    #[allow(unreachable_code)]
    (dot_i8(x, w0), dot_i8(x, w1))
}

/// Where a matmul's exact dot products go. A kernel fetches each output channel's constants once
/// per pass over its weight row ([`Sink::channel`]) and hands every token's dot product with that
/// row to [`Sink::put`] with them: the constants are not re-read per output.
pub trait Sink {
    /// What [`Sink::put`] needs of one output channel (its bias and requantization, or nothing).
    type Channel: Copy;
    /// Channel `j`'s constants.
    fn channel(&self, j: usize) -> Self::Channel;
    /// Where channel `c`'s accumulators start (a bias that cannot overflow them, or 0, the
    /// default): every kernel hands [`Sink::put`] `start(c) + x[t]·w[j]`, Helium by starting its
    /// accumulators there, the others by adding it (wrapping, which a sink's start must make
    /// exact).
    #[inline(always)]
    fn start(&self, c: Self::Channel) -> i32 {
        let _ = c;
        0
    }
    /// Takes `start(c) + x[t]·w[j]`.
    fn put(&mut self, t: usize, j: usize, c: Self::Channel, acc: i32);
}

/// A closure `emit(t, j, acc)` as a [`Sink`] without channel constants.
pub struct Emit<F>(pub F);

impl<F: FnMut(usize, usize, i32)> Sink for Emit<F> {
    type Channel = ();
    #[inline(always)]
    fn channel(&self, _: usize) {}
    #[inline(always)]
    fn put(&mut self, t: usize, j: usize, _: (), acc: i32) {
        (self.0)(t, j, acc)
    }
}

/// A matmul's activations, `[tokens, k]`.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// int8 rows.
    I8(&'a [i8]),
    /// The 16-bit FFN's activations `y = 128·hi + lo` as two int8 planes `(hi, lo)`: every
    /// kernel gives `128·(hi·w) + lo·w` (wrapping i32), which is `y·w` wherever the true sum fits
    /// i32 — the caller checks that once per layer from its weights. The DSP cores widen `y` to
    /// int16 (their int8 path widens anyway) and take one pass; the others run two int8 tiles a
    /// tile position whose sums meet in registers.
    Planes(&'a [i8], &'a [i8]),
}

impl Input<'_> {
    /// Whole `k`-element rows held, up to `tokens` (for planes, the shorter plane's).
    #[inline]
    pub fn rows(&self, k: usize, tokens: usize) -> usize {
        match self {
            Input::I8(x) => tokens.min(x.len() / k.max(1)),
            Input::Planes(h, l) => tokens.min(h.len() / k.max(1)).min(l.len() / k.max(1)),
        }
    }
}

/// For every token `t < tokens` and output row `n < outs` of the row-major `w` (`[outs, k]`),
/// calls `emit(t, n, x[t] . w[n])` over int8 rows `x`.
#[inline]
pub fn matmul_i8<F: FnMut(usize, usize, i32)>(
    x: &[i8],
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    emit: F,
) {
    matmul(Input::I8(x), w, k, tokens, outs, &mut Emit(emit));
}

/// The matmul every linear layer runs: for every token `t` and output row `n` of `w`
/// (`[outs, k]`), `sink` takes `start(c) + x[t]·w[n]` (see [`Input`] for the planes' product), on
/// this core's kernel: Helium's 3×2 tiles, the DSP cores' widened SMLAD tiles, Thumb-1's
/// four-row passes, or the portable loop (the host's fallback, and the DSP cores' past their
/// buffer). Each weight row is read once per pass and its channel constants fetched once.
#[inline]
pub fn matmul<S: Sink>(x: Input<'_>, w: &[i8], k: usize, tokens: usize, outs: usize, sink: &mut S) {
    if k == 0 {
        return;
    }
    let tokens = x.rows(k, tokens);
    #[cfg(all(feature = "arm-mve", target_arch = "arm"))]
    {
        arm_mve::matmul(x, w, k, tokens, outs, sink);
        return;
    }
    #[cfg(all(
        target_arch = "arm",
        target_os = "none",
        not(any(feature = "arm-dsp", feature = "arm-mve"))
    ))]
    {
        arm_thumb::matmul(x, w, k, tokens, outs, sink);
        return;
    }
    #[cfg(all(feature = "arm-dsp", not(feature = "arm-mve"), target_arch = "arm"))]
    if arm_dsp::matmul(x, w, k, tokens, outs, sink) {
        return;
    }
    #[allow(unreachable_code)]
    match x {
        Input::I8(x) => portable_i8(x, w, k, tokens, outs, sink),
        Input::Planes(hi, lo) => portable_planes((hi, lo), w, k, tokens, outs, sink),
    }
}

/// int8 rows, output rows two at a time, so each activation word is unpacked once per pair.
#[allow(dead_code)]
fn portable_i8<S: Sink>(x: &[i8], w: &[i8], k: usize, tokens: usize, outs: usize, sink: &mut S) {
    let rows = w.chunks_exact(k).take(outs);
    let pairs = rows.len() / 2;
    let mut rows = rows.enumerate();
    for _ in 0..pairs {
        let (Some((n, w0)), Some((_, w1))) = (rows.next(), rows.next()) else {
            break;
        };
        let (c0, c1) = (sink.channel(n), sink.channel(n + 1));
        let (s0, s1) = (sink.start(c0), sink.start(c1));
        for (t, xt) in x.chunks_exact(k).take(tokens).enumerate() {
            let (d0, d1) = dot2_i8(xt, w0, w1);
            sink.put(t, n, c0, s0.wrapping_add(d0));
            sink.put(t, n + 1, c1, s1.wrapping_add(d1));
        }
    }
    for (n, row) in rows {
        let c = sink.channel(n);
        let s = sink.start(c);
        for (t, xt) in x.chunks_exact(k).take(tokens).enumerate() {
            sink.put(t, n, c, s.wrapping_add(dot_i8(xt, row)));
        }
    }
}

/// The planes' product one row and token at a time: each plane's exact dot, combined wrapping.
#[allow(dead_code)]
fn portable_planes<S: Sink>(
    (hi, lo): (&[i8], &[i8]),
    w: &[i8],
    k: usize,
    tokens: usize,
    outs: usize,
    sink: &mut S,
) {
    for (n, row) in w.chunks_exact(k).take(outs).enumerate() {
        let c = sink.channel(n);
        let s = sink.start(c);
        let planes = hi.chunks_exact(k).zip(lo.chunks_exact(k)).take(tokens);
        for (t, (h, l)) in planes.enumerate() {
            let (dh, dl) = (dot_i8(h, row), dot_i8(l, row));
            sink.put(
                t,
                n,
                c,
                s.wrapping_add(dh.wrapping_mul(128)).wrapping_add(dl),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The blocked matmul visits every (token, row) exactly once with the oracle's dot product,
    /// for odd and even row counts.
    #[test]
    fn matmul_equals_oracle_dots() {
        let mut seed = StdRng::seed_from_u64(0x1234_5678);
        for outs in [0usize, 1, 2, 3, 7, 8] {
            let (k, tokens) = (37usize, 3usize);
            let x: Vec<i8> = (0..k * tokens).map(|_| seed.random::<i8>()).collect();
            let w: Vec<i8> = (0..k * outs)
                .map(|_| seed.random::<i8>().max(-127))
                .collect();
            let mut seen = vec![None; tokens * outs];
            matmul_i8(&x, &w, k, tokens, outs, |t, n, d| {
                assert!(seen[t * outs + n].replace(d).is_none(), "({t}, {n}) twice");
            });
            for t in 0..tokens {
                for n in 0..outs {
                    let want = generic::dot_i8(&x[t * k..(t + 1) * k], &w[n * k..(n + 1) * k]);
                    assert_eq!(seen[t * outs + n], Some(want), "({t}, {n})");
                }
            }
        }
    }

    /// Every dispatching kernel equals the scalar oracle, including at the extremes.
    #[test]
    fn dispatch_equals_oracle() {
        let mut seed = StdRng::seed_from_u64(0x9e37_79b9);
        for len in [0usize, 1, 15, 16, 31, 32, 33, 64, 100, 384, 1536, 1537] {
            for case in 0..20 {
                let a: Vec<i8> = (0..len)
                    .map(|_| match case {
                        0 => -128,
                        1 => 127,
                        _ => seed.random::<i8>(),
                    })
                    .collect();
                let b: Vec<i8> = (0..len)
                    .map(|_| match case {
                        0 | 1 => -127,
                        _ => seed.random::<i8>().max(-127),
                    })
                    .collect();
                assert_eq!(
                    dot_i8(&a, &b),
                    generic::dot_i8(&a, &b),
                    "len {len} case {case}"
                );
            }
        }
    }
}
