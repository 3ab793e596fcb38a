//! Scalar oracle kernels: the definition every faster kernel is tested against.

use crate::fixed::{ctx_rq, narrow_ok, rq_i32, rq_i8, rq_narrow};

/// Largest attention head width the kernels take (the engine validates packages against it).
pub const MAX_HEAD_DIM: usize = 256;

/// Dot product of two int8 vectors (over the shorter length).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // Both cut to the shorter length first: chunking them separately would pair a's tail with
    // b's when their lengths differ.
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    // Chunks of 16 with i32 lanes let LLVM vectorize on x86/aarch64 without changing the exact sum.
    let mut acc = [0i32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += *x as i32 * *y as i32;
    }
    s
}

/// `out[n] = dot(x, w[n*k..(n+1)*k])` for every `n < out.len()`; rows missing from `w` give 0.
pub fn matvec_i8(x: &[i8], w: &[i8], k: usize, out: &mut [i32]) {
    if k == 0 {
        out.iter_mut().for_each(|o| *o = 0);
        return;
    }
    let mut rows = w.chunks_exact(k);
    for o in out.iter_mut() {
        *o = rows.next().map_or(0, |row| dot_i8(x, row));
    }
}

/// Scaled dot-product attention, the scalar oracle: for every token and head,
/// `ctx = rq_i8(softmax(rq_i32(q · kᵀ)) · v)`, with `softmax((head, token), scores, probs)` one
/// row at a time (adding a position bias to the scores where the model has one) returning the
/// sum its probabilities are divided by ([`ctx_rq`]).
#[allow(clippy::too_many_arguments)]
pub fn attention<F: FnMut((usize, usize), &mut [i32], &mut [u8]) -> u32>(
    q: &[i8],
    k: &[i8],
    v: &[i8],
    (tn, h, heads): (usize, usize, usize),
    (sm, ssh): (i32, i32),
    (cm, csh): (i32, i32),
    mut softmax: F,
    (scores, probs): (&mut [i32], &mut [u8]),
    ctx: &mut [i8],
) {
    let dh = h / heads.max(1);
    // Where the ranges admit it, the 32-bit requantization (exactly the definition's result):
    // scores are dots of dh products, contexts sums of tn products of a probability (≤ 255) and
    // a value, within 2·tn products of int8s. A forced-scalar run keeps the definition.
    let short = !super::scalar_forced();
    let short_scores = short && narrow_ok(dh, 0, sm, ssh);
    // One accumulator row for every (token, head), cleared to the head's width each time (not
    // the whole MAX_HEAD_DIM: on a small core that clearing cost more than the head's MACs).
    let mut acc_row = [0i32; MAX_HEAD_DIM];
    let acc = &mut acc_row[..dh.min(MAX_HEAD_DIM)];
    for t in 0..tn {
        for hd in 0..heads {
            let qrow = &q[t * h + hd * dh..t * h + (hd + 1) * dh];
            for (u, sc) in scores[..tn].iter_mut().enumerate() {
                let krow = &k[u * h + hd * dh..u * h + (hd + 1) * dh];
                // The dispatching dot (exact, so equal to the scalar one): the speed of every
                // core's attention outside x86's own path comes from it.
                let dot = super::dot_i8(qrow, krow);
                *sc = match short_scores {
                    true => rq_narrow(dot, sm, ssh),
                    false => rq_i32(dot as i64, sm, ssh),
                };
            }
            let row = softmax((hd, t), &mut scores[..tn], &mut probs[..tn]);
            let (rm, rsh) = ctx_rq((cm, csh), row);
            // context[t, head] = sum_u p[u] * v[u, head]
            acc.fill(0);
            for (u, &p) in probs[..tn].iter().enumerate() {
                if p == 0 {
                    continue;
                }
                let vrow = &v[u * h + hd * dh..u * h + (hd + 1) * dh];
                for (a, &v) in acc.iter_mut().zip(vrow) {
                    *a += p as i32 * v as i32;
                }
            }
            let out = &mut ctx[t * h + hd * dh..t * h + (hd + 1) * dh];
            if short && narrow_ok(2 * tn, 0, rm, rsh) {
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    *o = rq_narrow(a, rm, rsh).clamp(-127, 127) as i8;
                }
            } else {
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    *o = rq_i8(a as i64, rm, rsh);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_on_all_lengths_and_extremes() {
        let mut seed = 0x2545_f491_u32;
        for len in 0..70 {
            let mut a = [0i8; 70];
            let mut b = [0i8; 70];
            for i in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                a[i] = seed as i8;
                b[i] = (seed >> 8) as i8;
            }
            if len == 69 {
                a.iter_mut().for_each(|v| *v = -128);
                b.iter_mut().for_each(|v| *v = -128);
            }
            let naive: i32 = a[..len]
                .iter()
                .zip(&b[..len])
                .map(|(x, y)| *x as i32 * *y as i32)
                .sum();
            assert_eq!(dot_i8(&a[..len], &b[..len]), naive, "len {len}");
        }
    }

    /// The oracle covers the shorter operand, whichever it is and however the lengths fall
    /// against its chunks of 16.
    #[test]
    fn dot_covers_the_shorter_length() {
        let a: Vec<i8> = (0..70).map(|i| (i * 37 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..70).map(|i| (i * 91 % 255 - 127) as i8).collect();
        for la in 0..=70 {
            for lb in [0, 1, 15, 16, 17, 31, 32, 33, 50, 70] {
                let want: i32 = a[..la]
                    .iter()
                    .zip(&b[..lb])
                    .map(|(&x, &y)| x as i32 * y as i32)
                    .sum();
                assert_eq!(super::dot_i8(&a[..la], &b[..lb]), want, "{la} {lb}");
            }
        }
    }
}
