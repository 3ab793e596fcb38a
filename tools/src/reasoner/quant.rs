//! `pith quantize` for the reasoner (models/reasoner-s): calibrate on windows of the training
//! conversations' turn vectors (the encoder's int8 vectors, as the device has them), plan the
//! layers with the encoder's quantizer, and write a `.pith` package of kind `Reasoner`.

use anyhow::{ensure, Context, Result};
use ndarray::{Array1, Array2};
use rayon::prelude::*;

use crate::checkpoint;
use crate::fp32::{self, Observer, Site};
use crate::quant::build::{self, plan_layer, quantize_rows, LayerPlan, RESIDUAL_UNITS};
use crate::quant::calibrate::Stats;
use crate::quant::lower::{self, add_layer, add_linear, ln_rows, rq_table, LayerScales};
use crate::quant::model::QLinear;
use crate::reasoner::{Reasoner, WINDOW};
use pith_runtime::format::layout::{self, LN_ROWS};
use pith_runtime::format::{
    Arch, Header, ModelConfig, PackageWriter, Pooling, SectionKind as K, TokenizerConfig,
};

/// A reasoner layer in the encoder's layout, so the encoder's fp32 forward and planner apply.
fn encoder_layer(l: &crate::reasoner::Layer) -> checkpoint::Layer {
    checkpoint::Layer {
        wq: l.q.0.clone(),
        bq: l.q.1.clone(),
        wk: l.k.0.clone(),
        bk: l.k.1.clone(),
        wv: l.v.0.clone(),
        bv: l.v.1.clone(),
        wo: l.o.0.clone(),
        bo: l.o.1.clone(),
        ln1_g: l.ln1.0.clone(),
        ln1_b: l.ln1.1.clone(),
        w1: l.up.0.clone(),
        b1: l.up.1.clone(),
        w2: l.down.0.clone(),
        b2: l.down.1.clone(),
        ln2_g: l.ln2.0.clone(),
        ln2_b: l.ln2.1.clone(),
    }
}

/// The fp32 reasoner with its layers in the encoder's layout.
pub struct Fp32 {
    pub r: Reasoner,
    layers: Vec<checkpoint::Layer>,
}

impl Fp32 {
    pub fn new(r: Reasoner) -> Self {
        let layers = r.layers.iter().map(encoder_layer).collect();
        Fp32 { r, layers }
    }

    /// The fp32 prediction for `window` (unit vectors, latest first), reporting every site.
    pub fn predict(&self, window: &[&[f32]], obs: &mut dyn Observer) -> Array1<f32> {
        let (r, d) = (&self.r, self.r.dim);
        let mut e = Array2::<f32>::zeros((window.len(), d));
        for (t, w) in window.iter().enumerate() {
            e.row_mut(t).assign(&ndarray::ArrayView1::from(*w));
        }
        let x = fp32::layernorm(&e, &r.ln_in.0, &r.ln_in.1, r.eps);
        obs.see(Site::InLn, 0, &x);
        let x = x + r.pos.slice(ndarray::s![..window.len(), ..]);
        obs.see(Site::EmbSum, 0, &x);
        let mut x = fp32::layernorm(&x, &r.ln_emb.0, &r.ln_emb.1, r.eps);
        obs.see(Site::EmbLn, 0, &x);
        for (li, l) in self.layers.iter().enumerate() {
            x = fp32::encoder_layer(l, li, &x, (r.heads, None), r.eps, obs);
        }
        let row0 = x.slice(ndarray::s![0..1, ..]).to_owned();
        obs.see(Site::ReadOut, 0, &row0);
        let mut y = fp32::linear(&row0, &r.out.0, &r.out.1);
        // The trust-scaled correction and the latest-turn residual share the read-out's unit,
        // so calibration covers their sum.
        if let Some(y) = y.as_slice_mut() {
            crate::reasoner::head(y, window[0], r.residual, r.trust.as_ref());
        }
        obs.see(Site::Out, 0, &y);
        y.row(0).to_owned()
    }
}

