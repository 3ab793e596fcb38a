//! Text replies. Every reply is zero or more `key value` lines, then one line starting `OK` or
//! `ERR <code> <message>`; lines end with CRLF so raw terminals show them right.

use core::fmt;

use embedded_io::{Write, WriteFmtError};

use crate::digest::fnv1a;
use crate::line::Reject;
use crate::service::{Board, Clock, ErrCode, Failure, Service};

/// Writes formatted text; a formatting error cannot happen with our `Display` impls, so only the
/// port's error is passed on.
pub(crate) fn put<W: Write>(w: &mut W, args: fmt::Arguments<'_>) -> Result<(), W::Error> {
    match w.write_fmt(args) {
        Err(WriteFmtError::Other(e)) => Err(e),
        _ => Ok(()),
    }
}

/// `OK`
pub fn ok<W: Write>(w: &mut W) -> Result<(), W::Error> {
    w.write_all(b"OK\r\n")
}

/// `ERR <code> <message>`
pub fn err<W: Write>(w: &mut W, code: ErrCode, message: impl fmt::Display) -> Result<(), W::Error> {
    put(w, format_args!("ERR {} {}\r\n", code as u8, message))
}

/// The reply for a failed command.
pub fn failure<W: Write>(w: &mut W, f: &Failure) -> Result<(), W::Error> {
    err(w, f.code, f.cause)
}

/// The reply for a rejected input line.
pub fn rejected<W: Write>(w: &mut W, why: Reject, max: usize) -> Result<(), W::Error> {
    match why {
        Reject::TooLong => err(
            w,
            ErrCode::BadInput,
            format_args!("line too long (max {max} bytes)"),
        ),
        Reject::ControlByte(b) => err(
            w,
            ErrCode::BadInput,
            format_args!("control byte 0x{b:02x} in line"),
        ),
        Reject::InvalidUtf8 => err(w, ErrCode::BadInput, "invalid UTF-8"),
    }
}

/// `embed`: token count, digest and the first 8 values.
pub fn embedding<W: Write>(w: &mut W, tokens: usize, values: &[i8]) -> Result<(), W::Error> {
    put(
        w,
        format_args!(
            "tokens {tokens}\r\ndim {}\r\nfnv1a {:08x}\r\nhead",
            values.len(),
            fnv1a(values)
        ),
    )?;
    for v in values.iter().take(8) {
        put(w, format_args!(" {v}"))?;
    }
    w.write_all(b"\r\n")?;
    ok(w)
}

/// `sim`: the cosine and both token counts.
pub fn similarity<W: Write>(w: &mut W, cosine: f32, ta: usize, tb: usize) -> Result<(), W::Error> {
    put(
        w,
        format_args!("cosine {cosine:.4}\r\ntokens {ta} {tb}\r\n"),
    )?;
    ok(w)
}

/// `ask`: the entry's id, score and answer, or the abstention with the best score.
pub fn answer<W: Write>(w: &mut W, a: &crate::Answer<'_>) -> Result<(), W::Error> {
    if a.confident {
        put(
            w,
            format_args!(
                "id {}\r\nscore {:.4}\r\nanswer {}\r\n",
                a.id, a.score, a.text
            ),
        )?;
    } else {
        put(
            w,
            format_args!(
                "score {:.4}\r\nanswer none (no confident answer)\r\n",
                a.score
            ),
        )?;
    }
    ok(w)
}

/// `chat`: the answer's score and sentence, the prediction's digest and the gate's margin
/// (`pith chat` on the host prints the same four lines).
pub fn chat<W: Write>(w: &mut W, a: &crate::chat::ChatAnswer<'_>) -> Result<(), W::Error> {
    put(w, format_args!("{}\r\n", ChatLines(a)))?;
    ok(w)
}

/// The lines of a `chat` answer, `score S`, `answer TEXT`, `prediction FNV1A` and `margin M`
/// (followed by ` refined` when the answer was refined), without the final line break.
pub struct ChatLines<'a, 'k>(pub &'a crate::chat::ChatAnswer<'k>);

impl core::fmt::Display for ChatLines<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "score {:.4}\r\nanswer {}\r\nprediction {:08x}\r\nmargin {:.4}{}",
            self.0.score,
            self.0.text,
            self.0.prediction,
            self.0.margin,
            if self.0.refined { " refined" } else { "" }
        )
    }
}

