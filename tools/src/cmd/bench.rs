//! `pith bench`: pith's native int8 side by side with ONNX Runtime (dynamic int8 and fp32) in one
//! run: the same sentences, batch 1; latency on one thread and throughput on every core.
//! ONNX Runtime gets pith's token ids (pre-tokenized); pith's time includes its own tokenizer.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use pith_runtime::{Model, Profile, Stage};

use crate::backend::{Embedder, Kind};
use crate::defaults;
use crate::text::read_lines;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: crate::load::PackageArg,
    /// fp32 ONNX of the same model, for ONNX Runtime and tract (default: the default model's export).
    #[arg(long)]
    pub fp32_onnx: Option<PathBuf>,
    /// QDQ ONNX for tract (default: the default model's export).
    #[arg(long)]
    pub int8_onnx: Option<PathBuf>,
    /// Sentence file (default: the calibration file's SNLI sentences).
    #[arg(long)]
    pub sentences: Option<PathBuf>,
    /// How many sentences (taken from the end of the file, away from the calibration lines).
    #[arg(short, long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Passes over the sentences per backend; the best pass counts (the machine may be shared).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Only pith (no ONNX Runtime, no tract): for packages without an ONNX export.
    #[arg(long)]
    pub native_only: bool,
    /// Also time tract-onnx on the fp32 and QDQ exports (one thread).
    #[arg(long)]
    pub tract: bool,
    /// First, where pith's time goes: per stage (tokenizer, embedding, per layer Q/K/V,
    /// attention, O, LayerNorms, FFN up with GELU, FFN down, pooling), one thread.
    #[arg(long)]
    pub profile: bool,
    /// Also throughput on every core with batching, over the last N lines of the file: pith in
    /// batches of consecutive sentences (one GEMM per layer per batch) against ONNX Runtime at
    /// batch sizes 1, 8, 32 and 128 (padded). 0: not measured.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub throughput: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One backend's figures.
#[derive(serde::Serialize)]
struct Row {
    backend: String,
    ms_per_sentence: f64,
    sentences_per_s_all_threads: Option<f64>,
}

/// Best of `repeat` passes of `pass`, in seconds.
fn best<F: FnMut() -> Result<()>>(repeat: u32, mut pass: F) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let start = Instant::now();
        pass()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// pith on one thread, text in (tokenizer included), in seconds per pass.
fn native_one(model: &Model<'_>, sents: &[&str], repeat: u32) -> Result<f64> {
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut out = vec![0i8; model.dim()];
    let mut pass = || -> Result<()> {
        for s in sents {
            model
                .embed(s, &mut arena, &mut out)
                .map_err(|e| anyhow!("embedding {s:?}: {e}"))?;
        }
        Ok(())
    };
    pass()?; // warm-up: page in the package, fill the caches
    best(repeat, pass)
}

/// pith's time per stage on one thread: the pass with the least total of `repeat` (after a
/// warm-up pass), and the multiply-accumulates of each stage over the same sentences.
fn native_profile(
    model: &Model<'_>,
    sents: &[&str],
    repeat: u32,
) -> Result<([u64; Stage::ALL.len()], [u64; Stage::ALL.len()])> {
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut out = vec![0i8; model.dim()];
    let start = Instant::now();
    let mut best: Option<[u64; Stage::ALL.len()]> = None;
    let mut macs = [0u64; Stage::ALL.len()];
    for pass in 0..=repeat {
        let mut p = Profile::new(|| start.elapsed().as_nanos() as u64);
        for s in sents {
            p.restart();
            let tokens = model
                .embed_observed(s, &mut arena, &mut out, &mut p)
                .map_err(|e| anyhow!("embedding {s:?}: {e}"))?;
            if pass == 0 {
                let m = model.stage_macs(tokens);
                macs.iter_mut().zip(m).for_each(|(a, b)| *a += b);
            }
        }
        // Pass 0 warms the caches and pages the package in.
        if pass > 0 && best.is_none_or(|b| p.total() < b.iter().sum()) {
            best = Some(p.totals);
        }
    }
    Ok((best.unwrap_or_default(), macs))
}

