//! Printing results to stdout without `println!`'s panic when the reader has gone away
//! (`pith kb info X --entries | head -1`): a write error becomes an ordinary error, and `main`
//! ends quietly when its cause is a closed standard output — and only then: a broken pipe to
//! anything else (QEMU's UART, a child process) is a failure like any other.

use std::io::Write;

/// Writes one line to stdout; a closed pipe comes back marked so [`is_broken_pipe`] can tell it
/// from any other broken pipe.
pub fn line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::io::Error::new(e.kind(), ReaderGone)
            } else {
                e
            }
        })
}

/// The mark on a write to a standard output whose reader has gone away.
#[derive(Debug)]
struct ReaderGone;

impl std::fmt::Display for ReaderGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for ReaderGone {}

/// `println!` that returns the write error from the enclosing function instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::line(format_args!(""))?
    };
    ($($t:tt)*) => {
        $crate::stdout::line(format_args!($($t)*))?
    };
}

/// Whether `e` (or anything it wraps) is a write to a closed standard output.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<ReaderGone>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_standard_output_counts_as_the_reader_going_away() {
        let marked = std::io::Error::new(std::io::ErrorKind::BrokenPipe, ReaderGone);
        let e = anyhow::Error::from(marked).context("printing the answer");
        assert!(is_broken_pipe(&e));
        // A broken pipe to a device or a child process is a failure.
        let other = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::from(other).context("writing to the device");
        assert!(!is_broken_pipe(&e));
    }
}
