//! The tokenizer: any text (and any vocabulary section) either tokenizes into in-range ids or is
//! refused. The first byte picks the settings, the rest is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::tokenizer(data);
});
