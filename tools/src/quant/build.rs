//! From fp32 weights and calibration statistics to the real-valued quantized model ([`Plan`]):
//! SmoothQuant for the LayerNorm-fed linears, symmetric per-channel int8 weights, per-tensor int8
//! activation grids, an asymmetric grid for the GELU output, and int32 residual scales.

use ndarray::{Array1, Array2};

use super::calibrate::Stats;
use super::model::{QLayer, QLinear, QModel, INT8};
use crate::checkpoint::{Checkpoint, Layer};
use crate::fp32::{gelu, Site};
use pith_runtime::fixed::{GELU16_KNOTS, GELU16_MAX, GELU16_MIN};

/// Settings of the quantizer.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// SmoothQuant migration strength (0 = none).
    pub smooth_alpha: f32,
    /// The layers whose FFN runs at 16 bits (bit `l` = layer `l`).
    pub ffn16: u64,
}

/// SmoothQuant strength of every shipped package: 0.7 measured best on all-MiniLM-L6-v2
/// (models/README.md).
pub const SMOOTH_ALPHA: f32 = 0.7;

impl Default for Options {
    fn default() -> Self {
        Options {
            smooth_alpha: SMOOTH_ALPHA,
            ffn16: 0,
        }
    }
}

/// Units of the int32 residual stream per calibrated maximum: 2^20 leaves 2^11 of headroom.
pub const RESIDUAL_UNITS: f32 = (1u32 << 20) as f32;

/// Everything the package writer needs beyond [`QModel`].
pub struct Plan {
    pub q: QModel,
    /// Scale of the embedding sum (input of the embedding LayerNorm).
    pub emb_sum_scale: f32,
    /// Residual scale of each layer's attention add (its input `x` and the projection).
    pub res_attn: Vec<f32>,
    /// Residual scale of each layer's FFN add.
    pub res_ffn: Vec<f32>,
    /// Scale of the final LayerNorm output that is pooled.
    pub pool_scale: f32,
    /// GELU output grid: (scale, zero point) per layer (same as `down.in_scale/in_zp`).
    pub gelu_out: Vec<(f32, i32)>,
}

/// Symmetric per-row int8 quantization of `w` (`[out, in]`): (values, scales).
pub fn quantize_rows(w: &Array2<f32>) -> (Array2<i8>, Vec<f32>) {
    let scales: Vec<f32> = w
        .rows()
        .into_iter()
        .map(|r| {
            let m = r.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            if m > 0.0 {
                m / 127.0
            } else {
                1.0
            }
        })
        .collect();
    let mut q = Array2::<i8>::zeros(w.dim());
    for (i, (row, s)) in w.rows().into_iter().zip(&scales).enumerate() {
        for (j, v) in row.iter().enumerate() {
            q[[i, j]] = (v / s).round().clamp(-127.0, 127.0) as i8;
        }
    }
    (q, scales)
}

/// SmoothQuant divisors for an activation with per-channel maxima `act` feeding weights `ws`.
pub fn smoothing(act: &[f32], ws: &[&Array2<f32>], alpha: f32) -> Option<Array1<f32>> {
    if alpha <= 0.0 {
        return None;
    }
    let n = act.len();
    let mut wmax = vec![0.0f32; n];
    for w in ws {
        for (col, wm) in wmax.iter_mut().enumerate() {
            let m = w.column(col).iter().fold(0.0f32, |a, v| a.max(v.abs()));
            *wm = wm.max(m);
        }
    }
    Some(Array1::from_iter(act.iter().zip(&wmax).map(|(&a, &w)| {
        let s = a.max(1e-5).powf(alpha) / w.max(1e-5).powf(1.0 - alpha);
        s.clamp(1e-3, 1e3)
    })))
}

/// Builds a linear layer whose input (per-channel maxima `act_max`) is divided by `smooth`.
pub fn qlinear(
    w: &Array2<f32>,
    b: &Array1<f32>,
    act_max: &[f32],
    smooth: Option<Array1<f32>>,
) -> QLinear {
    let mut w = w.clone();
    let mut in_max = 0.0f32;
    for (j, a) in act_max.iter().enumerate() {
        let s = smooth.as_ref().map_or(1.0, |s| s[j]);
        in_max = in_max.max(a / s);
        if let Some(sm) = &smooth {
            w.column_mut(j).mapv_inplace(|v| v * sm[j]);
        }
    }
    let (wq, w_scale) = quantize_rows(&w);
    QLinear {
        w: wq,
        w_scale,
        bias: b.clone(),
        in_scale: in_max.max(1e-6) / 127.0,
        in_zp: 0,
        in_range: INT8,
        smooth,
    }
}

/// The GELU output grid for GELU inputs on the int8 grid of `in_scale`: asymmetric int8 covering
/// exactly the values the table can produce.
pub fn gelu_grid(in_scale: f32) -> (f32, i32) {
    let vals: Vec<f32> = (-128..=127).map(|q| gelu(q as f32 * in_scale)).collect();
    let lo = vals.iter().cloned().fold(0.0f32, f32::min);
    let hi = vals.iter().cloned().fold(0.0f32, f32::max);
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zp = (-128.0 - lo / scale).round() as i32;
    (scale, zp.clamp(-128, 127))
}

/// The 16-bit FFN's grids for GELU inputs up to `in_max`: (input scale on i16, output scale on
/// the 15-bit output range, symmetric).
pub fn gelu16_grid(in_max: f32) -> (f32, f32) {
    let in_scale = in_max.max(1e-6) / i16::MAX as f32;
    let ends = [i16::MIN as f32, i16::MAX as f32].map(|q| gelu(q * in_scale).abs());
    let out_max = ends[0].max(ends[1]).max(0.2);
    (in_scale, out_max / GELU16_MAX as f32)
}

