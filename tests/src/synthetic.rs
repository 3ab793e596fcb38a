//! A tiny BERT package with random (seeded) weights: every section the engine reads, in the right
//! shapes, with scales chosen so values neither vanish nor all saturate. Its embeddings mean
//! nothing, but they are deterministic, so device and host must agree on them byte for byte.

use pith_runtime::fixed::{GELU16_KNOTS, GELU16_MAX, GELU16_MIN};
use pith_runtime::format::layout::{Scalars, GELU_LEN, LAYER_LINEARS, LAYER_SCALARS, LN_ROWS};
use pith_runtime::format::{
    Arch, DType, Header, ModelConfig, PackageWriter, Pooling, SectionKind, TokenizerConfig,
};
use pith_runtime::tokenizer::build_vocab_section;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

const HIDDEN: usize = 32;
const HEADS: usize = 4;
const FFN: usize = 64;
const LAYERS: usize = 2;
const POSITIONS: usize = 64;

/// Words of the vocabulary besides the specials; sentences built from them tokenize without [UNK].
pub const WORDS: &[&str] = &[
    "a", "the", "man", "woman", "dog", "cat", "is", "are", "playing", "guitar", "on", "stage",
    "while", "people", "watch", "him", "closely", "sits", "runs", "in", "park", "with", "ball",
    "red", "blue", "two", "children", "eat", "food", ".", ",", "##s", "##ing", "hello", "world",
    "why", "sky",
];

/// Seeded weights: the same seed builds the same package.
struct Rng(StdRng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(StdRng::seed_from_u64(seed))
    }

    fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.0.random_range(-127..=127)).collect()
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.random_range(lo..=hi)
    }
}

/// (multiplier, shift) pairs for `rows` channels.
fn rq(rng: &mut Rng, rows: usize, mult: (i64, i64), shift: i32) -> Vec<i32> {
    (0..rows)
        .flat_map(|_| [rng.range(mult.0, mult.1) as i32, shift])
        .collect()
}

/// LayerNorm rows: residual gain, residual offset, matmul gain, matmul offset (see `SectionKind::Ln1`).
fn ln(rng: &mut Rng) -> Vec<i64> {
    let mut v = Vec::with_capacity(4 * HIDDEN);
    for row in 0..4 {
        for _ in 0..HIDDEN {
            v.push(if row % 2 == 0 {
                rng.range(1 << 26, 1 << 27)
            } else {
                rng.range(-(1 << 33), 1 << 33)
            });
        }
    }
    v
}

/// The vocabulary in id order.
pub fn vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(WORDS.iter().map(|s| s.to_string()));
    v
}

/// Builds the package.
pub fn tiny_bert_package(seed: u64) -> Vec<u8> {
    tiny_package_with(seed, |_| {})
}

