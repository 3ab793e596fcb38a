//! The three ways to embed a sentence on the host: the native int8 runtime, and tract running the
//! fp32 or the QDQ int8 ONNX. All three use the package's tokenizer, so they see the same ids.

use std::path::PathBuf;

use crate::tract::TractModel;
use anyhow::{anyhow, bail, Result};
use pith_runtime::Model;

/// Which engine embeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Kind {
    /// The no_std integer runtime (what the device runs).
    Native,
    /// tract-onnx on the fp32 ONNX export.
    TractFp32,
    /// tract-onnx on the QDQ int8 ONNX export.
    TractInt8,
}

/// Refuses a graph that is not the one `kind` names (an fp32 export under tract-int8, a QDQ
/// graph under tract-fp32: the figures would carry the wrong label) or whose token table is not
/// the package's (the tract backends tokenize with the package's vocabulary).
fn check_graph(model: &Model<'_>, onnx: &std::path::Path, kind: Kind) -> Result<()> {
    let facts = crate::tract::graph_facts(onnx)?;
    match (kind, facts.quantized) {
        (Kind::TractInt8, false) => bail!(
            "{}: an fp32 graph (no QuantizeLinear/DequantizeLinear), but the tract-int8 engine \
             runs the QDQ graph (`pith quantize --onnx`); use tract-fp32 for this one",
            onnx.display()
        ),
        (Kind::TractFp32, true) => bail!(
            "{}: a quantized (QDQ) graph, but the tract-fp32 engine runs the fp32 export \
             (`pith export`); use tract-int8 for this one",
            onnx.display()
        ),
        _ => {}
    }
    let m = &model.package().header().model;
    let want = (m.vocab_size as usize, m.hidden as usize);
    match facts.token_table {
        Some(shape) if shape == want => Ok(()),
        Some((rows, width)) => Err(anyhow!(
            "{}: its token table is {rows} x {width} but the package's is {} x {}: the tract \
             backends need the ONNX exported with this package (pass it with --onnx)",
            onnx.display(),
            want.0,
            want.1
        )),
        None => Err(anyhow!(
            "{}: no token table gathered by input_ids, so it cannot be matched to the package's \
             vocabulary (only `pith export`/`pith quantize --onnx` graphs run here)",
            onnx.display()
        )),
    }
}

/// A ready embedder.
pub struct Embedder<'a> {
    pub model: Model<'a>,
    tract: Option<TractModel>,
    arena: Vec<i32>,
}

impl<'a> Embedder<'a> {
    /// Builds the embedder of `kind` over `package` bytes; tract kinds load `onnx`.
    pub fn new(package: &'a [u8], kind: Kind, onnx: Option<PathBuf>) -> Result<Self> {
        let model = Model::new(package).map_err(|e| anyhow!("loading package: {e}"))?;
        let tract = match kind {
            Kind::Native => None,
            Kind::TractFp32 | Kind::TractInt8 => {
                let path = onnx
                    .ok_or_else(|| anyhow!("the {kind:?} engine needs an ONNX graph (--onnx)"))?;
                check_graph(&model, &path, kind)?;
                Some(
                    TractModel::load(&path)
                        .map_err(|e| anyhow!("loading {} in tract: {e:#}", path.display()))?,
                )
            }
        };
        let arena = vec![0i32; model.arena_words(model.max_tokens())];
        Ok(Embedder {
            model,
            tract,
            arena,
        })
    }

    /// Unit-length f32 embedding of `text`.
    pub fn embed(&mut self, text: &str) -> Result<Vec<f32>> {
        match &self.tract {
            None => {
                let q = self.embed_i8(text)?;
                let mut f = vec![0f32; q.len()];
                Model::dequantize(&q, &mut f);
                Ok(f)
            }
            Some(t) => {
                let v = t
                    .embed(self.model.tokenizer(), text, self.model.max_tokens())
                    .map_err(|e| anyhow!("{e:#}"))?;
                Ok(crate::fp32::normalize(ndarray::ArrayView1::from(&v)).to_vec())
            }
        }
    }

    /// The int8 embedding of the native runtime.
    pub fn embed_i8(&mut self, text: &str) -> Result<Vec<i8>> {
        let mut q = vec![0i8; self.model.dim()];
        self.model
            .embed(text, &mut self.arena, &mut q)
            .map_err(|e| anyhow!("embedding: {e}"))?;
        Ok(q)
    }
}