/// The knots of the 16-bit GELU table (`GeluTable16`): GELU at every 256th i16 input code,
/// `-32768, -32512, ..., 32768`, on the output grid.
pub fn gelu16_knots(in_scale: f32, out_scale: f32) -> Vec<i32> {
    (0..GELU16_KNOTS as i64)
        .map(|k| {
            let x = (k * 256 - 32768) as f64 * in_scale as f64;
            let y = gelu(x as f32) as f64 / out_scale as f64;
            (y.round() as i64).clamp(GELU16_MIN as i64, GELU16_MAX as i64) as i32
        })
        .collect()
}

/// One layer's quantization: the layer, its residual scales and its GELU output grid.
pub struct LayerPlan {
    pub q: QLayer,
    pub res_attn: f32,
    pub res_ffn: f32,
    pub gelu_out: (f32, i32),
}

/// Quantizes encoder layer `li` (input observed at `x_site`) with the calibration statistics;
/// shared by the encoder and the reasoner, whose layers are the same.
pub fn plan_layer(
    l: &Layer,
    li: usize,
    x_site: (Site, usize),
    st: &Stats,
    h: usize,
    alpha: f32,
    wide: bool,
) -> LayerPlan {
    let x_max = st.channels(x_site.0, x_site.1, h);
    let qkv_smooth = smoothing(&x_max, &[&l.wq, &l.wk, &l.wv], alpha);
    let q = qlinear(&l.wq, &l.bq, &x_max, qkv_smooth.clone());
    let k = qlinear(&l.wk, &l.bk, &x_max, qkv_smooth.clone());
    let v = qlinear(&l.wv, &l.bv, &x_max, qkv_smooth);
    let ctx_max = st.channels(Site::Ctx, li, h);
    let o = qlinear(&l.wo, &l.bo, &ctx_max, None);
    let ln1_max = st.channels(Site::Ln1, li, h);
    let up_smooth = smoothing(&ln1_max, &[&l.w1], alpha);
    let up = qlinear(&l.w1, &l.b1, &ln1_max, up_smooth);
    let (gelu_in_scale, (g_scale, g_zp), g_range) = if wide {
        let (i, o) = gelu16_grid(st.tensor(Site::Up, li));
        (i, (o, 0), (GELU16_MIN, GELU16_MAX))
    } else {
        let i = st.tensor(Site::Up, li) / 127.0;
        (i, gelu_grid(i), INT8)
    };
    let (w2q, w2s) = quantize_rows(&l.w2);
    let down = QLinear {
        w: w2q,
        w_scale: w2s,
        bias: l.b2.clone(),
        in_scale: g_scale,
        in_zp: g_zp,
        in_range: g_range,
        smooth: None,
    };
    // The residual add sees x, the projection and their sum: cover all three.
    let ra = st
        .tensor(Site::AttnSum, li)
        .max(st.tensor(x_site.0, x_site.1));
    let rf = st.tensor(Site::FfnSum, li).max(st.tensor(Site::Ln1, li));
    LayerPlan {
        q: QLayer {
            q,
            k,
            v,
            o,
            up,
            down,
            q_out_scale: st.tensor(Site::Q, li) / 127.0,
            k_out_scale: st.tensor(Site::K, li) / 127.0,
            v_out_scale: st.tensor(Site::V, li) / 127.0,
            gelu_in_scale,
            ln1_g: l.ln1_g.clone(),
            ln1_b: l.ln1_b.clone(),
            ln2_g: l.ln2_g.clone(),
            ln2_b: l.ln2_b.clone(),
        },
        res_attn: ra / RESIDUAL_UNITS,
        res_ffn: rf / RESIDUAL_UNITS,
        gelu_out: (g_scale, g_zp),
    }
}

/// Quantizes the checkpoint with the calibration statistics.
pub fn plan(ck: &Checkpoint, st: &Stats, opt: Options) -> Plan {
    let h = ck.config.hidden;
    let alpha = opt.smooth_alpha;

    let (word_emb, word_scale) = quantize_rows(&ck.word_emb);
    let pos_full = &ck.pos_emb + &ck.type_emb.row(0);
    let (pos_emb, pos_scale) = quantize_rows(&pos_full);
    let max_abs = |a: &Array2<f32>| a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let emb_sum_scale = (max_abs(&ck.word_emb) + max_abs(&pos_full)) / RESIDUAL_UNITS;

    let mut layers = Vec::new();
    let (mut res_attn, mut res_ffn, mut gelu_out) = (Vec::new(), Vec::new(), Vec::new());
    for (li, l) in ck.layers.iter().enumerate() {
        let x_site = if li == 0 {
            (Site::EmbLn, 0)
        } else {
            (Site::Ln2, li - 1)
        };
        let wide = li < 64 && opt.ffn16 >> li & 1 == 1;
        let lp = plan_layer(l, li, x_site, st, h, alpha, wide);
        res_attn.push(lp.res_attn);
        res_ffn.push(lp.res_ffn);
        gelu_out.push(lp.gelu_out);
        layers.push(lp.q);
    }
    let last = ck.layers.len().saturating_sub(1);
    let pool_scale = st.tensor(Site::Ln2, last) / RESIDUAL_UNITS;
    Plan {
        q: QModel {
            word_emb,
            word_scale,
            pos_emb,
            pos_scale,
            emb_ln_g: ck.emb_ln_g.clone(),
            emb_ln_b: ck.emb_ln_b.clone(),
            layers,
            layer_norm_eps: ck.config.layer_norm_eps,
            rel_bias: ck.rel_bias.as_ref().map(super::model::rel_bias_on_grid),
        },
        emb_sum_scale,
        res_attn,
        res_ffn,
        pool_scale,
        gelu_out,
    }
}
