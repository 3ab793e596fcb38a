//! Writing output files whole or not at all: every writer of the CLI goes through here.
//!
//! The bytes go to a temporary file in the destination's folder (so the final rename never
//! crosses a file system), are flushed to disk, checked by the caller's validator and only then
//! renamed over the destination. On any failure the temporary is removed (tempfile deletes it on
//! drop) and an existing destination is left untouched.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Writes `bytes` to `path` whole or not at all.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    write_whole_with(path, |w| Ok(w.write_all(bytes)?), |_| Ok(()))
}

/// Writes `path` with `fill`, checks the finished temporary file with `validate`, then renames it
/// into place. Nothing is left behind when `fill` or `validate` fails.
pub fn write_whole_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
    validate: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".pith-tmp-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w).with_context(|| format!("writing {}", path.display()))?;
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // A rename that lands before the data reaches the disk can leave an empty file after a crash.
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("flushing {} to disk", path.display()))?;
    validate(tmp.path()).with_context(|| format!("{} not written", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the finished file to {}", path.display()))?;
    // The rename itself is durable only once the folder's entry is on disk; not every platform
    // can open a folder for syncing, and the file is complete either way.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Refuses an output path that names one of the inputs (the same file through any path).
pub fn refuse_input(output: &Path, what: &str, inputs: &[&Path]) -> Result<()> {
    let out = resolve(output);
    for input in inputs {
        if resolve(input) == out {
            bail!(
                "{what} {} is also an input ({}): refusing to overwrite it",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// `path`'s folder (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A canonical name for comparing paths: the file itself when it exists (links resolved), else its
/// canonical folder joined with its name.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = std::fs::canonicalize(parent(path)).unwrap_or_else(|_| parent(path));
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bank.pithkb");
        write_whole(&out, b"old").unwrap();
        let r = write_whole_with(
            &out,
            |w| {
                w.write_all(b"half")?;
                bail!("disk full")
            },
            |_| Ok(()),
        );
        assert!(format!("{:#}", r.unwrap_err()).contains("disk full"));
        let r = write_whole_with(
            &out,
            |w| Ok(w.write_all(b"new but invalid")?),
            |_| bail!("does not load"),
        );
        assert!(format!("{:#}", r.unwrap_err()).contains("does not load"));
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["bank.pithkb"]);
        write_whole(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.txt");
        std::fs::write(&src, "x").unwrap();
        let other = dir.path().join("sub/../src.txt");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(refuse_input(&other, "output", &[&src]).is_err());
        assert!(refuse_input(&dir.path().join("new.txt"), "output", &[&src]).is_ok());
    }
}
