//! Framed mode on the console side: feeds input into a COBS accumulator (partial reads welcome),
//! answers each complete [`Request`] with one [`Response`] frame.

use embedded_io::Write;
use postcard::accumulator::{CobsAccumulator, FeedResult};

use crate::frame::{
    encode_response, InfoReply, Request, Response, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME,
};
use crate::service::{Clock, ErrCode, Failure, Service, Slot};

/// Receive state of framed mode.
pub struct Framed {
    acc: CobsAccumulator<MAX_REQUEST_FRAME>,
    /// Bytes of the current frame fed so far (0 between frames).
    pending: usize,
    /// Skipping the tail of an overlong frame, up to its 0x00.
    skipping: bool,
    out: [u8; MAX_RESPONSE_FRAME],
}

/// What feeding did to the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Still framed.
    Stay,
    /// `Exit` was answered: the rest of the input is text again.
    Leave,
}

impl Default for Framed {
    fn default() -> Self {
        Self::new()
    }
}

impl Framed {
    /// Fresh receive state.
    pub const fn new() -> Self {
        Framed {
            acc: CobsAccumulator::new(),
            pending: 0,
            skipping: false,
            out: [0; MAX_RESPONSE_FRAME],
        }
    }

    /// Resets the receive state (on entering framed mode).
    pub fn reset(&mut self) {
        self.acc = CobsAccumulator::new();
        self.pending = 0;
        self.skipping = false;
    }

    /// Consumes input up to the end of one frame (or all of it); returns the unconsumed rest.
    pub fn feed<'i, W: Write, C: Clock>(
        &mut self,
        input: &'i [u8],
        service: &mut Service<'_, C>,
        w: &mut W,
    ) -> Result<(&'i [u8], After), W::Error> {
        if self.skipping {
            return Ok(match input.iter().position(|&b| b == 0) {
                Some(i) => {
                    self.skipping = false;
                    (input.get(i + 1..).unwrap_or(&[]), After::Stay)
                }
                None => (&[], After::Stay),
            });
        }
        // A lone 0x00 between frames is a resynchronisation byte, not an empty request.
        if self.pending == 0 && input.first() == Some(&0) {
            return Ok((input.get(1..).unwrap_or(&[]), After::Stay));
        }
        let Framed {
            acc,
            pending,
            skipping,
            out,
        } = self;
        let response;
        let rest = match acc.feed_ref::<Request<'_>>(input) {
            FeedResult::Consumed => {
                *pending += input.len();
                return Ok((&[], After::Stay));
            }
            FeedResult::OverFull(rest) => {
                let used = input.len() - rest.len();
                // If the frame's 0x00 was not in what the accumulator took, the frame goes on.
                *skipping = used == 0 || input.get(used - 1) != Some(&0);
                response = error(ErrCode::BadFrame, "frame too long");
                rest
            }
            FeedResult::DeserError(rest) => {
                response = error(ErrCode::BadFrame, "frame does not decode as a request");
                rest
            }
            FeedResult::Success { data, remaining } => {
                let leave = data == Request::Exit;
                response = answer(data, service);
                *pending = 0;
                send(w, out, &response)?;
                return Ok((remaining, if leave { After::Leave } else { After::Stay }));
            }
        };
        *pending = 0;
        send(w, out, &response)?;
        Ok((rest, After::Stay))
    }
}

fn send<W: Write>(w: &mut W, buf: &mut [u8], response: &Response) -> Result<(), W::Error> {
    match encode_response(response, buf) {
        Ok(frame) => w.write_all(frame)?,
        // Every response fits by construction (texts are cut to their capacity); if that ever
        // changes, the host still gets a well-formed answer instead of silence.
        Err(_) => {
            let mut small = [0u8; 128];
            if let Ok(frame) =
                encode_response(&error(ErrCode::BadFrame, "response too large"), &mut small)
            {
                w.write_all(frame)?;
            }
        }
    }
    w.flush()
}

fn error(code: ErrCode, message: &str) -> Response {
    Response::Error {
        code: code as u8,
        message: cut(message),
    }
}

fn failure(f: Failure) -> Response {
    let mut message = heapless::String::<96>::new();
    // A message longer than the field is cut; the code still says what happened.
    let _ = core::fmt::write(&mut Truncating(&mut message), format_args!("{}", f.cause));
    Response::Error {
        code: f.code as u8,
        message,
    }
}

/// Copies `s` into a fixed-capacity string, cutting at a character boundary.
fn cut<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    let _ = core::fmt::Write::write_str(&mut Truncating(&mut out), s);
    out
}

/// A `fmt::Write` into a heapless string that drops what does not fit instead of failing.
struct Truncating<'a, const N: usize>(&'a mut heapless::String<N>);

impl<const N: usize> core::fmt::Write for Truncating<'_, N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

fn answer<C: Clock>(request: Request<'_>, service: &mut Service<'_, C>) -> Response {
    match request {
        Request::Embed { text } => match service.embed(Slot::A, text) {
            Ok((tokens, values)) => {
                let mut v = heapless::Vec::new();
                // The service caps the dimension at MAX_DIM, so this never truncates.
                let _ = v.extend_from_slice(values);
                Response::Embedding {
                    tokens: tokens.min(u16::MAX as usize) as u16,
                    values: v,
                }
            }
            Err(f) => failure(f),
        },
        Request::Sim { a, b } => match service.sim(a, b) {
            Ok((cosine, ta, tb)) => Response::Similarity {
                cosine,
                tokens_a: ta.min(u16::MAX as usize) as u16,
                tokens_b: tb.min(u16::MAX as usize) as u16,
            },
            Err(f) => failure(f),
        },
        Request::Ask { question } => match service.ask(question) {
            Ok(a) => {
                let mut text = heapless::String::new();
                if a.confident {
                    let _ = core::fmt::Write::write_fmt(
                        &mut Truncating(&mut text),
                        format_args!("{}", a.text),
                    );
                }
                Response::Answer {
                    text,
                    score: a.score,
                    confident: a.confident,
                }
            }
            Err(f) => failure(f),
        },
        Request::Info => Response::Info(info(service)),
        Request::Exit => Response::Bye,
        Request::Chat { text } => match service.chat(text) {
            Ok(a) => {
                let mut text = heapless::String::new();
                let _ = core::fmt::Write::write_fmt(
                    &mut Truncating(&mut text),
                    format_args!("{}", a.text),
                );
                Response::Chat {
                    text,
                    score: a.score,
                    prediction: a.prediction,
                    margin: a.margin,
                    refined: a.refined,
                }
            }
            Err(f) => failure(f),
        },
        Request::ChatReset => match service.chat_reset() {
            Ok(()) => Response::Done,
            Err(f) => failure(f),
        },
    }
}

/// The framed form of `info`.
pub fn info<C: Clock>(service: &Service<'_, C>) -> InfoReply {
    let b = service.board();
    let (model, dim, layers, vocab) = match service.model() {
        Ok(m) => (
            m.header().name.clone(),
            m.dim() as u32,
            m.header().model.layers,
            m.header().model.vocab_size,
        ),
        Err(_) => (heapless::String::new(), 0, 0, 0),
    };
    InfoReply {
        model,
        dim,
        layers,
        vocab,
        max_tokens: service.max_tokens() as u32,
        board: cut(b.name),
        flash_used: b.flash_used,
        ram_used: b.ram_used,
        package_bytes: b.package_bytes,
    }
}
