//! Line editor: turns a raw byte stream (a person at a terminal or a program) into checked lines.
//!
//! It never fails and never grows: a line longer than the buffer, a control byte or invalid UTF-8
//! marks the line bad; the rest of it is discarded up to the line end, then the line is reported as
//! [`Event::Rejected`] and the editor starts clean.

/// Why a line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// More bytes than the buffer holds.
    TooLong,
    /// A control byte (NUL, ESC outside a sequence, ...) inside the line.
    ControlByte(u8),
    /// Not valid UTF-8.
    InvalidUtf8,
}

/// What one input byte did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing visible happened (byte swallowed or stored while echo is off).
    None,
    /// Store and echo this byte.
    Echo(u8),
    /// Erase one character on the terminal (backspace, space, backspace).
    Erase,
    /// A line ended; read it with [`LineEditor::line`], then call [`LineEditor::clear`].
    Line,
    /// A line ended but was bad; the editor is already clear.
    Rejected(Reject),
}

/// Where the editor is inside an ANSI escape sequence (arrow keys and the like are swallowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Started,
    /// After `ESC [` or `ESC O`, until a final byte 0x40..=0x7E.
    Body,
}

/// A fixed-capacity line buffer with backspace handling.
pub struct LineEditor<const N: usize> {
    buf: heapless::Vec<u8, N>,
    bad: Option<Reject>,
    escape: Escape,
    /// The previous byte was CR: a following LF belongs to the same line end.
    after_cr: bool,
}

impl<const N: usize> Default for LineEditor<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineEditor<N> {
    /// An empty editor.
    pub const fn new() -> Self {
        LineEditor {
            buf: heapless::Vec::new(),
            bad: None,
            escape: Escape::None,
            after_cr: false,
        }
    }

    /// Feeds one byte.
    pub fn push(&mut self, byte: u8) -> Event {
        let after_cr = core::mem::replace(&mut self.after_cr, byte == b'\r');
        // A line end always ends the line, even inside a half-received escape sequence.
        if byte == b'\r' || byte == b'\n' {
            self.escape = Escape::None;
        }
        match self.escape {
            Escape::Started => {
                self.escape = if byte == b'[' || byte == b'O' {
                    Escape::Body
                } else {
                    Escape::None
                };
                return Event::None;
            }
            Escape::Body => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::None;
                }
                return Event::None;
            }
            Escape::None => {}
        }
        match byte {
            b'\n' if after_cr => Event::None,
            b'\r' | b'\n' => self.end_line(),
            0x08 | 0x7f => {
                if self.bad.is_some() || self.buf.is_empty() {
                    return Event::None;
                }
                // Drop a whole UTF-8 character: continuation bytes, then its lead byte.
                while let Some(b) = self.buf.pop() {
                    if b & 0xc0 != 0x80 {
                        break;
                    }
                }
                Event::Erase
            }
            0x1b => {
                self.escape = Escape::Started;
                Event::None
            }
            b'\t' => self.store(b' '),
            b if b < 0x20 => {
                self.mark(Reject::ControlByte(b));
                Event::None
            }
            b => self.store(b),
        }
    }

    fn store(&mut self, byte: u8) -> Event {
        if self.bad.is_some() {
            return Event::None;
        }
        match self.buf.push(byte) {
            Ok(()) => Event::Echo(byte),
            Err(_) => {
                self.mark(Reject::TooLong);
                Event::None
            }
        }
    }

    fn mark(&mut self, why: Reject) {
        if self.bad.is_none() {
            self.bad = Some(why);
            self.buf.clear();
        }
    }

    fn end_line(&mut self) -> Event {
        self.escape = Escape::None;
        if let Some(why) = self.bad.take() {
            self.buf.clear();
            return Event::Rejected(why);
        }
        if core::str::from_utf8(&self.buf).is_err() {
            self.buf.clear();
            return Event::Rejected(Reject::InvalidUtf8);
        }
        Event::Line
    }

    /// The finished line (valid UTF-8, no control bytes) after [`Event::Line`]; empty otherwise.
    pub fn line(&self) -> &str {
        core::str::from_utf8(&self.buf).unwrap_or("")
    }

    /// Forgets the current line.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.bad = None;
        self.escape = Escape::None;
    }

    /// Longest line accepted, in bytes.
    pub const fn capacity(&self) -> usize {
        N
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed<const N: usize>(ed: &mut LineEditor<N>, bytes: &[u8]) -> Vec<Event> {
        bytes
            .iter()
            .map(|&b| ed.push(b))
            .filter(|e| *e != Event::None)
            .collect()
    }

    #[test]
    fn backspace_removes_a_whole_utf8_character() {
        let mut ed = LineEditor::<16>::new();
        feed(&mut ed, "ab\u{e9}".as_bytes());
        assert_eq!(ed.push(0x7f), Event::Erase);
        assert_eq!(ed.push(b'\r'), Event::Line);
        assert_eq!(ed.line(), "ab");
    }

    #[test]
    fn crlf_is_one_line_end_and_arrow_keys_are_swallowed() {
        let mut ed = LineEditor::<16>::new();
        let events = feed(&mut ed, b"hi\x1b[Ax\r\n");
        assert_eq!(events.last(), Some(&Event::Line));
        assert_eq!(ed.line(), "hix");
        ed.clear();
        assert_eq!(feed(&mut ed, b"\n"), vec![Event::Line]);
    }

    #[test]
    fn overlong_line_is_rejected_then_the_next_line_works() {
        let mut ed = LineEditor::<8>::new();
        let events = feed(&mut ed, b"0123456789abc\n");
        assert_eq!(events.last(), Some(&Event::Rejected(Reject::TooLong)));
        assert_eq!(feed(&mut ed, b"ok\n").last(), Some(&Event::Line));
        assert_eq!(ed.line(), "ok");
    }

    #[test]
    fn nul_and_invalid_utf8_are_rejected() {
        let mut ed = LineEditor::<8>::new();
        assert_eq!(
            feed(&mut ed, b"a\0b\n").last(),
            Some(&Event::Rejected(Reject::ControlByte(0)))
        );
        assert_eq!(
            feed(&mut ed, b"\xff\xfe\n").last(),
            Some(&Event::Rejected(Reject::InvalidUtf8))
        );
    }
}
