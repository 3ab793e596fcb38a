//! Hostile console input from a seeded `rand` generator: text lines a serial line or a careless
//! program could send, and garbage frames for framed mode. The same seed gives the same bytes, so a
//! failure replays from the seed the test prints.
//!
//! Lines are filtered so none of them changes the console's mode (`frame`, `echo on|off`) or starts
//! a long `kcheck`: what each line should get back is then a plain reply that a host console can
//! predict ([`Predictor`]).

use pith_console::frame::{encode_request, Request, MAX_REQUEST_FRAME};
use pith_console::{parse, Board, Command, Console, Event, LineEditor, NoClock, Service};
use pith_runtime::Error;
use postcard::accumulator::{CobsAccumulator, FeedResult};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::memport::MemPort;

/// The seed CI uses, so a run replays exactly (the figures in README were measured with it).
pub const DEFAULT_SEED: u64 = 0x5eed;

/// The seed from `PITH_NOISE_SEED` (decimal, 0x-hex, or `random` for a fresh one from the OS),
/// else [`DEFAULT_SEED`]. A value that does not parse is refused rather than silently replaced.
pub fn seed_from_env() -> u64 {
    let Ok(s) = std::env::var("PITH_NOISE_SEED") else {
        return DEFAULT_SEED;
    };
    let parsed = match s.strip_prefix("0x") {
        _ if s == "random" => Some(rand::random()),
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    };
    match parsed {
        Some(seed) => seed,
        None => panic!("PITH_NOISE_SEED={s:?}: expected a decimal or 0x-hex u64, or `random`"),
    }
}

/// A count from the environment variable `var`, else `default`.
pub fn count_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Generates hostile lines; each returned chunk ends with a line end (and may hold several).
pub struct Lines {
    rng: StdRng,
}

const COMMANDS: &[&str] = &[
    "embed", "sim", "ask", "kb", "bench", "info", "help", "?", "kcheck", "echo", "frame",
];

const ESCAPES: &[&[u8]] = &[
    b"\x1b[A",
    b"\x1b[1;5C",
    b"\x1bOP",
    b"\x1b[200~",
    b"\x1b",
    b"\x1b[",
    b"\x1b[12",
    b"\x1b]0;title\x07",
];

const TEXTS: &[&str] = &[
    "a cat",
    "日本語の文章 العربية",
    "🙂🙃 \u{202e}reversed\u{200b}",
    "[CLS][SEP][UNK]",
    "|||",
    "a | b | c",
    "-1",
    "4294967296",
    "0x10",
    "%s%n%x",
    "\t\t",
];

