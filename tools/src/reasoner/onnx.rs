//! The reasoner as an fp32 ONNX graph (`context [1, N, dim]` → `prediction [1, dim]`, N ≤ 8 turn
//! embeddings, latest first), and its run through tract: the float reference of `pith eval chat
//! --backend tract-fp32`.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use ndarray::{Array1, Array2};
use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::{Reasoner, WINDOW};
use crate::onnx::builder::{Attr, Dim, Graph};
use crate::onnx::split_heads;

/// Name of the graph input: the window's turn embeddings, `[1, N, dim]`.
pub const INPUT: &str = "context";
/// Name of the graph output: the predicted next-turn embedding, `[1, dim]` (not normalized).
pub const OUTPUT: &str = "prediction";

fn t2(g: &mut Graph, name: &str, w: &Array2<f32>) -> String {
    // ONNX MatMul takes [in, out]: the transpose of PyTorch's layout.
    let wt = w.t().as_standard_layout().to_owned();
    g.init_f32_named(
        name,
        &[wt.nrows(), wt.ncols()],
        wt.as_slice().unwrap_or(&[]),
    )
}

fn v1(g: &mut Graph, name: &str, v: &Array1<f32>) -> String {
    g.init_f32_named(name, &[v.len()], v.as_slice().unwrap_or(&[]))
}

fn linear(g: &mut Graph, name: &str, lin: &(Array2<f32>, Array1<f32>), x: &str) -> String {
    let w = t2(g, &format!("{name}.weight"), &lin.0);
    let b = v1(g, &format!("{name}.bias"), &lin.1);
    let m = g.op("MatMul", &[x, &w], vec![]);
    g.op("Add", &[&m, &b], vec![])
}

/// The encoder graph's LayerNormalization, with the checkpoint's `(weight, bias)` pair.
fn layer_norm(
    g: &mut Graph,
    name: &str,
    ln: &(Array1<f32>, Array1<f32>),
    eps: f32,
    x: &str,
) -> String {
    crate::onnx::layer_norm(g, name, x, &ln.0, &ln.1, eps)
}

