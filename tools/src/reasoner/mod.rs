//! The reasoner: a two-layer post-LayerNorm transformer over the last ≤ [`WINDOW`] turn
//! embeddings of a conversation (latest turn first) that predicts the embedding of the next turn.
//! Trained by `tools/train/reasoner.py`; this module reads its checkpoint, exports it to ONNX, runs
//! it through tract, and evaluates it against non-reasoning baselines (`pith eval chat`).

pub mod eval;
pub mod mix;
pub mod native;
pub mod onnx;
pub mod predictor;
pub mod quant;
pub mod quantize;

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::{Array1, Array2};
use safetensors::SafeTensors;

/// The default checkpoint, relative to the repository root: the first shipped reasoner.
pub const DEFAULT_DIR: &str = crate::catalog::REASONERS[0].checkpoint;

/// The encoder package a checkpoint's reasoner.json names (`--encoder` of the training script),
/// resolved against `root`; `None` when it names none.
pub fn named_encoder(dir: &Path, root: &Path) -> Result<Option<std::path::PathBuf>> {
    let cfg = dir.join("reasoner.json");
    let text = crate::input::text(&cfg)?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", cfg.display()))?;
    Ok(v["encoder"].as_str().map(|e| root.join(e)))
}

/// One case of a checkpoint's `reference` (reasoner.json, written by the training script): a
/// dev window (latest turn first, unit-length rows) and PyTorch's prediction for it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReferenceCase {
    pub window: Vec<Vec<f64>>,
    pub prediction: Vec<f64>,
}

impl ReferenceCase {
    /// The window as f32 rows (what the float engines read).
    pub fn window_f32(&self) -> Vec<Vec<f32>> {
        self.window
            .iter()
            .map(|r| r.iter().map(|&x| x as f32).collect())
            .collect()
    }

    /// The window as the encoder's int8 vectors: the rows are those vectors made unit-length,
    /// so scaling each row's largest |value| back to 127 recovers them exactly.
    pub fn window_i8(&self) -> Vec<Vec<i8>> {
        self.window
            .iter()
            .map(|v| {
                let m = v.iter().fold(0f64, |m, x| m.max(x.abs()));
                v.iter().map(|x| (x / m * 127.0).round() as i8).collect()
            })
            .collect()
    }
}

/// The reference cases of a checkpoint's reasoner.json `config`.
pub fn reference_cases(config: &serde_json::Value) -> Result<Vec<ReferenceCase>> {
    serde_json::from_value(config["reference"].clone())
        .context("reasoner.json: `reference` is not a list of {window, prediction}")
}

/// Most turns the reasoner reads.
pub const WINDOW: usize = 8;

/// One layer's fp32 weights, PyTorch layout (`[out, in]`).
pub struct Layer {
    pub q: (Array2<f32>, Array1<f32>),
    pub k: (Array2<f32>, Array1<f32>),
    pub v: (Array2<f32>, Array1<f32>),
    pub o: (Array2<f32>, Array1<f32>),
    pub ln1: (Array1<f32>, Array1<f32>),
    pub up: (Array2<f32>, Array1<f32>),
    pub down: (Array2<f32>, Array1<f32>),
    pub ln2: (Array1<f32>, Array1<f32>),
}

/// A loaded reasoner checkpoint (`reasoner.json` + `model.safetensors`).
pub struct Reasoner {
    /// Width of the encoder's embeddings (= the model's hidden size).
    pub dim: usize,
    pub heads: usize,
    pub eps: f32,
    pub ln_in: (Array1<f32>, Array1<f32>),
    /// Position table, `[WINDOW, dim]`; row 0 is the latest turn.
    pub pos: Array2<f32>,
    pub ln_emb: (Array1<f32>, Array1<f32>),
    pub layers: Vec<Layer>,
    pub out: (Array2<f32>, Array1<f32>),
    /// β of the latest-turn residual: the prediction is `out(h_0) + β · e_0 / |e_0|` (0 in
    /// checkpoints trained without it, which have no `"residual"`).
    pub residual: f32,
    /// The trust gate of the correction (`"trust"` in reasoner.json, prototypes in the
    /// safetensors), when the checkpoint has one.
    pub trust: Option<Trust>,
    /// The training run's record, as written by the training script.
    pub config: serde_json::Value,
    /// The calibrated refinement gate (`gate.json`), when the checkpoint has one.
    pub gate: Option<f32>,
}

