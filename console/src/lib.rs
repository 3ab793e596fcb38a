//! The serial console, written once against `embedded_io::{Read, Write}`: the firmware runs it on a
//! UART, host tests on an in-memory port. No heap, no panics; bad input gets `ERR` and the console
//! keeps serving.
//!
//! Text mode: a banner, then `pith> ` prompts; one command per line, each reply ends with a line
//! starting `OK` or `ERR <code> <message>` (blank lines get no reply). `echo off` turns off echo and
//! the prompt for programs. `frame` switches to framed binary mode ([`frame`]) until `Exit`.
//!
//! An application protocol above `pith-runtime`: the runtime embeds, this crate talks. Firmware and
//! the host tools use the same code, so what a test sees on the host is what a board answers.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod chat;
pub mod command;
mod digest;
pub mod frame;
pub mod framed;
pub mod line;
pub mod reply;
pub mod service;

use embedded_io::{Read, Write};

pub use command::{parse, Command};
pub use digest::fnv1a;
pub use framed::After;
pub use line::{Event, LineEditor, Reject};
pub use service::{
    Answer, Board, Cause, Clock, ErrCode, Failure, NoClock, Service, Slot, Unavailable,
    BENCH_SENTENCE,
};

/// Longest command line in bytes; longer lines get `ERR 1`.
pub const LINE_MAX: usize = 512;

const PROMPT: &[u8] = b"pith> ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Framed,
}

/// The console: a line editor and a framed-mode decoder in front of a [`Service`].
pub struct Console<'m, C: Clock> {
    service: Service<'m, C>,
    editor: LineEditor<LINE_MAX>,
    framed: framed::Framed,
    echo: bool,
    mode: Mode,
}

impl<'m, C: Clock> Console<'m, C> {
    /// A console in text mode with echo on.
    pub fn new(service: Service<'m, C>) -> Self {
        Console {
            service,
            editor: LineEditor::new(),
            framed: framed::Framed::new(),
            echo: true,
            mode: Mode::Text,
        }
    }

    /// The service behind the console.
    pub fn service(&self) -> &Service<'m, C> {
        &self.service
    }

    /// The service behind the console, to attach a bank or `chat` after building the console in
    /// place (see [`Service::attach_bank`]).
    pub fn service_mut(&mut self) -> &mut Service<'m, C> {
        &mut self.service
    }

    /// Prints the banner and the first prompt.
    pub fn start<W: Write>(&mut self, w: &mut W) -> Result<(), W::Error> {
        reply::banner(w, &self.service)?;
        self.prompt(w)
    }

    /// Runs the console until the port reports end of input (`read` returning 0) or an error.
    /// On a UART `read` blocks, so this serves forever.
    pub fn serve<P: Read + Write>(&mut self, port: &mut P) -> Result<(), P::Error> {
        self.start(port)?;
        let mut buf = [0u8; 64];
        loop {
            let n = port.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.feed(buf.get(..n).unwrap_or(&[]), port)?;
        }
    }

    /// Processes input bytes, writing replies to `w`.
    pub fn feed<W: Write>(&mut self, mut input: &[u8], w: &mut W) -> Result<(), W::Error> {
        while !input.is_empty() {
            input = match self.mode {
                Mode::Text => self.feed_text(input, w)?,
                Mode::Framed => {
                    let (rest, after) = self.framed.feed(input, &mut self.service, w)?;
                    if after == After::Leave {
                        self.mode = Mode::Text;
                        self.editor.clear();
                        self.prompt(w)?;
                    }
                    rest
                }
            };
        }
        w.flush()
    }

    /// Feeds text bytes until the input ends or the mode changes; returns the unconsumed rest.
    fn feed_text<'i, W: Write>(
        &mut self,
        input: &'i [u8],
        w: &mut W,
    ) -> Result<&'i [u8], W::Error> {
        for (i, &byte) in input.iter().enumerate() {
            match self.editor.push(byte) {
                Event::None => {}
                Event::Echo(b) => {
                    if self.echo {
                        w.write_all(&[b])?;
                    }
                }
                Event::Erase => {
                    if self.echo {
                        w.write_all(b"\x08 \x08")?;
                    }
                }
                Event::Rejected(why) => {
                    self.newline(w)?;
                    reply::rejected(w, why, LINE_MAX)?;
                    self.prompt(w)?;
                }
                Event::Line => {
                    self.newline(w)?;
                    self.run_line(w)?;
                    self.editor.clear();
                    if self.mode == Mode::Framed {
                        return Ok(input.get(i + 1..).unwrap_or(&[]));
                    }
                    self.prompt(w)?;
                }
            }
        }
        Ok(&[])
    }

    fn run_line<W: Write>(&mut self, w: &mut W) -> Result<(), W::Error> {
        let s = &mut self.service;
        match parse(self.editor.line()) {
            Command::Empty => Ok(()),
            Command::Help => reply::help(w),
            Command::Info => reply::info(w, s),
            Command::Embed(text) => match s.embed(Slot::A, text) {
                Ok((tokens, values)) => reply::embedding(w, tokens, values),
                Err(f) => reply::failure(w, &f),
            },
            Command::Sim(a, b) => match s.sim(a, b) {
                Ok((cos, ta, tb)) => reply::similarity(w, cos, ta, tb),
                Err(f) => reply::failure(w, &f),
            },
            Command::Ask(q) => match s.ask(q) {
                Ok(a) => reply::answer(w, &a),
                Err(f) => reply::failure(w, &f),
            },
            Command::Chat(text) => match s.chat(text) {
                Ok(a) => reply::chat(w, &a),
                Err(f) => reply::failure(w, &f),
            },
            Command::ChatReset => match s.chat_reset() {
                Ok(()) => reply::ok(w),
                Err(f) => reply::failure(w, &f),
            },
            Command::Kb => match s.bank() {
                Some(b) => reply::bank(w, b),
                None => reply::failure(
                    w,
                    &Failure::new(ErrCode::NoBank, Cause::Text("no knowledge bank")),
                ),
            },
            Command::Bench(text) => match s.bench(text.unwrap_or(BENCH_SENTENCE)) {
                Ok(b) => reply::bench(w, &b),
                Err(f) => reply::failure(w, &f),
            },
            Command::KernelCheck(seed) => reply::kernel_check(w, &s.kernel_check(seed)),
            Command::Echo(on) => {
                self.echo = on;
                reply::ok(w)
            }
            Command::Frame => {
                self.framed.reset();
                self.mode = Mode::Framed;
                w.write_all(b"OK framed: postcard Request in COBS frames until Exit\r\n")
            }
            Command::Invalid(why) => reply::err(w, ErrCode::BadCommand, why),
        }
    }

    fn newline<W: Write>(&self, w: &mut W) -> Result<(), W::Error> {
        if self.echo {
            w.write_all(b"\r\n")?;
        }
        Ok(())
    }

    fn prompt<W: Write>(&self, w: &mut W) -> Result<(), W::Error> {
        if self.echo && self.mode == Mode::Text {
            w.write_all(PROMPT)?;
        }
        Ok(())
    }
}
