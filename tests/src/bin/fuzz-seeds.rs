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
    write("checkpoint", "tiny-bert", &tiny_checkpoint())?;
    println!("wrote seeds under {}", root.display());
    Ok(())
}

/// A tiny random BERT checkpoint as the `checkpoint` target reads it: config.json's length (two
/// bytes, little-endian), config.json, then a model.safetensors of F32 tensors (hidden 8, one
/// layer, FFN 16, the target's 12-token vocabulary, 16 positions).
fn tiny_checkpoint() -> Vec<u8> {
    let (h, f, vocab, positions) = (8usize, 16usize, 12usize, 16usize);
    let config = serde_json::json!({
        "model_type": "bert", "hidden_act": "gelu", "hidden_size": h, "intermediate_size": f,
        "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": vocab,
        "max_position_embeddings": positions, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
    })
    .to_string();
    let mut tensors: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![vocab, h]),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![positions, h],
        ),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    let layer = [
        ("attention.self.query", vec![h, h]),
        ("attention.self.key", vec![h, h]),
        ("attention.self.value", vec![h, h]),
        ("attention.output.dense", vec![h, h]),
        ("attention.output.LayerNorm", vec![h]),
        ("intermediate.dense", vec![f, h]),
        ("output.dense", vec![h, f]),
        ("output.LayerNorm", vec![h]),
    ];
    for (name, shape) in layer {
        let bias = if shape.len() == 2 { shape[0] } else { h };
        tensors.push((format!("encoder.layer.0.{name}.weight"), shape));
        tensors.push((format!("encoder.layer.0.{name}.bias"), vec![bias]));
    }
    // A small deterministic generator: the seed is the same bytes on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    };
    let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let start = data.len();
        for _ in 0..n {
            let v = if name.ends_with("LayerNorm.weight") {
                1.0
            } else {
                next()
            };
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name,
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut head = serde_json::Value::Object(header).to_string().into_bytes();
    // The format pads its header with spaces to a multiple of 8.
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = (config.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(config.as_bytes());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend(head);
    out.extend(data);
    out
}
