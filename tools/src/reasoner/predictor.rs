//! The reasoner behind `pith chat` and `pith eval chat`, on either engine, and the setup both
//! commands share: encoder, reasoner, engine.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use prost::Message;
use tract_onnx::pb::ModelProto;

use super::onnx::{fp32_model, TractReasoner};
use super::{native, Reasoner, DEFAULT_DIR};
use crate::backend::Kind;

/// A reasoner that predicts from int8 turn vectors (what the encoder gives the device).
pub enum Predictor<'a> {
    /// The runtime's integer reasoner: the device's bytes (boxed: its resolved layer list is
    /// large beside tract's handle).
    Native(Box<pith_runtime::Reasoner<'a>>),
    /// The fp32 checkpoint's or the QDQ ONNX graph in tract, fed the same vectors dequantized.
    Tract(TractReasoner),
}

impl<'a> Predictor<'a> {
    /// The predictor of `kind`: `package` holds the int8 reasoner (native), `graph` the ONNX
    /// graph of `dim`-wide turns (tract).
    pub fn new(
        kind: Kind,
        package: &'a [u8],
        graph: Option<&ModelProto>,
        dim: usize,
    ) -> Result<Self> {
        match kind {
            Kind::Native => Ok(Predictor::Native(Box::new(
                pith_runtime::Reasoner::new(package)
                    .map_err(|e| anyhow!("loading the reasoner package: {e}"))?,
            ))),
            Kind::TractFp32 | Kind::TractInt8 => {
                let g = graph.ok_or_else(|| anyhow!("{kind:?} needs the reasoner's ONNX graph"))?;
                Ok(Predictor::Tract(TractReasoner::new(g, dim)?))
            }
        }
    }

    /// The predicted next-turn vector for `window` (latest first); only its direction counts.
    pub fn predict(&self, window: &[&[i8]]) -> Result<Vec<f32>> {
        match self {
            Predictor::Native(r) => Ok(native::predict(r, window)?
                .into_iter()
                .map(f32::from)
                .collect()),
            Predictor::Tract(t) => {
                let f: Vec<Vec<f32>> = window.iter().map(|q| dequantize(q)).collect();
                t.predict(&f.iter().map(Vec::as_slice).collect::<Vec<_>>())
            }
        }
    }
}

/// The encoder's unit-length view of an int8 turn vector.
pub fn dequantize(q: &[i8]) -> Vec<f32> {
    let mut f = vec![0f32; q.len()];
    pith_runtime::Model::dequantize(q, &mut f);
    f
}

/// Every turn's int8 vector (what the device has) and its unit-length float view.
pub struct TurnVectors {
    pub q: Vec<Vec<i8>>,
    pub f: Vec<Vec<f32>>,
}

/// Embeds every turn of `convs`, in order, with the native int8 runtime of the encoder package
/// `encoder`: each distinct text once, on every core (the bytes do not depend on the thread).
pub fn embed_turns(encoder: &[u8], convs: &[Vec<String>]) -> Result<TurnVectors> {
    use rayon::prelude::*;
    let mut distinct: Vec<&str> = convs.iter().flatten().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let vecs: Vec<Vec<i8>> = distinct
        .par_iter()
        .map_init(
            || crate::backend::Embedder::new(encoder, Kind::Native, None),
            |e, t| match e {
                Ok(e) => e.embed_i8(t).with_context(|| format!("embedding {t:?}")),
                Err(err) => Err(anyhow!("{err:#}")),
            },
        )
        .collect::<Result<_>>()?;
    let q: Vec<Vec<i8>> = convs
        .iter()
        .flatten()
        .map(|t| {
            // Every turn is among the distinct texts, so the search cannot miss.
            let i = distinct.binary_search(&t.as_str()).unwrap_or(0);
            vecs[i].clone()
        })
        .collect();
    let f = q.iter().map(|v| dequantize(v)).collect();
    Ok(TurnVectors { q, f })
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
    pub reasoner_bytes: Vec<u8>,
    pub encoder_bytes: Vec<u8>,
    pub encoder_path: PathBuf,
    /// The checkpoint's calibrated gate, when it has one.
    pub gate: Option<f32>,
    /// The checkpoint directory.
    pub checkpoint_dir: PathBuf,
    /// The shipped reasoner of that checkpoint, if it is one.
    pub shipped: Option<&'static crate::artifacts::ReasonerArtifacts>,
}

