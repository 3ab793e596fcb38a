//! The BERT encoder + pooling graph, written once and parameterized by where the weights come from
//! (fp32 checkpoint or quantized model), so the fp32 and QDQ exports share every non-weight node.

use anyhow::{bail, Result};
use ndarray::Array1;
use pith_runtime::format::Pooling;
use tract_onnx::pb::tensor_proto::DataType;

use super::builder::{Attr, Dim, Graph};
use crate::checkpoint::relpos::bucket;
use crate::checkpoint::BertConfig;

/// Name of the token-id input.
pub const INPUT_IDS: &str = "input_ids";
/// Name of the attention-mask input.
pub const ATTENTION_MASK: &str = "attention_mask";
/// Name of the pooled (and normalized) output.
pub const OUTPUT: &str = "sentence_embedding";

/// Large enough that exp() of a masked score underflows to exactly zero in f32, small enough to
/// survive an fp16 conversion of the graph.
const MASK_NEG: f32 = -10000.0;

/// The six linear layers of an encoder layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lin {
    Q,
    K,
    V,
    O,
    Up,
    Down,
}

impl Lin {
    /// The Hugging Face module path of this linear inside `encoder.layer.N.`.
    pub fn hf_module(self) -> &'static str {
        match self {
            Lin::Q => "attention.self.query",
            Lin::K => "attention.self.key",
            Lin::V => "attention.self.value",
            Lin::O => "attention.output.dense",
            Lin::Up => "intermediate.dense",
            Lin::Down => "output.dense",
        }
    }
}

/// Hugging Face name prefix of encoder layer `layer` (initializers are named after the
/// checkpoint's tensors so an exported graph can be read back as a checkpoint).
pub fn layer_prefix(layer: usize) -> String {
    format!("encoder.layer.{layer}.")
}

/// Hugging Face name of the embedding LayerNorm module.
pub const EMB_LN: &str = "embeddings.LayerNorm";

/// Hugging Face module name of LayerNorm `which` (1 = after attention, 2 = after FFN) of `layer`.
pub fn ln_module(layer: usize, which: u8) -> String {
    let p = layer_prefix(layer);
    if which == 1 {
        format!("{p}attention.output.LayerNorm")
    } else {
        format!("{p}output.LayerNorm")
    }
}

/// Activations that the quantized graph requantizes (besides linear-layer inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    QOut,
    KOut,
    VOut,
    Probs,
    GeluIn,
}

/// Where one transformer layer's parameters come from and what happens around each linear
/// layer: the encoder's graph and the reasoner's share the layer through it.
pub trait LayerWeights {
    /// LayerNorm `which` (1 = after attention, 2 = after FFN) of `layer`.
    fn ln(&self, layer: usize, which: u8) -> (&Array1<f32>, &Array1<f32>);
    /// Module name its gamma and beta are named after.
    fn ln_module(&self, layer: usize, which: u8) -> String {
        ln_module(layer, which)
    }
    /// LayerNorm epsilon.
    fn eps(&self) -> f32;
    /// `x W^T + b` for linear `lin` of `layer`, including whatever happens to its input.
    fn linear(&mut self, g: &mut Graph, layer: usize, lin: Lin, x: &str) -> Result<String>;
    /// Hook on an intermediate activation; identity unless the flavor requantizes it.
    fn act(&mut self, _g: &mut Graph, _layer: usize, _site: Site, x: &str) -> Result<String> {
        Ok(x.to_string())
    }
}

/// Where the encoder's parameters come from: its layers' and the embeddings'.
pub trait Weights: LayerWeights {
    /// Token vectors `[B, S, hidden]`, float, for the int64 ids `[B, S]`.
    fn word_embed(&mut self, g: &mut Graph, ids: &str) -> Result<String>;
    /// Position table `[positions, hidden]`, float, token type 0 already added.
    fn pos_table(&mut self, g: &mut Graph) -> Result<String>;
    /// Embedding LayerNorm gamma and beta.
    fn emb_ln(&self) -> (&Array1<f32>, &Array1<f32>);
    /// MPNet's relative position bias table `[buckets, heads]`, float; `None` for BERT.
    fn rel_bias(&mut self, _g: &mut Graph) -> Result<Option<String>> {
        Ok(None)
    }
}

