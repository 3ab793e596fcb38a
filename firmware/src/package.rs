//! The model package linked into the large memory (section `.pith_package`, see build.rs), and the
//! arena the model runs in (section `.pith_arena`, not loaded, zeroed at boot).

use core::sync::atomic::{AtomicBool, Ordering};

include!(concat!(env!("OUT_DIR"), "/package.rs"));

/// The package bytes (empty when none was linked).
pub fn bytes() -> &'static [u8] {
    &PACKAGE.0
}

/// The knowledge bank bytes (empty when none was linked).
pub fn bank() -> &'static [u8] {
    BANK
}

/// The integer reasoner package for `chat` (empty when none was linked).
pub fn reasoner() -> &'static [u8] {
    &REASONER.0
}

/// The response bank `chat` answers from (empty when none was linked).
pub fn chat_bank() -> &'static [u8] {
    &CHAT_BANK.0
}

const ARENA_WORDS: usize = crate::board::ARENA_BYTES / 4;

#[link_section = ".pith_arena"]
static mut ARENA: [i32; ARENA_WORDS] = [0; ARENA_WORDS];

static ARENA_TAKEN: AtomicBool = AtomicBool::new(false);

/// Hands out the arena once, zeroed; `None` on every later call, from any context.
pub fn take_arena() -> Option<&'static mut [i32]> {
    // Check and set inside one critical section: an interrupt between a separate load and store
    // could take the arena too and alias it (and ARMv6-M has no compare-and-swap to do without).
    // (A load and a store, not `swap`: ARMv6-M has no atomic read-modify-write.)
    let first = critical_section::with(|_| {
        let taken = ARENA_TAKEN.load(Ordering::Acquire);
        ARENA_TAKEN.store(true, Ordering::Release);
        !taken
    });
    if !first {
        return None;
    }
    let p = &raw mut ARENA;
    // SAFETY: the flag above, flipped once inside a critical section, makes this the only
    // reference ever created to ARENA. The section is NOLOAD (no loader or reset handler
    // initialises it), so it is zeroed here before use.
    unsafe {
        core::ptr::write_bytes(p, 0, 1);
        Some(&mut *p)
    }
}
