//! Lowering the real-valued [`Plan`] to fixed point and writing the `.pith` package.

use anyhow::{ensure, Result};
use ndarray::{Array1, Array2};

use super::build::{gelu16_knots, Plan};
use super::model::{QLayer, QLinear};
use crate::checkpoint::Checkpoint;
use pith_runtime::format::layout::{self, LinearSections, GELU_LEN, LAYER_SCALARS, LN_ROWS};
use pith_runtime::format::{Arch, DType, Header, ModelConfig, PackageWriter, SectionKind as K};

pub use super::model::SCORE_STEP_LOG2;
/// Softmax table length: covers logit gaps up to 16, beyond which exp() < 2^-23.
pub const EXP_TABLE_LEN: usize = 16 << SCORE_STEP_LOG2;

/// A positive real multiplier as (m, shift) with m in [2^30, 2^31): real = m * 2^-shift.
pub fn multiplier(r: f64) -> (i32, i32) {
    // NaN, zero, negative and infinite multipliers all map to 0.
    if !(r.is_finite() && r > 0.0) {
        return (0, 0);
    }
    let mut shift = 30 - r.log2().floor() as i32;
    let mut m = (r * 2f64.powi(shift)).round();
    if m >= 2f64.powi(31) {
        m /= 2.0;
        shift -= 1;
    }
    if shift > 62 {
        m = (r * 2f64.powi(62)).round();
        shift = 62;
    }
    if shift < 0 {
        return (i32::MAX, 0);
    }
    (m as i32, shift)
}

pub fn rq_table(rs: impl Iterator<Item = f64>) -> Vec<i32> {
    rs.flat_map(|r| {
        let (m, s) = multiplier(r);
        [m, s]
    })
    .collect()
}

/// LayerNorm heads: `(n_q16 * G + B) >> 32` gives `y / scale`; the matmul head also divides by the
/// consumer's smoothing.
pub fn ln_rows(
    g: &Array1<f32>,
    b: &Array1<f32>,
    res_scale: f32,
    mm: Option<(f32, Option<&Array1<f32>>)>,
) -> Vec<i64> {
    let h = g.len();
    let mut out = vec![0i64; 4 * h];
    let q16 = 65536.0f64;
    let q32 = 4294967296.0f64;
    for j in 0..h {
        out[j] = (g[j] as f64 / res_scale as f64 * q16).round() as i64;
        out[h + j] = (b[j] as f64 / res_scale as f64 * q32).round() as i64;
        if let Some((s, smooth)) = mm {
            let d = s as f64 * smooth.map_or(1.0, |sm| sm[j] as f64);
            out[2 * h + j] = (g[j] as f64 / d * q16).round() as i64;
            out[3 * h + j] = (b[j] as f64 / d * q32).round() as i64;
        }
    }
    out
}

pub fn add_linear(
    w: &mut PackageWriter,
    l: u16,
    kinds: LinearSections,
    q: &QLinear,
    out_scale: Option<f32>,
    extra_bias: Option<Vec<i64>>,
) {
    let (n, k) = q.w.dim();
    let flat: Vec<i8> = q.w.iter().copied().collect();
    w.add_i8(kinds.w, l, n, k, &flat);
    let bias: Vec<i32> = (0..n)
        .map(|j| {
            let b = q.bias[j] as f64 / (q.in_scale as f64 * q.w_scale[j] as f64);
            let b = b.round() as i64 + extra_bias.as_ref().map_or(0, |e| e[j]);
            b.clamp(i32::MIN as i64, i32::MAX as i64) as i32
        })
        .collect();
    w.add_i32(kinds.b, l, 1, n, &bias);
    let out = out_scale.unwrap_or(1.0) as f64;
    w.add_i32(
        kinds.rq,
        l,
        n,
        2,
        &rq_table((0..n).map(|j| q.in_scale as f64 * q.w_scale[j] as f64 / out)),
    );
}

/// A layer's scales beyond its [`QLayer`]: residual units of its two adds, GELU output grid.
#[derive(Clone, Copy)]
pub struct LayerScales {
    pub res_attn: f32,
    pub res_ffn: f32,
    pub gelu_out: (f32, i32),
}

