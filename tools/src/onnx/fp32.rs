//! Float weights straight from the checkpoint, optionally exposing activations as extra outputs
//! so a calibration pass can read their ranges.

use std::collections::HashMap;

use anyhow::Result;
use ndarray::{Array1, Array2};
use tract_onnx::pb::tensor_proto::DataType;

use super::bert::{layer_prefix, LayerWeights, Lin, Site, Weights};
use super::builder::{Attr, Graph};
use crate::checkpoint::{Checkpoint, Layer};

/// What a probe observes: the input of a linear layer or a hooked activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Probe {
    LinIn(usize, Lin),
    Act(usize, Site),
}

/// The fp32 flavor.
pub struct Fp32<'a> {
    ckpt: &'a Checkpoint,
    /// When set, every probed value becomes a graph output; maps probe -> value name.
    probes: Option<HashMap<Probe, String>>,
}

impl<'a> Fp32<'a> {
    /// Plain fp32 weights.
    pub fn new(ckpt: &'a Checkpoint) -> Self {
        Fp32 { ckpt, probes: None }
    }

    /// fp32 weights, recording every quantizable activation as a probe.
    // Only the test quantizer calibrates through the graph; the real one has its own forward pass.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn with_probes(ckpt: &'a Checkpoint) -> Self {
        Fp32 {
            ckpt,
            probes: Some(HashMap::new()),
        }
    }

    /// Declares each distinct probed value as a graph output and returns (probe, output index),
    /// output index counted after the model's own single output.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn expose_probes(&self, g: &mut Graph) -> Vec<(Probe, usize)> {
        let Some(probes) = &self.probes else {
            return Vec::new();
        };
        let mut names: Vec<&String> = probes.values().collect();
        names.sort();
        names.dedup();
        for n in &names {
            g.output(n, DataType::Float, None);
        }
        probes
            .iter()
            .map(|(p, n)| (*p, 1 + names.iter().position(|m| *m == n).expect("listed")))
            .collect()
    }

    fn record(&mut self, probe: Probe, value: &str) {
        if let Some(p) = &mut self.probes {
            p.insert(probe, value.to_string());
        }
    }
}

/// The position table as the graph uses it: token type 0 folded in, since pith never feeds
/// other token types.
// The fp32 graph now folds in-graph; only the test quantizer still needs the table itself.
#[cfg_attr(not(test), allow(dead_code))]
pub fn folded_positions(ckpt: &Checkpoint) -> Array2<f32> {
    &ckpt.pos_emb + &ckpt.type_emb.row(0)
}

/// Weight and bias of linear `lin` in a checkpoint layer.
pub fn linear_of(layer: &Layer, lin: Lin) -> (&Array2<f32>, &Array1<f32>) {
    match lin {
        Lin::Q => (&layer.wq, &layer.bq),
        Lin::K => (&layer.wk, &layer.bk),
        Lin::V => (&layer.wv, &layer.bv),
        Lin::O => (&layer.wo, &layer.bo),
        Lin::Up => (&layer.w1, &layer.b1),
        Lin::Down => (&layer.w2, &layer.b2),
    }
}

/// Hugging Face names of the embedding tables the fp32 graph stores unchanged.
pub const WORD_EMB: &str = "embeddings.word_embeddings.weight";
/// See [`WORD_EMB`].
pub const POS_EMB: &str = "embeddings.position_embeddings.weight";
/// See [`WORD_EMB`]: MPNet's relative position bias, `[buckets, heads]`.
pub const REL_BIAS: &str = "encoder.relative_attention_bias.weight";
/// See [`WORD_EMB`].
pub const TYPE_EMB: &str = "embeddings.token_type_embeddings.weight";

/// Doc string on each linear weight: the graph holds `W^T` so MatMul needs no Transpose node.
pub const TRANSPOSED_DOC: &str = "transposed: [in, out], the Hugging Face tensor is [out, in]";

impl Weights for Fp32<'_> {
    fn word_embed(&mut self, g: &mut Graph, ids: &str) -> Result<String> {
        let t = self.ckpt.word_emb.as_standard_layout();
        let table = g.init_f32_named(
            WORD_EMB,
            &[t.nrows(), t.ncols()],
            t.as_slice().expect("standard layout"),
        );
        Ok(g.op("Gather", &[&table, ids], vec![("axis", Attr::Int(0))]))
    }

    fn pos_table(&mut self, g: &mut Graph) -> Result<String> {
        // Both tables go in as the checkpoint has them and the fold happens in the graph: a folded
        // table cannot be split back exactly, and the float reference (crate::fp32) adds word,
        // position and type vectors in an order a pre-folded table would not reproduce bit for
        // bit. An f32 Add of constants gives the same bits as `folded_positions`.
        let p = self.ckpt.pos_emb.as_standard_layout();
        let pos = g.init_f32_named(
            POS_EMB,
            &[p.nrows(), p.ncols()],
            p.as_slice().expect("standard layout"),
        );
        let t = self.ckpt.type_emb.as_standard_layout();
        let types = g.init_f32_named(
            TYPE_EMB,
            &[t.nrows(), t.ncols()],
            t.as_slice().expect("standard layout"),
        );
        let zero = g.scalar_i64(0);
        let type0 = g.op("Gather", &[&types, &zero], vec![("axis", Attr::Int(0))]);
        Ok(g.op("Add", &[&pos, &type0], vec![]))
    }

    fn emb_ln(&self) -> (&Array1<f32>, &Array1<f32>) {
        (&self.ckpt.emb_ln_g, &self.ckpt.emb_ln_b)
    }

    fn rel_bias(&mut self, g: &mut Graph) -> Result<Option<String>> {
        Ok(self.ckpt.rel_bias.as_ref().map(|t| {
            let t = t.as_standard_layout();
            let dims = [t.nrows(), t.ncols()];
            g.init_f32_named(REL_BIAS, &dims, t.as_slice().expect("standard layout"))
        }))
    }
}

impl LayerWeights for Fp32<'_> {
    fn ln(&self, layer: usize, which: u8) -> (&Array1<f32>, &Array1<f32>) {
        let l = &self.ckpt.layers[layer];
        if which == 1 {
            (&l.ln1_g, &l.ln1_b)
        } else {
            (&l.ln2_g, &l.ln2_b)
        }
    }

    fn eps(&self) -> f32 {
        self.ckpt.config.layer_norm_eps
    }

    fn linear(&mut self, g: &mut Graph, layer: usize, lin: Lin, x: &str) -> Result<String> {
        self.record(Probe::LinIn(layer, lin), x);
        let (w, b) = linear_of(&self.ckpt.layers[layer], lin);
        // ONNX MatMul wants [in, out]; transposing here keeps the graph free of weight Transposes.
        let wt = w.t().as_standard_layout().to_owned();
        let module = format!("{}{}", layer_prefix(layer), lin.hf_module());
        let wn = g.init_f32_named(
            &format!("{module}.weight"),
            &[wt.nrows(), wt.ncols()],
            wt.as_slice().expect("standard layout"),
        );
        g.set_doc(&wn, TRANSPOSED_DOC);
        let bn = g.init_f32_named(
            &format!("{module}.bias"),
            &[b.len()],
            b.as_slice().expect("contiguous"),
        );
        let y = g.op("MatMul", &[x, &wn], vec![]);
        Ok(g.op("Add", &[&y, &bn], vec![]))
    }

    fn act(&mut self, _g: &mut Graph, layer: usize, site: Site, x: &str) -> Result<String> {
        self.record(Probe::Act(layer, site), x);
        Ok(x.to_string())
    }
}
