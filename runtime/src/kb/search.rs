//! Exhaustive integer search: every entry is scored, the best `k` are kept in the caller's array.

use super::lexicon::{mix, Context};
use super::{cosine_score, Bank, Entry, Vector, NEVER_ABSTAIN};

/// Which side of the entries a query is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Index {
    /// The stored questions only.
    Question,
    /// The stored answers only.
    Answer,
    /// `max(question cosine, answer cosine + bias)`.
    #[default]
    Both,
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hit {
    /// Entry index in the bank.
    pub index: usize,
    /// Score in units of [`SCORE_ONE`](super::SCORE_ONE) (a cosine times 65536).
    pub score: i32,
}

impl Hit {
    /// The score as a cosine.
    pub fn cosine(&self) -> f32 {
        super::score_to_cosine(self.score)
    }
}

/// The outcome of [`Bank::ask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The best entry scores at or above the bank's threshold.
    Answer(Hit),
    /// No entry is close enough; carries the best one anyway (`None` for an empty bank or a
    /// query of the wrong dimension).
    Abstain(Option<Hit>),
}

/// The cosine of two int8 vectors in score units, by the same exact arithmetic as a bank search
/// (0 when the lengths differ or either vector is zero).
pub fn cosine_i8(a: &[i8], b: &[i8]) -> i32 {
    if a.len() != b.len() {
        return 0;
    }
    let dot = a.iter().zip(b).map(|(&x, &y)| x as i64 * y as i64).sum();
    cosine_score(dot, norm2(a), norm2(b))
}

fn vector_score(v: &Vector<'_>, query: &[i8], query_norm2: i64) -> i32 {
    cosine_score(v.dot(query), query_norm2, v.norm2())
}

/// Squared length of a query.
fn norm2(query: &[i8]) -> i64 {
    query.iter().map(|&x| x as i64 * x as i64).sum()
}

/// Puts `hit` into the descending list `out[..*n]`, keeping at most `out.len()`; equal scores keep
/// the earlier entry first because entries arrive in index order and only a strictly better score
/// moves up.
fn insert(out: &mut [Hit], n: &mut usize, hit: Hit) {
    let mut pos = *n;
    if pos < out.len() {
        *n += 1;
    } else {
        match out.last() {
            Some(last) if hit.score > last.score => pos = out.len() - 1,
            _ => return,
        }
    }
    if let Some(slot) = out.get_mut(pos) {
        *slot = hit;
    }
    while pos > 0 {
        let better =
            matches!((out.get(pos - 1), out.get(pos)), (Some(a), Some(b)) if b.score > a.score);
        if !better {
            break;
        }
        out.swap(pos - 1, pos);
        pos -= 1;
    }
}

impl<'a> Bank<'a> {
    /// Score of entry `e` for `query` (whose squared length is `query_norm2`).
    fn entry_score(&self, e: &Entry<'_>, query: &[i8], query_norm2: i64, index: Index) -> i32 {
        match index {
            Index::Question => vector_score(&e.question_vector, query, query_norm2),
            Index::Answer => vector_score(&e.answer_vector, query, query_norm2),
            Index::Both => {
                let q = vector_score(&e.question_vector, query, query_norm2);
                let a = vector_score(&e.answer_vector, query, query_norm2)
                    .saturating_add(self.answer_bias());
                q.max(a)
            }
        }
    }

    /// Score of entry `i` for `query` (an int8 embedding of the bank's dimension); `None` for a
    /// missing entry or a query of the wrong dimension.
    pub fn score(&self, query: &[i8], i: usize, index: Index) -> Option<i32> {
        if query.len() != self.dim() {
            return None;
        }
        let e = self.entry(i)?;
        Some(self.entry_score(&e, query, norm2(query), index))
    }

    /// Fills `out` with the best `out.len()` entries for `query`, best first, and returns how many
    /// it wrote (0 for a query of the wrong dimension). Does not apply the abstain threshold.
    pub fn search(&self, query: &[i8], index: Index, out: &mut [Hit]) -> usize {
        self.search_mixed(query, None, index, out)
    }

    /// [`Bank::search`], each entry's score raised by its lexical match with `lexical`'s context
    /// at `lexical`'s weight (score units; see [`super::lexicon::mix`]).
    pub fn search_mixed(
        &self,
        query: &[i8],
        lexical: Option<(&Context<'_, '_>, i32)>,
        index: Index,
        out: &mut [Hit],
    ) -> usize {
        if query.len() != self.dim() || out.is_empty() {
            return 0;
        }
        let qn = norm2(query);
        let mut n = 0;
        for (i, e) in self.entries().enumerate() {
            let mut score = self.entry_score(&e, query, qn, index);
            if let Some((context, weight)) = lexical {
                score = mix(score, context.entry_score(i), weight);
            }
            insert(out, &mut n, Hit { index: i, score });
        }
        n
    }

    /// Whether `score` clears the bank's abstain threshold.
    pub fn is_confident(&self, score: i32) -> bool {
        self.threshold() == NEVER_ABSTAIN || score >= self.threshold()
    }

    /// The device's `ask`: the best entry over [`Index::Both`], or an abstention when it scores
    /// below the bank's threshold.
    pub fn ask(&self, query: &[i8]) -> Reply {
        let mut best = [Hit::default()];
        if self.search(query, Index::Both, &mut best) == 0 {
            return Reply::Abstain(None);
        }
        let [hit] = best;
        if self.is_confident(hit.score) {
            Reply::Answer(hit)
        } else {
            Reply::Abstain(Some(hit))
        }
    }
}