/// Builds the package with whatever `extra` adds to it (sections another model family has, or
/// broken ones) before it is finished.
pub fn tiny_package_with(seed: u64, extra: impl FnOnce(&mut PackageWriter)) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let vocab = vocab();
    let header = Header {
        name: heapless::String::try_from("tiny-random-bert").unwrap_or_default(),
        arch: Arch::Bert,
        model: ModelConfig {
            vocab_size: vocab.len() as u32,
            hidden: HIDDEN as u32,
            layers: LAYERS as u32,
            heads: HEADS as u32,
            ffn: FFN as u32,
            max_positions: POSITIONS as u32,
            pooling: Pooling::Mean,
            normalize: true,
        },
        tokenizer: TokenizerConfig {
            lowercase: true,
            strip_accents: true,
            split_cjk: true,
            cls_id: 2,
            sep_id: 3,
            unk_id: 1,
            pad_id: 0,
            max_len: POSITIONS as u32,
            max_chars_per_word: 100,
        },
        pool_scale: 0.01,
        score_step_log2: 4,
    };
    let mut w = PackageWriter::new(header);
    let section = build_vocab_section(&vocab);
    let n = section.len();
    w.add(SectionKind::Vocab, 0, DType::U8, 1, n, section);
    let exp: Vec<u16> = (0..256)
        .map(|d| (65535.0 * (-(d as f64) / 16.0).exp()).round() as u16)
        .collect();
    w.add_u16(SectionKind::ExpTable, 0, 1, exp.len(), &exp);
    let v = vocab.len();
    w.add_i8(SectionKind::WordEmb, 0, v, HIDDEN, &rng.i8s(v * HIDDEN));
    w.add_i32(
        SectionKind::WordEmbRq,
        0,
        v,
        2,
        &rq(&mut rng, v, (1 << 14, 1 << 15), 8),
    );
    w.add_i8(
        SectionKind::PosEmb,
        0,
        POSITIONS,
        HIDDEN,
        &rng.i8s(POSITIONS * HIDDEN),
    );
    w.add_i32(
        SectionKind::PosEmbRq,
        0,
        POSITIONS,
        2,
        &rq(&mut rng, POSITIONS, (1 << 13, 1 << 14), 8),
    );
    w.add_i64(SectionKind::EmbLn, 0, LN_ROWS, HIDDEN, &ln(&mut rng));
    use SectionKind::*;
    for l in 0..LAYERS as u16 {
        // The last layer runs its FFN at 16 bits (GeluTable16, FFN down in two passes).
        let wide = l as usize == LAYERS - 1;
        for s in LAYER_LINEARS {
            let (out, inp) = s.shape(HIDDEN, FFN);
            w.add_i8(s.w, l, out, inp, &rng.i8s(out * inp));
            let bias: Vec<i32> = (0..out)
                .map(|_| rng.range(-20_000, 20_000) as i32)
                .collect();
            w.add_i32(s.b, l, 1, out, &bias);
            // Accumulators reach ~127*127*inp; bring them back to roughly +-100 (+-6,400 into
            // the 16-bit GELU's input grid).
            let shift = if wide && s.w == W1 { 18 } else { 24 };
            w.add_i32(
                s.rq,
                l,
                out,
                2,
                &rq(&mut rng, out, (1 << 12, 1 << 13), shift),
            );
        }
        w.add_i64(Ln1, l, LN_ROWS, HIDDEN, &ln(&mut rng));
        w.add_i64(Ln2, l, LN_ROWS, HIDDEN, &ln(&mut rng));
        let gelu: Vec<i8> = (0..256i32)
            .map(|i| ((i - 128).max(-20) * 3 / 4) as i8)
            .collect();
        if wide {
            // A GELU-like ramp on the 15-bit output range, every knot in range.
            let knots: Vec<i32> = (0..GELU16_KNOTS as i32)
                .map(|k| ((k * 256 - 32768).max(-3000) * 2 / 5).clamp(GELU16_MIN, GELU16_MAX))
                .collect();
            w.add_i32(GeluTable16, l, 1, GELU16_KNOTS, &knots);
        } else {
            w.add_i8(GeluTable, l, 1, GELU_LEN, &gelu);
        }
        w.add_i32(
            LayerScalars,
            l,
            1,
            LAYER_SCALARS,
            &Scalars {
                score: (1, 10),
                context: (1 << 8, 16),
                gelu_zero: 0,
            }
            .to_words(),
        );
    }
    extra(&mut w);
    w.finish()
}

/// MPNet's relative position sections for the tiny package: each offset's bucket (32 of them,
/// `key − query + POSITIONS − 1`, in the pattern of MPNet's: exact near the query, coarser
/// further away, the other half for keys after it) and a random bias of up to ±8 logits in the
/// package's score steps.
pub fn add_rel_bias(w: &mut PackageWriter, seed: u64) {
    let mut rng = Rng::new(seed);
    let span = POSITIONS as i64 - 1;
    let buckets: Vec<u8> = (-span..=span)
        .map(|d| {
            let (side, n) = if d > 0 { (16, d) } else { (0, -d) };
            let b = if n < 8 { n } else { (8 + (n - 8) / 16).min(15) };
            (side + b) as u8
        })
        .collect();
    w.add(
        SectionKind::RelBuckets,
        0,
        DType::U8,
        1,
        buckets.len(),
        buckets,
    );
    // score_step_log2 = 4: 16 steps a logit.
    let bias: Vec<i32> = (0..32 * HEADS)
        .map(|_| rng.range(-128, 128) as i32)
        .collect();
    w.add_i32(SectionKind::RelBias, 0, 32, HEADS, &bias);
}
