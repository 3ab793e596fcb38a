//! The teacher's labels: its sentence embedding of every kept token as `[CLS] token [SEP]` and of
//! every training and dev text, on `threads` cores.
//!
//! The forward passes run in pith's own integer runtime, on the teacher quantized with 16-bit
//! FFNs (`pith quantize --ffn16 all`; for all-MiniLM-L6-v2 its embeddings have cosine 0.9988 to
//! fp32 and the same SICK score): ten to twenty times faster than the fp32 reference on a CPU,
//! which makes a 100,000-text corpus a matter of minutes on two cores.
//!
//! The teacher package and the labels are cached in the work folder under a hash of what they
//! depend on (the teacher's files, then the token ids or the texts), so rerunning a command, or
//! one that changes only the training settings, skips the forward passes.

use std::path::Path;

use anyhow::{anyhow, Context, Result};

use super::corpus::Corpus;
use super::vocab::Choice;
use crate::checkpoint::Checkpoint;
use crate::text::CheckpointTokenizer;

/// The teacher's embeddings: files in the work folder, raw little-endian f32 `[rows, dim]`.
pub struct Labels {
    /// Hash of the teacher's files.
    pub teacher_key: u64,
    /// Whether every label came from the work folder's cache (no forward pass ran).
    pub cached: bool,
    /// Width of the teacher's embeddings.
    pub dim: usize,
    /// One row per kept token (the choice's order).
    pub tokens: String,
    /// One row per training text.
    pub train: String,
    /// One row per dev text.
    pub dev: String,
    /// One row per variant text.
    pub variants: String,
    /// One row per frequent corpus word as a one-word text (Tier S; `None` without words).
    pub words: Option<String>,
}

pub(super) const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// Sentences whose teacher vectors go into the labels' cache key (see [`label`]).
const PROBES: [&str; 3] = [
    "A man is playing a guitar on the street.",
    "Nobody is riding a bicycle; it is raining.",
    "How do I list the files in a directory, sorted by size?",
];

/// The teacher folder's files that decide its outputs.
const TEACHER_FILES: [&str; 8] = [
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
];

/// Hash of the teacher's files (absent ones count as absent).
pub fn teacher_key(dir: &Path) -> Result<u64> {
    let mut d = CRC.digest();
    for f in TEACHER_FILES {
        d.update(f.as_bytes());
        match crate::input::bytes_or_missing(&dir.join(f))? {
            Some(b) => {
                d.update(&(b.len() as u64).to_le_bytes());
                d.update(&b);
            }
            None => d.update(b"absent"),
        }
    }
    Ok(d.finalize())
}

/// Writes `v` as raw little-endian f32, whole or not at all.
fn write_f32(path: &Path, v: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    crate::output::write_whole(path, &bytes)
}

/// The teacher quantized with 16-bit FFNs, from the cache or made now.
fn teacher_package(dir: &Path, key: u64, work: &Path) -> Result<Vec<u8>> {
    let path = work.join(format!("teacher-{key:016x}.pith"));
    if let Some(b) = crate::input::bytes_or_missing(&path)? {
        if pith_runtime::Model::new(&b).is_ok() {
            super::stage(&format!("teacher: {}", path.display()));
            return Ok(b);
        }
    }
    super::stage("teacher: quantizing with 16-bit FFNs (pith quantize --ffn16 all)");
    crate::quant::pipeline::run(crate::quant::pipeline::Options {
        ffn16: u64::MAX,
        ..crate::quant::pipeline::Options::new(dir.to_path_buf(), path.clone())
    })?;
    crate::input::bytes(&path)
}

/// Labels every kept token, every text and every word (a one-word text), from the cache where
/// it has them.
#[allow(clippy::too_many_arguments)]
pub fn label(
    dir: &Path,
    teacher: &Checkpoint,
    choice: &Choice,
    corpus: &Corpus,
    variants: &[String],
    words: &[String],
    work: &Path,
    threads: usize,
) -> Result<Labels> {
    let key = teacher_key(dir)?;
    let package = teacher_package(dir, key, work)?;
    let model = pith_runtime::Model::new(&package)
        .map_err(|e| anyhow!("the teacher's int8 package: {e}"))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| anyhow!("starting {threads} threads: {e}"))?;
    let t = teacher.tokenizer;
    let token_ids: Vec<Vec<u32>> = choice
        .kept
        .iter()
        .map(|&id| vec![t.cls_id, id, t.sep_id])
        .collect();
    let tok = CheckpointTokenizer::new(teacher);
    let ids = |texts: &[String]| pool.install(|| tok.ids_all(texts));
    // Labels depend on the package's bytes (the teacher and the quantizer that made it) and on
    // the runtime's arithmetic, which a newer pith may refine without changing a package byte:
    // the key holds the teacher's own vectors of a few probe sentences, so cached labels from
    // another arithmetic are not reused.
    let mut package_key = CRC.digest();
    package_key.update(&package);
    let mut probe = vec![0i8; model.dim()];
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    for text in PROBES {
        model
            .embed(text, &mut arena, &mut probe)
            .map_err(|e| anyhow!("the teacher on {text:?}: {e}"))?;
        package_key.update(&probe.iter().map(|&v| v as u8).collect::<Vec<u8>>());
    }
    let package_key = package_key.finalize();
    let fresh = std::cell::Cell::new(false);
    let run = |what: &str, seqs: Vec<Vec<u32>>| -> Result<String> {
        let mut d = CRC.digest_with_initial(package_key);
        for s in &seqs {
            d.update(&(s.len() as u32).to_le_bytes());
            for id in s {
                d.update(&id.to_le_bytes());
            }
        }
        let name = format!("labels-{what}-{:016x}.f32", d.finalize());
        let file = work.join(&name);
        let dim = teacher.config.hidden;
        // A cache file is written whole (renamed into place), so the right size means complete.
        if std::fs::metadata(&file).is_ok_and(|m| m.len() == (seqs.len() * dim * 4) as u64) {
            super::stage(&format!("labels: {what} from {}", file.display()));
            return Ok(name);
        }
        fresh.set(true);
        super::stage(&format!(
            "labels: the teacher embeds {} {what} on {threads} threads",
            seqs.len()
        ));
        let bar = indicatif::ProgressBar::new(seqs.len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {wide_bar} {pos}/{len} {elapsed_precise} (eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_string());
        // Batches of consecutive texts, one GEMM per layer each (crate::batch).
        let rows = pool.install(|| {
            let done = |n: usize| bar.inc(n as u64);
            crate::batch::embed_ids(&model, &seqs, crate::batch::BATCH_TOKENS, &done)
        })?;
        bar.finish_and_clear();
        let flat: Vec<f32> = rows.into_iter().flatten().map(f32::from).collect();
        write_f32(&file, &flat).with_context(|| format!("caching the teacher's {what}"))?;
        Ok(name)
    };
    let tokens = run("tokens", token_ids)?;
    let train = run("train", ids(&corpus.train)?)?;
    let dev = run("dev", ids(&corpus.dev)?)?;
    let variants = run("variants", ids(variants)?)?;
    let words = match words.is_empty() {
        true => None,
        false => Some(run("words", ids(words)?)?),
    };
    Ok(Labels {
        teacher_key: key,
        cached: !fresh.get(),
        dim: teacher.config.hidden,
        tokens,
        train,
        dev,
        variants,
        words,
    })
}
