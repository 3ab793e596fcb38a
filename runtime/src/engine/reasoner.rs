//! The integer reasoner: the encoder's BERT layers run over a window of int8 turn vectors (latest
//! first) to predict the next turn's vector, all in the caller's arena.
//!
//! Per turn `t` of the window: the int8 vector, widened, goes through the input LayerNorm (`InLn`,
//! residual head only) into the embedding-sum unit, the position row `t` is added (`PosEmb`, as
//! the encoder adds its position table), and the embedding LayerNorm (`EmbLn`) feeds layer 0.
//! After the last layer, row 0's matmul head goes through the read-out linear (`WOut`) into one
//! i32 unit, rescaled to int8 like a pooled sentence vector (largest |value| → 127): the
//! prediction is compared by cosine only, so its scale carries nothing. A package with a
//! `Residual` section adds the latest turn at unit length to that unit first: the network then
//! predicts a correction of the latest turn, and with a small correction the reasoner ranks like
//! the encoder's own last-turn cosine.

use super::bert::{self, Dims, Scratch};
use super::layernorm::{layernorm, LnParams};
use super::sections::{as_i8, linear, EmbedView, LayerView, Linear};
use crate::error::{Error, Result};
use crate::fixed::{div_round, isqrt_u128, rq_i32};
use crate::format::layout::{LN_ROWS, OUT};
use crate::format::{Arch, DType, Header, Package, SectionKind};
use crate::kernels::generic::MAX_HEAD_DIM;
use crate::kernels::Epilogue;

/// Input vectors are widened by this many bits before the input LayerNorm: the integer LayerNorm
/// rounds the mean to a whole unit, and 2^16 sub-units make that rounding negligible.
const INPUT_SHIFT: u32 = 16;

/// Most layers a reasoner package may have. The resolved layer list lives inline (no heap), and
/// on the device in the console's stack frame: four leave room over models/reasoner-s's two at a
/// third of the encoder's twelve-layer list.
pub const MAX_REASONER_LAYERS: usize = 4;

/// A validated reasoner package. Holds no buffers: all scratch lives in the caller's arena.
#[derive(Clone)]
pub struct Reasoner<'a> {
    package: Package<'a>,
    embed: EmbedView<'a>,
    in_ln: LnParams<'a>,
    layers: heapless::Vec<LayerView<'a>, MAX_REASONER_LAYERS>,
    out: Linear<'a>,
    gate: i32,
    /// Read-out units of the latest-turn residual (0: none).
    residual: i32,
    /// The trust ramp (score units) and its prototypes, `[K, hidden]` (empty: trust 1).
    trust: (i32, i32),
    prototypes: &'a [u8],
    encoder_tag: u32,
}

