//! The no_std tokenizer against Hugging Face `tokenizers` on the real all-MiniLM-L6-v2 vocabulary:
//! every SNLI dev sentence, hand-picked tricky inputs, and seeded random Unicode strings.
//!
//! Needs the model (./scripts/fetch-model.sh) and data/. Here and not in the runtime crate, so
//! the runtime's cross-built tests (aarch64 under QEMU) need not build `tokenizers`.

use std::path::PathBuf;

use pith_runtime::format::TokenizerConfig;
use pith_runtime::tokenizer::{build_vocab_section, Tokenizer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::{Tokenizer as HfTokenizer, TruncationParams};

const MAX_LEN: usize = 256;

fn root() -> PathBuf {
    pith_tools::defaults::repo_root().unwrap()
}

fn model_dir() -> PathBuf {
    let dir = root().join("models/cache/all-MiniLM-L6-v2");
    assert!(
        dir.join("vocab.txt").exists(),
        "{} missing: run ./scripts/fetch-model.sh",
        dir.display()
    );
    dir
}

fn config() -> TokenizerConfig {
    TokenizerConfig {
        lowercase: true,
        strip_accents: true,
        split_cjk: true,
        cls_id: 101,
        sep_id: 102,
        unk_id: 100,
        pad_id: 0,
        max_len: MAX_LEN as u32,
        max_chars_per_word: 100,
    }
}

fn vocab_section() -> Vec<u8> {
    let text = std::fs::read_to_string(model_dir().join("vocab.txt")).unwrap();
    let tokens: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(tokens.len(), 30522);
    build_vocab_section(&tokens)
}

fn hf() -> HfTokenizer {
    let mut t = HfTokenizer::from_file(model_dir().join("tokenizer.json")).unwrap();
    // The file bakes in padding and truncation to 128.
    t.with_padding(None);
    t.with_truncation(Some(TruncationParams {
        max_length: MAX_LEN,
        ..Default::default()
    }))
    .unwrap();
    t
}

fn hf_ids(hf: &HfTokenizer, text: &str) -> Vec<u32> {
    hf.encode(text, true).unwrap().get_ids().to_vec()
}

fn ours(tok: &Tokenizer<'_>, text: &str) -> Vec<u32> {
    let mut ids = [0u32; MAX_LEN + 8];
    let n = tok.encode(text, &mut ids).unwrap();
    ids[..n].to_vec()
}

/// Describes a mismatch with the tokens on both sides.
fn diff(tok: &Tokenizer<'_>, text: &str, want: &[u32], got: &[u32]) -> String {
    let show = |ids: &[u32]| {
        ids.iter()
            .map(|&i| tok.token(i).unwrap_or("?").to_string())
            .collect::<Vec<_>>()
    };
    let cps: Vec<String> = text
        .chars()
        .take(40)
        .map(|c| format!("{:04X}", c as u32))
        .collect();
    format!(
        "text {text:?} ({})\n  hf   {:?}\n  ours {:?}",
        cps.join(" "),
        show(want),
        show(got)
    )
}

fn assert_all_match<'t>(
    tok: &Tokenizer<'_>,
    hf: &HfTokenizer,
    texts: impl IntoIterator<Item = &'t str>,
) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for text in texts {
        n += 1;
        let (want, got) = (hf_ids(hf, text), ours(tok, text));
        if want != got {
            failures.push(diff(tok, text, &want, &got));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} differ:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    n
}

