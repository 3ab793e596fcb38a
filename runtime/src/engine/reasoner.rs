//! The integer reasoner: the encoder's BERT layers run over a window of int8 turn vectors (latest
//! first) to predict the next turn's vector, all in the caller's arena.
//!
//! Per turn `t` of the window: the int8 vector, widened, goes through the input LayerNorm (`InLn`,
//! residual head only) into the embedding-sum unit, the position row `t` is added (`PosEmb`, as
//! the encoder adds its position table), and the embedding LayerNorm (`EmbLn`) feeds layer 0.
//! After the last layer, row 0's matmul head goes through the read-out linear (`WOut`) into one
//! i32 unit, rescaled to int8 like a pooled sentence vector (largest |value| → 127): the
//! prediction is compared by cosine only, so its scale carries nothing.

use super::bert::{self, Dims, Scratch, MAX_HEAD_DIM};
use super::layernorm::{layernorm, LnParams};
use super::requant::rq_i32;
use super::sections::{linear, EmbedView, LayerView, Linear};
use crate::error::{Error, Result};
use crate::format::layout::{LN_ROWS, OUT};
use crate::format::{Arch, DType, Header, Package, SectionKind};
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
        Ok(Reasoner {
            package,
            embed,
            in_ln,
            layers,
            out,
            gate,
        })
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
    /// the conversation's last 1..=[`Reasoner::window`] turn vectors, latest first.
    pub fn predict(&self, window: &[&[i8]], arena: &mut [i32], out: &mut [i8]) -> Result<()> {
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
            bert::layer(lv, &[], &self.embed, d, &mut s);
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
        bert::pool(acc, 1, h, true, out);
        Ok(())
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
