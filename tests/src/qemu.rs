//! QEMU simulator harness for the tests: the firmware build and the console client are the tools'
//! (`pith_tools::device::firmware`, `pith_tools::device`); this adds the tests' choice of what to link.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
pub use pith_boards::{Board, BOARDS};
pub use pith_tools::defaults::repo_root;
pub use pith_tools::device::firmware::board;
use pith_tools::device::firmware::{build, Link};
pub use pith_tools::device::{decode_response, Qemu, Reply};

/// The model package tests use: `$PITH_PACKAGE` or the default package; a clear error if absent.
pub fn package_path() -> Result<PathBuf> {
    let path = std::env::var_os("PITH_PACKAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().unwrap().join(pith_tools::catalog::PACKAGE));
    if !path.is_file() {
        bail!(
            "model package {} is missing: build it with `cargo run --release --bin pith -- artifacts` \
             (or point PITH_PACKAGE at one)",
            path.display()
        );
    }
    Ok(path)
}

/// Builds the firmware for `board`, linking `package` (none: no model) and the StackFAQ bank built
/// for it (`<package>.pithkb`) when there is one, and returns the ELF path.
pub fn build_firmware(board: &Board, package: Option<&Path>) -> Result<PathBuf> {
    build_firmware_with_arena(board, package, None)
}

/// [`build_firmware`] with the arena cut to `arena_bytes` (`PITH_ARENA_BYTES`), to model a part
/// with less RAM than the simulated board.
pub fn build_firmware_with_arena(
    board: &Board,
    package: Option<&Path>,
    arena_bytes: Option<u32>,
) -> Result<PathBuf> {
    let bank = package
        .map(|p| p.with_extension("pithkb"))
        .filter(|b| b.is_file());
    build(
        board,
        &Link {
            package: package.map(Path::to_path_buf),
            bank,
            arena_bytes,
            qemu: true,
            ..Link::default()
        },
    )
}

/// The RAM figures a device reports in `info`, as the size report and the tests read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamFigures {
    /// Bytes of statics (`ram X of Y bytes`: X).
    pub statics: u32,
    /// Bytes of RAM that statics and the stack share (Y).
    pub ram_size: u32,
    /// The stack's painted high-water mark (`stack N bytes peak`).
    pub stack_peak: u32,
    /// Bytes of the inference arena (its own region).
    pub arena: u32,
}

impl RamFigures {
    /// Reads the figures from an `info` reply.
    pub fn from_info(info: &Reply) -> Result<RamFigures> {
        let num = |key: &str, word: usize| -> Result<u32> {
            info.get(key)
                .and_then(|v| v.split(' ').nth(word)?.parse().ok())
                .with_context(|| format!("`{key}` in {info:?}"))
        };
        Ok(RamFigures {
            statics: num("ram", 0)?,
            ram_size: num("ram", 2)?,
            stack_peak: num("stack", 0)?,
            arena: num("arena", 0)?,
        })
    }

    /// Bytes the stack may grow to: the RAM the statics leave.
    pub fn stack_size(&self) -> u32 {
        self.ram_size.saturating_sub(self.statics)
    }

    /// Peak RAM: statics, the stack's high-water mark and the arena.
    pub fn peak(&self) -> u32 {
        self.statics + self.stack_peak + self.arena
    }
}
