//! `chat` on the device: Tier S, the integer reasoner and a response bank linked into the
//! mps2-an386 firmware (Cortex-M4F under QEMU) answer 50 turns of dev conversations with exactly
//! the lines `pith chat` prints on the host, the turns the gate refines included.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pith_tests::qemu::{board, repo_root, Qemu};
use pith_tools::artifacts::{package, REASONER_S, TIER_S};
use pith_tools::firmware::{build, Link};

const BOOT: Duration = Duration::from_secs(30);
const REPLY: Duration = Duration::from_secs(60);
/// Turns played through both.
const TURNS: usize = 50;

fn turns_of(part: &str) -> Result<Vec<Vec<String>>> {
    let path = repo_root()
        .join("data/chitchat")
        .join(format!("{part}.jsonl"));
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is missing: run scripts/fetch-chitchat.sh",
            path.display()
        )
    })?;
    let mut out = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l)?;
        let turns = v["turns"]
            .as_array()
            .context("turns")?
            .iter()
            .filter_map(|t| t.as_str())
            // What a console line carries: printable, well under its 512 bytes.
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty() && t.len() < 300 && t.bytes().all(|b| b >= 0x20))
            .collect();
        out.push(turns);
    }
    Ok(out)
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pith-qemu-chat-{}-{name}", std::process::id()))
}

fn pith(args: &[&str]) -> Result<String> {
    let out = Command::new(pith_tests::cli::pith_bin())
        .args(args)
        .current_dir(repo_root())
        .output()?;
    if !out.status.success() {
        bail!("pith {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn device_chat_equals_host_chat_byte_for_byte() -> Result<()> {
    let tier_s = package(TIER_S)?;
    let reasoner = package(REASONER_S)?;
    // A response bank of training turns (the sentences `chat` may answer with).
    let mut sentences: Vec<String> = Vec::new();
    for c in turns_of("train")?.into_iter().take(80) {
        for t in c {
            if !sentences.contains(&t) {
                sentences.push(t);
            }
        }
    }
    let src = temp("responses.txt");
    std::fs::write(&src, sentences.join("\n"))?;
    let bank = temp("responses.pithkb");
    let (tier_s_s, bank_s) = (tier_s.to_str().unwrap(), bank.to_str().unwrap());
    pith(&[
        "kb",
        "build",
        src.to_str().unwrap(),
        "-o",
        bank_s,
        "--model",
        tier_s_s,
        "--threshold",
        "-1",
    ])?;

    // 50 dev turns, conversation by conversation, `reset` between conversations.
    let mut script: Vec<String> = Vec::new();
    let mut played = 0;
    for c in turns_of("dev")? {
        if played >= TURNS {
            break;
        }
        if !script.is_empty() {
            script.push("reset".into());
        }
        for t in c.into_iter().take(TURNS - played) {
            script.push(t);
            played += 1;
        }
    }

    let mut args = vec![
        "chat",
        "--model",
        tier_s_s,
        "--package",
        reasoner.to_str().unwrap(),
        "--bank",
        bank_s,
    ];
    args.extend(script.iter().map(String::as_str));
    let host = pith(&args)?;
    // Per turn: the `score`, `answer`, `prediction` and `margin` lines.
    let lines: Vec<&str> = host.lines().filter(|l| !l.starts_with("> ")).collect();
    let host_replies: Vec<Vec<String>> = lines
        .iter()
        .filter(|l| **l != "(context cleared)")
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().map(|l| l.to_string()).collect())
        .collect();
    assert_eq!(host_replies.len(), TURNS, "{host}");
    // The gate must have sent some turns through refinement, so both paths are compared.
    let refined = host_replies
        .iter()
        .filter(|r| r.last().is_some_and(|m| m.ends_with(" refined")))
        .count();
    assert!(
        refined > 0 && refined < TURNS,
        "{refined} of {TURNS} refined"
    );

    let b = board("mps2-an386")?;
    let elf = build(
        b,
        &Link {
            package: Some(tier_s.clone()),
            reasoner: Some(reasoner.clone()),
            chat_bank: Some(bank.clone()),
            qemu: true,
            ..Link::default()
        },
    )?;
    let mut q = Qemu::boot(b, &elf, false)?;
    q.start_quiet(BOOT)?;
    // The stack the encoder alone needs, to tell the reasoner's share from it below.
    assert!(q.command("embed how are you doing today?", REPLY)?.ok());
    let before = q.command("info", REPLY)?;
    let mut i = 0;
    for turn in &script {
        if turn == "reset" {
            let r = q.command("chat reset", REPLY)?;
            assert!(r.ok(), "{r:?}");
            continue;
        }
        let r = q.command(&format!("chat {turn}"), REPLY)?;
        assert!(r.ok(), "turn {i} {turn:?}: {r:?}");
        assert_eq!(r.body, host_replies[i], "turn {i} {turn:?}");
        i += 1;
    }
    assert_eq!(i, TURNS);
    let info = q.command("info", REPLY)?;
    // The figures models/reasoner-s.md quotes (cargo test -- --nocapture shows them).
    println!(
        "mps2-an386, Tier S + reasoner ({} bytes) + response bank ({} bytes): {:?}; stack after \
         one embed: {:?}",
        std::fs::metadata(&reasoner)?.len(),
        std::fs::metadata(&bank)?.len(),
        info.body,
        before.get("stack")
    );
    std::fs::remove_file(src).ok();
    std::fs::remove_file(bank).ok();
    Ok(())
}
