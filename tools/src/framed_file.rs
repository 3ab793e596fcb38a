//! Reading a package or a bank from disk without trusting its size: both formats start with a
//! four-byte magic and state their total length (a little-endian u32), so a wrong file (a 2 GB
//! video passed as `--model`) is refused after a few bytes, and only the declared length is read.

use std::io::{Read, Seek};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// What a file should be: its magic, where its total length sits, and its name in errors.
pub struct Kind {
    /// The first four bytes.
    pub magic: [u8; 4],
    /// Offset of the little-endian u32 total length.
    pub total_at: usize,
    /// Shortest possible file (a fixed preamble or header).
    pub min_len: usize,
    /// "package", "knowledge bank".
    pub name: &'static str,
}

/// A `.pith` package.
pub const PACKAGE: Kind = Kind {
    magic: pith_runtime::format::MAGIC,
    total_at: 16,
    min_len: pith_runtime::format::PREAMBLE_LEN + 4,
    name: "package",
};

/// A `.pithkb` knowledge bank.
pub const BANK: Kind = Kind {
    magic: pith_runtime::kb::BANK_MAGIC,
    total_at: 8,
    min_len: pith_runtime::kb::HEADER_LEN,
    name: "knowledge bank",
};

/// Reads the `kind` file at `path`: checks magic and declared length against the file's size
/// before reading, then reads just the declared bytes. Full validation is the runtime's
/// (`Package::new_checked`, `Bank::new_checked`).
pub fn read(path: &Path, kind: &Kind) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("reading {} {}", kind.name, path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len < kind.min_len as u64 {
        bail!(
            "{}: {len} bytes is too short for a {}",
            path.display(),
            kind.name
        );
    }
    let mut head = vec![0u8; kind.total_at + 4];
    f.read_exact(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    if head[..4] != kind.magic {
        bail!(
            "{}: not a {} (it does not start with {:?})",
            path.display(),
            kind.name,
            String::from_utf8_lossy(&kind.magic)
        );
    }
    let mut total = [0u8; 4];
    total.copy_from_slice(&head[kind.total_at..kind.total_at + 4]);
    let total = u64::from(u32::from_le_bytes(total));
    if total > len {
        bail!(
            "{}: the {} says it is {total} bytes but the file has {len} (truncated)",
            path.display(),
            kind.name
        );
    }
    f.rewind()
        .with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::with_capacity(total as usize);
    f.take(total)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_or_truncated_files_are_refused_before_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        let msg = |bytes: &[u8]| {
            std::fs::write(&p, bytes).unwrap();
            format!("{:#}", read(&p, &PACKAGE).unwrap_err())
        };
        assert!(msg(b"PITH").contains("too short"));
        assert!(msg(&[0u8; 64]).contains("not a package"));
        let mut pre = vec![0u8; 64];
        pre[..4].copy_from_slice(b"PITH");
        pre[16..20].copy_from_slice(&1000u32.to_le_bytes());
        assert!(msg(&pre).contains("says it is 1000 bytes but the file has 64"));
        pre[16..20].copy_from_slice(&40u32.to_le_bytes());
        std::fs::write(&p, &pre).unwrap();
        assert_eq!(read(&p, &PACKAGE).unwrap().len(), 40);
    }
}