impl<'a> Reasoner<'a> {
    /// Validates the package (checksum included) and every section the reasoner reads.
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        Self::from_package(Package::new_checked(bytes)?)
    }

    /// Resolves and shape-checks every section once, so that [`Reasoner::predict`] cannot fail on
    /// the package afterwards.
    pub fn from_package(package: Package<'a>) -> Result<Self> {
        let h = package.header().clone();
        if h.arch != Arch::Reasoner {
            return Err(Error::PackageWrongKind);
        }
        let m = h.model;
        let (hidden, ffn) = (m.hidden as usize, m.ffn as usize);
        // validate() guarantees heads > 0 for the reasoner, so the division cannot fault.
        if hidden / m.heads as usize > MAX_HEAD_DIM {
            return Err(Error::PackageBadConfig);
        }
        let embed = EmbedView::resolve_positions(&package, hidden, m.max_positions as usize)?;
        let in_ln = LnParams::new(
            package.tensor(SectionKind::InLn, 0, DType::I64, LN_ROWS, hidden)?,
            hidden,
        );
        let mut layers = heapless::Vec::new();
        for l in 0..m.layers {
            let view = LayerView::resolve(&package, l as u16, hidden, ffn)?;
            // More than MAX_REASONER_LAYERS layers: refused here, once.
            layers.push(view).map_err(|_| Error::PackageBadConfig)?;
        }
        let out = linear(&package, 0, OUT, hidden, ffn)?;
        let gate = package.tensor(SectionKind::Gate, 0, DType::I32, 1, 1)?;
        let gate = crate::le::u32_at(gate, 0).ok_or(Error::PackageBadSection)? as i32;
        let word = |b: &[u8], i: usize| -> Result<i32> {
            Ok(crate::le::u32_at(b, 4 * i).ok_or(Error::PackageBadSection)? as i32)
        };
        let (residual, trust) = match package.tensor(SectionKind::Residual, 0, DType::I32, 1, 3) {
            Ok(r) => (word(r, 0)?, (word(r, 1)?, word(r, 2)?)),
            Err(Error::PackageMissingSection) => (0, (0, 0)),
            Err(e) => return Err(e),
        };
        let prototypes = match package.tensor(SectionKind::Prototypes, 0, DType::I8, 0, hidden) {
            Ok(p) => p,
            Err(Error::PackageMissingSection) => &[],
            Err(e) => return Err(e),
        };
        let encoder_tag = match package.tensor(SectionKind::EncoderTag, 0, DType::I32, 1, 1) {
            Ok(t) => crate::le::u32_at(t, 0).ok_or(Error::PackageBadSection)?,
            Err(Error::PackageMissingSection) => 0,
            Err(e) => return Err(e),
        };
        // A negative or huge residual is no quantizer's output; refusing it here keeps the
        // accumulation in predict() far from overflow (|e_j| · R · 256 < 2^63). The ramp must
        // rise within [-1, 1], and prototypes need a residual to correct.
        let one = crate::kb::SCORE_ONE;
        let ramp_ok = trust.0 < trust.1 && -one <= trust.0 && trust.1 <= one;
        if !(0..=1 << 30).contains(&residual)
            || (!prototypes.is_empty() && (residual == 0 || !ramp_ok))
        {
            return Err(Error::PackageBadSection);
        }
        Ok(Reasoner {
            package,
            embed,
            in_ln,
            layers,
            out,
            gate,
            residual,
            trust,
            prototypes,
            encoder_tag,
        })
    }

    /// The tag of the encoder package it was calibrated on (`EncoderTag`; 0 when unknown).
    pub fn encoder_tag(&self) -> u32 {
        self.encoder_tag
    }

    /// Checks that `encoder` produces the turn vectors this reasoner reads: its dimension, and
    /// the very package when the reasoner records one (another encoder of the same width gives
    /// vectors in another space, and the predictions would be noise).
    pub fn check_encoder(&self, encoder: &crate::Model<'_>) -> Result<()> {
        if encoder.dim() != self.dim() {
            return Err(Error::OutputSizeMismatch);
        }
        if self.encoder_tag != 0 && self.encoder_tag != crate::kb::package_tag(encoder.package()) {
            return Err(Error::ReasonerEncoderMismatch);
        }
        Ok(())
    }

    /// The package header.
    pub fn header(&self) -> &Header {
        self.package.header()
    }

    /// Width of the turn vectors it reads and predicts.
    pub fn dim(&self) -> usize {
        self.header().model.hidden as usize
    }

    /// The calibrated refinement gate (`Gate`): `chat` refines when the best two response-bank
    /// scores differ by less than this (score units, cosine × 65536).
    pub fn gate(&self) -> i32 {
        self.gate
    }

    /// Most turns a window holds.
    pub fn window(&self) -> usize {
        self.header().model.max_positions as usize
    }

    /// i32 words of arena [`Reasoner::predict`] needs for a window of `turns` turns.
    pub fn arena_words(&self, turns: usize) -> usize {
        Scratch::words(self.dims(turns))
    }

    /// Predicts the next turn's vector into `out` (int8, length [`Reasoner::dim`]) from `window`,
    /// the conversation's last 1..=[`Reasoner::window`] turn vectors, latest first. Returns the
    /// trust it gave the correction ([`Reasoner::trust`] of the latest turn; [`TRUST_ONE`] for a
    /// package without a residual), which callers scale other corrections by.
    pub fn predict(&self, window: &[&[i8]], arena: &mut [i32], out: &mut [i8]) -> Result<i32> {
        let m = self.header().model;
        let (tn, h) = (window.len(), m.hidden as usize);
        if out.len() != h || window.iter().any(|w| w.len() != h) {
            return Err(Error::OutputSizeMismatch);
        }
        if tn == 0 || tn > self.window() {
            return Err(Error::WindowSize);
        }
        if arena.len() < self.arena_words(tn) {
            return Err(Error::ArenaTooSmall);
        }
        let d = self.dims(tn);
        let mut s = Scratch::carve(arena, d);
        self.embed(window, d, &mut s);
        for lv in &self.layers {
            // No repacked linears: eight rows are too few for the host's packed kernels to pay.
            bert::layer(lv, &[], &self.embed, d, &[d.tokens], &mut s, (0, &mut ()));
        }
        // Row 0's matmul head (the last LayerNorm-2 wrote it) → the read-out, accumulated into
        // a zeroed row 0 of the residual (no longer needed).
        let acc = &mut s.xr[..h];
        acc.fill(0);
        bert::linear(
            &self.out,
            None,
            &s.xm[..h],
            h,
            h,
            1,
            Epilogue::Residual(acc),
        );
        let mut trust = TRUST_ONE;
        if self.residual != 0 {
            let t = self.trust(window[0]);
            trust = t;
            if t < TRUST_ONE {
                for a in acc.iter_mut() {
                    *a = div_round(*a as i64 * t as i64, TRUST_ONE as i64) as i32;
                }
            }
            add_residual(acc, window[0], self.residual);
        }
        bert::pool(acc, 1, h, true, out);
        Ok(trust)
    }

    /// How far the correction is trusted for this latest turn, 0 to [`TRUST_ONE`]: the ramp of
    /// `Residual` over the best prototype score (cosine × 65536), [`TRUST_ONE`] without
    /// prototypes.
    pub fn trust(&self, latest: &[i8]) -> i32 {
        if self.prototypes.is_empty() {
            return TRUST_ONE;
        }
        let Some(best) = best_score(latest, self.prototypes) else {
            return 0;
        };
        let (low, high) = (self.trust.0 as i64, self.trust.1 as i64);
        div_round((best - low) * TRUST_ONE as i64, high - low).clamp(0, TRUST_ONE as i64) as i32
    }

    /// Read-out units of the latest-turn residual (`Residual`; 0 when the package has none).
    pub fn residual(&self) -> i32 {
        self.residual
    }

    /// The shapes of a window of `turns` turns.
    fn dims(&self, turns: usize) -> Dims {
        let wide = self.layers.iter().any(|l| l.gelu.wide());
        Dims::of(&self.header().model, turns).wide(wide)
    }

    /// Input LayerNorm, position add and embedding LayerNorm for every turn of the window.
    fn embed(&self, window: &[&[i8]], d: Dims, s: &mut Scratch<'_>) {
        let h = d.hidden;
        for (t, turn) in window.iter().enumerate() {
            let xr = &mut s.xr[t * h..(t + 1) * h];
            let xm = &mut s.xm[t * h..(t + 1) * h];
            for (x, &e) in xr.iter_mut().zip(turn.iter()) {
                *x = (e as i32) << INPUT_SHIFT;
            }
            layernorm(xr, &self.in_ln, xm);
            let (pm, ps) = self.embed.pos_rq.rq(t);
            let prow = self.embed.pos.get(t * h..(t + 1) * h).unwrap_or(&[]);
            for (x, &p) in xr.iter_mut().zip(prow) {
                *x = x.saturating_add(rq_i32(p as i64, pm, ps));
            }
            layernorm(xr, &self.embed.ln, xm);
        }
    }
}

