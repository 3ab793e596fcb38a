//! fp32 BERT forward in ndarray: the float reference the quantizer calibrates against and measures
//! fidelity against. It can report every intermediate to an [`Observer`].

use ndarray::{s, Array1, Array2, ArrayView1, Axis};

use crate::checkpoint::{Checkpoint, Layer};
use pith_runtime::format::Pooling;

/// Receives intermediates of one forward pass (rows = tokens).
pub trait Observer {
    /// `site` names the tensor, `layer` its layer (embedding-stage sites use 0).
    fn see(&mut self, site: Site, layer: usize, x: &Array2<f32>);
}

/// No observer: the plain forward pass.
impl Observer for () {
    fn see(&mut self, _: Site, _: usize, _: &Array2<f32>) {}
}

/// Observation points, named after the quantized model's grids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    /// Embedding sum before LayerNorm.
    EmbSum,
    /// Output of the embedding LayerNorm (input of layer 0).
    EmbLn,
    Q,
    K,
    V,
    /// Attention context (input of the output projection).
    Ctx,
    /// Residual sum before LayerNorm-1.
    AttnSum,
    /// LayerNorm-1 output (input of FFN up).
    Ln1,
    /// FFN up output before GELU.
    Up,
    /// Residual sum before LayerNorm-2.
    FfnSum,
    /// LayerNorm-2 output (input of the next layer).
    Ln2,
    /// Reasoner: output of the input LayerNorm (its share of the embedding sum).
    InLn,
    /// Reasoner: the read-out's input (row 0 of the last layer's output).
    ReadOut,
    /// Reasoner: the predicted vector (the read-out's output).
    Out,
}

pub fn layernorm(x: &Array2<f32>, g: &Array1<f32>, b: &Array1<f32>, eps: f32) -> Array2<f32> {
    let mut out = x.clone();
    for mut row in out.rows_mut() {
        let n = row.len() as f32;
        let mean = row.sum() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (j, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * g[j] + b[j];
        }
    }
    out
}

/// `x W^T + b` with PyTorch-layout `w` (`[out, in]`).
pub fn linear(x: &Array2<f32>, w: &Array2<f32>, b: &Array1<f32>) -> Array2<f32> {
    x.dot(&w.t()) + b
}

/// Exact (erf) GELU.
pub fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

fn softmax_rows(x: &mut Array2<f32>) {
    for mut row in x.rows_mut() {
        let max = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
}

/// One post-LayerNorm layer; `bias`, when given, is each head's `[query, key]` position bias
/// added to the scaled scores (MPNet's, [`crate::checkpoint::relpos::head_bias`]).
pub fn encoder_layer(
    l: &Layer,
    li: usize,
    x: &Array2<f32>,
    (heads, bias): (usize, Option<&[Array2<f32>]>),
    eps: f32,
    obs: &mut dyn Observer,
) -> Array2<f32> {
    let (t, h) = x.dim();
    let dh = h / heads;
    let q = linear(x, &l.wq, &l.bq);
    let k = linear(x, &l.wk, &l.bk);
    let v = linear(x, &l.wv, &l.bv);
    obs.see(Site::Q, li, &q);
    obs.see(Site::K, li, &k);
    obs.see(Site::V, li, &v);
    let mut ctx = Array2::<f32>::zeros((t, h));
    let scale = 1.0 / (dh as f32).sqrt();
    for hd in 0..heads {
        let qs = q.slice(s![.., hd * dh..(hd + 1) * dh]);
        let ks = k.slice(s![.., hd * dh..(hd + 1) * dh]);
        let vs = v.slice(s![.., hd * dh..(hd + 1) * dh]);
        let mut sc = qs.dot(&ks.t()) * scale;
        if let Some(b) = bias.and_then(|b| b.get(hd)) {
            sc += b;
        }
        softmax_rows(&mut sc);
        ctx.slice_mut(s![.., hd * dh..(hd + 1) * dh])
            .assign(&sc.dot(&vs));
    }
    obs.see(Site::Ctx, li, &ctx);
    let a = linear(&ctx, &l.wo, &l.bo) + x;
    obs.see(Site::AttnSum, li, &a);
    let x1 = layernorm(&a, &l.ln1_g, &l.ln1_b, eps);
    obs.see(Site::Ln1, li, &x1);
    let u = linear(&x1, &l.w1, &l.b1);
    obs.see(Site::Up, li, &u);
    let g = u.mapv(gelu);
    let f = linear(&g, &l.w2, &l.b2) + &x1;
    obs.see(Site::FfnSum, li, &f);
    let x2 = layernorm(&f, &l.ln2_g, &l.ln2_b, eps);
    obs.see(Site::Ln2, li, &x2);
    x2
}

/// Runs the encoder on `ids` (`[CLS] .. [SEP]`, no padding) and returns the pooled (and, if the
/// model says so, normalized) sentence embedding.
pub fn embed(ck: &Checkpoint, ids: &[u32], obs: &mut dyn Observer) -> Array1<f32> {
    let h = ck.config.hidden;
    let mut x = Array2::<f32>::zeros((ids.len(), h));
    for (t, &id) in ids.iter().enumerate() {
        let row = &ck.word_emb.row(id as usize) + &ck.pos_emb.row(t) + ck.type_emb.row(0);
        x.row_mut(t).assign(&row);
    }
    obs.see(Site::EmbSum, 0, &x);
    let mut x = layernorm(&x, &ck.emb_ln_g, &ck.emb_ln_b, ck.config.layer_norm_eps);
    obs.see(Site::EmbLn, 0, &x);
    let bias = ck
        .rel_bias
        .as_ref()
        .map(|t| crate::checkpoint::relpos::head_bias(t, ids.len()));
    let attn = (ck.config.heads, bias.as_deref());
    for (li, l) in ck.layers.iter().enumerate() {
        x = encoder_layer(l, li, &x, attn, ck.config.layer_norm_eps, obs);
    }
    let pooled = match ck.pooling {
        Pooling::Mean => x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(h)),
        Pooling::Cls => x.row(0).to_owned(),
    };
    if ck.normalize {
        normalize(pooled.view())
    } else {
        pooled
    }
}

/// L2-normalizes a vector (zero stays zero).
pub fn normalize(v: ArrayView1<f32>) -> Array1<f32> {
    let n = v.dot(&v).sqrt();
    if n > 0.0 {
        v.mapv(|x| x / n)
    } else {
        v.to_owned()
    }
}

/// Cosine similarity of two float vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}