/// Prints (or returns as JSON) the profile: per stage ms per sentence, its share, its MACs per
/// sentence and its MACs per nanosecond.
fn print_profile(
    profile: &([u64; Stage::ALL.len()], [u64; Stage::ALL.len()]),
    n: usize,
    json: bool,
) -> Result<serde_json::Value> {
    let (ns, macs) = profile;
    let total: u64 = ns.iter().sum();
    let per = |x: u64| x as f64 / n as f64;
    let rows: Vec<_> = Stage::ALL
        .iter()
        .map(|&s| {
            let i = s as usize;
            serde_json::json!({
                "stage": s.name(),
                "ms_per_sentence": per(ns[i]) / 1e6,
                "share": ns[i] as f64 / total.max(1) as f64,
                "macs_per_sentence": per(macs[i]),
                "macs_per_ns": if ns[i] == 0 { 0.0 } else { macs[i] as f64 / ns[i] as f64 },
            })
        })
        .collect();
    if !json {
        crate::outln!(
            "where pith's time goes (one thread, {n} sentences, {:.3} ms/sentence):",
            per(total) / 1e6
        );
        crate::outln!(
            "{:<14} {:>12} {:>7} {:>16} {:>10}",
            "stage",
            "ms/sentence",
            "share",
            "MACs/sentence",
            "MACs/ns"
        );
        for r in &rows {
            crate::outln!(
                "{:<14} {:>12.4} {:>6.1}% {:>16.0} {:>10.2}",
                r["stage"].as_str().unwrap_or("?"),
                r["ms_per_sentence"].as_f64().unwrap_or(0.0),
                100.0 * r["share"].as_f64().unwrap_or(0.0),
                r["macs_per_sentence"].as_f64().unwrap_or(0.0),
                r["macs_per_ns"].as_f64().unwrap_or(0.0)
            );
        }
        crate::outln!();
    }
    Ok(serde_json::Value::Array(rows))
}

