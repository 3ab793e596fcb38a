//! The integer reasoner of the runtime on the host (the device's arithmetic, the same bytes).

use anyhow::{anyhow, Result};

/// The int8 prediction for `window` (int8 turn vectors, latest first).
pub fn predict(r: &pith_runtime::Reasoner<'_>, window: &[&[i8]]) -> Result<Vec<i8>> {
    let mut arena = vec![0i32; r.arena_words(window.len())];
    let mut out = vec![0i8; r.dim()];
    r.predict(window, &mut arena, &mut out)
        .map_err(|e| anyhow!("reasoner: {e}"))?;
    Ok(out)
}