/// The trust gate: the reasoner's correction of the latest turn is scaled by
/// `clamp((s − low) / (high − low), 0, 1)`, `s` the latest turn's largest cosine to a prototype
/// (distinct training turns), `low`/`high` calibrated on dev by the training script. A latest
/// turn unlike every training turn gets the encoder's plain last-turn direction.
#[derive(Clone, Debug)]
pub struct Trust {
    /// Unit-length prototypes, `[K, dim]`.
    pub prototypes: Array2<f32>,
    pub low: f32,
    pub high: f32,
}

impl Trust {
    /// The trust in `[0, 1]` for a unit-length latest turn.
    pub fn of(&self, latest: &[f32]) -> f32 {
        let l = ndarray::ArrayView1::from(latest);
        let best = self
            .prototypes
            .rows()
            .into_iter()
            .map(|p| p.dot(&l))
            .fold(f32::NEG_INFINITY, f32::max);
        ((best - self.low) / (self.high - self.low)).clamp(0.0, 1.0)
    }
}

/// The prediction's head, after the network's read-out `y`: `trust · y + β · e_0 / |e_0|`.
pub fn head(y: &mut [f32], latest: &[f32], residual: f32, trust: Option<&Trust>) {
    if residual == 0.0 {
        return;
    }
    let n = latest.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let unit: Vec<f32> = latest.iter().map(|x| x / n).collect();
    let t = trust.map_or(1.0, |g| g.of(&unit));
    for (y, u) in y.iter_mut().zip(&unit) {
        *y = t * *y + residual * u;
    }
}

/// Tensors by name: (shape, row-major values).
type TensorMap = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn tensors(bytes: &[u8]) -> Result<TensorMap> {
    let st = SafeTensors::deserialize(bytes).context("parsing model.safetensors")?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            other => bail!("tensor {name}: dtype {other:?}, expected F32"),
        };
        out.insert(name, (view.shape().to_vec(), data));
    }
    Ok(out)
}

struct Tensors {
    map: TensorMap,
    path: String,
}

impl Tensors {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (s, d) = self
            .map
            .remove(name)
            .with_context(|| format!("{}: no tensor {name}", self.path))?;
        if s != shape {
            bail!("{}: {name} has shape {s:?}, expected {shape:?}", self.path);
        }
        if let Some(i) = d.iter().position(|v| !v.is_finite()) {
            bail!(
                "{}: {name} holds a non-finite value ({}) at element {i}",
                self.path,
                d[i]
            );
        }
        Ok(d)
    }

    fn ln(&mut self, p: &str, n: usize) -> Result<(Array1<f32>, Array1<f32>)> {
        Ok((
            Array1::from(self.get(&format!("{p}.weight"), &[n])?),
            Array1::from(self.get(&format!("{p}.bias"), &[n])?),
        ))
    }

    fn lin(&mut self, p: &str, out: usize, inp: usize) -> Result<(Array2<f32>, Array1<f32>)> {
        let w = self.get(&format!("{p}.weight"), &[out, inp])?;
        Ok((
            Array2::from_shape_vec((out, inp), w)?,
            Array1::from(self.get(&format!("{p}.bias"), &[out])?),
        ))
    }
}

/// The checkpoint's calibrated chat settings: `{"refine_below": COSINE, "lexical_weight": W, ...}`.
pub const GATE_FILE: &str = "gate.json";

