//! Reading input files whole, bounded: every path a command reads may name a device (`/dev/zero`),
//! a FIFO or a runaway file, and must give a clear error instead of filling memory.
//!
//! - Text (sentence lists, conversations, configs) is read up to [`MAX_TEXT`] bytes from any
//!   kind of file (`/dev/stdin` works), must be UTF-8, and loses a leading byte-order mark
//!   (editors on Windows write one; it would otherwise glue itself to the first line's first word
//!   or token).
//! - Binary inputs (weights, ONNX graphs, ELF images) must be regular files: their size is known
//!   before the read, and a device has no size.
//! - Packages and banks have their own framed reader (`framed_file`), bounded by their header.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Largest text file a command reads whole (the biggest shipped one, the chit-chat training
/// split, is 8.4 MB).
pub const MAX_TEXT: u64 = 256 << 20;

/// The UTF-8 text of `path` without a leading byte-order mark; an error naming the file when it
/// cannot be read, is larger than [`MAX_TEXT`] or is not UTF-8.
pub fn text(path: &Path) -> Result<String> {
    text_or_missing(path)?.with_context(|| format!("reading {}: no such file", path.display()))
}

/// [`text`], with `None` when there is no file at `path`.
pub fn text_or_missing(path: &Path) -> Result<Option<String>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut bytes = Vec::new();
    f.take(MAX_TEXT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_TEXT {
        bail!(
            "{}: more than {} MiB; a text input this large is not one pith reads",
            path.display(),
            MAX_TEXT >> 20
        );
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(Some(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    }))
}

/// The bytes of the regular file at `path`; a device, FIFO or folder is an error naming it.
pub fn bytes(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{}: not a regular file (a device, FIFO or folder has no size to read)",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// [`bytes`], with `None` when there is no file at `path`.
pub fn bytes_or_missing(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => bytes(path).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_drops_a_byte_order_mark_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bom.tsv");
        std::fs::write(&p, "\u{feff}4.5\ta\tb\n").unwrap();
        assert_eq!(text(&p).unwrap(), "4.5\ta\tb\n");
        std::fs::write(&p, b"ok\xff\n").unwrap();
        let e = format!("{:#}", text(&p).unwrap_err());
        assert!(
            e.contains("bom.tsv: not UTF-8 (invalid byte at offset 2)"),
            "{e}"
        );
        assert!(text_or_missing(&dir.path().join("none")).unwrap().is_none());
        let e = format!("{:#}", bytes(dir.path()).unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
    }

    /// An endless device is cut at the bound, not read until memory runs out.
    #[cfg(unix)]
    #[test]
    fn text_from_an_endless_device_is_bounded() {
        let e = format!("{:#}", text(Path::new("/dev/zero")).unwrap_err());
        assert!(e.contains("more than 256 MiB"), "{e}");
        let e = format!("{:#}", bytes(Path::new("/dev/zero")).unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
    }
}
