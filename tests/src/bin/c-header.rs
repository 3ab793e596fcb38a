//! Writes capi/include/pith.h from capi/src (cbindgen); tests/tests/capi.rs checks it is current.

fn main() -> anyhow::Result<()> {
    let header = pith_tests::capi::generate()?;
    let path = pith_tests::capi::header_path()?;
    pith_tools::output::write_whole(&path, header.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
