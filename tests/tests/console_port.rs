//! `pith console --port` against a real pseudo-terminal: QEMU boots the STM32F405 firmware (real
//! HAL, Tier S and its bank) with its USART on `-serial pty`, and the CLI talks to /dev/pts/N
//! through the serialport crate exactly as it would to a board's USB serial device. The same
//! script through `--sim` must give the same output; hostile lines must be refused or answered
//! in step, and the exit status must say that some failed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result};
use pith_tests::cli::pith_bin;
use pith_tests::qemu::{board, build_firmware, repo_root};
use pith_tools::device::QemuPty;

const SCRIPT: &str = "info\n\
    embed A man is playing a guitar.\n\
    sim A man is playing a guitar. | Someone plays music.\n\
    ask How do I delete my Facebook account?\n\
    kb\n";

/// Runs `pith ARGS` with `stdin` piped in.
fn pith(args: &[&str], stdin: &[u8]) -> Result<Output> {
    let mut child = Command::new(pith_bin())
        .args(args)
        .args(["--timeout", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting pith")?;
    child.stdin.take().context("pith stdin")?.write_all(stdin)?;
    child.wait_with_output().context("waiting for pith")
}

fn statuses(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("OK") || l.starts_with("ERR"))
        .map(str::to_string)
        .collect()
}

#[test]
fn console_port_over_a_qemu_pty_answers_like_sim_and_keeps_replies_in_step() -> Result<()> {
    let b = board("stm32f405")?;
    let package = repo_root().unwrap().join(b.default_package);
    assert!(
        package.is_file(),
        "{} is missing: `pith artifacts` builds it",
        package.display()
    );
    let elf = build_firmware(b, Some(&package))?;
    let elf_arg = elf.to_string_lossy().into_owned();

    let sim = pith(
        &["console", "--sim", "--board", b.name, "--elf", &elf_arg],
        SCRIPT.as_bytes(),
    )?;
    assert!(
        sim.status.success(),
        "--sim: {}",
        String::from_utf8_lossy(&sim.stderr)
    );
    assert_eq!(statuses(&sim).len(), 5, "{sim:?}");
    assert!(
        statuses(&sim).iter().all(|s| s.starts_with("OK")),
        "{sim:?}"
    );

    let log = elf.with_extension(format!("pty.{}.defmt", std::process::id()));
    let qemu = QemuPty::boot(b, &elf, log.clone())?;
    let dev = qemu.path.to_string_lossy().into_owned();
    assert!(Path::new(&dev).exists(), "{dev}");
    let port = pith(&["console", "--port", &dev], SCRIPT.as_bytes())?;
    assert!(
        port.status.success(),
        "--port: {}",
        String::from_utf8_lossy(&port.stderr)
    );
    // Same firmware, same fresh boot, same commands: the same bytes, `info`'s stack peak included.
    assert_eq!(
        String::from_utf8_lossy(&port.stdout),
        String::from_utf8_lossy(&sim.stdout)
    );
    let fb = String::from_utf8_lossy(&port.stdout).to_lowercase();
    assert!(fb.contains("facebook"), "{fb}");

    // Hostile lines on the same device: a CR inside a line, an escape sequence, x + DEL, non-UTF-8,
    // a blank line, `frame`; every line gets exactly one status and `info` still answers last.
    let hostile: &[u8] = b"info\rembed one two\n\x1b[A\nx\x7f\n\xff\xfe\n   \nframe now\ninfo\n";
    let out = pith(&["console", "--port", &dev], hostile)?;
    assert!(
        !out.status.success(),
        "ERR lines must fail the run: {out:?}"
    );
    let got = statuses(&out);
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(got[0].starts_with("ERR 1 control byte 0x0d"), "{got:?}");
    assert!(got[1].starts_with("ERR 1 control byte 0x1b"), "{got:?}");
    assert!(got[2].starts_with("ERR 1 control byte 0x7f"), "{got:?}");
    assert_eq!(got[3], "ERR 1 invalid UTF-8");
    assert!(got[4].starts_with("ERR 1 `frame now`"), "{got:?}");
    assert_eq!(got[5], "OK");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("board stm32f405 (Cortex-M4F)"),
        "{out:?}"
    );
    drop(qemu);
    let _ = std::fs::remove_file(log);
    Ok(())
}
