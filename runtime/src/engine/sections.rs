//! Typed, validated views of the package sections the integer encoder reads.

use super::layernorm::LnParams;
use crate::error::{Error, Result};
use crate::fixed::{
    narrow_ok, narrow_ok_for, wide_bound, I32s, GELU16_KNOTS, GELU16_MAX, GELU16_MIN,
};
use crate::format::layout::{
    LinearSections, Scalars, DOWN, GELU_LEN, K_PROJ, LAYER_SCALARS, LN_ROWS, O, Q, UP, V,
};
use crate::format::{DType, Package, SectionKind};

/// Reinterprets validated i8 section bytes.
pub fn as_i8(b: &[u8]) -> &[i8] {
    bytemuck::cast_slice(b)
}

/// One linear layer: int8 weight `[out, in]`, i32 bias, per-channel requantization.
#[derive(Clone, Copy)]
pub struct Linear<'a> {
    /// Weight rows.
    pub w: &'a [i8],
    /// Bias in accumulator units.
    pub b: I32s<'a>,
    /// (multiplier, shift) per output channel.
    pub rq: I32s<'a>,
    /// Every channel admits [`crate::fixed::rq_narrow`] with its bias: checked here, once.
    pub narrow: bool,
}

/// All sections of one encoder layer.
#[derive(Clone, Copy)]
pub struct LayerView<'a> {
    pub q: Linear<'a>,
    pub k: Linear<'a>,
    pub v: Linear<'a>,
    pub o: Linear<'a>,
    pub up: Linear<'a>,
    pub down: Linear<'a>,
    /// LayerNorms after attention and after the FFN, with the ranges the host's vector path
    /// checks computed once here rather than on every call.
    pub ln1: LnParams<'a>,
    pub ln2: LnParams<'a>,
    pub gelu: Gelu<'a>,
    /// How FFN down of the 16-bit FFN accumulates (`I64` for an int8 FFN, which never asks).
    pub down16: WideAcc,
    /// The layer's scalars, by name.
    pub scalars: Scalars,
}

/// A layer's GELU: which of the two FFN precisions the layer runs at.
#[derive(Clone, Copy)]
pub enum Gelu<'a> {
    /// int8 in, int8 out: 256 entries indexed by `x + 128` (`GeluTable`).
    I8(&'a [i8]),
    /// 16 bits in, 15 bits out (`GeluTable16`, see [`crate::fixed::gelu16`]); FFN
    /// down runs on the two int8 planes of its output.
    I16(&'a [u8]),
}

impl<'a> Gelu<'a> {
    /// The layer's table: the 16-bit one when the package has it, else the int8 one.
    fn resolve(p: &Package<'a>, l: u16) -> Result<Self> {
        if p.find(SectionKind::GeluTable16, l).is_some() {
            let t = p.tensor(SectionKind::GeluTable16, l, DType::I32, 1, GELU16_KNOTS)?;
            // Knots on the output range keep every kernel's interpolation exact in i32.
            let knots = I32s(t);
            if (0..GELU16_KNOTS).any(|k| !(GELU16_MIN..=GELU16_MAX).contains(&knots.at(k))) {
                return Err(Error::PackageBadSection);
            }
            return Ok(Gelu::I16(t));
        }
        let t = p.tensor(SectionKind::GeluTable, l, DType::I8, 1, GELU_LEN)?;
        Ok(Gelu::I8(as_i8(t)))
    }

    /// True for the 16-bit FFN.
    pub fn wide(&self) -> bool {
        matches!(self, Gelu::I16(_))
    }
}

/// How the 16-bit FFN's down projection `s = 128·(hi·w + b) + lo·w` may be accumulated: the
/// product over its 16-bit activations `y = 128·hi + lo`, requantized once by `(m, shift + 7)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WideAcc {
    /// Some channel's `s` may leave i32: the definition's i64 sums, plane by plane (no real
    /// package; a hostile one still gets exact bytes).
    I64,
    /// Every channel's `s` fits i32 whatever the activations: a kernel's wrapping 32-bit sum is
    /// exact.
    I32,
    /// As `I32`, and every channel also admits [`crate::fixed::rq_narrow`] with `(m, shift + 7)`.
    Narrow,
}

impl WideAcc {
    /// Reads each channel's weight row once (`Σ|w|`, see [`wide_bound`]).
    pub fn of(down: &Linear<'_>, out: usize, inp: usize) -> WideAcc {
        let mut narrow = true;
        for (j, row) in down.w.chunks_exact(inp.max(1)).take(out).enumerate() {
            let abs: u64 = row.iter().map(|&v| v.unsigned_abs() as u64).sum();
            let smax = wide_bound(abs, down.b.at(j));
            if smax >= i32::MAX as u128 {
                return WideAcc::I64;
            }
            let (m, sh) = down.rq.rq(j);
            narrow &= narrow_ok_for(smax, m, sh.saturating_add(7));
        }
        if narrow {
            WideAcc::Narrow
        } else {
            WideAcc::I32
        }
    }
}

