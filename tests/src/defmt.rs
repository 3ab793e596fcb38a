//! Reads defmt log frames as a firmware writes them (rzCOBS-framed, each ended by a zero byte,
//! defmt's default encoding) with the format strings its ELF keeps in `.defmt` symbols (each
//! symbol's name is a JSON record whose `data` is the format string, its address the frame's
//! index). Only the argument types the examples print are read, as a 32-bit Cortex-M writes
//! them: `{=usize}` and `{=u32}` (four bytes, little-endian; the `:08x` hint honoured) and
//! `{=str}` (a four-byte length, then UTF-8). rzCOBS decoding leaves the frame's implicit final
//! zero byte, which is dropped.
//! defmt-decoder does all of it, but its dependencies change shared crates' features and make
//! the test build recompile tract (minutes of CI).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};

/// The format strings of `elf`, by frame index.
fn formats(elf: &[u8]) -> Result<HashMap<u64, String>> {
    let file = object::File::parse(elf).context("parsing the ELF")?;
    let section = file
        .section_by_name(".defmt")
        .context("the ELF has no .defmt section")?
        .index();
    let mut out = HashMap::new();
    for sym in file.symbols() {
        if sym.section_index() != Some(section) {
            continue;
        }
        let Ok(record) = serde_json::from_str::<serde_json::Value>(sym.name()?) else {
            continue;
        };
        if let Some(data) = record["data"].as_str() {
            out.insert(sym.address(), data.to_string());
        }
    }
    Ok(out)
}

/// A 32-bit little-endian word from the front of `b` (a `u32`, or a `usize` of the target).
fn word(b: &mut &[u8]) -> Result<u32> {
    Ok(u32::from_le_bytes(take(b, 4)?.try_into()?))
}

/// `n` bytes from the front of `b`.
fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if b.len() < n {
        bail!("an argument runs past the frame");
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

/// One frame's payload, formatted with `format`.
fn render(format: &str, mut args: &[u8]) -> Result<String> {
    let mut out = String::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .with_context(|| format!("unclosed placeholder in {format:?}"))?;
        let spec = &rest[open + 1..close];
        let (ty, hint) = spec.split_once(':').unwrap_or((spec, ""));
        match ty {
            "=usize" => out.push_str(&word(&mut args)?.to_string()),
            "=u32" => {
                let v = word(&mut args)?;
                match hint {
                    "08x" => out.push_str(&format!("{v:08x}")),
                    "" => out.push_str(&v.to_string()),
                    other => bail!("display hint {other:?} is not read here"),
                }
            }
            "=str" => {
                let n = word(&mut args)? as usize;
                out.push_str(std::str::from_utf8(take(&mut args, n)?)?);
            }
            other => bail!("argument {other:?} of {format:?} is not read here"),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    if !args.is_empty() {
        bail!("{} bytes left after {format:?}", args.len());
    }
    Ok(out)
}

/// The lines of the defmt frames in `stream`, formatted with the strings of `elf`.
pub fn decode(elf: &[u8], stream: &[u8]) -> Result<Vec<String>> {
    let formats = formats(elf)?;
    let mut lines = Vec::new();
    // Zero bytes only delimit: an empty piece (the stream's leading delimiter, the end) is no
    // frame.
    for frame in stream.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let payload = rzcobs::decode(frame).map_err(|e| anyhow!("a frame is not rzCOBS: {e:?}"))?;
        let payload = payload.strip_suffix(&[0]).unwrap_or(&payload);
        let (index, args) = payload
            .split_first_chunk::<2>()
            .context("a frame shorter than its index")?;
        let index = u64::from(u16::from_le_bytes(*index));
        let format = formats
            .get(&index)
            .with_context(|| format!("frame index {index} is not in the ELF"))?;
        lines.push(render(format, args)?);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_render_as_defmt_writes_them() {
        // usize 300; u32 0x1a5ea479; a 2-byte string: all little-endian words.
        let args = [44, 1, 0, 0, 0x79, 0xa4, 0x5e, 0x1a, 2, 0, 0, 0, b'h', b'i'];
        let line = render("a {=usize} b {=u32:08x} c {=str}.", &args).unwrap();
        assert_eq!(line, "a 300 b 1a5ea479 c hi.");
        assert!(render("{=usize}", &[1, 0]).is_err(), "a cut word");
        assert!(
            render("{=str}", &[9, 0, 0, 0, b'x']).is_err(),
            "a string past the frame"
        );
        assert!(
            render("{=u32}", &[1, 2, 3, 4, 5]).is_err(),
            "bytes left over"
        );
        assert!(
            render("{=i8}", &[1]).is_err(),
            "a type this reader does not know"
        );
    }
}
