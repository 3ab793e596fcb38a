//! The integer-only BERT encoder (post-LayerNorm), one sentence at a time, no padding.
//!
//! Data flow per layer (all integers; scales live in the requantization constants):
//! `xm` (i8) → Q, K, V (i8) → scores (i32, softmax-table steps) → probabilities (u8, 1/255)
//! → context (i8) → output projection added into the int32 residual `xr` → LayerNorm-1
//! → `xm` → FFN up (i8) → GELU table (i8, zero point) → FFN down added into `xr` → LayerNorm-2.

use super::layernorm::layernorm;
use super::profile::{Observer, Stage};
use super::sections::{EmbedView, Gelu, LayerView, Linear, WideAcc};
use super::words_for_bytes;
use crate::fixed::{div_round, narrow_by, rq, rq_i32, rq_narrow_half};
use crate::kernels::epilogue::{Outputs, Rq};
use crate::kernels::{matmul, Epilogue, Input, Sink};

/// Shapes of one run.
#[derive(Clone, Copy)]
pub struct Dims {
    pub tokens: usize,
    pub hidden: usize,
    pub heads: usize,
    pub ffn: usize,
    /// Some layer runs the 16-bit FFN: the scratch holds a second FFN activation plane.
    pub wide: bool,
}

impl Dims {
    /// The shapes of a run of `tokens` rows through the layers `m` describes.
    pub fn of(m: &crate::format::ModelConfig, tokens: usize) -> Self {
        Dims {
            tokens,
            hidden: m.hidden as usize,
            heads: m.heads as usize,
            ffn: m.ffn as usize,
            wide: false,
        }
    }

    /// The same shapes with room for the 16-bit FFN's second activation plane when `wide`.
    pub fn wide(self, wide: bool) -> Self {
        Dims { wide, ..self }
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
    /// FFN activations, [tokens, ffn] (the high plane of the 16-bit FFN).
    pub u: &'s mut [i8],
    /// The 16-bit FFN's low plane, [tokens, ffn] (empty unless `Dims::wide`).
    pub u_lo: &'s mut [i8],
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
            + words_for_bytes(t * f) * (1 + d.wide as usize) // FFN activations
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
        let (u_lo, rest) = rest.split_at_mut(words_for_bytes(t * f) * d.wide as usize);
        let (scores, rest) = rest.split_at_mut(t);
        let probs = &mut rest[..words_for_bytes(t)];
        Scratch {
            xr,
            xm: &mut bytemuck::cast_slice_mut(xm)[..t * h],
            q: &mut bytemuck::cast_slice_mut(q)[..t * h],
            k: &mut bytemuck::cast_slice_mut(k)[..t * h],
            v: &mut bytemuck::cast_slice_mut(v)[..t * h],
            u: &mut bytemuck::cast_slice_mut(u)[..t * f],
            u_lo: &mut bytemuck::cast_slice_mut(u_lo)[..t * f * d.wide as usize],
            scores,
            probs: &mut bytemuck::cast_slice_mut(probs)[..t],
        }
    }
}

