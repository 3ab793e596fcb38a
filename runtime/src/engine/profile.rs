//! Where an embedding's time goes: the encoder reports the end of each stage to an [`Observer`],
//! and [`Profile`] charges the clock's advance since the previous report to that stage.
//!
//! The observer is a generic parameter, so the plain [`Model::embed`](super::Model::embed) (whose
//! observer does nothing) compiles to the same code as before: profiling costs nothing unless it
//! is asked for, and then one clock read per stage.

/// A stage of one embedding. The per-layer stages are summed over the layers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Stage {
    /// Text to WordPiece ids.
    Tokenize,
    /// Word and position embedding lookup and the embedding LayerNorm.
    Embed,
    /// Query projection.
    Q,
    /// Key projection.
    K,
    /// Value projection.
    V,
    /// Scores, softmax table and context, every head.
    Attention,
    /// Output projection, added into the residual.
    O,
    /// The LayerNorm after attention.
    Ln1,
    /// FFN up with GELU: the table lookup is the epilogue of FFN up's kernel, so it has no
    /// separate time.
    FfnUp,
    /// FFN down, added into the residual (for the 16-bit FFN, over both planes of its
    /// activations).
    FfnDown,
    /// The LayerNorm after the FFN.
    Ln2,
    /// Pooling into the int8 sentence vector.
    Pool,
}

impl Stage {
    /// Every stage, in the order an embedding runs them.
    pub const ALL: [Stage; 12] = [
        Stage::Tokenize,
        Stage::Embed,
        Stage::Q,
        Stage::K,
        Stage::V,
        Stage::Attention,
        Stage::O,
        Stage::Ln1,
        Stage::FfnUp,
        Stage::FfnDown,
        Stage::Ln2,
        Stage::Pool,
    ];

    /// A short lowercase name (one word: the console prints it as a key).
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Tokenize => "tokenize",
            Stage::Embed => "embed",
            Stage::Q => "q",
            Stage::K => "k",
            Stage::V => "v",
            Stage::Attention => "attention",
            Stage::O => "o",
            Stage::Ln1 => "ln1",
            Stage::FfnUp => "ffn_up_gelu",
            Stage::FfnDown => "ffn_down",
            Stage::Ln2 => "ln2",
            Stage::Pool => "pool",
        }
    }

    /// Whether the stage is one of the linear layers (the GEMMs the kernels run).
    pub const fn is_linear(self) -> bool {
        matches!(
            self,
            Stage::Q | Stage::K | Stage::V | Stage::O | Stage::FfnUp | Stage::FfnDown
        )
    }
}

/// What an embedding reports as it runs. Both methods do nothing unless overridden.
pub trait Observer {
    /// `stage` of `layer` (0 outside the layers) has just finished.
    #[inline(always)]
    fn stage(&mut self, layer: usize, stage: Stage) {
        let _ = (layer, stage);
    }

    /// The int32 residual stream (`[tokens, hidden]`) after `layer`.
    #[inline(always)]
    fn residual(&mut self, layer: usize, xr: &[i32]) {
        let _ = (layer, xr);
    }
}

/// The observer that does nothing.
impl Observer for () {}

/// Time (or instructions) per stage on any monotonic clock, summed over the layers and over
/// every embedding run with it. Start it right before the embedding: the first stage is charged
/// from [`Profile::new`] (or [`Profile::restart`]).
pub struct Profile<C: FnMut() -> u64> {
    clock: C,
    last: u64,
    /// Clock units per stage, indexed by `Stage as usize`.
    pub totals: [u64; Stage::ALL.len()],
}

impl<C: FnMut() -> u64> Profile<C> {
    /// A profile on `clock`, started now.
    pub fn new(mut clock: C) -> Self {
        let last = clock();
        Profile {
            clock,
            last,
            totals: [0; Stage::ALL.len()],
        }
    }

    /// Starts the next interval now (time between embeddings is charged to nothing).
    pub fn restart(&mut self) {
        self.last = (self.clock)();
    }

    /// The sum over every stage.
    pub fn total(&self) -> u64 {
        self.totals.iter().sum()
    }
}

impl<C: FnMut() -> u64> Observer for Profile<C> {
    fn stage(&mut self, _layer: usize, stage: Stage) {
        let now = (self.clock)();
        self.totals[stage as usize] += now.saturating_sub(self.last);
        self.last = now;
    }
}

/// Adapts a closure on the residual stream (the quantizer's per-layer report) to an [`Observer`].
pub struct Residuals<F: FnMut(usize, &[i32])>(pub F);

impl<F: FnMut(usize, &[i32])> Observer for Residuals<F> {
    fn residual(&mut self, layer: usize, xr: &[i32]) {
        (self.0)(layer, xr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_interval_is_charged_to_the_stage_that_ends_it() {
        let mut now = 0u64;
        let mut ticks = [5u64, 7, 20, 21, 40].into_iter();
        let mut p = Profile::new(move || {
            now = ticks.next().unwrap_or(now);
            now
        });
        p.stage(0, Stage::Tokenize); // 5 -> 7
        p.stage(0, Stage::Q); // 7 -> 20
        p.stage(1, Stage::Q); // 20 -> 21
        p.stage(1, Stage::Pool); // 21 -> 40
        assert_eq!(p.totals[Stage::Tokenize as usize], 2);
        assert_eq!(p.totals[Stage::Q as usize], 14);
        assert_eq!(p.totals[Stage::Pool as usize], 19);
        assert_eq!(p.total(), 35);
    }

    #[test]
    fn names_are_distinct_single_words() {
        for (i, a) in Stage::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            assert!(!a.name().contains(' '));
            for b in &Stage::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
