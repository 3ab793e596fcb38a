//! What the console's commands do, independent of how they are spelled (text or frames).

use core::fmt;

use crate::frame::MAX_DIM;
use pith_runtime::engine::{cosine_i8, Model};
use pith_runtime::kb::{Bank, Reply, Text};
use pith_runtime::{Error, Profile, Stage};

use crate::chat::{Chat, ChatAnswer};

/// What the firmware tells the console about the board it runs on (for `info`).
#[derive(Debug, Clone, Copy)]
pub struct Board<'a> {
    /// Board name, e.g. `mps3-an547`.
    pub name: &'a str,
    /// Core, e.g. `Cortex-M55`.
    pub cpu: &'a str,
    /// Flash bytes used by code and constants (the package excluded).
    pub flash_used: u32,
    /// Flash bytes available.
    pub flash_size: u32,
    /// RAM bytes used by statics (the stack excluded).
    pub ram_used: u32,
    /// RAM bytes available.
    pub ram_size: u32,
    /// Bytes of the linked package (0 when none is linked).
    pub package_bytes: u32,
    /// Bytes of the inference arena.
    pub arena_bytes: u32,
    /// Deepest stack use so far in bytes, where the firmware can measure it (a painted stack).
    pub stack_peak: Option<fn() -> u32>,
}

impl<'a> Board<'a> {
    /// A console on a host (`pith chat`, tests, fuzzing): no flash or RAM of its own to report.
    pub const fn host(name: &'a str, cpu: &'a str) -> Self {
        Board {
            name,
            cpu,
            flash_used: 0,
            flash_size: 0,
            ram_used: 0,
            ram_size: 0,
            package_bytes: 0,
            arena_bytes: 0,
            stack_peak: None,
        }
    }
}

/// A monotonic clock supplied by the firmware, for `bench`.
pub trait Clock {
    /// Nanoseconds since some fixed point. Under QEMU `-icount shift=0` one instruction is one
    /// virtual nanosecond, so differences count instructions.
    fn now_ns(&mut self) -> u64;
}

/// A clock that never moves, for hosts and boards without a timer (`bench` then reports 0).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoClock;

impl Clock for NoClock {
    fn now_ns(&mut self) -> u64 {
        0
    }
}

/// What `ask` found in the knowledge bank.
#[derive(Clone, Copy)]
pub struct Answer<'k> {
    /// The entry's id.
    pub id: Text<'k>,
    /// The entry's answer text (decoded as it is written: no buffer needed).
    pub text: Text<'k>,
    /// Cosine of the best match (question or answer, see `kb`).
    pub score: f32,
    /// False when the score is below the bank's abstain threshold: "no confident answer".
    pub confident: bool,
}

/// Error codes after `ERR` (text) or in `Response::Error` (frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrCode {
    /// The input line was refused: too long, control bytes, invalid UTF-8.
    BadInput = 1,
    /// Unknown command or wrong usage.
    BadCommand = 2,
    /// `ask` without a knowledge bank.
    NoBank = 3,
    /// No valid model package is linked.
    NoModel = 4,
    /// The model refused the text (see the message).
    Model = 5,
    /// A frame did not decode or was too long (framed mode only).
    BadFrame = 6,
}

/// Why there is no model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The firmware was built without a package (empty blob).
    NoPackage,
    /// The package is there but did not validate, or does not fit the arena or reply buffers.
    Invalid(Error),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NoPackage => f.write_str("no package linked"),
            Unavailable::Invalid(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// Why a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A fixed explanation.
    Text(&'static str),
    /// A runtime error.
    Runtime(Error),
    /// No model.
    NoModel(Unavailable),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Text(t) => f.write_str(t),
            Cause::Runtime(e) => fmt::Display::fmt(e, f),
            Cause::NoModel(u) => write!(f, "no model: {u}"),
        }
    }
}

/// A failed command: its code and cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Code.
    pub code: ErrCode,
    /// Cause.
    pub cause: Cause,
}

impl Failure {
    pub(crate) const fn new(code: ErrCode, cause: Cause) -> Self {
        Failure { code, cause }
    }
}

/// The fixed sentence `bench` embeds: 16 tokens with `[CLS]` and `[SEP]` in BERT uncased.
pub const BENCH_SENTENCE: &str =
    "a man is playing a guitar on the stage while people watch him closely";

/// One embedding slot: where `embed` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The first buffer.
    A,
    /// The second buffer (for `sim`).
    B,
}

