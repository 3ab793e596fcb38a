//! The model card (`README.md`) and the training record (`record.json`) of a distilled student:
//! what it is, what it scored beside its teacher, the exact command, the data and its licenses.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

use super::corpus::Corpus;
use super::evaluate::{Figures, SICK_DEV};
use super::vocab::Choice;
use super::{Options, Outputs};
use crate::checkpoint::Checkpoint;

/// Wall time per stage, in order.
#[derive(Default)]
pub struct Timings(Vec<(&'static str, f64)>);

impl Timings {
    /// Records the stage `name` that started at `since`.
    pub fn lap(&mut self, name: &'static str, since: Instant) {
        self.0.push((name, since.elapsed().as_secs_f64()));
    }
}

/// Everything the card and the record say.
pub struct Card<'a> {
    pub options: &'a Options,
    pub name: &'a str,
    pub teacher: &'a Checkpoint,
    /// The recipe as data (the record's copy).
    pub recipe: Value,
    /// What the student is, for the title and the first paragraph.
    pub kind: &'static str,
    pub intro: String,
    /// The model row's student cell.
    pub shape: String,
    /// What the dev history's first entry is (the state before training).
    pub start: &'static str,
    /// The method section (numbered steps).
    pub method: String,
    /// The package budget in bytes.
    pub budget: usize,
    /// BLAS threads of the training.
    pub blas_threads: usize,
    pub vocab: &'a Choice,
    pub corpus: &'a Corpus,
    pub outputs: &'a Outputs,
    pub package_bytes: usize,
    pub figures: &'a Figures,
    pub history: &'a Value,
    pub timings: &'a Timings,
}

/// `path` relative to the checkout when it lies inside it (the project's own data), else as
/// given: a card names no folder of the machine that wrote it.
fn shown(path: &std::path::Path) -> String {
    crate::defaults::repo_root()
        .ok()
        .and_then(|root| {
            path.strip_prefix(root)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| path.display().to_string())
}

/// The command line as typed (arguments with spaces or quotes single-quoted).
fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 { "pith".to_string() } else { a };
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The dev check `key` after the PCA and at the end of the trainer's history.
fn dev_span(history: &Value, key: &str) -> (f64, f64) {
    let h = history
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let at = |v: Option<&Value>| {
        v.and_then(|e| e.get(key))
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    (at(h.first()), at(h.last()))
}

/// Writes the card and the record.
pub fn write(c: &Card<'_>) -> Result<()> {
    let command = command_line();
    let f = c.figures;
    let (dev0, dev1) = dev_span(c.history, "dev_agreement");
    let (close0, close1) = dev_span(c.history, "close_agreement");
    let total: f64 = c.timings.0.iter().map(|t| t.1).sum();
    let file_name = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    let mut md = String::new();
    let w = &mut md;
    writeln!(
        w,
        "# {}: a {} student of {}\n",
        c.name, c.kind, c.teacher.name
    )?;
    writeln!(w, "{} Made by `pith distill`.\n", c.intro)?;
    writeln!(w, "| | student | teacher | TF-IDF |\n|---|---|---|---|")?;
    writeln!(
        w,
        "| model | {}, package {} bytes | {} layers, {} wide, {} tokens (fp32) | word counts, no model |",
        c.shape,
        c.package_bytes,
        c.teacher.config.layers,
        c.teacher.config.hidden,
        c.teacher.vocab.len()
    )?;
    writeln!(
        w,
        "| SICK dev Spearman ({} pairs) | **{:.2}** | {:.2} | {:.2} |",
        f.sick_pairs, f.student.sick_dev, f.teacher.sick_dev, f.lexical.sick_dev
    )?;
    writeln!(
        w,
        "| StackFAQ top-1 / MRR ({} queries, {} entries) | **{:.2}** / {:.2} | {:.2} / {:.2} | \
         {:.2} / {:.2} |",
        f.faq_queries,
        f.faq_entries,
        f.student.faq_top1,
        f.student.faq_mrr,
        f.teacher.faq_top1,
        f.teacher.faq_mrr,
        f.lexical.faq_top1,
        f.lexical.faq_mrr
    )?;
    writeln!(
        w,
        "| dev check (agreement with the teacher's cosines, {} held-out SNLI pairs) | {dev0:.2} \
         {}, **{dev1:.2}** after training | 100 | — |",
        c.corpus.dev.len().saturating_sub(1),
        c.start
    )?;
    if close1.is_finite() {
        writeln!(
            w,
            "| close-pair check (the same agreement on those lines against their own edited \
             variants) | {close0:.2} {}, **{close1:.2}** after training | 100 | — |",
            c.start
        )?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "The student is measured as a device runs it (the int8 package, the integer bank \
         search); the teacher is its fp32 forward pass scored the same way in float; TF-IDF is \
         the cosine of word-count vectors (sublinear term frequency, BM25's IDF over the SICK \
         sentences, or over each FAQ entry's question and answer as one document). SICK dev is \
         `{SICK_DEV}` (never trained on); StackFAQ is the bank `data/faq/stackfaq-bank.jsonl` \
         and its user queries (never trained on; the queries also set the bank's abstain \
         threshold).\n"
    )?;
    writeln!(w, "## Command\n\n```sh\n{command}\n```\n")?;
    writeln!(
        w,
        "Same command, same seed, same bytes: the teacher's labels are cached in `work/` (by \
         the teacher's files and the texts), the training is seeded and runs on {} BLAS \
         thread(s) (the same count splits every product the same way). Took {total:.0} s: {}.\n",
        c.blas_threads,
        c.timings
            .0
            .iter()
            .map(|(n, s)| format!("{n} {s:.0} s"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(w, "## Data\n")?;
    writeln!(
        w,
        "- Teacher: `{}` (its own license governs these weights too).",
        c.options.checkpoint.display()
    )?;
    for (path, n) in &c.corpus.sources {
        writeln!(w, "- Training texts: {n} from `{}`.", shown(path))?;
    }
    if let Some(path) = &c.corpus.word_list_file {
        writeln!(
            w,
            "- Word list: {} words from `{}`, weighing as one more source in the vocabulary's \
             token frequencies and as much as the texts in the choice of one-word texts (not \
             training text).",
            c.corpus.word_list.len(),
            shown(path)
        )?;
    }
    writeln!(
        w,
        "- Dev check: the {} SNLI lines after the first 10,000 of `data/calib/snli-dev-sentences.txt`.",
        c.corpus.dev.len()
    )?;
    writeln!(
        w,
        "- Sources and licenses of the project's data: `data/README.md` (SNLI CC BY-SA 4.0, \
         BYU chit-chat MIT, SICK CC BY-NC-SA 3.0, StackFAQ CC BY-SA). Only weights derived \
         from them are in the package; no text is.\n"
    )?;
    writeln!(w, "## Method\n\n{}", c.method)?;
    writeln!(w, "## Files\n")?;
    writeln!(
        w,
        "- `{}`: the package (flash it, or `pith embed --model`).\n\
         - `{}`: the StackFAQ bank for this package (`pith ask --bank`).\n\
         - `checkpoint/`: the float model (`pith quantize checkpoint` rebuilds the package), \
         with the trainer's record `training.json`.\n\
         - `record.json`: everything above as data.\n\
         - `work/`: the teacher's cached labels, the trainer's inputs and saved state (delete \
         it once the run has ended).",
        file_name(&c.outputs.package),
        file_name(&c.outputs.bank)
    )?;
    crate::output::write_whole(&c.outputs.card, md.as_bytes())?;

    let record = json!({
        "command": command,
        "name": c.name,
        "tier": c.options.tier,
        "teacher": {
            "path": c.options.checkpoint,
            "name": c.teacher.name,
            "layers": c.teacher.config.layers,
            "hidden": c.teacher.config.hidden,
            "vocab": c.teacher.vocab.len(),
        },
        "recipe": &c.recipe,
        "budget": c.budget,
        "vocabulary": { "tokens": c.vocab.vocab.len(), "estimated_bytes": c.vocab.bytes },
        "corpus": {
            "sources": c.corpus.sources.iter().map(|(p, n)| json!({"path": shown(p), "texts": n})).collect::<Vec<_>>(),
            "train": c.corpus.train.len(),
            "dev": c.corpus.dev.len(),
            "word_list": c.corpus.word_list_file.as_ref().map(|p| json!({"path": shown(p), "words": c.corpus.word_list.len()})),
        },
        "package_bytes": c.package_bytes,
        "figures": f,
        "training": c.history,
        "seconds": c.timings.0.iter().map(|(n, s)| json!({"stage": n, "seconds": s})).collect::<Vec<_>>(),
        "pith": env!("CARGO_PKG_VERSION"),
    });
    crate::output::write_json(&c.outputs.record, &record)
}
