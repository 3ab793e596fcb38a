//! Reading sentence files and tokenizing them with the runtime's own tokenizer.

use std::path::Path;

use anyhow::{Context, Result};

use crate::checkpoint::Checkpoint;
use pith_runtime::tokenizer::Tokenizer;

/// Non-empty trimmed lines of a text file.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Tokenizes with exactly the tokenizer the device runs (built from the checkpoint's vocabulary).
pub struct CheckpointTokenizer {
    section: Vec<u8>,
    config: pith_runtime::format::TokenizerConfig,
}

impl CheckpointTokenizer {
    /// Builds the vocabulary section for `ck`.
    pub fn new(ck: &Checkpoint) -> Self {
        CheckpointTokenizer {
            section: pith_runtime::tokenizer::build_vocab_section(&ck.vocab),
            config: ck.tokenizer,
        }
    }

    /// `[CLS] .. [SEP]` ids of `text`, truncated to the model's maximum length.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        let tok = Tokenizer::new(&self.section, self.config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut ids = vec![0u32; self.config.max_len as usize];
        let n = tok
            .encode(text, &mut ids)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        ids.truncate(n);
        Ok(ids)
    }
}
