//! What a firmware image takes of its board's memory, read from the ELF's allocated sections and
//! the board table's regions: the numbers the size check and `pith boards`' README table use.

use std::path::Path;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, SectionFlags};
use pith_boards::{Board, Region};

/// Bytes an image uses in each region of its board's memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageSize {
    /// Code and constants in flash, the `.data` load image included.
    pub flash: u64,
    /// The linked package.
    pub package: u64,
    /// Statics in RAM (`.data`, `.bss`, `.uninit`).
    pub statics: u64,
    /// The arena section.
    pub arena: u64,
}

fn inside(r: Region, addr: u64, size: u64) -> bool {
    addr >= r.origin as u64 && addr + size <= r.origin as u64 + r.len as u64
}

/// `e_flags` bit of an ELF built for the hard-float ABI (ARM ELF ABI, EF_ARM_ABI_FLOAT_HARD).
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;

/// Reads `elf` (built for `board`) and sums its allocated sections per region; a section outside
/// every region is an error, and so is an image built for another float ABI than the board's
/// target (an FPU image on a core without one faults at its first float instruction).
pub fn measure(board: &Board, elf: &Path) -> Result<ImageSize> {
    let bytes = crate::input::bytes(elf)?;
    let file =
        object::File::parse(&*bytes).with_context(|| format!("parsing {}", elf.display()))?;
    if let object::FileFlags::Elf { e_flags, .. } = file.flags() {
        let hard = e_flags & EF_ARM_ABI_FLOAT_HARD != 0;
        let wants_hard = board.target.ends_with("hf");
        if hard != wants_hard {
            bail!(
                "{} is built for the {} float ABI, {}'s target {} for the {}",
                elf.display(),
                if hard { "hard" } else { "soft" },
                board.name,
                board.target,
                if wants_hard { "hard" } else { "soft" }
            );
        }
    }
    let m = board.memory;
    let mut s = ImageSize::default();
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else {
            continue;
        };
        // SHF_ALLOC: the section takes memory on the device.
        if sh_flags & 0x2 == 0 || section.size() == 0 {
            continue;
        }
        let (addr, size) = (section.address(), section.size());
        let name = section.name().unwrap_or("?");
        if inside(m.flash, addr, size) {
            s.flash += size;
        } else if inside(m.package, addr, size) {
            s.package += size;
        } else if inside(m.arena, addr, size) {
            s.arena += size;
        } else if inside(m.ram, addr, size) {
            s.statics += size;
            // `.data` is copied from flash at boot: its load image is flash too.
            if name == ".data" {
                s.flash += size;
            }
        } else {
            bail!(
                "{}: section {name} at 0x{addr:08x} ({size} bytes) lies outside {}'s memory map",
                elf.display(),
                board.name
            );
        }
    }
    Ok(s)
}
