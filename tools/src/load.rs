//! Loading what a command runs, with the defaults resolved: the encoder package (and its ONNX
//! graphs for the tract engines), and the reasoner with its encoder. The options every command
//! shares are declared here once; defaults are built on first use (`crate::artifacts`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use prost::Message;
use tract_onnx::pb::ModelProto;

use crate::backend::{Embedder, Kind};
use crate::reasoner::onnx::fp32_model;
use crate::reasoner::predictor::Predictor;
use crate::reasoner::{Reasoner, DEFAULT_DIR};

/// Reads and checks a package file.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    crate::framed_file::read(path, &crate::framed_file::PACKAGE)
}

/// The encoder package a command embeds with.
#[derive(clap::Args, Clone, Debug)]
pub struct PackageArg {
    /// Package (default: the default model, all-MiniLM-L6-v2 int8, built on first use).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

impl PackageArg {
    /// The package's path, the default one built if it is missing.
    pub fn path(&self) -> Result<PathBuf> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => Ok(crate::artifacts::default_artifacts()?.package),
        }
    }

    /// The package's bytes, checked.
    pub fn read(&self) -> Result<Vec<u8>> {
        read_file(&self.path()?)
    }
}

/// The encoder package and the engine that runs it: the options of every embedding command.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    #[command(flatten)]
    pub package: PackageArg,
    /// Engine.
    #[arg(long, value_enum, default_value_t = Kind::Native)]
    pub backend: Kind,
    /// ONNX file for the tract backends (default: the default model's exports).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
}

impl ModelArgs {
    /// The ONNX graph engine `kind` runs: `--onnx`, else the default model's export of that
    /// precision (built on first use); `None` for the native engine.
    pub fn onnx_for(&self, kind: Kind) -> Result<Option<PathBuf>> {
        if kind == Kind::Native {
            return Ok(None);
        }
        if let Some(p) = &self.onnx {
            return Ok(Some(p.clone()));
        }
        let a = crate::artifacts::default_artifacts()?;
        Ok(Some(if kind == Kind::TractFp32 {
            a.fp32_onnx
        } else {
            a.int8_onnx
        }))
    }

    /// An embedder of engine `kind` over `package` (the bytes of [`PackageArg::read`]).
    pub fn embedder<'a>(&self, package: &'a [u8], kind: Kind) -> Result<Embedder<'a>> {
        Embedder::new(package, kind, self.onnx_for(kind)?)
    }
}

/// The reasoner, its engine and its encoder: the arguments both chat commands take.
#[derive(clap::Args)]
pub struct Engine {
    /// Reasoner checkpoint directory (reasoner.json + model.safetensors + gate.json; default:
    /// models/reasoner-l6, over the teacher's vectors). A shipped one (models/reasoner-l6,
    /// models/reasoner-m, models/reasoner-s) brings its package, QDQ graph, encoder and response
    /// bank, built on first use; another needs --package (native) or --qdq (tract-int8) and
    /// names its encoder in reasoner.json or with --model.
    #[arg(long)]
    pub reasoner: Option<PathBuf>,
    /// Integer reasoner package, for native (default: the shipped reasoner's).
    #[arg(long)]
    pub package: Option<PathBuf>,
    /// QDQ ONNX graph of the integer reasoner, for tract-int8 (default: the shipped reasoner's).
    #[arg(long)]
    pub qdq: Option<PathBuf>,
    /// Encoder package the reasoner was trained on (embeds every turn, natively; default: the
    /// shipped reasoner's, or the "encoder" its reasoner.json names).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Engine of the reasoner: native (the integer package, the device's arithmetic, byte for
    /// byte), tract-fp32 (the fp32 checkpoint's ONNX graph) or tract-int8 (the QDQ graph). All
    /// read the encoder's int8 turn vectors.
    #[arg(long, value_enum, default_value_t = Kind::Native)]
    pub backend: Kind,
}

/// What the chat commands load: the bytes the predictor and the encoder borrow.
pub struct Loaded {
    /// The ONNX graph tract runs (fp32 from the checkpoint, or the QDQ file).
    pub graph: Option<ModelProto>,
    /// The checkpoint's trust gate, for the float engines.
    pub trust: Option<crate::reasoner::Trust>,
    pub reasoner_bytes: Vec<u8>,
    pub encoder_bytes: Vec<u8>,
    pub encoder_path: PathBuf,
    /// The checkpoint's calibrated gate, when it has one.
    pub gate: Option<f32>,
    /// The checkpoint directory.
    pub checkpoint_dir: PathBuf,
    /// The shipped reasoner of that checkpoint, if it is one.
    pub shipped: Option<&'static crate::catalog::ReasonerArtifacts>,
}

