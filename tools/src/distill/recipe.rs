//! The recipes of both tiers: every training setting in one place. `pith distill` writes the
//! chosen one to `work/recipe.json` for the trainer (tools/train/static_student.py or
//! tier_m_student.py reads only that file) and into the record; the model card prints it.

use pith_runtime::format::layout::GELU_LEN;
use serde::Serialize;

/// Default seed of the training's random choices.
pub const SEED: u64 = 1;
/// Default student width.
pub const DIM: usize = 128;
/// Default package budget of Tier S: 512 KiB.
pub const BUDGET_S: usize = 512 * 1024;
/// Default package budget of Tier M: 2 MB of flash.
pub const BUDGET_M: usize = 2_000_000;
/// Default bits a Tier S table value takes in the package: 4 (twice the vocabulary of int8 in
/// the same flash; the int4 rows cost SICK dev 0.07 on the same float table).
pub const BITS_S: u8 = 4;
/// Default hidden units of Tier S's head (a ReLU block on the pooled vector, layer 0's FFN
/// sections): raised both dev checks by about 2 (agreement) and 4 (close pairs) points over the
/// bag of tokens alone in a 3,000-step trial, for 2 x 128 x 256 multiply-accumulates.
pub const HEAD_S: usize = 256;
/// Default optimizer steps of Tier S's cosine training: with the head, 20,000 raised both dev
/// checks over 10,000 (89.45 -> 89.93, close pairs 84.15 -> 84.39); about 15 minutes on a core.
pub const STEPS_S: usize = 20_000;
/// Default optimizer steps of Tier M's distillation.
pub const STEPS_M: usize = 30_000;
/// Default layers, heads and FFN width of Tier M.
pub const LAYERS_M: usize = 4;
pub const HEADS_M: usize = 4;
pub const FFN_M: usize = 512;
/// Default interval of Tier M's saved training state, in steps.
pub const SAVE_EVERY: usize = 200;

/// How the variant groups are made (tools/train/variants.py).
pub struct VariantPlan {
    /// Training texts (4 to 20 words) that get variants.
    pub sources: usize,
    /// Variants per such text.
    pub per_text: usize,
    /// Seed of the draws.
    pub seed: u64,
}

/// Settings of the static student's training.
#[derive(Clone, Debug, Serialize)]
pub struct StaticRecipe {
    /// Student width (PCA of the teacher's token vectors).
    pub dim: usize,
    /// Bits a table value takes in the package (8 or 4).
    pub bits: u8,
    /// Hidden units of the head after pooling (0: none, the bag of tokens alone).
    pub head: usize,
    /// Seed of the batch draws.
    pub seed: u64,
    /// Adam steps on the in-batch cosine loss.
    pub steps: usize,
    /// Texts per batch.
    pub batch: usize,
    /// Adam step size relative to the table's RMS value (linear warm-up over 100 steps, then
    /// linear decay to zero).
    pub lr: f64,
    /// Weight of the squared distance to the PCA table (keeps rare tokens near their own
    /// teacher vectors).
    pub pull: f64,
    /// Share of every batch made of neighbour groups: a text with its nearest corpus neighbours
    /// by the teacher's cosine (the close pairs STS judges, which random batches rarely hold).
    pub group_share: f64,
    /// Share of every batch made of single words as one-word texts ([`StaticRecipe::words`], or
    /// the kept tokens labelled with the teacher's `[CLS] token [SEP]` vector when `words` is 0):
    /// what each word means to the teacher, in every batch.
    pub token_share: f64,
    /// Training texts (4 to 20 words) that get near-duplicate variants.
    pub variant_sources: usize,
    /// Variants per such text (the dev texts get 2, for the close-pair check).
    pub variants_per_text: usize,
    /// Share of the group slots filled with variant groups (neighbour groups fill the rest).
    pub variant_share: f64,
    /// Texts per neighbour group (the anchor included).
    pub group_size: usize,
    /// Training texts drawn as anchors of neighbour groups.
    pub group_anchors: usize,
    /// Neighbours are drawn from the anchor's nearest `neighbour_ranks` (the nearest always).
    pub neighbour_ranks: usize,
    /// Neighbours closer than this cosine are near copies and skipped.
    pub near_copy: f64,
    /// Dev-check interval in steps.
    pub check_every: usize,
    /// The most frequent words of the training texts, each labelled by the teacher as a
    /// one-word text: the one-text slots of every batch learn from them what a whole word
    /// means, the many the vocabulary splits into pieces included.
    pub words: usize,
}

impl StaticRecipe {
    /// The recipe with the command's overrides.
    pub fn new(o: &super::Options) -> Self {
        StaticRecipe {
            dim: o.dim,
            bits: o.bits.unwrap_or(BITS_S),
            head: o.head.unwrap_or(HEAD_S),
            seed: o.seed,
            steps: o.steps.unwrap_or(STEPS_S),
            batch: 512,
            lr: 0.02,
            pull: 1e-3,
            group_share: 0.5,
            token_share: 0.125,
            variant_sources: 20_000,
            variants_per_text: 6,
            variant_share: 0.5,
            group_size: 4,
            group_anchors: 5_000,
            neighbour_ranks: 20,
            near_copy: 0.98,
            check_every: 500,
            words: 20_000,
        }
    }
}

impl StaticRecipe {
    /// Package bytes of the head: an FFN block of the student's width ([`ffn_block_bytes`]).
    pub fn head_bytes(&self) -> usize {
        match self.head {
            0 => 0,
            f => ffn_block_bytes(self.dim, f),
        }
    }