/// The constants every layer uses, created once per graph.
pub(crate) struct LayerConsts {
    heads: usize,
    dh: usize,
    inv_sqrt_dh: String,
    merge_shape: String,
    one: String,
    half: String,
    inv_sqrt2: String,
}

impl LayerConsts {
    /// For `heads` heads over a hidden width `h`.
    pub(crate) fn new(g: &mut Graph, h: usize, heads: usize) -> Self {
        let dh = h / heads.max(1);
        LayerConsts {
            heads,
            dh,
            inv_sqrt_dh: g.scalar_f32(1.0 / (dh as f32).sqrt()),
            merge_shape: g.ints(&[0, 0, h as i64]),
            one: g.scalar_f32(1.0),
            half: g.scalar_f32(0.5),
            inv_sqrt2: g.scalar_f32(std::f32::consts::FRAC_1_SQRT_2),
        }
    }
}

/// One post-LayerNorm BERT layer over `x` `[B, S, H]`: attention (with `pos_bias`
/// `[heads, S, S]` and `add_mask` `[B, 1, 1, S]` added to the scores when given), LayerNorm,
/// exact-GELU FFN, LayerNorm.
pub(crate) fn layer(
    g: &mut Graph,
    w: &mut dyn LayerWeights,
    l: usize,
    x: &str,
    k: &LayerConsts,
    (pos_bias, add_mask): (Option<&str>, Option<&str>),
) -> Result<String> {
    let (heads, dh) = (k.heads, k.dh);
    let q = w.linear(g, l, Lin::Q, x)?;
    let q = w.act(g, l, Site::QOut, &q)?;
    let kk = w.linear(g, l, Lin::K, x)?;
    let kk = w.act(g, l, Site::KOut, &kk)?;
    let v = w.linear(g, l, Lin::V, x)?;
    let v = w.act(g, l, Site::VOut, &v)?;
    let qh = split_heads(g, &q, heads, dh, false);
    let kt = split_heads(g, &kk, heads, dh, true);
    let vh = split_heads(g, &v, heads, dh, false);
    let scores = g.op("MatMul", &[&qh, &kt], vec![]);
    let mut scores = g.op("Mul", &[&scores, &k.inv_sqrt_dh], vec![]);
    if let Some(b) = pos_bias {
        scores = g.op("Add", &[&scores, b], vec![]);
    }
    if let Some(m) = add_mask {
        scores = g.op("Add", &[&scores, m], vec![]);
    }
    let probs = g.op("Softmax", &[&scores], vec![("axis", Attr::Int(-1))]);
    let probs = w.act(g, l, Site::Probs, &probs)?;
    let ctx = g.op("MatMul", &[&probs, &vh], vec![]);
    let ctx = g.op(
        "Transpose",
        &[&ctx],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let ctx = g.op("Reshape", &[&ctx, &k.merge_shape], vec![]);
    let o = w.linear(g, l, Lin::O, &ctx)?;
    let r1 = g.op("Add", &[&o, x], vec![]);
    let eps = w.eps();
    let (g1, b1) = w.ln(l, 1);
    let x1 = layer_norm(g, &w.ln_module(l, 1), &r1, g1, b1, eps);

    let u = w.linear(g, l, Lin::Up, &x1)?;
    let u = w.act(g, l, Site::GeluIn, &u)?;
    // Exact GELU, 0.5 x (1 + erf(x / sqrt 2)): opset 17 has no Gelu operator.
    let us = g.op("Mul", &[&u, &k.inv_sqrt2], vec![]);
    let erf = g.op("Erf", &[&us], vec![]);
    let erf1 = g.op("Add", &[&erf, &k.one], vec![]);
    let uh = g.op("Mul", &[&u, &k.half], vec![]);
    let gelu = g.op("Mul", &[&uh, &erf1], vec![]);
    let d = w.linear(g, l, Lin::Down, &gelu)?;
    let r2 = g.op("Add", &[&d, &x1], vec![]);
    let (g2, b2) = w.ln(l, 2);
    Ok(layer_norm(g, &w.ln_module(l, 2), &r2, g2, b2, eps))
}

/// LayerNormalization over the last axis, its gamma and beta named `{module}.weight` / `.bias`
/// (the reasoner's graph uses it too).
pub(crate) fn layer_norm(
    g: &mut Graph,
    module: &str,
    x: &str,
    gamma: &Array1<f32>,
    beta: &Array1<f32>,
    eps: f32,
) -> String {
    let n = gamma.len();
    // Row vectors built by ndarray are contiguous; an empty slice would fail the graph's shape check.
    let gm = g.init_f32_named(
        &format!("{module}.weight"),
        &[n],
        gamma.as_slice().unwrap_or(&[]),
    );
    let bt = g.init_f32_named(
        &format!("{module}.bias"),
        &[n],
        beta.as_slice().unwrap_or(&[]),
    );
    g.op(
        "LayerNormalization",
        &[x, &gm, &bt],
        vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))],
    )
}

