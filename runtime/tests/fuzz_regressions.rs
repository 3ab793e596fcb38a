//! Replays the committed fuzz corpus (fuzz/corpus/<target>/) on stable in every `cargo test`:
//! each input must be refused or handled, never panic. Inputs that once crashed a target are
//! added to its corpus folder with a name saying what they broke (none so far; see fuzz/README.md).

use std::path::PathBuf;

use pith_runtime::console::{Board, Console, NoClock, Service};
use pith_runtime::format::{Package, TokenizerConfig};
use pith_runtime::frame::{Request, Response};
use pith_runtime::kb::{Bank, Hit, Index};
use pith_runtime::tokenizer::{build_vocab_section, Tokenizer};
use pith_runtime::{Error, Model};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn package_corpus() {
    for (_, data) in corpus("package") {
        let _ = Package::new_checked(&data);
        if let Ok(m) = Package::new_checked_without_crc(&data).and_then(Model::from_package) {
            let mut arena = vec![0i32; m.arena_words(m.max_tokens().min(16))];
            let mut out = vec![0i8; m.dim()];
            let _ = m.embed("a fuzzed sentence", &mut arena, &mut out);
        }
    }
}

#[test]
fn bank_corpus() {
    for (_, data) in corpus("bank") {
        if let Ok(b) = Bank::new_checked(&data) {
            let q: Vec<i8> = (0..b.dim()).map(|i| i as i8).collect();
            let mut hits = [Hit::default(); 3];
            for index in [Index::Question, Index::Answer, Index::Both] {
                let n = b.search(&q, index, &mut hits);
                assert!(hits[..n].iter().all(|h| b.entry(h.index).is_some()));
            }
            assert_eq!(b.entries().count(), b.len());
        }
    }
}

#[test]
fn tokenizer_corpus() {
    let words = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "a", "cat", "##s", "##ing", "play", "é", "中",
        "!", "##!", ",",
    ];
    let section = build_vocab_section(&words.map(String::from));
    for (_, data) in corpus("tokenizer") {
        let Some((&flags, rest)) = data.split_first() else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(rest) else {
            continue;
        };
        let config = TokenizerConfig {
            lowercase: flags & 1 != 0,
            strip_accents: flags & 2 != 0,
            split_cjk: flags & 4 != 0,
            cls_id: 2,
            sep_id: 3,
            unk_id: 1,
            pad_id: 0,
            max_len: 2 + u32::from(flags >> 3),
            max_chars_per_word: 1 + u32::from(flags >> 4),
        };
        let t = Tokenizer::new(&section, config).unwrap();
        let mut ids = vec![0u32; config.max_len as usize];
        let n = t.encode(text, &mut ids).unwrap();
        assert!(
            (2..=ids.len()).contains(&n) && ids[..n].iter().all(|&i| (i as usize) < words.len())
        );
    }
}

struct Sink;
impl embedded_io::ErrorType for Sink {
    type Error = core::convert::Infallible;
}
impl embedded_io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn console_corpus() {
    let board = Board {
        name: "fuzz",
        cpu: "host",
        flash_used: 0,
        flash_size: 0,
        ram_used: 0,
        ram_size: 0,
        package_bytes: 0,
        arena_bytes: 0,
        stack_peak: None,
    };
    for (_, data) in corpus("console") {
        let Some((&chunk, input)) = data.split_first() else {
            continue;
        };
        let mut arena = [0i32; 16];
        let mut console = Console::new(Service::new(
            Err(Error::PackageTruncated),
            &mut arena,
            board,
            NoClock,
        ));
        console.start(&mut Sink).unwrap();
        for part in input.chunks(usize::from(chunk).max(1)) {
            console.feed(part, &mut Sink).unwrap();
        }
    }
}

#[test]
fn frame_corpus() {
    for (name, data) in corpus("frame") {
        let mut copy = data.clone();
        let req = postcard::from_bytes_cobs::<Request<'_>>(&mut copy);
        assert!(!name.contains("seed-request") || req.is_ok(), "{name}");
        let mut copy = data.clone();
        let _ = postcard::from_bytes_cobs::<Response>(&mut copy);
    }
}