/// Writes one layer's sections; `ln2` are its LayerNorm-2 rows (they depend on what follows).
pub fn add_layer(
    w: &mut PackageWriter,
    l: u16,
    ql: &QLayer,
    sc: LayerScales,
    ln2: &[i64],
    heads: usize,
) {
    let h = ql.ln1_g.len();
    add_linear(w, l, layout::Q, &ql.q, Some(ql.q_out_scale), None);
    add_linear(w, l, layout::K_PROJ, &ql.k, Some(ql.k_out_scale), None);
    add_linear(w, l, layout::V, &ql.v, Some(ql.v_out_scale), None);
    add_linear(w, l, layout::O, &ql.o, Some(sc.res_attn), None);
    add_linear(w, l, layout::UP, &ql.up, Some(ql.gelu_in_scale), None);
    if ql.wide() {
        // The 16-bit FFN's down projection runs on the high plane (units of 128 input codes)
        // with the bias, then on the low plane (the runtime's `low_rq`).
        let hi = QLinear {
            in_scale: ql.down.in_scale * 128.0,
            ..ql.down.clone()
        };
        add_linear(w, l, layout::DOWN, &hi, Some(sc.res_ffn), None);
    } else {
        // FFN down sees (g - zp): fold -zp * sum(w row) into the bias.
        let zp = ql.down.in_zp as i64;
        let corr: Vec<i64> = ql
            .down
            .w
            .rows()
            .into_iter()
            .map(|r| -zp * r.iter().map(|&x| x as i64).sum::<i64>())
            .collect();
        add_linear(w, l, layout::DOWN, &ql.down, Some(sc.res_ffn), Some(corr));
    }
    w.add_i64(
        K::Ln1,
        l,
        LN_ROWS,
        h,
        &ln_rows(
            &ql.ln1_g,
            &ql.ln1_b,
            sc.res_ffn,
            Some((ql.up.in_scale, ql.up.smooth.as_ref())),
        ),
    );
    w.add_i64(K::Ln2, l, LN_ROWS, h, ln2);
    let (gs, gzp) = sc.gelu_out;
    if ql.wide() {
        let knots = gelu16_knots(ql.gelu_in_scale, gs);
        w.add_i32(K::GeluTable16, l, 1, knots.len(), &knots);
    } else {
        let table: Vec<i8> = (-128..=127)
            .map(|x| {
                let y = crate::fp32::gelu(x as f32 * ql.gelu_in_scale) as f64;
                ((y / gs as f64).round() as i64 + gzp as i64).clamp(-128, 127) as i8
            })
            .collect();
        w.add_i8(K::GeluTable, l, 1, GELU_LEN, &table);
    }
    let dh = (h / heads) as f64;
    let score = ql.q_out_scale as f64 * ql.k_out_scale as f64 / dh.sqrt()
        * (1u32 << SCORE_STEP_LOG2) as f64;
    let (sm, ss) = multiplier(score);
    let (cm, cs) = multiplier(ql.v_out_scale as f64 / 255.0 / ql.o.in_scale as f64);
    w.add_i32(
        K::LayerScalars,
        l,
        1,
        LAYER_SCALARS,
        &layout::Scalars {
            score: (sm, ss),
            context: (cm, cs),
            gelu_zero: gzp,
        }
        .to_words(),
    );
}

/// The softmax table every package with attention carries.
pub fn add_exp_table(w: &mut PackageWriter) {
    let exp: Vec<u16> = (0..EXP_TABLE_LEN)
        .map(|d| (65535.0 * (-(d as f64) / (1u32 << SCORE_STEP_LOG2) as f64).exp()).round() as u16)
        .collect();
    w.add_u16(K::ExpTable, 0, 1, EXP_TABLE_LEN, &exp);
}

/// MPNet's relative positions: the bucket of every offset between two of `positions` tokens
/// and the bias (already on the scores' grid) in score steps.
fn add_rel_bias(w: &mut PackageWriter, bias: &Array2<f32>, positions: usize) -> Result<()> {
    let (buckets, heads) = bias.dim();
    ensure!(
        (1..=256).contains(&buckets) && positions > 0,
        "{buckets} relative position buckets for {positions} positions"
    );
    let span = positions as i64 - 1;
    let of: Vec<u8> = (-span..=span)
        .map(|d| crate::checkpoint::relpos::bucket(d, buckets) as u8)
        .collect();
    w.add(K::RelBuckets, 0, DType::U8, 1, of.len(), of);
    let steps = (1u32 << SCORE_STEP_LOG2) as f32;
    let v: Vec<i32> = bias.iter().map(|&b| (b * steps).round() as i32).collect();
    w.add_i32(K::RelBias, 0, buckets, heads, &v);
    Ok(())
}

