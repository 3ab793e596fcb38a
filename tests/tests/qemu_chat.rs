//! `chat` on the device answers turns of dev conversations with exactly the lines `pith chat`
//! prints on the host, the turns the gate refines included: 24 turns on the default board
//! (mps3-an547, Cortex-M55) with what `pith console --sim` links — the teacher, its reasoner and
//! their 4,000-sentence response bank — and 50 on a Tier S board (mps2-an386, Cortex-M4F) with
//! Tier S, its reasoner and a small bank of training turns.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pith_tests::qemu::{board, repo_root, Qemu};
use pith_tools::artifacts::package;
use pith_tools::catalog::{ReasonerArtifacts, REASONER_S, TIER_S};
use pith_tools::device::firmware::{build, Link};

const BOOT: Duration = Duration::from_secs(30);
const REPLY: Duration = Duration::from_secs(60);
/// Turns played through both on the Tier S board.
const TURNS: usize = 50;
/// Turns played on the default board, at most [`WINDOW_TURNS`] of each conversation: each turn
/// costs about five seconds of QEMU's Helium emulation (two 384-wide embeddings and a search of
/// 4,000 sentences), and the Tier S board plays the longer script. 24 = three conversations that
/// each fill the reasoner's window, two resets between them.
const DEFAULT_BOARD_TURNS: usize = 24;
/// The reasoner's window: the default board's conversations are cut there.
const WINDOW_TURNS: usize = 8;

fn turns_of(part: &str) -> Result<Vec<Vec<String>>> {
    let path = repo_root()
        .unwrap()
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
        .current_dir(repo_root().unwrap())
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
    let shipped = pith_tools::catalog::reasoner_with_package(REASONER_S).context("Tier S")?;
    device_equals_host(
        b,
        &elf,
        shipped,
        (tier_s_s, reasoner.to_str().unwrap(), bank_s),
        (TURNS, usize::MAX),
    )?;
    std::fs::remove_file(src).ok();
    std::fs::remove_file(bank).ok();
    Ok(())
}

/// The main job's board with exactly what `pith console --sim` links (the board table's default
/// package and reasoner, and that reasoner's response bank): `chat` answers like the host.
#[test]
fn default_board_chat_equals_host_chat_byte_for_byte() -> Result<()> {
    let b = &pith_boards::BOARDS[0];
    let link = Link {
        qemu: true,
        ..pith_tools::cmd::firmware::link_from_env(b)?
    };
    let (Some(package), Some(reasoner), Some(bank)) =
        (&link.package, &link.reasoner, &link.chat_bank)
    else {
        bail!("{} links no reasoner by default", b.name);
    };
    let rel = b
        .default_reasoner
        .context("the default board has a default reasoner")?;
    let shipped = pith_tools::catalog::reasoner_with_package(rel).context("shipped")?;
    let elf = build(b, &link)?;
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    device_equals_host(
        b,
        &elf,
        shipped,
        (&s(package), &s(reasoner), &s(bank)),
        (DEFAULT_BOARD_TURNS, WINDOW_TURNS),
    )
}

/// Plays `turns` dev turns (at most `per_conversation` of each) through `pith chat` (the shipped reasoner `shipped`, its package `reasoner`,
/// the encoder package `encoder` and the response bank `bank`) and through the firmware image
/// `elf` of board `b`, and checks that every reply is the same, line for line.
fn device_equals_host(
    b: &pith_boards::Board,
    elf: &std::path::Path,
    shipped: &ReasonerArtifacts,
    (encoder, reasoner, bank): (&str, &str, &str),
    (turns, per_conversation): (usize, usize),
) -> Result<()> {
    // `turns` dev turns, conversation by conversation, `reset` between conversations.
    let mut script: Vec<String> = Vec::new();
    let mut played = 0;
    for c in turns_of("dev")? {
        if played >= turns {
            break;
        }
        if !script.is_empty() {
            script.push("reset".into());
        }
        for t in c.into_iter().take((turns - played).min(per_conversation)) {
            script.push(t);
            played += 1;
        }
    }

    let mut args = vec![
        "chat",
        "--reasoner",
        shipped.checkpoint,
        "--model",
        encoder,
        "--package",
        reasoner,
        "--bank",
        bank,
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
    assert_eq!(host_replies.len(), turns, "{host}");
    // The gate must have sent some turns through refinement, so both paths are compared.
    let refined = host_replies
        .iter()
        .filter(|r| r.last().is_some_and(|m| m.ends_with(" refined")))
        .count();
    assert!(
        refined > 0 && refined < turns,
        "{refined} of {turns} refined"
    );

    let mut q = Qemu::boot(b, elf, false)?;
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
    assert_eq!(i, turns);
    let info = q.command("info", REPLY)?;
    // The figures models/reasoners.md quotes (cargo test -- --nocapture shows them).
    println!(
        "{}, {encoder} + reasoner ({} bytes) + response bank ({} bytes): {:?}; stack after one \
         embed: {:?}",
        b.name,
        std::fs::metadata(reasoner)?.len(),
        std::fs::metadata(bank)?.len(),
        info.body,
        before.get("stack")
    );
    Ok(())
}
