//! `pith export` end to end: the fp32 ONNX graph must load and run in tract and onnxruntime and
//! match the independent numpy BERT and MPNet (tests/reference/bert_ref.py), padded or not; and
//! tract's loading path must turn bad ONNX files into errors, not panics.
//!
//! The `pith` binary belongs to another package, so Cargo does not build it for this one: the
//! tests ask Cargo for it (`cargo build --release -p pith-tools --bin pith`, a no-op when fresh)
//! and take the executable path from Cargo's JSON messages; `PITH_BIN` overrides that.
//! The QDQ export is tested inside pith-tools (tools/src/onnx/tests.rs), where a QModel can be
//! built and handed to `export_qdq`.

use pith_tests::checkpoint::{mpnet_vocab, tiny_checkpoint, Family};
use pith_tests::cli::{model_dir, model_vocab, pith_bin};
use pith_tests::qemu::repo_root;
use pith_tools::tract::TractModel;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use tract_onnx::pb;

const EVAL_LINES: usize = 300;
const MIN_COSINE: f64 = 0.99999;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pith-onnx-it-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const FALLBACK_SENTENCES: &[&str] = &[
    "A man is playing a guitar on stage.",
    "Two dogs run through a snowy field.",
    "The children are eating lunch outside.",
    "A woman slices tomatoes in the kitchen.",
    "Nobody is swimming in the pool.",
    "An old man reads a newspaper on a bench.",
    "The cat sleeps.",
    "People wait for the train at a crowded station while it rains heavily.",
    "Unbelievably, the préfecture's café served crème brûlée at 3:00 a.m.!",
];

/// The first `n` SNLI dev sentences when the shared data set is present, a few fixed ones otherwise.
fn sentences(n: usize) -> Vec<String> {
    let p = repo_root()
        .unwrap()
        .join("data/calib/snli-dev-sentences.txt");
    match std::fs::read_to_string(&p) {
        Ok(t) => t
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(n)
            .map(String::from)
            .collect(),
        Err(_) => FALLBACK_SENTENCES.iter().map(|s| s.to_string()).collect(),
    }
}

