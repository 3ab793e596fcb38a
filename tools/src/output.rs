//! Writing output files whole or not at all: every writer of the CLI goes through here, so every
//! command follows one policy (README, "Output files"):
//!
//! - The bytes go to a temporary file in the destination's folder (so the final rename never
//!   crosses a file system), are flushed to disk, checked by the caller's validator and only then
//!   renamed over the destination. On any failure the temporary is removed (tempfile deletes it on
//!   drop) and an existing destination is left untouched.
//! - A regular file keeps its mode; a new one gets the umask's (`0666 & !umask`).
//! - A symbolic link is followed: its target is replaced, the link stays.
//! - A character device or a FIFO (`/dev/null`, a pipe) is written through once the bytes are
//!   complete and checked, never renamed over.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Writes `bytes` to `path` whole or not at all.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    write_whole_with(path, |w| Ok(w.write_all(bytes)?), |_| Ok(()))
}

/// Writes `value` to `path` as pretty-printed JSON (the reports), whole or not at all.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    write_whole(path, serde_json::to_string_pretty(value)?.as_bytes())
}

/// Writes `path` with `fill`, checks the finished temporary file with `validate`, then renames it
/// into place. Nothing is left behind when `fill` or `validate` fails.
pub fn write_whole_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
    validate: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    // A link is followed to the file it names (which may not exist yet).
    let target = follow_links(path)?;
    let existing = std::fs::metadata(&target).ok();
    let special = existing
        .as_ref()
        .is_some_and(|m| !m.is_file() && !m.is_dir());
    let dir = parent(&target);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile_beside(&target, special)?;
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
    if special {
        // A device or a FIFO is written through: renaming over it would replace it for everyone.
        let mut from = std::fs::File::open(tmp.path())
            .with_context(|| format!("reading back {}", tmp.path().display()))?;
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .with_context(|| format!("opening {}", target.display()))?;
        std::io::copy(&mut from, &mut to).with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    if let Some(m) = &existing {
        std::fs::set_permissions(tmp.path(), m.permissions())
            .with_context(|| format!("keeping the mode of {}", target.display()))?;
    }
    tmp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the finished file to {}", target.display()))?;
    // The rename itself is durable only once the folder's entry is on disk; not every platform
    // can open a folder for syncing, and the file is complete either way.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The temporary file the bytes go to first: beside `target` (the rename stays on one file
/// system), created with the umask's mode for a new file; for a device or FIFO in the system's
/// temporary folder (a device's folder, /dev, is no place for it).
fn tempfile_beside(target: &Path, special: bool) -> Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".pith-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // open(2) applies the umask to this mode, as it does for any new file.
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let dir = if special {
        std::env::temp_dir()
    } else {
        parent(target)
    };
    b.tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// `path` with every symbolic link along it followed (to a file that may not exist yet).
fn follow_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    // A bound on the chain, like the kernel's, so a link loop is an error and not a hang.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)
                    .with_context(|| format!("reading the link {}", p.display()))?;
                p = if to.is_absolute() {
                    to
                } else {
                    parent(&p).join(to)
                };
            }
            _ => return Ok(p),
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

/// Refuses an output path that names one of the inputs (the same file through any path), or lies
/// inside an input folder (a checkpoint directory: its config, vocabulary and weights are all read).
/// The output is compared both as written (its folder resolved) and with every link along it
/// followed, so neither a link out of an input folder nor a link into one slips through.
pub fn refuse_input(output: &Path, what: &str, inputs: &[&Path]) -> Result<()> {
    let named = resolve_folder(output);
    let followed = follow_links(output)
        .map(|p| resolve(&p))
        .unwrap_or_else(|_| named.clone());
    for input in inputs {
        let input_at = resolve(input);
        let hit = if input.is_dir() {
            named.starts_with(&input_at)
                || followed.starts_with(&input_at)
                || linked_from(input).contains(&followed)
        } else {
            named == input_at || followed == input_at
        };
        if hit {
            let how = if input.is_dir() {
                "inside the input"
            } else {
                "also an input"
            };
            bail!(
                "{what} {} is {how} {}: refusing to overwrite it",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Where the links inside folder `dir` lead (its subfolders included, as deep as a checkpoint's
/// `1_Pooling/config.json`): a checkpoint may link its weights from elsewhere, and those are read
/// too.
fn linked_from(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        // Bounded: a checkpoint holds a handful of files; a huge folder is not walked whole.
        for e in entries.flatten().take(1000) {
            let p = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_symlink() {
                if let Ok(to) = std::fs::canonicalize(&p) {
                    found.push(to);
                }
            } else if kind.is_dir() && depth < 2 {
                stack.push((p, depth + 1));
            }
        }
    }
    found
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
    std::fs::canonicalize(path).unwrap_or_else(|_| resolve_folder(path))
}

/// `path` with its folder made canonical and its last component kept as written (a link stays a
/// link: where the name itself sits).
fn resolve_folder(path: &Path) -> PathBuf {
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

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// An overwritten file keeps its mode; a new one gets the mode any new file gets here.
    #[cfg(unix)]
    #[test]
    fn outputs_keep_the_mode_or_take_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("kept.pith");
        std::fs::write(&out, b"old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_whole(&out, b"new").unwrap();
        assert_eq!(mode(&out), 0o640);
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let fresh = dir.path().join("fresh.pith");
        write_whole(&fresh, b"new").unwrap();
        assert_eq!(
            mode(&fresh),
            mode(&plain),
            "a new output has the umask's mode"
        );
    }

    /// A link stays a link and its target gets the bytes; a FIFO stays a FIFO and its reader gets
    /// them (so /dev/null and pipes are written through, never replaced).
    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_fifos_written_through() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.bin");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink("target.bin", &link).unwrap();
        write_whole(&link, b"through the link").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"through the link");

        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_whole(&fifo, b"to the reader").unwrap();
        assert_eq!(reader.join().unwrap(), b"to the reader");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(entries(dir.path()), ["link.bin", "pipe", "target.bin"]);
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

    /// Anything inside an input folder is refused, reached directly, through a link to a file in
    /// it, or as a link inside it that points elsewhere (the write would follow it).
    #[cfg(unix)]
    #[test]
    fn an_output_inside_an_input_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        std::fs::create_dir(&ck).unwrap();
        std::fs::write(ck.join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("weights"), "w").unwrap();
        std::os::unix::fs::symlink("../weights", ck.join("model.safetensors")).unwrap();
        std::os::unix::fs::symlink("ck/config.json", dir.path().join("link")).unwrap();
        for out in [
            ck.join("config.json"),
            ck.join("new.onnx"),
            ck.join("model.safetensors"),
            dir.path().join("link"),
            dir.path().join("ck/../ck/vocab.txt"),
        ] {
            assert!(
                refuse_input(&out, "output", &[&ck]).is_err(),
                "{} was allowed",
                out.display()
            );
        }
        assert!(refuse_input(&dir.path().join("ck.onnx"), "output", &[&ck]).is_ok());
        assert!(refuse_input(&dir.path().join("weights"), "output", &[&ck]).is_err());
    }
}
