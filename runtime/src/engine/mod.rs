//! The model: a validated package plus its tokenizer, embedding text into a caller-supplied arena.

pub(crate) mod bert;
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
mod host;
mod layernorm;
pub mod profile;
mod reasoner;
pub(crate) mod sections;
mod static_model;

use crate::error::{Error, Result};
use crate::format::{Arch, DType, Header, Package, Pooling, SectionKind, MAX_LAYERS};
use crate::kernels::generic::MAX_HEAD_DIM;
use crate::tokenizer::Tokenizer;
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
use bert::LINEARS;
use bert::{Dims, Fast, Scratch};
use profile::{Observer, Residuals, Stage};
use sections::{EmbedView, LayerView};
use static_model::StaticView;

pub use reasoner::{Reasoner, TRUST_ONE};
pub use static_model::HEAD_RESIDUAL_SHIFT;

/// The network-specific sections, resolved once at load: embedding never looks a section up again,
/// so it cannot fail on the package after [`Model::new`].
#[derive(Clone)]
// One per Model, and there is no heap to box the layer list into.
#[allow(clippy::large_enum_variant)]
enum Net<'a> {
    Bert(EmbedView<'a>, heapless::Vec<LayerView<'a>, MAX_LAYERS>),
    Static(StaticView<'a>),
}

/// A validated model ready to embed text. Holds no buffers: all scratch lives in the caller's arena.
#[derive(Clone)]
pub struct Model<'a> {
    package: Package<'a>,
    tokenizer: Tokenizer<'a>,
    net: Net<'a>,
    /// The host's repacked linears, per layer (x86-64 or aarch64 with std; empty elsewhere and on
    /// x86 CPUs without AVX2). Shared by clones, so threads embedding in parallel hold one copy.
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    host: std::sync::Arc<Vec<[Option<Fast>; LINEARS]>>,
}

/// Arena words (i32) that hold `n` bytes.
fn words_for_bytes(n: usize) -> usize {
    n.div_ceil(4)
}