/// Resolves and shape-checks one linear's three sections.
pub fn linear<'a>(
    p: &Package<'a>,
    layer: u16,
    s: LinearSections,
    hidden: usize,
    ffn: usize,
) -> Result<Linear<'a>> {
    let (out, inp) = s.shape(hidden, ffn);
    let b = I32s(p.tensor(s.b, layer, DType::I32, 1, out)?);
    let rq = I32s(p.tensor(s.rq, layer, DType::I32, out, 2)?);
    let narrow = (0..out).all(|j| {
        let (m, sh) = rq.rq(j);
        narrow_ok(inp, b.at(j), m, sh)
    });
    Ok(Linear {
        w: as_i8(p.tensor(s.w, layer, DType::I8, out, inp)?),
        b,
        rq,
        narrow,
    })
}

impl<'a> LayerView<'a> {
    /// Resolves and shape-checks every section of layer `l`.
    pub fn resolve(p: &Package<'a>, l: u16, hidden: usize, ffn: usize) -> Result<Self> {
        use SectionKind::*;
        let down = linear(p, l, DOWN, hidden, ffn)?;
        let gelu = Gelu::resolve(p, l)?;
        Ok(LayerView {
            q: linear(p, l, Q, hidden, ffn)?,
            k: linear(p, l, K_PROJ, hidden, ffn)?,
            v: linear(p, l, V, hidden, ffn)?,
            o: linear(p, l, O, hidden, ffn)?,
            up: linear(p, l, UP, hidden, ffn)?,
            down,
            ln1: LnParams::new(p.tensor(Ln1, l, DType::I64, LN_ROWS, hidden)?, hidden),
            ln2: LnParams::new(p.tensor(Ln2, l, DType::I64, LN_ROWS, hidden)?, hidden),
            gelu,
            down16: match gelu {
                Gelu::I16(_) => WideAcc::of(&down, hidden, ffn),
                Gelu::I8(_) => WideAcc::I64,
            },
            scalars: {
                let t = I32s(p.tensor(LayerScalars, l, DType::I32, 1, LAYER_SCALARS)?);
                Scalars::from_words(|i| t.at(i))
            },
        })
    }
}

/// Embedding-stage sections.
#[derive(Clone, Copy)]
pub struct EmbedView<'a> {
    pub word: &'a [i8],
    pub word_rq: I32s<'a>,
    pub pos: &'a [i8],
    pub pos_rq: I32s<'a>,
    /// The embedding LayerNorm, its ranges computed once here like the layers'.
    pub ln: LnParams<'a>,
    pub exp: &'a [u8],
    /// MPNet's relative position bias (`None`: BERT's absolute positions only).
    pub rel: Option<RelPos<'a>>,
}

/// MPNet's relative position bias, validated once: every bucket names a row of the bias, so
/// [`RelPos::at`] cannot miss.
#[derive(Clone, Copy)]
pub struct RelPos<'a> {
    /// Bucket of offset `key − query`, at `offset + span`.
    buckets: &'a [u8],
    /// `[buckets, heads]` in softmax-table steps.
    bias: I32s<'a>,
    heads: usize,
    /// `positions − 1`: the largest offset either way.
    span: usize,
}

impl<'a> RelPos<'a> {
    /// The package's `RelBuckets` and `RelBias`, or `None` when it has neither; one without the
    /// other, a bucket past the bias's rows or shapes that disagree with the model fail.
    pub fn resolve(p: &Package<'a>, heads: usize, positions: usize) -> Result<Option<Self>> {
        use SectionKind::*;
        let (has_buckets, has_bias) = (p.find(RelBuckets, 0), p.find(RelBias, 0));
        let Some((info, _)) = has_bias else {
            return match has_buckets {
                Some(_) => Err(Error::PackageBadSection),
                None => Ok(None),
            };
        };
        let span = positions.saturating_sub(1);
        let buckets = p.tensor(RelBuckets, 0, DType::U8, 1, 2 * span + 1)?;
        let bias = p.tensor(RelBias, 0, DType::I32, 0, heads)?;
        let rows = info.rows as usize;
        if positions == 0 || buckets.iter().any(|&b| b as usize >= rows) {
            return Err(Error::PackageBadSection);
        }
        Ok(Some(RelPos {
            buckets,
            bias: I32s(bias),
            heads,
            span,
        }))
    }

