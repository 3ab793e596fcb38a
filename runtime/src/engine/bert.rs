//! The integer-only BERT encoder (post-LayerNorm), one sentence at a time, no padding.
//!
//! Data flow per layer (all integers; scales live in the requantization constants):
//! `xm` (i8) → Q, K, V (i8) → scores (i32, softmax-table steps) → probabilities (u8, 1/255)
//! → context (i8) → output projection added into the int32 residual `xr` → LayerNorm-1
//! → `xm` → FFN up (i8) → GELU table (i8, zero point) → FFN down added into `xr` → LayerNorm-2.

use super::layernorm::{layernorm, LnParams};
use super::requant::{div_round, rq_i32, rq_i8};
use super::sections::{EmbedView, LayerView, Linear};
use super::words_for_bytes;
use crate::kernels::{dot_i8, matmul_i8, Epilogue};

/// Shapes of one run.
#[derive(Clone, Copy)]
pub struct Dims {
    pub tokens: usize,
    pub hidden: usize,
    pub heads: usize,
    pub ffn: usize,
}

impl Dims {
    /// The shapes of a run of `tokens` rows through the layers `m` describes.
    pub fn of(m: &crate::format::ModelConfig, tokens: usize) -> Self {
        Dims {
            tokens,
            hidden: m.hidden as usize,
            heads: m.heads as usize,
            ffn: m.ffn as usize,
        }
    }
}

/// Scratch buffers carved from the arena.
pub struct Scratch<'s> {
    /// Residual stream, [tokens, hidden].
    pub xr: &'s mut [i32],
    /// LayerNorm matmul head, reused for the attention context, [tokens, hidden].
    pub xm: &'s mut [i8],
    pub q: &'s mut [i8],
    pub k: &'s mut [i8],
    pub v: &'s mut [i8],
    /// FFN activations, [tokens, ffn].
    pub u: &'s mut [i8],
    /// One row of attention scores / exponentials, [tokens].
    pub scores: &'s mut [i32],
    /// One row of probabilities, [tokens].
    pub probs: &'s mut [u8],
}

impl<'s> Scratch<'s> {
    /// Arena words the scratch of `d` takes: the layout [`Scratch::carve`] cuts.
    pub fn words(d: Dims) -> usize {
        let (t, h, f) = (d.tokens, d.hidden, d.ffn);
        t * h // residual
            + 4 * words_for_bytes(t * h) // xm/context, q, k, v
            + words_for_bytes(t * f) // FFN activations
            + t // scores
            + words_for_bytes(t) // probabilities
    }

