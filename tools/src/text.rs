//! Reading sentence files and tokenizing them with the runtime's own tokenizer.

use std::path::Path;

use anyhow::Result;

use crate::checkpoint::Checkpoint;
use pith_runtime::tokenizer::Tokenizer;

/// Non-empty trimmed lines of a text file.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = crate::input::text(path)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Longest line a streamed input (standard input, a device path) may have.
pub const MAX_LINE: usize = 1 << 16;

/// The lines of `r` as they arrive, each at most [`MAX_LINE`] bytes and UTF-8: a longer one (an
/// endless stream such as /dev/zero) or invalid bytes are an error naming `what` and the line,
/// never an unbounded read.
pub struct Lines<R> {
    r: R,
    what: String,
    n: usize,
    failed: bool,
}

impl<R: std::io::BufRead> Lines<R> {
    /// The lines of `r`, called `what` in errors.
    pub fn new(r: R, what: &str) -> Self {
        Lines {
            r,
            what: what.to_string(),
            n: 0,
            failed: false,
        }
    }
}

impl<R: std::io::BufRead> Iterator for Lines<R> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        use std::io::{BufRead, Read};
        if self.failed {
            return None;
        }
        self.n += 1;
        let mut buf = Vec::new();
        let got = (&mut self.r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf);
        let fail = |s: &mut Self, e: anyhow::Error| {
            s.failed = true;
            Some(Err(e))
        };
        match got {
            Ok(0) => None,
            Ok(_) if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') => {
                let e = anyhow::anyhow!(
                    "{}:{}: line longer than {MAX_LINE} bytes",
                    self.what,
                    self.n
                );
                fail(self, e)
            }
            Ok(_) => {
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                match String::from_utf8(line.to_vec()) {
                    Ok(s) => Some(Ok(s)),
                    Err(_) => {
                        let e = anyhow::anyhow!("{}:{}: not UTF-8", self.what, self.n);
                        fail(self, e)
                    }
                }
            }
            Err(e) => {
                let e = anyhow::anyhow!("reading {}: {e}", self.what);
                fail(self, e)
            }
        }
    }
}

/// Tokenizes with exactly the tokenizer the device runs (built from the checkpoint's vocabulary).
pub struct CheckpointTokenizer {
    section: Vec<u8>,
    config: pith_runtime::format::TokenizerConfig,
}

impl CheckpointTokenizer {
    /// Builds the vocabulary section for `ck`.
    pub fn new(ck: &Checkpoint) -> Self {
        Self::from_vocab(&ck.vocab, ck.tokenizer)
    }

    /// The tokenizer of a vocabulary in id order and its settings (a pruned or student
    /// vocabulary; `config`'s special ids index `vocab`).
    pub fn from_vocab(vocab: &[String], config: pith_runtime::format::TokenizerConfig) -> Self {
        CheckpointTokenizer {
            section: pith_runtime::tokenizer::build_vocab_section(vocab),
            config,
        }
    }

    /// `[CLS] .. [SEP]` ids of `text`, truncated to the model's maximum length.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        Self::encode(&self.tokenizer()?, text, self.config.max_len)
    }

    /// [`ids`](Self::ids) of every text, on every core (the vocabulary checked once per worker,
    /// not once per text).
    pub fn ids_all(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        use rayon::prelude::*;
        texts
            .par_iter()
            .map_init(
                || self.tokenizer(),
                |tok, text| match tok {
                    Ok(tok) => Self::encode(tok, text, self.config.max_len),
                    Err(e) => Err(anyhow::anyhow!("{e}")),
                },
            )
            .collect()
    }

    fn tokenizer(&self) -> Result<Tokenizer<'_>> {
        Tokenizer::new(&self.section, self.config).map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn encode(tok: &Tokenizer<'_>, text: &str, max_len: u32) -> Result<Vec<u32>> {
        let mut ids = vec![0u32; max_len as usize];
        let n = tok
            .encode(text, &mut ids)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        ids.truncate(n);
        Ok(ids)
    }
}
