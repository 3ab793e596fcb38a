//! The frame decoder: arbitrary bytes through postcard's COBS decoding of requests (what the
//! device parses) and responses (what the host client parses); a decoded request re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::frame(data);
});
