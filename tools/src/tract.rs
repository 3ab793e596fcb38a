//! Host fallback: runs the fp32 or QDQ ONNX export through tract-onnx, with the
//! very tokenizer of a `.pith` package, so both paths see the same token ids.

use std::path::Path;

use tract_onnx::prelude::*;

use pith_runtime::tokenizer::Tokenizer;

type Plan = std::sync::Arc<TypedRunnableModel>;

/// An ONNX sentence encoder (`input_ids`, `attention_mask` → `sentence_embedding`) run by tract.
pub struct TractModel {
    plan: Plan,
}

/// What a backend needs to know of an ONNX graph before running it.
pub struct GraphFacts {
    /// The `[vocab, hidden]` shape of the token table gathered by `input_ids`, if there is one.
    pub token_table: Option<(usize, usize)>,
    /// Whether the graph quantizes (QDQ pairs or integer matmuls): an int8 graph, not fp32.
    pub quantized: bool,
}

/// Reads the graph at `path` without running it: its token table and whether it is quantized.
pub fn graph_facts(path: &Path) -> anyhow::Result<GraphFacts> {
    use anyhow::Context;
    use prost::Message;
    let bytes = crate::input::bytes(path)?;
    let model = tract_onnx::pb::ModelProto::decode(bytes.as_slice())
        .with_context(|| format!("{} is not an ONNX model", path.display()))?;
    Ok(facts_of(&model))
}

/// [`graph_facts`] of a graph already decoded.
pub fn facts_of(model: &tract_onnx::pb::ModelProto) -> GraphFacts {
    let Some(graph) = &model.graph else {
        return GraphFacts {
            token_table: None,
            quantized: false,
        };
    };
    let quantized = graph.node.iter().any(|n| {
        matches!(
            n.op_type.as_str(),
            "QuantizeLinear" | "DequantizeLinear" | "DynamicQuantizeLinear" | "MatMulInteger"
        )
    });
    let gathered = graph.node.iter().find_map(|n| {
        (n.op_type == "Gather" && n.input.get(1).map(String::as_str) == Some("input_ids"))
            .then(|| n.input.first())
            .flatten()
    });
    let token_table = gathered.and_then(|table| {
        graph
            .initializer
            .iter()
            .find(|t| &t.name == table)
            .and_then(|t| match t.dims[..] {
                [rows, width] => Some((usize::try_from(rows).ok()?, usize::try_from(width).ok()?)),
                _ => None,
            })
    });
    GraphFacts {
        token_table,
        quantized,
    }
}

impl TractModel {
    /// Loads and optimizes the graph for batch 1 and any sequence length. Unknown ops, malformed
    /// protobuf or wrong inputs come back as errors naming the problem.
    pub fn load(path: &Path) -> TractResult<Self> {
        let mut model = tract_onnx::onnx().model_for_path(path)?;
        let seq = model.symbols.sym("S");
        let fact = i64::fact(&[1.to_dim(), seq.to_dim()]);
        model.set_input_fact(0, fact.clone().into())?;
        model.set_input_fact(1, fact.into())?;
        let plan = model.into_optimized()?.into_runnable()?;
        Ok(TractModel { plan })
    }

    /// Loads and optimizes the graph for any batch and sequence length (symbolic `batch` and
    /// `sequence`), for [`TractModel::embed_batches`].
    pub fn load_batched(path: &Path) -> TractResult<Self> {
        let mut model = tract_onnx::onnx().model_for_path(path)?;
        let dims = tvec![model.sym("batch").to_dim(), model.sym("sequence").to_dim()];
        let fact = InferenceFact::dt_shape(i64::datum_type(), dims);
        model.set_input_fact(0, fact.clone())?;
        model.set_input_fact(1, fact)?;
        let plan = model.into_optimized()?.into_runnable()?;
        Ok(TractModel { plan })
    }

    /// Embeds `ids` in consecutive groups of `batch`, each group padded to its longest member
    /// (the attention mask marks the padding), as a graph loaded by [`TractModel::load_batched`]
    /// runs them.
    pub fn embed_batches(&self, ids: &[Vec<i64>], batch: usize) -> TractResult<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(batch.max(1)) {
            let n = chunk.iter().map(Vec::len).max().unwrap_or(0);
            let mut input = vec![0i64; chunk.len() * n];
            let mut mask = vec![0i64; chunk.len() * n];
            for (r, x) in chunk.iter().enumerate() {
                input[r * n..r * n + x.len()].copy_from_slice(x);
                mask[r * n..r * n + x.len()].fill(1);
            }
            let res = self.plan.run(tvec![
                Tensor::from_shape(&[chunk.len(), n], &input)?.into(),
                Tensor::from_shape(&[chunk.len(), n], &mask)?.into(),
            ])?;
            let emb = res[0].to_plain_array_view::<f32>()?;
            anyhow::ensure!(
                emb.shape()[0] == chunk.len(),
                "the graph returned {} rows for a batch of {}",
                emb.shape()[0],
                chunk.len()
            );
            out.extend(
                emb.outer_iter()
                    .map(|row| row.iter().copied().collect::<Vec<f32>>()),
            );
        }
        Ok(out)
    }

    /// Embeds token ids (`[CLS] .. [SEP]`); returns the output vector as the graph produced it.
    pub fn embed_ids(&self, ids: &[u32]) -> TractResult<Vec<f32>> {
        let n = ids.len();
        let input: Tensor =
            tract_ndarray::Array2::from_shape_vec((1, n), ids.iter().map(|&i| i as i64).collect())?
                .into();
        let mask: Tensor = tract_ndarray::Array2::<i64>::ones((1, n)).into();
        let out = self.plan.run(tvec!(input.into(), mask.into()))?;
        let v = out[0].to_plain_array_view::<f32>()?;
        Ok(v.iter().copied().collect())
    }

    /// Tokenizes with `tok` and embeds.
    pub fn embed(
        &self,
        tok: &Tokenizer<'_>,
        text: &str,
        max_tokens: usize,
    ) -> TractResult<Vec<f32>> {
        let mut ids = vec![0u32; max_tokens.max(2)];
        let n = tok
            .encode(text, &mut ids)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.embed_ids(&ids[..n])
    }
}
