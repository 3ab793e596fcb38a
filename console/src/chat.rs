//! `chat`: the conversation the console keeps — the last turns' int8 vectors in a fixed ring,
//! the integer reasoner that predicts the next turn from them, and the response bank it answers
//! from. The host's `pith chat` runs this same code, so it gives the same bytes.
//!
//! Self-refinement: when the best two bank sentences score within the reasoner's calibrated gate
//! of each other, each of the best [`REFINE_TOP`] is fed back as the newest turn, the reasoner
//! predicts the turn after it, and the candidate gains that prediction's cosine to the latest
//! turn (a reply that leads back to what was just said). All in integers: the device and the
//! host refine alike.
//!
//! Lexical match: when the response bank carries a lexicon, every bank sentence's score also
//! gains its word match with the ring's turns ([`pith_runtime::kb::lexicon`]) at the bank's
//! lexical weight, scaled by the reasoner's trust in the latest turn, so a conversation unlike
//! the training conversations is answered by the encoder's plain cosine, as without the
//! reasoner's correction; and only once the ring holds two turns (`lexicon::applies`).
//!
//! No repeats: a bank sentence that repeats a turn still in the ring (one of the device's own
//! recent answers, or a sentence with exactly the words of a recent turn) is never the answer;
//! the lexical match would otherwise favour it.

use crate::frame::MAX_DIM;
use pith_runtime::engine::{Model, Reasoner, TRUST_ONE};
use pith_runtime::fixed::div_round;
use pith_runtime::kb::lexicon::{self, Context, MAX_TERMS};
use pith_runtime::kb::{cosine_i8, package_tag, Bank, Hit, Index, Text, SCORE_ONE};
use pith_runtime::tokenizer::Tokenizer;
use pith_runtime::Error;

/// Turns the ring holds (the reasoner's window, at most).
pub const RING: usize = 8;
/// Longest response-bank sentence the console re-embeds into the ring (bytes).
pub const TEXT_MAX: usize = 512;
/// Bank sentences the refinement step re-scores.
pub const REFINE_TOP: usize = 4;

/// The conversation state: reasoner, response bank and the ring of turn vectors, latest first.
/// Small by design: the reasoner is borrowed and the ring and text buffer live in memory the
/// caller sets aside (on the device, the arena's tail), so the console's stack frame does not
/// grow by them.
pub struct Chat<'m> {
    reasoner: &'m Reasoner<'m>,
    bank: Bank<'m>,
    /// `[RING, dim]`, row 0 the latest turn.
    ring: &'m mut [i8],
    /// `[RING, MAX_TERMS]`: each turn's lexical terms (the first `term_len[t]` of its row).
    terms: &'m mut [u16],
    term_len: [u8; RING],
    /// Per ring turn, the bank entry the device answered with ([`NOT_SAID`] for the user's).
    said: [u32; RING],
    len: usize,
    text: &'m mut [u8],
    /// Refine below this margin (score units); the reasoner's calibrated gate unless set.
    gate: i32,
    /// The tag of the encoder checked at [`Chat::new`]: every turn must come from it.
    encoder: u32,
}

/// i32 words of memory [`Chat::new`] needs for turn vectors of `dim` values.
pub const fn words(dim: usize) -> usize {
    (TERM_BYTES + RING * dim + TEXT_MAX).div_ceil(4)
}

/// `said` of a turn the user typed.
const NOT_SAID: u32 = u32::MAX;

/// Bytes of the ring's lexical terms.
const TERM_BYTES: usize = RING * MAX_TERMS * 2;

/// What `chat` answered.
#[derive(Clone, Copy)]
pub struct ChatAnswer<'k> {
    /// The response-bank sentence.
    pub text: Text<'k>,
    /// Its index in the response bank.
    pub entry: usize,
    /// Its score: the cosine to the predicted next turn, plus its weighted lexical match when
    /// the bank has a lexicon.
    pub score: f32,
    /// FNV-1a of the predicted int8 vector: the reasoner's output, comparable across machines.
    pub prediction: u32,
    /// Best minus second-best bank cosine before refining (a one-sentence bank: against −1).
    pub margin: f32,
    /// Whether the margin was under the gate and the answer went through refinement.
    pub refined: bool,
}

