//! `pith console`: attach to the firmware's serial console, in QEMU (`--sim`) or on a real board
//! (`--port`). With a terminal on stdin it is interactive; otherwise each stdin line is sent as a
//! command, its reply (up to the `OK`/`ERR` line) is printed, and the tool exits at end of input.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::device::{self, Link, Qemu};
use crate::firmware;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Boot the firmware in QEMU (qemu-system-arm) and attach to its UART.
    #[arg(long, conflicts_with = "port")]
    sim: bool,
    /// Board to simulate (boards/src/lib.rs lists them; default: the table's first).
    #[arg(long, default_value = pith_boards::DEFAULT.name)]
    board: String,
    /// Firmware ELF to boot (default: build firmware/ for the board; PITH_PACKAGE picks the model).
    #[arg(long)]
    elf: Option<PathBuf>,
    /// Serial device of a real board, e.g. /dev/ttyACM0.
    #[arg(long)]
    port: Option<PathBuf>,
    /// Baud rate for --port.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Seconds to wait for each reply when commands come from a pipe.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scripted = !std::io::stdin().is_terminal();
    if let Some(port) = &args.port {
        return real_board(port, args.baud, scripted, Duration::from_secs(args.timeout));
    }
    if !args.sim {
        bail!("say where the console is: --sim (QEMU) or --port DEVICE");
    }
    let board = firmware::board(&args.board)?;
    let elf = match &args.elf {
        Some(e) => e.clone(),
        None => {
            eprintln!("pith console: building the firmware for {} ...", board.name);
            firmware::build(board, &crate::cmd::firmware::link_from_env(board)?)?
        }
    };
    let defmt_log = elf.with_extension("defmt");
    if !scripted {
        let log = std::fs::File::create(&defmt_log)
            .with_context(|| format!("creating {}", defmt_log.display()))?;
        eprintln!(
            "pith console: {} in QEMU, defmt log {}; Ctrl-C quits",
            board.name,
            defmt_log.display()
        );
        let status = device::qemu_command(board, &elf, false)
            .stderr(log)
            .status()
            .context("starting qemu-system-arm (apt-get install qemu-system-arm)")?;
        if !status.success() && status.code() != Some(130) {
            eprintln!("qemu exited with {status}; see {}", defmt_log.display());
        }
        return Ok(());
    }
    let mut qemu = Qemu::boot_logging(board, &elf, false, defmt_log, true)?;
    script(&mut qemu, Duration::from_secs(args.timeout))
}

/// Sends each stdin line as a command and prints the replies.
fn script(link: &mut Link, timeout: Duration) -> Result<()> {
    link.echo_off(timeout)?;
    let mut failures = 0;
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let cmd = line.trim();
        if cmd.is_empty() {
            continue;
        }
        if cmd == "frame" || cmd.starts_with("echo") {
            println!("ERR 2 `{cmd}` is not available from pith console (the tool needs text mode, echo off)");
            failures += 1;
            continue;
        }
        let reply = link.command(cmd, timeout)?;
        let mut out = stdout.lock();
        for l in &reply.body {
            writeln!(out, "{l}")?;
        }
        writeln!(out, "{}", reply.status)?;
        if !reply.ok() {
            failures += 1;
        }
    }
    if failures > 0 {
        eprintln!("pith console: {failures} command(s) answered ERR");
    }
    Ok(())
}

/// A real board on a serial device, set up with `stty` (raw, no echo, the given baud rate).
fn real_board(port: &Path, baud: u32, scripted: bool, timeout: Duration) -> Result<()> {
    let status = Command::new("stty")
        .arg("-F")
        .arg(port)
        .args([&baud.to_string(), "raw", "-echo", "-hupcl"])
        .status()
        .context("running stty")?;
    if !status.success() {
        bail!("stty could not configure {}", port.display());
    }
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(port)
        .with_context(|| format!("opening {}", port.display()))?;
    let writer = dev.try_clone()?;
    if scripted {
        return script(&mut Link::new(dev, writer), timeout);
    }
    interactive(dev, writer)
}

/// Copies the terminal to the device and back, the terminal in raw mode; Ctrl-] quits.
fn interactive(mut from_dev: std::fs::File, mut to_dev: std::fs::File) -> Result<()> {
    let saved = Command::new("stty")
        .arg("-g")
        .stdin(Stdio::inherit())
        .output()
        .context("stty -g")?;
    let saved = String::from_utf8_lossy(&saved.stdout).trim().to_string();
    Command::new("stty")
        .args(["raw", "-echo"])
        .stdin(Stdio::inherit())
        .status()
        .context("stty raw")?;
    eprint!("pith console: connected; Ctrl-] quits\r\n");
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut out = std::io::stdout();
        while let Ok(n) = from_dev.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
    });
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    let result = loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e.into()),
        };
        if let Some(i) = buf[..n].iter().position(|&b| b == 0x1d) {
            break to_dev.write_all(&buf[..i]).map_err(Into::into);
        }
        if let Err(e) = to_dev.write_all(&buf[..n]) {
            break Err(e.into());
        }
    };
    let _ = Command::new("stty")
        .arg(&saved)
        .stdin(Stdio::inherit())
        .status();
    eprintln!();
    result
}
