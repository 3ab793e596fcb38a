//! Writes cortex-m-rt's `memory.x` from the board table's entry for mps2-an386 (the one place its
//! memory map is declared) and links cortex-m-rt's and defmt's linker scripts.

use std::path::PathBuf;

fn main() {
    let board = pith_boards::BOARDS
        .iter()
        .find(|b| b.name == "mps2-an386")
        .expect("mps2-an386 is in the board table");
    let m = board.memory;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The package (include_bytes!) goes in flash with the code; statics, the arena and the stack
    // in RAM.
    let memory = format!(
        "MEMORY\n{{\n  FLASH : ORIGIN = {:#x}, LENGTH = {:#x}\n  RAM : ORIGIN = {:#x}, LENGTH = {:#x}\n}}\n",
        m.flash.origin, m.flash.len, m.ram.origin, m.ram.len
    );
    std::fs::write(out.join("memory.x"), memory).expect("writing memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rustc-link-arg=-Tdefmt.x");
    println!("cargo:rerun-if-changed=build.rs");
}
