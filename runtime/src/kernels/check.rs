//! The kernel property check that runs wherever the kernels run: the firmware's `kcheck` console
//! command executes it on the simulated core itself (so the Cortex-M assembly is what is tested),
//! and the host unit tests run it for the host's dispatch. Random shapes with every tail length,
//! extreme values (-128/127 activations, ±127 weights), all-zero rows; every result of the
//! dispatching [`super::matmul_i8`], [`super::matmul`] over [`super::Input::Planes`] (the 16-bit FFN's product)
//! and [`super::dot_i8`] is compared with the scalar oracle.

use super::generic;

/// The first disagreement found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Inner dimension of the failing case.
    pub k: u32,
    /// Tokens (activation rows) of the failing case.
    pub tokens: u32,
    /// Weight rows of the failing case.
    pub outs: u32,
    /// Token of the first wrong value (`u32::MAX`: some value was never emitted).
    pub t: u32,
    /// Output row of the first wrong value (`u32::MAX` as for `t`).
    pub n: u32,
    /// The kernel's value.
    pub got: i32,
    /// The oracle's value.
    pub want: i32,
}

/// What [`self_check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Shapes run.
    pub cases: u32,
    /// Values compared with the oracle.
    pub values: u32,
    /// Values that differed (or were emitted a wrong number of times).
    pub mismatches: u32,
    /// The first of them.
    pub first: Option<Mismatch>,
}

/// The operands' generator. Hand-written on purpose: this check runs on the device (`kcheck`), in
/// no_std with no room for a `rand` dependency, and a seed must give the same cases on every core.
fn xorshift(s: &mut u32) -> u32 {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    *s
}

/// How a case's operands are filled.
#[derive(Clone, Copy)]
enum Fill {
    Random,
    /// Activations -128, weights -127: the largest positive products.
    MinMin,
    /// Activations 127, weights 127.
    MaxMax,
    /// Activations -128, weights 127: the largest negative products.
    MinMax,
    /// Random, with every odd token row and every third weight row all zero.
    ZeroRows,
}

const FILLS: [Fill; 5] = [
    Fill::Random,
    Fill::MinMin,
    Fill::MaxMax,
    Fill::MinMax,
    Fill::ZeroRows,
];

/// Runs every shape that fits `scratch` (bytes for the operands; about 15 KB runs them all),
/// starting the random stream at `seed`.
pub fn self_check(seed: u32, scratch: &mut [u8]) -> Report {
    let mut r = Report::default();
    let mut s = seed | 1;
    let small: [(usize, usize); 6] = [(1, 1), (2, 2), (3, 3), (5, 4), (4, 7), (2, 9)];
    for k in 1..=72usize {
        for (i, &(tokens, outs)) in small.iter().enumerate() {
            let fill = FILLS[(k + i) % FILLS.len()];
            run_case(&mut r, &mut s, scratch, k, tokens, outs, fill);
        }
    }
    // Real widths and the edges of the Cortex-M kernels' buffers (512 and 1536 K).
    for k in [128usize, 384, 511, 512, 513, 1535, 1536, 1537, 1540] {
        for fill in [Fill::Random, Fill::MinMin, Fill::MinMax, Fill::ZeroRows] {
            run_case(&mut r, &mut s, scratch, k, 3, 3, fill);
        }
    }
    r
}

/// Row `i` of a `[_, k]` matrix (empty past the end).
fn row(m: &[i8], k: usize, i: usize) -> &[i8] {
    m.get(i * k..(i + 1) * k).unwrap_or(&[])
}

