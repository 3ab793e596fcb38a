//! The quantized flavor: int8 tables and weights behind DequantizeLinear, and a
//! QuantizeLinear/DequantizeLinear pair wherever the integer engine rounds an activation.

use anyhow::{bail, ensure, Context, Result};
use ndarray::{Array1, Array2};
use tract_onnx::pb::tensor_proto::DataType;

use super::bert::{LayerWeights, Lin, Site, Weights};
use super::builder::{Attr, Graph};
use crate::checkpoint::BertConfig;
use crate::quant::model::{QLayer, QLinear, QModel, INT8};

/// Scale of the softmax output grid (uint8, zero point 0): probabilities in [0, 1].
pub const PROBS_SCALE: f32 = 1.0 / 255.0;

/// The QDQ flavor over a quantized model.
pub struct Qdq<'a> {
    q: &'a QModel,
}

/// Linear `lin` of a quantized layer.
pub(crate) fn qlinear(l: &QLayer, lin: Lin) -> &QLinear {
    match lin {
        Lin::Q => &l.q,
        Lin::K => &l.k,
        Lin::V => &l.v,
        Lin::O => &l.o,
        Lin::Up => &l.up,
        Lin::Down => &l.down,
    }
}

fn check_scale(what: &str, s: f32) -> Result<()> {
    ensure!(
        s.is_finite() && s > 0.0,
        "{what}: scale {s} is not a positive finite number"
    );
    Ok(())
}

fn check_table(what: &str, t: &Array2<i8>, scale: &[f32], rows: usize, cols: usize) -> Result<()> {
    if t.dim() != (rows, cols) {
        bail!(
            "{what}: table is {:?}, the checkpoint wants {rows}x{cols}",
            t.dim()
        );
    }
    ensure!(
        scale.len() == rows,
        "{what}: {} row scales for {rows} rows",
        scale.len()
    );
    for (i, &s) in scale.iter().enumerate() {
        // An all-zero row may legitimately carry scale 0 (unused tokens); DequantizeLinear is fine with it.
        ensure!(s.is_finite() && s >= 0.0, "{what}: row {i} has scale {s}");
    }
    Ok(())
}

impl<'a> Qdq<'a> {
    /// Checks every shape and scale against the checkpoint's config, so a bad QModel fails here
    /// with a message instead of inside an ONNX runtime.
    pub fn new(cfg: &BertConfig, q: &'a QModel) -> Result<Self> {
        let h = cfg.hidden;
        check_table(
            "word embeddings",
            &q.word_emb,
            &q.word_scale,
            cfg.vocab_size,
            h,
        )?;
        ensure!(
            q.pos_emb.ncols() == h,
            "position table has {} columns, hidden is {h}",
            q.pos_emb.ncols()
        );
        check_table(
            "position embeddings",
            &q.pos_emb,
            &q.pos_scale,
            q.pos_emb.nrows(),
            h,
        )?;
        ensure!(
            q.emb_ln_g.len() == h && q.emb_ln_b.len() == h,
            "embedding LayerNorm is not {h} wide"
        );
        ensure!(
            q.layers.len() == cfg.layers,
            "{} quantized layers, config says {}",
            q.layers.len(),
            cfg.layers
        );
        for (i, l) in q.layers.iter().enumerate() {
            for lin in [Lin::Q, Lin::K, Lin::V, Lin::O, Lin::Up, Lin::Down] {
                let (out, inp) = match lin {
                    Lin::Up => (cfg.ffn, h),
                    Lin::Down => (h, cfg.ffn),
                    _ => (h, h),
                };
                let ql = qlinear(l, lin);
                let what = format!("layer {i} {lin:?}");
                ensure!(
                    ql.w.dim() == (out, inp),
                    "{what}: weight is {:?}, expected [{out}, {inp}]",
                    ql.w.dim()
                );
                ensure!(
                    ql.w_scale.len() == out,
                    "{what}: {} weight scales for {out} outputs",
                    ql.w_scale.len()
                );
                ensure!(
                    ql.bias.len() == out,
                    "{what}: bias has {} entries, expected {out}",
                    ql.bias.len()
                );
                check_scale(&format!("{what} input"), ql.in_scale)?;
                ensure!(
                    (-128..=127).contains(&ql.in_zp),
                    "{what}: input zero point {} is not int8",
                    ql.in_zp
                );
                if let Some(s) = &ql.smooth {
                    ensure!(
                        s.len() == inp,
                        "{what}: smoothing has {} entries, expected {inp}",
                        s.len()
                    );
                    ensure!(
                        s.iter().all(|v| v.is_finite() && *v > 0.0),
                        "{what}: smoothing has a non-positive entry"
                    );
                }
            }
            for (name, s) in [
                ("q_out", l.q_out_scale),
                ("k_out", l.k_out_scale),
                ("v_out", l.v_out_scale),
                ("gelu_in", l.gelu_in_scale),
            ] {
                check_scale(&format!("layer {i} {name}"), s)?;
            }
            for (name, v) in [
                ("ln1_g", &l.ln1_g),
                ("ln1_b", &l.ln1_b),
                ("ln2_g", &l.ln2_g),
                ("ln2_b", &l.ln2_b),
            ] {
                ensure!(
                    v.len() == h,
                    "layer {i} {name} has {} entries, expected {h}",
                    v.len()
                );
            }
        }
        Ok(Qdq { q })
    }
}