    /// Cuts the scratch of `d` from the front of `arena`, which the caller has checked holds at
    /// least [`Scratch::words`]`(d)` words.
    pub fn carve(arena: &'s mut [i32], d: Dims) -> Scratch<'s> {
        let (t, h, f) = (d.tokens, d.hidden, d.ffn);
        let (xr, rest) = arena.split_at_mut(t * h);
        let (xm, rest) = rest.split_at_mut(words_for_bytes(t * h));
        let (q, rest) = rest.split_at_mut(words_for_bytes(t * h));
        let (k, rest) = rest.split_at_mut(words_for_bytes(t * h));
        let (v, rest) = rest.split_at_mut(words_for_bytes(t * h));
        let (u, rest) = rest.split_at_mut(words_for_bytes(t * f));
        let (scores, rest) = rest.split_at_mut(t);
        let probs = &mut rest[..words_for_bytes(t)];
        Scratch {
            xr,
            xm: &mut bytemuck::cast_slice_mut(xm)[..t * h],
            q: &mut bytemuck::cast_slice_mut(q)[..t * h],
            k: &mut bytemuck::cast_slice_mut(k)[..t * h],
            v: &mut bytemuck::cast_slice_mut(v)[..t * h],
            u: &mut bytemuck::cast_slice_mut(u)[..t * f],
            scores,
            probs: &mut bytemuck::cast_slice_mut(probs)[..t],
        }
    }
}

/// Embedding sum and LayerNorm for every token.
pub fn embed(ids: &[u32], e: &EmbedView<'_>, d: Dims, s: &mut Scratch<'_>) {
    let h = d.hidden;
    let ln = LnParams::new(e.ln, h);
    for (t, &id) in ids.iter().enumerate() {
        let id = id as usize;
        let (wm, ws) = e.word_rq.rq(id);
        let (pm, ps) = e.pos_rq.rq(t);
        let wrow = e.word.get(id * h..(id + 1) * h).unwrap_or(&[]);
        let prow = e.pos.get(t * h..(t + 1) * h).unwrap_or(&[]);
        let xr = &mut s.xr[t * h..(t + 1) * h];
        for (j, x) in xr.iter_mut().enumerate() {
            let w = wrow.get(j).copied().unwrap_or(0) as i64;
            let p = prow.get(j).copied().unwrap_or(0) as i64;
            *x = rq_i32(w, wm, ws).saturating_add(rq_i32(p, pm, ps));
        }
        layernorm(xr, &ln, &mut s.xm[t * h..(t + 1) * h]);
    }
}

/// The host's repacked copy of a linear layer (x86-64 or aarch64 with std), or a type with no
/// values elsewhere.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub type Fast = crate::kernels::packed::PackedLinear;
/// The host's repacked copy of a linear layer (x86-64 or aarch64 with std), or a type with no
/// values elsewhere.
#[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
pub type Fast = core::convert::Infallible;

/// A layer's six linears in order: Q, K, V, output, FFN up, FFN down.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const LINEARS: usize = 6;

/// `epi` ← `x[t] . w[n]` for every token and channel: on the host's packed kernel when the layer
/// has one, else on the scalar-oracle matmul (the device's path). Both give the same bytes.
pub fn linear(
    lin: &Linear<'_>,
    fast: Option<&Fast>,
    x: &[i8],
    k: usize,
    n: usize,
    tokens: usize,
    mut epi: Epilogue<'_>,
) {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(p) = fast {
        if !crate::kernels::scalar_forced() {
            p.run(x, tokens, &mut epi);
            return;
        }
    }
    #[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let _ = fast;
    matmul_i8(x, lin.w, k, tokens, n, |t, j, acc| {
        let (m, sh) = lin.rq.rq(j);
        epi.store(t * n + j, acc as i64 + lin.b.at(j) as i64, m, sh);
    });
}

/// One encoder layer, in place on `s.xr` / `s.xm`.
pub fn layer(
    lv: &LayerView<'_>,
    fast: &[Option<Fast>],
    e: &EmbedView<'_>,
    d: Dims,
    s: &mut Scratch<'_>,
) {
    let fast = |i: usize| fast.get(i).and_then(Option::as_ref);
    let (tn, h, f) = (d.tokens, d.hidden, d.ffn);
    linear(&lv.q, fast(0), s.xm, h, h, tn, Epilogue::I8(s.q));
    linear(&lv.k, fast(1), s.xm, h, h, tn, Epilogue::I8(s.k));
    linear(&lv.v, fast(2), s.xm, h, h, tn, Epilogue::I8(s.v));

    let (sm, ssh) = (lv.scalars.at(0), lv.scalars.at(1));
    let (cm, csh) = (lv.scalars.at(2), lv.scalars.at(3));
    let ctx = &mut *s.xm; // Q/K/V consumed xm: it now holds the context.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let done = !crate::kernels::scalar_forced()
        && (0..d.heads).all(|hd| {
            let dh = h / d.heads;
            let head = crate::kernels::x86_attn::Head {
                tokens: tn,
                hidden: h,
                offset: hd * dh,
                width: dh,
                score_rq: (sm, ssh),
                ctx_rq: (cm, csh),
            };
            let softmax = |sc: &mut [i32], p: &mut [u8]| softmax_row(sc, p, e);
            crate::kernels::x86_attn::head(&head, s.q, s.k, s.v, softmax, ctx)
        });
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let done = false;
    if !done {
        let shape = (tn, h, d.heads);
        let softmax = |sc: &mut [i32], p: &mut [u8]| softmax_row(sc, p, e);
        let bufs = (&mut *s.scores, &mut *s.probs);
        attention(
            s.q,
            s.k,
            s.v,
            shape,
            (sm, ssh),
            (cm, csh),
            softmax,
            bufs,
            ctx,
        );
    }
    linear(&lv.o, fast(3), ctx, h, h, tn, Epilogue::Residual(s.xr));
    let ln1 = LnParams::new(lv.ln1, h);
    for t in 0..tn {
        layernorm(
            &mut s.xr[t * h..(t + 1) * h],
            &ln1,
            &mut s.xm[t * h..(t + 1) * h],
        );
    }

    // FFN: up + GELU table into u, then down added into the residual.
    let up = Epilogue::Gelu(s.u, lv.gelu);
    linear(&lv.up, fast(4), s.xm, h, f, tn, up);
    linear(&lv.down, fast(5), s.u, f, h, tn, Epilogue::Residual(s.xr));
    let ln2 = LnParams::new(lv.ln2, h);
    for t in 0..tn {
        layernorm(
            &mut s.xr[t * h..(t + 1) * h],
            &ln2,
            &mut s.xm[t * h..(t + 1) * h],
        );
    }
}

/// Scaled dot-product attention, the scalar oracle: for every token and head,
/// `ctx = rq_i8(softmax(rq_i32(q · kᵀ)) · v)`, with `softmax` one row at a time.
#[allow(clippy::too_many_arguments)]
pub fn attention<F: FnMut(&mut [i32], &mut [u8])>(
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
    for t in 0..tn {
        for hd in 0..heads {
            let qrow = &q[t * h + hd * dh..t * h + (hd + 1) * dh];
            for (u, sc) in scores[..tn].iter_mut().enumerate() {
                let krow = &k[u * h + hd * dh..u * h + (hd + 1) * dh];
                *sc = rq_i32(dot_i8(qrow, krow) as i64, sm, ssh);
            }
            softmax(&mut scores[..tn], &mut probs[..tn]);
            // context[t, head] = sum_u p[u] * v[u, head]
            let mut acc = [0i32; MAX_HEAD_DIM];
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
            for (o, &a) in out.iter_mut().zip(acc.iter()) {
                *o = rq_i8(a as i64, cm, csh);
            }
        }
    }
}

/// Softmax of one row of requantized scores into u8 probabilities (summing to about 255): the
/// table exponential of each score's distance to the row maximum, divided by their sum, rounded.
/// `scores` is overwritten with the exponentials.
pub fn softmax_row(scores: &mut [i32], probs: &mut [u8], e: &EmbedView<'_>) {
    let max = scores.iter().copied().max().unwrap_or(0);
    let mut sum: u32 = 0;
    for sc in scores.iter_mut() {
        let ex = e.exp_at(max.saturating_sub(*sc) as usize);
        *sc = ex as i32;
        sum = sum.saturating_add(ex);
    }
    let sum = sum.max(1);
    for (p, &ex) in probs.iter_mut().zip(scores.iter()) {
        *p = prob_u8(ex as u32, sum);
    }
}

/// `round(ex · 255 / sum)` capped at 255, as `(ex·255 + sum/2) / sum` in u64. Table entries are
/// u16, so while `sum` < 2^31 the numerator is below 2^32 and one 32-bit division (a single UDIV
/// on Cortex-M3 and up, instead of a 64-bit library division) gives the same quotient.
#[inline(always)]
fn prob_u8(ex: u32, sum: u32) -> u8 {
    if ex <= u16::MAX as u32 && sum < 1 << 31 {
        ((ex * 255 + sum / 2) / sum).min(255) as u8
    } else {
        ((ex as u64 * 255 + sum as u64 / 2) / sum as u64).min(255) as u8
    }
}

/// Largest attention head width the encoder supports (validated at load).
pub const MAX_HEAD_DIM: usize = 256;

/// Pools the final residual stream into `out` (int8, scaled so the largest |value| is 127).
/// Mean pooling needs no division: the int8 rescaling by the maximum absorbs the token count.
pub fn pool(xr: &[i32], tokens: usize, hidden: usize, cls: bool, out: &mut [i8]) {
    let rows = if cls { tokens.min(1) } else { tokens };
    let column = |j: usize| -> i64 {
        (0..rows)
            .map(|t| xr.get(t * hidden + j).copied().unwrap_or(0) as i64)
            .sum()
    };
    let max = (0..hidden).map(|j| column(j).abs()).max().unwrap_or(0);
    for (j, o) in out.iter_mut().enumerate().take(hidden) {
        *o = if max == 0 {
            0
        } else {
            div_round(column(j) * 127, max).clamp(-127, 127) as i8
        };
    }
}

#[cfg(test)]
mod tests {
    use super::prob_u8;

    /// The 32-bit division gives the u64 formula's probability for every table value and sum.
    #[test]
    fn prob_u8_equals_the_u64_formula() {
        let mut sums: Vec<u32> = (1..3000).collect();
        sums.extend([65_535, 65_536, 1 << 24, (1 << 31) - 1, 1 << 31, u32::MAX]);
        for sum in sums {
            for ex in (0..=u16::MAX as u32)
                .step_by(97)
                .chain([u16::MAX as u32, 1 << 20])
            {
                let want = ((ex as u64 * 255 + sum as u64 / 2) / sum as u64).min(255) as u8;
                assert_eq!(prob_u8(ex, sum), want, "{ex} / {sum}");
            }
        }
    }
}