impl Engine {
    /// Loads what the engine needs, building default packages on first use.
    pub fn load(&self) -> Result<Loaded> {
        let kind = self.backend;
        let root = crate::defaults::repo_root();
        let checkpoint_dir = self
            .reasoner
            .clone()
            .unwrap_or_else(|| root.join(DEFAULT_DIR));
        let shipped = crate::artifacts::reasoner_with_checkpoint(&checkpoint_dir);
        let need = |what: &str| {
            anyhow!(
                "{} is not a shipped reasoner: pass {what}",
                checkpoint_dir.display()
            )
        };
        let graph = match kind {
            Kind::TractFp32 => Some(fp32_model(&Reasoner::load(&checkpoint_dir)?)?),
            Kind::TractInt8 => {
                let p = match (&self.qdq, shipped) {
                    (Some(p), _) => p.clone(),
                    (None, Some(r)) => crate::artifacts::reasoner_qdq(r)?,
                    (None, None) => return Err(need("--qdq")),
                };
                let bytes =
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                Some(
                    ModelProto::decode(bytes.as_slice())
                        .with_context(|| format!("{}: not an ONNX model", p.display()))?,
                )
            }
            Kind::Native => None,
        };
        let gate = super::load_gate(&checkpoint_dir)?;
        let reasoner_bytes = match kind {
            Kind::Native => {
                let p = match (&self.package, shipped) {
                    (Some(p), _) => p.clone(),
                    (None, Some(r)) => crate::artifacts::package(r.package)?,
                    (None, None) => return Err(need("--package")),
                };
                crate::artifacts::read_package(Some(&p))?
            }
            _ => Vec::new(),
        };
        let encoder_path = match (&self.model, shipped) {
            (Some(p), _) => p.clone(),
            (None, Some(r)) => crate::artifacts::package(r.encoder)?,
            (None, None) => {
                let cfg = checkpoint_dir.join("reasoner.json");
                let named = std::fs::read_to_string(&cfg)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| v["encoder"].as_str().map(|e| root.join(e)));
                named.ok_or_else(|| {
                    anyhow!("{} names no \"encoder\": pass --model", cfg.display())
                })?
            }
        };
        let encoder_bytes = crate::artifacts::read_package(Some(&encoder_path))?;
        Ok(Loaded {
            graph,
            reasoner_bytes,
            encoder_bytes,
            encoder_path,
            gate,
            checkpoint_dir,
            shipped,
        })
    }
}

impl Loaded {
    /// The calibrated refinement gate, or an error naming where it should be.
    pub fn gate(&self) -> Result<f32> {
        self.gate.ok_or_else(|| {
            anyhow!(
                "{} has no {} (the calibrated refinement gate); pass --refine-below",
                self.checkpoint_dir.display(),
                super::GATE_FILE
            )
        })
    }

    /// The encoder (native) and the predictor of `kind`, checked to agree on the dimension.
    pub fn open(&self, kind: Kind) -> Result<(crate::backend::Embedder<'_>, Predictor<'_>)> {
        let enc = crate::backend::Embedder::new(&self.encoder_bytes, Kind::Native, None)?;
        let pred = Predictor::new(
            kind,
            &self.reasoner_bytes,
            self.graph.as_ref(),
            enc.model.dim(),
        )?;
        let dim = match &pred {
            Predictor::Native(r) => r.dim(),
            Predictor::Tract(t) => t.dim(),
        };
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
