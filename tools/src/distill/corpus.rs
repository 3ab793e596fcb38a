//! The texts a student learns from, and the held-out ones its dev check reads.
//!
//! Default training texts (data/README.md says where each comes from and its license): the
//! first [`SNLI_TRAIN_LINES`] SNLI sentences of `data/calib` and every turn of the chit-chat
//! training split. The dev check is always the SNLI lines after those: consecutive lines share a
//! premise, so their pairs span the whole similarity range. SICK (the evaluation) and the FAQ
//! bank and queries (the other evaluation) are never training text.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};

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
    /// A word-frequency list (`--words`): its words and their shares of its total, most
    /// frequent first; empty without one. It weighs as one more source in the vocabulary's
    /// frequencies and as much as all the texts in the choice of one-word texts
    /// ([`Corpus::words`]); it is not training text.
    pub word_list: Vec<(String, f64)>,
    /// The list's file (for the card).
    pub word_list_file: Option<PathBuf>,
}

impl Corpus {
    /// The default corpus, or the lines of `files` (each a source; a text already in an earlier
    /// source is not repeated). Lines of the dev check are dropped from the training texts
    /// either way.
    pub fn load(files: &[PathBuf], word_list: Option<&Path>) -> Result<Corpus> {
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
            word_list: match word_list {
                Some(f) => read_word_list(f)?,
                None => Vec::new(),
            },
            word_list_file: word_list.map(Path::to_path_buf),
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
    /// ties in alphabetical order. With a word list, a word's frequency is its share of the
    /// texts' words plus its share of the list's (the two weigh the same).
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
        if !self.word_list.is_empty() {
            let total: f64 = freq.values().sum();
            freq.values_mut()
                .for_each(|f| *f /= total.max(f64::MIN_POSITIVE));
            for (word, share) in &self.word_list {
                *freq.entry(word.clone()).or_default() += share;
            }
        }
        let mut words: Vec<(String, f64)> = freq.into_iter().collect();
        words.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        words.into_iter().take(n).map(|(w, _)| w).collect()
    }
}

/// Reads a word-frequency list: `word<TAB>frequency` a line (a word: two or more letters,
/// lowercase; a frequency: a positive number, any scale). Returns each word with its share of
/// the list's total. Any other line is an error naming the file and the line.
pub fn read_word_list(path: &Path) -> Result<Vec<(String, f64)>> {
    let mut words = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in crate::input::text(path)?.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let Some((word, f)) = line.split_once('\t') else {
            bail!("{}: expected `word<TAB>frequency`, got {line:?}", at());
        };
        let ok = word.chars().nth(1).is_some()
            && word.chars().all(|c| c.is_alphabetic() && !c.is_uppercase());
        ensure!(
            ok,
            "{}: {word:?} is not a lowercase word of two or more letters",
            at()
        );
        let f: f64 = match f.trim().parse() {
            Ok(f) if f > 0.0 && f64::is_finite(f) => f,
            _ => bail!("{}: the frequency {f:?} is not a positive number", at()),
        };
        ensure!(
            seen.insert(word.to_string()),
            "{}: {word:?} comes twice",
            at()
        );
        words.push((word.to_string(), f));
    }
    ensure!(!words.is_empty(), "{}: no words", path.display());
    let total: f64 = words.iter().map(|w| w.1).sum();
    Ok(words.into_iter().map(|(w, f)| (w, f / total)).collect())
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
            word_list: Vec::new(),
            word_list_file: None,
        };
        // Source a's texts weigh 1/3 each, b's 1/2: "hi" 1, "cat" and "the" 2/3 (a tie, in
        // alphabetical order), "there" 1/2 (not "the"); one-letter "a" and "x" are not words.
        assert_eq!(c.words(4), ["hi", "cat", "the", "there"]);
        assert_eq!(c.words(100).len(), 7);
    }

    #[test]
    fn a_word_list_weighs_as_one_more_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("words.tsv");
        std::fs::write(&path, "onion\t3\n\nslicing\t2e0\n").unwrap();
        let list = read_word_list(&path).unwrap();
        assert_eq!(
            list,
            [("onion".to_string(), 0.6), ("slicing".to_string(), 0.4)]
        );
        let c = Corpus {
            train: ["the cat", "the dog"].map(String::from).to_vec(),
            dev: Vec::new(),
            sources: vec![("a".into(), 2)],
            word_list: list,
            word_list_file: Some(path),
        };
        // The texts' words: "the" 1/2 of them, "cat" and "dog" 1/4 each; the list adds 0.6 and
        // 0.4.
        assert_eq!(c.words(3), ["onion", "the", "slicing"]);
    }

    #[test]
    fn a_malformed_word_list_is_refused_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("words.tsv");
        for (text, why) in [
            ("onion\t3\nslicing 1\n", "expected `word<TAB>frequency`"),
            ("onion\t3\n\nOnion\t1\n", "not a lowercase word"),
            ("onion\t3\nx\t1\n", "not a lowercase word"),
            ("onion\t3\nslicing\t-1\n", "not a positive number"),
            ("onion\t3\nslicing\tNaN\n", "not a positive number"),
            ("onion\t3\nonion\t1\n", "comes twice"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = read_word_list(&path).unwrap_err().to_string();
            let line = text.lines().count();
            assert!(
                e.contains(&format!("words.tsv:{line}")) && e.contains(why),
                "{e}"
            );
        }
        std::fs::write(&path, "\n").unwrap();
        let e = read_word_list(&path).unwrap_err().to_string();
        assert!(e.contains("words.tsv") && e.contains("no words"), "{e}");
    }
}
