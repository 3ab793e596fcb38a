//! `pith distill`: a microcontroller-sized student of any BERT-family sentence-transformers
//! teacher, in one command.
//!
//! Tier S is a static model (one 4-bit or int8 vector per WordPiece token, mean-pooled, then a
//! small head on the pooled vector; a package of at most 512 KiB that runs on a Cortex-M0+).
//! Tier M is a small BERT (4 layers × 128 by default, a package of at most 2 MB) initialised
//! from the teacher's layers ([`tier_m`]); its training
//! takes hours on two cores, saves its state as it goes, and the same command resumes it. The
//! command runs the recipe of [`recipe`] in order:
//!
//! 1. **corpus** ([`corpus`]): training texts (the project's SNLI training lines and chit-chat
//!    turns, or `--corpus FILE`) and the held-out SNLI lines of the dev check, and groups of
//!    near-duplicate variants of both ([`variants`]);
//! 2. **vocabulary** ([`vocab`]): the teacher's tokens most frequent in the corpus, as many as
//!    the package budget holds, every Latin-script character kept so no English word is `[UNK]`;
//! 3. **labels** ([`teacher`]): the teacher, quantized with 16-bit FFNs and run by pith's own
//!    runtime on all cores, embeds every kept token (`[CLS] token [SEP]`) and every text; cached
//!    in the work folder by the teacher's and the texts' hash, so a rerun skips it;
//! 4. **train** (numpy, seeded, a fixed BLAS thread count, so the same seed gives the same bytes):
//!    Tier S `tools/train/static_student.py` (PCA of the token vectors, then Adam on the in-batch
//!    cosine matrices, what STS measures); Tier M `tools/train/tier_m_student.py` (the same loss
//!    through a transformer, hand-written backward, checkpointed);
//! 5. **quantize**: the checkpoint into `NAME.pith` (the quantizer's static path);
//! 6. **evaluate** ([`evaluate`]): SICK dev and the StackFAQ bank, student and teacher in one
//!    run; the bank `NAME.pithkb` for the device;
//! 7. **card** ([`card`]): `README.md` (figures, the exact command, data and licenses) and
//!    `record.json` (recipe, corpus, figures, dev history, timings).

pub mod card;
pub mod corpus;
pub mod evaluate;
pub mod recipe;
pub mod teacher;
pub mod tier_m;
pub mod variants;
pub mod vocab;
pub mod work;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};

use crate::checkpoint::Checkpoint;
use recipe::{StaticRecipe, TransformerRecipe};

/// Which student.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Static token table, package ≤ the byte budget (512 KiB by default).
    S,
    /// A small BERT initialised from the teacher, package ≤ the byte budget (2 MB by default).
    M,
}

impl Tier {
    fn suffix(self) -> &'static str {
        match self {
            Tier::S => "-tier-s",
            Tier::M => "-tier-m",
        }
    }
}

/// The recipe of the tier asked for.
enum Plan {
    S(StaticRecipe),
    M(TransformerRecipe),
}

impl Plan {
    /// The variant groups the recipe trains on.
    fn variants(&self) -> recipe::VariantPlan {
        match self {
            Plan::S(r) => r.variants(),
            Plan::M(r) => r.variants(),
        }
    }

    /// Package bytes of one vocabulary row of `dim` values.
    fn row_bytes(&self, dim: usize) -> usize {
        match self {
            Plan::S(r) => dim * r.bits as usize / 8,
            Plan::M(_) => dim,
        }
    }

    /// Package bytes that are not the vocabulary (a transformer's layers, a static head).
    fn fixed_bytes(&self) -> usize {
        match self {
            Plan::S(r) => r.head_bytes(),
            Plan::M(r) => r.fixed_bytes(),
        }
    }
}