/// Full trust in the correction.
pub const TRUST_ONE: i32 = 256;

/// `|v|` in 1/256 units: `⌊√(Σ v_j² · 2^16)⌋`.
fn length(v: &[i8]) -> i64 {
    let ss: u128 = v.iter().map(|&e| (e as i32 * e as i32) as u128).sum();
    isqrt_u128(ss << 16) as i64
}

/// The largest cosine (× 65536) of `latest` to a row of `prototypes` (rows of `latest.len()`
/// int8 values); `None` for a zero `latest`.
fn best_score(latest: &[i8], prototypes: &[u8]) -> Option<i64> {
    let n = length(latest);
    if n == 0 {
        return None;
    }
    let mut best = i64::MIN;
    for row in prototypes.chunks_exact(latest.len()) {
        let p: &[i8] = as_i8(row);
        let np = length(p);
        if np == 0 {
            continue;
        }
        let dot: i64 = latest
            .iter()
            .zip(p)
            .map(|(&a, &b)| a as i64 * b as i64)
            .sum();
        best = best.max((dot << 32) / (n * np));
    }
    Some(best)
}

/// Adds `latest` at unit length, `r` read-out units long, to `acc`: `acc_j += round(e_j · r · 256
/// / n)` with `n = ⌊√(Σ e_j² · 2^16)⌋`, the vector's length in 1/256 units. Integer only, so
/// every target gives the same bytes; a zero vector adds nothing.
fn add_residual(acc: &mut [i32], latest: &[i8], r: i32) {
    let n = length(latest);
    if n == 0 {
        return;
    }
    for (a, &e) in acc.iter_mut().zip(latest) {
        let v = div_round(e as i64 * r as i64 * 256, n);
        *a = a.saturating_add(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::{add_residual, best_score};

    /// The best prototype score is the largest cosine, × 65536, to within the lengths' rounding.
    #[test]
    fn best_score_is_the_largest_cosine() {
        let l: [i8; 3] = [100, 0, -20];
        let protos: [i8; 9] = [0, 127, 0, 90, 10, -30, -127, 0, 0];
        let bytes: Vec<u8> = protos.iter().map(|&x| x as u8).collect();
        let cos = |p: &[i8]| {
            let d: f64 = l.iter().zip(p).map(|(&a, &b)| a as f64 * b as f64).sum();
            let n = |v: &[i8]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            d / (n(&l) * n(p))
        };
        let want = protos.chunks(3).map(cos).fold(f64::MIN, f64::max) * 65536.0;
        let got = best_score(&l, &bytes).unwrap() as f64;
        // Both lengths are floored to 1/256 of a unit: a few units of 65536 at these lengths.
        assert!((got - want).abs() < 8.0, "{got} vs {want}");
        assert_eq!(best_score(&[0; 3], &bytes), None);
    }

    /// The residual is the latest turn at unit length, `r` units long, to within rounding.
    #[test]
    fn residual_is_the_unit_vector_times_r() {
        let e: [i8; 4] = [127, -64, 0, 3];
        let len = e.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        let mut acc = [10i32, -10, 0, 0];
        add_residual(&mut acc, &e, 1 << 20);
        for (j, (&a, &x)) in acc.iter().zip(&e).enumerate() {
            let want = [10.0, -10.0, 0.0, 0.0][j] + x as f64 / len * (1 << 20) as f64;
            assert!(
                (a as f64 - want).abs() <= 1.0 + want.abs() * 2e-3,
                "{j}: {a} vs {want}"
            );
        }
        let mut zero = [5i32; 4];
        add_residual(&mut zero, &[0; 4], 1 << 20);
        assert_eq!(zero, [5; 4]);
        // The largest residual a package may hold, on the largest vector: no overflow.
        let mut big = [i32::MAX - 1, i32::MIN + 1, 0, 0];
        add_residual(&mut big, &[127, -128, -128, -128], 1 << 30);
        assert_eq!(big[0], i32::MAX);
    }
}