/// Embedding sum and LayerNorm for every token; positions count from 0 in each sentence of
/// `segs` (see [`layer`]).
pub fn embed(ids: &[u32], segs: &[usize], e: &EmbedView<'_>, d: Dims, s: &mut Scratch<'_>) {
    let h = d.hidden;
    let positions = segs.iter().flat_map(|&len| 0..len);
    for (t, (&id, pos)) in ids.iter().zip(positions).enumerate() {
        let id = id as usize;
        let (wm, ws) = e.word_rq.rq(id);
        let (pm, ps) = e.pos_rq.rq(pos);
        let wrow = e.word.get(id * h..(id + 1) * h).unwrap_or(&[]);
        let prow = e.pos.get(pos * h..(pos + 1) * h).unwrap_or(&[]);
        let xr = &mut s.xr[t * h..(t + 1) * h];
        for (j, x) in xr.iter_mut().enumerate() {
            let w = wrow.get(j).copied().unwrap_or(0) as i64;
            let p = prow.get(j).copied().unwrap_or(0) as i64;
            *x = rq_i32(w, wm, ws).saturating_add(rq_i32(p, pm, ps));
        }
        layernorm(xr, &e.ln, &mut s.xm[t * h..(t + 1) * h]);
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

/// A layer's linears in order: Q, K, V, output, FFN up, FFN down (packed with the 16-bit FFN's
/// constants in a layer that has it, see `down16`).
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
    epi: Epilogue<'_>,
) {
    let consts = |j: usize| (lin.b.at(j), lin.rq.rq(j));
    linear_with(lin.w, consts, lin.narrow, fast, x, (k, n, tokens), epi);
}

/// [`linear`] with each channel's `(bias, (m, shift))` from `consts` instead of the package's
/// sections (`fast`, when given, was packed with the same constants); `narrow` when every
/// channel admits [`rq_narrow`].
fn linear_with(
    w: &[i8],
    consts: impl Fn(usize) -> (i32, (i32, i32)),
    narrow: bool,
    fast: Option<&Fast>,
    x: &[i8],
    (k, n, tokens): (usize, usize, usize),
    mut epi: Epilogue<'_>,
) {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(p) = fast {
        if !crate::kernels::scalar_forced() && !crate::kernels::portable_forced() {
            p.run(Input::I8(x), tokens, &mut epi);
            return;
        }
    }
    #[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let _ = fast;
    // The oracle, when forced, keeps the definition's arithmetic.
    let narrow = narrow && !crate::kernels::scalar_forced();
    let dims = (k, n, tokens);
    match narrow {
        true => epi.specialized(Matmul::<_, true> {
            x: Input::I8(x),
            w,
            dims,
            consts,
        }),
        false => epi.specialized(Matmul::<_, false> {
            x: Input::I8(x),
            w,
            dims,
            consts,
        }),
    }
}

/// The device's linear: [`matmul`] with each channel's bias and requantization; `NARROW`
/// requantizes in 32-bit steps ([`rq_narrow`]), which the caller has checked every channel admits.
struct Matmul<'a, C, const NARROW: bool> {
    x: Input<'a>,
    w: &'a [i8],
    dims: (usize, usize, usize),
    consts: C,
}

impl<C: Fn(usize) -> (i32, (i32, i32)), const NARROW: bool> Outputs for Matmul<'_, C, NARROW> {
    #[inline(always)]
    fn run(self, store: impl FnMut(usize, Rq)) {
        let (k, n, tokens) = self.dims;
        let mut sink = Requantize::<_, _, NARROW> {
            consts: self.consts,
            outs: n,
            store,
        };
        matmul(self.x, self.w, k, tokens, n, &mut sink);
    }
}

/// Requantizes each dot product with its channel's bias and `(m, shift)`, fetched once per
/// weight-row pass, and stores it at `t * outs + j`.
struct Requantize<C, S, const NARROW: bool> {
    consts: C,
    outs: usize,
    store: S,
}

impl<C: Fn(usize) -> (i32, (i32, i32)), S: FnMut(usize, Rq), const NARROW: bool> Sink
    for Requantize<C, S, NARROW>
{
    /// Bias, multiplier and shift (for `NARROW`, the shift of [`rq_narrow_by`]).
    type Channel = (i32, i32, i32);

    #[inline(always)]
    fn channel(&self, j: usize) -> (i32, i32, i32) {
        let (b, (m, sh)) = (self.consts)(j);
        (b, m, if NARROW { narrow_by(sh) } else { sh })
    }

    /// `NARROW`: the bias, which narrow_ok proved cannot overflow the accumulator.
    #[inline(always)]
    fn start(&self, (b, _, _): (i32, i32, i32)) -> i32 {
        if NARROW {
            b
        } else {
            0
        }
    }

    #[inline(always)]
    fn put(&mut self, t: usize, j: usize, (b, m, sh): (i32, i32, i32), acc: i32) {
        let v = match NARROW {
            // acc already holds the bias (start).
            true => Rq::Halve(rq_narrow_half(acc, m, sh)),
            false => Rq::Exact(rq(acc as i64 + b as i64, m, sh)),
        };
        (self.store)(t * self.outs + j, v);
    }
}

