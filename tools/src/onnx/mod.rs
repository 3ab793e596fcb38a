//! ONNX export of a checkpoint: the fp32 graph (`pith export`) and the QDQ graph of a quantized
//! model, both `input_ids, attention_mask -> sentence_embedding`, opset 17, loadable by tract and
//! onnxruntime.

mod bert;
pub(crate) mod builder;
mod fp32;
pub mod metadata;
#[cfg(test)]
mod naive;
pub(crate) mod qdq;
#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::{Context, Result};
use prost::Message;
use tract_onnx::pb::ModelProto;

use crate::checkpoint::Checkpoint;
use crate::quant::model::QModel;

fn write(model: &ModelProto, path: &Path) -> Result<()> {
    crate::output::write_whole(path, &model.encode_to_vec())
}

// Names the reader of `pith export` files (crate::checkpoint::onnx) shares with the writer.
pub(crate) use bert::{
    layer, layer_norm, layer_prefix, ln_module, LayerConsts, LayerWeights, Lin, Site, EMB_LN,
};
pub(crate) use fp32::{POS_EMB, REL_BIAS, TRANSPOSED_DOC, TYPE_EMB, WORD_EMB};

/// The fp32 graph as an in-memory ONNX model, its initializers named after the checkpoint's
/// tensors and its metadata carrying the rest of the checkpoint, so `Checkpoint::from_onnx`
/// can read it back.
pub fn fp32_model(ckpt: &Checkpoint) -> Result<ModelProto> {
    let mut g = builder::Graph::default();
    bert::build(
        &mut g,
        &ckpt.config,
        ckpt.pooling,
        ckpt.normalize,
        &mut fp32::Fp32::new(ckpt),
    )?;
    let mut model = g.finish(&format!("{}-fp32", ckpt.name));
    model.metadata_props = metadata::metadata(ckpt)?;
    Ok(model)
}

/// The QDQ graph of `q` as an in-memory ONNX model.
pub fn qdq_model(ckpt: &Checkpoint, q: &QModel) -> Result<ModelProto> {
    let mut flavor =
        qdq::Qdq::new(&ckpt.config, q).context("quantized model does not match the checkpoint")?;
    let mut g = builder::Graph::default();
    bert::build(
        &mut g,
        &ckpt.config,
        ckpt.pooling,
        ckpt.normalize,
        &mut flavor,
    )?;
    Ok(g.finish(&format!("{}-qdq", ckpt.name)))
}

/// Writes the fp32 ONNX graph of `ckpt` to `path`.
pub fn export_fp32(ckpt: &Checkpoint, path: &Path) -> Result<()> {
    write(&fp32_model(ckpt)?, path)
}

/// Writes the QDQ ONNX graph of the quantized model `q` (built from `ckpt`) to `path`.
pub fn export_qdq(ckpt: &Checkpoint, q: &QModel, path: &Path) -> Result<()> {
    write(&qdq_model(ckpt, q)?, path)
}