fn run_case(
    r: &mut Report,
    seed: &mut u32,
    scratch: &mut [u8],
    k: usize,
    tokens: usize,
    outs: usize,
    fill: Fill,
) {
    let (xb, rest) = scratch.split_at_mut(scratch.len() / 3);
    let (lb, wb) = rest.split_at_mut(rest.len() / 2);
    let (Some(xb), Some(lb), Some(wb)) = (
        xb.get_mut(..k * tokens),
        lb.get_mut(..k * tokens),
        wb.get_mut(..k * outs),
    ) else {
        return;
    };
    let x: &mut [i8] = bytemuck::cast_slice_mut(xb);
    for (i, v) in x.iter_mut().enumerate() {
        *v = match fill {
            Fill::Random => xorshift(seed) as i8,
            Fill::MinMin | Fill::MinMax => -128,
            Fill::MaxMax => 127,
            Fill::ZeroRows if (i / k) % 2 == 1 => 0,
            Fill::ZeroRows => xorshift(seed) as i8,
        };
    }
    // The 16-bit FFN's low plane (-64..=63 as the GELU's split makes it), beside `x` as its
    // high plane.
    let lo: &mut [i8] = bytemuck::cast_slice_mut(lb);
    for (i, v) in lo.iter_mut().enumerate() {
        *v = match fill {
            Fill::MinMin | Fill::MinMax => -64,
            Fill::MaxMax => 63,
            Fill::ZeroRows if (i / k) % 2 == 1 => 0,
            _ => (xorshift(seed) as i8) >> 1,
        };
    }
    let w: &mut [i8] = bytemuck::cast_slice_mut(wb);
    for (i, v) in w.iter_mut().enumerate() {
        *v = match fill {
            Fill::Random => (xorshift(seed) as i8).max(-127),
            Fill::MinMin => -127,
            Fill::MaxMax | Fill::MinMax => 127,
            Fill::ZeroRows if (i / k).is_multiple_of(3) => 0,
            Fill::ZeroRows => (xorshift(seed) as i8).max(-127),
        };
    }
    let (x, lo, w) = (&*x, &*lo, &*w);
    r.cases += 1;
    let mut seen = 0u64; // tokens·outs ≤ 64 bits
    let bad = |r: &mut Report, t: usize, n: usize, got: i32, want: i32| {
        r.mismatches += 1;
        r.first.get_or_insert(Mismatch {
            k: k as u32,
            tokens: tokens as u32,
            outs: outs as u32,
            t: t as u32,
            n: n as u32,
            got,
            want,
        });
    };
    super::matmul_i8(x, w, k, tokens, outs, |t, n, got| {
        let want = generic::dot_i8(row(x, k, t), row(w, k, n));
        r.values += 1;
        let bit = 1u64 << ((t * outs + n) % 64);
        if got != want || t >= tokens || n >= outs || seen & bit != 0 {
            bad(r, t, n, got, want);
        }
        seen |= bit;
    });
    let all = if tokens * outs >= 64 {
        u64::MAX
    } else {
        (1u64 << (tokens * outs)) - 1
    };
    if seen != all {
        bad(r, u32::MAX as usize, u32::MAX as usize, 0, 0);
    }
    // The 16-bit FFN's product, from a start of 1 (any start must pass through): the oracle's
    // two plane sums combined with the same wrapping arithmetic the contract names.
    seen = 0;
    let mut sink = super::Emit(|t: usize, n: usize, got: i32| {
        let (dh, dl) = (
            generic::dot_i8(row(x, k, t), row(w, k, n)),
            generic::dot_i8(row(lo, k, t), row(w, k, n)),
        );
        let want = 1i32.wrapping_add(dh.wrapping_mul(128)).wrapping_add(dl);
        r.values += 1;
        let bit = 1u64 << ((t * outs + n) % 64);
        if got != want || t >= tokens || n >= outs || seen & bit != 0 {
            bad(r, t, n, got, want);
        }
        seen |= bit;
    });
    super::matmul(
        super::Input::Planes(x, lo),
        w,
        k,
        tokens,
        outs,
        &mut Started(&mut sink),
    );
    if seen != all {
        bad(r, u32::MAX as usize, u32::MAX as usize, 0, 0);
    }
    for t in 0..tokens {
        for n in 0..outs {
            let (got, want) = (
                super::dot_i8(row(x, k, t), row(w, k, n)),
                generic::dot_i8(row(x, k, t), row(w, k, n)),
            );
            r.values += 1;
            if got != want {
                bad(r, t, n, got, want);
            }
        }
    }
    // Unequal lengths: each dot covers the shorter slice, whichever operand it is, in every path
    // (a kernel chunking its operands separately pairs the wrong tails).
    if tokens > 0 && outs > 0 {
        let (a, b) = (row(x, k, 0), row(w, k, 0));
        for cut in 1..k.min(21) {
            let naive = |p: &[i8], q: &[i8]| -> i32 {
                p.iter().zip(q).map(|(&u, &v)| u as i32 * v as i32).sum()
            };
            let (short_w, short_x) = (&b[..k - cut], &a[..k - cut]);
            let checks = [
                (super::dot_i8(a, short_w), naive(a, short_w)),
                (super::dot_i8(short_x, b), naive(short_x, b)),
                (super::dot2_i8(a, short_w, b).0, naive(a, short_w)),
                (super::dot2_i8(a, b, short_w).1, naive(a, short_w)),
                (super::dot2_i8(short_x, b, b).1, naive(short_x, b)),
            ];
            for (got, want) in checks {
                r.values += 1;
                if got != want {
                    bad(r, cut, usize::MAX, got, want);
                }
            }
        }
    }
}

/// A sink whose accumulators start at 1 (so a kernel that drops or doubles the start fails).
struct Started<'a, S>(&'a mut S);

impl<S: super::Sink<Channel = ()>> super::Sink for Started<'_, S> {
    type Channel = ();
    #[inline(always)]
    fn channel(&self, _: usize) {}
    #[inline(always)]
    fn start(&self, _: ()) -> i32 {
        1
    }
    #[inline(always)]
    fn put(&mut self, t: usize, j: usize, c: (), acc: i32) {
        self.0.put(t, j, c, acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's dispatch passes the same check the firmware runs on each core.
    #[test]
    fn host_kernels_pass_the_self_check() {
        let mut scratch = vec![0u8; 16 * 1024];
        let r = self_check(0x1234_5678, &mut scratch);
        assert_eq!(r.mismatches, 0, "{:?}", r.first);
        assert_eq!(r.cases, 72 * 6 + 9 * 4);
    }
}
