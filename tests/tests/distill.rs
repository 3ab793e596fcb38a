//! `pith distill` end to end on a tiny random teacher (seconds): the package fits its budget,
//! loads, embeds, its card and record carry the figures and the command, and a second run of the
//! same command into a fresh folder makes the same package byte for byte. Tier M's training,
//! killed mid-run, resumes with the same command and ends with the same weights as a run never
//! stopped. Bad teachers and settings are errors that name the problem.

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pith_runtime::Model;
use pith_tests::checkpoint::{mpnet_vocab, tiny_bert_checkpoint, tiny_checkpoint, Family, HIDDEN};
use pith_tests::cli::{model_vocab, pith_bin};
use pith_tests::qemu::repo_root;

const DIM: usize = 16;
const BUDGET: usize = 96 * 1024;
const STEPS: usize = 300;
const CORPUS_LINES: usize = 3000;
/// Tier M: one layer of one 16-wide head (the tiny teacher's head width), FFN 32.
const M_DIM: usize = 16;
const M_BUDGET: usize = 160 * 1024;
const M_STEPS: usize = 400;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pith-distill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The tiny teacher (the real MiniLM vocabulary, random weights) and a training corpus (the
/// first SNLI training lines), in `dir`.
fn teacher(dir: &Path) -> (PathBuf, PathBuf) {
    teacher_of(dir, Family::Bert)
}

/// [`teacher`] of another family (an MPNet's vocabulary is MiniLM's with MPNet's specials).
fn teacher_of(dir: &Path, family: Family) -> (PathBuf, PathBuf) {
    let vocab = model_vocab();
    let ck = dir.join("teacher");
    match family {
        Family::Bert => tiny_bert_checkpoint(&ck, 7, &vocab).unwrap(),
        Family::Mpnet => tiny_checkpoint(&ck, 7, &mpnet_vocab(&vocab), family).unwrap(),
    }
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

/// The `pith distill --tier s` command of `teacher` into `out`, the test's settings unless
/// `extra` names them.
fn command(teacher: &Path, corpus: &Path, out: &Path, tier: &str, extra: &[&str]) -> Command {
    let mut settings = match tier {
        "s" => vec![
            ("--dim", DIM.to_string()),
            ("--budget", BUDGET.to_string()),
            ("--steps", STEPS.to_string()),
        ],
        _ => vec![
            ("--dim", M_DIM.to_string()),
            ("--heads", "1".to_string()),
            ("--layers", "1".to_string()),
            ("--ffn", "32".to_string()),
            ("--budget", M_BUDGET.to_string()),
            ("--steps", M_STEPS.to_string()),
            ("--save-every", "40".to_string()),
        ],
    };
    settings.push(("--threads", "2".to_string()));
    settings.push(("--name", format!("tiny-{tier}")));
    settings.retain(|(k, _)| !extra.contains(k));
    let mut c = Command::new(pith_bin());
    c.arg("distill")
        .arg(teacher)
        .args(["--tier", tier, "--corpus"])
        .arg(corpus)
        .arg("-o")
        .arg(out)
        .args(settings.iter().flat_map(|(k, v)| [*k, v.as_str()]))
        .args(extra);
    c
}

/// `pith distill --tier s`, run to its end.
fn distill(teacher: &Path, corpus: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    command(teacher, corpus, out, "s", extra)
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
    check_embeds(&model, DIM);
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

    // A word list gives its words tokens of their own though no training text has them, and
    // the card says where it came from.
    let corpus_text = std::fs::read_to_string(&corpus).unwrap();
    let kept = |out: &Path| -> Vec<String> {
        let v = std::fs::read_to_string(out.join("checkpoint/vocab.txt")).unwrap();
        v.lines().map(String::from).collect()
    };
    for word in ["kangaroo", "slicing"] {
        assert!(!corpus_text.contains(word) && !kept(&a).contains(&word.to_string()));
    }
    let list = dir.join("words.tsv");
    std::fs::write(&list, "kangaroo\t2e-6\nslicing\t1e-6\n").unwrap();
    ok(distill(
        &ck,
        &corpus,
        &b,
        &["--words", list.to_str().unwrap()],
    ));
    for word in ["kangaroo", "slicing"] {
        assert!(
            kept(&b).contains(&word.to_string()),
            "{word} not in the vocabulary"
        );
    }
    let card = std::fs::read_to_string(b.join("README.md")).unwrap();
    assert!(card.contains("Word list: 2 words from"), "{card}");
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

/// Embeds two sentences with the package at `path` and checks it is a working model.
fn embeds(path: &Path, budget: usize, dim: usize) -> Vec<u8> {
    let pkg = std::fs::read(path).unwrap();
    assert!(pkg.len() <= budget, "{} bytes > {budget}", pkg.len());
    check_embeds(&Model::new(&pkg).expect("the student package loads"), dim);
    pkg
}

/// Two different sentences give two different, non-zero embeddings of `dim` values.
fn check_embeds(model: &Model<'_>, dim: usize) {
    assert_eq!(model.dim(), dim);
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let (mut x, mut y) = (vec![0i8; dim], vec![0i8; dim]);
    model
        .embed("A man is playing a guitar.", &mut arena, &mut x)
        .unwrap();
    model
        .embed("Two dogs run through a snowy field.", &mut arena, &mut y)
        .unwrap();
    assert!(x.iter().any(|&v| v != 0), "an all-zero embedding");
    assert_ne!(x, y, "two different sentences embed the same");
}

#[test]
fn tier_m_killed_mid_training_resumes_to_the_same_weights() {
    let dir = scratch("tier-m");
    let (ck, corpus) = teacher(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    let weights = |d: &Path| std::fs::read(d.join("checkpoint/model.safetensors")).unwrap();

    // Uninterrupted.
    let out = command(&ck, &corpus, &a, "m", &[]).output().unwrap();
    assert!(
        out.status.success(),
        "pith distill --tier m failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pkg = embeds(&a.join("tiny-m.pith"), M_BUDGET, M_DIM);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("record.json")).unwrap()).unwrap();
    let history = record["training"]["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["step"], M_STEPS);
    assert!(history[0]["dev_agreement"].as_f64().unwrap().is_finite());
    assert_eq!(record["recipe"]["layers"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pith's fp32 forward agrees with the trainer"),
        "{stderr}"
    );
    assert!(stderr.contains("ETA"), "no progress lines:\n{stderr}");

    // Killed (the whole process group, as a terminal's Ctrl-C reaches it) once the trainer has
    // saved step 120 of 400, then the same command again.
    let mut child = command(&ck, &corpus, &b, "m", &[])
        .process_group(0)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("saved step 120") {
            let killed = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status()
                .unwrap();
            assert!(killed.success());
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run ended before the kill:\n{seen}");
    assert!(
        !b.join("checkpoint/model.safetensors").exists(),
        "the trainer finished before the kill:\n{seen}"
    );
    let out = command(&ck, &corpus, &b, "m", &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the resumed run failed:\n{stderr}");
    assert!(
        stderr.contains("resuming from step"),
        "it started afresh:\n{stderr}"
    );
    assert!(
        weights(&b) == weights(&a),
        "the resumed run ended with other weights"
    );
    let again = std::fs::read(b.join("tiny-m.pith")).unwrap();
    assert!(again == pkg, "the resumed run made another package");

    // A damaged state (a disk that filled up, say) is named, and nothing made before is lost.
    std::fs::write(b.join("work/tier-m-state.npz"), b"PK\x03\x04 cut short").unwrap();
    let out = command(&ck, &corpus, &b, "m", &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("tier-m-state.npz: unreadable training state"),
        "{stderr}"
    );
    assert!(std::fs::read(b.join("tiny-m.pith")).unwrap() == pkg);

    // Tier M's shape is checked against the teacher before any work.
    let e = command(&ck, &corpus, &dir.join("c"), "m", &["--heads", "2"])
        .output()
        .unwrap();
    assert!(!e.status.success());
    let e = String::from_utf8_lossy(&e.stderr);
    assert!(e.contains("head width 16"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An MPNet teacher (relative position bias, positions from row 2, `<s>`/`</s>`): both tiers
/// distill, load and embed, and each student wraps its texts in the teacher's own special tokens
/// (the Tier M student is a BERT, so its folder must name them).
#[test]
fn an_mpnet_teacher_distills_to_both_tiers_with_its_special_tokens() {
    let dir = scratch("mpnet");
    let (ck, corpus) = teacher_of(&dir, Family::Mpnet);
    let (s, m) = (dir.join("s"), dir.join("m"));
    ok(distill(&ck, &corpus, &s, &[]));
    ok(command(&ck, &corpus, &m, "m", &[]).output().unwrap());
    for (out, pkg, budget, dim) in [
        (&s, "tiny-s.pith", BUDGET, DIM),
        (&m, "tiny-m.pith", M_BUDGET, M_DIM),
    ] {
        let bytes = embeds(&out.join(pkg), budget, dim);
        let model = Model::new(&bytes).unwrap();
        let vocab = std::fs::read_to_string(out.join("checkpoint/vocab.txt")).unwrap();
        let id = |tok: &str| vocab.lines().position(|l| l == tok).unwrap() as u32;
        let mut ids = vec![0u32; model.max_tokens()];
        let n = model.tokenizer().encode("a dog", &mut ids).unwrap();
        assert_eq!(
            (ids[0], ids[n - 1]),
            (id("<s>"), id("</s>")),
            "{pkg}: {:?}",
            &ids[..n]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tier M's trainer writes its backward pass by hand (numpy, no autograd): it must match central
/// differences of its own forward pass (float64, a random two-layer model with padding).
/// Runs a trainer's `--check` (its hand-written gradients against central differences).
fn gradient_check(script: &str) {
    let python = std::env::var("PITH_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(repo_root().unwrap().join("tools/train").join(script))
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("running python3 tools/train/{script} --check: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("worst relative error"), "{text}");
}

#[test]
fn tier_s_trainer_gradients_match_finite_differences() {
    // The table's and the head's gradients are written out by hand (the head's input is scaled
    // by its largest |value|, whose gradient reaches every column).
    gradient_check("static_student.py");
}

#[test]
fn tier_m_trainer_backward_matches_finite_differences() {
    gradient_check("bert_np.py");
}
