//! Writes the seed inputs of the fuzz targets (fuzz/corpus/*/seed-*): a tiny synthetic package,
//! banks built for it (4- and 8-bit, coded and plain text), console sessions and request frames.
//! Run once when a format changes: `cargo run --release -p pith-tests --bin fuzz-seeds`.

use anyhow::{anyhow, Result};
use pith_console::frame::{encode_request, Request, MAX_REQUEST_FRAME};
use pith_runtime::kb::{BankEntry, BankOptions, BankWriter};
use pith_runtime::Model;
use pith_tests::synthetic::tiny_bert_package;

fn main() -> Result<()> {
    let root = pith_tests::qemu::repo_root().unwrap().join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| -> Result<()> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(std::fs::write(dir.join(format!("seed-{name}")), bytes)?)
    };
    let package = tiny_bert_package(7);
    write("package", "tiny-bert", &package)?;
    let model = Model::new(&package).map_err(|e| anyhow!("{e}"))?;
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut embed = |t: &str| -> Result<Vec<i8>> {
        let mut v = vec![0i8; model.dim()];
        model
            .embed(t, &mut arena, &mut v)
            .map_err(|e| anyhow!("{e}"))?;
        Ok(v)
    };
    let texts = [("0", "the cat", "a cat plays"), ("b", "dogs", "the dog")];
    for (bits, compress) in [(4, true), (8, false)] {
        let mut w = BankWriter::new(
            model.dim(),
            BankOptions {
                question_bits: bits,
                answer_bits: bits,
                compress,
                ..BankOptions::default()
            },
        );
        for (id, q, a) in texts {
            w.push(BankEntry {
                id: id.into(),
                question: q.into(),
                answer: a.into(),
                question_vector: embed(q)?,
                answer_vector: embed(a)?,
            });
        }
        let bank = w.finish().map_err(|e| anyhow!("{e}"))?;
        write("bank", &format!("{bits}bit-{compress}"), &bank)?;
    }
    let frame = |r: &Request<'_>| -> Result<Vec<u8>> {
        let mut buf = [0u8; MAX_REQUEST_FRAME];
        Ok(encode_request(r, &mut buf)
            .map_err(|e| anyhow!("{e}"))?
            .to_vec())
    };
    let requests = [
        Request::Embed { text: "the cat" },
        Request::Sim { a: "a", b: "b" },
        Request::Ask { question: "why" },
        Request::Info,
        Request::Exit,
    ];
    let mut session = b"\x08frame\r".to_vec();
    for (i, r) in requests.iter().enumerate() {
        let f = frame(r)?;
        write("frame", &format!("request-{i}"), &f)?;
        session.extend_from_slice(&f);
    }
    session.extend_from_slice(b"info\r");
    write("console", "framed-session", &session)?;
    write(
        "console",
        "text-session",
        b"\x03help\rinfo\r\x1b[Aembed the cat\x7f\x7fcat\rsim a | b\rask why?\recho off\rx\x08\r",
    )?;
    for (i, t) in ["the cats playing!", "Café 中文 x", "", "##s [CLS]"]
        .iter()
        .enumerate()
    {
        let mut seed = vec![0x1fu8];
        seed.extend_from_slice(t.as_bytes());
        write("tokenizer", &format!("text-{i}"), &seed)?;
    }
    println!("wrote seeds under {}", root.display());
    Ok(())
}
