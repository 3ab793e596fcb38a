//! Building the firmware (firmware/, its own cargo workspace) for a board of the board table, with
//! the table's target and CPU. `pith console`, `pith firmware`, the QEMU tests and the size report
//! all build through here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use pith_boards::Board;

use crate::defaults::repo_root;

/// What to link into the image.
#[derive(Debug, Clone, Default)]
pub struct Link {
    /// The `.pith` package (`PITH_PACKAGE`); none: the model commands answer ERR 4.
    pub package: Option<PathBuf>,
    /// The knowledge bank built for that package (`PITH_BANK`).
    pub bank: Option<PathBuf>,
    /// The integer reasoner package (`PITH_REASONER`) for `chat`; needs `chat_bank` too.
    pub reasoner: Option<PathBuf>,
    /// The response bank `chat` answers from (`PITH_CHAT_BANK`), built with the package.
    pub chat_bank: Option<PathBuf>,
    /// Arena cut to this many bytes (`PITH_ARENA_BYTES`), to model a part with less RAM.
    pub arena_bytes: Option<u32>,
    /// Build a real board's image for its QEMU machine (feature `qemu`: no PLL, defmt over
    /// semihosting) instead of the part (RTT, panic-probe). Reference boards always run in QEMU.
    pub qemu: bool,
}

/// The board called `name`, or an error listing the boards.
pub fn board(name: &str) -> Result<&'static Board> {
    pith_boards::find(name).with_context(|| {
        format!(
            "unknown board {name} (boards: {})",
            pith_boards::names().collect::<Vec<_>>().join(", ")
        )
    })
}

/// Builds the firmware for `board` linking `link`, and returns the ELF path.
///
/// One cargo target directory per CPU serves every image built for it (the dependencies compile
/// once; another package or arena only rebuilds the firmware crate), and each image is copied to
/// a path of its own (`firmware/target/elf/BOARD-FLAVOUR`) before the directory's lock is
/// released, so parallel builds (tests) never relink an ELF that another one is about to boot.
pub fn build(board: &Board, link: &Link) -> Result<PathBuf> {
    let firmware = repo_root()?.join("firmware");
    let mut flavour = match &link.package {
        Some(p) => format!(
            "pkg-{}",
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        None => "nopkg".to_string(),
    };
    if let Some(a) = link.arena_bytes {
        flavour += &format!("-arena{a}");
    }
    if link.reasoner.is_some() {
        flavour += "-chat";
    }
    let mut features = board.name.to_string();
    if link.qemu && board.real_part() {
        if !board.simulated() {
            bail!(
                "{} has no QEMU machine: it can only be built for the part",
                board.name
            );
        }
        features += ",qemu";
        flavour += "-qemu";
    }
    let cpu = board.target_cpu.unwrap_or("generic");
    let target_dir = firmware.join("target").join(format!("harness-{cpu}"));
    let elf_dir = firmware.join("target").join("elf");
    std::fs::create_dir_all(&elf_dir).with_context(|| format!("creating {}", elf_dir.display()))?;
    let image = elf_dir.join(format!("{}-{flavour}", board.name));
    // Held until the image is copied: another build in this directory would relink the ELF.
    let lock_path = firmware.join("target").join(format!("harness-{cpu}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let mut cmd = cargo(board, "build", &features)?;
    cmd.env("CARGO_TARGET_DIR", &target_dir);
    set_or_remove(&mut cmd, "PITH_PACKAGE", link.package.as_deref());
    set_or_remove(&mut cmd, "PITH_BANK", link.bank.as_deref());
    set_or_remove(&mut cmd, "PITH_REASONER", link.reasoner.as_deref());
    set_or_remove(&mut cmd, "PITH_CHAT_BANK", link.chat_bank.as_deref());
    match link.arena_bytes {
        Some(a) => cmd.env("PITH_ARENA_BYTES", a.to_string()),
        None => cmd.env_remove("PITH_ARENA_BYTES"),
    };
    run(&mut cmd, &format!("firmware build for {}", board.name))?;
    let elf = target_dir
        .join(board.target)
        .join("release")
        .join(board.name);
    if !elf.is_file() {
        bail!(
            "firmware build for {} produced no {}",
            board.name,
            elf.display()
        );
    }
    // Copied whole, then renamed: a reader of `image` (a test booting it) sees the old image or
    // the new one.
    let bytes = crate::input::bytes(&elf)?;
    crate::output::write_whole(&image, &bytes)?;
    drop(lock);
    Ok(image)
}

/// `cargo SUBCOMMAND` in firmware/ for `board`'s binary with `features`, its target and exactly
/// its CPU.
fn cargo(board: &Board, subcommand: &str, features: &str) -> Result<Command> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(repo_root()?.join("firmware"))
        .args([
            subcommand,
            "--release",
            "--no-default-features",
            "--features",
        ])
        .arg(features)
        .args(["--target", board.target, "--bin", board.name])
        // A host build's flags (an outer cargo test) must not leak into the thumb build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    // Replaces .cargo/config.toml's per-target rustflags, so every board gets exactly its own CPU.
    cmd.env(
        format!(
            "CARGO_TARGET_{}_RUSTFLAGS",
            board.target.to_uppercase().replace(['-', '.'], "_")
        ),
        board
            .target_cpu
            .map(|cpu| format!("-C target-cpu={cpu}"))
            .unwrap_or_default(),
    );
    Ok(cmd)
}

/// The boards whose firmware clippy checks: every board built on a HAL (each wiring file), and
/// each reference board whose target and CPU no HAL board shares (each kernel set: Helium,
/// plain Thumb). The table decides, so a new board is linted without touching a script.
pub fn lint_boards() -> Vec<&'static Board> {
    let hal = |b: &Board| b.run.hal.is_some();
    let mut out: Vec<&'static Board> = pith_boards::BOARDS.iter().filter(|b| hal(b)).collect();
    for b in pith_boards::BOARDS.iter().filter(|b| !hal(b)) {
        if !out
            .iter()
            .any(|o| (o.target, o.target_cpu) == (b.target, b.target_cpu))
        {
            out.push(b);
        }
    }
    out
}

/// Runs clippy with `-D warnings` on `board`'s firmware; the error holds clippy's output.
pub fn lint(board: &Board) -> Result<()> {
    let mut cmd = cargo(board, "clippy", board.name)?;
    cmd.args(["--", "-D", "warnings"]);
    run(
        &mut cmd,
        &format!("clippy on the firmware for {}", board.name),
    )
}

/// Runs cargo; its error output is the error when it fails.
fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running cargo: {what}"))?;
    if !out.status.success() {
        bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn set_or_remove(cmd: &mut Command, var: &str, path: Option<&Path>) {
    match path {
        Some(p) => cmd.env(var, p),
        None => cmd.env_remove(var),
    };
}
