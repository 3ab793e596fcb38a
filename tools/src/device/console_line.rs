//! What `pith console` sends for one line of a script, so that every sent line gets exactly one
//! reply and replies stay in step with the input whatever its bytes. The device's line editor
//! (console/src/line.rs) eats some bytes (ESC sequences, backspace and DEL, a CR that
//! ends the line early) and answers nothing for a line that ends up blank; the client therefore
//! mirrors it: lines with control bytes are refused here, blank ones skipped, and the rest parsed
//! with the device's own parser.

use pith_console::{parse, Command};

/// What to do with one input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing for the device (blank): it would print no reply.
    Skip,
    /// Not sent; the reason is shown as this line's `ERR` status.
    Refuse(String),
    /// Send these bytes (the line without its terminator); the device answers once.
    Send(Vec<u8>),
}

/// Plans one input line (its `\n` already removed; a CRLF file's trailing `\r` is dropped here).
pub fn plan(line: &[u8]) -> Plan {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(&b) = line
        .iter()
        .find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Plan::Refuse(format!(
            "control byte 0x{b:02x} in line (not sent: the device's line editor would act on it)"
        ));
    }
    // The device turns a tab into a space before parsing.
    let Ok(text) = std::str::from_utf8(line) else {
        // Invalid UTF-8 reaches the device, which answers `ERR 1 invalid UTF-8`.
        return Plan::Send(line.to_vec());
    };
    let text = text.replace('\t', " ");
    match parse(&text) {
        Command::Empty => Plan::Skip,
        Command::Frame | Command::Echo(_) => Plan::Refuse(format!(
            "`{}` is not available from pith console (it needs text mode with echo off)",
            text.trim()
        )),
        _ => Plan::Send(line.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_refused_and_blank_lines_skipped() {
        assert!(matches!(plan(b"info\rembed one two"), Plan::Refuse(_)));
        assert!(matches!(plan(b"\x1b[A"), Plan::Refuse(_)));
        assert!(matches!(plan(b"x\x7f"), Plan::Refuse(_)));
        assert_eq!(plan(b"  \t "), Plan::Skip);
        assert_eq!(plan("\u{a0}".as_bytes()), Plan::Skip);
        assert_eq!(plan(b"info\r"), Plan::Send(b"info".to_vec()));
        assert_eq!(plan(b"\xff\xfe"), Plan::Send(b"\xff\xfe".to_vec()));
        assert!(matches!(plan(b"frame"), Plan::Refuse(_)));
        assert!(matches!(plan(b"frame\tnow"), Plan::Refuse(_)));
        assert!(matches!(plan(b"echo on"), Plan::Refuse(_)));
        assert_eq!(plan(b"embed\tcats"), Plan::Send(b"embed\tcats".to_vec()));
    }
}
