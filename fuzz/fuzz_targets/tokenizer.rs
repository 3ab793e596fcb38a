//! The tokenizer: any text (and any vocabulary section) either tokenizes into in-range ids or is
//! refused. The first byte picks the settings, the rest is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pith_runtime::format::TokenizerConfig;
use pith_runtime::tokenizer::{build_vocab_section, Tokenizer};

const WORDS: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "a", "cat", "##s", "##ing", "play", "é", "中", "!",
    "##!", ",",
];

fuzz_target!(|data: &[u8]| {
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
    // A fuzzed vocabulary section too, when the bytes say so.
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
});
