//! Scalar oracle kernels: the definition every faster kernel is tested against.

/// Dot product of two int8 vectors (over the shorter length).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
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
}
