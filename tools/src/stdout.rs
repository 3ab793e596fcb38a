//! Printing results to stdout without `println!`'s panic when the reader has gone away
//! (`pith kb info X --entries | head -1`): a write error becomes an ordinary error, and `main`
//! ends quietly when its cause is a closed pipe.

use std::io::Write;

/// Writes one line to stdout; the error carries the io error so [`is_broken_pipe`] can see it.
pub fn line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")
}

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

/// Whether `e` (or anything it wraps) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