impl<'a> Model<'a> {
    /// Validates the package (checksum included) and every section the network needs.
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        Self::from_package(Package::new_checked(bytes)?)
    }

    /// Builds a model from an already validated package, shape-checking every section once so
    /// that [`Model::embed`] cannot fail on the package afterwards.
    pub fn from_package(package: Package<'a>) -> Result<Self> {
        let h = package.header().clone();
        let m = h.model;
        let (vocab, hidden, ffn) = (m.vocab_size as usize, m.hidden as usize, m.ffn as usize);
        // validate() guarantees heads > 0 for BERT, so the division cannot fault.
        if h.arch == Arch::Bert && hidden / m.heads as usize > MAX_HEAD_DIM {
            return Err(Error::PackageBadConfig);
        }
        if h.arch == Arch::Reasoner {
            // A reasoner reads turn vectors, not text: `Reasoner` runs it.
            return Err(Error::PackageWrongKind);
        }
        let vocab_bytes = package.tensor(SectionKind::Vocab, 0, DType::U8, 0, 0)?;
        let tokenizer = Tokenizer::new(vocab_bytes, h.tokenizer)?;
        // Every id the tokenizer can emit must index the token table.
        if tokenizer.vocab_len() != vocab {
            return Err(Error::PackageBadConfig);
        }
        let net = match h.arch {
            Arch::Bert => {
                let shape = (vocab, hidden, m.heads as usize);
                let embed = EmbedView::resolve(&package, shape, m.max_positions as usize)?;
                let mut layers = heapless::Vec::new();
                for l in 0..m.layers {
                    let view = LayerView::resolve(&package, l as u16, hidden, ffn)?;
                    // The header's validation bounds the layer count by MAX_LAYERS.
                    layers.push(view).map_err(|_| Error::PackageBadConfig)?;
                }
                Net::Bert(embed, layers)
            }
            Arch::Static => Net::Static(StaticView::resolve(&package, vocab, hidden, ffn)?),
            Arch::Reasoner => return Err(Error::PackageWrongKind),
        };
        #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
        let host = std::sync::Arc::new(match net {
            Net::Bert(_, ref layers) => host::pack(layers, hidden, ffn),
            Net::Static(_) => Vec::new(),
        });
        Ok(Model {
            package,
            tokenizer,
            net,
            #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
            host,
        })
    }

    /// The package header.
    pub fn header(&self) -> &Header {
        self.package.header()
    }

    /// The package.
    pub fn package(&self) -> &Package<'a> {
        &self.package
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer<'a> {
        &self.tokenizer
    }

    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.header().model.hidden as usize
    }

    /// Longest input in tokens (`[CLS]` and `[SEP]` included).
    pub fn max_tokens(&self) -> usize {
        self.header().tokenizer.max_len as usize
    }

    /// i32 words of arena [`Model::embed`] needs for inputs of up to `max_tokens` tokens.
    pub fn arena_words(&self, max_tokens: usize) -> usize {
        let m = &self.header().model;
        let (t, h) = (max_tokens, m.hidden as usize);
        if let Net::Static(_) = self.net {
            // ids, one i32 accumulator row and the head's activations
            return t + static_model::scratch_words(h, m.ffn as usize);
        }
        t + Scratch::words(self.dims(t)) // ids, then the layers' scratch
    }

    /// Embeds `text` into `out` (int8, length [`Model::dim`]); returns the number of tokens used.
    /// Inputs longer than the arena allows are truncated like over-long inputs.
    pub fn embed(&self, text: &str, arena: &mut [i32], out: &mut [i8]) -> Result<usize> {
        self.embed_observed(text, arena, out, &mut ())
    }

    /// [`Model::embed`], reporting the end of each stage to `obs` (a [`profile::Profile`] charges
    /// each its time).
    pub fn embed_observed(
        &self,
        text: &str,
        arena: &mut [i32],
        out: &mut [i8],
        obs: &mut impl Observer,
    ) -> Result<usize> {
        let per_token = self.arena_words(1);
        let fit = (0..=self.max_tokens())
            .rev()
            .find(|&t| self.arena_words(t) <= arena.len())
            .unwrap_or(0);
        if fit < 2 || per_token == 0 {
            return Err(Error::ArenaTooSmall);
        }
        let (ids_words, rest) = arena.split_at_mut(fit);
        let ids: &mut [u32] = bytemuck::cast_slice_mut(ids_words);
        let n = self.tokenizer.encode(text, ids)?;
        obs.stage(0, Stage::Tokenize);
        self.embed_ids_with(&ids[..n], rest, out, obs)?;
        Ok(n)
    }

    /// Embeds already tokenized ids (`[CLS] .. [SEP]`); `arena` needs `arena_words(ids.len()) - ids.len()` words.
    pub fn embed_ids(&self, ids: &[u32], arena: &mut [i32], out: &mut [i8]) -> Result<()> {
        self.embed_ids_with(ids, arena, out, &mut ())
    }

    /// [`Model::embed_ids`], calling `observe(layer, residual)` with the int32 residual stream
    /// (`[tokens, hidden]`) after each layer — for the quantizer's per-layer error report.
    pub fn embed_ids_observed<F: FnMut(usize, &[i32])>(
        &self,
        ids: &[u32],
        arena: &mut [i32],
        out: &mut [i8],
        observe: F,
    ) -> Result<()> {
        self.embed_ids_with(ids, arena, out, &mut Residuals(observe))
    }

    /// Embeds several tokenized sentences in one pass: `ids` holds them one after another
    /// (each `[CLS] .. [SEP]`), `lens` their lengths, and `out` gets their vectors one after
    /// another (`lens.len() · dim`). Every linear layer runs once over all their tokens, so its
    /// weights are read once per batch instead of once per sentence; attention and pooling stay
    /// within each sentence, so each vector is the bytes [`Model::embed_ids`] gives it alone.
    /// `arena` needs [`Model::arena_words`]`(ids.len()) - ids.len()` words.
    pub fn embed_ids_batch(
        &self,
        ids: &[u32],
        lens: &[usize],
        arena: &mut [i32],
        out: &mut [i8],
    ) -> Result<()> {
        let m = self.header().model;
        let (tn, h) = (ids.len(), m.hidden as usize);
        if out.len() != lens.len() * h {
            return Err(Error::OutputSizeMismatch);
        }
        let sum = lens.iter().try_fold(0usize, |a, &l| a.checked_add(l));
        if sum != Some(tn) || lens.iter().any(|&l| l == 0 || l > self.max_tokens()) {
            return Err(Error::PackageBadConfig);
        }
        if lens.is_empty() {
            return Ok(());
        }
        let (embed, layers) = match &self.net {
            Net::Bert(e, layers) => (e, layers),
            Net::Static(_) => {
                // Nothing to share between sentences: one at a time.
                let mut off = 0;
                for (&len, o) in lens.iter().zip(out.chunks_exact_mut(h)) {
                    self.embed_ids(&ids[off..off + len], arena, o)?;
                    off += len;
                }
                return Ok(());
            }
        };
        if ids.iter().any(|&i| i >= m.vocab_size) {
            return Err(Error::PackageBadConfig);
        }
        if arena.len() + tn < self.arena_words(tn) {
            return Err(Error::ArenaTooSmall);
        }
        let d = self.dims(tn);
        let mut s = Scratch::carve(arena, d);
        bert::embed(ids, lens, embed, d, &mut s);
        for (l, lv) in layers.iter().enumerate() {
            bert::layer(lv, self.fast(l), embed, d, lens, &mut s, (l, &mut ()));
        }
        let mut off = 0;
        for (&len, o) in lens.iter().zip(out.chunks_exact_mut(h)) {
            let xr = &s.xr[off * h..(off + len) * h];
            bert::pool(xr, len, h, m.pooling == Pooling::Cls, o);
            off += len;
        }
        Ok(())
    }

    /// [`Model::embed_ids`] reporting to `obs`.
    fn embed_ids_with(
        &self,
        ids: &[u32],
        arena: &mut [i32],
        out: &mut [i8],
        obs: &mut impl Observer,
    ) -> Result<()> {
        let m = self.header().model;
        let (tn, h) = (ids.len(), m.hidden as usize);
        if out.len() != h {
            return Err(Error::OutputSizeMismatch);
        }
        if tn == 0 || tn > self.max_tokens() || ids.iter().any(|&i| i >= m.vocab_size) {
            return Err(Error::PackageBadConfig);
        }
        if arena.len() + tn < self.arena_words(tn) {
            return Err(Error::ArenaTooSmall);
        }
        let (embed, layers) = match &self.net {
            Net::Bert(e, layers) => (e, layers),
            Net::Static(sv) => {
                static_model::embed(ids, sv, arena, out);
                obs.stage(0, Stage::Embed);
                if sv.has_head() {
                    static_model::head_up(sv, arena, out);
                    obs.stage(0, Stage::FfnUp);
                    static_model::head_down(sv, arena, out);
                    obs.stage(0, Stage::FfnDown);
                }
                return Ok(());
            }
        };
        let d = self.dims(tn);
        let mut s = Scratch::carve(arena, d);
        let segs = [tn];
        bert::embed(ids, &segs, embed, d, &mut s);
        obs.stage(0, Stage::Embed);
        for (l, lv) in layers.iter().enumerate() {
            bert::layer(lv, self.fast(l), embed, d, &segs, &mut s, (l, obs));
            obs.residual(l, s.xr);
        }
        bert::pool(s.xr, tn, h, m.pooling == Pooling::Cls, out);
        obs.stage(0, Stage::Pool);
        Ok(())
    }

    /// Multiply-accumulates per stage (indexed by `Stage as usize`) of one embedding of `tokens`
    /// tokens: the denominators of instructions (or time) per MAC. Attention counts its scores
    /// and its context; a 16-bit FFN's down projection counts its MACs once (one product over
    /// the 16-bit activations, however many passes a kernel makes). A static model counts its head (none without one).
    pub fn stage_macs(&self, tokens: usize) -> [u64; Stage::ALL.len()] {
        let mut macs = [0u64; Stage::ALL.len()];
        let m = &self.header().model;
        let Net::Bert(_, layers) = &self.net else {
            // A static model's head: one row through its two linears.
            let (h, f) = (m.hidden as u64, m.ffn as u64);
            macs[Stage::FfnUp as usize] = h * f;
            macs[Stage::FfnDown as usize] = f * h;
            return macs;
        };
        let (t, h, f) = (tokens as u64, m.hidden as u64, m.ffn as u64);
        for _ in layers {
            for s in [Stage::Q, Stage::K, Stage::V, Stage::O] {
                macs[s as usize] += t * h * h;
            }
            macs[Stage::Attention as usize] += 2 * t * t * h;
            macs[Stage::FfnUp as usize] += t * h * f;
            macs[Stage::FfnDown as usize] += t * f * h;
        }
        macs
    }

    /// The shapes of a run of `tokens` tokens through the layers.
    fn dims(&self, tokens: usize) -> Dims {
        let wide = match &self.net {
            Net::Bert(_, layers) => layers.iter().any(|l| l.gelu.wide()),
            Net::Static(_) => false,
        };
        Dims::of(&self.header().model, tokens).wide(wide)
    }

    /// Layer `l`'s repacked linears (none on the device).
    fn fast(&self, l: usize) -> &[Option<Fast>] {
        #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
        return self.host.get(l).map_or(&[], |a| &a[..]);
        #[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
        {
            let _ = l;
            &[]
        }
    }

    /// Converts an int8 embedding to a unit-length f32 vector (IEEE single ops only: deterministic).
    pub fn dequantize(q: &[i8], out: &mut [f32]) {
        let norm: i64 = q.iter().map(|&x| x as i64 * x as i64).sum();
        let norm = libm::sqrtf(norm as f32);
        for (o, &x) in out.iter_mut().zip(q) {
            *o = if norm > 0.0 { x as f32 / norm } else { 0.0 };
        }
    }
}

/// Cosine similarity of two int8 vectors, computed exactly in integers and converted once.
pub fn cosine_i8(a: &[i8], b: &[i8]) -> f32 {
    let dot: i64 = a.iter().zip(b).map(|(x, y)| *x as i64 * *y as i64).sum();
    let na: i64 = a.iter().map(|x| *x as i64 * *x as i64).sum();
    let nb: i64 = b.iter().map(|x| *x as i64 * *x as i64).sum();
    if na == 0 || nb == 0 {
        return 0.0;
    }
    (dot as f64 / libm::sqrt(na as f64 * nb as f64)) as f32
}
