//! UF2 images (Microsoft's USB flashing format, as the RP2350 boot ROM reads it): the ELF's
//! loadable bytes at their load addresses, cut into 256-byte payloads of 512-byte blocks, each
//! tagged with the chip family so the boot ROM accepts it. Drag the file onto the board's drive.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use object::read::elf::{ElfFile32, ProgramHeader};
use object::{elf, Endianness};

/// Family ID of RP2350 Arm Secure images.
pub const RP2350_ARM_S: u32 = 0xe48b_ff59;

const MAGIC_START0: u32 = 0x0A32_4655;
const MAGIC_START1: u32 = 0x9E5D_5157;
const MAGIC_END: u32 = 0x0AB1_6F30;
const FLAG_FAMILY_ID: u32 = 0x0000_2000;
const PAYLOAD: u32 = 256;

/// The UF2 image of `elf`'s loadable segments (at their physical addresses), for `family`.
pub fn from_elf(elf_path: &Path, family: u32) -> Result<Vec<u8>> {
    let bytes = crate::input::bytes(elf_path)?;
    let file = ElfFile32::<Endianness>::parse(&*bytes)
        .with_context(|| format!("parsing {}", elf_path.display()))?;
    let e = file.endian();
    // Page address -> 256 bytes; gaps inside a page are zero.
    let mut pages: BTreeMap<u32, [u8; PAYLOAD as usize]> = BTreeMap::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(e) != elf::PT_LOAD || ph.p_filesz(e) == 0 {
            continue;
        }
        let data = ph
            .data(e, &*bytes)
            .ok()
            .context("segment data out of the file")?;
        let base = ph.p_paddr(e);
        for (i, &b) in data.iter().enumerate() {
            let addr = base
                .checked_add(u32::try_from(i)?)
                .context("segment past 4 GiB")?;
            let page = pages.entry(addr & !(PAYLOAD - 1)).or_insert([0; 256]);
            page[(addr % PAYLOAD) as usize] = b;
        }
    }
    if pages.is_empty() {
        bail!("{} has no loadable bytes", elf_path.display());
    }
    let count = u32::try_from(pages.len())?;
    let mut out = Vec::with_capacity(pages.len() * 512);
    for (n, (addr, data)) in pages.iter().enumerate() {
        for word in [
            MAGIC_START0,
            MAGIC_START1,
            FLAG_FAMILY_ID,
            *addr,
            PAYLOAD,
            u32::try_from(n)?,
            count,
            family,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(data);
        out.resize(out.len() + 476 - 256, 0);
        out.extend_from_slice(&MAGIC_END.to_le_bytes());
    }
    Ok(out)
}
