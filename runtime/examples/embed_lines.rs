//! Embeds the first `N` lines of a text file and prints each int8 embedding as hex, one line per
//! sentence, after a first line naming the kernel that ran. The aarch64 half of
//! tests/tests/aarch64_qemu.rs, which runs it under `qemu-aarch64` and compares with x86-64.
//!
//! Usage: `embed_lines PACKAGE SENTENCES N [KERNEL]`, where `KERNEL` is one of this CPU's
//! [`Isa::ALL`] by name (`sdot`, `neon`, `avx2`, ...) or `scalar` (the oracle); the fastest by
//! default.

use std::fmt::Write as _;
use std::process::ExitCode;

use pith_runtime::kernels::packed::{prefer, Isa};
use pith_runtime::Model;

fn run(args: &[String]) -> Result<String, String> {
    let [package, sentences, n, rest @ ..] = args else {
        return Err("usage: embed_lines PACKAGE SENTENCES N [KERNEL]".into());
    };
    let n: usize = n.parse().map_err(|e| format!("N {n:?}: {e}"))?;
    let kernel = match rest.first().map(String::as_str) {
        None => Isa::detect().map_or("scalar".to_string(), |i| format!("{i:?}")),
        Some("scalar") => {
            pith_runtime::kernels::force_scalar(true);
            "scalar".to_string()
        }
        Some(name) => {
            let isa = Isa::ALL
                .iter()
                .copied()
                .find(|i| format!("{i:?}").eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("no kernel {name:?} on this architecture"))?;
            if !prefer(Some(isa)) {
                return Err(format!("this CPU cannot run {isa:?}"));
            }
            format!("{isa:?}")
        }
    };
    let bytes = std::fs::read(package).map_err(|e| format!("{package}: {e}"))?;
    let model = Model::new(&bytes).map_err(|e| format!("{package}: {e}"))?;
    let text = std::fs::read_to_string(sentences).map_err(|e| format!("{sentences}: {e}"))?;
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut emb = vec![0i8; model.dim()];
    let mut out = format!("kernel {kernel}\n");
    for line in text.lines().take(n) {
        model
            .embed(line, &mut arena, &mut emb)
            .map_err(|e| format!("{line:?}: {e}"))?;
        for &b in &emb {
            let _ = write!(out, "{:02x}", b as u8);
        }
        out.push('\n');
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("embed_lines: {e}");
            ExitCode::FAILURE
        }
    }
}
