//! The Tier S recipe: every training setting in one place. `pith distill` writes it to
//! `work/recipe.json` for the trainer (tools/train/static_student.py reads only that file) and
//! into the record; the model card prints it.

use serde::Serialize;

/// Default seed of the training's random choices.
pub const SEED: u64 = 1;
/// Default student width.
pub const DIM: usize = 128;
/// Default package budget: 512 KiB.
pub const BUDGET: usize = 512 * 1024;
/// Default optimizer steps of the cosine training.
pub const STEPS: usize = 10_000;

/// Settings of the static student's training.
#[derive(Clone, Debug, Serialize)]
pub struct StaticRecipe {
    /// Student width (PCA of the teacher's token vectors).
    pub dim: usize,
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
    /// Share of every batch made of single kept tokens as one-token texts, labelled with the
    /// teacher's `[CLS] token [SEP]` vector: what each word means to the teacher, in every batch.
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
}

impl StaticRecipe {
    /// The recipe with the command's overrides.
    pub fn new(o: &super::Options) -> Self {
        StaticRecipe {
            dim: o.dim,
            seed: o.seed,
            steps: o.steps,
            batch: 512,
            lr: 0.02,
            pull: 1e-3,
            group_share: 0.5,
            token_share: 0.125,
            variant_sources: 10_000,
            variants_per_text: 4,
            variant_share: 0.5,
            group_size: 4,
            group_anchors: 5_000,
            neighbour_ranks: 20,
            near_copy: 0.98,
            check_every: 500,
        }
    }
}
