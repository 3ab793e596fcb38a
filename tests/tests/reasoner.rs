//! The reasoner through the CLI, on the committed checkpoint (models/reasoner-s), the Tier S
//! encoder and the chit-chat split that scripts/fetch-chitchat.sh writes (run by scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use pith_tests::qemu::repo_root;
use serde_json::Value;

fn run(args: &[&str]) -> String {
    let out = Command::new(pith_tests::cli::pith_bin())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("running pith");
    assert!(
        out.status.success(),
        "pith {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn chitchat(part: &str) -> PathBuf {
    let p = repo_root()
        .join("data/chitchat")
        .join(format!("{part}.jsonl"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-chitchat.sh (scripts/setup.sh does)",
        p.display()
    );
    p
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pith-reasoner-{}-{name}", std::process::id()))
}

/// The first `n` lines of a JSONL file, as a new file.
fn head(src: &Path, n: usize, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(src).unwrap();
    let out = temp(name);
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    out
}

fn pct(v: &Value) -> f64 {
    let x = v.as_f64().unwrap();
    assert!((0.0..=100.0).contains(&x), "{x}");
    x
}

/// Any `{"turns": [...]}` file works, two-turn question → answer pairs included: here the
/// StackFAQ entries as (question, answer), with fewer than 100 turns in the whole file.
#[test]
fn eval_chat_runs_on_question_answer_pairs() {
    let faq = std::fs::read_to_string(repo_root().join("data/faq/stackfaq-bank.jsonl")).unwrap();
    let convs: Vec<String> = faq
        .lines()
        .take(30)
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            serde_json::json!({ "turns": [v["question"], v["answer"]] }).to_string()
        })
        .collect();
    let file = temp("qa.jsonl");
    std::fs::write(&file, convs.join("\n")).unwrap();
    let train = head(&chitchat("train"), 200, "train200.jsonl");
    let out = run(&[
        "eval",
        "chat",
        "--conversations",
        file.to_str().unwrap(),
        "--train",
        train.to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["n"], 30);
    assert_eq!(
        v["candidates"], 60,
        "all 60 turns of the file are candidates"
    );
    for k in ["top1", "mrr"] {
        pct(&v["reasoner"][k]);
        for b in ["last_turn", "mean_context", "linear_map"] {
            pct(&v["baselines"][b][k]);
        }
    }
    std::fs::remove_file(file).ok();
    std::fs::remove_file(train).ok();
}

/// Held-out conversations of unseen prompts (the first 100 of test-unseen): the reasoner beats
/// every baseline by at least 3 points of top-1 (models/reasoner-s.md has the full-split figures).
#[test]
fn reasoner_beats_the_baselines_on_unseen_prompts() {
    let file = head(&chitchat("test-unseen"), 100, "unseen100.jsonl");
    let train = chitchat("train");
    let out = run(&[
        "eval",
        "chat",
        "--conversations",
        file.to_str().unwrap(),
        "--train",
        train.to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let r = pct(&v["reasoner"]["top1"]);
    let best = ["last_turn", "mean_context", "linear_map"]
        .iter()
        .map(|b| pct(&v["baselines"][b]["top1"]))
        .fold(0.0, f64::max);
    assert!(
        r >= best + 3.0,
        "reasoner {r:.2} vs best baseline {best:.2}"
    );
    std::fs::remove_file(file).ok();
}

/// `pith chat` answers every turn with a bank sentence and its score, the same way twice, and
/// `reset` clears the context (the first answer after it equals a fresh conversation's).
#[test]
fn chat_answers_from_the_bank_deterministically() {
    let train = std::fs::read_to_string(chitchat("train")).unwrap();
    let mut lines: Vec<String> = Vec::new();
    for l in train.lines().take(40) {
        let v: Value = serde_json::from_str(l).unwrap();
        for t in v["turns"].as_array().unwrap() {
            let t = t.as_str().unwrap().to_string();
            if !lines.contains(&t) {
                lines.push(t);
            }
        }
    }
    let src = temp("responses.txt");
    std::fs::write(&src, lines.join("\n")).unwrap();
    let bank = temp("responses.pithkb");
    run(&[
        "kb",
        "build",
        src.to_str().unwrap(),
        "-o",
        bank.to_str().unwrap(),
        "--model",
        "models/tier-s.pith",
        "--threshold",
        "-1",
    ]);
    let chat = |turns: &[&str]| -> Vec<Value> {
        let mut args = vec!["chat", "--bank", bank.to_str().unwrap(), "--json"];
        args.extend_from_slice(&["--refine-below", "0.02"]);
        args.extend_from_slice(turns);
        run(&args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let turns = [
        "hi, how are you?",
        "pretty good, I just got back from a run",
        "what would you do with a flying car?",
        "reset",
        "hi, how are you?",
    ];
    let a = chat(&turns);
    assert_eq!(a, chat(&turns));
    assert_eq!(a.len(), 5);
    for r in a.iter().filter(|r| r.get("answer").is_some()) {
        let text = r["answer"].as_str().unwrap();
        assert!(
            lines.iter().any(|l| l == text),
            "{text:?} is not a bank sentence"
        );
        assert!(r["score"].as_f64().unwrap().abs() <= 1.0);
    }
    assert_eq!(a[3]["reset"], true);
    assert_eq!(a[4]["answer"], a[0]["answer"]);
    std::fs::remove_file(src).ok();
    std::fs::remove_file(bank).ok();
}
