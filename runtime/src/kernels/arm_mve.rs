//! Cortex-M55 Helium (MVE) kernels. `VMLADAVA.S8` multiplies 16 int8 pairs and adds all 16
//! products into a scalar accumulator; sums are exact integers, so the result is the scalar
//! oracle's bit for bit.
//!
//! The matmul works on 3×2 output tiles (3 weight rows × 2 tokens): per 16 K, 5 `VLDRB.8` (two
//! activation vectors, three weight vectors; each loaded vector feeds two or three MACs) + 6
//! `VMLADAVA.S8` + 1 `LETP` = 12 instructions per 96 MACs. The loop is tail-predicated (`WLSTP.8`/`LETP`): the last
//! iteration loads and multiplies only the remaining `k mod 16` lanes, so any `k` runs without a
//! scalar tail and without reading past a row. Loads alternate with MACs so that on hardware the
//! load and multiply beats overlap.
//!
//! Enabled by the `arm-mve` feature, for `thumbv8m.main` built with `-C target-cpu=cortex-m55`
//! (Armv8.1-M: MVE and the low-overhead-branch loops).
#![allow(unsafe_code)]

use core::arch::asm;

/// One 16-byte step of the 3×2 tile: two activation vectors, three weight vectors, six
/// multiply-accumulates (loads interleaved with the MACs that use them).
macro_rules! tile_3x2_step {
    () => {
        concat!(
            "vldrb.8 q0, [{x0}], #16\n",
            "vldrb.8 q3, [{w0}], #16\n",
            "vldrb.8 q1, [{x1}], #16\n",
            "vmladava.s8 r0, q0, q3\n",
            "vldrb.8 q4, [{w1}], #16\n",
            "vmladava.s8 r2, q1, q3\n",
            "vmladava.s8 r4, q0, q4\n",
            "vldrb.8 q5, [{w2}], #16\n",
            "vmladava.s8 r8, q1, q4\n",
            "vmladava.s8 r10, q0, q5\n",
            "vmladava.s8 r12, q1, q5",
        )
    };
}

/// The 3×2 tile's asm block around the loop `$lines`: operands, accumulators and clobbers
/// declared once for both loops.
macro_rules! tile_3x2_asm {
    ($x0:ident, $x1:ident, $w:ident, $acc:ident, $count:expr; $($line:expr),* $(,)?) => {
        asm!(
            $($line,)*
            x0 = inout(reg) $x0 => _,
            x1 = inout(reg) $x1 => _,
            w0 = inout(reg) $w[0] => _,
            w1 = inout(reg) $w[1] => _,
            w2 = inout(reg) $w[2] => _,
            inout("r0") $acc[0],
            inout("r2") $acc[1],
            inout("r4") $acc[2],
            inout("r8") $acc[3],
            inout("r10") $acc[4],
            inout("r12") $acc[5],
            inout("lr") $count => _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            options(nostack, readonly),
        )
    };
}

