//! `pith quantize FILE.onnx`: an fp32 graph written by `pith export` must quantize to exactly the
//! package its checkpoint directory gives, and an ONNX file `pith export` did not write must be
//! refused with a message that points at `pith export`.
//!
//! Like onnx_export.rs, the `pith` binary is built through Cargo (`PITH_BIN` overrides it).

use pith_tests::cli::{model_dir, pith_bin};
use pith_tests::qemu::repo_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prost::Message;
use tract_onnx::pb;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pith-quantize-onnx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pith(args: &[&Path]) -> Output {
    Command::new(pith_bin())
        .args(args)
        .current_dir(repo_root().unwrap())
        .output()
        .expect("running pith")
}

/// Small counts keep the two quantizations quick; equality does not depend on them.
fn quantize(input: &Path, out: &Path) -> Output {
    let mut args: Vec<&Path> = vec![Path::new("quantize"), input, Path::new("-o"), out];
    for a in ["--eval-count", "20", "--calib-count", "50"] {
        args.push(Path::new(a));
    }
    pith(&args)
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn quantize_from_onnx_matches_directory() {
    let dir = model_dir();
    let tmp = scratch("match");
    let onnx = tmp.join("minilm.onnx");
    assert_ok(
        "pith export",
        &pith(&[Path::new("export"), &dir, Path::new("-o"), &onnx]),
    );

    let from_onnx = tmp.join("from-onnx.pith");
    let from_dir = tmp.join("from-dir.pith");
    assert_ok("pith quantize FILE.onnx", &quantize(&onnx, &from_onnx));
    assert_ok("pith quantize DIR", &quantize(&dir, &from_dir));
    let a = std::fs::read(&from_onnx).unwrap();
    let b = std::fs::read(&from_dir).unwrap();
    assert!(!a.is_empty());
    assert!(
        a == b,
        "the package quantized from the ONNX differs from the directory's ({} vs {} bytes)",
        a.len(),
        b.len()
    );

    // The report's picture is written next to the package: one SVG with the per-layer cosine and
    // the per-channel range panels.
    let svg = std::fs::read_to_string(from_dir.with_extension("report.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for panel in [
        "residual cosine per layer",
        "LayerNorm-1 output",
        "LayerNorm-2 output",
    ] {
        assert!(
            svg.contains(panel),
            "the report plot has no panel {panel:?}"
        );
    }

    // The same graph stripped of pith's metadata stands for any ONNX pith did not write.
    let mut model = pb::ModelProto::decode(std::fs::read(&onnx).unwrap().as_slice()).unwrap();
    assert!(
        model.metadata_props.iter().any(|e| e.key == "pith.config"),
        "export wrote no pith.config"
    );
    model.metadata_props.clear();
    let foreign = tmp.join("foreign.onnx");
    std::fs::write(&foreign, model.encode_to_vec()).unwrap();
    let out = quantize(&foreign, &tmp.join("foreign.pith"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "quantizing an ONNX without pith metadata succeeded"
    );
    assert!(
        err.contains("pith export"),
        "the error does not mention `pith export`:\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "pith panicked instead of reporting an error:\n{err}"
    );

    std::fs::remove_dir_all(&tmp).ok();
}