impl Engine {
    /// Loads what the engine needs, building default packages on first use.
    pub fn load(&self) -> Result<Loaded> {
        let kind = self.backend;
        let root = crate::defaults::repo_root()?;
        let checkpoint_dir = self
            .reasoner
            .clone()
            .unwrap_or_else(|| root.join(DEFAULT_DIR));
        let shipped = crate::catalog::reasoner_with_checkpoint(&checkpoint_dir, &root);
        let need = |what: &str| {
            anyhow!(
                "{} is not a shipped reasoner: pass {what}",
                checkpoint_dir.display()
            )
        };
        // The float engines apply the checkpoint's trust gate to the lexical match themselves.
        let trust = match kind {
            Kind::Native => None,
            _ => Reasoner::load(&checkpoint_dir)?.trust,
        };
        let graph = match kind {
            Kind::TractFp32 => Some(fp32_model(&Reasoner::load(&checkpoint_dir)?)?),
            Kind::TractInt8 => {
                let p = match (&self.qdq, shipped) {
                    (Some(p), _) => p.clone(),
                    (None, Some(r)) => crate::artifacts::reasoner_qdq(r)?,
                    (None, None) => return Err(need("--qdq")),
                };
                let bytes = crate::input::bytes(&p)?;
                let graph = ModelProto::decode(bytes.as_slice())
                    .with_context(|| format!("{}: not an ONNX model", p.display()))?;
                if !crate::tract::facts_of(&graph).quantized {
                    bail!(
                        "{}: an fp32 graph (no QuantizeLinear/DequantizeLinear), but the \
                         tract-int8 engine runs the reasoner's QDQ graph (`pith quantize --onnx`)",
                        p.display()
                    );
                }
                Some(graph)
            }
            Kind::Native => None,
        };
        let gate = crate::reasoner::load_gate(&checkpoint_dir)?;
        let reasoner_bytes = match kind {
            Kind::Native => {
                let p = match (&self.package, shipped) {
                    (Some(p), _) => p.clone(),
                    (None, Some(r)) => crate::artifacts::package(r.package)?,
                    (None, None) => return Err(need("--package")),
                };
                read_file(&p)?
            }
            _ => Vec::new(),
        };
        let encoder_path = match (&self.model, shipped) {
            (Some(p), _) => p.clone(),
            (None, Some(r)) => crate::artifacts::package(r.encoder)?,
            (None, None) => {
                crate::reasoner::named_encoder(&checkpoint_dir, &root)?.ok_or_else(|| {
                    anyhow!(
                        "{} names no \"encoder\" in reasoner.json: pass --model",
                        checkpoint_dir.display()
                    )
                })?
            }
        };
        let encoder_bytes = read_file(&encoder_path)?;
        Ok(Loaded {
            graph,
            trust,
            reasoner_bytes,
            encoder_bytes,
            encoder_path,
            gate,
            checkpoint_dir,
            shipped,
        })
    }
}

/// Whether `a` and `b` name the same file (links and relative paths resolved).
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

impl Loaded {
    /// Refuses an encoder other than the one the reasoner was built over: the tag the integer
    /// package records, or for the float engines the package the checkpoint's reasoner.json
    /// names (when it exists). Another encoder of the same width embeds in another space, and
    /// every prediction would be noise.
    pub fn check_encoder(&self, model: &pith_runtime::Model<'_>) -> Result<()> {
        let (want, source) = if self.reasoner_bytes.is_empty() {
            let root = crate::defaults::repo_root()?;
            match crate::reasoner::named_encoder(&self.checkpoint_dir, &root)? {
                // The named encoder is the one loaded (the usual case): nothing to compare.
                Some(p) if same_file(&p, &self.encoder_path) => return Ok(()),
                Some(p) if p.is_file() => {
                    let bytes = read_file(&p)?;
                    let named = pith_runtime::Model::new(&bytes)
                        .map_err(|e| anyhow!("{}: {e}", p.display()))?;
                    let tag = pith_runtime::kb::package_tag(named.package());
                    (
                        tag,
                        format!(
                            "{}'s reasoner.json names {}",
                            self.checkpoint_dir.display(),
                            p.display()
                        ),
                    )
                }
                _ => return Ok(()),
            }
        } else {
            let r = pith_runtime::Reasoner::new(&self.reasoner_bytes)
                .map_err(|e| anyhow!("loading the reasoner package: {e}"))?;
            (
                r.encoder_tag(),
                "the reasoner package records it".to_string(),
            )
        };
        let got = pith_runtime::kb::package_tag(model.package());
        if want != 0 && want != got {
            bail!(
                "{} (tag {got:08x}) is not the encoder the reasoner was built over (tag {want:08x}: \
                 {source}): pass that encoder as --model, or a reasoner built over this one",
                self.encoder_path.display()
            );
        }
        Ok(())
    }

    /// The calibrated refinement gate, or an error naming where it should be.
    pub fn gate(&self) -> Result<f32> {
        self.gate.ok_or_else(|| {
            anyhow!(
                "{} has no {} (the calibrated refinement gate); pass --refine-below",
                self.checkpoint_dir.display(),
                crate::reasoner::GATE_FILE
            )
        })
    }

    /// The encoder (native) and the predictor of `kind`, checked to agree on the dimension and
    /// on the encoder package itself.
    pub fn open(&self, kind: Kind) -> Result<(crate::backend::Embedder<'_>, Predictor<'_>)> {
        let enc = crate::backend::Embedder::new(&self.encoder_bytes, Kind::Native, None)?;
        self.check_encoder(&enc.model)?;
        let pred = Predictor::new(
            kind,
            &self.reasoner_bytes,
            self.graph.as_ref(),
            self.trust.clone(),
            enc.model.dim(),
        )?;
        let dim = pred.dim();
        if enc.model.dim() != dim {
            bail!(
                "{} embeds in {} dims, the reasoner reads {dim}",
                self.encoder_path.display(),
                enc.model.dim()
            );
        }
        Ok((enc, pred))
    }
}
