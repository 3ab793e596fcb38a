//! Fidelity report: the integer runtime against the fp32 reference on held-out sentences.

use ndarray::Array2;
use rayon::prelude::*;

use crate::checkpoint::Checkpoint;
use crate::fp32::{self, cosine, Observer, Site};
use pith_runtime::Model;

/// What the report measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fidelity {
    pub sentences: usize,
    pub mean_cosine: f64,
    pub worst_cosine: f64,
    /// Per layer: mean cosine between the runtime's residual stream (dequantized) and fp32, over tokens.
    pub layer_cosine: Vec<f64>,
}

struct Keep(Vec<Array2<f32>>);
impl Observer for Keep {
    fn see(&mut self, site: Site, _layer: usize, x: &Array2<f32>) {
        if site == Site::Ln2 {
            self.0.push(x.clone());
        }
    }
}

/// Embeds `sentences` (token ids) with both and compares. `layer_scales[l]` is the real value of one
/// unit of the residual stream after layer `l`.
pub fn measure(
    ck: &Checkpoint,
    model: &Model<'_>,
    sentences: &[Vec<u32>],
    layer_scales: &[f32],
) -> Fidelity {
    let dim = model.dim();
    let nl = ck.layers.len();
    let rows: Vec<(f64, Vec<f64>)> = sentences
        .par_iter()
        .map(|ids| {
            let mut keep = Keep(Vec::new());
            let reference = fp32::embed(ck, ids, &mut keep);
            let mut arena = vec![0i32; model.arena_words(ids.len())];
            let mut out = vec![0i8; dim];
            let mut layer_cos = vec![0.0f64; nl];
            let res = model.embed_ids_observed(ids, &mut arena[ids.len()..], &mut out, |l, xr| {
                let want = &keep.0[l];
                let mut acc = 0.0;
                for (t, row) in want.rows().into_iter().enumerate() {
                    let got: Vec<f32> = xr[t * dim..(t + 1) * dim]
                        .iter()
                        .map(|&v| v as f32 * layer_scales[l])
                        .collect();
                    acc += cosine(&got, row.as_slice().unwrap_or(&[])) as f64;
                }
                layer_cos[l] = acc / want.nrows().max(1) as f64;
            });
            let c = match res {
                Ok(()) => {
                    let mut f = vec![0f32; dim];
                    Model::dequantize(&out, &mut f);
                    cosine(&f, reference.as_slice().unwrap_or(&[])) as f64
                }
                Err(_) => 0.0,
            };
            (c, layer_cos)
        })
        .collect();
    let n = rows.len().max(1) as f64;
    let mean = rows.iter().map(|r| r.0).sum::<f64>() / n;
    let worst = rows.iter().map(|r| r.0).fold(1.0, f64::min);
    let layer_cosine = (0..nl)
        .map(|l| rows.iter().map(|r| r.1[l]).sum::<f64>() / n)
        .collect();
    Fidelity {
        sentences: rows.len(),
        mean_cosine: mean,
        worst_cosine: worst,
        layer_cosine,
    }
}
