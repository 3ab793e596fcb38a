//! The reasoner behind `pith chat` and `pith eval chat`, on either engine, and the setup both
//! commands share: encoder, reasoner, engine.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

use super::onnx::{fp32_model, TractReasoner};
use super::{native, Reasoner, DEFAULT_DIR};
use crate::backend::Kind;

/// A reasoner that predicts from int8 turn vectors (what the encoder gives the device).
pub enum Predictor<'a> {
    /// The runtime's integer reasoner: the device's bytes (boxed: its resolved layer list is
    /// large beside tract's handle).
    Native(Box<pith_runtime::Reasoner<'a>>),
    /// The fp32 checkpoint's ONNX graph in tract, fed the same vectors dequantized.
    Tract(TractReasoner),
}

impl<'a> Predictor<'a> {
    /// The predictor of `kind`: `package` holds the int8 reasoner (native), `checkpoint` the fp32
    /// one (tract-fp32).
    pub fn new(kind: Kind, package: &'a [u8], checkpoint: Option<&Reasoner>) -> Result<Self> {
        match kind {
            Kind::Native => Ok(Predictor::Native(Box::new(
                pith_runtime::Reasoner::new(package)
                    .map_err(|e| anyhow!("loading the reasoner package: {e}"))?,
            ))),
            Kind::TractFp32 => {
                let r = checkpoint.ok_or_else(|| anyhow!("tract-fp32 needs the checkpoint"))?;
                Ok(Predictor::Tract(TractReasoner::new(&fp32_model(r), r.dim)?))
            }
            Kind::TractInt8 => bail!("the reasoner runs on --backend native or tract-fp32"),
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

/// Embeds every turn of `convs`, in order, with the encoder's native int8 runtime.
pub fn embed_turns(
    e: &mut crate::backend::Embedder<'_>,
    convs: &[Vec<String>],
) -> Result<TurnVectors> {
    let q: Vec<Vec<i8>> = convs
        .iter()
        .flatten()
        .map(|t| e.embed_i8(t))
        .collect::<Result<_>>()?;
    let f = q.iter().map(|v| dequantize(v)).collect();
    Ok(TurnVectors { q, f })
}

/// Paths both chat commands take.
pub struct Paths {
    /// fp32 checkpoint directory (default models/reasoner-s).
    pub checkpoint: Option<PathBuf>,
    /// int8 reasoner package (default models/reasoner-s.pith, built on first use).
    pub package: Option<PathBuf>,
    /// Encoder package (default models/tier-s.pith, built on first use).
    pub model: Option<PathBuf>,
}

/// What the chat commands load: the bytes the predictor and the encoder borrow.
pub struct Loaded {
    /// The fp32 checkpoint (loaded for tract-fp32 only).
    pub checkpoint: Option<Reasoner>,
    pub reasoner_bytes: Vec<u8>,
    pub encoder_bytes: Vec<u8>,
    pub encoder_path: PathBuf,
}

impl Paths {
    /// Loads what `kind` needs, building default packages on first use.
    pub fn load(&self, kind: Kind) -> Result<Loaded> {
        let root = crate::defaults::repo_root();
        let checkpoint = match kind {
            Kind::TractFp32 => Some(Reasoner::load(
                &self
                    .checkpoint
                    .clone()
                    .unwrap_or_else(|| root.join(DEFAULT_DIR)),
            )?),
            _ => None,
        };
        let reasoner_bytes = match kind {
            Kind::Native => {
                let p = match &self.package {
                    Some(p) => p.clone(),
                    None => crate::artifacts::package(crate::artifacts::REASONER_S)?,
                };
                crate::artifacts::read_package(Some(&p))?
            }
            _ => Vec::new(),
        };
        let encoder_path = match &self.model {
            Some(p) => p.clone(),
            None => crate::artifacts::package(crate::artifacts::TIER_S)?,
        };
        let encoder_bytes = crate::artifacts::read_package(Some(&encoder_path))?;
        Ok(Loaded {
            checkpoint,
            reasoner_bytes,
            encoder_bytes,
            encoder_path,
        })
    }
}

impl Loaded {
    /// The encoder (native) and the predictor of `kind`, checked to agree on the dimension.
    pub fn open(&self, kind: Kind) -> Result<(crate::backend::Embedder<'_>, Predictor<'_>)> {
        let enc = crate::backend::Embedder::new(&self.encoder_bytes, Kind::Native, None)?;
        let pred = Predictor::new(kind, &self.reasoner_bytes, self.checkpoint.as_ref())?;
        let dim = match &pred {
            Predictor::Native(r) => r.dim(),
            Predictor::Tract(_) => self.checkpoint.as_ref().map_or(0, |c| c.dim),
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
