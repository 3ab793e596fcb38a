//! An in-memory `embedded_io` port for running the console on the host: input is queued up front
//! (optionally handed out in small, uneven reads to imitate a UART), output is collected.

use std::collections::VecDeque;
use std::convert::Infallible;

/// Input bytes in, output bytes out.
#[derive(Default)]
pub struct MemPort {
    input: VecDeque<u8>,
    /// Everything the console wrote.
    pub output: Vec<u8>,
    /// Largest chunk one `read` returns (0: no limit). Varying it exercises partial reads.
    pub max_read: usize,
    reads: usize,
}

impl MemPort {
    /// A port whose reads return at most `max_read` bytes (0: everything queued).
    pub fn new(max_read: usize) -> Self {
        MemPort {
            max_read,
            ..Default::default()
        }
    }

    /// Queues input.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    /// Takes the output written so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }
}

impl embedded_io::ErrorType for MemPort {
    type Error = Infallible;
}

impl embedded_io::Read for MemPort {
    /// Returns 0 once the queued input is used up (end of input ends `Console::serve`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        self.reads += 1;
        // Chunk sizes cycle 1..=max_read so frames and lines arrive split at every offset.
        let limit = if self.max_read == 0 {
            buf.len()
        } else {
            1 + self.reads % self.max_read
        };
        let n = buf.len().min(limit).min(self.input.len());
        for (slot, b) in buf.iter_mut().zip(self.input.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl embedded_io::Write for MemPort {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
