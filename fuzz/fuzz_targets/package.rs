//! The package loader: any bytes either load as a model or are refused; a model that loads embeds
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::package(data);
});
