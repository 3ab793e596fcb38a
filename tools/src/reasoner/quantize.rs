//! Quantizing a reasoner (`pith quantize models/reasoner-s`): the integer reasoner package, calibrated on windows of the
//! *training* conversations only (never dev or test), embedded by the encoder's native int8 runtime
//! — the vectors the device feeds it. The report compares int8 with fp32 predictions on the next
//! training conversations, which calibration did not see.

use anyhow::{anyhow, ensure, Context, Result};

use super::eval::{positions, read_conversations};
use super::predictor::{embed_turns, TurnVectors};
use super::quant::{calibrate, plan, write_package, Fp32, Window};
use super::{native, Reasoner};
use crate::backend::{Embedder, Kind};
use crate::output;
use crate::quant::pipeline::Options;

/// Whether `dir` holds a reasoner checkpoint.
pub fn is_reasoner(dir: &std::path::Path) -> bool {
    dir.join("reasoner.json").is_file()
}

/// Quantizes the reasoner checkpoint `a.checkpoint`, calibrated on turn vectors of the encoder
/// package at `encoder` (`a.encoder` is not read: the caller resolves it).
pub fn run(a: &Options, encoder: &std::path::Path) -> Result<()> {
    crate::quant::pipeline::check(a)?;
    crate::quant::pipeline::ensure_no_ffn16(a, "a reasoner")?;
    // The encoder package is an input too (pipeline::check knows it only when given as --encoder).
    let mut outs = vec![
        (a.output.clone(), "--output"),
        (a.output.with_extension("report.json"), "the report"),
    ];
    outs.extend(a.onnx.iter().map(|o| (o.clone(), "--onnx")));
    for (out, what) in &outs {
        output::refuse_input(out, what, &[encoder])?;
    }
    let root = crate::defaults::repo_root()?;
    let fp = Fp32::new(
        Reasoner::load(&a.checkpoint)
            .with_context(|| format!("loading {}", a.checkpoint.display()))?,
    );
    let enc_path = encoder.to_path_buf();
    let enc_bytes = crate::framed_file::read(&enc_path, &crate::framed_file::PACKAGE)?;
    let enc = Embedder::new(&enc_bytes, Kind::Native, None)?;
    ensure!(
        enc.model.dim() == fp.r.dim,
        "{} embeds in {} dims, the reasoner reads {}",
        enc_path.display(),
        enc.model.dim(),
        fp.r.dim
    );
    let calib = a
        .calib
        .clone()
        .unwrap_or_else(|| root.join(crate::catalog::CHITCHAT_TRAIN));
    ensure!(
        calib.is_file(),
        "{} is missing: the reasoner is calibrated on the chit-chat training split \
         (scripts/fetch-chitchat.sh writes it)",
        calib.display()
    );
    let convs = read_conversations(&calib)?;
    ensure!(
        convs.len() > a.calib_count,
        "{} has only {} conversations",
        calib.display(),
        convs.len()
    );
    let (cal, rest) = convs.split_at(a.calib_count);
    let held = &rest[..a.eval_count.min(rest.len())];
    let cal_f = embed_turns(&enc_bytes, cal)?.f;
    let windows: Vec<Window> = positions(cal).into_iter().map(|p| p.window).collect();
    let stats = calibrate(&fp, &windows, &cal_f);
    let name = a.name.clone().unwrap_or_else(|| "reasoner-s int8".into());
    let q = plan(&fp, &stats, a.alpha)?;
    let encoder_tag = pith_runtime::kb::package_tag(enc.model.package());
    let bytes = write_package(&fp, &q, &name, encoder_tag)?;
    let r = pith_runtime::Reasoner::new(&bytes)
        .map_err(|e| anyhow!("the quantized reasoner does not load: {e}"))?;
    // The QDQ graph first: a package is only written with everything its recipe promises.
    if let Some(onnx) = &a.onnx {
        crate::reasoner::onnx::write(&crate::reasoner::onnx::qdq_model(&fp.r, &q)?, onnx)?;
    }
    output::write_whole(&a.output, &bytes)?;

    // Fidelity on held-out training conversations: cosine of the int8 prediction to the fp32 one.
    let TurnVectors {
        q: held_q,
        f: held_f,
    } = embed_turns(&enc_bytes, held)?;
    let (mut sum, mut worst, mut n) = (0f64, 1f64, 0usize);
    for p in positions(held) {
        let wq: Vec<&[i8]> = p.window.iter().map(|&i| held_q[i].as_slice()).collect();
        let wf: Vec<&[f32]> = p.window.iter().map(|&i| held_f[i].as_slice()).collect();
        let q = native::predict(&r, &wq)?;
        let f = fp.predict(&wf, &mut crate::quant::calibrate::Stats::default());
        let qf: Vec<f32> = q.iter().map(|&x| x as f32).collect();
        let c = crate::fp32::cosine(&qf, f.as_slice().unwrap_or(&[])) as f64;
        sum += c;
        worst = worst.min(c);
        n += 1;
    }
    let mean = sum / n.max(1) as f64;
    crate::outln!(
        "package      {} ({} bytes, {:.1} KiB)",
        a.output.display(),
        bytes.len(),
        bytes.len() as f64 / 1024.0
    );
    crate::outln!(
        "calibration  {} windows of {} conversations of {}",
        windows.len(),
        cal.len(),
        calib.display()
    );
    crate::outln!("arena        {} bytes", r.arena_words(r.window()) * 4);
    crate::outln!(
        "prediction   mean cosine to fp32 {mean:.5}, worst {worst:.5} ({n} windows of the next {} conversations)",
        held.len()
    );
    let report_path = a.output.with_extension("report.json");
    let json = serde_json::json!({
        "package": a.output, "bytes": bytes.len(), "arch": "reasoner", "calib_file": calib,
        "calib_conversations": cal.len(), "calib_windows": windows.len(),
        "encoder": enc_path, "smooth_alpha": a.alpha,
        "arena_bytes": r.arena_words(r.window()) * 4,
        "fidelity": {"held_conversations": held.len(), "windows": n,
                     "mean_cosine": mean, "worst_cosine": worst},
    });
    output::write_json(&report_path, &json)?;
    Ok(())
}
