//! Per board: flash and RAM the firmware uses (as the firmware itself reports them in `info`) and
//! instructions per embedding of a 16-token sentence (`bench` under `-icount shift=0`, where one
//! instruction is one virtual nanosecond). Links `$PITH_PACKAGE` when set; otherwise each board gets
//! its default package from the board table (when built). The implied time assumes one instruction
//! per cycle at the clock of the table's typical part with that core. Usage: `firmware-report [BOARD...]` (default: every board).
//! `PITH_ARENA_BYTES` cuts the arena (a part with less RAM); peak RAM is the statics, the stack's
//! painted high-water mark after the bench and the arena.
//!
//! A second table profiles the same embedding per stage (the console's `bench` reports each
//! stage's instructions and multiply-accumulates): instructions, and per MAC where the stage has
//! MACs, board by board.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use pith_runtime::Stage;
use pith_tests::qemu::{
    board, build_firmware_with_arena, repo_root, Board, Qemu, RamFigures, BOARDS,
};

fn main() -> Result<()> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let boards: Vec<&Board> = if names.is_empty() {
        // QEMU runs the simulated boards; tests/tests/board_images.rs sizes the build-only ones.
        BOARDS.iter().filter(|b| b.simulated()).collect()
    } else {
        names.iter().map(|n| board(n)).collect::<Result<_>>()?
    };
    let fixed = std::env::var_os("PITH_PACKAGE").map(PathBuf::from);
    let arena: Option<u32> = match std::env::var("PITH_ARENA_BYTES") {
        Ok(v) if !v.is_empty() => Some(v.parse().context("PITH_ARENA_BYTES")?),
        _ => None,
    };
    println!(
        "| board | flash used (B) | RAM statics + stack peak + arena (B) | package (B) | max tokens \
         | tokens | instructions/embedding | implied time |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut profiles = Vec::new();
    for b in &boards {
        let package = fixed
            .clone()
            .or_else(|| Some(repo_root().unwrap().join(b.default_package)).filter(|p| p.is_file()));
        let elf = build_firmware_with_arena(b, package.as_deref(), arena)?;
        let mut q = Qemu::boot(b, &elf, true)?;
        q.start_quiet(Duration::from_secs(60))
            .with_context(|| format!("booting {}", b.name))?;
        let info = q.command("info", Duration::from_secs(30))?;
        let num = |key: &str| {
            info.get(key)
                .and_then(|v| v.split(' ').next())
                .unwrap_or("?")
                .to_string()
        };
        let bench = q.command("bench", Duration::from_secs(600))?;
        profiles.push((b.name, stages(&bench)));
        // The stack's high-water mark after an embedding (the deepest path the console has).
        let after = q.command("info", Duration::from_secs(30))?;
        // The same figures the simulator tests check (`RamFigures`).
        let ram = match RamFigures::from_info(&after) {
            Ok(f) => format!(
                "{} + {} + {} = {}",
                f.statics,
                f.stack_peak,
                f.arena,
                f.peak()
            ),
            Err(_) => "?".to_string(),
        };
        let (tokens, instr) = if bench.ok() {
            (
                bench.get("tokens").unwrap_or("?").to_string(),
                bench.get("ns").unwrap_or("?").to_string(),
            )
        } else {
            ("-".to_string(), format!("({})", bench.status))
        };
        let (clock_name, mhz) = (b.part.name, b.part.mhz);
        let implied = instr
            .parse::<f64>()
            .map(|i| {
                format!(
                    "{:.0} ms at {mhz} MHz ({clock_name})",
                    i / (mhz as f64 * 1e3)
                )
            })
            .unwrap_or_else(|_| "-".into());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            b.name,
            num("flash"),
            ram,
            num("package"),
            num("max_tokens"),
            tokens,
            instr,
            implied
        );
    }
    print_profiles(&profiles);
    Ok(())
}

/// Each stage's (instructions, MACs) on one board, indexed by `Stage as usize`.
type Stages = Vec<Option<(u64, u64)>>;

/// Each stage's (instructions, MACs) from a `bench` reply (`NAME INSTRUCTIONS macs MACS` lines);
/// `None` where the reply has no such line.
fn stages(bench: &pith_tools::device::Reply) -> Stages {
    Stage::ALL
        .iter()
        .map(|s| {
            let v = bench.get(s.name())?;
            let (ns, macs) = v.split_once(" macs ")?;
            Some((ns.parse().ok()?, macs.parse().ok()?))
        })
        .collect()
}

/// The per-stage table: a row per stage, a column per board; linear layers summed at the end.
fn print_profiles(profiles: &[(&str, Stages)]) {
    println!();
    println!("Instructions per stage of the same embedding (per MAC in brackets):");
    println!();
    let names: Vec<&str> = profiles.iter().map(|(n, _)| *n).collect();
    println!("| stage | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    let cell = |(ns, macs): (u64, u64)| match macs {
        0 => format!("{ns}"),
        m => format!("{ns} ({:.3})", ns as f64 / m as f64),
    };
    for (i, s) in Stage::ALL.iter().enumerate() {
        let cells: Vec<String> = profiles
            .iter()
            .map(|(_, p)| p[i].map_or("-".into(), cell))
            .collect();
        println!("| {} | {} |", s.name(), cells.join(" | "));
    }
    let linear: Vec<String> = profiles
        .iter()
        .map(|(_, p)| {
            let sum = Stage::ALL
                .iter()
                .filter(|s| s.is_linear())
                .filter_map(|&s| p[s as usize])
                .fold((0, 0), |(a, b), (ns, m)| (a + ns, b + m));
            cell(sum)
        })
        .collect();
    println!("| all linear layers | {} |", linear.join(" | "));
}
