//! Tier S, the static model: a synthetic package checks the arithmetic exactly; the real one
//! (models/tier-s/, quantized by `pith quantize`) checks size, RAM, determinism and quality.

use pith_runtime::format::{
    Arch, Header, ModelConfig, PackageWriter, Pooling, SectionKind, TokenizerConfig,
};
use pith_runtime::tokenizer::build_vocab_section;
use pith_runtime::{cosine_i8, Error, Model};
use pith_tests::sts::{sick_dev, spearman};

/// The package must fit this (the Tier S flash budget, vocabulary included).
const MAX_PACKAGE_BYTES: usize = 512 * 1024;
/// Embedding RAM budget (arena at the model's maximum tokens).
const MAX_ARENA_BYTES: usize = 32 * 1024;
/// SICK dev Spearman (percent) of the committed model measured by this runtime (models/tier-s.md);
/// the test allows 0.5 below it so a regression is caught.
const REPORTED_SICK_SPEARMAN: f64 = 71.07;

fn tokenizer_config(vocab: &[&str]) -> TokenizerConfig {
    let id = |t: &str| vocab.iter().position(|v| *v == t).unwrap() as u32;
    TokenizerConfig {
        lowercase: true,
        strip_accents: true,
        split_cjk: true,
        cls_id: id("[CLS]"),
        sep_id: id("[SEP]"),
        unk_id: id("[UNK]"),
        pad_id: id("[PAD]"),
        max_len: 16,
        max_chars_per_word: 100,
    }
}

const VOCAB: [&str; 8] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "cat", "dog", "##s", "a"];

/// A 4-dimensional static package over a tiny vocabulary; rows chosen so sums are easy to check.
fn synthetic() -> Vec<u8> {
    let rows: [[i8; 4]; 8] = [
        [0, 0, 0, 0],
        [4, 4, 4, 4],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [127, 0, 0, -127],
        [0, 127, 0, 64],
        [0, 0, 127, 0],
        [10, 10, 10, 10],
    ];
    // cat and dog at scale 1, ##s at 1/2, the rest at 1/4 of the pooling unit (m = 2^30, shift 30 = 1.0).
    let rq = [
        (0, 0),
        (1 << 30, 32),
        (0, 0),
        (0, 0),
        (1 << 30, 30),
        (1 << 30, 30),
        (1 << 30, 31),
        (1 << 30, 32),
    ];
    static_package(&rows.concat(), &rq, |w, v| {
        w.add_i8(SectionKind::StaticEmb, 0, 8, 4, v)
    })
}