/// The lexical weight of the checkpoint in `dir` (`lexical_weight` in its gate file: how much
/// the response bank's lexical match adds to a candidate's cosine); an error names the file when
/// it is missing, not JSON, or lacks a weight in [0, 8].
pub fn load_lexical_weight(dir: &Path) -> Result<f32> {
    let path = dir.join(GATE_FILE);
    let v: serde_json::Value = serde_json::from_str(&crate::input::text(&path)?)
        .with_context(|| format!("parsing {}", path.display()))?;
    let w = v["lexical_weight"]
        .as_f64()
        .filter(|w| (0.0..=8.0).contains(w))
        .with_context(|| {
            format!(
                "{}: \"lexical_weight\" must be a number in [0, 8] (the weight of the lexical match)",
                path.display()
            )
        })?;
    Ok(w as f32)
}

/// The gate of the checkpoint in `dir` (`None` without a gate file); an error names the file
/// when it is not JSON or lacks a threshold in [-1, 2].
pub fn load_gate(dir: &Path) -> Result<Option<f32>> {
    let path = dir.join(GATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let path = path.as_path();
    let v: serde_json::Value = serde_json::from_str(&crate::input::text(path)?)
        .with_context(|| format!("parsing {}", path.display()))?;
    let g = v["refine_below"]
        .as_f64()
        .filter(|g| (-1.0..=2.0).contains(g))
        .with_context(|| {
            format!(
                "{}: \"refine_below\" must be a number in [-1, 2] (a cosine margin)",
                path.display()
            )
        })?;
    Ok(Some(g as f32))
}

impl Reasoner {
    /// Loads `dir/reasoner.json` and `dir/model.safetensors`; shapes are checked against the
    /// config.
    pub fn load(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join("reasoner.json");
        let config: serde_json::Value = serde_json::from_str(&crate::input::text(&cfg_path)?)
            .with_context(|| format!("parsing {}", cfg_path.display()))?;
        let get = |k: &str| -> Result<usize> {
            config[k]
                .as_u64()
                .map(|v| v as usize)
                .with_context(|| format!("{}: missing integer {k:?}", cfg_path.display()))
        };
        if config["kind"] != "pith-reasoner" {
            bail!("{}: not a pith reasoner config", cfg_path.display());
        }
        let (dim, layers, heads, ffn) = (get("dim")?, get("layers")?, get("heads")?, get("ffn")?);
        if get("window")? != WINDOW || get("hidden")? != dim || heads == 0 || dim % heads != 0 {
            bail!(
                "{}: unsupported shape (window {WINDOW}, hidden = dim, heads dividing dim)",
                cfg_path.display()
            );
        }
        if layers == 0 || ffn == 0 {
            bail!(
                "{}: layers and ffn must be at least 1 (layers {layers}, ffn {ffn})",
                cfg_path.display()
            );
        }
        // The integer engine's LayerNorm and GELU are those of the encoder: the config must say
        // so, not leave it to a default.
        let eps = match config["layer_norm_eps"].as_f64() {
            Some(e) if e.is_finite() && e > 0.0 && (e as f32) > 0.0 => e as f32,
            _ => bail!(
                "{}: \"layer_norm_eps\" must be a positive number (got {})",
                cfg_path.display(),
                config["layer_norm_eps"]
            ),
        };
        if config["gelu"] != "erf" {
            bail!(
                "{}: \"gelu\" must be \"erf\", the exact GELU the integer engine runs (got {})",
                cfg_path.display(),
                config["gelu"]
            );
        }
        let residual = residual_of(&config, &cfg_path)?;
        let st_path = dir.join("model.safetensors");
        let bytes = crate::input::bytes(&st_path)?;
        let mut t = Tensors {
            map: tensors(&bytes)?,
            path: st_path.display().to_string(),
        };
        let take = &mut t;
        let ln_in = take.ln("ln_in", dim)?;
        let pos = Array2::from_shape_vec((WINDOW, dim), take.get("pos", &[WINDOW, dim])?)?;
        let ln_emb = take.ln("ln_emb", dim)?;
        let mut ls = Vec::with_capacity(layers);
        for l in 0..layers {
            let p = format!("layers.{l}");
            ls.push(Layer {
                q: take.lin(&format!("{p}.q"), dim, dim)?,
                k: take.lin(&format!("{p}.k"), dim, dim)?,
                v: take.lin(&format!("{p}.v"), dim, dim)?,
                o: take.lin(&format!("{p}.o"), dim, dim)?,
                ln1: take.ln(&format!("{p}.ln1"), dim)?,
                up: take.lin(&format!("{p}.up"), ffn, dim)?,
                down: take.lin(&format!("{p}.down"), dim, ffn)?,
                ln2: take.ln(&format!("{p}.ln2"), dim)?,
            });
        }
        let out = take.lin("out", dim, dim)?;
        let trust = match config.get("trust") {
            None => None,
            Some(t) => {
                let k = t["prototypes"].as_u64().unwrap_or(0) as usize;
                let (low, high) = (t["low"].as_f64(), t["high"].as_f64());
                let (Some(low), Some(high)) = (low, high) else {
                    bail!(
                        "{}: \"trust\" needs numbers low and high",
                        cfg_path.display()
                    );
                };
                if k == 0 || !(-1.0..1.0).contains(&low) || !(low < high && high <= 1.0) {
                    bail!(
                        "{}: \"trust\" needs prototypes > 0 and -1 <= low < high <= 1",
                        cfg_path.display()
                    );
                }
                let p = take.get("trust.prototypes", &[k, dim])?;
                Some(Trust {
                    prototypes: Array2::from_shape_vec((k, dim), p)?,
                    low: low as f32,
                    high: high as f32,
                })
            }
        };
        // Weights the config does not account for (a layer beyond "layers", say) mean the config
        // and the checkpoint disagree: refuse rather than run a truncated model.
        if !t.map.is_empty() {
            let mut extra: Vec<&String> = t.map.keys().collect();
            extra.sort();
            bail!(
                "{}: holds tensors reasoner.json does not account for ({} layers): {}",
                t.path,
                layers,
                extra
                    .iter()
                    .take(4)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if trust.is_some() && residual == 0.0 {
            bail!(
                "{}: a trust gate needs the latest-turn residual",
                cfg_path.display()
            );
        }
        let gate = load_gate(dir)?;
        Ok(Reasoner {
            gate,
            dim,
            heads,
            eps,
            ln_in,
            pos,
            ln_emb,
            layers: ls,
            out,
            residual,
            trust,
            config,
        })
    }

    /// FFN width.
    pub fn ffn(&self) -> usize {
        self.layers.first().map_or(0, |l| l.up.1.len())
    }
}

/// The `"residual"` β of a reasoner config (0 when absent); an error names the file when it is
/// not a finite number in [0, 16].
pub fn residual_of(config: &serde_json::Value, path: &Path) -> Result<f32> {
    match config.get("residual") {
        None => Ok(0.0),
        Some(v) => v
            .as_f64()
            .filter(|b| (0.0..=16.0).contains(b))
            .map(|b| b as f32)
            .with_context(|| {
                format!(
                    "{}: \"residual\" must be a number in [0, 16]",
                    path.display()
                )
            }),
    }
}

/// The reasoner's window for predicting turn `t` of `turns`: the ≤ [`WINDOW`] turns before it,
/// latest first.
pub fn window<T>(turns: &[T], t: usize) -> Vec<&T> {
    let t = t.min(turns.len());
    turns[t.saturating_sub(WINDOW)..t].iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gate file that is not JSON or has no usable threshold is an error naming the file; no
    /// file is no gate.
    #[test]
    fn malformed_gate_files_are_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("pith-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(load_gate(&dir).unwrap(), None);
        let file = dir.join(GATE_FILE);
        for bad in [
            "{",
            "{}",
            r#"{"refine_below": "0.01"}"#,
            r#"{"refine_below": 7}"#,
        ] {
            std::fs::write(&file, bad).unwrap();
            let e = format!("{:#}", load_gate(&dir).unwrap_err());
            assert!(e.contains(&file.display().to_string()), "{bad}: {e}");
        }
        std::fs::write(&file, r#"{"refine_below": 0.0134}"#).unwrap();
        assert_eq!(load_gate(&dir).unwrap(), Some(0.0134));
        std::fs::remove_dir_all(dir).ok();
    }
}
