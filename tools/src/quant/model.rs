//! The quantized model in real-valued terms: what the package writer turns into fixed-point and the
//! QDQ ONNX exporter turns into QuantizeLinear/DequantizeLinear pairs. One description, two outputs,
//! so the ONNX and the `.pith` package cannot drift apart.

use ndarray::{Array1, Array2};

/// An int8 linear layer `y = x W^T + b` with symmetric per-output-channel weights and a
/// per-tensor int8 input grid.
#[derive(Clone)]
pub struct QLinear {
    /// Quantized weight, `[out, in]`, with the input smoothing already multiplied into its columns.
    pub w: Array2<i8>,
    /// Per-output-channel weight scale (real weight = w * w_scale[out]).
    pub w_scale: Vec<f32>,
    /// fp32 bias.
    pub bias: Array1<f32>,
    /// Input activation grid: real = (q - in_zp) * in_scale, q in -128..=127.
    pub in_scale: f32,
    /// Input zero point (int8 domain; 0 for symmetric inputs).
    pub in_zp: i32,
    /// Codes of the input grid: `INT8` for every linear but the 16-bit FFN's down projection,
    /// whose input is the 15-bit GELU output.
    pub in_range: (i32, i32),
    /// SmoothQuant divisor per input channel: the activation is divided by it before quantization
    /// (and `w` was multiplied by it). `None` = all ones.
    pub smooth: Option<Array1<f32>>,
}

/// The codes of an int8 grid.
pub const INT8: (i32, i32) = (-128, 127);

/// One encoder layer.
pub struct QLayer {
    pub q: QLinear,
    pub k: QLinear,
    pub v: QLinear,
    /// Attention output projection (input: the int8 attention context).
    pub o: QLinear,
    /// FFN up (input: LayerNorm-1 output, smoothed).
    pub up: QLinear,
    /// FFN down (input: GELU output, asymmetric int8).
    pub down: QLinear,
    /// Output grids of the query, key and value projections (symmetric int8).
    pub q_out_scale: f32,
    pub k_out_scale: f32,
    pub v_out_scale: f32,
    /// GELU input grid (symmetric, int8 or i16): the FFN-up output is requantized to it.
    pub gelu_in_scale: f32,
    /// fp32 LayerNorm parameters (the exporter applies smoothing itself through `QLinear::smooth`).
    pub ln1_g: Array1<f32>,
    pub ln1_b: Array1<f32>,
    pub ln2_g: Array1<f32>,
    pub ln2_b: Array1<f32>,
}

impl QLayer {
    /// The FFN runs at 16 bits: FFN down reads the 15-bit GELU output (`down.in_range`), the GELU
    /// input grid is i16, and the package carries the interpolated 16-bit table.
    pub fn wide(&self) -> bool {
        self.down.in_range != INT8
    }
}

/// The whole quantized encoder.
pub struct QModel {
    /// Token table, int8 per row, and its per-row scales.
    pub word_emb: Array2<i8>,
    pub word_scale: Vec<f32>,
    /// Position table with token-type 0 folded in, int8 per row, and its per-row scales.
    pub pos_emb: Array2<i8>,
    pub pos_scale: Vec<f32>,
    pub emb_ln_g: Array1<f32>,
    pub emb_ln_b: Array1<f32>,
    pub layers: Vec<QLayer>,
    pub layer_norm_eps: f32,
    /// MPNet's relative position bias `[buckets, heads]`, on the attention scores' grid
    /// ([`rel_bias_on_grid`]); `None` for BERT.
    pub rel_bias: Option<Array2<f32>>,
}

/// Softmax table resolution: 2^5 = 32 steps per unit of attention logit (the attention scores'
/// integer grid).
pub const SCORE_STEP_LOG2: u8 = 5;

/// The relative position bias as the integer scores add it: each value rounded to the nearest
/// step of the scores' grid ([`SCORE_STEP_LOG2`]), so the package's integers and the QDQ graph's
/// floats are the same numbers.
pub fn rel_bias_on_grid(bias: &Array2<f32>) -> Array2<f32> {
    let steps = (1u32 << SCORE_STEP_LOG2) as f32;
    bias.mapv(|b| (b * steps).round() / steps)
}
