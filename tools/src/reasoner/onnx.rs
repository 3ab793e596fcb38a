//! The reasoner as an ONNX graph (`context [1, N, dim]` → `prediction [1, dim]`, N ≤ 8 turn
//! embeddings, latest first), fp32 or QDQ, on the encoder graph's layer code, and its run
//! through tract: `pith eval chat --backend tract-fp32` / `tract-int8`.

use std::path::Path;

use anyhow::{anyhow, ensure, Context, Result};
use ndarray::{Array1, Array2};
use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::quant::QReasoner;
use super::{Reasoner, WINDOW};
use crate::onnx::builder::{Attr, Dim, Graph};
use crate::onnx::{layer, qdq, LayerConsts, LayerWeights, Lin, Site};

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

/// Where the reasoner's parameters come from: the fp32 checkpoint or its quantized plan. The
/// layers are the encoder graph's own (`onnx::layer`).
trait ReasonerWeights: LayerWeights {
    /// The position table `[WINDOW, dim]`, float.
    fn pos_table(&mut self, g: &mut Graph) -> Result<String>;
    /// The read-out linear over row 0 `[1, dim]`.
    fn read_out(&mut self, g: &mut Graph, x: &str) -> Result<String>;
}

/// The fp32 flavor: the checkpoint's tensors, named as in the checkpoint.
struct Fp32Flavor<'a>(&'a Reasoner);

fn lin_of(l: &super::Layer, lin: Lin) -> (&(Array2<f32>, Array1<f32>), &'static str) {
    match lin {
        Lin::Q => (&l.q, "q"),
        Lin::K => (&l.k, "k"),
        Lin::V => (&l.v, "v"),
        Lin::O => (&l.o, "o"),
        Lin::Up => (&l.up, "up"),
        Lin::Down => (&l.down, "down"),
    }
}

fn ln_name(layer: usize, which: u8) -> String {
    format!("layers.{layer}.ln{which}")
}

impl LayerWeights for Fp32Flavor<'_> {
    fn ln(&self, layer: usize, which: u8) -> (&Array1<f32>, &Array1<f32>) {
        let l = &self.0.layers[layer];
        let ln = if which == 1 { &l.ln1 } else { &l.ln2 };
        (&ln.0, &ln.1)
    }

    fn ln_module(&self, layer: usize, which: u8) -> String {
        ln_name(layer, which)
    }

    fn eps(&self) -> f32 {
        self.0.eps
    }

    fn linear(&mut self, g: &mut Graph, layer: usize, lin: Lin, x: &str) -> Result<String> {
        let l = self.0.layers.get(layer).context("layer index")?;
        let (w, name) = lin_of(l, lin);
        Ok(linear(g, &format!("layers.{layer}.{name}"), w, x))
    }
}

impl ReasonerWeights for Fp32Flavor<'_> {
    fn pos_table(&mut self, g: &mut Graph) -> Result<String> {
        let p = &self.0.pos;
        Ok(g.init_f32_named("pos", &[p.nrows(), p.ncols()], p.as_slice().unwrap_or(&[])))
    }

    fn read_out(&mut self, g: &mut Graph, x: &str) -> Result<String> {
        Ok(linear(g, "out", &self.0.out, x))
    }
}

/// The QDQ flavor: int8 weights and tables behind DequantizeLinear and a QuantizeLinear /
/// DequantizeLinear pair wherever the integer reasoner rounds an activation.
struct QdqFlavor<'a> {
    q: &'a QReasoner,
    eps: f32,
}

impl LayerWeights for QdqFlavor<'_> {
    fn ln(&self, layer: usize, which: u8) -> (&Array1<f32>, &Array1<f32>) {
        qdq::ln_of(&self.q.layers[layer].q, which)
    }

    fn ln_module(&self, layer: usize, which: u8) -> String {
        ln_name(layer, which)
    }

    fn eps(&self) -> f32 {
        self.eps
    }

    fn linear(&mut self, g: &mut Graph, layer: usize, lin: Lin, x: &str) -> Result<String> {
        let l = &self.q.layers.get(layer).context("layer index")?.q;
        qdq::linear(g, qdq::qlinear(l, lin), x)
    }

    fn act(&mut self, g: &mut Graph, layer: usize, site: Site, x: &str) -> Result<String> {
        let l = &self.q.layers.get(layer).context("layer index")?.q;
        Ok(qdq::act(g, l, site, x))
    }
}

impl ReasonerWeights for QdqFlavor<'_> {
    fn pos_table(&mut self, g: &mut Graph) -> Result<String> {
        Ok(qdq::dq_rows(g, "pos_q", &self.q.pos, &self.q.pos_scale))
    }

    fn read_out(&mut self, g: &mut Graph, x: &str) -> Result<String> {
        qdq::linear(g, &self.q.out, x)
    }
}

