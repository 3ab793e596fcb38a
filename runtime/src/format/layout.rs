//! The BERT (and reasoner) package's section list: which sections one encoder layer has, with their element types
//! and shapes. The engine resolves them (`engine::sections`), the quantizer writes them
//! (tools `quant::lower`) and the synthetic test package writes them, all from this list.

use super::SectionKind;

/// A dimension of the model that a section's shape is given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The hidden width.
    Hidden,
    /// The feed-forward width.
    Ffn,
}

impl Dim {
    /// Its size for a model of `hidden` and `ffn` widths.
    pub const fn size(self, hidden: usize, ffn: usize) -> usize {
        match self {
            Dim::Hidden => hidden,
            Dim::Ffn => ffn,
        }
    }
}

/// One linear layer's three sections: int8 weight `[out, in]`, i32 bias `[1, out]`, and i32
/// (multiplier, shift) requantization `[out, 2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearSections {
    /// Weight section.
    pub w: SectionKind,
    /// Bias section.
    pub b: SectionKind,
    /// Requantization section.
    pub rq: SectionKind,
    /// Output width.
    pub out: Dim,
    /// Input width.
    pub inp: Dim,
}

impl LinearSections {
    /// (out, in) for a model of `hidden` and `ffn` widths.
    pub const fn shape(&self, hidden: usize, ffn: usize) -> (usize, usize) {
        (self.out.size(hidden, ffn), self.inp.size(hidden, ffn))
    }
}

const fn linear(
    w: SectionKind,
    b: SectionKind,
    rq: SectionKind,
    out: Dim,
    inp: Dim,
) -> LinearSections {
    LinearSections { w, b, rq, out, inp }
}

use SectionKind as K;

/// Attention query projection.
pub const Q: LinearSections = linear(K::Wq, K::Bq, K::RqQ, Dim::Hidden, Dim::Hidden);
/// Attention key projection.
pub const K_PROJ: LinearSections = linear(K::Wk, K::Bk, K::RqK, Dim::Hidden, Dim::Hidden);
/// Attention value projection.
pub const V: LinearSections = linear(K::Wv, K::Bv, K::RqV, Dim::Hidden, Dim::Hidden);
/// Attention output projection.
pub const O: LinearSections = linear(K::Wo, K::Bo, K::RqO, Dim::Hidden, Dim::Hidden);
/// Feed-forward up projection (into GELU).
pub const UP: LinearSections = linear(K::W1, K::B1, K::Rq1, Dim::Ffn, Dim::Hidden);
/// Feed-forward down projection.
pub const DOWN: LinearSections = linear(K::W2, K::B2, K::Rq2, Dim::Hidden, Dim::Ffn);

/// The reasoner's read-out linear (row 0 of the last layer's output → the predicted vector).
pub const OUT: LinearSections = linear(K::WOut, K::BOut, K::RqOut, Dim::Hidden, Dim::Hidden);

/// Every linear of one encoder layer, in package order.
pub const LAYER_LINEARS: [LinearSections; 6] = [Q, K_PROJ, V, O, UP, DOWN];

/// Rows of an integer LayerNorm section (`Ln1`, `Ln2`, `EmbLn`: i64 `[4, hidden]`).
pub const LN_ROWS: usize = 4;
/// Entries of a layer's GELU table (`GeluTable`: i8 `[1, 256]`, indexed by the int8 input).
pub const GELU_LEN: usize = 256;
/// Entries of a layer's scalars (`LayerScalars`: i32 `[1, 8]`), in the order of [`Scalars`].
pub const LAYER_SCALARS: usize = 8;

/// A layer's scalars by name: the `LayerScalars` section holds them as i32 in this order, then
/// zeros up to [`LAYER_SCALARS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scalars {
    /// Requantization `(mult, shift)` of the attention scores to i32.
    pub score: (i32, i32),
    /// Requantization `(mult, shift)` of the context for probabilities summing to 255.
    pub context: (i32, i32),
    /// Zero point of the int8 GELU table's output.
    pub gelu_zero: i32,
}

impl Scalars {
    /// The section's words.
    pub const fn to_words(&self) -> [i32; LAYER_SCALARS] {
        let (s, c) = (self.score, self.context);
        [s.0, s.1, c.0, c.1, self.gelu_zero, 0, 0, 0]
    }

    /// From the section's words (`at(i)`: word `i`).
    pub fn from_words(at: impl Fn(usize) -> i32) -> Self {
        Scalars {
            score: (at(0), at(1)),
            context: (at(2), at(3)),
            gelu_zero: at(4),
        }
    }
}
