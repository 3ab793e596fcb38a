//! A random (seeded) head on a static checkpoint, the way `tools/train/static_student.py` saves
//! a trained one (`head.*` tensors beside `embeddings`, `head` and `head_z_max` in config.json):
//! its vectors mean nothing, but they are deterministic, so device and host must agree on them
//! byte for byte, and `pith quantize` must follow the float model.

use std::path::Path;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use safetensors::tensor::{Dtype, TensorView};

/// Adds a head of `units` ReLU units to the static checkpoint in `dir` (its table is kept as it
/// is), with `z_max` as its ReLU inputs' grid.
pub fn add_random_head(dir: &Path, units: usize, z_max: f32, seed: u64) -> Result<()> {
    let file = dir.join("embeddings.safetensors");
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let table = st.tensor("embeddings")?;
    let dim = table.shape()[1];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut uniform = |n: usize, scale: f32| -> Vec<u8> {
        (0..n)
            .flat_map(|_| (rng.random_range(-1.0f32..1.0) * scale).to_le_bytes())
            .collect()
    };
    // Scales that keep about half the units active and the head's part comparable to the
    // pooled vector (whose largest |value| is 1 when it enters the head).
    let (up, bias, down) = (
        uniform(units * dim, 2.0 / (dim as f32).sqrt()),
        uniform(units, 0.3),
        uniform(dim * units, 1.0 / (units as f32).sqrt()),
    );
    let views = [
        ("embeddings", table),
        (
            "head.up.weight",
            TensorView::new(Dtype::F32, vec![units, dim], &up)?,
        ),
        (
            "head.up.bias",
            TensorView::new(Dtype::F32, vec![units], &bias)?,
        ),
        (
            "head.down.weight",
            TensorView::new(Dtype::F32, vec![dim, units], &down)?,
        ),
    ];
    let out = safetensors::serialize(views, None)?;
    std::fs::write(&file, out)?;
    let config = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config)?)?;
    cfg["head"] = units.into();
    cfg["head_z_max"] = z_max.into();
    std::fs::write(&config, cfg.to_string())?;
    Ok(())
}