/// FFN down of the 16-bit FFN: `xr +=sat rq(s, m, shift + 7)` with
/// `s = 128·(hi·w + b) + lo·w`, the product over the 16-bit activations `y = 128·hi + lo` in one
/// sum and one rounding (the package's `(m, shift)` is in units of the high plane, hence the 7
/// bits). `acc` says how the sum may be accumulated ([`WideAcc`], checked at load); `fast` is the
/// host's packed layer with the constants `(128·b, (m, shift + 7))`.
fn down16(
    lin: &Linear<'_>,
    acc: WideAcc,
    fast: Option<&Fast>,
    (hi, lo): (&[i8], &[i8]),
    (k, n, tokens): (usize, usize, usize),
    xr: &mut [i32],
) {
    let mut epi = Epilogue::Residual(xr);
    let oracle = acc == WideAcc::I64 || crate::kernels::scalar_forced();
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(p) = fast {
        if !oracle && !crate::kernels::portable_forced() {
            p.run(Input::Planes(hi, lo), tokens, &mut epi);
            return;
        }
    }
    #[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let _ = fast;
    let consts = |j: usize| {
        let (m, sh) = lin.rq.rq(j);
        (lin.b.at(j).wrapping_mul(128), (m, sh.saturating_add(7)))
    };
    let x = Input::Planes(hi, lo);
    match (oracle, acc) {
        (true, _) => {
            // The definition: each plane's exact i32 dot product, combined in i64.
            let dot = crate::kernels::generic::dot_i8;
            for (j, row) in lin.w.chunks_exact(k.max(1)).take(n).enumerate() {
                let (m, sh) = lin.rq.rq(j);
                let b = lin.b.at(j) as i64;
                let planes = hi.chunks_exact(k.max(1)).zip(lo.chunks_exact(k.max(1)));
                for (t, (h, l)) in planes.take(tokens).enumerate() {
                    let s = 128 * (dot(h, row) as i64 + b) + dot(l, row) as i64;
                    epi.store(t * n + j, s, m, sh.saturating_add(7));
                }
            }
        }
        (false, WideAcc::Narrow) => epi.specialized(Matmul::<_, true> {
            x,
            w: lin.w,
            dims: (k, n, tokens),
            consts,
        }),
        (false, _) => epi.specialized(Matmul::<_, false> {
            x,
            w: lin.w,
            dims: (k, n, tokens),
            consts,
        }),
    }
}

/// One encoder layer, in place on `s.xr` / `s.xm`.
/// `segs` are the lengths of the sentences whose tokens lie one after another in the scratch
/// (one sentence: `[d.tokens]`): the linear layers run over all of them at once, attention within
/// each.
#[allow(clippy::too_many_arguments)]
pub fn layer(
    lv: &LayerView<'_>,
    fast: &[Option<Fast>],
    e: &EmbedView<'_>,
    d: Dims,
    segs: &[usize],
    s: &mut Scratch<'_>,
    (l, obs): (usize, &mut impl Observer),
) {
    let fast = |i: usize| fast.get(i).and_then(Option::as_ref);
    let mut finished = |stage: Stage| obs.stage(l, stage);
    let (tn, h, f) = (d.tokens, d.hidden, d.ffn);
    linear(&lv.q, fast(0), s.xm, h, h, tn, Epilogue::I8(s.q));
    finished(Stage::Q);
    linear(&lv.k, fast(1), s.xm, h, h, tn, Epilogue::I8(s.k));
    finished(Stage::K);
    linear(&lv.v, fast(2), s.xm, h, h, tn, Epilogue::I8(s.v));
    finished(Stage::V);

    // Q/K/V consumed xm: it now holds the context. Each sentence of a batch attends to itself.
    let mut off = 0;
    for &len in segs {
        let (a, b) = (off * h, (off + len) * h);
        if b > tn * h {
            break;
        }
        let bufs = (&mut *s.scores, &mut *s.probs);
        let qkv = (&s.q[a..b], &s.k[a..b], &s.v[a..b]);
        attend(lv, e, (len, h, d.heads), qkv, bufs, &mut s.xm[a..b]);
        off += len;
    }
    finished(Stage::Attention);
    linear(&lv.o, fast(3), s.xm, h, h, tn, Epilogue::Residual(s.xr));
    finished(Stage::O);
    for t in 0..tn {
        layernorm(
            &mut s.xr[t * h..(t + 1) * h],
            &lv.ln1,
            &mut s.xm[t * h..(t + 1) * h],
        );
    }
    finished(Stage::Ln1);

    // FFN: up + GELU table into u, then down added into the residual.
    match lv.gelu {
        Gelu::I8(table) => {
            linear(&lv.up, fast(4), s.xm, h, f, tn, Epilogue::Gelu(s.u, table));
            finished(Stage::FfnUp);
            linear(&lv.down, fast(5), s.u, f, h, tn, Epilogue::Residual(s.xr));
            finished(Stage::FfnDown);
        }
        Gelu::I16(table) => {
            let (hi, lo) = (&mut *s.u, &mut *s.u_lo);
            let up = Epilogue::Gelu16 { hi, lo, table };
            linear(&lv.up, fast(4), s.xm, h, f, tn, up);
            finished(Stage::FfnUp);
            let planes = (&*s.u, &*s.u_lo);
            down16(&lv.down, lv.down16, fast(5), planes, (f, h, tn), s.xr);
            finished(Stage::FfnDown);
        }
    }
    for t in 0..tn {
        layernorm(
            &mut s.xr[t * h..(t + 1) * h],
            &lv.ln2,
            &mut s.xm[t * h..(t + 1) * h],
        );
    }
    finished(Stage::Ln2);
}

