//! The texts a student learns from, and the held-out ones its dev check reads.
//!
//! Default training texts (data/README.md says where each comes from and its license): the
//! first [`SNLI_TRAIN_LINES`] SNLI sentences of `data/calib` and every turn of the chit-chat
//! training split. The dev check is always the SNLI lines after those: consecutive lines share a
//! premise, so their pairs span the whole similarity range. SICK (the evaluation) and the FAQ
//! bank and queries (the other evaluation) are never training text.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{ensure, Result};

use crate::catalog::CHITCHAT_TRAIN;

/// SNLI lines of `data/calib` that are training text; the rest are the dev check
/// (data/README.md).
pub const SNLI_TRAIN_LINES: usize = 10_000;

/// Training and dev texts, deduplicated, in file order.
pub struct Corpus {
    /// Training texts.
    pub train: Vec<String>,
    /// Held-out texts of the dev check.
    pub dev: Vec<String>,
    /// Where the training texts came from (for the card).
    pub sources: Vec<(PathBuf, usize)>,
}

impl Corpus {
    /// The default corpus, or the lines of `files` (each a source; a text already in an earlier
    /// source is not repeated). Lines of the dev check are dropped from the training texts
    /// either way.
    pub fn load(files: &[PathBuf]) -> Result<Corpus> {
        let snli = crate::defaults::calib_file()?;
        let lines = crate::text::read_lines(&snli)?;
        ensure!(
            lines.len() > SNLI_TRAIN_LINES + 100,
            "{} has {} lines; the dev check needs the ones after line {SNLI_TRAIN_LINES}",
            snli.display(),
            lines.len()
        );
        let dev: Vec<String> = dedup(lines[SNLI_TRAIN_LINES..].iter().cloned(), &HashSet::new());
        let held: HashSet<&str> = dev.iter().map(String::as_str).collect();
        let mut sources = Vec::new();
        let train = match files {
            [_, ..] => {
                let mut all: Vec<String> = Vec::new();
                let mut seen: HashSet<String> = HashSet::new();
                for f in files {
                    let lines = crate::text::read_lines(f)?;
                    let t = dedup(
                        lines.into_iter().filter(|l| !seen.contains(l.trim())),
                        &held,
                    );
                    seen.extend(t.iter().cloned());
                    sources.push((f.to_path_buf(), t.len()));
                    all.extend(t);
                }
                all
            }
            [] => {
                let first = dedup(lines[..SNLI_TRAIN_LINES].iter().cloned(), &held);
                sources.push((snli.clone(), first.len()));
                let chat = crate::defaults::repo_root()?.join(CHITCHAT_TRAIN);
                let turns = crate::reasoner::eval::read_conversations(&chat)?
                    .into_iter()
                    .flatten();
                let mut all = first;
                let before = all.len();
                let seen: HashSet<String> = all.iter().cloned().collect();
                let more = dedup(turns.filter(|t| !seen.contains(t)), &held);
                all.extend(more);
                sources.push((chat, all.len() - before));
                all
            }
        };
        ensure!(
            train.len() >= 2,
            "the training corpus has {} distinct texts; at least 2 are needed",
            train.len()
        );
        Ok(Corpus {
            train,
            dev,
            sources,
        })
    }
}

impl Corpus {
    /// Each training text's weight in the vocabulary's frequencies: one over its source's text
    /// count, so every source weighs the same (the chit-chat turns outnumber the SNLI lines ten
    /// to one, and their everyday words would crowd out the rest).
    pub fn weights(&self) -> Vec<f64> {
        self.sources
            .iter()
            .flat_map(|&(_, n)| std::iter::repeat_n(1.0 / n.max(1) as f64, n))
            .collect()
    }
}

impl Corpus {
    /// The `n` most frequent words of the training texts (lowercased runs of letters, two or
    /// more; each source weighing the same, as in [`Corpus::weights`]), most frequent first,
    /// ties in alphabetical order.
    pub fn words(&self, n: usize) -> Vec<String> {
        let mut freq: std::collections::HashMap<String, f64> = Default::default();
        for (text, w) in self.train.iter().zip(self.weights()) {
            for word in text
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| w.chars().nth(1).is_some())
            {
                *freq.entry(word.to_lowercase()).or_default() += w;
            }
        }
        let mut words: Vec<(String, f64)> = freq.into_iter().collect();
        words.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        words.into_iter().take(n).map(|(w, _)| w).collect()
    }
}

/// Trimmed, non-empty, first occurrence only, none of `drop`.
fn dedup(lines: impl IntoIterator<Item = String>, drop: &HashSet<&str>) -> Vec<String> {
    let mut seen = HashSet::new();
    lines
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !drop.contains(l.as_str()) && seen.insert(l.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_count_each_source_alike_and_break_ties_alphabetically() {
        let c = Corpus {
            train: ["The cat sat.", "the CAT ran", "a dog", "Hi there", "hi x"]
                .map(String::from)
                .to_vec(),
            dev: Vec::new(),
            sources: vec![("a".into(), 3), ("b".into(), 2)],
        };
        // Source a's texts weigh 1/3 each, b's 1/2: "hi" 1, "cat" and "the" 2/3 (a tie, in
        // alphabetical order), "there" 1/2 (not "the"); one-letter "a" and "x" are not words.
        assert_eq!(c.words(4), ["hi", "cat", "the", "there"]);
        assert_eq!(c.words(100).len(), 7);
    }
}
