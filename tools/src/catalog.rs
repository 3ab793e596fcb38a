//! Every shipped artifact, by its path relative to the repository root: the packages (the board
//! table's list, `pith_boards::packages`), the default model's ONNX exports, the reasoners with
//! what each is built from, the banks, and the data their recipes read. Facts only: building them
//! is `crate::artifacts`.

use std::path::Path;

pub use pith_boards::packages::{
    MINILM, MINILM_12K, REASONER_L6, REASONER_M, REASONER_S, TIER_M, TIER_S,
};

/// The default model's package (all-MiniLM-L6-v2 int8).
pub const PACKAGE: &str = MINILM;
/// The default model's fp32 ONNX export.
pub const FP32_ONNX: &str = "models/minilm-l6.fp32.onnx";
/// The default model's QDQ int8 ONNX export (the same quantization as the package).
pub const INT8_ONNX: &str = "models/minilm-l6.int8.onnx";
/// Tier S's checkpoint (static embeddings).
pub const TIER_S_CHECKPOINT: &str = "models/tier-s";
/// The chit-chat training conversations: the reasoners' calibration and response banks.
pub const CHITCHAT_TRAIN: &str = "data/chitchat/train.jsonl";

/// A shipped reasoner: the checkpoint its integer package is quantized from, the encoder whose
/// turn vectors it reads, and what its recipe writes. [`REASONERS`] is the one list of them.
#[derive(Debug, PartialEq, Eq)]
pub struct ReasonerArtifacts {
    /// Checkpoint directory (reasoner.json, model.safetensors, gate.json).
    pub checkpoint: &'static str,
    /// The integer package, calibrated on the chit-chat training split.
    pub package: &'static str,
    /// Its QDQ ONNX graph, written by the same recipe (`--backend tract-int8`).
    pub qdq: &'static str,
    /// The encoder package it was trained on.
    pub encoder: &'static str,
    /// The response bank `chat` answers from: training turns embedded by that encoder.
    pub bank: &'static str,
}

/// Every shipped reasoner; the first is the default of `pith chat` and `pith eval chat`.
pub const REASONERS: [ReasonerArtifacts; 3] = [
    // Over the teacher's vectors (384 dims): the host and M55-class boards with external RAM.
    ReasonerArtifacts {
        checkpoint: "models/reasoner-l6",
        package: REASONER_L6,
        qdq: "models/reasoner-l6.int8.onnx",
        encoder: MINILM,
        bank: "models/reasoner-l6.pithkb",
    },
    // Over Tier M's vectors: 4 MB parts.
    ReasonerArtifacts {
        checkpoint: "models/reasoner-m",
        package: REASONER_M,
        qdq: "models/reasoner-m.int8.onnx",
        encoder: TIER_M,
        bank: "models/reasoner-m.pithkb",
    },
    // Over Tier S's vectors: 1–2 MB parts.
    ReasonerArtifacts {
        checkpoint: "models/reasoner-s",
        package: REASONER_S,
        qdq: "models/reasoner-s.int8.onnx",
        encoder: TIER_S,
        bank: "models/reasoner-s.pithkb",
    },
];

/// Sentences in a response bank.
pub const CHAT_BANK_SENTENCES: usize = 4000;

/// The shipped reasoner whose package is `rel`.
pub fn reasoner_with_package(rel: &str) -> Option<&'static ReasonerArtifacts> {
    REASONERS.iter().find(|r| r.package == rel)
}

/// The shipped reasoner whose checkpoint is `dir`, relative to `root` or absolute.
pub fn reasoner_with_checkpoint(dir: &Path, root: &Path) -> Option<&'static ReasonerArtifacts> {
    REASONERS
        .iter()
        .find(|r| dir == Path::new(r.checkpoint) || dir == root.join(r.checkpoint))
}

/// The knowledge bank of the package at `package`: beside it, `.pithkb` (one bank per model).
pub fn bank_of(package: &Path) -> std::path::PathBuf {
    package.with_extension("pithkb")
}
