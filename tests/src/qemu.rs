//! QEMU simulator harness: builds (or finds) a firmware ELF, boots it with a timeout and talks to
//! its UART over QEMU's stdin/stdout. defmt logs (semihosting stderr) go to `<elf>.<pid>.defmt`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pith_runtime::frame::{
    encode_request, Request, Response, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME,
};
use postcard::accumulator::{CobsAccumulator, FeedResult};

/// A board the firmware supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// QEMU machine name, cargo feature and binary name.
    pub name: &'static str,
    /// Core name as the firmware reports it.
    pub cpu: &'static str,
    /// Rust target.
    pub target: &'static str,
    /// `-C target-cpu` for this board, if any.
    pub target_cpu: Option<&'static str>,
}

/// Every board, default (mps3-an547) first.
pub const BOARDS: &[Board] = &[
    Board {
        name: "mps3-an547",
        cpu: "Cortex-M55",
        target: "thumbv8m.main-none-eabihf",
        target_cpu: Some("cortex-m55"),
    },
    Board {
        name: "mps2-an505",
        cpu: "Cortex-M33",
        target: "thumbv8m.main-none-eabihf",
        target_cpu: Some("cortex-m33"),
    },
    Board {
        name: "mps2-an500",
        cpu: "Cortex-M7",
        target: "thumbv7em-none-eabihf",
        target_cpu: None,
    },
    Board {
        name: "mps2-an386",
        cpu: "Cortex-M4F",
        target: "thumbv7em-none-eabihf",
        target_cpu: None,
    },
    Board {
        name: "mps2-an385",
        cpu: "Cortex-M3",
        target: "thumbv6m-none-eabi",
        target_cpu: None,
    },
];

/// The board called `name`.
pub fn board(name: &str) -> Result<Board> {
    BOARDS
        .iter()
        .copied()
        .find(|b| b.name == name)
        .with_context(|| format!("unknown board {name}"))
}

/// The repository root (parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The model package tests use: `$PITH_PACKAGE` or `models/minilm-l6.pith`; a clear error if absent.
pub fn package_path() -> Result<PathBuf> {
    let path = std::env::var_os("PITH_PACKAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models/minilm-l6.pith"));
    if !path.is_file() {
        bail!(
            "model package {} is missing: build it with `cargo run --release --bin pith -- quantize ...` \
             (or point PITH_PACKAGE at one)",
            path.display()
        );
    }
    Ok(path)
}

/// Builds the firmware for `board`, linking `package` (none: no model), and returns the ELF path.
/// Each (board, package) pair gets its own target directory so that runs never relink each other's.
pub fn build_firmware(board: &Board, package: Option<&Path>) -> Result<PathBuf> {
    build_firmware_with_arena(board, package, None)
}

/// [`build_firmware`] with the arena cut to `arena_bytes` (`PITH_ARENA_BYTES`), to model a part
/// with less RAM than the simulated board.
pub fn build_firmware_with_arena(
    board: &Board,
    package: Option<&Path>,
    arena_bytes: Option<u32>,
) -> Result<PathBuf> {
    let firmware = repo_root().join("firmware");
    // Tests run in parallel: each package gets its own directory, or one test could boot an ELF
    // another test just relinked with a different package.
    let mut flavour = match package {
        Some(p) => format!(
            "pkg-{}",
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        None => "nopkg".to_string(),
    };
    if let Some(a) = arena_bytes {
        flavour += &format!("-arena{a}");
    }
    let target_dir = firmware.join("target").join(format!(
        "harness-{}-{flavour}",
        board.target_cpu.unwrap_or("generic")
    ));
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&firmware)
        .args([
            "build",
            "--release",
            "--no-default-features",
            "--features",
            board.name,
        ])
        .args(["--target", board.target, "--bin", board.name])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Host crates' flags (from the outer cargo test) must not leak into the thumb build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    let flags = board
        .target_cpu
        .map(|cpu| format!("-C target-cpu={cpu}"))
        .unwrap_or_default();
    // Replaces .cargo/config.toml's per-target rustflags, so every board gets exactly its own CPU.
    cmd.env(
        format!(
            "CARGO_TARGET_{}_RUSTFLAGS",
            board.target.to_uppercase().replace(['-', '.'], "_")
        ),
        flags,
    );
    match package {
        Some(p) => cmd.env("PITH_PACKAGE", p),
        None => cmd.env_remove("PITH_PACKAGE"),
    };
    // The StackFAQ bank embedded by this package, when scripts/test.sh (or `pith`) built it.
    match arena_bytes {
        Some(a) => cmd.env("PITH_ARENA_BYTES", a.to_string()),
        None => cmd.env_remove("PITH_ARENA_BYTES"),
    };
    match package
        .map(|p| p.with_extension("pithkb"))
        .filter(|b| b.is_file())
    {
        Some(b) => cmd.env("PITH_BANK", b),
        None => cmd.env_remove("PITH_BANK"),
    };
    let out = cmd
        .output()
        .context("running cargo build for the firmware")?;
    if !out.status.success() {
        bail!(
            "firmware build for {} failed:\n{}",
            board.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elf = target_dir
        .join(board.target)
        .join("release")
        .join(board.name);
    if !elf.is_file() {
        bail!(
            "firmware build for {} produced no {}",
            board.name,
            elf.display()
        );
    }
    Ok(elf)
}

/// One reply of the text console: its body lines and the closing `OK ...`/`ERR ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Lines before the status line.
    pub body: Vec<String>,
    /// The `OK`/`ERR` line.
    pub status: String,
}

impl Reply {
    /// Whether the status is `OK`.
    pub fn ok(&self) -> bool {
        self.status.starts_with("OK")
    }

    /// The value of the first body line `key value`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.body
            .iter()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
    }
}

