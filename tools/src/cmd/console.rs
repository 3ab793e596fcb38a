//! `pith console`: attach to the firmware's serial console, in QEMU (`--sim`) or on a real board
//! (`--port`). With a terminal on stdin it is interactive; otherwise each stdin line is sent as a
//! command, its reply (up to the `OK`/`ERR` line) is printed, and the tool exits at end of input.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Boot the firmware in QEMU (qemu-system-arm) and attach to its UART.
    #[arg(long, conflicts_with = "port")]
    sim: bool,
    /// Board to simulate: mps3-an547, mps2-an505, mps2-an500, mps2-an386 or mps2-an385.
    #[arg(long, default_value = "mps3-an547")]
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

/// (board, Rust target, target CPU) for every board the firmware supports.
const BOARDS: &[(&str, &str, &str)] = &[
    ("mps3-an547", "thumbv8m.main-none-eabihf", "cortex-m55"),
    ("mps2-an505", "thumbv8m.main-none-eabihf", "cortex-m33"),
    ("mps2-an500", "thumbv7em-none-eabihf", ""),
    ("mps2-an386", "thumbv7em-none-eabihf", ""),
    ("mps2-an385", "thumbv6m-none-eabi", ""),
];

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scripted = !std::io::stdin().is_terminal();
    if let Some(port) = &args.port {
        return real_board(port, args.baud, scripted, Duration::from_secs(args.timeout));
    }
    if !args.sim {
        bail!("say where the console is: --sim (QEMU) or --port DEVICE");
    }
    let elf = match &args.elf {
        Some(e) => e.clone(),
        None => build_firmware(&args.board)?,
    };
    let defmt_log = elf.with_extension("defmt");
    let log = std::fs::File::create(&defmt_log)
        .with_context(|| format!("creating {}", defmt_log.display()))?;
    let mut qemu = Command::new("qemu-system-arm");
    qemu.args(["-machine", &args.board, "-kernel"])
        .arg(&elf)
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .args(["-semihosting-config", "enable=on,target=native"])
        // defmt frames arrive on QEMU's stderr (semihosting); the UART owns stdin/stdout.
        .stderr(log);
    if !scripted {
        eprintln!(
            "pith console: {} in QEMU, defmt log {}; Ctrl-C quits",
            args.board,
            defmt_log.display()
        );
        let status = qemu
            .status()
            .context("starting qemu-system-arm (apt-get install qemu-system-arm)")?;
        if !status.success() && status.code() != Some(130) {
            eprintln!("qemu exited with {status}; see {}", defmt_log.display());
        }
        return Ok(());
    }
    let mut child = qemu
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting qemu-system-arm (apt-get install qemu-system-arm)")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let stdin = child.stdin.take().context("qemu stdin")?;
    let result = script(Link::new(stdout, stdin), Duration::from_secs(args.timeout));
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Builds the firmware for `board` with cargo and returns the ELF.
fn build_firmware(board: &str) -> Result<PathBuf> {
    let &(_, target, cpu) = BOARDS
        .iter()
        .find(|b| b.0 == board)
        .with_context(|| format!("unknown board {board}"))?;
    let firmware = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware");
    let mut cmd = Command::new("cargo");
    // Without PITH_PACKAGE the board gets the default model that fits it, built on first use.
    if std::env::var_os("PITH_PACKAGE").is_none() {
        let package = crate::artifacts::board_package(board)?;
        cmd.env("PITH_BANK", crate::artifacts::bank_for(&package)?);
        cmd.env("PITH_PACKAGE", package);
    }
    cmd.current_dir(&firmware).args([
        "build",
        "--release",
        "--no-default-features",
        "--features",
        board,
        "--target",
        target,
        "--bin",
        board,
    ]);
    let flags = if cpu.is_empty() {
        String::new()
    } else {
        format!("-C target-cpu={cpu}")
    };
    cmd.env(
        format!(
            "CARGO_TARGET_{}_RUSTFLAGS",
            target.to_uppercase().replace(['-', '.'], "_")
        ),
        flags,
    );
    let status = cmd.status().context("running cargo build in firmware/")?;
    if !status.success() {
        bail!("firmware build failed");
    }
    Ok(firmware
        .join("target")
        .join(target)
        .join("release")
        .join(board))
}

/// Bytes from the device (through a reader thread, so waits can time out) and a writer to it.
struct Link {
    rx: Receiver<Vec<u8>>,
    tx: Box<dyn Write + Send>,
    pending: Vec<u8>,
}

impl Link {
    fn new(mut from: impl Read + Send + 'static, to: impl Write + Send + 'static) -> Link {
        let (send, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || send.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Link {
            rx,
            tx: Box::new(to),
            pending: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) -> Result<()> {
        self.tx.write_all(line.as_bytes())?;
        self.tx.write_all(b"\r")?;
        Ok(self.tx.flush()?)
    }

    fn line(&mut self, deadline: Instant) -> Result<String> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.pending.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\r', '\n'])
                    .to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.pending.extend_from_slice(&bytes),
                Err(_) => bail!("no reply from the device (timed out or it went away)"),
            }
        }
    }

    /// Reads lines up to the `OK`/`ERR` line; returns (body, status).
    fn reply(&mut self, timeout: Duration) -> Result<(Vec<String>, String)> {
        let deadline = Instant::now() + timeout;
        let mut body = Vec::new();
        loop {
            let line = self.line(deadline)?;
            // Before `echo off` takes effect the prompt may precede the status on the same line.
            let line = line.trim_start_matches("pith> ").to_string();
            if line.starts_with("OK") || line.starts_with("ERR") {
                return Ok((body, line));
            }
            body.push(line);
        }
    }
}

/// Sends each stdin line as a command and prints the replies.
fn script(mut link: Link, timeout: Duration) -> Result<()> {
    // Echo and prompt off: replies are then exactly body lines plus the status line. Whatever the
    // device printed before (banner) is skipped along with this command's own reply.
    link.send("echo off")?;
    let (_, status) = link.reply(timeout).context("waiting for the console")?;
    if !status.starts_with("OK") {
        bail!("`echo off` answered {status}");
    }
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
        link.send(cmd)?;
        let (body, status) = link
            .reply(timeout)
            .with_context(|| format!("reply to {cmd:?}"))?;
        let mut out = stdout.lock();
        for l in body {
            writeln!(out, "{l}")?;
        }
        writeln!(out, "{status}")?;
        if status.starts_with("ERR") {
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
        return script(Link::new(dev, writer), timeout);
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
