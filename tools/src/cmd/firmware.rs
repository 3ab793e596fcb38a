//! `pith firmware`: builds the firmware for a board of the board table (its target, CPU and
//! default model) and prints the ELF's path; `qemu-system-arm -machine BOARD -kernel ELF` boots it.

use anyhow::Result;
use pith_boards::Board;

use crate::firmware::{self, Link};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Board (boards/src/lib.rs lists them).
    #[arg(long, default_value = pith_boards::DEFAULT.name)]
    board: String,
    /// Also write a UF2 image beside the ELF (`<elf>.uf2`), for boards whose boot ROM takes one
    /// (pico2: hold BOOTSEL, plug in, copy the file to the drive).
    #[arg(long)]
    uf2: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let board = firmware::board(&args.board)?;
    let elf = firmware::build(board, &link_from_env(board)?)?;
    crate::outln!("{}", elf.display());
    if args.uf2 {
        if board.name != "pico2" {
            anyhow::bail!("--uf2: only pico2's boot ROM takes UF2 images");
        }
        let path = elf.with_extension("uf2");
        let image = crate::uf2::from_elf(&elf, crate::uf2::RP2350_ARM_S)?;
        crate::output::write_whole(&path, &image)?;
        crate::outln!("{}", path.display());
    }
    Ok(())
}

/// What to link: `PITH_PACKAGE`, `PITH_BANK` and `PITH_ARENA_BYTES` when set; otherwise the board's
/// default package and its StackFAQ bank, both built on first use.
pub fn link_from_env(board: &Board) -> Result<Link> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let arena_bytes = match std::env::var("PITH_ARENA_BYTES") {
        Ok(v) if !v.is_empty() => Some(
            v.parse()
                .map_err(|_| anyhow::anyhow!("PITH_ARENA_BYTES={v}: not a byte count"))?,
        ),
        _ => None,
    };
    let (package, bank) = match var("PITH_PACKAGE") {
        Some(p) => (p.into(), var("PITH_BANK").map(Into::into)),
        None => {
            let package = crate::artifacts::board_package(board)?;
            let bank = crate::artifacts::bank_for(&package)?;
            (package, Some(bank))
        }
    };
    Ok(Link {
        package: Some(package),
        bank,
        arena_bytes,
        reasoner: var("PITH_REASONER").map(Into::into),
        chat_bank: var("PITH_CHAT_BANK").map(Into::into),
        qemu: false,
    })
}