/// The options of `pith distill`.
#[derive(clap::Args, Clone)]
pub struct Options {
    /// Teacher checkpoint: a BERT-family or MPNet sentence-transformers folder (config.json,
    /// model.safetensors, vocab.txt or tokenizer.json).
    pub checkpoint: PathBuf,
    /// Which student to make.
    #[arg(long, value_enum)]
    pub tier: Tier,
    /// Output folder (the package, its bank, the float checkpoint, the model card, the record,
    /// and `work/` with the cached teacher labels).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Training texts, one a line; repeat it for several sources, each of which then weighs the
    /// same in the vocabulary's frequencies and gives the same share of the variant groups
    /// (default: the project's SNLI training lines and chit-chat turns; data/README.md).
    #[arg(long)]
    pub corpus: Vec<PathBuf>,
    /// A word-frequency list of the language the student will read (`word<TAB>frequency` a
    /// line, e.g. data/words/wordfreq-en.tsv): it weighs as one more corpus source in choosing
    /// the vocabulary, and as much as all the texts together in choosing the one-word texts
    /// (Tier S), so common words the training texts lack still get tokens of their own. Not
    /// training text.
    #[arg(long)]
    pub words: Option<PathBuf>,
    /// Seed of every random choice of the training.
    #[arg(long, default_value_t = recipe::SEED)]
    pub seed: u64,
    /// Embedding width of the student (at most the teacher's; Tier M: its hidden width).
    #[arg(long, default_value_t = recipe::DIM, value_parser = crate::args::count)]
    pub dim: usize,
    /// Package budget in bytes, the vocabulary shrinks to fit (default: 524,288 for Tier S,
    /// 2,000,000 for Tier M).
    #[arg(long, value_parser = crate::args::count)]
    pub budget: Option<usize>,
    /// Tier S: bits a table value takes in the package, 4 or 8 (default 4: twice the
    /// vocabulary in the same budget).
    #[arg(long, value_parser = crate::args::value_bits)]
    pub bits: Option<u8>,
    /// Tier S: hidden units of the head on the pooled vector (default 256; 0: none, a bag of
    /// tokens alone). It costs 2 x dim x head multiply-accumulates a sentence and its bytes come
    /// out of the vocabulary's budget.
    #[arg(long)]
    pub head: Option<usize>,
    /// Optimizer steps (default: 20,000 for Tier S, 30,000 for Tier M).
    #[arg(long, value_parser = crate::args::count)]
    pub steps: Option<usize>,
    /// Tier M: layers, taken evenly spaced from the teacher's (default 4).
    #[arg(long, value_parser = crate::args::count)]
    pub layers: Option<usize>,
    /// Tier M: attention heads per layer, kept whole from the teacher, so `--dim / --heads` is
    /// its head width (default 4).
    #[arg(long, value_parser = crate::args::count)]
    pub heads: Option<usize>,
    /// Tier M: FFN neurons per layer (default 512).
    #[arg(long, value_parser = crate::args::count)]
    pub ffn: Option<usize>,
    /// Tier M: save the training state every this many steps (default 200); the same command
    /// resumes from the last one after an interruption.
    #[arg(long, value_parser = crate::args::count)]
    pub save_every: Option<usize>,
    /// Package and model-card name (default: the teacher folder's name + `-tier-s`).
    #[arg(long)]
    pub name: Option<String>,
    /// Worker threads of the teacher's forward passes (default: every core).
    #[arg(long, value_parser = crate::args::count)]
    pub threads: Option<usize>,
    /// WordNet 3.0's folder (Debian `wordnet-base`: index.* and data.*): the training texts'
    /// variants then also swap words for synonyms, co-hyponyms and antonyms.
    #[arg(long)]
    pub wordnet: Option<PathBuf>,
    /// The Python that runs tools/train (needs numpy and safetensors; default: `$PITH_PYTHON`,
    /// else `python3`).
    #[arg(long)]
    pub python: Option<String>,
}

/// The files a finished run leaves in the output folder.
pub struct Outputs {
    pub package: PathBuf,
    pub bank: PathBuf,
    pub checkpoint: PathBuf,
    pub card: PathBuf,
    pub record: PathBuf,
}

impl Outputs {
    fn new(dir: &Path, name: &str) -> Self {
        Outputs {
            package: dir.join(format!("{name}.pith")),
            bank: dir.join(format!("{name}.pithkb")),
            checkpoint: dir.join("checkpoint"),
            card: dir.join("README.md"),
            record: dir.join("record.json"),
        }
    }
}

