//! Many texts through the native runtime at once: consecutive texts are packed into batches of
//! up to [`BATCH_TOKENS`] tokens, each embedded with one GEMM per linear layer
//! ([`Model::embed_ids_batch`]: the weights are read once per batch, not once per sentence), and
//! the batches are spread over rayon's threads, one arena per worker. Every vector is the bytes
//! [`Model::embed`] gives its text alone.

use anyhow::{anyhow, Result};
use pith_runtime::Model;
use rayon::prelude::*;

/// Tokens per batch: enough rows for the host's GEMM tiles to reuse each weight line many times
/// (its tiles are 14 tokens high), few enough that a batch's activations stay in L2.
pub const BATCH_TOKENS: usize = 256;

/// The token ids of each text (`[CLS] .. [SEP]`, cut at the model's longest input).
pub fn tokenize(model: &Model<'_>, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
    texts
        .par_iter()
        .map_init(
            || vec![0u32; model.max_tokens()],
            |buf, t| {
                let n = model
                    .tokenizer()
                    .encode(t, buf)
                    .map_err(|e| anyhow!("tokenizing {t:?}: {e}"))?;
                Ok(buf[..n].to_vec())
            },
        )
        .collect()
}

/// Consecutive runs of `ids` of at most `max_tokens` tokens in all (a longer text alone).
pub fn batches(ids: &[Vec<u32>], max_tokens: usize) -> Vec<&[Vec<u32>]> {
    let mut out = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, x) in ids.iter().enumerate() {
        if i > start && tokens + x.len() > max_tokens {
            out.push(&ids[start..i]);
            (start, tokens) = (i, 0);
        }
        tokens += x.len();
    }
    if start < ids.len() {
        out.push(&ids[start..]);
    }
    out
}

/// Embeds tokenized texts in batches of up to `max_tokens` tokens, in parallel; `done(n)` hears
/// of each finished batch of `n` texts (a progress bar).
pub fn embed_ids(
    model: &Model<'_>,
    ids: &[Vec<u32>],
    max_tokens: usize,
    done: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<i8>>> {
    let dim = model.dim();
    let words = model.arena_words(max_tokens.max(model.max_tokens()));
    let parts: Vec<Vec<Vec<i8>>> = batches(ids, max_tokens)
        .par_iter()
        .map_init(
            || vec![0i32; words],
            |arena, batch| -> Result<Vec<Vec<i8>>> {
                let flat: Vec<u32> = batch.concat();
                let lens: Vec<usize> = batch.iter().map(Vec::len).collect();
                let mut out = vec![0i8; batch.len() * dim];
                model
                    .embed_ids_batch(&flat, &lens, arena, &mut out)
                    .map_err(|e| anyhow!("embedding a batch of {} texts: {e}", batch.len()))?;
                done(batch.len());
                Ok(out.chunks_exact(dim).map(<[i8]>::to_vec).collect())
            },
        )
        .collect::<Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
}

/// [`tokenize`] then [`embed_ids`] with [`BATCH_TOKENS`].
pub fn embed(model: &Model<'_>, texts: &[&str]) -> Result<Vec<Vec<i8>>> {
    embed_ids(model, &tokenize(model, texts)?, BATCH_TOKENS, &|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs keep the order, never exceed the budget unless one text alone does, and cover every
    /// text once.
    #[test]
    fn batches_cover_every_text_in_order() {
        let ids: Vec<Vec<u32>> = [3usize, 5, 2, 9, 1, 1, 4, 12, 2]
            .iter()
            .map(|&n| vec![7; n])
            .collect();
        let b = batches(&ids, 8);
        let lens: Vec<Vec<usize>> = b.iter().map(|r| r.iter().map(Vec::len).collect()).collect();
        assert_eq!(
            lens,
            vec![
                vec![3, 5],
                vec![2],
                vec![9],
                vec![1, 1, 4],
                vec![12],
                vec![2]
            ]
        );
        assert!(batches(&[], 8).is_empty());
    }
}
