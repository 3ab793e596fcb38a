//! Finding the `pith` binary and the default checkpoint for tests that drive the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::qemu::repo_root;

/// The teacher checkpoint; panics (the test fails) when scripts/fetch-model.sh has not fetched it.
/// The default teacher's vocabulary (its vocab.txt, id = line), which the tiny random
/// checkpoints borrow.
pub fn model_vocab() -> Vec<String> {
    std::fs::read_to_string(model_dir().join("vocab.txt"))
        .expect("reading the default teacher's vocab.txt")
        .lines()
        .map(String::from)
        .collect()
}

pub fn model_dir() -> PathBuf {
    let d = pith_tools::defaults::checkpoint_dir().unwrap();
    assert!(
        d.join("model.safetensors").is_file(),
        "{} is missing: run scripts/fetch-model.sh (scripts/test.sh does)",
        d.display()
    );
    d
}

/// The release `pith` binary: `PITH_BIN`, else built (a no-op when fresh) and located through
/// cargo's JSON messages, so the path holds whatever the target directory is.
pub fn pith_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("PITH_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "pith-tools",
                "--bin",
                "pith",
                "--message-format=json",
            ])
            .current_dir(repo_root().unwrap())
            .output()
            .expect("running cargo build for the pith binary");
        assert!(
            out.status.success(),
            "cargo build of pith failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "pith")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no pith executable")
    })
}

/// Quantizes the committed checkpoint `models/<name>` with the release CLI and returns the package
/// bytes (`tag` keeps parallel calls apart); the temporary package and report are removed.
pub fn quantize_committed(name: &str, tag: &str) -> Vec<u8> {
    let out = std::env::temp_dir().join(format!("pith-{name}-{}-{tag}.pith", std::process::id()));
    let status = Command::new(pith_bin())
        .arg("quantize")
        .arg(repo_root().unwrap().join("models").join(name))
        .arg("-o")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running pith quantize");
    assert!(status.success(), "pith quantize models/{name} failed");
    let bytes = std::fs::read(&out).expect("reading the quantized package");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(out.with_extension("report.json"));
    bytes
}