/// Attention of one sentence (`tn` tokens): every head's scores, softmax table and context into
/// `ctx`, on x86's own path where it applies, else the portable one.
fn attend(
    lv: &LayerView<'_>,
    e: &EmbedView<'_>,
    (tn, h, heads): (usize, usize, usize),
    (q, k, v): (&[i8], &[i8], &[i8]),
    (scores, probs): (&mut [i32], &mut [u8]),
    ctx: &mut [i8],
) {
    let (sm, ssh) = lv.scalars.score;
    let (cm, csh) = lv.scalars.context;
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let done = !crate::kernels::scalar_forced()
        && (0..heads).all(|hd| {
            let dh = h / heads;
            let head = crate::kernels::x86_attn::Head {
                tokens: tn,
                hidden: h,
                offset: hd * dh,
                width: dh,
                score_rq: (sm, ssh),
                ctx_rq: (cm, csh),
            };
            let softmax = |at, sc: &mut [i32], p: &mut [u8]| softmax_row(at, sc, p, e);
            crate::kernels::x86_attn::head(&head, q, k, v, softmax, ctx)
        });
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let done = false;
    if !done {
        let softmax = |at, sc: &mut [i32], p: &mut [u8]| softmax_row(at, sc, p, e);
        crate::kernels::generic::attention(
            q,
            k,
            v,
            (tn, h, heads),
            (sm, ssh),
            (cm, csh),
            softmax,
            (scores, probs),
            ctx,
        );
    }
}

/// Softmax of one row of requantized scores (query token `t` of `head`), up to its
/// normalization: MPNet's relative position bias is added to the scores first (in place); each
/// probability is the table exponential of the score's distance to the row maximum on a grid of
/// 1/255 of the maximum's (so the maximum itself is 255), and the row's sum is returned for the
/// context to divide by ([`crate::fixed::ctx_rq`]). Relative to the maximum, a flat row over many
/// tokens keeps 8 bits per probability where probabilities over the sum would keep one or two.
pub fn softmax_row(
    (head, t): (usize, usize),
    scores: &mut [i32],
    probs: &mut [u8],
    e: &EmbedView<'_>,
) -> u32 {
    if let Some(rel) = &e.rel {
        for (u, sc) in scores.iter_mut().enumerate() {
            *sc = sc.saturating_add(rel.at(head, t, u));
        }
    }
    let max = scores.iter().copied().max().unwrap_or(0);
    let mut sum: u32 = 0;
    for (p, &sc) in probs.iter_mut().zip(scores.iter()) {
        // round(ex · 255 / 65535) for the table's Q16 entries (65535 → 255), without a division.
        let q = ((e.exp_at(max.saturating_sub(sc) as usize) * 255 + 32768) >> 16).min(255);
        *p = q as u8;
        sum += q;
    }
    sum
}

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