/// The model, its arena and the board: everything the commands act on.
///
/// The model is borrowed, not owned: a validated model is kilobytes (its layer table), and on a
/// device every by-value move of a value that size can leave another copy in a frame that never
/// returns.
pub struct Service<'m, C: Clock> {
    model: Result<&'m Model<'m>, Unavailable>,
    arena: &'m mut [i32],
    max_tokens: usize,
    board: Board<'m>,
    clock: C,
    bank: Option<Bank<'m>>,
    chat: Option<Chat<'m>>,
    a: [i8; MAX_DIM],
    b: [i8; MAX_DIM],
}

impl<'m, C: Clock> Service<'m, C> {
    /// Wraps a model, or the reason there is none (an empty `package` means none was linked).
    /// Checks once that the arena fits at least a two-token input and the dimension fits the reply
    /// buffers; otherwise model commands answer `ERR 4`.
    pub fn new(
        model: Result<&'m Model<'m>, Error>,
        arena: &'m mut [i32],
        board: Board<'m>,
        clock: C,
    ) -> Self {
        let mut max_tokens = 0;
        let model = model
            .and_then(|m| {
                if m.dim() == 0 || m.dim() > MAX_DIM {
                    return Err(Error::OutputSizeMismatch);
                }
                max_tokens = largest_fitting(m, arena.len());
                if max_tokens < 2 {
                    return Err(Error::ArenaTooSmall);
                }
                Ok(m)
            })
            .map_err(|e| {
                if board.package_bytes == 0 {
                    Unavailable::NoPackage
                } else {
                    Unavailable::Invalid(e)
                }
            });
        Service {
            model,
            arena,
            max_tokens,
            board,
            clock,
            bank: None,
            chat: None,
            a: [0; MAX_DIM],
            b: [0; MAX_DIM],
        }
    }

    /// Attaches a knowledge bank for `ask` (validated by the caller with `Bank::for_model`).
    /// By `&mut`, not by value: a service is several kilobytes, and each by-value pass can leave
    /// one more copy in the caller's frame on a device.
    pub fn attach_bank(&mut self, bank: Bank<'m>) {
        self.bank = Some(bank);
    }

    /// Attaches `chat` (built with [`Chat::new`] for this very model), after checking that the
    /// arena holds the reasoner's full window.
    pub fn attach_chat(&mut self, chat: Chat<'m>) -> Result<(), Error> {
        match &self.model {
            Ok(m) if chat.is_for(m) => {}
            Ok(_) => return Err(Error::ReasonerEncoderMismatch),
            Err(_) => return Err(Error::PackageBadConfig),
        }
        let r = chat.reasoner();
        if r.arena_words(r.window()) > self.arena.len() {
            return Err(Error::ArenaTooSmall);
        }
        self.chat = Some(chat);
        Ok(())
    }

    /// Whether `chat` is available.
    pub fn has_chat(&self) -> bool {
        self.chat.is_some()
    }

    /// Forgets the conversation (`chat reset`).
    pub fn chat_reset(&mut self) -> Result<(), Failure> {
        let chat = self.chat.as_mut().ok_or(NO_CHAT)?;
        chat.reset();
        Ok(())
    }

