//! The console: line editor, command parser and framed mode over arbitrary input bytes, read in
//! chunks of arbitrary size. The first byte picks the chunk size. No model is linked, so every
//! model command takes its refusal path; the real model's paths are the QEMU and host tests'.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pith_runtime::console::{Board, Console, NoClock, Service};
use pith_runtime::Error;

struct Sink(usize);

impl embedded_io::ErrorType for Sink {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

const BOARD: Board<'static> = Board {
    name: "fuzz",
    cpu: "host",
    flash_used: 0,
    flash_size: 0,
    ram_used: 0,
    ram_size: 0,
    package_bytes: 0,
    arena_bytes: 0,
    stack_peak: None,
};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let mut arena = [0i32; 16];
    let service = Service::new(Err(Error::PackageTruncated), &mut arena, BOARD, NoClock);
    let mut console = Console::new(service);
    let mut out = Sink(0);
    let _ = console.start(&mut out);
    for part in input.chunks(usize::from(chunk).max(1)) {
        let _ = console.feed(part, &mut out);
    }
});