impl<'m> Chat<'m> {
    /// Checks once that the reasoner, the bank and the encoder `encoder` agree (the dimension,
    /// and the very encoder package where the reasoner or the bank records one) and that the
    /// reasoner's window fits the ring; `chat` cannot fail on them afterwards, and every turn must
    /// be embedded by that encoder. `mem` holds the ring and the text buffer: at least
    /// [`words`]`(dim)` words.
    pub fn new(
        reasoner: &'m Reasoner<'m>,
        bank: Bank<'m>,
        encoder: &Model<'_>,
        mem: &'m mut [i32],
    ) -> Result<Self, Error> {
        let dim = encoder.dim();
        if dim > MAX_DIM {
            return Err(Error::OutputSizeMismatch);
        }
        reasoner.check_encoder(encoder)?;
        bank.check_model(encoder)?;
        if reasoner.window() > RING || bank.is_empty() {
            return Err(Error::PackageBadConfig);
        }
        let mem: &mut [u8] = bytemuck::cast_slice_mut(mem);
        if mem.len() < TERM_BYTES + RING * dim + TEXT_MAX {
            return Err(Error::ArenaTooSmall);
        }
        // The terms come first: `mem` is word-aligned, so their u16 view is too.
        let (terms, rest) = mem.split_at_mut(TERM_BYTES);
        let (ring, rest) = rest.split_at_mut(RING * dim);
        Ok(Chat {
            reasoner,
            bank,
            ring: bytemuck::cast_slice_mut(ring),
            terms: bytemuck::try_cast_slice_mut(terms).map_err(|_| Error::ArenaTooSmall)?,
            term_len: [0; RING],
            said: [NOT_SAID; RING],
            len: 0,
            text: &mut rest[..TEXT_MAX],
            gate: reasoner.gate(),
            encoder: package_tag(encoder.package()),
        })
    }

    /// Whether `model` is the encoder this chat was opened with (the only one its turns may
    /// come from).
    pub fn is_for(&self, model: &Model<'_>) -> bool {
        package_tag(model.package()) == self.encoder
    }