/// Runs `pith distill`.
pub fn run(o: Options) -> Result<Outputs> {
    let started = Instant::now();
    let teacher = Checkpoint::load(&o.checkpoint)
        .with_context(|| format!("loading the teacher {}", o.checkpoint.display()))?;
    ensure!(
        o.dim <= teacher.config.hidden,
        "--dim {} is wider than the teacher's {} dimensions",
        o.dim,
        teacher.config.hidden
    );
    let plan = match o.tier {
        Tier::S => {
            ensure!(
                o.layers.is_none()
                    && o.heads.is_none()
                    && o.ffn.is_none()
                    && o.save_every.is_none(),
                "--layers, --heads, --ffn and --save-every shape Tier M; Tier S is a token table"
            );
            ensure!(
                o.head.unwrap_or(0) <= 4096,
                "--head {}: at most 4096 hidden units",
                o.head.unwrap_or(0)
            );
            Plan::S(StaticRecipe::new(&o))
        }
        Tier::M => {
            ensure!(
                o.bits.is_none() && o.head.is_none(),
                "--bits and --head shape Tier S's static model; Tier M's rows are int8 and its \
                 layers are set by --layers, --heads and --ffn"
            );
            let r = TransformerRecipe::new(&o);
            tier_m::check_shape(&teacher, &r)?;
            Plan::M(r)
        }
    };
    let budget = o.budget.unwrap_or(match o.tier {
        Tier::S => recipe::BUDGET_S,
        Tier::M => recipe::BUDGET_M,
    });
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| default_name(&o.checkpoint, o.tier));
    ensure!(
        name.len() <= pith_runtime::format::NAME_MAX
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "name {name:?}: 1 to {} ASCII letters, digits, '-', '_' or '.'",
        pith_runtime::format::NAME_MAX
    );
    let out = Outputs::new(&o.output, &name);
    check_output(&o, &out)?;
    let work = o.output.join("work");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut timer = card::Timings::default();

    let python = o
        .python
        .clone()
        .or_else(|| std::env::var("PITH_PYTHON").ok())
        .unwrap_or_else(|| "python3".into());
    let texts = corpus::Corpus::load(&o.corpus, o.words.as_deref())?;
    let variants = variants::make(
        &python,
        &work,
        &texts,
        &plan.variants(),
        o.wordnet.as_deref(),
    )?;
    timer.lap("corpus", started);

    let t = Instant::now();
    let mut choice = vocab::choose(
        &teacher,
        &texts.train,
        &texts.weights(),
        &texts.word_list,
        plan.row_bytes(o.dim),
        budget,
        plan.fixed_bytes(),
    )?;
    if let Plan::M(r) = &plan {
        choice.tokenizer.max_len = tier_m::max_len(&teacher, r);
    }
    stage(&format!(
        "vocabulary: {} of {} teacher tokens, about {} package bytes",
        choice.kept.len(),
        teacher.vocab.len(),
        choice.bytes
    ));
    timer.lap("vocabulary", t);

    let t = Instant::now();
    let threads = o.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // Tier S learns what whole words mean, split into its tokens, from these one-word texts.
    let words = match &plan {
        Plan::S(r) => texts.words(r.words),
        Plan::M(_) => Vec::new(),
    };
    let labels = teacher::label(
        &o.checkpoint,
        &teacher,
        &choice,
        &texts,
        &variants,
        &words,
        &work,
        threads,
    )?;
    timer.lap(
        if labels.cached {
            "labels (cached)"
        } else {
            "labels"
        },
        t,
    );

    let t = Instant::now();
    let trainer_args = [
        "--work".into(),
        work.clone().into_os_string(),
        "--out".into(),
        out.checkpoint.clone().into_os_string(),
    ];
    stage("training");
    match &plan {
        Plan::S(r) => {
            work::write_inputs(
                &work,
                &teacher,
                &choice,
                &texts,
                &variants,
                &words,
                &labels,
                r,
                &name,
                &out.checkpoint,
            )?;
            run_python(&python, "static_student.py", &trainer_args, 1)?;
        }
        Plan::M(r) => {
            tier_m::write_inputs(
                &work,
                &o.checkpoint,
                &teacher,
                &choice,
                &texts,
                &variants,
                &labels,
                r,
                &out.checkpoint,
            )?;
            run_python(&python, "tier_m_student.py", &trainer_args, threads)?;
        }
    }
    timer.lap("train", t);
    let history = work::read_history(&out.checkpoint)?;
    if let Plan::M(_) = plan {
        tier_m::check_probe(&out.checkpoint, &texts.dev, &history)?;
    }

    let t = Instant::now();
    let quantize = crate::quant::pipeline::Options {
        name: Some(name.clone()),
        ..crate::quant::pipeline::Options::new(out.checkpoint.clone(), out.package.clone())
    };
    crate::quant::pipeline::run(quantize)?;
    let size = std::fs::metadata(&out.package)?.len() as usize;
    ensure!(
        size <= budget,
        "{} is {size} bytes, over the {budget} byte budget (the vocabulary estimate was {})",
        out.package.display(),
        choice.bytes
    );
    timer.lap("quantize", t);

    let t = Instant::now();
    let package = std::fs::read(&out.package)?;
    let figures = evaluate::run(
        &teacher,
        labels.teacher_key,
        &package,
        &out.bank,
        &work,
        threads,
    )?;
    timer.lap("evaluate", t);

    let tokens = choice.vocab.len();
    let wordnet = o.wordnet.is_some();
    let (recipe, kind, intro, shape, start, method) = match &plan {
        Plan::S(r) => (
            serde_json::to_value(r)?,
            "static (Tier S)",
            format!(
                "One {} vector per WordPiece token, mean-pooled{}: no attention, so it runs on \
                 any Cortex-M (the runtime builds for `thumbv6m-none-eabi`).",
                if r.bits == 4 { "4-bit" } else { "int8" },
                match r.head {
                    0 => String::new(),
                    f => format!(
                        ", then a head of two int8 linears ({} → {f} → {}, ReLU, added to the \
                         pooled vector; {} multiply-accumulates a sentence)",
                        r.dim,
                        r.dim,
                        2 * r.dim * f
                    ),
                }
            ),
            format!(
                "{tokens} tokens × {} dims = {} parameters at {} bits{}",
                r.dim,
                tokens * r.dim,
                r.bits,
                match r.head {
                    0 => String::new(),
                    f => format!(", head {} parameters at int8", 2 * r.dim * f + f),
                }
            ),
            "after the PCA",
            static_method(r, budget, tokens, wordnet),
        ),
        Plan::M(r) => (
            serde_json::to_value(r)?,
            "transformer (Tier M)",
            "A small BERT with the teacher's tokenizer rules and mean pooling, run by the same \
             integer kernels as the full model."
                .to_string(),
            format!(
                "{} layers × {} wide, {} heads, FFN {}, {tokens} tokens",
                r.layers, r.hidden, r.heads, r.ffn
            ),
            "at initialisation",
            tier_m::method(r, budget, tokens, wordnet),
        ),
    };
    card::write(&card::Card {
        options: &o,
        name: &name,
        teacher: &teacher,
        recipe,
        kind,
        intro,
        shape,
        start,
        method,
        budget,
        blas_threads: match plan {
            Plan::S(_) => 1,
            Plan::M(_) => threads,
        },
        vocab: &choice,
        corpus: &texts,
        outputs: &out,
        package_bytes: size,
        figures: &figures,
        history: &history,
        timings: &timer,
    })?;
    stage(&format!(
        "wrote {} ({size} bytes), {}, {}, {} in {:.0} s",
        out.package.display(),
        out.bank.display(),
        out.card.display(),
        out.record.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(out)
}

/// The method section of a Tier S card.
fn static_method(r: &StaticRecipe, budget: usize, tokens: usize, wordnet: bool) -> String {
    format!(
        "1. Vocabulary: the teacher's special and Latin-script single-character tokens, then its \
         tokens most frequent on the training texts (each source weighing the same), as many as a {budget}-byte package holds \
         ({tokens} tokens).\n\
         2. Labels: the teacher's embedding (its int8 package with 16-bit FFNs, run by pith's \
         runtime) of every kept token (`[CLS] token [SEP]`) and of every training, dev and \
         variant text.\n\
         3. PCA of the token vectors (weighted by frequency) to {} dimensions.\n\
         4. {} Adam steps (batch {}, step {} × the table's RMS, warm-up then linear decay, \
         seed {}) on the squared error between the batch's cosine matrix and the teacher's, \
         {} % of each batch in whole groups: half groups of {} close texts (an anchor and \
         neighbours from its {} nearest by the teacher, near copies above {} skipped), half \
         groups of a text and its edited variants ({} training texts with {} variants each: \
         {}); {} % \
         one-word texts (the training texts' {} most frequent words); pulled ({}) towards the PCA \
         table.{}\n\
         5. `pith quantize`: {}, one pooling scale{}.\n",
        r.dim,
        r.steps,
        r.batch,
        r.lr,
        r.seed,
        r.group_share * 100.0,
        r.group_size,
        r.neighbour_ranks,
        r.near_copy,
        r.variant_sources,
        r.variants_per_text,
        variants::operations(wordnet),
        r.token_share * 100.0,
        r.words,
        r.pull,
        match r.head {
            0 => String::new(),
            f => format!(
                " The head ({f} ReLU units on the pooled vector scaled to a largest |value| of 1, \
                 added back to it; its last layer starts at zero, so training starts from the \
                 bag of tokens) learns with the table from the same loss."
            ),
        },
        if r.bits == 4 {
            "4-bit rows (−7..7), symmetric per row, each row's clipping chosen for the least \
             squared error"
        } else {
            "int8 rows, symmetric per row"
        },
        match r.head {
            0 => "",
            _ => "; the head's linears int8 per channel, its ReLU inputs on an int8 grid up to \
                  their 99.99th percentile over the training texts",
        }
    )
}

/// Refuses an output folder that would overwrite an input, or another folder's files: it must be
/// new, empty, or an earlier `pith distill` output (which holds `work/`).
fn check_output(o: &Options, out: &Outputs) -> Result<()> {
    let mut inputs: Vec<&Path> = vec![&o.checkpoint];
    inputs.extend(o.corpus.iter().map(PathBuf::as_path));
    crate::output::refuse_input(&o.output.join("work"), "--output", &inputs)?;
    for f in [
        &out.package,
        &out.bank,
        &out.card,
        &out.record,
        &out.checkpoint,
    ] {
        crate::output::refuse_input(f, "--output", &inputs)?;
    }
    if let Ok(mut entries) = std::fs::read_dir(&o.output) {
        ensure!(
            entries.next().is_none() || o.output.join("work").is_dir(),
            "--output {} holds other files (no work/ folder of an earlier pith distill): \
             give a new or empty folder",
            o.output.display()
        );
    }
    Ok(())
}

/// `all-MiniLM-L6-v2` → `all-minilm-l6-v2-tier-s` (or `-tier-m`).
fn default_name(checkpoint: &Path, tier: Tier) -> String {
    let base: String = checkpoint
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_else(|| "student".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let max = pith_runtime::format::NAME_MAX - tier.suffix().len();
    format!("{}{}", &base[..base.len().min(max)], tier.suffix())
}

/// Progress for people watching: one line per stage on stderr.
pub fn stage(msg: &str) {
    eprintln!("[distill] {msg}");
}

/// Runs `tools/train/SCRIPT` with `args` under `python`, with `blas` BLAS threads. A BLAS
/// splits a product the same way for the same thread count, so the same seed and count give the
/// same bytes; Tier S's matrices are small and run on one, Tier M's on every core (the record
/// names the count).
fn run_python(python: &str, script: &str, args: &[std::ffi::OsString], blas: usize) -> Result<()> {
    let script = crate::defaults::repo_root()?
        .join("tools/train")
        .join(script);
    stage(&format!("{python} {}", script.display()));
    let status = Command::new(python)
        .arg(&script)
        .args(args)
        .env("OPENBLAS_NUM_THREADS", blas.to_string())
        .env("OMP_NUM_THREADS", blas.to_string())
        .env("MKL_NUM_THREADS", blas.to_string())
        .status()
        .with_context(|| {
            format!("running {python} (tools/train needs Python 3 with numpy and safetensors)")
        })?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}
