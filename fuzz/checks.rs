//! What each fuzz target checks on one input: any bytes are refused or handled, never a panic, and
//! what loads behaves. Shared by the targets (fuzz_targets/, cargo fuzz on nightly) and by the
//! corpus replay on stable (tests/tests/fuzz_regressions.rs), so both check the same thing.
// Each includer uses some of the checks only.
#![allow(dead_code)]

use pith_console::frame::{encode_request, Request, Response, MAX_REQUEST_FRAME};
use pith_console::{Board, Console, NoClock, Service};
use pith_runtime::format::{Package, TokenizerConfig};
use pith_runtime::kb::{Bank, Hit, Index};
use pith_runtime::tokenizer::{build_vocab_section, Tokenizer};
use pith_runtime::{Error, Model};

/// The package loader: `Package::new_checked`, then (checksum skipped, so mutations reach the
/// header and section parser) `Model::from_package` and one embedding of a small model.
pub fn package(data: &[u8]) {
    // The CRC would reject nearly every mutation before the header parser sees it.
    let _ = Package::new_checked(data);
    let Ok(p) = Package::new_checked_without_crc(data) else {
        return;
    };
    let Ok(m) = Model::from_package(p) else {
        return;
    };
    // A fuzzed package can declare a huge model; only run small ones.
    let words = m.arena_words(m.max_tokens().min(16));
    if words > 1 << 20 || m.dim() > 4096 {
        return;
    }
    let mut arena = vec![0i32; words];
    let mut out = vec![0i8; m.dim()];
    let _ = m.embed("a fuzzed sentence", &mut arena, &mut out);
}

/// `data` with the CRC the bank declares at its end recomputed, so that mutations reach the
/// parser behind the checksum instead of stopping at it.
fn with_valid_crc(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    let total = v
        .get(8..12)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if total >= 4 && total <= v.len() {
        let crc = pith_runtime::format::CHECKSUM.checksum(&v[..total - 4]);
        v[total - 4..total].copy_from_slice(&crc.to_le_bytes());
    }
    v
}

/// The bank loader on the raw bytes and with the declared CRC recomputed; a bank that loads
/// answers searches with entries it has and yields all of them.
pub fn bank(data: &[u8]) {
    let _ = Bank::new_checked(data);
    let fixed = with_valid_crc(data);
    let Ok(b) = Bank::new_checked(&fixed) else {
        return;
    };
    let query: Vec<i8> = (0..b.dim()).map(|i| (i as i8).wrapping_mul(37)).collect();
    let mut hits = [Hit::default(); 3];
    for index in [Index::Question, Index::Answer, Index::Both] {
        let n = b.search(&query, index, &mut hits);
        assert!(hits[..n].iter().all(|h| b.entry(h.index).is_some()));
    }
    let mut count = 0;
    for e in b.entries() {
        let _ = (e.id.len(), e.question.len(), e.answer.len());
        count += 1;
    }
    assert_eq!(count, b.len());
}

const WORDS: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "a", "cat", "##s", "##ing", "play", "é", "中", "!",
    "##!", ",",
];

/// The tokenizer: the first byte picks the settings, the rest is the text; it tokenizes into
/// in-range ids or is refused. Flags 0xff: the rest is a vocabulary section instead.
pub fn tokenizer(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let tokens: Vec<String> = WORDS.iter().map(|s| s.to_string()).collect();
    let section = build_vocab_section(&tokens);
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
    if flags == 0xff {
        let _ = Tokenizer::new(rest, config).map(|t| {
            let mut ids = [0u32; 8];
            t.encode("the cats", &mut ids)
                .map(|n| assert!(n <= ids.len()))
        });
        return;
    }
    let Ok(text) = core::str::from_utf8(rest) else {
        return;
    };
    let Ok(t) = Tokenizer::new(&section, config) else {
        return;
    };
    let mut ids = vec![0u32; config.max_len as usize];
    if let Ok(n) = t.encode(text, &mut ids) {
        assert!((2..=ids.len()).contains(&n));
        assert!(ids[..n].iter().all(|&i| (i as usize) < WORDS.len()));
    }
}

/// Counts what the console writes and drops it.
struct Sink(usize);

impl embedded_io::ErrorType for Sink {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

const BOARD: Board<'static> = Board::host("fuzz", "host");

/// The console (line editor, command parser, framed mode) over the bytes after the first, read in
/// chunks of the first byte's size. No model: model commands take their refusal path.
pub fn console(data: &[u8]) {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let mut arena = [0i32; 16];
    let service = Service::new(Err(Error::PackageTruncated), &mut arena, BOARD, NoClock);
    let mut console = Console::new(service);
    let mut out = Sink(0);
    let _ = console.start(&mut out);
    for part in input.chunks(usize::from(chunk).max(1)) {
        let _ = console.feed(part, &mut out);
    }
}

/// Postcard's COBS decoding of requests (what the device parses) and responses (what the host
/// client parses); a decoded request re-encodes. Returns whether the bytes decoded as a request.
pub fn frame(data: &[u8]) -> bool {
    let mut copy = data.to_vec();
    let request = match postcard::from_bytes_cobs::<Request<'_>>(&mut copy) {
        Ok(req) => {
            let mut buf = [0u8; 4 * MAX_REQUEST_FRAME];
            let _ = encode_request(&req, &mut buf);
            true
        }
        Err(_) => false,
    };
    let mut copy = data.to_vec();
    let _ = postcard::from_bytes_cobs::<Response>(&mut copy);
    let _ = postcard::from_bytes::<Request<'_>>(data);
    request
}

/// The vocabulary every fuzzed checkpoint gets (its config.json must say `vocab_size` 12).
pub const CHECKPOINT_VOCAB: [&str; 12] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "a", "dog", "##s", "plays", ".",
];

/// The encoder checkpoint loader of the tools (`pith export`/`quantize`): `data` is a config.json
/// (its length first, two bytes little-endian) followed by a model.safetensors; with the fixed
/// [`CHECKPOINT_VOCAB`] beside them, the folder loads or is refused with an error, never a panic
/// (shapes that disagree with the config, non-finite weights, missing or extra layers), and what
/// loads exports to an fp32 ONNX graph. Returns whether it loaded.
pub fn checkpoint(data: &[u8]) -> bool {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let n = u16::from_le_bytes(*len) as usize;
    if rest.len() < n {
        return false;
    }
    let (config, weights) = rest.split_at(n);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    std::fs::write(d.join("config.json"), config).expect("writing config.json");
    std::fs::write(d.join("model.safetensors"), weights).expect("writing the weights");
    std::fs::write(d.join("vocab.txt"), CHECKPOINT_VOCAB.join("\n")).expect("writing vocab.txt");
    let Ok(ck) = pith_tools::checkpoint::Checkpoint::load(d) else {
        return false;
    };
    // A fuzzed config may declare a large model: export only small ones.
    if ck.config.hidden * ck.config.ffn * ck.config.layers <= 1 << 20 {
        let _ = pith_tools::onnx::export_fp32(&ck, &d.join("model.onnx"));
    }
    true
}
