//! The console: line editor, command parser and framed mode over arbitrary input bytes, read in
//! chunks of arbitrary size. The first byte picks the chunk size. No model is linked, so every
//! model command takes its refusal path; the real model's paths are the QEMU and host tests'.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::console(data);
});