/// `kb`: what the linked bank holds.
pub fn bank<W: Write>(w: &mut W, b: &pith_runtime::kb::Bank<'_>) -> Result<(), W::Error> {
    put(
        w,
        format_args!(
            "entries {}\r\nbytes {}\r\ndim {}\r\nthreshold {:.4}\r\n",
            b.len(),
            b.bytes().len(),
            b.dim(),
            pith_runtime::kb::score_to_cosine(b.threshold())
        ),
    )?;
    ok(w)
}

/// `bench`: tokens and virtual nanoseconds (instructions under `-icount shift=0`), then one line
/// per stage: its name, its nanoseconds and its multiply-accumulates.
pub fn bench<W: Write>(w: &mut W, b: &crate::service::Bench) -> Result<(), W::Error> {
    let per_token = if b.tokens == 0 {
        0
    } else {
        b.ns / b.tokens as u64
    };
    put(
        w,
        format_args!(
            "tokens {}\r\nns {}\r\nns_per_token {per_token}\r\n",
            b.tokens, b.ns
        ),
    )?;
    for s in pith_runtime::Stage::ALL {
        let i = s as usize;
        put(
            w,
            format_args!("{} {} macs {}\r\n", s.name(), b.stages[i], b.macs[i]),
        )?;
    }
    ok(w)
}

/// `kcheck`: shapes run, values compared, mismatches and the first one (then `OK` only when
/// there were none).
pub fn kernel_check<W: Write>(
    w: &mut W,
    r: &pith_runtime::kernels::check::Report,
) -> Result<(), W::Error> {
    put(
        w,
        format_args!(
            "cases {}\r\nvalues {}\r\nmismatches {}\r\n",
            r.cases, r.values, r.mismatches
        ),
    )?;
    match r.first {
        None => ok(w),
        Some(m) => {
            put(
                w,
                format_args!(
                    "first k {} tokens {} outs {} t {} n {} got {} want {}\r\n",
                    m.k, m.tokens, m.outs, m.t, m.n, m.got, m.want
                ),
            )?;
            err(w, ErrCode::Model, "kernel mismatch")
        }
    }
}

/// `info`: model, board and memory.
pub fn info<W: Write, C: Clock>(w: &mut W, s: &Service<'_, C>) -> Result<(), W::Error> {
    match s.model() {
        Ok(m) => {
            let h = m.header();
            let c = &h.model;
            put(
                w,
                format_args!(
                    "model {}\r\ndim {}\r\nlayers {}\r\n",
                    h.name,
                    m.dim(),
                    c.layers
                ),
            )?;
            put(
                w,
                format_args!(
                    "vocab {}\r\nmax_tokens {}\r\n",
                    c.vocab_size,
                    s.max_tokens()
                ),
            )?;
        }
        Err(e) => put(w, format_args!("model none ({e})\r\n"))?,
    }
    board(w, s.board())?;
    ok(w)
}

fn board<W: Write>(w: &mut W, b: &Board<'_>) -> Result<(), W::Error> {
    put(w, format_args!("board {} ({})\r\n", b.name, b.cpu))?;
    put(
        w,
        format_args!("flash {} of {} bytes\r\n", b.flash_used, b.flash_size),
    )?;
    put(
        w,
        format_args!("ram {} of {} bytes\r\n", b.ram_used, b.ram_size),
    )?;
    if let Some(peak) = b.stack_peak {
        put(w, format_args!("stack {} bytes peak\r\n", peak()))?;
    }
    put(
        w,
        format_args!(
            "package {} bytes\r\narena {} bytes\r\n",
            b.package_bytes, b.arena_bytes
        ),
    )
}

/// `help`
pub fn help<W: Write>(w: &mut W) -> Result<(), W::Error> {
    for line in crate::command::HELP {
        put(w, format_args!("{line}\r\n"))?;
    }
    ok(w)
}

/// The boot banner.
pub fn banner<W: Write, C: Clock>(w: &mut W, s: &Service<'_, C>) -> Result<(), W::Error> {
    let b = s.board();
    put(
        w,
        format_args!(
            "\r\npith {} console on {} ({})\r\n",
            env!("CARGO_PKG_VERSION"),
            b.name,
            b.cpu
        ),
    )?;
    match s.model() {
        Ok(m) => put(
            w,
            format_args!("model {} ({} dims)\r\n", m.header().name, m.dim()),
        )?,
        Err(e) => put(w, format_args!("model none ({e})\r\n"))?,
    }
    w.write_all(b"type help for commands\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_line_has_code_and_message() {
        let mut buf = [0u8; 64];
        let mut out: &mut [u8] = &mut buf;
        err(&mut out, ErrCode::NoBank, "no knowledge bank").unwrap();
        let left = out.len();
        assert_eq!(&buf[..64 - left], b"ERR 3 no knowledge bank\r\n");
    }
}
