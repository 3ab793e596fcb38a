//! A deliberately crude quantizer: per-row max for tables and weights, per-tensor max for
//! activations over a handful of sentences, no smoothing. It lets the QDQ export be tested end to
//! end independently of the calibrated quantizer; it is not meant to ship models.

use std::collections::HashMap;

use anyhow::{Context, Result};
use ndarray::Array2;
use tract_onnx::prelude::*;

use super::bert::{self, Lin, Site};
use super::builder::Graph;
use super::fp32::{folded_positions, linear_of, Fp32, Probe};
use crate::checkpoint::Checkpoint;
use crate::quant::model::{QLayer, QLinear, QModel};

/// Lowercase, split on whitespace and ASCII punctuation, greedy WordPiece. Accents and CJK are
/// ignored: activation ranges only need text that looks roughly like real input.
fn crude_ids(ckpt: &Checkpoint, vocab: &HashMap<&str, u32>, text: &str) -> Vec<i64> {
    let t = &ckpt.tokenizer;
    let mut ids = vec![t.cls_id as i64];
    let lower = text.to_lowercase();
    let mut words: Vec<String> = Vec::new();
    for w in lower.split_whitespace() {
        let mut cur = String::new();
        for c in w.chars() {
            if c.is_ascii_punctuation() {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                words.push(c.to_string());
            } else {
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            words.push(cur);
        }
    }
    for w in &words {
        let chars: Vec<(usize, char)> = w.char_indices().collect();
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let from = chars[start].0;
            let found = (start + 1..=chars.len()).rev().find_map(|end| {
                let to = chars.get(end).map_or(w.len(), |c| c.0);
                let piece = if start == 0 {
                    w[from..to].to_string()
                } else {
                    format!("##{}", &w[from..to])
                };
                vocab.get(piece.as_str()).map(|&id| (end, id))
            });
            match found {
                Some((end, id)) => {
                    pieces.push(id as i64);
                    start = end;
                }
                None => {
                    pieces = vec![t.unk_id as i64];
                    break;
                }
            }
        }
        ids.extend(pieces);
    }
    ids.truncate(t.max_len as usize - 1);
    ids.push(t.sep_id as i64);
    ids
}

/// Symmetric int8 per row: scale = max|row| / 127.
fn quant_rows(m: &Array2<f32>) -> (Array2<i8>, Vec<f32>) {
    let mut q = Array2::<i8>::zeros(m.dim());
    let mut scales = Vec::with_capacity(m.nrows());
    for (r, row) in m.outer_iter().enumerate() {
        let amax = row.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        for (c, &x) in row.iter().enumerate() {
            q[[r, c]] = (x / s).round().clamp(-127.0, 127.0) as i8;
        }
        scales.push(s);
    }
    (q, scales)
}

/// Runs the fp32 graph over `sentences` and returns each probe's (min, max).
fn activation_ranges(
    ckpt: &Checkpoint,
    sentences: &[String],
) -> Result<HashMap<Probe, (f32, f32)>> {
    let mut g = Graph::default();
    let mut w = Fp32::with_probes(ckpt);
    bert::build(&mut g, &ckpt.config, ckpt.pooling, ckpt.normalize, &mut w)?;
    let probes = w.expose_probes(&mut g);
    let proto = g.finish("calibration");
    let plan = tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .context("building the calibration graph in tract")?;
    let vocab: HashMap<&str, u32> = ckpt
        .vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i as u32))
        .collect();
    let mut ranges: HashMap<Probe, (f32, f32)> = HashMap::new();
    for s in sentences {
        let ids = crude_ids(ckpt, &vocab, s);
        let n = ids.len();
        let ids = Tensor::from_shape(&[1, n], &ids)?;
        let mask = Tensor::from_shape(&[1, n], &vec![1i64; n])?;
        let out = plan.run(tvec![ids.into(), mask.into()])?;
        for (p, idx) in &probes {
            let view = out[*idx].to_plain_array_view::<f32>()?;
            let (lo, hi) = view
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let e = ranges.entry(*p).or_insert((f32::MAX, f32::MIN));
            *e = (e.0.min(lo), e.1.max(hi));
        }
    }
    Ok(ranges)
}

/// Quantizes `ckpt` naively, calibrating activation ranges on `sentences`.
pub fn naive_qmodel(ckpt: &Checkpoint, sentences: &[String]) -> Result<QModel> {
    anyhow::ensure!(
        !sentences.is_empty(),
        "naive quantization needs at least one calibration sentence"
    );
    let ranges = activation_ranges(ckpt, sentences)?;
    let range = |p: Probe| {
        ranges
            .get(&p)
            .copied()
            .with_context(|| format!("no range for {p:?}"))
    };
    let sym = |p: Probe| -> Result<f32> {
        let (lo, hi) = range(p)?;
        Ok(lo.abs().max(hi.abs()).max(1e-8) / 127.0)
    };
    let mut layers = Vec::new();
    for (l, layer) in ckpt.layers.iter().enumerate() {
        let lin = |which: Lin| -> Result<QLinear> {
            let (w, b) = linear_of(layer, which);
            let (wq, w_scale) = quant_rows(w);
            let (in_scale, in_zp) = if which == Lin::Down {
                // GELU output is bounded below by about -0.17: an asymmetric grid wastes less range.
                let (lo, hi) = range(Probe::LinIn(l, which))?;
                let (lo, hi) = (lo.min(0.0), hi.max(0.0));
                let s = ((hi - lo) / 255.0).max(1e-8);
                (s, ((-128.0 - lo / s).round() as i32).clamp(-128, 127))
            } else {
                (sym(Probe::LinIn(l, which))?, 0)
            };
            Ok(QLinear {
                w: wq,
                w_scale,
                bias: b.clone(),
                in_scale,
                in_zp,
                in_range: crate::quant::model::INT8,
                smooth: None,
            })
        };
        layers.push(QLayer {
            q: lin(Lin::Q)?,
            k: lin(Lin::K)?,
            v: lin(Lin::V)?,
            o: lin(Lin::O)?,
            up: lin(Lin::Up)?,
            down: lin(Lin::Down)?,
            q_out_scale: sym(Probe::Act(l, Site::QOut))?,
            k_out_scale: sym(Probe::Act(l, Site::KOut))?,
            v_out_scale: sym(Probe::Act(l, Site::VOut))?,
            gelu_in_scale: sym(Probe::Act(l, Site::GeluIn))?,
            ln1_g: layer.ln1_g.clone(),
            ln1_b: layer.ln1_b.clone(),
            ln2_g: layer.ln2_g.clone(),
            ln2_b: layer.ln2_b.clone(),
        });
    }
    let (word_emb, word_scale) = quant_rows(&ckpt.word_emb);
    let (pos_emb, pos_scale) = quant_rows(&folded_positions(ckpt));
    Ok(QModel {
        word_emb,
        word_scale,
        pos_emb,
        pos_scale,
        emb_ln_g: ckpt.emb_ln_g.clone(),
        emb_ln_b: ckpt.emb_ln_b.clone(),
        layers,
        layer_norm_eps: ckpt.config.layer_norm_eps,
        rel_bias: ckpt
            .rel_bias
            .as_ref()
            .map(crate::quant::model::rel_bias_on_grid),
    })
}
