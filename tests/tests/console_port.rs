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

/// Starts `console` (a `pith console` command) with a minute per reply and every stream piped.
/// The most a SysTick exception adds to the stack at any point: the extended (FPU) exception
/// frame of 104 bytes and the handler's own small frame.
const TICK_FRAME: u32 = 128;

/// `info`'s `stack N bytes peak` value, and the text with that line's number blanked.
fn split_stack_peak(text: &str) -> (u32, String) {
    let mut peak = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            match l
                .strip_prefix("stack ")
                .and_then(|r| r.strip_suffix(" bytes peak"))
            {
                Some(n) => {
                    peak = n.parse().unwrap_or(u32::MAX);
                    "stack N bytes peak".to_string()
                }
                None => l.to_string(),
            }
        })
        .collect();
    (peak, lines.join("\n"))
}

fn spawn(mut console: Command) -> Result<std::process::Child> {
    console
        .args(["--timeout", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting pith")
}

/// Runs `pith ARGS` with `stdin` piped in.
fn pith(args: &[&str], stdin: &[u8]) -> Result<Output> {
    let mut cmd = Command::new(pith_bin());
    cmd.args(args);
    let mut child = spawn(cmd)?;
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
    // Same firmware, same fresh boot, same commands: the same bytes, but for `info`'s stack peak,
    // which may differ by the SysTick handler's frame: the tick fires by QEMU's wall clock, so on
    // a loaded machine it can land on the deepest call of one run and not the other's.
    let (got, want) = (
        String::from_utf8_lossy(&port.stdout),
        String::from_utf8_lossy(&sim.stdout),
    );
    let (got_peak, got) = split_stack_peak(&got);
    let (want_peak, want) = split_stack_peak(&want);
    assert_eq!(got, want);
    assert!(
        got_peak > 0 && want_peak > 0,
        "no stack peak in `info`:\n{got}"
    );
    assert!(
        got_peak.abs_diff(want_peak) <= TICK_FRAME,
        "stack peaks {got_peak} and {want_peak}"
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

/// Sends `info`, waits for its `OK`, then makes the device go away with `kill` and sends one more
/// line: `pith console` must fail and say so on stderr (returned).
fn dies_mid_script(console: Command, kill: impl FnOnce() -> Result<()>) -> Result<Output> {
    use std::io::BufRead;
    let mut child = spawn(console)?;
    let mut stdin = child.stdin.take().context("pith stdin")?;
    let mut stdout = std::io::BufReader::new(child.stdout.take().context("pith stdout")?);
    stdin.write_all(b"info\n")?;
    let mut line = String::new();
    while !line.starts_with("OK") {
        line.clear();
        anyhow::ensure!(stdout.read_line(&mut line)? > 0, "no OK to info");
    }
    kill()?;
    // The device is gone; the console must not take this line for success.
    let _ = stdin.write_all(b"info\n");
    drop(stdin);
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        !out.status.success(),
        "exit 0 after the device died: {out:?}"
    );
    Ok(out)
}

/// `--sim` refuses an ELF that cannot run on the board before booting it, and both `--sim` and
/// `--port` exit non-zero with a message naming what happened (and, in QEMU, the log to read)
/// when the device dies mid-script; a dead QEMU is never taken for a reader that went away.
#[test]
fn console_fails_clearly_when_the_device_is_missing_or_dies() -> Result<()> {
    let b = board("stm32f405")?;
    let package = repo_root().unwrap().join(b.default_package);
    let elf = build_firmware(b, Some(&package))?;
    let work = tempfile::tempdir()?;
    let empty = work.path().join("empty.elf");
    std::fs::write(&empty, b"")?;
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let refused = [
        (work.path().join("missing.elf"), b.name, "No such file"),
        (empty, b.name, "Could not read file magic"),
        (work.path().to_path_buf(), b.name, "not a regular file"),
        (
            elf.clone(),
            "mps3-an547",
            "lies outside mps3-an547's memory map",
        ),
        (elf.clone(), "mps2-an385", "built for the hard float ABI"),
    ];
    for (path, on, why) in refused {
        let out = pith(
            &["console", "--sim", "--board", on, "--elf", &s(&path)],
            b"info\n",
        )?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("cannot run on") && err.contains(why),
            "{} on {on}: {out:?}",
            path.display()
        );
    }

    // A private copy of the image, so its QEMU (and only it) can be found and killed.
    let doomed = work.path().join("doomed.elf");
    std::fs::copy(&elf, &doomed)?;
    let mut sim = Command::new(pith_bin());
    sim.args(["console", "--sim", "--board", b.name, "--elf", &s(&doomed)]);
    let out = dies_mid_script(sim, || {
        let killed = Command::new("pkill")
            .args(["-f", &format!("^qemu-system-arm .*{}", s(&doomed))])
            .status()?;
        anyhow::ensure!(killed.success(), "no QEMU of {} to kill", doomed.display());
        Ok(())
    })?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the simulated stm32f405 stopped: qemu exited")
            && err.contains(&s(&doomed.with_extension("defmt"))),
        "{err}"
    );

    let log = work.path().join("pty.defmt");
    let qemu = QemuPty::boot(b, &elf, log)?;
    let dev = qemu.path.to_string_lossy().into_owned();
    let mut port = Command::new(pith_bin());
    port.args(["console", "--port", &dev]);
    let out = dies_mid_script(port, move || {
        drop(qemu);
        Ok(())
    })?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the board on {dev} stopped answering or went away"
        )),
        "{err}"
    );
    Ok(())
}
