//! What both examples share: the package in flash, the sentences, the arena size, and the few
//! lines a bare-metal program needs around pith (a panic handler and an exit that QEMU sees).
#![no_std]

use pith_runtime::{Error, Model};

/// Tier M (128 dims, 1.9 MB), in flash: read in place, never copied.
pub static PACKAGE: &[u8] = include_bytes!("../../models/tier-m.pith");

/// The sentences both examples embed.
pub const SENTENCES: [&str; 3] = [
    "A man is playing a guitar.",
    "Someone plays the guitar on stage.",
    "How do I delete my Facebook account?",
];

/// Longest input, in tokens, the arena is sized for.
pub const TOKENS: usize = 32;

/// `Model::arena_words(TOKENS)` for Tier M: 386 words a token and 16 more (12,368 words, 49 KB
/// at 32 tokens). Checked against the package at run time, so another package gets
/// `ArenaTooSmall`, never an overrun.
pub const ARENA_WORDS: usize = 386 * TOKENS + 16;

/// Tier M's output width.
pub const DIM: usize = 128;

/// FNV-1a of an int8 vector: a short digest the host compares with its own.
pub fn fnv1a(v: &[i8]) -> u32 {
    v.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ b as u8 as u32).wrapping_mul(0x0100_0193)
    })
}

/// Opens the package (validated once) and embeds every sentence, printing one defmt line each:
/// `embed <tokens> tokens <digest> fnv: <sentence>`.
pub fn embed_all(arena: &mut [i32]) -> Result<(), Error> {
    let model = Model::new(PACKAGE)?;
    if arena.len() < model.arena_words(TOKENS) || model.dim() != DIM {
        return Err(Error::ArenaTooSmall);
    }
    let mut v = [0i8; DIM];
    for s in SENTENCES {
        let tokens = model.embed(s, arena, &mut v)?;
        defmt::println!(
            "embed {=usize} tokens {=u32:08x} fnv: {=str}",
            tokens,
            fnv1a(&v),
            s
        );
    }
    Ok(())
}

/// Ends the program: QEMU exits with status 0 on success, 1 otherwise (semihosting).
pub fn exit(ok: bool) -> ! {
    use cortex_m_semihosting::debug;
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// Reports the result of [`embed_all`] and exits.
pub fn finish(result: Result<(), Error>) -> ! {
    match result {
        Ok(()) => exit(true),
        Err(e) => {
            defmt::println!("error {}", defmt::Display2Format(&e));
            exit(false)
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    defmt::println!("panic");
    exit(false)
}

/// A fault (a bad address, an instruction the core lacks) ends the run instead of hanging it.
#[cortex_m_rt::exception]
unsafe fn HardFault(_: &cortex_m_rt::ExceptionFrame) -> ! {
    exit(false)
}
