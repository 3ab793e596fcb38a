//! `pith distill --tier s` end to end on a tiny random teacher (seconds): the package fits its
//! budget, loads, embeds, its card and record carry the figures and the command, and a second
//! run of the same command into a fresh folder makes the same package byte for byte. Bad
//! teachers and settings are errors that name the problem.

use std::path::{Path, PathBuf};
use std::process::Command;

use pith_runtime::Model;
use pith_tests::checkpoint::{tiny_bert_checkpoint, HIDDEN};
use pith_tests::cli::{model_dir, pith_bin};
use pith_tests::qemu::repo_root;

const DIM: usize = 16;
const BUDGET: usize = 96 * 1024;
const STEPS: usize = 300;
const CORPUS_LINES: usize = 3000;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pith-distill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The tiny teacher (the real MiniLM vocabulary, random weights) and a training corpus (the
/// first SNLI training lines), in `dir`.
fn teacher(dir: &Path) -> (PathBuf, PathBuf) {
    let vocab: Vec<String> = std::fs::read_to_string(model_dir().join("vocab.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let ck = dir.join("teacher");
    tiny_bert_checkpoint(&ck, 7, &vocab).unwrap();
    let snli = std::fs::read_to_string(
        repo_root()
            .unwrap()
            .join("data/calib/snli-dev-sentences.txt"),
    )
    .unwrap();
    let corpus = dir.join("corpus.txt");
    let lines: Vec<&str> = snli.lines().take(CORPUS_LINES).collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    (ck, corpus)
}

/// `pith distill` of `teacher` into `out`, the test's settings unless `extra` names them.
fn distill(teacher: &Path, corpus: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut settings = vec![
        ("--dim", DIM.to_string()),
        ("--budget", BUDGET.to_string()),
        ("--steps", STEPS.to_string()),
        ("--threads", "2".to_string()),
        ("--name", "tiny-s".to_string()),
    ];
    settings.retain(|(k, _)| !extra.contains(k));
    Command::new(pith_bin())
        .arg("distill")
        .arg(teacher)
        .args(["--tier", "s", "--corpus"])
        .arg(corpus)
        .arg("-o")
        .arg(out)
        .args(settings.iter().flat_map(|(k, v)| [*k, v.as_str()]))
        .args(extra)
        .output()
        .expect("running pith distill")
}

fn ok(out: std::process::Output) {
    assert!(
        out.status.success(),
        "pith distill failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tier_s_of_a_tiny_random_teacher_loads_embeds_and_redistills_byte_for_byte() {
    let dir = scratch("tier-s");
    let (ck, corpus) = teacher(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    ok(distill(&ck, &corpus, &a, &[]));

    let pkg = std::fs::read(a.join("tiny-s.pith")).unwrap();
    assert!(pkg.len() <= BUDGET, "{} bytes > {BUDGET}", pkg.len());
    let model = Model::new(&pkg).expect("the student package loads");
    assert_eq!(model.dim(), DIM);
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let (mut x, mut y) = (vec![0i8; DIM], vec![0i8; DIM]);
    model
        .embed("A man is playing a guitar.", &mut arena, &mut x)
        .unwrap();
    model
        .embed("Two dogs run through a snowy field.", &mut arena, &mut y)
        .unwrap();
    assert!(x.iter().any(|&v| v != 0), "an all-zero embedding");
    assert_ne!(x, y, "two different sentences embed the same");
    // The bank for the device opens with this package.
    let bank = std::fs::read(a.join("tiny-s.pithkb")).unwrap();
    pith_runtime::kb::Bank::for_model(&bank, &model).expect("the student's bank opens");

    // The record: figures for both models, the teacher's width, the command.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("record.json")).unwrap()).unwrap();
    for who in ["student", "teacher"] {
        for k in ["sick_dev", "faq_top1", "faq_mrr"] {
            let v = record["figures"][who][k].as_f64();
            assert!(
                v.is_some_and(|v| v.is_finite() && (-100.0..=100.0).contains(&v)),
                "{who} {k}: {v:?}"
            );
        }
    }
    assert_eq!(record["teacher"]["hidden"], HIDDEN);
    assert_eq!(record["package_bytes"], pkg.len());
    let history = record["training"]["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["step"], STEPS);
    let card = std::fs::read_to_string(a.join("README.md")).unwrap();
    assert!(
        card.contains("pith distill") && card.contains("SICK dev"),
        "{card}"
    );
    assert!(card.contains(&format!(
        "{:.2}",
        record["figures"]["student"]["sick_dev"].as_f64().unwrap()
    )));

    // The same command into a fresh folder: nothing cached, the same bytes.
    ok(distill(&ck, &corpus, &b, &[]));
    let again = std::fs::read(b.join("tiny-s.pith")).unwrap();
    assert!(
        again == pkg,
        "a second run with the same seed made another package"
    );
    // Another seed trains another table (the seed reaches the training).
    ok(distill(&ck, &corpus, &b, &["--seed", "2"]));
    let other = std::fs::read(b.join("tiny-s.pith")).unwrap();
    assert!(other != pkg, "--seed 2 made the same package as seed 1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn distill_refuses_bad_teachers_and_settings_with_the_reason() {
    let dir = scratch("refuse");
    let (ck, corpus) = teacher(&dir);
    let out = dir.join("out");
    let err = |o: std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    // Wider than the teacher.
    let e = err(distill(&ck, &corpus, &out, &["--dim", "64"]));
    assert!(e.contains("wider than the teacher"), "{e}");
    // A budget the character tokens alone exceed.
    let e = err(distill(&ck, &corpus, &out, &["--budget", "8000"]));
    assert!(e.contains("byte budget"), "{e}");
    // An output folder holding other files (the teacher's own, say) is refused untouched.
    let e = err(distill(&ck, &corpus, &dir, &[]));
    assert!(e.contains("holds other files"), "{e}");
    let e = err(distill(&ck, &corpus, &ck.join("student"), &[]));
    assert!(e.contains("inside the input"), "{e}");
    // A teacher whose config.json is not JSON: the file is named.
    std::fs::write(ck.join("config.json"), "{not json").unwrap();
    let e = err(distill(&ck, &corpus, &out, &[]));
    assert!(e.contains("config.json"), "{e}");
    assert!(
        !out.join("tiny-s.pith").exists(),
        "a package from a failed run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