/// A running QEMU with the firmware; killed on drop.
pub struct Qemu {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    /// Where defmt's frames go.
    pub defmt_log: PathBuf,
}

impl Qemu {
    /// Boots `elf` on `board`; `icount` makes instruction counts exact (`-icount shift=0`).
    pub fn boot(board: &Board, elf: &Path, icount: bool) -> Result<Qemu> {
        let defmt_log = elf.with_extension(format!("{}.defmt", std::process::id()));
        let log = std::fs::File::create(&defmt_log).context("creating the defmt log")?;
        let mut cmd = Command::new("qemu-system-arm");
        cmd.args(["-machine", board.name, "-kernel"]).arg(elf);
        if icount {
            cmd.args(["-icount", "shift=0"]);
        }
        cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd
            .spawn()
            .context("starting qemu-system-arm (apt-get install qemu-system-arm)")?;
        let stdin = child.stdin.take().context("qemu stdin")?;
        let mut stdout = child.stdout.take().context("qemu stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(Qemu {
            child,
            stdin,
            rx,
            pending: Vec::new(),
            defmt_log,
        })
    }

    /// Sends raw bytes to the UART.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stdin.write_all(bytes).context("writing to the UART")?;
        self.stdin.flush().context("flushing the UART")
    }

    fn fill(&mut self, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(bytes) => {
                self.pending.extend_from_slice(&bytes);
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => {
                bail!(
                    "timed out; UART output so far: {:?}",
                    String::from_utf8_lossy(&self.pending)
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                bail!(
                    "qemu exited ({status:?}); UART output: {:?}",
                    String::from_utf8_lossy(&self.pending)
                )
            }
        }
    }

    /// Reads one CRLF/LF-terminated line (without the terminator).
    pub fn read_line(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            self.fill(deadline)?;
        }
    }

    /// Reads until `needle` has appeared; returns everything up to and including it.
    pub fn read_until(&mut self, needle: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.windows(needle.len()).position(|w| w == needle) {
                return Ok(self.pending.drain(..i + needle.len()).collect());
            }
            self.fill(deadline)?;
        }
    }

    /// Reads one reply: lines until one starts with `OK` or `ERR`.
    pub fn read_reply(&mut self, timeout: Duration) -> Result<Reply> {
        let deadline = Instant::now() + timeout;
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline.saturating_duration_since(Instant::now()))?;
            if line.starts_with("OK") || line.starts_with("ERR") {
                return Ok(Reply { body, status: line });
            }
            body.push(line);
        }
    }

    /// Waits for the banner and switches echo and prompt off, for programmatic use.
    pub fn start_quiet(&mut self, timeout: Duration) -> Result<Vec<String>> {
        let banner = self
            .read_until(b"pith> ", timeout)
            .context("waiting for the first prompt")?;
        let text = String::from_utf8_lossy(&banner).to_string();
        let reply = self.command("echo off", timeout)?;
        if !reply.ok() {
            bail!("echo off answered {reply:?}");
        }
        Ok(text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect())
    }

    /// Sends one command line and reads its reply (echo must be off).
    pub fn command(&mut self, line: &str, timeout: Duration) -> Result<Reply> {
        self.send(format!("{line}\r").as_bytes())?;
        self.read_reply(timeout)
            .with_context(|| format!("reply to {line:?}"))
    }

    /// Sends one framed request and reads one framed response (framed mode must be on).
    pub fn request(&mut self, request: &Request<'_>, timeout: Duration) -> Result<Response> {
        let mut buf = [0u8; MAX_REQUEST_FRAME];
        let frame =
            encode_request(request, &mut buf).map_err(|e| anyhow::anyhow!("encoding: {e}"))?;
        let frame = frame.to_vec();
        self.send(&frame)?;
        self.read_response(timeout)
    }

    /// Reads one framed response.
    pub fn read_response(&mut self, timeout: Duration) -> Result<Response> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == 0) {
                let frame: Vec<u8> = self.pending.drain(..=i).collect();
                return decode_response(&frame);
            }
            self.fill(deadline)?;
        }
    }
}

/// Decodes one whole COBS frame (0x00 included) as a [`Response`].
pub fn decode_response(frame: &[u8]) -> Result<Response> {
    let mut acc: CobsAccumulator<MAX_RESPONSE_FRAME> = CobsAccumulator::new();
    match acc.feed::<Response>(frame) {
        FeedResult::Success { data, .. } => Ok(data),
        FeedResult::Consumed => bail!("incomplete frame"),
        FeedResult::OverFull(_) => bail!("frame longer than {MAX_RESPONSE_FRAME} bytes"),
        FeedResult::DeserError(_) => bail!("frame does not decode as a Response: {frame:02x?}"),
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.defmt_log);
    }
}