/// DequantizeLinear of a constant int8 matrix with one scale per row (axis 0).
pub(crate) fn dq_rows(g: &mut Graph, hint: &str, t: &Array2<i8>, scale: &[f32]) -> String {
    let t = t.as_standard_layout();
    let data = g.init_i8(
        hint,
        &[t.nrows(), t.ncols()],
        t.as_slice().expect("standard layout"),
    );
    let s = g.init_f32("scale", &[scale.len()], scale);
    let zp = g.init_i8("zp", &[scale.len()], &vec![0; scale.len()]);
    g.op(
        "DequantizeLinear",
        &[&data, &s, &zp],
        vec![("axis", Attr::Int(0))],
    )
}

/// Rounds `x` onto an int8 grid and back: what the integer engine sees.
fn qdq_i8(g: &mut Graph, x: &str, scale: f32, zp: i32) -> String {
    let s = g.scalar_f32(scale);
    let z = g.scalar_i8(zp as i8);
    let q = g.op("QuantizeLinear", &[x, &s, &z], vec![]);
    g.op("DequantizeLinear", &[&q, &s, &z], vec![])
}

/// Rounds `x` onto a symmetric grid wider than int8 (`codes` = its first and last code) and back,
/// in float operators: QuantizeLinear to 16 bits is not in every runtime's opset.
fn qdq_wide(g: &mut Graph, x: &str, scale: f32, codes: (i32, i32)) -> String {
    let s = g.scalar_f32(scale);
    let (lo, hi) = (g.scalar_f32(codes.0 as f32), g.scalar_f32(codes.1 as f32));
    let q = g.op("Div", &[x, &s], vec![]);
    let q = g.op("Round", &[&q], vec![]);
    let q = g.op("Clip", &[&q, &lo, &hi], vec![]);
    g.op("Mul", &[&q, &s], vec![])
}

impl Weights for Qdq<'_> {
    fn word_embed(&mut self, g: &mut Graph, ids: &str) -> Result<String> {
        // Gather the int8 rows and their scales first, then dequantize: the same numbers as
        // DequantizeLinear(table, scale, axis=0) followed by Gather, but a runtime that will not
        // constant-fold a 4x larger float table (tract keeps folds within the input's size)
        // would otherwise dequantize all 30k rows on every call.
        let t = self.q.word_emb.as_standard_layout();
        let table = g.init_i8(
            "word_emb_q",
            &[t.nrows(), t.ncols()],
            t.as_slice().context("word table layout")?,
        );
        let scale = g.init_f32("word_scale", &[self.q.word_scale.len()], &self.q.word_scale);
        let rows = g.op("Gather", &[&table, ids], vec![("axis", Attr::Int(0))]);
        let rows = g.op(
            "Cast",
            &[&rows],
            vec![("to", Attr::Int(DataType::Float as i64))],
        );
        let s = g.op("Gather", &[&scale, ids], vec![("axis", Attr::Int(0))]);
        let axes = g.ints(&[2]);
        let s = g.op("Unsqueeze", &[&s, &axes], vec![]);
        Ok(g.op("Mul", &[&rows, &s], vec![]))
    }

    fn pos_table(&mut self, g: &mut Graph) -> Result<String> {
        Ok(dq_rows(g, "pos_emb_q", &self.q.pos_emb, &self.q.pos_scale))
    }

    fn emb_ln(&self) -> (&Array1<f32>, &Array1<f32>) {
        (&self.q.emb_ln_g, &self.q.emb_ln_b)
    }

    fn rel_bias(&mut self, g: &mut Graph) -> Result<Option<String>> {
        Ok(self.q.rel_bias.as_ref().map(|t| {
            let t = t.as_standard_layout();
            let dims = [t.nrows(), t.ncols()];
            g.init_f32("rel_bias", &dims, t.as_slice().expect("standard layout"))
        }))
    }
}

