//! Replays the committed fuzz corpus (fuzz/corpus/<target>/) on stable in every `cargo test`,
//! through the same checks the fuzz targets run (fuzz/checks.rs): each input must be refused or
//! handled, never panic. Inputs that once crashed a target are added to its corpus folder with a
//! name saying what they broke (none so far; see fuzz/README.md).

use std::path::PathBuf;

#[path = "../../fuzz/checks.rs"]
mod checks;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn package_corpus() {
    for (_, data) in corpus("package") {
        checks::package(&data);
    }
}

#[test]
fn bank_corpus() {
    for (_, data) in corpus("bank") {
        checks::bank(&data);
    }
}

#[test]
fn tokenizer_corpus() {
    for (_, data) in corpus("tokenizer") {
        checks::tokenizer(&data);
    }
}

#[test]
fn console_corpus() {
    for (_, data) in corpus("console") {
        checks::console(&data);
    }
}

#[test]
fn frame_corpus() {
    for (name, data) in corpus("frame") {
        let request = checks::frame(&data);
        assert!(!name.contains("seed-request") || request, "{name}");
    }
}

#[test]
fn checkpoint_corpus() {
    for (name, data) in corpus("checkpoint") {
        let loaded = checks::checkpoint(&data);
        // The seed must load, or the fuzzer would start from a refusal.
        assert!(!name.contains("seed-") || loaded, "{name} does not load");
    }
}
