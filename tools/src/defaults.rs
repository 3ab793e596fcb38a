//! Where the default model, package and data live (relative to the repository root).

use std::path::PathBuf;

/// The repository root (the tools crate's parent), so `cargo run` works from any directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The default teacher checkpoint, fetched by scripts/fetch-model.sh.
pub fn checkpoint_dir() -> PathBuf {
    repo_root().join("models/cache/all-MiniLM-L6-v2")
}

/// The default package, relative to the repository root.
pub const PACKAGE: &str = "models/minilm-l6.pith";

/// The project's data folder (data/README.md says where each file comes from).
pub fn data_dir() -> PathBuf {
    repo_root().join("data")
}

/// The calibration sentences.
pub fn calib_file() -> PathBuf {
    data_dir().join("calib/snli-dev-sentences.txt")
}
