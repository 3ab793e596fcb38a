//! The reasoner behind `pith chat` and `pith eval chat`, on either engine, and the turn vectors
//! it reads.

use anyhow::{anyhow, Context, Result};
use tract_onnx::pb::ModelProto;

use super::native;
use super::onnx::TractReasoner;
use super::Trust;
use crate::backend::Kind;

/// A reasoner that predicts from int8 turn vectors (what the encoder gives the device).
pub enum Predictor<'a> {
    /// The runtime's integer reasoner: the device's bytes (boxed: its resolved layer list is
    /// large beside tract's handle).
    Native(Box<pith_runtime::Reasoner<'a>>),
    /// The fp32 checkpoint's or the QDQ ONNX graph in tract, fed the same vectors dequantized,
    /// with the checkpoint's trust gate (in float).
    Tract(TractReasoner, Option<Trust>),
}

impl<'a> Predictor<'a> {
    /// The predictor of `kind`: `package` holds the int8 reasoner (native), `graph` the ONNX
    /// graph of `dim`-wide turns and `trust` the checkpoint's trust gate (tract).
    pub fn new(
        kind: Kind,
        package: &'a [u8],
        graph: Option<&ModelProto>,
        trust: Option<Trust>,
        dim: usize,
    ) -> Result<Self> {
        match kind {
            Kind::Native => Ok(Predictor::Native(Box::new(
                pith_runtime::Reasoner::new(package)
                    .map_err(|e| anyhow!("loading the reasoner package: {e}"))?,
            ))),
            Kind::TractFp32 | Kind::TractInt8 => {
                let g = graph.ok_or_else(|| anyhow!("{kind:?} needs the reasoner's ONNX graph"))?;
                Ok(Predictor::Tract(TractReasoner::new(g, dim)?, trust))
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
            Predictor::Tract(t, _) => {
                let f: Vec<Vec<f32>> = window.iter().map(|q| dequantize(q)).collect();
                t.predict(&f.iter().map(Vec::as_slice).collect::<Vec<_>>())
            }
        }
    }

    /// How far the reasoner trusts its correction for this latest turn, in [0, 1] (1 without a
    /// trust gate): it scales the lexical match as it scales the correction.
    pub fn trust(&self, latest: &[i8]) -> f32 {
        match self {
            Predictor::Native(r) => r.trust(latest) as f32 / pith_runtime::engine::TRUST_ONE as f32,
            Predictor::Tract(_, t) => t.as_ref().map_or(1.0, |t| t.of(&dequantize(latest))),
        }
    }

    /// Width of the turn vectors.
    pub fn dim(&self) -> usize {
        match self {
            Predictor::Native(r) => r.dim(),
            Predictor::Tract(t, _) => t.dim(),
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
