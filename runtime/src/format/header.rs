//! The postcard header: small, fixed-capacity, decodable without an allocator.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the network between token ids and the pooled vector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// A BERT-family encoder (post-LayerNorm transformer), integer-only.
    Bert,
    /// A static model: one vector per token, pooled (model2vec style).
    Static,
    /// The conversation reasoner: BERT layers over a window of int8 turn vectors (latest first)
    /// that predict the next turn's vector. It has no tokenizer: `vocab_size` and the tokenizer
    /// settings are unused, `max_positions` is the window.
    Reasoner,
}

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// Mean over all tokens, `[CLS]` and `[SEP]` included (sentence-transformers' mean pooling).
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
}

/// Shapes of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Rows of the token table.
    pub vocab_size: u32,
    /// Width of the residual stream (the embedding dimension for BERT).
    pub hidden: u32,
    /// Transformer layers (0 for static models).
    pub layers: u32,
    /// Attention heads.
    pub heads: u32,
    /// Width of the feed-forward block.
    pub ffn: u32,
    /// Rows of the position table.
    pub max_positions: u32,
    /// Pooling mode.
    pub pooling: Pooling,
    /// Whether the reference model L2-normalizes its output.
    pub normalize: bool,
}

/// Settings of the BERT WordPiece tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerConfig {
    /// Lowercase the input (uncased models).
    pub lowercase: bool,
    /// Remove combining marks after NFD decomposition.
    pub strip_accents: bool,
    /// Put spaces around CJK ideographs.
    pub split_cjk: bool,
    /// Id of `[CLS]`.
    pub cls_id: u32,
    /// Id of `[SEP]`.
    pub sep_id: u32,
    /// Id of `[UNK]`.
    pub unk_id: u32,
    /// Id of `[PAD]`.
    pub pad_id: u32,
    /// Maximum sequence length in tokens, `[CLS]` and `[SEP]` included.
    pub max_len: u32,
    /// Words longer than this many chars become `[UNK]` (Hugging Face's `max_input_chars_per_word`).
    pub max_chars_per_word: u32,
}

impl TokenizerConfig {
    /// The settings of a package without a tokenizer (a reasoner reads vectors, not text).
    pub const NONE: TokenizerConfig = TokenizerConfig {
        lowercase: false,
        strip_accents: false,
        split_cjk: false,
        cls_id: 0,
        sep_id: 0,
        unk_id: 0,
        pad_id: 0,
        max_len: 0,
        max_chars_per_word: 0,
    };
}

/// Most encoder layers a package may have: the model resolves every layer's sections once at load
/// into a fixed-capacity list (no heap), sized by this. BERT-base and MiniLM-L12 have 12.
pub const MAX_LAYERS: usize = 12;

/// Bytes of UTF-8 a package's name holds.
pub const NAME_MAX: usize = 48;

/// The package header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Human-readable model name (for `info`).
    pub name: heapless::String<NAME_MAX>,
    /// Network family.
    pub arch: Arch,
    /// Shapes.
    pub model: ModelConfig,
    /// Tokenizer settings.
    pub tokenizer: TokenizerConfig,
    /// Real value of one unit of the pooled integer vector (before the int8 output rounding);
    /// used only to give un-normalized models their magnitude back.
    pub pool_scale: f32,
    /// log2 of the number of softmax-table steps per unit of attention logit.
    pub score_step_log2: u8,
}

impl Header {
    /// Checks that the configuration is self-consistent (sizes non-zero, heads divide hidden, ...).
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        let t = &self.tokenizer;
        if m.hidden == 0 {
            return Err(Error::PackageBadConfig);
        }
        let layered = matches!(self.arch, Arch::Bert | Arch::Reasoner);
        if layered {
            let bad = m.layers == 0
                || m.layers as usize > MAX_LAYERS
                || m.heads == 0
                || !m.hidden.is_multiple_of(m.heads)
                || m.ffn == 0
                || m.max_positions == 0;
            if bad {
                return Err(Error::PackageBadConfig);
            }
        }
        if self.arch == Arch::Reasoner {
            // No tokenizer to check.
            return Ok(());
        }
        let bad = m.vocab_size == 0
            || t.max_len < 2
            || t.cls_id >= m.vocab_size
            || t.sep_id >= m.vocab_size
            || t.unk_id >= m.vocab_size
            || t.pad_id >= m.vocab_size;
        if bad {
            return Err(Error::PackageBadConfig);
        }
        if self.arch == Arch::Bert && m.max_positions < t.max_len {
            return Err(Error::PackageBadConfig);
        }
        Ok(())
    }
}