/// A window: the turn vectors' indices, latest first.
pub type Window = Vec<usize>;

/// Runs every window through the fp32 reasoner, in parallel, keeping per-channel maxima.
pub fn calibrate(f: &Fp32, windows: &[Window], emb: &[Vec<f32>]) -> Stats {
    windows
        .par_iter()
        .fold(Stats::default, |mut st, w| {
            let rows: Vec<&[f32]> = w.iter().map(|&i| emb[i].as_slice()).collect();
            f.predict(&rows, &mut st);
            st
        })
        .reduce(Stats::default, Stats::merge)
}

/// The quantized reasoner in real-valued terms: what the package writer turns into fixed-point
/// and the QDQ ONNX export into QuantizeLinear/DequantizeLinear pairs.
pub struct QReasoner {
    /// Every layer, planned by the encoder's quantizer.
    pub layers: Vec<LayerPlan>,
    /// Position table, int8 per row, and its row scales.
    pub pos: Array2<i8>,
    pub pos_scale: Vec<f32>,
    /// The read-out linear (row 0 of the last layer → the prediction).
    pub out: QLinear,
    /// Scale of the embedding sum (input LayerNorm output + position row).
    emb_sum_scale: f32,
    /// Output unit of the read-out and of the last LayerNorm's residual head.
    out_unit: f32,
    last_unit: f32,
}

/// Plans every layer and the read-out of `f` from the calibration statistics `st`.
pub fn plan(f: &Fp32, st: &Stats, alpha: f32) -> Result<QReasoner> {
    let r = &f.r;
    let (h, heads) = (r.dim, r.heads);
    ensure!(
        !f.layers.is_empty() && h % heads == 0,
        "the reasoner needs layers and heads dividing {h}"
    );
    let mut layers = Vec::new();
    for (li, l) in f.layers.iter().enumerate() {
        let x_site = if li == 0 {
            (Site::EmbLn, 0)
        } else {
            (Site::Ln2, li - 1)
        };
        layers.push(plan_layer(l, li, x_site, st, h, alpha, false));
    }
    let last = f.layers.len() - 1;
    // The read-out sees row 0 only: its input grid comes from row 0's range.
    let ro_max = st.channels(Site::ReadOut, 0, h);
    let ro_smooth = build::smoothing(&ro_max, &[&r.out.0], alpha);
    let out = build::qlinear(&r.out.0, &r.out.1, &ro_max, ro_smooth);
    let (pos, pos_scale) = quantize_rows(&r.pos);
    Ok(QReasoner {
        layers,
        pos,
        pos_scale,
        out,
        // The embedding sum: the input LayerNorm's output plus a position row; cover both.
        emb_sum_scale: st.tensor(Site::EmbSum, 0).max(st.tensor(Site::InLn, 0)) / RESIDUAL_UNITS,
        out_unit: st.tensor(Site::Out, 0) / RESIDUAL_UNITS,
        last_unit: st.tensor(Site::Ln2, last) / RESIDUAL_UNITS,
    })
}

