//! The C API's header: generated from capi/src by cbindgen with capi/cbindgen.toml.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

/// Where the committed header lives.
pub fn header_path() -> Result<PathBuf> {
    Ok(crate::qemu::repo_root()?.join("capi/include/pith.h"))
}

/// The header cbindgen writes for capi/ today.
pub fn generate() -> Result<String> {
    let crate_dir = crate::qemu::repo_root()?.join("capi");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| anyhow!("capi/cbindgen.toml: {e}"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .map_err(|e| anyhow!("cbindgen on capi/: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    Ok(String::from_utf8(out)?)
}
