//! pith in a minimal cortex-m-rt program: the package in flash, a static arena, every sentence
//! embedded and its digest printed over defmt (semihosting in QEMU), then exit.
#![no_std]
#![no_main]

use defmt_semihosting as _; // defmt's transport: frames to the host's standard output
use pith_examples::{embed_all, finish, ARENA_WORDS};

#[cortex_m_rt::entry]
fn main() -> ! {
    // One arena for the program's life; `singleton!` hands it out once, as `&'static mut`.
    let arena = cortex_m::singleton!(: [i32; ARENA_WORDS] = [0; ARENA_WORDS]).expect("taken once");
    finish(embed_all(arena))
}