#[test]
fn every_snli_dev_sentence_matches() {
    let path = root().join("data/calib/snli-dev-sentences.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = vocab_section();
    let tok = Tokenizer::new(&section, config()).unwrap();
    let n = assert_all_match(&tok, &hf(), text.lines());
    assert_eq!(n, text.lines().count());
    assert!(n >= 13086, "only {n} lines");
    println!("{n} SNLI dev sentences: identical ids");
}

fn tricky_inputs() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "   \t\n\r  ",
        "\u{A0}\u{2003}\u{3000}\u{202F}",
        "\u{200B}\u{FEFF}",
        "café naïve Ångström Zürich façade coöperate résumé",
        "CAFÉ NAÏVE ÅNGSTRÖM ZÜRICH",
        "e\u{301}te\u{301} n\u{303}o a\u{30A}\u{301}",
        "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ！？",
        "中文 日本語 한국어 中文abc漢字かなカナ",
        "我爱北京天安门。你好，世界！",
        "emoji 😀🎉👍🏽 👨‍👩‍👧 flags 🇫🇷",
        "Ελληνικά ΣΊΣΥΦΟΣ ςσΣ Кириллица ЁЛКА ёлка",
        "İstanbul ıIiİ DİYARBAKIR",
        "Straße STRASSE ß ẞ ǅ ǈ",
        "zero\u{200D}width\u{200C}joiner",
        "nbsp\u{A0}between\u{2009}thin\u{3000}ideographic\u{1680}ogham",
        "control\u{0}\u{1}\u{7}\u{8}\u{B}\u{C}\u{1B}\u{7F}\u{85}\u{9F}chars",
        "replacement \u{FFFD} char \u{FFFD}\u{FFFD}",
        "private \u{E000}\u{E001}\u{F8FF}\u{F0000}\u{F0001}",
        "?!...,,;;::---___(([[{{}}]]))\"\"''``~~^^",
        "well...really?!? yes!!! no??? (maybe) [sure] {ok}",
        "$100 +5 <tag> a=b c|d 50% #hash @at &amp; *star* ~tilde^",
        "##ing ## ### ##a a##b #",
        "[CLS] literal [SEP] tokens [UNK] [PAD] [MASK] [cls] [Cls] [CLS][SEP] x[CLS]y [ CLS ]",
        "[[CLS]] [CLS [CLS]] [SEP[SEP]]",
        "don't can't it's O'Neil's rock'n'roll",
        "e-mail co-operate state-of-the-art 3.14 1,000,000 10:30 a/b",
        "http://example.com/path?q=1&r=2#frag user@example.com",
        "tab\tseparated\tvalues\nnew\nlines\r\nwindows",
        "ǆemal ǲ Ǆ ﬁ ﬂ ﬃ Ⅻ ① ㎏ ™",
        "combining ̈ ̈ ̈alone\u{301}",
        "\u{301}\u{302}\u{303}",
        "Hebrew שָׁלוֹם Arabic مَرْحَبًا Devanagari नमस्ते हिन्दी Thai สวัสดี",
        "Vietnamese Tiếng Việt Phở Hà Nội",
        "Polish Łódź Źdźbło Czech Příliš žluťoučký kůň",
        "math ∑∫√∞ ≠≤≥ × ÷ ± €£¥₹ ©®°",
        "musical \u{1D15F}\u{1D160}\u{1D16D}\u{1D165}",
        "ancient 𐍈 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝",
        "CJK ext 𠀀𪜀 compat 豈 更 \u{2F800}",
        "Hangul jamo ᄀᄁ ᅡ compat ㄱㅏ",
        "a\u{0B48}b\u{0C48}c \u{0958}\u{09CB}",
        "one\u{2028}two\u{2029}three\u{0085}four\u{000B}five\u{000C}six",
        "\u{1FEF}quote \u{037E}question \u{0387}teleia \u{2329}angle\u{232A}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("a".repeat(99));
    v.push("a".repeat(100));
    v.push("a".repeat(101));
    v.push("é".repeat(100));
    v.push("é".repeat(101));
    v.push(format!(
        "short {} words",
        "supercalifragilisticexpialidocious".repeat(4)
    ));
    v.push("x".repeat(5000));
    v.push("antidisestablishmentarianism ".repeat(80));
    v.push(
        (0..400)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    v.push("The quick brown fox jumps over the lazy dog. ".repeat(40));
    v.push("中".repeat(300));
    v.push("!".repeat(300));
    v.push("[CLS]".repeat(300));
    v.push(format!("{}unaffable", "a ".repeat(253)));
    v.push(format!("{}unaffable", "a ".repeat(252)));
    v.push(format!("{}zzqxjkvw", "a ".repeat(253)));
    v
}

#[test]
fn tricky_inputs_match() {
    let section = vocab_section();
    let tok = Tokenizer::new(&section, config()).unwrap();
    let inputs = tricky_inputs();
    let n = assert_all_match(&tok, &hf(), inputs.iter().map(String::as_str));
    println!("{n} tricky inputs: identical ids");
}

#[test]
fn truncation_to_any_buffer_matches_hf_prefix() {
    let section = vocab_section();
    let tok = Tokenizer::new(&section, config()).unwrap();
    let hf = hf();
    let text = "Unaffable café-owners don't 'really' like 中文 tokenizers!!! ".repeat(20);
    let full = hf_ids(&hf, &text);
    assert_eq!(full.len(), MAX_LEN);
    for room in 0..MAX_LEN + 3 {
        let mut ids = vec![u32::MAX; room];
        let n = tok.encode(&text, &mut ids).unwrap();
        let want: Vec<u32> = match room.min(MAX_LEN) {
            0 => vec![],
            1 => vec![101],
            r => full[..r - 1].iter().copied().chain([102]).collect(),
        };
        assert_eq!(&ids[..n], &want[..], "room {room}");
        assert!(
            ids[n..].iter().all(|&i| i == u32::MAX),
            "room {room}: wrote past the count"
        );
    }
}

/// Seeded texts, so a failure replays exactly.
struct Gen(StdRng);

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen(StdRng::seed_from_u64(seed))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }

    /// A char from a mix of ranges where tokenizers differ in practice.
    fn char(&mut self) -> char {
        const RANGES: &[(u32, u32)] = &[
            (0x20, 0x7E),
            (0x20, 0x7E),
            (0x20, 0x7E),
            (0x0, 0x20),
            (0x80, 0x24F),
            (0x300, 0x36F),
            (0x370, 0x52F),
            (0x590, 0x6FF),
            (0x900, 0xDFF),
            (0xE00, 0xFFF),
            (0x1100, 0x11FF),
            (0x1AB0, 0x1DFF),
            (0x1E00, 0x1FFF),
            (0x2000, 0x206F),
            (0x2070, 0x2BFF),
            (0x3000, 0x30FF),
            (0x3400, 0x4DBF),
            (0x4E00, 0x9FFF),
            (0xAC00, 0xD7A3),
            (0xE000, 0xF8FF),
            (0xF900, 0xFAFF),
            (0xFB00, 0xFFFF),
            (0x10000, 0x1FFFF),
            (0x1D100, 0x1D1FF),
            (0x1F300, 0x1FAFF),
            (0x20000, 0x2FFFF),
            (0x30000, 0x3FFFF),
            (0xE0000, 0xE01EF),
            (0xF0000, 0x10FFFF),
        ];
        loop {
            let (lo, hi) = RANGES[self.below(RANGES.len() as u64) as usize];
            if let Some(c) = char::from_u32(lo + self.below(u64::from(hi - lo + 1)) as u32) {
                return c;
            }
        }
    }

    fn text(&mut self) -> String {
        let len = self.below(40);
        let mut s = String::new();
        for _ in 0..len {
            match self.below(12) {
                0 => s.push(' '),
                1 => s.push_str(["[CLS]", "[SEP]", "[MASK]", "##", "[UNK"][self.below(5) as usize]),
                2 => {
                    s.push_str(["the", "ing", "un", "able", "café", "中文"][self.below(6) as usize])
                }
                _ => s.push(self.char()),
            }
        }
        s
    }
}