fn python(args: &[&str]) -> String {
    let py = std::env::var("PITH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&py)
        .args(args)
        .current_dir(repo_root().unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!("{py} must be installed with numpy, tokenizers, safetensors, onnxruntime: {e}")
        });
    assert!(
        out.status.success(),
        "{py} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn export(checkpoint: &Path, out: &Path) {
    let status = Command::new(pith_bin())
        .arg("export")
        .arg(checkpoint)
        .arg("-o")
        .arg(out)
        .status()
        .expect("running pith export");
    assert!(
        status.success(),
        "pith export {} failed",
        checkpoint.display()
    );
}

/// Token ids and numpy reference embeddings of `sents`.
fn reference(
    checkpoint: &Path,
    sents: &[String],
    dir: &Path,
) -> (PathBuf, Vec<Vec<i64>>, Vec<Vec<f32>>) {
    let txt = dir.join("sentences.txt");
    std::fs::write(&txt, sents.join("\n")).unwrap();
    let json = dir.join("ref.json");
    python(&[
        "tests/reference/bert_ref.py",
        checkpoint.to_str().unwrap(),
        "--sentences",
        txt.to_str().unwrap(),
        "--out",
        json.to_str().unwrap(),
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let ids = serde_json::from_value(doc["ids"].clone()).unwrap();
    let embs = serde_json::from_value(doc["embeddings"].clone()).unwrap();
    (json, ids, embs)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// (mean, min) cosine between paired rows.
fn stats(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let c: Vec<f64> = a.iter().zip(b).map(|(x, y)| cosine(x, y)).collect();
    (
        c.iter().sum::<f64>() / c.len() as f64,
        c.iter().copied().fold(f64::MAX, f64::min),
    )
}

/// Exports `checkpoint`, then checks tract (unpadded and padded) and onnxruntime against numpy.
fn check_checkpoint(checkpoint: &Path, n: usize, dir: &Path, expect_unit_norm: bool) {
    let onnx = dir.join("model.onnx");
    export(checkpoint, &onnx);
    let (ref_json, ids, reference) = reference(checkpoint, &sentences(n), dir);

    let plan = TractModel::load_batched(&onnx).expect("tract loads the fp32 export");
    for batch in [1, 8] {
        let got = plan.embed_batches(&ids, batch).expect("tract embeds");
        let (mean, min) = stats(&got, &reference);
        eprintln!(
            "{}: tract batch {batch} vs numpy: n {} 1-mean {:.1e} 1-min {:.1e}",
            checkpoint.display(),
            ids.len(),
            1.0 - mean,
            1.0 - min
        );
        assert!(
            min >= MIN_COSINE,
            "tract batch {batch}: min cosine {min} < {MIN_COSINE}"
        );
        if batch == 1 {
            for e in &got {
                let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert_eq!(
                    (norm - 1.0).abs() < 1e-4,
                    expect_unit_norm,
                    "embedding norm {norm}"
                );
            }
        }
    }

    let report = python(&[
        "tests/reference/check_onnx.py",
        onnx.to_str().unwrap(),
        "--ref-json",
        ref_json.to_str().unwrap(),
        "--batches",
        "1,8",
    ]);
    eprintln!(
        "{}: onnxruntime vs numpy: {}",
        checkpoint.display(),
        report.trim()
    );
    let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    let min = report["min"].as_f64().unwrap();
    assert!(
        min >= MIN_COSINE,
        "onnxruntime: min cosine {min} < {MIN_COSINE}"
    );
}

#[test]
fn fp32_export_matches_numpy_in_tract_and_onnxruntime() {
    let model = model_dir();
    let dir = scratch("fp32");
    check_checkpoint(&model, EVAL_LINES, &dir, true);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tiny random MPNet (its relative position bias at ±2 logits, positions from row 2, `<s>` and
/// `</s>` around the words): the export against the numpy reference's own MPNet, whose tokens
/// come from Hugging Face's WordPiece tokenizer with the checkpoint's special tokens; and the
/// quantized package's tokenizer gives Hugging Face's ids.
#[test]
fn mpnet_export_matches_numpy_in_tract_and_onnxruntime() {
    let dir = scratch("mpnet");
    let ck = dir.join("tiny-mpnet");
    tiny_checkpoint(&ck, 11, &mpnet_vocab(&model_vocab()), Family::Mpnet).unwrap();
    check_checkpoint(&ck, 120, &dir, true);

    let package = dir.join("tiny-mpnet.pith");
    let status = Command::new(pith_bin())
        .args([
            "quantize",
            "--calib-count",
            "60",
            "--eval-count",
            "20",
            "-o",
        ])
        .arg(&package)
        .arg(&ck)
        .status()
        .expect("running pith quantize");
    assert!(status.success(), "pith quantize of the tiny MPNet failed");
    let bytes = std::fs::read(&package).unwrap();
    let model = pith_runtime::Model::new(&bytes).expect("the MPNet package loads");
    let (_, want, _) = reference(&ck, &sentences(120), &dir);
    let mut buf = vec![0u32; model.max_tokens()];
    for (s, want) in sentences(120).iter().zip(&want) {
        let n = model.tokenizer().encode(s, &mut buf).unwrap();
        let got: Vec<i64> = buf[..n].iter().map(|&i| i as i64).collect();
        assert_eq!(&got, want, "{s}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same weights dressed as a CLS-pooled, unnormalized checkpoint: exercises the other
/// pooling branch and the no-Normalize output against the numpy reference's own reading of the
/// same config files.
#[test]
fn cls_pooling_without_normalize_matches_numpy() {
    let model = model_dir();
    let dir = scratch("cls");
    let ck = dir.join("cls-checkpoint");
    std::fs::create_dir_all(ck.join("1_Pooling")).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "sentence_bert_config.json",
    ] {
        let src = model.join(f);
        if src.exists() {
            std::os::unix::fs::symlink(&src, ck.join(f)).unwrap();
        }
    }
    std::fs::write(ck.join("1_Pooling/config.json"), r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#).unwrap();
    std::fs::write(ck.join("modules.json"), r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#).unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    check_checkpoint(&ck, 40, &out, false);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Loads `path` with pith's tract fallback (the `tract-fp32`/`tract-int8` backends' loader),
/// turning a panic into a test failure that says so, and returns the error text.
fn load_error(path: &Path) -> String {
    let res = catch_unwind(AssertUnwindSafe(|| TractModel::load(path).map(|_| ())));
    match res {
        Err(_) => panic!("the tract fallback panicked on {}", path.display()),
        Ok(Ok(())) => panic!("the tract fallback accepted {}", path.display()),
        Ok(Err(e)) => format!("{e:?}"),
    }
}

#[test]
fn malformed_onnx_is_an_error_not_a_panic() {
    let dir = scratch("malformed");
    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf \xff\xfe\x00\x01 at all").unwrap();
    let empty = dir.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.join("missing.onnx");
    for p in [&garbage, &empty, &missing] {
        let e = load_error(p);
        eprintln!("{}: {}", p.display(), e.lines().next().unwrap_or(""));
    }

    // A valid model cut short: a truncated download.
    let good = tiny_model("Relu").encode_to_vec();
    let cut = dir.join("truncated.onnx");
    std::fs::write(&cut, &good[..good.len() * 2 / 3]).unwrap();
    let e = load_error(&cut);
    eprintln!("truncated: {}", e.lines().next().unwrap_or(""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_operator_is_an_error_naming_it() {
    let dir = scratch("unknown-op");
    // The same graph with a known op loads, so the failure below is the operator's doing.
    let ok = dir.join("relu.onnx");
    std::fs::write(&ok, tiny_model("Relu").encode_to_vec()).unwrap();
    TractModel::load(&ok).expect("pith's tract fallback loads the one-Relu model");
    let bad = dir.join("unknown.onnx");
    std::fs::write(&bad, tiny_model("PithNoSuchOp").encode_to_vec()).unwrap();
    let e = load_error(&bad);
    eprintln!("unknown op: {}", e.lines().next().unwrap_or(""));
    assert!(
        e.contains("PithNoSuchOp"),
        "error does not name the operator: {e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// input_ids, attention_mask -> one `op_type` node on the cast ids -> sentence_embedding.
fn tiny_model(op_type: &str) -> pb::ModelProto {
    use pb::tensor_proto::DataType;
    let vi = |name: &str, elem: DataType| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: ["batch", "sequence"]
                        .iter()
                        .map(|d| pb::tensor_shape_proto::Dimension {
                            denotation: String::new(),
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimParam(
                                d.to_string(),
                            )),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: String::new(),
    };
    let node =
        |op: &str, input: &str, output: &str, attrs: Vec<pb::AttributeProto>| pb::NodeProto {
            input: vec![input.into()],
            output: vec![output.into()],
            name: output.into(),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        };
    let to_float = pb::AttributeProto {
        name: "to".into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: DataType::Float as i64,
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(pb::GraphProto {
            name: "tiny".into(),
            node: vec![
                node("Cast", "input_ids", "ids_f", vec![to_float]),
                node(op_type, "ids_f", "sentence_embedding", vec![]),
            ],
            input: vec![
                vi("input_ids", DataType::Int64),
                vi("attention_mask", DataType::Int64),
            ],
            output: vec![vi("sentence_embedding", DataType::Float)],
            ..Default::default()
        }),
        ..Default::default()
    }
}