impl Lines {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Lines {
        Lines {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The next chunk: one hostile line (or a few, when its random bytes hold line ends) and its
    /// line end. Never switches the console's mode nor runs `kcheck`.
    pub fn next_chunk(&mut self) -> Vec<u8> {
        loop {
            let chunk = self.candidate();
            if harmless(&chunk) {
                return chunk;
            }
        }
    }

    fn candidate(&mut self) -> Vec<u8> {
        let r = &mut self.rng;
        let mut line = Vec::new();
        match r.random_range(0..10) {
            // Random bytes of any value (line ends included).
            0 => line.extend((0..r.random_range(0..200)).map(|_| r.random::<u8>())),
            // Control characters among text.
            1 => {
                for _ in 0..r.random_range(1..20) {
                    if r.random_bool(0.5) {
                        line.push(r.random_range(0..0x20));
                    } else {
                        line.extend_from_slice(word(r).as_bytes());
                    }
                }
            }
            // ANSI escapes (whole, cut and unterminated) around a command.
            2 => {
                line.extend_from_slice(ESCAPES[r.random_range(0..ESCAPES.len())]);
                line.extend_from_slice(COMMANDS[r.random_range(0..COMMANDS.len())].as_bytes());
                line.extend_from_slice(ESCAPES[r.random_range(0..ESCAPES.len())]);
            }
            // A DEL/backspace storm: more erasing than typing, typing after it.
            3 => {
                line.extend_from_slice(TEXTS[r.random_range(0..TEXTS.len())].as_bytes());
                for _ in 0..r.random_range(1..300) {
                    line.push(if r.random_bool(0.5) { 0x7f } else { 0x08 });
                }
                line.extend_from_slice(COMMANDS[r.random_range(0..COMMANDS.len())].as_bytes());
            }
            // Longer than the line buffer.
            4 => {
                let n = r.random_range(513..3000);
                line.extend((0..n).map(|_| r.random_range(b' '..=b'~')));
            }
            // Not UTF-8: lone continuation bytes, overlong forms, cut sequences, 0xff.
            5 => {
                line.extend_from_slice(b"embed ");
                for _ in 0..r.random_range(1..30) {
                    line.push(r.random_range(0x80..=0xff));
                    if r.random_bool(0.5) {
                        line.push(r.random_range(b'a'..=b'z'));
                    }
                }
            }
            // Line-end mixes: empty lines, CR LF, LF CR, CR CR.
            6 => {
                for _ in 0..r.random_range(1..8) {
                    line.push(if r.random_bool(0.5) { b'\r' } else { b'\n' });
                }
                line.extend_from_slice(b"info");
            }
            // Valid commands with hostile arguments.
            _ => {
                line.extend_from_slice(COMMANDS[r.random_range(0..COMMANDS.len())].as_bytes());
                for _ in 0..r.random_range(0..4) {
                    line.push(b' ');
                    let arg = match r.random_range(0..3) {
                        0 => TEXTS[r.random_range(0..TEXTS.len())].to_string(),
                        1 => word(r),
                        _ => "x".repeat(r.random_range(1..520)),
                    };
                    line.extend_from_slice(arg.as_bytes());
                }
            }
        }
        line.extend_from_slice(match r.random_range(0..4) {
            0 => b"\r".as_slice(),
            1 => b"\n",
            2 => b"\r\n",
            _ => b"\n\r",
        });
        line
    }
}

fn word(r: &mut StdRng) -> String {
    (0..r.random_range(1..12))
        .map(|_| r.random_range('a'..='z'))
        .collect()
}

/// Whether every line in `chunk` leaves the console in text mode with echo off and answers fast.
fn harmless(chunk: &[u8]) -> bool {
    let mut ed = LineEditor::<{ pith_console::LINE_MAX }>::new();
    for &b in chunk {
        if ed.push(b) == Event::Line {
            if matches!(
                parse(ed.line()),
                Command::Frame | Command::Echo(_) | Command::KernelCheck(_)
            ) {
                return false;
            }
            ed.clear();
        }
    }
    true
}

/// The board a predicting host console claims to be (only `info`'s body shows it).
const HOST_BOARD: Board<'static> = Board::host("host", "host");

/// A host console without a model (like firmware built without a package), echo off: it tells
/// which status lines (`OK ...`/`ERR ...`) a device in the same state answers to the same bytes.
pub struct Predictor {
    console: Console<'static, NoClock>,
    port: MemPort,
}

impl Default for Predictor {
    fn default() -> Self {
        Self::new()
    }
}

impl Predictor {
    /// A predictor in the state `Link::start_quiet` leaves a device in (echo off).
    pub fn new() -> Predictor {
        let arena: &'static mut [i32] = Box::leak(vec![0i32; 64].into_boxed_slice());
        let service = Service::new(Err(Error::PackageTruncated), arena, HOST_BOARD, NoClock);
        let mut p = Predictor {
            console: Console::new(service),
            port: MemPort::new(0),
        };
        p.statuses(b"echo off\r");
        p
    }