    /// The bias of `head` for query token `t` attending to key token `u`.
    #[inline(always)]
    pub fn at(&self, head: usize, t: usize, u: usize) -> i32 {
        let b = self.buckets.get(u + self.span - t.min(self.span)).copied();
        self.bias.at(b.unwrap_or(0) as usize * self.heads + head)
    }
}

impl<'a> EmbedView<'a> {
    /// Resolves and shape-checks the embedding sections and the softmax table.
    pub fn resolve(
        p: &Package<'a>,
        (vocab, hidden, heads): (usize, usize, usize),
        positions: usize,
    ) -> Result<Self> {
        use SectionKind::*;
        let exp = p.tensor(ExpTable, 0, DType::U16, 1, 0)?;
        if exp.len() < 4 {
            return Err(Error::PackageBadSection);
        }
        Ok(EmbedView {
            word: as_i8(p.tensor(WordEmb, 0, DType::I8, vocab, hidden)?),
            word_rq: I32s(p.tensor(WordEmbRq, 0, DType::I32, vocab, 2)?),
            pos: as_i8(p.tensor(PosEmb, 0, DType::I8, positions, hidden)?),
            pos_rq: I32s(p.tensor(PosEmbRq, 0, DType::I32, positions, 2)?),
            ln: LnParams::new(p.tensor(EmbLn, 0, DType::I64, LN_ROWS, hidden)?, hidden),
            exp,
            rel: RelPos::resolve(p, heads, positions)?,
        })
    }

    /// The reasoner's embedding stage: the position table, its LayerNorm and the softmax table.
    /// It has no token table (its inputs are turn vectors), so `word` and `word_rq` stay empty.
    pub fn resolve_positions(p: &Package<'a>, hidden: usize, positions: usize) -> Result<Self> {
        use SectionKind::*;
        let exp = p.tensor(ExpTable, 0, DType::U16, 1, 0)?;
        if exp.len() < 4 {
            return Err(Error::PackageBadSection);
        }
        Ok(EmbedView {
            word: &[],
            word_rq: I32s(&[]),
            pos: as_i8(p.tensor(PosEmb, 0, DType::I8, positions, hidden)?),
            pos_rq: I32s(p.tensor(PosEmbRq, 0, DType::I32, positions, 2)?),
            ln: LnParams::new(p.tensor(EmbLn, 0, DType::I64, LN_ROWS, hidden)?, hidden),
            exp,
            rel: None,
        })
    }

    /// Softmax table entry `d` (saturating at the last entry).
    #[inline(always)]
    pub fn exp_at(&self, d: usize) -> u32 {
        let n = self.exp.len() / 2;
        let i = d.min(n - 1) * 2;
        u16::from_le_bytes([self.exp[i], self.exp[i + 1]]) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// The bound follows the weights: a row whose `2^14·Σ|w| + 128·|b|` reaches i32::MAX sends
    /// the layer to the i64 sums, one just below keeps 32 bits, and a multiplier too large for
    /// the short requantization keeps the exact one.
    #[test]
    fn wide_accumulation_follows_each_rows_weights() {
        let k = 1536;
        // Σ|w| = 131_071: 2^14·131_071 = 2^31 - 2^14, so a bias of 127 (128·127 < 2^14) fits.
        let mut w = vec![85i8; k]; // 130_560, and 511 more:
        w[..12].fill(127);
        w[12] = 92;
        assert_eq!(w.iter().map(|&v| v as i32).sum::<i32>(), 131_071);
        let (b, rq) = (words(&[127]), words(&[1 << 30, 40]));
        let lin = |w: &'static [i8], b: &'static [u8], rq: &'static [u8]| Linear {
            w,
            b: I32s(b),
            rq: I32s(rq),
            narrow: false,
        };
        let leak = |v: Vec<u8>| -> &'static [u8] { Vec::leak(v) };
        let w: &'static [i8] = Vec::leak(w);
        let b: &'static [u8] = leak(b);
        assert_eq!(
            WideAcc::of(&lin(w, b, leak(rq.clone())), 1, k),
            WideAcc::Narrow
        );
        assert_eq!(
            WideAcc::of(&lin(w, b, leak(words(&[i32::MAX, 7]))), 1, k),
            WideAcc::I32
        );
        assert_eq!(
            WideAcc::of(&lin(w, leak(words(&[128])), leak(rq.clone())), 1, k),
            WideAcc::I64
        );
        let mut more = w.to_vec();
        more[100] = 86;
        assert_eq!(
            WideAcc::of(&lin(Vec::leak(more), b, leak(rq)), 1, k),
            WideAcc::I64
        );
    }
}
