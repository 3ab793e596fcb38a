//! Float weights straight from the checkpoint, optionally exposing activations as extra outputs
//! so a calibration pass can read their ranges.

use std::collections::HashMap;

use anyhow::Result;
use ndarray::{Array1, Array2};
use tract_onnx::pb::tensor_proto::DataType;

use super::bert::{Lin, Site, Weights};
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

impl Weights for Fp32<'_> {
    fn word_embed(&mut self, g: &mut Graph, ids: &str) -> Result<String> {
        let t = self.ckpt.word_emb.as_standard_layout();
        let table = g.init_f32(
            "word_emb",
            &[t.nrows(), t.ncols()],
            t.as_slice().expect("standard layout"),
        );
        Ok(g.op("Gather", &[&table, ids], vec![("axis", Attr::Int(0))]))
    }

    fn pos_table(&mut self, g: &mut Graph) -> Result<String> {
        let t = folded_positions(self.ckpt);
        Ok(g.init_f32(
            "pos_emb",
            &[t.nrows(), t.ncols()],
            t.as_slice().expect("standard layout"),
        ))
    }

    fn emb_ln(&self) -> (&Array1<f32>, &Array1<f32>) {
        (&self.ckpt.emb_ln_g, &self.ckpt.emb_ln_b)
    }

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
        let wn = g.init_f32(
            "w",
            &[wt.nrows(), wt.ncols()],
            wt.as_slice().expect("standard layout"),
        );
        let bn = g.init_f32("b", &[b.len()], b.as_slice().expect("contiguous"));
        let y = g.op("MatMul", &[x, &wn], vec![]);
        Ok(g.op("Add", &[&y, &bn], vec![]))
    }

    fn act(&mut self, _g: &mut Graph, layer: usize, site: Site, x: &str) -> Result<String> {
        self.record(Probe::Act(layer, site), x);
        Ok(x.to_string())
    }
}