impl LayerWeights for Qdq<'_> {
    fn ln(&self, layer: usize, which: u8) -> (&Array1<f32>, &Array1<f32>) {
        ln_of(&self.q.layers[layer], which)
    }

    fn eps(&self) -> f32 {
        self.q.layer_norm_eps
    }

    fn linear(&mut self, g: &mut Graph, layer: usize, lin: Lin, x: &str) -> Result<String> {
        let l = self.q.layers.get(layer).context("layer index")?;
        linear(g, qlinear(l, lin), x)
    }

    fn act(&mut self, g: &mut Graph, layer: usize, site: Site, x: &str) -> Result<String> {
        Ok(act(
            g,
            self.q.layers.get(layer).context("layer index")?,
            site,
            x,
        ))
    }
}

/// LayerNorm `which` (1 = after attention, 2 = after FFN) of a quantized layer.
pub(crate) fn ln_of(l: &QLayer, which: u8) -> (&Array1<f32>, &Array1<f32>) {
    if which == 1 {
        (&l.ln1_g, &l.ln1_b)
    } else {
        (&l.ln2_g, &l.ln2_b)
    }
}

/// `x W^T + b` of a quantized linear: its input smoothed and rounded onto its int8 grid, its
/// weight dequantized per output channel.
pub(crate) fn linear(g: &mut Graph, ql: &QLinear, x: &str) -> Result<String> {
    let x = match &ql.smooth {
        Some(s) => {
            let inv: Vec<f32> = s.iter().map(|v| 1.0 / v).collect();
            let inv = g.init_f32("inv_smooth", &[inv.len()], &inv);
            g.op("Mul", &[x, &inv], vec![])
        }
        None => x.to_string(),
    };
    let xq = if ql.in_range == INT8 {
        qdq_i8(g, &x, ql.in_scale, ql.in_zp)
    } else {
        qdq_wide(g, &x, ql.in_scale, ql.in_range)
    };
    let w = dq_rows(g, "w_q", &ql.w, &ql.w_scale);
    // Weights stay [out, in] as the engine stores them; the runtimes fold this Transpose.
    let wt = g.op("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
    let b = g.init_f32(
        "b",
        &[ql.bias.len()],
        ql.bias.as_slice().context("bias not contiguous")?,
    );
    let y = g.op("MatMul", &[&xq, &wt], vec![]);
    Ok(g.op("Add", &[&y, &b], vec![]))
}

/// The rounding the integer engine does at `site` of layer `l`.
pub(crate) fn act(g: &mut Graph, l: &QLayer, site: Site, x: &str) -> String {
    match site {
        Site::QOut => qdq_i8(g, x, l.q_out_scale, 0),
        Site::KOut => qdq_i8(g, x, l.k_out_scale, 0),
        Site::VOut => qdq_i8(g, x, l.v_out_scale, 0),
        Site::GeluIn if l.wide() => {
            let codes = (i16::MIN as i32, i16::MAX as i32);
            qdq_wide(g, x, l.gelu_in_scale, codes)
        }
        Site::GeluIn => qdq_i8(g, x, l.gelu_in_scale, 0),
        Site::Probs => {
            // The engine's probabilities: relative to the row maximum on a uint8 grid (the
            // maximum is 255), then divided by their sum.
            let attrs = vec![("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(1))];
            let max = g.op("ReduceMax", &[x], attrs);
            let rel = g.op("Div", &[x, &max], vec![]);
            let s = g.scalar_f32(PROBS_SCALE);
            let z = g.scalar_u8(0);
            let q = g.op("QuantizeLinear", &[&rel, &s, &z], vec![]);
            let q = g.op("DequantizeLinear", &[&q, &s, &z], vec![]);
            let axes = g.ints(&[-1]);
            let sum = g.op("ReduceSum", &[&q, &axes], vec![("keepdims", Attr::Int(1))]);
            g.op("Div", &[&q, &sum], vec![])
        }
    }
}
