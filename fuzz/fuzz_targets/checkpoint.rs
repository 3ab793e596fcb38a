//! The checkpoint loader of the tools: any config.json and safetensors bytes load or are
//! refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    let _ = checks::checkpoint(data);
});