/// Writes the integer reasoner package of `f` quantized as `q`, recording the tag of the encoder
/// package (`kb::package_tag`) whose turn vectors it was calibrated on.
pub fn write_package(f: &Fp32, q: &QReasoner, name: &str, encoder_tag: u32) -> Result<Vec<u8>> {
    let r = &f.r;
    let (h, heads, ffn) = (r.dim, r.heads, r.ffn());
    let header = Header {
        name: lower::header_name(name),
        arch: Arch::Reasoner,
        model: ModelConfig {
            vocab_size: 0,
            hidden: h as u32,
            layers: f.layers.len() as u32,
            heads: heads as u32,
            ffn: ffn as u32,
            max_positions: WINDOW as u32,
            pooling: Pooling::Cls,
            normalize: true,
        },
        tokenizer: TokenizerConfig::NONE,
        pool_scale: 1.0,
        score_step_log2: lower::SCORE_STEP_LOG2,
    };
    let (plans, out, emb_sum_scale) = (&q.layers, &q.out, q.emb_sum_scale);
    let gate = r.gate.context(
        "the checkpoint has no gate.json (the calibrated refinement gate): calibrate it on dev \
         with pith eval chat --json (margin quantiles) and write {\"refine_below\": MARGIN}",
    )?;
    let mut w = PackageWriter::new(header);
    lower::add_exp_table(&mut w);
    w.add_i64(
        K::InLn,
        0,
        LN_ROWS,
        h,
        &ln_rows(&r.ln_in.0, &r.ln_in.1, emb_sum_scale, None),
    );
    w.add_i8(
        K::PosEmb,
        0,
        WINDOW,
        h,
        &q.pos.iter().copied().collect::<Vec<_>>(),
    );
    w.add_i32(
        K::PosEmbRq,
        0,
        WINDOW,
        2,
        &rq_table(q.pos_scale.iter().map(|s| *s as f64 / emb_sum_scale as f64)),
    );
    let l0 = &plans[0].q;
    w.add_i64(
        K::EmbLn,
        0,
        LN_ROWS,
        h,
        &ln_rows(
            &r.ln_emb.0,
            &r.ln_emb.1,
            plans[0].res_attn,
            Some((l0.q.in_scale, l0.q.smooth.as_ref())),
        ),
    );
    for (li, p) in plans.iter().enumerate() {
        let ql = &p.q;
        let ln2 = match plans.get(li + 1) {
            Some(next) => ln_rows(
                &ql.ln2_g,
                &ql.ln2_b,
                next.res_attn,
                Some((next.q.q.in_scale, next.q.q.smooth.as_ref())),
            ),
            None => ln_rows(
                &ql.ln2_g,
                &ql.ln2_b,
                q.last_unit,
                Some((out.in_scale, out.smooth.as_ref())),
            ),
        };
        let sc = LayerScales {
            res_attn: p.res_attn,
            res_ffn: p.res_ffn,
            gelu_out: p.gelu_out,
        };
        add_layer(&mut w, li as u16, ql, sc, &ln2, heads);
    }
    add_linear(&mut w, 0, layout::OUT, out, Some(q.out_unit), None);
    // The gate in bank score units (cosine × 65536), the unit the device compares margins in.
    let gate = (gate as f64 * pith_runtime::kb::SCORE_ONE as f64).round() as i32;
    w.add_i32(K::Gate, 0, 1, 1, &[gate]);
    // The encoder whose vectors it reads: every command and the device pair them by this tag.
    w.add_i32(K::EncoderTag, 0, 1, 1, &[encoder_tag as i32]);
    if r.residual != 0.0 {
        // β in read-out units; a checkpoint without a residual keeps its package bytes.
        let units = (r.residual as f64 / q.out_unit as f64).round();
        ensure!(
            (1.0..=(1u64 << 30) as f64).contains(&units),
            "the residual β {} is {units} read-out units (1..2^30 expected)",
            r.residual
        );
        let score = |c: f32| (c as f64 * pith_runtime::kb::SCORE_ONE as f64).round() as i32;
        let (low, high) = r
            .trust
            .as_ref()
            .map_or((0, 0), |t| (score(t.low), score(t.high)));
        w.add_i32(K::Residual, 0, 1, 3, &[units as i32, low, high]);
        if let Some(t) = &r.trust {
            // Each prototype as the device holds a turn: int8, largest |value| → 127.
            let mut rows = Vec::with_capacity(t.prototypes.len());
            for p in t.prototypes.rows() {
                let m = p.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
                rows.extend(p.iter().map(|x| (x / m * 127.0).round() as i8));
            }
            w.add_i8(K::Prototypes, 0, t.prototypes.nrows(), h, &rows);
        }
    }
    Ok(w.finish())
}