/// The synthetic vocabulary at dim 4 with `rows` (8 × 4 values, row-major) and `rq`, the table
/// written by `table`.
fn static_package(
    rows: &[i8],
    rq: &[(i32, i32); 8],
    table: impl FnOnce(&mut PackageWriter, &[i8]),
) -> Vec<u8> {
    let vocab = VOCAB;
    let header = Header {
        name: heapless::String::try_from("synthetic-static").unwrap(),
        arch: Arch::Static,
        model: ModelConfig {
            vocab_size: vocab.len() as u32,
            hidden: 4,
            layers: 0,
            heads: 0,
            ffn: 0,
            max_positions: 16,
            pooling: Pooling::Mean,
            normalize: true,
        },
        tokenizer: tokenizer_config(&vocab),
        pool_scale: 1.0,
        score_step_log2: 0,
    };
    let mut w = PackageWriter::new(header);
    let section = build_vocab_section(&vocab.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    w.add(
        SectionKind::Vocab,
        0,
        pith_runtime::format::DType::U8,
        1,
        section.len(),
        section,
    );
    table(&mut w, rows);
    w.add_i32(
        SectionKind::StaticEmbRq,
        0,
        8,
        2,
        &rq.iter().flat_map(|&(m, s)| [m, s]).collect::<Vec<_>>(),
    );
    w.finish()
}

fn embed(model: &Model<'_>, text: &str) -> Vec<i8> {
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut out = vec![0i8; model.dim()];
    model.embed(text, &mut arena, &mut out).unwrap();
    out
}

#[test]
fn synthetic_static_sums_rows_exactly() {
    let bytes = synthetic();
    let model = Model::new(&bytes).unwrap();
    assert_eq!(model.dim(), 4);
    assert_eq!(model.arena_words(16), 16 + 4, "ids + one accumulator row");
    // "cats": [CLS] cat ##s [SEP] = (127, 0, 0, -127) + (0, 0, 63.5, 0) -> scaled so max is 127.
    assert_eq!(embed(&model, "cats"), vec![127, 0, 64, -127]);
    // Order does not matter (bag of tokens) and repeated text scales away.
    assert_eq!(embed(&model, "cat dog"), embed(&model, "dog cat"));
    assert_eq!(embed(&model, "cat dog"), embed(&model, "cat dog cat dog"));
    // Only zero rows: a zero vector, not a division by zero.
    assert_eq!(embed(&model, ""), vec![0, 0, 0, 0]);
    // Unknown words use the [UNK] row.
    assert_eq!(embed(&model, "zebra"), vec![127, 127, 127, 127]);
}

/// The same table at 4 bits (`StaticEmb4`): every value in −7..=7, so the int8 package with the
/// same values and requantization must give the same bytes for every text.
#[test]
fn four_bit_table_embeds_like_the_same_values_at_eight_bits() {
    let rows: [i8; 32] = [
        0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, -3, -7, 0, 7, 0, 5, -1, -2, 6, 0, 3,
        3, -3, 3,
    ];
    let rq = [
        (0, 0),
        (1 << 30, 28),
        (0, 0),
        (0, 0),
        (1 << 30, 26),
        (1_518_500_250, 27),
        (1 << 30, 29),
        (1_073_741_823, 26),
    ];
    let i8s = static_package(&rows, &rq, |w, v| {
        w.add_i8(SectionKind::StaticEmb, 0, 8, 4, v)
    });
    let i4s = static_package(&rows, &rq, |w, v| {
        w.add_i4(SectionKind::StaticEmb4, 0, 8, 4, v)
    });
    assert!(i4s.len() < i8s.len(), "the 4-bit table is half the bytes");
    let (m8, m4) = (Model::new(&i8s).unwrap(), Model::new(&i4s).unwrap());
    for text in [
        "cats",
        "a dog",
        "zebra",
        "",
        "cat dog ##s a a a",
        "dogs and cats",
    ]
    .into_iter()
    .map(String::from)
    .chain(pith_tests::hostile::texts())
    {
        assert_eq!(embed(&m8, &text), embed(&m4, &text), "{text:?}");
    }
    assert_ne!(embed(&m4, "cat"), embed(&m4, "dog"));
}

#[test]
fn synthetic_static_rejects_bad_packages_and_buffers() {
    let bytes = synthetic();
    let model = Model::new(&bytes).unwrap();
    let mut small = vec![0i32; model.arena_words(1)];
    let mut out = [0i8; 4];
    assert_eq!(
        model.embed("cat", &mut small, &mut out),
        Err(Error::ArenaTooSmall)
    );
    let mut arena = vec![0i32; model.arena_words(16)];
    assert_eq!(
        model.embed("cat", &mut arena, &mut [0i8; 3]),
        Err(Error::OutputSizeMismatch)
    );
    // Every truncation and a flipped byte anywhere must be refused without panicking.
    for cut in (0..bytes.len()).step_by(7) {
        assert!(Model::new(&bytes[..cut]).is_err());
    }
    for at in (0..bytes.len()).step_by(5) {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        let _ = Model::new(&b).map(|m| embed(&m, "cat dog ##s"));
    }
}

/// Writes the Tier S package from the committed checkpoint with the release CLI.
fn quantize(tag: &str) -> Vec<u8> {
    pith_tests::cli::quantize_committed("tier-s", tag)
}

#[test]
fn tier_s_package_fits_and_keeps_its_quality() {
    let bytes = quantize("a");
    assert!(
        bytes.len() <= MAX_PACKAGE_BYTES,
        "package is {} bytes, budget {MAX_PACKAGE_BYTES}",
        bytes.len()
    );
    assert_eq!(
        bytes,
        quantize("b"),
        "quantizing twice must give the same bytes"
    );
    let model = Model::new(&bytes).unwrap();
    assert_eq!(model.header().arch, Arch::Static);
    let arena_bytes = model.arena_words(model.max_tokens()) * 4;
    assert!(arena_bytes <= MAX_ARENA_BYTES, "arena {arena_bytes} bytes");

    for text in pith_tests::hostile::texts() {
        // Hostile text embeds without error, to the same bytes every time.
        assert_eq!(embed(&model, &text), embed(&model, &text), "{text:?}");
    }
    assert_eq!(
        embed(&model, "A man is playing a guitar."),
        embed(&model, "A man is playing a guitar.")
    );

    let (mut gold, mut pred) = (Vec::new(), Vec::new());
    for (score, a, b) in sick_dev() {
        gold.push(score);
        pred.push(cosine_i8(&embed(&model, &a), &embed(&model, &b)) as f64);
    }
    let rho = spearman(&gold, &pred) * 100.0;
    eprintln!(
        "tier-s: {} bytes, arena {arena_bytes} bytes, Model struct {} bytes, SICK dev Spearman {rho:.2}",
        bytes.len(),
        std::mem::size_of::<Model<'_>>()
    );
    assert!(
        rho >= REPORTED_SICK_SPEARMAN - 0.5,
        "SICK dev Spearman {rho:.2} fell below {REPORTED_SICK_SPEARMAN} - 0.5"
    );
}

/// A small random static checkpoint with a head, written where `pith quantize` reads one;
/// `config_extra` is merged into its config.json after the head is added.
fn head_checkpoint(dir: &std::path::Path, config_extra: serde_json::Value) {
    let mut vocab: Vec<String> = VOCAB.iter().map(|s| s.to_string()).collect();
    for w in "the man woman is not playing guitar piano runs on beach two people".split(' ') {
        vocab.push(w.to_string());
    }
    let (v, dim) = (vocab.len(), 16);
    // xorshift: reproducible values without a dependency.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut table: Vec<f32> = (0..v * dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        })
        .collect();
    // [PAD], [UNK], [CLS], [SEP] pool as nothing, as `pith distill` writes them.
    table[..4 * dim].fill(0.0);
    let tb: Vec<u8> = table.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![v, dim], &tb).unwrap();
    let st = safetensors::serialize([("embeddings", view)], None).unwrap();
    std::fs::write(dir.join("embeddings.safetensors"), st).unwrap();
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"arch": "static", "dim": dim}).to_string(),
    )
    .unwrap();
    pith_tests::static_head::add_random_head(dir, 32, 2.0, 5).unwrap();
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (k, val) in config_extra.as_object().unwrap() {
        config[k] = val.clone();
    }
    std::fs::write(path, config.to_string()).unwrap();
}