    /// One turn of `chat`: embeds `text` into the ring, predicts the next turn, answers with the
    /// nearest response-bank sentence and puts that answer into the ring too.
    pub fn chat(&mut self, text: &str) -> Result<ChatAnswer<'m>, Failure> {
        if self.chat.is_none() {
            return Err(NO_CHAT);
        }
        self.embed(Slot::A, text)?;
        let model = self
            .model
            .as_ref()
            .map_err(|e| Failure::new(ErrCode::NoModel, Cause::NoModel(*e)))?;
        let chat = self.chat.as_mut().ok_or(NO_CHAT)?;
        chat.turn(model, text, self.arena, &mut self.a, &mut self.b)
            .map_err(|e| Failure::new(ErrCode::Model, Cause::Runtime(e)))
    }

    /// The model, or why there is none.
    pub fn model(&self) -> Result<&'m Model<'m>, Unavailable> {
        self.model
    }

    /// The board description.
    pub fn board(&self) -> &Board<'m> {
        &self.board
    }

    /// Longest input in tokens the arena allows (0 without a model).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embeds `text` into `slot`; returns the token count and the vector.
    pub fn embed(&mut self, slot: Slot, text: &str) -> Result<(usize, &[i8]), Failure> {
        let model = self
            .model
            .as_ref()
            .map_err(|e| Failure::new(ErrCode::NoModel, Cause::NoModel(*e)))?;
        let dim = model.dim();
        let buf = match slot {
            Slot::A => &mut self.a,
            Slot::B => &mut self.b,
        };
        let out = buf.get_mut(..dim).ok_or(Failure::new(
            ErrCode::NoModel,
            Cause::Text("dimension too large"),
        ))?;
        let tokens = model
            .embed(text, self.arena, out)
            .map_err(|e| Failure::new(ErrCode::Model, Cause::Runtime(e)))?;
        Ok((tokens, out))
    }

    /// Cosine similarity of two texts; returns (cosine, tokens of a, tokens of b).
    pub fn sim(&mut self, a: &str, b: &str) -> Result<(f32, usize, usize), Failure> {
        let (ta, _) = self.embed(Slot::A, a)?;
        let (tb, _) = self.embed(Slot::B, b)?;
        let dim = self.model().map(|m| m.dim()).unwrap_or(0);
        let (va, vb) = (
            self.a.get(..dim).unwrap_or(&[]),
            self.b.get(..dim).unwrap_or(&[]),
        );
        Ok((cosine_i8(va, vb), ta, tb))
    }

    /// The knowledge bank's best entry for `question` (confident or not).
    pub fn ask(&mut self, question: &str) -> Result<Answer<'m>, Failure> {
        let bank = self.bank.ok_or(Failure::new(
            ErrCode::NoBank,
            Cause::Text("no knowledge bank"),
        ))?;
        let (_, query) = self.embed(Slot::A, question)?;
        let (hit, confident) = match bank.ask(query) {
            Reply::Answer(hit) => (hit, true),
            Reply::Abstain(Some(hit)) => (hit, false),
            Reply::Abstain(None) => {
                return Err(Failure::new(
                    ErrCode::NoBank,
                    Cause::Text("knowledge bank is empty"),
                ))
            }
        };
        let entry = bank.entry(hit.index).ok_or(Failure::new(
            ErrCode::NoBank,
            Cause::Text("knowledge bank is empty"),
        ))?;
        Ok(Answer {
            id: entry.id,
            text: entry.answer,
            score: hit.cosine(),
            confident,
        })
    }

    /// The attached bank, if any (for `kb`).
    pub fn bank(&self) -> Option<&Bank<'m>> {
        self.bank.as_ref()
    }

    /// Runs the kernels' property check ([`pith_runtime::kernels::check`]) with the arena as scratch.
    pub fn kernel_check(&mut self, seed: u32) -> pith_runtime::kernels::check::Report {
        pith_runtime::kernels::check::self_check(seed, bytemuck::cast_slice_mut(&mut *self.arena))
    }

    /// Embeds `text` once and measures it on the firmware's clock, stage by stage.
    pub fn bench(&mut self, text: &str) -> Result<Bench, Failure> {
        let model = self
            .model
            .as_ref()
            .map_err(|e| Failure::new(ErrCode::NoModel, Cause::NoModel(*e)))?;
        let out = self.a.get_mut(..model.dim()).ok_or(Failure::new(
            ErrCode::NoModel,
            Cause::Text("dimension too large"),
        ))?;
        let clock = &mut self.clock;
        let mut profile = Profile::new(|| clock.now_ns());
        let tokens = model
            .embed_observed(text, self.arena, out, &mut profile)
            .map_err(|e| Failure::new(ErrCode::Model, Cause::Runtime(e)))?;
        Ok(Bench {
            tokens,
            ns: profile.total(),
            stages: profile.totals,
            macs: model.stage_macs(tokens),
        })
    }
}

/// What `bench` measured: one embedding on the firmware's clock (instructions under QEMU
/// `-icount shift=0`), in total and per stage.
pub struct Bench {
    /// Tokens of the input, `[CLS]` and `[SEP]` included.
    pub tokens: usize,
    /// Nanoseconds of the whole embedding (the sum of `stages`).
    pub ns: u64,
    /// Nanoseconds per stage, indexed by `Stage as usize`, summed over the layers.
    pub stages: [u64; Stage::ALL.len()],
    /// Multiply-accumulates per stage, indexed like `stages`.
    pub macs: [u64; Stage::ALL.len()],
}

const NO_CHAT: Failure = Failure::new(
    ErrCode::NoBank,
    Cause::Text("no reasoner and response bank linked"),
);

/// The longest input (2..=model max) whose scratch fits `words` i32 words; 0 if none does.
fn largest_fitting(model: &Model<'_>, words: usize) -> usize {
    let mut t = model.max_tokens();
    while t >= 2 && model.arena_words(t) > words {
        // Scratch grows at least linearly in tokens: halving finds a fitting length in a few steps,
        // then the linear walk below recovers the exact largest one.
        t /= 2;
    }
    if t < 2 {
        return 0;
    }
    let mut best = t;
    for cand in (t + 1)..=model.max_tokens() {
        if model.arena_words(cand) > words {
            break;
        }
        best = cand;
    }
    best
}