/// `[x0·w0, x1·w0, x0·w1, x1·w1, x0·w2, x1·w2]` over `k` int8 lanes of each of the five rows,
/// each added to its entry of `acc`.
///
/// # Safety
/// Each pointer must be valid for `k` bytes of reads (predicated-off lanes are not accessed).
#[inline(always)]
unsafe fn tile_3x2(
    x0: *const i8,
    x1: *const i8,
    w: [*const i8; 3],
    mut acc: [i32; 6],
    k: usize,
) -> [i32; 6] {
    // SAFETY: the caller guarantees the five k-byte rows; q0-q5 (d0-d11) and LR are clobbered.
    // VMLADAVA takes even accumulators only, and six are all the even registers an asm block
    // may name besides LR (r6 and r7 are LLVM's), so the count comes in LR itself.
    unsafe {
        if k % 32 == 0 {
            // Whole 32-byte steps (every shape of the shipped models): two steps per loop
            // pass, no tail predicate, 23 instructions per 192 MACs.
            tile_3x2_asm!(x0, x1, w, acc, k / 32;
                "wls lr, lr, 2f",
                "1:",
                tile_3x2_step!(),
                tile_3x2_step!(),
                "le lr, 1b",
                "2:",
            );
        } else {
            tile_3x2_asm!(x0, x1, w, acc, k;
                "wlstp.8 lr, lr, 2f",
                "1:",
                tile_3x2_step!(),
                "letp lr, 1b",
                "2:",
            );
        }
    }
    acc
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

/// A Helium matmul's activations: one int8 row per token, or the 16-bit FFN's two planes.
trait Rows: Copy {
    /// Whole `k`-byte rows held.
    fn rows(self, k: usize) -> usize;
    /// The tile over tokens `t0`, `t1` and `rows`, accumulators starting at `start`.
    ///
    /// # Safety
    /// `t0`, `t1` < `rows(k)`; each of `rows` valid for `k` bytes of reads.
    unsafe fn tile(
        self,
        t0: usize,
        t1: usize,
        rows: [*const i8; 3],
        start: [i32; 6],
        k: usize,
    ) -> [i32; 6];
}

impl Rows for &[i8] {
    fn rows(self, k: usize) -> usize {
        self.len() / k
    }

    #[inline(always)]
    unsafe fn tile(
        self,
        t0: usize,
        t1: usize,
        rows: [*const i8; 3],
        start: [i32; 6],
        k: usize,
    ) -> [i32; 6] {
        let x = self.as_ptr();
        // SAFETY: the caller's bounds: rows t0, t1 are whole k-byte rows of `self`.
        unsafe { tile_3x2(x.add(t0 * k), x.add(t1 * k), rows, start, k) }
    }
}

/// `(hi, lo)`: the tile over the high plane from zero, its sums times 128 added to the starts of
/// the tile over the low plane (the same weight rows, still in cache):
/// `start + 128·(hi·w) + lo·w`, wrapping.
/// Helium's int8 MACs do 16 lanes where 16-bit ones do 8, so two int8 passes cost what one
/// 16-bit pass would.
impl Rows for (&[i8], &[i8]) {
    fn rows(self, k: usize) -> usize {
        self.0.len().min(self.1.len()) / k
    }

    #[inline(always)]
    unsafe fn tile(
        self,
        t0: usize,
        t1: usize,
        rows: [*const i8; 3],
        start: [i32; 6],
        k: usize,
    ) -> [i32; 6] {
        let (h, l) = (self.0.as_ptr(), self.1.as_ptr());
        // SAFETY: the caller's bounds hold for both planes (`rows` is the shorter's).
        unsafe {
            let high = tile_3x2(h.add(t0 * k), h.add(t1 * k), rows, [0; 6], k);
            let mut start = start;
            for (s, h) in start.iter_mut().zip(high) {
                *s = s.wrapping_add(h.wrapping_mul(128));
            }
            tile_3x2(l.add(t0 * k), l.add(t1 * k), rows, start, k)
        }
    }
}

/// `kernels::matmul` on Helium: 3 weight rows × 2 tokens per tile (12 instructions per 96
/// MACs in the loop, against 9 per 64 of a 2×2 tile); the 16-bit FFN's planes take two tiles a
/// tile position. Weight-row triples outer, token pairs inner: every weight byte is read from
/// memory once per matmul (the activations, a few KB, stay in cache on hardware), and each row's
/// channel constants are fetched once.
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
        super::Input::I8(x) => tiles(x, w, k, tokens, outs, sink),
        super::Input::Planes(hi, lo) => tiles((hi, lo), w, k, tokens, outs, sink),
    }
}

#[inline(always)]
fn tiles<X: Rows, S: super::Sink>(
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
    // Whole rows only: the kernel reads exactly k bytes of each row it is given.
    let tokens = tokens.min(x.rows(k));
    let outs = outs.min(w.len() / k);
    let mut n = 0;
    while n < outs {
        // Rows past the last are the last row again (and tokens below, the last token): computed
        // but not emitted.
        let n1 = (n + 1).min(outs - 1);
        let n2 = (n + 2).min(outs - 1);
        let c = [sink.channel(n), sink.channel(n1), sink.channel(n2)];
        let s = c.map(|c| sink.start(c));
        let start = [s[0], s[0], s[1], s[1], s[2], s[2]];
        // SAFETY (for the pointers): rows n, n1, n2 < outs ≤ w.len()/k are whole k-byte rows.
        let rows = [n, n1, n2].map(|r| unsafe { w.as_ptr().add(r * k) });
        let whole = n2 == n + 2;
        let mut t = 0;
        // Whole tiles (three distinct rows, two tokens): every result emitted, no tests.
        while whole && t + 1 < tokens {
            // SAFETY: tokens t, t + 1 and the three weight rows are whole k-byte rows.
            let acc = unsafe { x.tile(t, t + 1, rows, start, k) };
            for (i, &j) in [n, n1, n2].iter().enumerate() {
                sink.put(t, j, c[i], acc[2 * i]);
                sink.put(t + 1, j, c[i], acc[2 * i + 1]);
            }
            t += 2;
        }
        // The rest: a last odd token, or the last one or two rows.
        while t < tokens {
            let t1 = (t + 1).min(tokens - 1);
            // SAFETY: as above (t1 < tokens).
            let acc = unsafe { x.tile(t, t1, rows, start, k) };
            for (i, (j, fresh)) in [(n, true), (n1, n1 != n), (n2, n2 != n1)]
                .into_iter()
                .enumerate()
            {
                if fresh {
                    sink.put(t, j, c[i], acc[2 * i]);
                    if t1 != t {
                        sink.put(t1, j, c[i], acc[2 * i + 1]);
                    }
                }
            }
            t += 2;
        }
        n += 3;
    }
}