/// The graph of `r` with the parameters of `w`: input LayerNorm, positions, embedding LayerNorm,
/// the layers, row 0's read-out.
fn build(r: &Reasoner, w: &mut dyn ReasonerWeights, name: &str) -> Result<ModelProto> {
    let mut g = Graph::default();
    let (d, eps) = (r.dim, r.eps);
    let x_in = g.input(
        INPUT,
        DataType::Float,
        &[Dim::Fixed(1), Dim::Named("turns"), Dim::Fixed(d as i64)],
    );
    let x = layer_norm(&mut g, "ln_in", &r.ln_in, eps, &x_in);
    // Positions 0..N of the table, N from the input's shape.
    let pos = w.pos_table(&mut g)?;
    let shape = g.op("Shape", &[&x_in], vec![]);
    let one = g.ints(&[1]);
    let n = g.op("Gather", &[&shape, &one], vec![("axis", Attr::Int(0))]);
    let zero = g.ints(&[0]);
    let pos = g.op("Slice", &[&pos, &zero, &n, &zero], vec![]);
    let x = g.op("Add", &[&x, &pos], vec![]);
    let mut x = layer_norm(&mut g, "ln_emb", &r.ln_emb, eps, &x);
    let k = LayerConsts::new(&mut g, d, r.heads);
    for l in 0..r.layers.len() {
        x = layer(&mut g, w, l, &x, &k, (None, None))?;
    }
    let first = g.scalar_i64(0);
    let h0 = g.op("Gather", &[&x, &first], vec![("axis", Attr::Int(1))]);
    let y = w.read_out(&mut g, &h0)?;
    let y = head(&mut g, r, &x_in, &y);
    g.op_to(OUTPUT, "Identity", &[&y], vec![]);
    g.output(
        OUTPUT,
        DataType::Float,
        Some(&[Dim::Fixed(1), Dim::Fixed(d as i64)]),
    );
    Ok(g.finish(name))
}

/// The prediction's head in float operators ([`super::head`]): the read-out `y` scaled by the trust
/// of the latest turn, plus β times that turn at unit length. Nothing without a residual.
fn head(g: &mut Graph, r: &Reasoner, x_in: &str, y: &str) -> String {
    if r.residual == 0.0 {
        return y.to_string();
    }
    let first = g.scalar_i64(0);
    let e0 = g.op("Gather", &[x_in, &first], vec![("axis", Attr::Int(1))]);
    let sq = g.op("Mul", &[&e0, &e0], vec![]);
    let axes = g.ints(&[-1]);
    let ss = g.op("ReduceSum", &[&sq, &axes], vec![("keepdims", Attr::Int(1))]);
    let n = g.op("Sqrt", &[&ss], vec![]);
    let tiny = g.scalar_f32(1e-12);
    let n = g.op("Max", &[&n, &tiny], vec![]);
    let unit = g.op("Div", &[&e0, &n], vec![]);
    let y = match &r.trust {
        None => y.to_string(),
        Some(t) => {
            let pt = t.prototypes.t().as_standard_layout().to_owned();
            let p = g.init_f32(
                "trust_prototypes_t",
                &[pt.nrows(), pt.ncols()],
                pt.as_slice().unwrap_or(&[]),
            );
            let s = g.op("MatMul", &[&unit, &p], vec![]);
            let attrs = vec![("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(1))];
            let best = g.op("ReduceMax", &[&s], attrs);
            let low = g.scalar_f32(t.low);
            let span = g.scalar_f32(t.high - t.low);
            let d = g.op("Sub", &[&best, &low], vec![]);
            let d = g.op("Div", &[&d, &span], vec![]);
            let (zero, one) = (g.scalar_f32(0.0), g.scalar_f32(1.0));
            let trust = g.op("Clip", &[&d, &zero, &one], vec![]);
            g.op("Mul", &[y, &trust], vec![])
        }
    };
    let beta = g.scalar_f32(r.residual);
    let res = g.op("Mul", &[&unit, &beta], vec![]);
    g.op("Add", &[&y, &res], vec![])
}

/// The fp32 graph of `r`; initializers are named after the checkpoint's tensors.
pub fn fp32_model(r: &Reasoner) -> Result<ModelProto> {
    build(r, &mut Fp32Flavor(r), "pith-reasoner-fp32")
}

/// The QDQ graph of `r` quantized as `q`: what the integer reasoner computes, in float operators.
pub fn qdq_model(r: &Reasoner, q: &QReasoner) -> Result<ModelProto> {
    ensure!(
        q.layers.len() == r.layers.len(),
        "{} quantized layers for a {}-layer reasoner",
        q.layers.len(),
        r.layers.len()
    );
    build(r, &mut QdqFlavor { q, eps: r.eps }, "pith-reasoner-qdq")
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

/// Writes `model` (an fp32 or QDQ reasoner graph) to `path`, whole or not at all.
pub fn write(model: &ModelProto, path: &Path) -> Result<()> {
    crate::output::write_whole(path, &model.encode_to_vec())
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

    /// Width of the turn vectors.
    pub fn dim(&self) -> usize {
        self.dim
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
        let dir = crate::defaults::repo_root()
            .unwrap()
            .join("models/reasoner-s");
        let r = Reasoner::load(&dir).unwrap();
        let t = TractReasoner::new(&fp32_model(&r).unwrap(), r.dim).unwrap();
        let refs = super::super::reference_cases(&r.config).unwrap();
        assert!(!refs.is_empty());
        for case in refs {
            let rows = case.window_f32();
            let window: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let got = t.predict(&window).unwrap();
            let want = &case.prediction;
            assert_eq!(got.len(), want.len());
            for (g, &w) in got.iter().zip(want) {
                let w = w as f32;
                assert!((g - w).abs() < 1e-4 * w.abs().max(1.0), "{g} vs {w}");
            }
        }
    }

    #[test]
    fn windows_outside_one_to_eight_turns_are_errors() {
        let dir = crate::defaults::repo_root()
            .unwrap()
            .join("models/reasoner-s");
        let r = Reasoner::load(&dir).unwrap();
        let t = TractReasoner::new(&fp32_model(&r).unwrap(), r.dim).unwrap();
        assert!(t.predict(&[]).is_err());
        let row = vec![0.1f32; r.dim];
        assert!(t.predict(&[row.as_slice(); WINDOW + 1]).is_err());
        assert!(t.predict(&[&row[..3]]).is_err());
    }
}
