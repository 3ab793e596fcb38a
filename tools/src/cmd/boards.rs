//! `pith boards`: every board of the board table (boards/src/lib.rs) with its part, core, memory,
//! default model and how it is run: in QEMU (simulated) or built and size-checked only.

use pith_boards::{Board, BOARDS};

/// Arguments (none).
#[derive(clap::Args)]
pub struct Args {}

/// Flash and RAM in KiB as the image sees them: code + package regions, statics + arena regions.
fn memory_kib(b: &Board) -> (u32, u32) {
    let m = b.memory;
    (
        (m.flash.len + m.package.len) / 1024,
        (m.ram.len + m.arena.len) / 1024,
    )
}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    crate::outln!(
        "{:<15} {:<11} {:>10} {:>9}  {:<20} {:<27} part",
        "board",
        "core",
        "flash KiB",
        "RAM KiB",
        "default model",
        "runs"
    );
    for b in BOARDS {
        let (flash, ram) = memory_kib(b);
        let model = b
            .default_package
            .rsplit('/')
            .next()
            .unwrap_or(b.default_package);
        let runs = match (b.run.qemu, b.run.probe_chip) {
            (Some(machine), Some(_)) => format!("simulated ({machine}) + probe"),
            (Some(machine), None) => format!("simulated ({machine})"),
            (None, Some(_)) => "build-only + probe".to_string(),
            (None, None) => "build-only".to_string(),
        };
        crate::outln!(
            "{:<15} {:<11} {:>10} {:>9}  {:<20} {:<27} {}",
            b.name,
            b.core,
            flash,
            ram,
            model,
            runs,
            b.part.name
        );
    }
    Ok(())
}
