//! Every real board's image builds on its HAL with its default model and bank, and fits its part:
//! code + bank and the package within the part's flash (the linker refuses more; measured here
//! from the ELF), statics + painted stack peak + arena within its RAM. The stack peak is measured
//! in QEMU after the longest embedding and an `ask`: on the board itself where QEMU models it,
//! otherwise on the simulated board with the same target, CPU and package (the same runtime code;
//! only the HAL's set-up differs, and it has returned before the console runs).

use std::time::Duration;

use anyhow::{Context, Result};
use pith_tests::qemu::{build_firmware, repo_root, Board, Qemu, BOARDS};
use pith_tools::device::firmware::{build, Link};
use pith_tools::device::image::measure;

/// Longer than any arena here allows: the embedding runs at the board's max tokens.
const LONG: &str =
    "a man in a red jacket is riding a brown horse along the beach while two dogs run \
    beside them and children watch from the dunes near an old wooden lighthouse that stands at the \
    end of a long and narrow pier under a grey and cloudy sky, and later that evening the whole \
    family sits by the fire telling stories about the old sailors who once lived in the village";

/// Stack peak (bytes) of `sim` running `package` after a longest embedding and an `ask`.
fn stack_peak(sim: &Board, package: &std::path::Path) -> Result<u64> {
    let elf = build_firmware(sim, Some(package))?;
    let mut q = Qemu::boot(sim, &elf, false)?;
    q.start_quiet(Duration::from_secs(30))?;
    let e = q.command(&format!("embed {LONG}"), Duration::from_secs(300))?;
    assert!(e.ok(), "{}: {e:?}", sim.name);
    let a = q.command(
        "ask How do I delete my Facebook account?",
        Duration::from_secs(300),
    )?;
    assert!(a.ok(), "{}: {a:?}", sim.name);
    let info = q.command("info", Duration::from_secs(30))?;
    info.get("stack")
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .with_context(|| format!("stack in {info:?}"))
}

#[test]
fn every_real_board_image_fits_its_part() -> Result<()> {
    for b in BOARDS.iter().filter(|b| b.real_part()) {
        let package = repo_root().unwrap().join(b.default_package);
        let bank = package.with_extension("pithkb");
        assert!(
            package.is_file() && bank.is_file(),
            "{}: {} or its bank is missing: `pith artifacts` builds them",
            b.name,
            package.display()
        );
        // The board's default reasoner and its response bank too, where the table names one:
        // what `pith firmware --board` links must fit the part.
        let chat = match b.default_reasoner {
            Some(rel) => {
                let r = pith_tools::catalog::reasoner_with_package(rel)
                    .with_context(|| format!("{}: {rel} is no shipped reasoner", b.name))?;
                (
                    Some(pith_tools::artifacts::package(r.package)?),
                    Some(pith_tools::artifacts::chat_bank(r)?),
                )
            }
            None => (None, None),
        };
        let link = Link {
            package: Some(package.clone()),
            bank: Some(bank),
            reasoner: chat.0,
            chat_bank: chat.1,
            ..Link::default()
        };
        let elf = build(b, &link).with_context(|| format!("building {} for the part", b.name))?;
        let size = measure(b, &elf)?;
        let twin = if b.simulated() {
            b
        } else {
            // Same target and CPU flags; the same core too where one is simulated.
            let same =
                |s: &&Board| s.simulated() && s.target == b.target && s.target_cpu == b.target_cpu;
            BOARDS
                .iter()
                .filter(same)
                .find(|s| s.core == b.core)
                .or_else(|| BOARDS.iter().find(same))
                .with_context(|| {
                    format!("{}: no simulated board with its target and CPU", b.name)
                })?
        };
        let stack = stack_peak(twin, &package)?;
        let m = b.memory;
        let (flash_part, ram_part) = (
            (m.flash.len + m.package.len) as u64,
            (m.ram.len + m.arena.len) as u64,
        );
        let flash = size.flash + size.package;
        let ram = size.statics + stack + size.arena;
        eprintln!(
            "| {} | {} + package {} = {flash} of {flash_part} | statics {} + stack {stack} (measured on {}) + arena {} = {ram} of {ram_part} |",
            b.name, size.flash, size.package, size.statics, twin.name, size.arena
        );
        // Linked whole: the package, and the board's reasoner and response bank beside it, each
        // aligned to 64 bytes (under 64 bytes of padding a part).
        let mut len = 0;
        let mut parts = 0;
        for p in [
            Some(&package),
            link.reasoner.as_ref(),
            link.chat_bank.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            len += std::fs::metadata(p)?.len();
            parts += 1;
        }
        assert!(
            size.package >= len && size.package < len + 64 * parts,
            "{}: package section {} bytes for {parts} parts of {len} bytes",
            b.name,
            size.package
        );
        assert!(
            size.flash <= m.flash.len as u64,
            "{}: code {} > {}",
            b.name,
            size.flash,
            m.flash.len
        );
        assert!(
            size.statics + stack <= m.ram.len as u64,
            "{}: statics {} + stack {stack} > RAM region {}",
            b.name,
            size.statics,
            m.ram.len
        );
        assert!(
            flash <= flash_part && ram <= ram_part,
            "{}: does not fit its part",
            b.name
        );
        assert!(
            stack > 256,
            "{}: stack peak {stack}: the painting did not work",
            b.name
        );
    }
    Ok(())
}