/// The model name as the header stores it: at most `NAME_MAX` bytes, cut on a character boundary
/// (only the recipes' own names reach here uncut-checked; `--name` longer than that is refused).
pub fn header_name(name: &str) -> heapless::String<{ pith_runtime::format::NAME_MAX }> {
    let mut out = heapless::String::new();
    for ch in name.chars() {
        if out.push(ch).is_err() {
            break;
        }
    }
    out
}

/// Writes the package for a planned quantization of `ck`.
pub fn write_package(ck: &Checkpoint, p: &Plan, name: &str) -> Result<Vec<u8>> {
    let c = &ck.config;
    let (h, heads) = (c.hidden, c.heads);
    ensure!(
        h % heads == 0,
        "hidden {h} is not a multiple of heads {heads}"
    );
    let header = Header {
        name: header_name(name),
        arch: Arch::Bert,
        model: ModelConfig {
            vocab_size: c.vocab_size as u32,
            hidden: h as u32,
            layers: c.layers as u32,
            heads: heads as u32,
            ffn: c.ffn as u32,
            max_positions: c.max_positions as u32,
            pooling: ck.pooling,
            normalize: ck.normalize,
        },
        tokenizer: ck.tokenizer,
        pool_scale: p.pool_scale,
        score_step_log2: SCORE_STEP_LOG2,
    };
    let mut w = PackageWriter::new(header);
    let vocab = pith_runtime::tokenizer::build_vocab_section(&ck.vocab);
    w.add(K::Vocab, 0, DType::U8, 1, vocab.len(), vocab);
    add_exp_table(&mut w);
    if let Some(bias) = &p.q.rel_bias {
        add_rel_bias(&mut w, bias, c.max_positions)?;
    }

    let q = &p.q;
    let (v, _) = q.word_emb.dim();
    w.add_i8(
        K::WordEmb,
        0,
        v,
        h,
        &q.word_emb.iter().copied().collect::<Vec<_>>(),
    );
    w.add_i32(
        K::WordEmbRq,
        0,
        v,
        2,
        &rq_table(
            q.word_scale
                .iter()
                .map(|s| *s as f64 / p.emb_sum_scale as f64),
        ),
    );
    let (np, _) = q.pos_emb.dim();
    w.add_i8(
        K::PosEmb,
        0,
        np,
        h,
        &q.pos_emb.iter().copied().collect::<Vec<_>>(),
    );
    w.add_i32(
        K::PosEmbRq,
        0,
        np,
        2,
        &rq_table(
            q.pos_scale
                .iter()
                .map(|s| *s as f64 / p.emb_sum_scale as f64),
        ),
    );
    let l0 = &q.layers[0];
    // LayerNorm outputs are scaled relative to the residual-stream unit of the *input* sum;
    // the integer LayerNorm normalizes, so only the output scales enter the gains.
    w.add_i64(
        K::EmbLn,
        0,
        LN_ROWS,
        h,
        &ln_rows(
            &q.emb_ln_g,
            &q.emb_ln_b,
            p.res_attn[0],
            Some((l0.q.in_scale, l0.q.smooth.as_ref())),
        ),
    );

    let nl = q.layers.len();
    for (li, ql) in q.layers.iter().enumerate() {
        let ln2 = if li + 1 < nl {
            let next = &q.layers[li + 1];
            ln_rows(
                &ql.ln2_g,
                &ql.ln2_b,
                p.res_attn[li + 1],
                Some((next.q.in_scale, next.q.smooth.as_ref())),
            )
        } else {
            ln_rows(&ql.ln2_g, &ql.ln2_b, p.pool_scale, None)
        };
        let scales = LayerScales {
            res_attn: p.res_attn[li],
            res_ffn: p.res_ffn[li],
            gelu_out: p.gelu_out[li],
        };
        add_layer(&mut w, li as u16, ql, scales, &ln2, heads);
    }
    Ok(w.finish())
}
