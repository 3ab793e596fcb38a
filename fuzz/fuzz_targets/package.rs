//! The package loader: any bytes either load as a model or are refused; a model that loads embeds
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pith_runtime::format::Package;
use pith_runtime::Model;

fuzz_target!(|data: &[u8]| {
    // The CRC would reject nearly every mutation before the header parser sees it.
    let _ = Package::new_checked(data);
    let Ok(p) = Package::new_checked_without_crc(data) else {
        return;
    };
    let Ok(m) = Model::from_package(p) else {
        return;
    };
    // A fuzzed package can declare a huge model; only run small ones.
    let words = m.arena_words(m.max_tokens().min(16));
    if words > 1 << 20 || m.dim() > 4096 {
        return;
    }
    let mut arena = vec![0i32; words];
    let mut out = vec![0i8; m.dim()];
    let _ = m.embed("a fuzzed sentence", &mut arena, &mut out);
});