    /// The reasoner.
    pub fn reasoner(&self) -> &Reasoner<'m> {
        self.reasoner
    }

    /// The refinement gate in score units (cosine × 65536).
    pub fn gate(&self) -> i32 {
        self.gate
    }

    /// Replaces the package's gate (score units; negative: never refine, above 2 × 65536: always).
    pub fn set_gate(&mut self, gate: i32) {
        self.gate = gate;
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

    /// Puts a turn (its vector `v` and lexical `terms`) in front, dropping the oldest once the
    /// reasoner's window is full.
    fn push(&mut self, v: &[i8], terms: &[u16]) {
        let (window, dim) = (self.reasoner.window(), self.reasoner.dim());
        self.ring.copy_within(0..(window - 1) * dim, dim);
        for (r, &x) in self.ring.iter_mut().zip(v.iter().take(dim)) {
            *r = x;
        }
        self.terms
            .copy_within(0..(window - 1) * MAX_TERMS, MAX_TERMS);
        self.term_len.copy_within(0..window - 1, 1);
        self.said.copy_within(0..window - 1, 1);
        if let Some(s) = self.said.first_mut() {
            *s = NOT_SAID;
        }
        let n = terms.len().min(MAX_TERMS);
        if let (Some(row), Some(l)) = (self.terms.get_mut(..n), self.term_len.first_mut()) {
            row.copy_from_slice(&terms[..n]);
            *l = n as u8;
        }
        self.len = (self.len + 1).min(window);
    }

    /// Puts the user's turn in front: its vector `v` and, when the bank has a lexicon, the terms
    /// of `text` (tokenized by `tokenizer` in `scratch`).
    fn push_user(
        &mut self,
        v: &[i8],
        text: &str,
        tokenizer: &Tokenizer<'_>,
        scratch: &mut [i32],
    ) -> Result<(), Error> {
        let mut terms = [0u16; MAX_TERMS];
        let mut n = 0;
        if self.bank.lexicon().is_some() {
            n = lexicon::terms(
                tokenizer,
                text,
                bytemuck::cast_slice_mut(scratch),
                &mut terms,
            )?;
        }
        self.push(v, &terms[..n]);
        Ok(())
    }

    /// Puts the answer, bank entry `entry` with vector `v`, in front (its terms are the bank's).
    fn push_answer(&mut self, v: &[i8], entry: usize) {
        let mut terms = [0u16; MAX_TERMS];
        let mut n = 0;
        if let Some(l) = self.bank.lexicon() {
            for (slot, t) in terms.iter_mut().zip(l.entry_terms(entry)) {
                *slot = t;
                n += 1;
            }
        }
        self.push(v, &terms[..n]);
        if let Some(s) = self.said.first_mut() {
            *s = u32::try_from(entry).unwrap_or(NOT_SAID);
        }
    }

    /// Whether bank entry `entry` would repeat a turn of the ring: one of the device's own recent
    /// answers, or (with a lexicon) a sentence with exactly the words of a recent turn.
    fn repeats(&self, entry: usize, turns: &[&[u16]]) -> bool {
        if self
            .said
            .iter()
            .take(self.len)
            .any(|&s| s as usize == entry)
        {
            return true;
        }
        let Some(l) = self.bank.lexicon() else {
            return false;
        };
        turns
            .iter()
            .any(|t| !t.is_empty() && l.entry_terms(entry).eq(t.iter().copied()))
    }

    /// The ring's terms, latest turn first.
    fn ring_terms(&self) -> [&[u16]; RING] {
        let mut out: [&[u16]; RING] = [&[]; RING];
        for (t, o) in out.iter_mut().enumerate().take(self.len) {
            let row = self.terms.get(t * MAX_TERMS..).unwrap_or(&[]);
            *o = row.get(..self.term_len[t] as usize).unwrap_or(&[]);
        }
        out
    }

    /// The text of bank sentence `text`, decoded into the chat's buffer; an error when it does
    /// not fit (it could not be embedded whole).
    fn say(&mut self, text: Text<'_>) -> Result<&str, Error> {
        let said = text.decode_into(self.text);
        if said.len() < text.len() {
            return Err(Error::ResponseTooLong);
        }
        Ok(said)
    }

    /// One turn of a conversation: embeds `text` with `model` (the encoder the bank was built
    /// with) into `a`, then answers as [`Chat::turn`]. `arena` is the encoder's and the
    /// reasoner's scratch (the larger of their arena sizes); `a` and `b` hold the dimension's
    /// values each.
    pub fn step(
        &mut self,
        model: &Model<'_>,
        text: &str,
        arena: &mut [i32],
        a: &mut [i8],
        b: &mut [i8],
    ) -> Result<ChatAnswer<'m>, Error> {
        let dim = self.reasoner.dim();
        let v = a.get_mut(..dim).ok_or(Error::OutputSizeMismatch)?;
        model.embed(text, arena, v)?;
        self.turn(model, text, arena, a, b)
    }

    /// The turn whose text `text` is already embedded in `a`: puts it in the ring, predicts the
    /// next turn, answers with the nearest bank sentence (refining when the gate says so) and
    /// puts the answer, re-embedded, in the ring too. `a` and `b` are overwritten.
    pub fn turn(
        &mut self,
        model: &Model<'_>,
        text: &str,
        arena: &mut [i32],
        a: &mut [i8],
        b: &mut [i8],
    ) -> Result<ChatAnswer<'m>, Error> {
        if !self.is_for(model) {
            return Err(Error::ReasonerEncoderMismatch);
        }
        let dim = self.reasoner.dim();
        let v = a.get(..dim).ok_or(Error::OutputSizeMismatch)?;
        self.push_user(v, text, model.tokenizer(), arena)?;
        let answer = self.respond(model, arena, a, b)?;
        let said = self.say(answer.text)?;
        let out = a.get_mut(..dim).ok_or(Error::OutputSizeMismatch)?;
        model.embed(said, arena, out)?;
        self.push_answer(out, answer.entry);
        Ok(answer)
    }

    /// Predicts the next turn into `pred` from the ring, with `newest` (when given) in front of
    /// it as the latest turn (the oldest ring turn then drops out of the window); returns the
    /// reasoner's trust in that latest turn.
    fn predict(
        &self,
        newest: Option<&[i8]>,
        arena: &mut [i32],
        pred: &mut [i8],
    ) -> Result<i32, Error> {
        let dim = self.reasoner.dim();
        let mut window: [&[i8]; RING] = [&[]; RING];
        let mut n = 0;
        let ring = self.ring.chunks_exact(dim).take(self.len);
        for row in newest.into_iter().chain(ring).take(self.reasoner.window()) {
            window[n] = row;
            n += 1;
        }
        self.reasoner.predict(&window[..n], arena, pred)
    }

    /// Predicts the next turn (into `pred`) and answers with the nearest bank sentence (by its
    /// question index: the bank's sentences are the responses), refining when the gate says so.
    /// `model` is the encoder that embeds the candidates into `cand`; `arena` is scratch.
    fn respond(
        &mut self,
        model: &Model<'_>,
        arena: &mut [i32],
        cand: &mut [i8],
        pred: &mut [i8],
    ) -> Result<ChatAnswer<'m>, Error> {
        let dim = self.reasoner.dim();
        let (cand, pred) = match (cand.get_mut(..dim), pred.get_mut(..dim)) {
            (Some(c), Some(p)) => (c, p),
            _ => return Err(Error::OutputSizeMismatch),
        };
        let trust = self.predict(None, arena, pred)?;
        let prediction = crate::digest::fnv1a(pred);
        let mut hits = [Hit::default(); REFINE_TOP];
        let turns = self.ring_terms();
        let context = self
            .bank
            .lexicon()
            .filter(|l| l.weight() != 0 && lexicon::applies(self.len))
            .map(|l| Context::new(l, &turns[..self.len]));
        let lexical = context.as_ref().map(|c| {
            let w = div_round(c.lexicon().weight() as i64 * trust as i64, TRUST_ONE as i64);
            (c, w as i32)
        });
        // The best REFINE_TOP that do not repeat a turn of the ring: a sentence the device just
        // said, or one with exactly the words of a recent turn, scores high by its words alone.
        let mut found = [Hit::default(); REFINE_TOP + RING];
        let n = self
            .bank
            .search_mixed(pred, lexical, Index::Question, &mut found);
        let mut k = 0;
        for h in found.iter().take(n) {
            if k < REFINE_TOP && !self.repeats(h.index, &turns[..self.len]) {
                hits[k] = *h;
                k += 1;
            }
        }
        let hits = hits.get(..k).unwrap_or(&[]);
        let first = *hits.first().ok_or(Error::BankCorrupt)?;
        let second = hits.get(1).map_or(-SCORE_ONE, |h| h.score);
        let margin = first.score.saturating_sub(second);
        let refined = margin < self.gate;
        let mut best = first;
        if refined {
            let mut top = i64::MIN;
            for &h in hits {
                let text = self.bank.entry(h.index).ok_or(Error::BankCorrupt)?.question;
                let said = self.say(text)?;
                model.embed(said, arena, cand)?;
                self.predict(Some(cand), arena, pred)?;
                let latest = self.ring.get(..dim).unwrap_or(&[]);
                let v = h.score as i64 + cosine_i8(pred, latest) as i64;
                // Strictly better only: ties keep the better-scored candidate.
                if v > top {
                    (top, best) = (v, h);
                }
            }
        }
        let entry = self.bank.entry(best.index).ok_or(Error::BankCorrupt)?;
        Ok(ChatAnswer {
            entry: best.index,
            text: entry.question,
            score: best.cosine(),
            prediction,
            margin: pith_runtime::kb::score_to_cosine(margin),
            refined,
        })
    }
}