#[test]
fn random_unicode_strings_match() {
    let section = vocab_section();
    let tok = Tokenizer::new(&section, config()).unwrap();
    let hf = hf();
    let mut rng = Gen::new(0x5EED_F00D);
    let texts: Vec<String> = (0..20_000).map(|_| rng.text()).collect();
    let n = assert_all_match(&tok, &hf, texts.iter().map(String::as_str));
    println!("{n} random strings: identical ids");
}

#[test]
fn cased_configuration_matches_hf_cased_pipeline() {
    // The same vocabulary under lowercase = false, strip_accents = false (a cased BERT's settings),
    // against HF's pipeline with the normalizer's flags changed the same way.
    let section = vocab_section();
    let cfg = TokenizerConfig {
        lowercase: false,
        strip_accents: false,
        ..config()
    };
    let tok = Tokenizer::new(&section, cfg).unwrap();
    let mut hf = hf();
    hf.with_normalizer(Some(BertNormalizer::new(true, true, Some(false), false)))
        .unwrap();
    assert_eq!(ours(&tok, "Café"), hf_ids(&hf, "Café"));
    assert_ne!(
        hf_ids(&hf, "Café"),
        hf_ids(&self::hf(), "Café"),
        "cased settings not applied"
    );
    let mut rng = Gen::new(0xCA5E);
    let mut texts: Vec<String> = (0..2000).map(|_| rng.text()).collect();
    texts.extend(tricky_inputs());
    let n = assert_all_match(&tok, &hf, texts.iter().map(String::as_str));
    println!("{n} strings, cased settings: identical ids");
}
