//! Where pith's home is (the checkout whose models, data and scripts the tools read and write),
//! and the data paths within it.
//!
//! The home is found at run time, not fixed when the binary was built, so a copied or installed
//! `pith` works on the checkout it is run in: `PITH_HOME` if set, else the checkout that contains
//! the working directory, else an error saying how to set it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};

/// The environment variable that names pith's home.
pub const HOME_VAR: &str = "PITH_HOME";

/// Files every pith checkout has (and no other folder is likely to): the board table and the
/// models' provenance.
const MARKERS: [&str; 2] = ["boards/src/lib.rs", "models/README.md"];

fn is_home(dir: &Path) -> bool {
    MARKERS.iter().all(|m| dir.join(m).is_file())
}

fn resolve() -> std::result::Result<PathBuf, String> {
    if let Some(h) = std::env::var_os(HOME_VAR) {
        let p = PathBuf::from(h);
        return if is_home(&p) {
            Ok(p)
        } else {
            Err(format!(
                "{HOME_VAR}={} is not a pith checkout (it lacks {})",
                p.display(),
                MARKERS.join(" or ")
            ))
        };
    }
    let cwd = std::env::current_dir().map_err(|e| format!("reading the working directory: {e}"))?;
    cwd.ancestors()
        .find(|d| is_home(d))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!(
                "{} is not inside a pith checkout: run pith in a clone of the repository, or set \
             {HOME_VAR} to one (pith reads its models, data and scripts there)",
                cwd.display()
            )
        })
}

/// Pith's home, resolved once per process.
pub fn repo_root() -> Result<PathBuf> {
    static HOME: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    HOME.get_or_init(resolve)
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

/// The default teacher checkpoint, fetched by scripts/fetch-model.sh.
pub fn checkpoint_dir() -> Result<PathBuf> {
    Ok(repo_root()?.join("models/cache/all-MiniLM-L6-v2"))
}

/// The project's data folder (data/README.md says where each file comes from).
pub fn data_dir() -> Result<PathBuf> {
    Ok(repo_root()?.join("data"))
}

/// The calibration sentences.
pub fn calib_file() -> Result<PathBuf> {
    Ok(data_dir()?.join("calib/snli-dev-sentences.txt"))
}