/// pith on every core: sentences dealt round-robin to one thread per core, each with its own arena
/// (the model, its repacked weights included, is shared).
fn native_all(model: &Model<'_>, sents: &[&str], threads: usize, repeat: u32) -> Result<f64> {
    best(repeat, || {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|w| {
                    let model = model.clone();
                    s.spawn(move || -> Result<()> {
                        let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
                        let mut out = vec![0i8; model.dim()];
                        for s in sents.iter().skip(w).step_by(threads) {
                            model
                                .embed(s, &mut arena, &mut out)
                                .map_err(|e| anyhow!("embedding {s:?}: {e}"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|h| h.join().map_err(|_| anyhow!("bench thread panicked"))?)
        })
    })
}

/// What tools/bench/ort_bench.py prints for the same token ids (`extra`: its further flags).
fn ort_json(
    model: &Model<'_>,
    sents: &[&str],
    fp32: &std::path::Path,
    repeat: u32,
    extra: &[&str],
) -> Result<serde_json::Value> {
    let ids = crate::batch::tokenize(model, sents)?;
    let dir = tempfile::tempdir().context("creating a temporary folder for the token ids")?;
    let ids_path = dir.path().join("ids.json");
    std::fs::write(&ids_path, serde_json::to_vec(&ids)?)
        .with_context(|| format!("writing {}", ids_path.display()))?;
    let script = defaults::repo_root()?.join("tools/bench/ort_bench.py");
    let cache = fp32.with_extension("ort-dynamic-int8.onnx");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--fp32")
        .arg(fp32)
        .arg("--ids")
        .arg(&ids_path)
        .arg("--int8-cache")
        .arg(&cache)
        .arg("--repeat")
        .arg(repeat.to_string())
        .args(extra)
        .output()
        .with_context(|| format!("running python3 {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}); it needs onnxruntime and onnx (scripts/setup.sh installs them):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the JSON printed by {}", script.display()))
}

/// ONNX Runtime's rows, from tools/bench/ort_bench.py on the same token ids.
fn ort_rows(
    model: &Model<'_>,
    sents: &[&str],
    fp32: &std::path::Path,
    repeat: u32,
) -> Result<Vec<Row>> {
    let v = ort_json(model, sents, fp32, repeat, &[])?;
    let version = v["version"].as_str().unwrap_or("?");
    ["ort_int8", "ort_fp32"]
        .iter()
        .map(|name| {
            let r = &v[name];
            let ms = r["ms_per_sentence"].as_f64();
            let sps = r["sentences_per_s_all_threads"].as_f64();
            match (ms, sps) {
                (Some(ms), Some(sps)) => Ok(Row {
                    backend: format!("{name} ({version})"),
                    ms_per_sentence: ms,
                    sentences_per_s_all_threads: Some(sps),
                }),
                _ => bail!("tools/bench/ort_bench.py: no figures for {name} in its output"),
            }
        })
        .collect()
}

/// ONNX Runtime's batch sizes in the throughput comparison.
const ORT_BATCHES: [usize; 4] = [1, 8, 32, 128];

/// Throughput on every core with batching: pith's batches (crate::batch, text in) against ONNX
/// Runtime at each of [`ORT_BATCHES`] (pre-tokenized, padded); printed, or returned as JSON.
fn throughput(
    model: &Model<'_>,
    sents: &[&str],
    fp32: &std::path::Path,
    repeat: u32,
    json: bool,
) -> Result<serde_json::Value> {
    let n = sents.len() as f64;
    let pass = || crate::batch::embed(model, sents).map(drop);
    pass()?; // warm-up
    let pith = n / best(repeat, pass)?;
    let sizes: Vec<String> = ORT_BATCHES.iter().map(usize::to_string).collect();
    let v = ort_json(
        model,
        sents,
        fp32,
        repeat,
        &["--batch-sizes", &sizes.join(",")],
    )?;
    let mut rows = vec![serde_json::json!({"backend": "pith native int8",
        "batch": format!("{} tokens", crate::batch::BATCH_TOKENS), "sentences_per_s": pith})];
    for name in ["ort_int8", "ort_fp32"] {
        for size in &sizes {
            let sps = v[name][size].as_f64().ok_or_else(|| {
                anyhow!("tools/bench/ort_bench.py: no throughput for {name} at batch {size}")
            })?;
            rows.push(serde_json::json!({"backend": name, "batch": size, "sentences_per_s": sps}));
        }
    }
    let best_int8 = rows
        .iter()
        .filter(|r| r["backend"] == "ort_int8")
        .filter_map(|r| r["sentences_per_s"].as_f64())
        .fold(0.0, f64::max);
    if !json {
        crate::outln!(
            "throughput on every core, {} sentences, batched (best of {repeat} passes):",
            sents.len()
        );
        crate::outln!(
            "{:<28} {:>12} {:>12} {:>12}",
            "backend",
            "batch",
            "sent/s",
            "pith / this"
        );
        for r in &rows {
            let sps = r["sentences_per_s"].as_f64().unwrap_or(0.0);
            crate::outln!(
                "{:<28} {:>12} {:>12.0} {:>12.2}",
                r["backend"].as_str().unwrap_or("?"),
                r["batch"].as_str().unwrap_or("?"),
                sps,
                pith / sps
            );
        }
        crate::outln!(
            "pith / ONNX Runtime int8 at its best batch size: {:.2}",
            pith / best_int8
        );
        crate::outln!();
    }
    Ok(serde_json::json!({"sentences": sents.len(), "rows": rows,
        "pith_over_best_ort_int8": pith / best_int8}))
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    let file = a.sentences.map_or_else(defaults::calib_file, Ok)?;
    let lines = read_lines(&file)?;
    let sents: Vec<&str> = lines
        .iter()
        .rev()
        .take(a.count as usize)
        .map(String::as_str)
        .collect();
    if sents.is_empty() {
        bail!("{}: no sentences", file.display());
    }
    let bytes = a.model.read()?;
    let model = Model::new(&bytes).map_err(|e| anyhow!("loading package: {e}"))?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let n = sents.len() as f64;

    let profile = match a.profile {
        true => Some(print_profile(
            &native_profile(&model, &sents, a.repeat)?,
            sents.len(),
            a.json,
        )?),
        false => None,
    };
    let batched = match (a.throughput, a.native_only) {
        (0, _) => None,
        (_, true) => bail!("--throughput compares with ONNX Runtime: drop --native-only"),
        (count, false) => {
            let fp32 = match &a.fp32_onnx {
                Some(p) => p.clone(),
                None => crate::artifacts::default_artifacts()?.fp32_onnx,
            };
            let many: Vec<&str> = lines
                .iter()
                .rev()
                .take(count as usize)
                .map(String::as_str)
                .collect();
            Some(throughput(&model, &many, &fp32, a.repeat, a.json)?)
        }
    };
    let one = native_one(&model, &sents, a.repeat)?;
    let all = native_all(&model, &sents, threads, a.repeat)?;
    let mut rows = vec![Row {
        backend: "pith native int8".into(),
        ms_per_sentence: one * 1000.0 / n,
        sentences_per_s_all_threads: Some(n / all),
    }];
    if !a.native_only {
        let fp32 = match &a.fp32_onnx {
            Some(p) => p.clone(),
            None => crate::artifacts::default_artifacts()?.fp32_onnx,
        };
        rows.extend(ort_rows(&model, &sents, &fp32, a.repeat)?);
        if a.tract {
            for (kind, onnx) in [
                (Kind::TractFp32, Some(fp32.clone())),
                (
                    Kind::TractInt8,
                    Some(match &a.int8_onnx {
                        Some(p) => p.clone(),
                        None => crate::artifacts::default_artifacts()?.int8_onnx,
                    }),
                ),
            ] {
                let mut e = Embedder::new(&bytes, kind, onnx)?;
                let secs = best(a.repeat, || {
                    sents.iter().try_for_each(|s| e.embed(s).map(drop))
                })?;
                rows.push(Row {
                    backend: format!("{kind:?}"),
                    ms_per_sentence: secs * 1000.0 / n,
                    sentences_per_s_all_threads: None,
                });
            }
        }
    }

    let pith_ms = rows[0].ms_per_sentence;
    let pith_sps = rows[0].sentences_per_s_all_threads.unwrap_or(0.0);
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "backend": r.backend,
                    "ms_per_sentence": r.ms_per_sentence,
                    "pith_speedup": r.ms_per_sentence / pith_ms,
                    "sentences_per_s_all_threads": r.sentences_per_s_all_threads,
                    "pith_throughput_ratio": r.sentences_per_s_all_threads.map(|s| pith_sps / s),
                })
            })
            .collect();
        crate::outln!(
            "{}",
            serde_json::json!({"sentences": sents.len(), "file": file, "threads": threads,
                "repeat": a.repeat, "results": v, "profile": profile, "throughput": batched})
        );
        return Ok(());
    }
    crate::outln!(
        "{} sentences from {} (batch 1, best of {} passes); all threads = {threads}",
        sents.len(),
        file.display(),
        a.repeat
    );
    crate::outln!(
        "{:<28} {:>12} {:>14} {:>16} {:>14}",
        "backend",
        "ms/sentence",
        "pith speedup",
        "sent/s (all)",
        "pith / this"
    );
    for r in &rows {
        let (sps, ratio) = match r.sentences_per_s_all_threads {
            Some(s) => (format!("{s:.0}"), format!("{:.2}", pith_sps / s)),
            None => ("-".into(), "-".into()),
        };
        crate::outln!(
            "{:<28} {:>12.3} {:>14.2} {:>16} {:>14}",
            r.backend,
            r.ms_per_sentence,
            r.ms_per_sentence / pith_ms,
            sps,
            ratio
        );
    }
    Ok(())
}
