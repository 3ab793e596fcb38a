//! The bank loader: any bytes either load as a bank or are refused; a bank that loads answers
//! searches and yields its entries without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::bank(data);
});