/// The fp32 graph of `r`; initializers are named after the checkpoint's tensors.
pub fn fp32_model(r: &Reasoner) -> ModelProto {
    let mut g = Graph::default();
    let (d, eps) = (r.dim, r.eps);
    let dh = d / r.heads;
    let x_in = g.input(
        INPUT,
        DataType::Float,
        &[Dim::Fixed(1), Dim::Named("turns"), Dim::Fixed(d as i64)],
    );
    let x = layer_norm(&mut g, "ln_in", &r.ln_in, eps, &x_in);
    // Positions 0..N of the table, N from the input's shape.
    let pos = g.init_f32_named("pos", &[WINDOW, d], r.pos.as_slice().unwrap_or(&[]));
    let shape = g.op("Shape", &[&x_in], vec![]);
    let one = g.ints(&[1]);
    let n = g.op("Gather", &[&shape, &one], vec![("axis", Attr::Int(0))]);
    let zero = g.ints(&[0]);
    let pos = g.op("Slice", &[&pos, &zero, &n, &zero], vec![]);
    let x = g.op("Add", &[&x, &pos], vec![]);
    let mut x = layer_norm(&mut g, "ln_emb", &r.ln_emb, eps, &x);
    let inv_sqrt_dh = g.scalar_f32(1.0 / (dh as f32).sqrt());
    let merge = g.ints(&[0, 0, d as i64]);
    let half = g.scalar_f32(0.5);
    let c1 = g.scalar_f32(1.0);
    let inv_sqrt2 = g.scalar_f32(std::f32::consts::FRAC_1_SQRT_2);
    for (i, l) in r.layers.iter().enumerate() {
        let p = format!("layers.{i}");
        let q = linear(&mut g, &format!("{p}.q"), &l.q, &x);
        let k = linear(&mut g, &format!("{p}.k"), &l.k, &x);
        let v = linear(&mut g, &format!("{p}.v"), &l.v, &x);
        let qh = split_heads(&mut g, &q, r.heads, dh, false);
        let kt = split_heads(&mut g, &k, r.heads, dh, true);
        let vh = split_heads(&mut g, &v, r.heads, dh, false);
        let s = g.op("MatMul", &[&qh, &kt], vec![]);
        let s = g.op("Mul", &[&s, &inv_sqrt_dh], vec![]);
        let pr = g.op("Softmax", &[&s], vec![("axis", Attr::Int(-1))]);
        let c = g.op("MatMul", &[&pr, &vh], vec![]);
        let c = g.op(
            "Transpose",
            &[&c],
            vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let c = g.op("Reshape", &[&c, &merge], vec![]);
        let o = linear(&mut g, &format!("{p}.o"), &l.o, &c);
        let r1 = g.op("Add", &[&o, &x], vec![]);
        let x1 = layer_norm(&mut g, &format!("{p}.ln1"), &l.ln1, eps, &r1);
        let u = linear(&mut g, &format!("{p}.up"), &l.up, &x1);
        let us = g.op("Mul", &[&u, &inv_sqrt2], vec![]);
        let erf = g.op("Erf", &[&us], vec![]);
        let erf1 = g.op("Add", &[&erf, &c1], vec![]);
        let uh = g.op("Mul", &[&u, &half], vec![]);
        let gelu = g.op("Mul", &[&uh, &erf1], vec![]);
        let dn = linear(&mut g, &format!("{p}.down"), &l.down, &gelu);
        let r2 = g.op("Add", &[&dn, &x1], vec![]);
        x = layer_norm(&mut g, &format!("{p}.ln2"), &l.ln2, eps, &r2);
    }
    let first = g.scalar_i64(0);
    let h0 = g.op("Gather", &[&x, &first], vec![("axis", Attr::Int(1))]);
    let w = t2(&mut g, "out.weight", &r.out.0);
    let b = v1(&mut g, "out.bias", &r.out.1);
    let m = g.op("MatMul", &[&h0, &w], vec![]);
    g.op_to(OUTPUT, "Add", &[&m, &b], vec![]);
    g.output(
        OUTPUT,
        DataType::Float,
        Some(&[Dim::Fixed(1), Dim::Fixed(d as i64)]),
    );
    g.finish("pith-reasoner-fp32")
}

/// Writes the fp32 graph of `r` to `path`.
pub fn export_fp32(r: &Reasoner, path: &Path) -> Result<()> {
    std::fs::write(path, fp32_model(r).encode_to_vec())
        .with_context(|| format!("writing {}", path.display()))
}

/// The reasoner's ONNX graph run by tract, for any window of 1 to 8 turns.
pub struct TractReasoner {
    plan: std::sync::Arc<TypedRunnableModel>,
    dim: usize,
}

impl TractReasoner {
    /// Optimizes `model` for batch 1 and a symbolic number of turns.
    pub fn new(model: &ModelProto, dim: usize) -> Result<Self> {
        let bytes = model.encode_to_vec();
        let mut m = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| anyhow!("loading the reasoner graph in tract: {e:#}"))?;
        let n = m.symbols.sym("N");
        m.set_input_fact(0, f32::fact([1.to_dim(), n.to_dim(), dim.to_dim()]).into())
            .map_err(|e| anyhow!("{e:#}"))?;
        let plan = m
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow!("optimizing the reasoner graph: {e:#}"))?;
        Ok(TractReasoner { plan, dim })
    }

    /// Predicts the next turn's embedding from `window` (latest turn first, 1 to 8 rows of `dim`).
    pub fn predict(&self, window: &[&[f32]]) -> Result<Vec<f32>> {
        if window.is_empty() || window.len() > WINDOW {
            anyhow::bail!("a window holds 1 to {WINDOW} turns, got {}", window.len());
        }
        let mut flat = Vec::with_capacity(window.len() * self.dim);
        for row in window {
            if row.len() != self.dim {
                anyhow::bail!(
                    "turn embedding of {} values, expected {}",
                    row.len(),
                    self.dim
                );
            }
            flat.extend_from_slice(row);
        }
        let x: Tensor =
            tract_ndarray::Array3::from_shape_vec((1, window.len(), self.dim), flat)?.into();
        let out = self
            .plan
            .run(tvec!(x.into()))
            .map_err(|e| anyhow!("running the reasoner: {e:#}"))?;
        let v = out[0].to_plain_array_view::<f32>()?;
        Ok(v.iter().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed checkpoint's ONNX graph, run by tract, reproduces the float model of the
    /// training script (`reference` in reasoner.json: PyTorch's output on three dev windows).
    #[test]
    fn tract_matches_the_training_script() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/reasoner-s");
        let r = Reasoner::load(&dir).unwrap();
        let t = TractReasoner::new(&fp32_model(&r), r.dim).unwrap();
        let refs = r.config["reference"].as_array().unwrap();
        assert!(!refs.is_empty());
        for case in refs {
            let rows: Vec<Vec<f32>> = case["window"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    row.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                        .collect()
                })
                .collect();
            let window: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let got = t.predict(&window).unwrap();
            let want = case["prediction"].as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                let w = w.as_f64().unwrap() as f32;
                assert!((g - w).abs() < 1e-4 * w.abs().max(1.0), "{g} vs {w}");
            }
        }
    }

    #[test]
    fn windows_outside_one_to_eight_turns_are_errors() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/reasoner-s");
        let r = Reasoner::load(&dir).unwrap();
        let t = TractReasoner::new(&fp32_model(&r), r.dim).unwrap();
        assert!(t.predict(&[]).is_err());
        let row = vec![0.1f32; r.dim];
        assert!(t.predict(&[row.as_slice(); WINDOW + 1]).is_err());
        assert!(t.predict(&[&row[..3]]).is_err());
    }
}
