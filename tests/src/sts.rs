//! SICK dev (data/sts) for the model-quality tests, read by the tools' STS reader; Spearman is the
//! tools' (`pith_tools::stats`), the one `pith eval sts` reports.

pub use pith_tools::stats::spearman;

use crate::qemu::repo_root;

/// The SICK dev pairs: (gold score, sentence a, sentence b).
pub fn sick_dev() -> Vec<(f64, String, String)> {
    let path = repo_root().unwrap().join("data/sts/sick-dev.tsv");
    let pairs = pith_tools::pairs::read_pairs(&path)
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    assert_eq!(
        pairs.len(),
        4934,
        "{} is not the SICK dev set",
        path.display()
    );
    pairs
}