    /// The variant groups this recipe trains on.
    pub fn variants(&self) -> VariantPlan {
        VariantPlan {
            sources: self.variant_sources,
            per_text: self.variants_per_text,
            seed: self.seed,
        }
    }
}

/// Settings of Tier M: a small BERT initialised from the teacher's layers and distilled.
#[derive(Clone, Debug, Serialize)]
pub struct TransformerRecipe {
    /// Width of the residual stream (PCA of the teacher's hidden states).
    pub hidden: usize,
    /// Layers, taken evenly spaced from the teacher's.
    pub layers: usize,
    /// Attention heads per layer (the teacher's head width: `hidden / heads` must equal it).
    pub heads: usize,
    /// FFN neurons per layer (the teacher's with the largest weight norms).
    pub ffn: usize,
    /// Position table rows; also the longest input in tokens.
    pub positions: usize,
    /// Texts of the first training lines whose teacher hidden states make the PCA.
    pub pca_texts: usize,
    /// Seed of every draw (each step's batch comes from a generator seeded by (seed, step)).
    pub seed: u64,
    /// AdamW steps.
    pub steps: usize,
    /// Texts per batch.
    pub batch: usize,
    /// The batch runs through the model in pieces of this many texts of similar length (less
    /// padding; the loss and its gradient are still the whole batch's).
    pub micro_batch: usize,
    /// Peak step size (linear warm-up, then linear decay to zero).
    pub lr: f64,
    /// Share of the steps spent warming up.
    pub warmup: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Weight of the squared distance to the teacher's embedding projected by the PCA.
    pub anchor: f64,
    /// Weight of the within-group cosine error, relative to the whole-matrix error.
    pub group_weight: f64,
    /// Share of every batch made of whole groups.
    pub group_share: f64,
    /// Share of the group slots filled with variant groups (neighbour groups fill the rest).
    pub variant_share: f64,
    /// Training texts (4 to 20 words) that get near-duplicate variants.
    pub variant_sources: usize,
    /// Variants per such text.
    pub variants_per_text: usize,
    /// Texts per neighbour group (the anchor included).
    pub group_size: usize,
    /// Training texts drawn as anchors of neighbour groups.
    pub group_anchors: usize,
    /// Neighbours are drawn from the anchor's nearest `neighbour_ranks`.
    pub neighbour_ranks: usize,
    /// Neighbours closer than this cosine are near copies and skipped.
    pub near_copy: f64,
    /// Dev-check interval in steps.
    pub check_every: usize,
    /// Interval of the saved training state in steps (resuming restarts from the last one).
    pub save_every: usize,
    /// Progress-line interval in steps.
    pub progress_every: usize,
}

impl TransformerRecipe {
    /// The recipe with the command's overrides.
    pub fn new(o: &super::Options) -> Self {
        TransformerRecipe {
            hidden: o.dim,
            layers: o.layers.unwrap_or(LAYERS_M),
            heads: o.heads.unwrap_or(HEADS_M),
            ffn: o.ffn.unwrap_or(FFN_M),
            positions: 128,
            pca_texts: 2_000,
            seed: o.seed,
            steps: o.steps.unwrap_or(STEPS_M),
            batch: 128,
            micro_batch: 16,
            lr: 5e-4,
            warmup: 0.02,
            weight_decay: 0.01,
            anchor: 1.0,
            group_weight: 1.0,
            group_share: 0.5,
            variant_share: 0.5,
            variant_sources: 10_000,
            variants_per_text: 6,
            group_size: 4,
            group_anchors: 20_000,
            neighbour_ranks: 20,
            near_copy: 0.98,
            check_every: 1_000,
            save_every: o.save_every.unwrap_or(SAVE_EVERY),
            progress_every: 50,
        }
    }

    /// The variant groups this recipe trains on.
    pub fn variants(&self) -> VariantPlan {
        VariantPlan {
            sources: self.variant_sources,
            per_text: self.variants_per_text,
            seed: self.seed,
        }
    }

    /// Package bytes besides the vocabulary rows, as the quantizer lays them out
    /// (tools/src/quant/lower.rs): per layer the four attention linears (int8 weights, per output
    /// channel an i32 bias and an (i32, i32) requantization), two LayerNorms of `4 × hidden` i64,
    /// the layer's scalars and the FFN block ([`ffn_block_bytes`]); the position table with its
    /// requantization, the embedding LayerNorm, the softmax table. Slightly high on purpose: the
    /// finished package is measured against the budget again.
    pub fn fixed_bytes(&self) -> usize {
        let (h, f) = (self.hidden, self.ffn);
        let attention = 4 * h * h + 4 * h * 12;
        let per_layer = attention + 2 * 32 * h + 64 + 13 * SECTION_BYTES + ffn_block_bytes(h, f);
        let embeddings = self.positions * (h + 8) + 32 * h + 1024 + 8 * SECTION_BYTES;
        self.layers * per_layer + embeddings + 4096
    }
}

/// Estimated package bytes of a section's record and alignment.
const SECTION_BYTES: usize = 40;

/// Package bytes of an FFN block of width `hidden` and `ffn` units, as the quantizer writes both
/// an encoder layer's and a static model's head: the two int8 weight matrices, per output
/// channel an i32 bias and an (i32, i32) requantization, the activation table, and its seven
/// sections' records.
fn ffn_block_bytes(hidden: usize, ffn: usize) -> usize {
    2 * hidden * ffn + (ffn + hidden) * 12 + GELU_LEN + 7 * SECTION_BYTES
}
