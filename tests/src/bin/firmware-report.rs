//! Per board: flash and RAM the firmware uses (as the firmware itself reports them in `info`) and
//! instructions per embedding of a 16-token sentence (`bench` under `-icount shift=0`, where one
//! instruction is one virtual nanosecond). Links `$PITH_PACKAGE` when set. Usage:
//! `firmware-report [BOARD...]` (default: every board).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use pith_tests::qemu::{board, build_firmware, Qemu, BOARDS};

fn main() -> Result<()> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let boards = if names.is_empty() { BOARDS.to_vec() } else { names.iter().map(|n| board(n)).collect::<Result<_>>()? };
    let package = std::env::var_os("PITH_PACKAGE").map(PathBuf::from);
    println!("{:<11} {:>10} {:>10} {:>11} {:>7} {:>15}", "board", "flash", "ram", "package", "tokens", "instr/embed");
    for b in &boards {
        let elf = build_firmware(b, package.as_deref())?;
        let mut q = Qemu::boot(b, &elf, true)?;
        q.start_quiet(Duration::from_secs(60)).with_context(|| format!("booting {}", b.name))?;
        let info = q.command("info", Duration::from_secs(30))?;
        let num = |key: &str| info.get(key).and_then(|v| v.split(' ').next()).unwrap_or("?").to_string();
        let bench = q.command("bench", Duration::from_secs(600))?;
        let (tokens, instr) = if bench.ok() {
            (bench.get("tokens").unwrap_or("?").to_string(), bench.get("ns").unwrap_or("?").to_string())
        } else {
            ("-".to_string(), format!("({})", bench.status))
        };
        println!(
            "{:<11} {:>10} {:>10} {:>11} {:>7} {:>15}",
            b.name,
            num("flash"),
            num("ram"),
            num("package"),
            tokens,
            instr
        );
    }
    Ok(())
}
