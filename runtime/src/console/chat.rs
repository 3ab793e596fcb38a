//! `chat`: the conversation the console keeps — the last turns' int8 vectors in a fixed ring,
//! the integer reasoner that predicts the next turn from them, and the response bank it answers
//! from. The host's `pith chat` does the same steps in the same order, so it gives the same bytes.

use crate::engine::Reasoner;
use crate::error::Error;
use crate::frame::MAX_DIM;
use crate::kb::{Bank, Hit, Index, Text};

/// Turns the ring holds (the reasoner's window, at most).
pub const RING: usize = 8;
/// Longest response-bank sentence the console re-embeds into the ring (bytes).
pub const TEXT_MAX: usize = 512;

/// The conversation state: reasoner, response bank and the ring of turn vectors, latest first.
/// Small by design: the reasoner is borrowed and the ring and text buffer live in memory the
/// caller sets aside (on the device, the arena's tail), so the console's stack frame does not
/// grow by them.
pub struct Chat<'m> {
    reasoner: &'m Reasoner<'m>,
    bank: Bank<'m>,
    /// `[RING, dim]`, row 0 the latest turn.
    ring: &'m mut [i8],
    len: usize,
    pub(crate) text: &'m mut [u8],
}

/// i32 words of memory [`Chat::new`] needs for turn vectors of `dim` values.
pub const fn words(dim: usize) -> usize {
    (RING * dim + TEXT_MAX).div_ceil(4)
}

/// What `chat` answered.
#[derive(Clone, Copy)]
pub struct ChatAnswer<'k> {
    /// The response-bank sentence.
    pub text: Text<'k>,
    /// Its cosine to the predicted next turn.
    pub score: f32,
    /// FNV-1a of the predicted int8 vector: the reasoner's output, comparable across machines.
    pub prediction: u32,
}

impl<'m> Chat<'m> {
    /// Checks once that the reasoner, the bank and an encoder of dimension `dim` agree and that
    /// the reasoner's window fits the ring; `chat` cannot fail on them afterwards.
    /// `mem` holds the ring and the text buffer: at least [`words`]`(dim)` words.
    pub fn new(
        reasoner: &'m Reasoner<'m>,
        bank: Bank<'m>,
        dim: usize,
        mem: &'m mut [i32],
    ) -> Result<Self, Error> {
        if reasoner.dim() != dim || dim > MAX_DIM {
            return Err(Error::OutputSizeMismatch);
        }
        if bank.dim() != dim {
            return Err(Error::BankDimensionMismatch);
        }
        if reasoner.window() > RING || bank.is_empty() {
            return Err(Error::PackageBadConfig);
        }
        let mem: &mut [u8] = bytemuck::cast_slice_mut(mem);
        if mem.len() < RING * dim + TEXT_MAX {
            return Err(Error::ArenaTooSmall);
        }
        let (ring, rest) = mem.split_at_mut(RING * dim);
        Ok(Chat {
            reasoner,
            bank,
            ring: bytemuck::cast_slice_mut(ring),
            len: 0,
            text: &mut rest[..TEXT_MAX],
        })
    }

    /// The reasoner.
    pub fn reasoner(&self) -> &Reasoner<'m> {
        self.reasoner
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// Turns held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no turn is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Puts `v` in front, dropping the oldest turn once the reasoner's window is full.
    pub(crate) fn push(&mut self, v: &[i8]) {
        let (window, dim) = (self.reasoner.window(), self.reasoner.dim());
        self.ring.copy_within(0..(window - 1) * dim, dim);
        for (r, &x) in self.ring.iter_mut().zip(v.iter().take(dim)) {
            *r = x;
        }
        self.len = (self.len + 1).min(window);
    }

    /// Predicts the next turn into `pred` with `arena` as scratch and finds the nearest bank
    /// sentence (by its question index: the bank's sentences are the responses).
    pub(crate) fn respond(
        &self,
        arena: &mut [i32],
        pred: &mut [i8],
    ) -> Result<ChatAnswer<'m>, Error> {
        let dim = self.reasoner.dim();
        let mut window: [&[i8]; RING] = [&[]; RING];
        for (w, row) in window
            .iter_mut()
            .zip(self.ring.chunks_exact(dim))
            .take(self.len)
        {
            *w = row;
        }
        self.reasoner
            .predict(&window[..self.len], arena, &mut pred[..dim])?;
        let mut hit = [Hit::default()];
        if self.bank.search(&pred[..dim], Index::Question, &mut hit) == 0 {
            return Err(Error::BankCorrupt);
        }
        let entry = self.bank.entry(hit[0].index).ok_or(Error::BankCorrupt)?;
        Ok(ChatAnswer {
            text: entry.question,
            score: hit[0].cosine(),
            prediction: super::reply::fnv1a(&pred[..dim]),
        })
    }
}
