//! Vocabulary pruning: keep the tokens a corpus uses (plus every single character, so WordPiece can
//! always fall back) so the token table fits boards with less memory. Tokenization of words whose
//! pieces were dropped changes (they split into smaller pieces); host and device still agree
//! because both read the same pruned package.

use std::collections::BTreeSet;

use anyhow::{ensure, Result};
use ndarray::Array2;

use crate::checkpoint::Checkpoint;
use crate::text::CheckpointTokenizer;

/// Keeps at most `size` tokens: specials, single characters and `##` + single character, then the
/// tokens `corpus` uses (most frequent first), then the lowest remaining ids (BERT vocabularies list
/// whole words roughly by frequency).
pub fn prune(ck: &mut Checkpoint, corpus: &[String], size: usize) -> Result<()> {
    let n = ck.vocab.len();
    if size >= n {
        return Ok(());
    }
    let t = ck.tokenizer;
    let mut keep: BTreeSet<usize> = [t.cls_id, t.sep_id, t.unk_id, t.pad_id]
        .iter()
        .map(|&i| i as usize)
        .collect();
    for (i, tok) in ck.vocab.iter().enumerate() {
        let body = tok.strip_prefix("##").unwrap_or(tok);
        if body.chars().count() == 1
            || (tok.starts_with('[') && tok.ends_with(']') && !tok.starts_with("[unused"))
        {
            keep.insert(i);
        }
    }
    ensure!(
        keep.len() < size,
        "the {} character tokens alone exceed --vocab-size {size}",
        keep.len()
    );
    let tok = CheckpointTokenizer::new(ck);
    let mut freq = vec![0u64; n];
    for line in corpus {
        for id in tok.ids(line)? {
            freq[id as usize] += 1;
        }
    }
    let mut used: Vec<usize> = (0..n).filter(|&i| freq[i] > 0).collect();
    used.sort_by(|&a, &b| freq[b].cmp(&freq[a]).then(a.cmp(&b)));
    for i in used.into_iter().chain(0..n) {
        if keep.len() >= size {
            break;
        }
        if !ck.vocab[i].starts_with("[unused") {
            keep.insert(i);
        }
    }
    let ids: Vec<usize> = keep.into_iter().collect();
    let h = ck.config.hidden;
    let mut emb = Array2::<f32>::zeros((ids.len(), h));
    for (new, &old) in ids.iter().enumerate() {
        emb.row_mut(new).assign(&ck.word_emb.row(old));
    }
    let remap = |old: u32| {
        ids.iter()
            .position(|&i| i == old as usize)
            .map(|p| p as u32)
    };
    ck.tokenizer.cls_id = remap(t.cls_id).unwrap_or(0);
    ck.tokenizer.sep_id = remap(t.sep_id).unwrap_or(0);
    ck.tokenizer.unk_id = remap(t.unk_id).unwrap_or(0);
    ck.tokenizer.pad_id = remap(t.pad_id).unwrap_or(0);
    ck.vocab = ids.iter().map(|&i| ck.vocab[i].clone()).collect();
    ck.word_emb = emb;
    ck.config.vocab_size = ids.len();
    Ok(())
}
