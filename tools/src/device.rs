//! Talking to the firmware's console over a byte stream: a real board's serial device or QEMU's
//! stdio. Text replies (body lines, then an `OK`/`ERR` line) and framed responses (COBS + postcard).
//! `pith console`, the QEMU tests and the size report all read replies through here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pith_boards::Board;
use pith_runtime::frame::{
    encode_request, Request, Response, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME,
};
use postcard::accumulator::{CobsAccumulator, FeedResult};

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

/// A console connection: bytes from the device arrive through a reader thread (so every wait can
/// time out), bytes to it go straight to the writer.
pub struct Link {
    rx: Receiver<Vec<u8>>,
    tx: Box<dyn Write + Send>,
    pending: Vec<u8>,
}

impl Link {
    /// Connects over `from` (device output) and `to` (device input).
    pub fn new(mut from: impl Read + Send + 'static, to: impl Write + Send + 'static) -> Link {
        let (send, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
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

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.tx.write_all(bytes).context("writing to the device")?;
        self.tx.flush().context("flushing the device")
    }

    fn fill(&mut self, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(bytes) => {
                self.pending.extend_from_slice(&bytes);
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => bail!(
                "no reply in time; device output so far: {:?}",
                String::from_utf8_lossy(&self.pending)
            ),
            Err(RecvTimeoutError::Disconnected) => bail!(
                "the device went away; its output: {:?}",
                String::from_utf8_lossy(&self.pending)
            ),
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

    /// Reads one reply: lines until one starts with `OK` or `ERR`. Before `echo off` takes effect
    /// the prompt may precede the status on its line; it is dropped there.
    pub fn read_reply(&mut self, timeout: Duration) -> Result<Reply> {
        let deadline = Instant::now() + timeout;
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline.saturating_duration_since(Instant::now()))?;
            let status = line.trim_start_matches("pith> ");
            if status.starts_with("OK") || status.starts_with("ERR") {
                return Ok(Reply {
                    body,
                    status: status.to_string(),
                });
            }
            body.push(line);
        }
    }

    /// Sends one command line and reads its reply (echo must be off).
    pub fn command(&mut self, line: &str, timeout: Duration) -> Result<Reply> {
        self.send(format!("{line}\r").as_bytes())?;
        self.read_reply(timeout)
            .with_context(|| format!("reply to {line:?}"))
    }

    /// Switches echo and prompt off, so replies are exactly body lines plus the status line.
    /// Whatever the device printed before (the banner) is skipped with the command's own reply.
    pub fn echo_off(&mut self, timeout: Duration) -> Result<()> {
        let reply = self
            .command("echo off", timeout)
            .context("waiting for the console")?;
        if !reply.ok() {
            bail!("`echo off` answered {}", reply.status);
        }
        Ok(())
    }

    /// Waits for the banner (up to the first prompt), then [`Link::echo_off`]; returns the banner.
    pub fn start_quiet(&mut self, timeout: Duration) -> Result<Vec<String>> {
        let banner = self
            .read_until(b"pith> ", timeout)
            .context("waiting for the first prompt")?;
        self.echo_off(timeout)?;
        Ok(String::from_utf8_lossy(&banner)
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect())
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

/// The QEMU command line that boots `elf` on `board` with the UART on stdio; `icount` makes
/// instruction counts exact (`-icount shift=0`: one instruction = one virtual ns). defmt frames
/// arrive on QEMU's stderr (semihosting): the caller sends stderr to a log.
pub fn qemu_command(board: &Board, elf: &Path, icount: bool) -> Command {
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args(["-machine", board.name, "-kernel"]).arg(elf);
    if icount {
        cmd.args(["-icount", "shift=0"]);
    }
    cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .args(["-semihosting-config", "enable=on,target=native"]);
    cmd
}

/// A running QEMU with the firmware, its console a [`Link`]; killed on drop.
pub struct Qemu {
    child: Child,
    link: Link,
    /// Where defmt's frames go.
    pub defmt_log: PathBuf,
    keep_log: bool,
}

impl Qemu {
    /// Boots `elf` on `board`; defmt's log goes to `<elf>.<pid>.defmt`, removed on drop.
    pub fn boot(board: &Board, elf: &Path, icount: bool) -> Result<Qemu> {
        let defmt_log = elf.with_extension(format!("{}.defmt", std::process::id()));
        Qemu::boot_logging(board, elf, icount, defmt_log, false)
    }

    /// Boots `elf` on `board` with defmt's log at `defmt_log`, kept when `keep_log`.
    pub fn boot_logging(
        board: &Board,
        elf: &Path,
        icount: bool,
        defmt_log: PathBuf,
        keep_log: bool,
    ) -> Result<Qemu> {
        let log = std::fs::File::create(&defmt_log)
            .with_context(|| format!("creating {}", defmt_log.display()))?;
        let mut child = qemu_command(board, elf, icount)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting qemu-system-arm (apt-get install qemu-system-arm)")?;
        let stdin = child.stdin.take().context("qemu stdin")?;
        let stdout = child.stdout.take().context("qemu stdout")?;
        Ok(Qemu {
            child,
            link: Link::new(stdout, stdin),
            defmt_log,
            keep_log,
        })
    }
}

impl std::ops::Deref for Qemu {
    type Target = Link;
    fn deref(&self) -> &Link {
        &self.link
    }
}

impl std::ops::DerefMut for Qemu {
    fn deref_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_log {
            let _ = std::fs::remove_file(&self.defmt_log);
        }
    }
}