/// Splits `[B, S, H]` into heads: `[B, heads, S, dh]`, or `[B, heads, dh, S]` when `keys_t`.
pub(crate) fn split_heads(g: &mut Graph, x: &str, heads: usize, dh: usize, keys_t: bool) -> String {
    // 0 copies the batch and sequence dims, so the graph stays shape-polymorphic.
    let shape = g.ints(&[0, 0, heads as i64, dh as i64]);
    let r = g.op("Reshape", &[x, &shape], vec![]);
    let perm = if keys_t {
        vec![0, 2, 3, 1]
    } else {
        vec![0, 2, 1, 3]
    };
    g.op("Transpose", &[&r], vec![("perm", Attr::Ints(perm))])
}

/// MPNet's position bias `[heads, S, S]` for the sequence length `seq_len` (`[1]`): the bucket
/// of every offset among the table's positions is a constant, cut to `S × S` and looked up in
/// `table` (`[buckets, heads]`).
fn relative_bias(g: &mut Graph, cfg: &BertConfig, table: &str, seq_len: &str) -> String {
    let n = cfg.max_positions;
    let idx: Vec<i64> = (0..n * n)
        .map(|i| bucket((i % n) as i64 - (i / n) as i64, cfg.rel_buckets) as i64)
        .collect();
    let idx = g.init_i64("rel_bucket", &[n, n], &idx);
    let ends = g.op("Concat", &[seq_len, seq_len], vec![("axis", Attr::Int(0))]);
    let (starts, axes) = (g.ints(&[0, 0]), g.ints(&[0, 1]));
    let idx = g.op("Slice", &[&idx, &starts, &ends, &axes], vec![]);
    let vals = g.op("Gather", &[table, &idx], vec![("axis", Attr::Int(0))]);
    g.op(
        "Transpose",
        &[&vals],
        vec![("perm", Attr::Ints(vec![2, 0, 1]))],
    )
}