    /// Feeds `bytes`; returns the status lines they produce, in order.
    pub fn statuses(&mut self, bytes: &[u8]) -> Vec<String> {
        let _ = self.console.feed(bytes, &mut self.port);
        let out = self.port.take_output();
        String::from_utf8_lossy(&out)
            .split("\r\n")
            .filter(|l| l.starts_with("OK") || l.starts_with("ERR"))
            .map(str::to_string)
            .collect()
    }
}

/// A framed-mode input that must not decode as a request, and what kind it is.
#[derive(Debug, Clone)]
pub struct BadFrame {
    /// Which of the kinds below.
    pub kind: &'static str,
    /// The bytes, ending with the frame delimiter 0x00.
    pub bytes: Vec<u8>,
}

/// Generates bad frames: garbage, oversize, truncated (cut COBS or cut postcard payloads).
pub struct Frames {
    rng: StdRng,
}

impl Frames {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Frames {
        Frames {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The next bad frame: one 0x00 at its end, and a device must answer it with one error.
    pub fn next_frame(&mut self) -> BadFrame {
        loop {
            let f = self.candidate();
            if decodes_to_error(&f.bytes) {
                return f;
            }
        }
    }

    fn candidate(&mut self) -> BadFrame {
        let r = &mut self.rng;
        let nonzero = |r: &mut StdRng| r.random_range(1..=255u8);
        let (kind, mut bytes) = match r.random_range(0..4) {
            0 => (
                "garbage",
                (0..r.random_range(1..200)).map(|_| nonzero(r)).collect(),
            ),
            1 => (
                "oversize",
                (0..r.random_range(MAX_REQUEST_FRAME..3 * MAX_REQUEST_FRAME))
                    .map(|_| nonzero(r))
                    .collect(),
            ),
            2 => {
                // A valid frame cut short: the delimiter comes early.
                let text: String = (0..r.random_range(1..100)).map(|_| 'q').collect();
                let mut frame = valid_frame(r, &text);
                frame.pop();
                frame.truncate(r.random_range(1..frame.len().max(2)));
                ("truncated COBS", frame)
            }
            _ => {
                // Well-formed COBS around a postcard payload that ends too soon (a string whose
                // length prefix promises more bytes than follow).
                let payload = [0u8, r.random_range(50..120), b'a', b'b'];
                let mut buf = [0u8; 16];
                let n = cobs_encode(&payload, &mut buf);
                ("truncated postcard", buf[..n].to_vec())
            }
        };
        bytes.push(0);
        BadFrame { kind, bytes }
    }
}

/// A valid request frame (delimiter included): an `Embed` of `text` or an `Info`.
fn valid_frame(r: &mut StdRng, text: &str) -> Vec<u8> {
    let req = if r.random_bool(0.5) {
        Request::Embed { text }
    } else {
        Request::Info
    };
    let mut buf = [0u8; MAX_REQUEST_FRAME];
    encode_request(&req, &mut buf)
        .map(|f| f.to_vec())
        .unwrap_or_default()
}

/// COBS-encodes `data` (no delimiter) into `out`; returns the length.
fn cobs_encode(data: &[u8], out: &mut [u8]) -> usize {
    let mut code_at = 0;
    let mut n = 1;
    let mut code = 1u8;
    for &b in data {
        if b == 0 {
            out[code_at] = code;
            code_at = n;
            n += 1;
            code = 1;
        } else {
            out[n] = b;
            n += 1;
            code += 1;
        }
    }
    out[code_at] = code;
    n
}

/// Whether the device's accumulator would answer `frame` with exactly one error (and no request).
fn decodes_to_error(frame: &[u8]) -> bool {
    let mut acc: CobsAccumulator<MAX_REQUEST_FRAME> = CobsAccumulator::new();
    let body = &frame[..frame.len() - 1];
    if body.is_empty() || body.contains(&0) {
        return false;
    }
    match acc.feed_ref::<Request<'_>>(frame) {
        FeedResult::DeserError(_) | FeedResult::OverFull(_) => true,
        FeedResult::Consumed | FeedResult::Success { .. } => false,
    }
}
