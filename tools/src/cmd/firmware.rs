//! `pith firmware`: builds the firmware for a board of the board table (its target, CPU and
//! default model) and prints the ELF's path; `qemu-system-arm -machine BOARD -kernel ELF` boots it.

use anyhow::{Context, Result};
use pith_boards::Board;

use crate::device::firmware::{self, Link};

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
        let image = crate::device::uf2::from_elf(&elf, crate::device::uf2::RP2350_ARM_S)?;
        crate::output::write_whole(&path, &image)?;
        crate::outln!("{}", path.display());
    }
    Ok(())
}

/// What to link: `PITH_PACKAGE`, `PITH_BANK`, `PITH_REASONER`, `PITH_CHAT_BANK` and
/// `PITH_ARENA_BYTES` when set; otherwise the board's default package and its StackFAQ bank, and its
/// default reasoner with that reasoner's response bank, all built on first use.
pub fn link_from_env(board: &Board) -> Result<Link> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let arena_bytes = match std::env::var("PITH_ARENA_BYTES") {
        Ok(v) if !v.is_empty() => Some(
            v.parse()
                .map_err(|_| anyhow::anyhow!("PITH_ARENA_BYTES={v}: not a byte count"))?,
        ),
        _ => None,
    };
    let (package, bank, chat) = match var("PITH_PACKAGE") {
        Some(p) => (
            p.into(),
            var("PITH_BANK").map(Into::into),
            (
                var("PITH_REASONER").map(Into::into),
                var("PITH_CHAT_BANK").map(Into::into),
            ),
        ),
        None => {
            let package = crate::artifacts::board_package(board)?;
            let bank = crate::artifacts::bank_for(&package)?;
            // The board's default reasoner and its response bank, unless others are named.
            let chat = match (var("PITH_REASONER"), board.default_reasoner) {
                (Some(r), _) => (Some(r.into()), var("PITH_CHAT_BANK").map(Into::into)),
                (None, Some(rel)) => {
                    let r = crate::catalog::reasoner_with_package(rel).with_context(|| {
                        format!(
                            "{}: default_reasoner {rel} is no shipped reasoner",
                            board.name
                        )
                    })?;
                    let train = crate::defaults::repo_root()?.join(crate::catalog::CHITCHAT_TRAIN);
                    if train.is_file() {
                        (
                            Some(crate::artifacts::package(r.package)?),
                            Some(crate::artifacts::chat_bank(r)?),
                        )
                    } else {
                        // The reasoner is calibrated and its bank built from the training split.
                        eprintln!(
                            "pith: {} is missing (scripts/fetch-chitchat.sh writes it): the \
                             image links no reasoner, so `chat` answers ERR 3",
                            train.display()
                        );
                        (None, None)
                    }
                }
                (None, None) => (None, None),
            };
            (package, Some(bank), chat)
        }
    };
    Ok(Link {
        package: Some(package),
        bank,
        arena_bytes,
        reasoner: chat.0,
        chat_bank: chat.1,
        qemu: false,
    })
}
