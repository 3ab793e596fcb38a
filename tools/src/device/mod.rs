//! Talking to the firmware's console over a byte stream: a real board's serial device or QEMU's
//! stdio. Text replies (body lines, then an `OK`/`ERR` line) and framed responses (COBS + postcard).
//! `pith console`, the QEMU tests and the size report all read replies through here.

pub mod console_line;
pub mod firmware;
pub mod image;
pub mod uf2;

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pith_boards::Board;
use pith_console::frame::{
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

/// Control bytes [`Link::resync`] uses as markers, in turn (the device answers each with
/// `ERR 1 control byte 0x.. in line`).
const RESYNC_MARKERS: [u8; 8] = [0x0e, 0x0f, 0x10, 0x11, 0x12, 0x14, 0x16, 0x17];

/// How long one resync marker waits for its reply before the next is sent.
const RESYNC_TRY: Duration = Duration::from_secs(2);

/// A console connection: bytes from the device arrive through a reader thread (so every wait can
/// time out), bytes to it go straight to the writer.
pub struct Link {
    rx: Receiver<Vec<u8>>,
    tx: Box<dyn Write + Send>,
    pending: Vec<u8>,
    /// Resync markers sent so far (picks the next marker).
    resyncs: usize,
}

impl Link {
    /// Connects over `from` (device output) and `to` (device input).
    pub fn new(mut from: impl Read + Send + 'static, to: impl Write + Send + 'static) -> Link {
        let (send, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if send.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    // A serial port's read times out when the device is quiet: keep listening.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::TimedOut | ErrorKind::Interrupted | ErrorKind::WouldBlock
                        ) => {}
                    Err(_) => break,
                }
            }
        });
        Link {
            rx,
            tx: Box::new(to),
            pending: Vec::new(),
            resyncs: 0,
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
        self.command_bytes(line.as_bytes(), timeout)
    }

    /// [`Link::command`] for a line that need not be UTF-8 (the device answers ERR for that).
    /// The line must hold no control bytes: see [`crate::device::console_line::plan`].
    pub fn command_bytes(&mut self, line: &[u8], timeout: Duration) -> Result<Reply> {
        let mut bytes = line.to_vec();
        bytes.push(b'\r');
        self.send(&bytes)?;
        self.read_reply(timeout)
            .with_context(|| format!("reply to {:?}", String::from_utf8_lossy(line)))
    }

    /// Brings replies back in step (after a reply went missing, or with a device whose earlier
    /// output is unknown): sends a line that the device rejects with a reply naming a marker byte
    /// (a control byte, which its line editor reports instead of eating) and drops everything up
    /// to that reply, late replies included. A marker sent before the UART listens is lost, so
    /// each attempt that gets no answer within [`RESYNC_TRY`] sends the next marker; the device
    /// answers in order, so the newest marker's reply comes after every earlier one.
    pub fn resync(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let marker = RESYNC_MARKERS[self.resyncs % RESYNC_MARKERS.len()];
            self.resyncs += 1;
            let want = format!("ERR 1 control byte 0x{marker:02x} in line");
            self.send(&[marker, b'\r'])?;
            let try_until = (Instant::now() + RESYNC_TRY).min(deadline);
            let found = loop {
                let left = try_until.saturating_duration_since(Instant::now());
                match self.read_reply(left) {
                    Ok(reply) if reply.status == want => break true,
                    Ok(_) => {}
                    Err(_) if Instant::now() < deadline => break false,
                    Err(e) => return Err(e.context("resynchronizing with the device")),
                }
            };
            if found {
                return Ok(());
            }
        }
    }

    /// Switches echo and prompt off, so replies are exactly body lines plus the status line.
    /// Whatever the device printed before (the banner) is skipped with the command's own reply.
    pub fn echo_off(&mut self, timeout: Duration) -> Result<()> {
        // Whatever came before (a banner, replies to noise a serial line picked up) is dropped
        // with the marker's reply, so the next reply read is echo off's.
        self.resync(timeout).context("waiting for the console")?;
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
pub fn qemu_command(board: &Board, elf: &Path, icount: bool) -> Result<Command> {
    qemu_command_serial(board, elf, icount, "stdio")
}

/// [`qemu_command`] with the UART on QEMU's `-serial` backend `serial` (`stdio`, `pty`).
fn qemu_command_serial(board: &Board, elf: &Path, icount: bool, serial: &str) -> Result<Command> {
    let Some(machine) = board.run.qemu else {
        bail!(
            "{} has no QEMU machine (boards/src/lib.rs): it is built and size-checked only",
            board.name
        );
    };
    let mut cmd = Command::new("qemu-system-arm");
    cmd.args(["-machine", machine, "-kernel"]).arg(elf);
    if icount {
        cmd.args(["-icount", "shift=0"]);
    }
    cmd.args(["-display", "none", "-monitor", "none", "-serial", serial])
        .args(["-semihosting-config", "enable=on,target=native"]);
    Ok(cmd)
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
        let mut child = qemu_command(board, elf, icount)?
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

impl Qemu {
    /// `e`, the failure of an exchange with the device, with what became of the device: whether
    /// QEMU exited and how, QEMU's own complaint if it made one, and the log to read.
    pub fn explain(&mut self, e: anyhow::Error, board: &str) -> anyhow::Error {
        // A device that just died may still be going down: give it a moment to be reaped.
        let deadline = Instant::now() + Duration::from_millis(500);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break None,
            }
        };
        let log = self.defmt_log.display();
        let what = match status {
            Some(s) => format!("the simulated {board} stopped: qemu exited with {s}"),
            None => format!("the simulated {board} stopped answering"),
        };
        let said = qemu_complaints(&self.defmt_log);
        e.context(format!("{what}{said}; its log is {log}"))
    }
}

/// QEMU's own error lines in the log (its stderr, which also carries defmt's binary frames), as
/// `: LINE; LINE`, or nothing.
fn qemu_complaints(log: &Path) -> String {
    let Ok(bytes) = std::fs::read(log) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(4096)..]);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("qemu-system-arm:"))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(" ({})", lines.join("; "))
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

/// QEMU with the firmware's UART on a pseudo-terminal (`-serial pty`): the host side of a real
/// serial device, for `pith console --port`. Killed on drop.
pub struct QemuPty {
    child: Child,
    /// The pty's device path (`/dev/pts/N`).
    pub path: PathBuf,
}

impl QemuPty {
    /// Boots `elf` on `board` and waits for QEMU to name its pty (on its stdout); QEMU's stderr
    /// (the semihosting defmt frames) goes to `log`.
    pub fn boot(board: &Board, elf: &Path, log: PathBuf) -> Result<QemuPty> {
        let log =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = qemu_command_serial(board, elf, false, "pty")?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting qemu-system-arm (apt-get install qemu-system-arm)")?;
        let mut stdout = child.stdout.take().context("qemu stdout")?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        let path = loop {
            let n = stdout.read(&mut buf).context("reading qemu's stdout")?;
            if n == 0 {
                let _ = child.kill();
                bail!(
                    "qemu exited before naming its pty: {}",
                    String::from_utf8_lossy(&seen)
                );
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            // "char device redirected to /dev/pts/3 (label serial0)"
            if let Some(rest) = text.split("redirected to ").nth(1) {
                if let Some((dev, _)) = rest.split_once(' ') {
                    break PathBuf::from(dev);
                }
            }
        };
        // Keep draining stdout so QEMU never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Ok(QemuPty { child, path })
    }
}

impl Drop for QemuPty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