/// Builds the whole graph: inputs, embeddings, `cfg.layers` encoder layers, pooling, normalization.
pub fn build(
    g: &mut Graph,
    cfg: &BertConfig,
    pooling: Pooling,
    normalize: bool,
    w: &mut dyn Weights,
) -> Result<()> {
    if cfg.heads == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
        bail!(
            "hidden size {} is not a multiple of the {} attention heads",
            cfg.hidden,
            cfg.heads
        );
    }
    let (h, heads) = (cfg.hidden, cfg.heads);
    let dims = [Dim::Named("batch"), Dim::Named("sequence")];
    let ids = g.input(INPUT_IDS, DataType::Int64, &dims);
    let mask = g.input(ATTENTION_MASK, DataType::Int64, &dims);

    let word = w.word_embed(g, &ids)?;
    // Positions 0..S: slice the table by the runtime sequence length instead of a Range op.
    let shape = g.op("Shape", &[&ids], vec![]);
    let one = g.ints(&[1]);
    let seq_len = g.op("Gather", &[&shape, &one], vec![("axis", Attr::Int(0))]);
    let pos_table = w.pos_table(g)?;
    let zero = g.ints(&[0]);
    let pos = g.op("Slice", &[&pos_table, &zero, &seq_len, &zero], vec![]);
    let emb = g.op("Add", &[&word, &pos], vec![]);
    let eps = w.eps();
    let (eg, eb) = w.emb_ln();
    let mut x = layer_norm(g, EMB_LN, &emb, eg, eb, eps);

    let maskf = g.op(
        "Cast",
        &[&mask],
        vec![("to", Attr::Int(DataType::Float as i64))],
    );
    let c1 = g.scalar_f32(1.0);
    // (mask - 1) * -MASK_NEG: 0 on real tokens, MASK_NEG on padding.
    let big = g.scalar_f32(-MASK_NEG);
    let m1 = g.op("Sub", &[&maskf, &c1], vec![]);
    let add_mask = g.op("Mul", &[&m1, &big], vec![]);
    let axes12 = g.ints(&[1, 2]);
    // [B, 1, 1, S]: broadcast over heads and query positions.
    let add_mask = g.op("Unsqueeze", &[&add_mask, &axes12], vec![]);
    let pos_bias = w
        .rel_bias(g)?
        .map(|table| relative_bias(g, cfg, &table, &seq_len));
    let k = LayerConsts::new(g, h, heads);
    for l in 0..cfg.layers {
        x = layer(g, w, l, &x, &k, (pos_bias.as_deref(), Some(&add_mask)))?;
    }

    let pooled = match pooling {
        Pooling::Mean => {
            let axes2 = g.ints(&[2]);
            let m3 = g.op("Unsqueeze", &[&maskf, &axes2], vec![]);
            let masked = g.op("Mul", &[&x, &m3], vec![]);
            let axes1 = g.ints(&[1]);
            let sum = g.op(
                "ReduceSum",
                &[&masked, &axes1],
                vec![("keepdims", Attr::Int(0))],
            );
            let count = g.op(
                "ReduceSum",
                &[&m3, &axes1],
                vec![("keepdims", Attr::Int(0))],
            );
            // sentence-transformers clamps the token count the same way (all-padding rows).
            let tiny = g.scalar_f32(1e-9);
            let count = g.op("Max", &[&count, &tiny], vec![]);
            g.op("Div", &[&sum, &count], vec![])
        }
        Pooling::Cls => {
            let first = g.scalar_i64(0);
            g.op("Gather", &[&x, &first], vec![("axis", Attr::Int(1))])
        }
    };
    let out_dims = [Dim::Named("batch"), Dim::Fixed(h as i64)];
    if normalize {
        let sq = g.op("Mul", &[&pooled, &pooled], vec![]);
        let axes1 = g.ints(&[1]);
        let ss = g.op(
            "ReduceSum",
            &[&sq, &axes1],
            vec![("keepdims", Attr::Int(1))],
        );
        let norm = g.op("Sqrt", &[&ss], vec![]);
        // torch.nn.functional.normalize's epsilon.
        let eps_n = g.scalar_f32(1e-12);
        let norm = g.op("Max", &[&norm, &eps_n], vec![]);
        g.op_to(OUTPUT, "Div", &[&pooled, &norm], vec![]);
    } else {
        g.op_to(OUTPUT, "Identity", &[&pooled], vec![]);
    }
    g.output(OUTPUT, DataType::Float, Some(&out_dims));
    Ok(())
}