/// The head (two linears on the pooled vector, run by the encoder's kernels) gives the float
/// model's vectors, and matters: without it they would be measurably different.
#[test]
fn a_head_embeds_like_its_float_model() {
    use pith_tools::quant::static_model::{write_package, StaticCheckpoint};
    let dir = tempfile::tempdir().unwrap();
    head_checkpoint(dir.path(), serde_json::json!({}));
    let ck = StaticCheckpoint::load(dir.path()).unwrap();
    let bytes = write_package(&ck, "head-test").unwrap();
    let model = Model::new(&bytes).unwrap();
    assert_eq!(model.header().model.ffn, 32);
    let without = StaticCheckpoint {
        head: None,
        ..StaticCheckpoint::load(dir.path()).unwrap()
    };
    let cos = |a: &[f32], b: &[f32]| {
        let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        d / (a.iter().map(|x| x * x).sum::<f32>() * b.iter().map(|x| x * x).sum::<f32>()).sqrt()
    };
    let mut apart = 1f32;
    for text in [
        "the man is playing guitar",
        "the man is not playing guitar",
        "two people runs on the beach",
        "a woman is playing piano",
        "a dog",
        "cats and dogs",
    ] {
        let mut ids = vec![0u32; model.max_tokens()];
        let n = model.tokenizer().encode(text, &mut ids).unwrap();
        let q: Vec<f32> = embed(&model, text).iter().map(|&x| x as f32).collect();
        let float = ck.embed_ids(&ids[..n]);
        let c = cos(&q, &float);
        assert!(c >= 0.99, "{text:?}: cosine {c} to the float model");
        apart = apart.min(cos(&float, &without.embed_ids(&ids[..n])));
    }
    assert!(apart < 0.98, "the head changes no vector by much ({apart})");
}

#[test]
fn a_head_without_its_grid_or_tensors_is_refused_naming_the_file() {
    use pith_tools::quant::static_model::StaticCheckpoint;
    let dir = tempfile::tempdir().unwrap();
    head_checkpoint(dir.path(), serde_json::json!({"head_z_max": null}));
    let e = StaticCheckpoint::load(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("config.json") && e.contains("head_z_max"), "{e}");
    head_checkpoint(
        dir.path(),
        serde_json::json!({"head_z_max": 2.0, "head": 8}),
    );
    let e = format!("{:#}", StaticCheckpoint::load(dir.path()).err().unwrap());
    assert!(
        e.contains("embeddings.safetensors") && e.contains("head.up.weight"),
        "{e}"
    );
}

#[test]
fn a_checkpoint_without_its_table_is_refused_naming_the_file() {
    use pith_tools::quant::static_model::StaticCheckpoint;
    let dir = tempfile::tempdir().unwrap();
    head_checkpoint(dir.path(), serde_json::json!({}));
    let tb = vec![0u8; 4 * 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4, 4], &tb).unwrap();
    let st = safetensors::serialize([("table", view)], None).unwrap();
    std::fs::write(dir.path().join("embeddings.safetensors"), st).unwrap();
    let e = format!("{:#}", StaticCheckpoint::load(dir.path()).err().unwrap());
    assert!(
        e.contains("embeddings.safetensors") && e.contains("no `embeddings`"),
        "{e}"
    );
}