/// What a section holds. Per-layer kinds carry the layer index in the section record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum SectionKind {
    /// The WordPiece vocabulary (see `tokenizer::vocab`).
    Vocab = 1,
    /// Softmax table: `exp(-d / 2^score_step_log2)` in Q16 for d = 0..len, u16 [1, len].
    ExpTable = 2,
    /// Token table, i8 [vocab, hidden], symmetric per row.
    WordEmb = 10,
    /// Per-row requantization of WordEmb into the embedding-sum scale, i32 [vocab, 2] = (multiplier, shift).
    WordEmbRq = 11,
    /// Position (+ token type 0) table, i8 [positions, hidden].
    PosEmb = 12,
    /// Per-row requantization of PosEmb, i32 [positions, 2].
    PosEmbRq = 13,
    /// LayerNorm after the embeddings, i64 [4, hidden] (see [`SectionKind::Ln1`]).
    EmbLn = 14,
    /// Reasoner: LayerNorm of each input turn vector, i64 [4, hidden]; its residual head gives
    /// the input's share of the embedding sum (the matmul head is unused).
    InLn = 15,
    /// MPNet's relative positions: the bucket of each query-to-key offset, u8
    /// [1, 2·positions − 1], entry `key − query + positions − 1`. Optional (BERT has none); with it
    /// comes [`SectionKind::RelBias`].
    RelBuckets = 16,
    /// MPNet's relative position bias, added to every layer's attention scores: i32
    /// [buckets, heads] in softmax-table steps (`2^-score_step_log2` of a logit).
    RelBias = 17,
    /// Query weight, i8 [hidden, hidden] (out, in), per-output-channel symmetric.
    Wq = 20,
    /// Key weight.
    Wk = 21,
    /// Value weight.
    Wv = 22,
    /// Attention output weight.
    Wo = 23,
    /// FFN up weight, i8 [ffn, hidden].
    W1 = 24,
    /// FFN down weight, i8 [hidden, ffn].
    W2 = 25,
    /// Reasoner read-out weight, i8 [hidden, hidden].
    WOut = 26,
    /// Query bias in accumulator units, i32 [1, hidden].
    Bq = 30,
    /// Key bias.
    Bk = 31,
    /// Value bias.
    Bv = 32,
    /// Attention output bias.
    Bo = 33,
    /// FFN up bias, i32 [1, ffn].
    B1 = 34,
    /// FFN down bias, with the GELU zero-point correction folded in.
    B2 = 35,
    /// Reasoner read-out bias, i32 [1, hidden].
    BOut = 36,
    /// Per-channel requantization (multiplier, shift) of the query accumulator, i32 [hidden, 2].
    RqQ = 40,
    /// Key.
    RqK = 41,
    /// Value.
    RqV = 42,
    /// Attention output, into the residual scale.
    RqO = 43,
    /// FFN up, into the GELU input scale, i32 [ffn, 2].
    Rq1 = 44,
    /// FFN down, into the residual scale.
    Rq2 = 45,
    /// Reasoner read-out, into one common i32 unit before the int8 rescaling, i32 [hidden, 2].
    RqOut = 46,
    /// Reasoner: the refinement gate, i32 [1, 1]: `chat` refines its answer when the best two
    /// response-bank scores differ by less than this many score units (cosine × 65536).
    Gate = 47,
    /// Reasoner: the latest-turn residual and its trust ramp, i32 [1, 3] = (R, low, high): the
    /// read-out (the correction), scaled by the trust, gains the latest turn at unit length times
    /// R read-out units (β / unit) before the int8 rescaling; the trust ramps from 0 at a best
    /// prototype score of `low` to 1 at `high` (score units, cosine × 65536). Optional: a package
    /// without it predicts from the read-out alone.
    Residual = 48,
    /// Reasoner: the trust gate's prototypes, i8 [K, hidden]: distinct training turns as the
    /// encoder gives them. Optional: without it the trust is 1.
    Prototypes = 49,
    /// Reasoner: the tag ([`crate::kb::package_tag`], the trailing CRC-32) of the encoder package
    /// whose turn vectors it was calibrated on, u32 as i32 [1, 1]. Optional (and 0): unknown,
    /// any encoder of its dimension is accepted.
    EncoderTag = 55,
    /// LayerNorm after attention, i64 [4, hidden]: rows = residual-head gain, residual-head offset,
    /// matmul-head gain, matmul-head offset; `y = (n * gain + offset) >> 32`, `n` the Q16 normalized input.
    Ln1 = 50,
    /// LayerNorm after the FFN, same layout.
    Ln2 = 51,
    /// GELU as a table from int8 input (index `x + 128`) to int8 output, i8 [1, 256].
    GeluTable = 52,
    /// The 16-bit FFN's GELU, i32 [1, 257]: knots of an interpolated table from the i16 input
    /// grid to the 15-bit output grid (`fixed::gelu16`). A layer has this or
    /// [`SectionKind::GeluTable`]; with this one, FFN up requantizes into the i16 GELU input grid and
    /// FFN down's bias and requantization are those of the output's high plane (units of 128).
    GeluTable16 = 54,
    /// Per-layer scalars, i32 [1, 8]: score (mult, shift), context (mult, shift), GELU output zero point.
    LayerScalars = 53,
    /// Static model token table, i8 [vocab, dim].
    StaticEmb = 60,
    /// Per-row requantization of the static table into the pooling scale, i32 [vocab, 2].
    StaticEmbRq = 61,
    /// Static model token table at 4 bits, u8 [vocab, dim / 2]: two signed values in −7..=7 a
    /// byte, the even column in the low nibble. A static package has this or
    /// [`SectionKind::StaticEmb`].
    StaticEmb4 = 62,
    /// Knowledge bank (see `kb`), u8.
    Bank = 70,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasoner() -> Header {
        Header {
            name: heapless::String::new(),
            arch: Arch::Reasoner,
            model: ModelConfig {
                vocab_size: 0,
                hidden: 128,
                layers: 2,
                heads: 4,
                ffn: 256,
                max_positions: 8,
                pooling: Pooling::Cls,
                normalize: true,
            },
            tokenizer: TokenizerConfig::NONE,
            pool_scale: 1.0,
            score_step_log2: 5,
        }
    }

    /// A reasoner has no tokenizer to check, but its layer shapes are checked like an encoder's.
    #[test]
    fn reasoner_headers_skip_the_tokenizer_and_check_the_layers() {
        assert_eq!(reasoner().validate(), Ok(()));
        let bad = |f: fn(&mut ModelConfig)| {
            let mut h = reasoner();
            f(&mut h.model);
            h.validate()
        };
        assert_eq!(bad(|m| m.layers = 0), Err(Error::PackageBadConfig));
        assert_eq!(
            bad(|m| m.layers = MAX_LAYERS as u32 + 1),
            Err(Error::PackageBadConfig)
        );
        assert_eq!(bad(|m| m.heads = 3), Err(Error::PackageBadConfig));
        assert_eq!(bad(|m| m.max_positions = 0), Err(Error::PackageBadConfig));
        assert_eq!(bad(|m| m.ffn = 0), Err(Error::PackageBadConfig));
        // The same zero tokenizer is refused for an encoder.
        let mut h = reasoner();
        h.arch = Arch::Bert;
        assert_eq!(h.validate(), Err(Error::PackageBadConfig));
    }

    /// A third architecture appended to the enum leaves existing headers' bytes unchanged.
    #[test]
    fn arch_variants_keep_their_postcard_bytes() {
        let mut buf = [0u8; 4];
        for (a, byte) in [(Arch::Bert, 0u8), (Arch::Static, 1), (Arch::Reasoner, 2)] {
            assert_eq!(postcard::to_slice(&a, &mut buf).unwrap(), &[byte]);
        }
    }
}
