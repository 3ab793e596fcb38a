//! The response bank's lexicon: terms as the tokenizer gives them, the IDF and layout round trip,
//! integer lexical scores against a float reference, the mixed search against the plain search
//! plus the weighted lexical score, and refusal of damaged lexicons without panics.

use pith_runtime::format::TokenizerConfig;
use pith_runtime::kb::lexicon::{self, Context, DECAY, IDF_ONE, MAX_TERMS, TERM_TOKENS};
use pith_runtime::kb::{Bank, BankEntry, BankOptions, BankWriter, Hit, Index, SCORE_ONE};
use pith_runtime::tokenizer::{build_vocab_section, Tokenizer};
use pith_runtime::Error;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VOCAB: usize = 300;

/// `[PAD] [UNK] [CLS] [SEP] [MASK] w0 .. w294`: every `wN` one token.
fn vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend((0..VOCAB - 5).map(|i| format!("w{i}")));
    v
}

fn config() -> TokenizerConfig {
    TokenizerConfig {
        lowercase: true,
        strip_accents: true,
        split_cjk: true,
        cls_id: 2,
        sep_id: 3,
        unk_id: 1,
        pad_id: 0,
        max_len: 512,
        max_chars_per_word: 100,
    }
}

fn terms_of(t: &Tokenizer<'_>, text: &str) -> Vec<u16> {
    let mut scratch = vec![0u32; TERM_TOKENS];
    let mut out = [0u16; MAX_TERMS];
    let n = lexicon::terms(t, text, &mut scratch, &mut out).unwrap();
    out[..n].to_vec()
}

/// Terms are the distinct non-special ids of the first [`TERM_TOKENS`] tokens, the first
/// [`MAX_TERMS`] of them in reading order, sorted.
#[test]
fn terms_are_the_first_distinct_wordpieces_sorted() {
    let section = build_vocab_section(&vocab());
    let t = Tokenizer::new(&section, config()).unwrap();
    assert_eq!(terms_of(&t, "w3 w1 w3 [SEP] zzz w0"), vec![5, 6, 8]);
    assert_eq!(terms_of(&t, ""), Vec::<u16>::new());
    // 100 distinct words: the first 64 of them count.
    let text: Vec<String> = (0..100).rev().map(|i| format!("w{i}")).collect();
    let want: Vec<u16> = (36..100).map(|i| i + 5).collect();
    assert_eq!(terms_of(&t, &text.join(" ")), want);
    // Words past the first TERM_TOKENS tokens are not read.
    let long = format!("{} w7", ["w1"; TERM_TOKENS].join(" "));
    assert_eq!(terms_of(&t, &long), vec![6]);
    // Too little scratch is an error, not a shorter read.
    let mut small = [0u32; TERM_TOKENS - 1];
    let mut out = [0u16; MAX_TERMS];
    assert_eq!(
        lexicon::terms(&t, "w1", &mut small, &mut out),
        Err(Error::ArenaTooSmall)
    );
}

fn entries(n: usize, dim: usize, rng: &mut StdRng) -> (Vec<BankEntry>, Vec<Vec<u16>>) {
    let mut terms = Vec::new();
    let e = (0..n)
        .map(|i| {
            let k = rng.random_range(0..12);
            let mut t: Vec<u16> = (0..k).map(|_| rng.random_range(5..40)).collect();
            t.sort_unstable();
            t.dedup();
            terms.push(t);
            BankEntry {
                id: format!("{i}"),
                question: format!("q{i}"),
                answer: String::new(),
                question_vector: (0..dim).map(|_| rng.random_range(-127..=127)).collect(),
                answer_vector: vec![1; dim],
            }
        })
        .collect();
    (e, terms)
}

fn write(entries: &[BankEntry], terms: &[Vec<u16>], weight: i32) -> Vec<u8> {
    let dim = entries[0].question_vector.len();
    let mut w = BankWriter::new(
        dim,
        BankOptions {
            question_bits: 8,
            ..BankOptions::default()
        },
    );
    for e in entries {
        w.push(e.clone());
    }
    w.lexicon(terms.to_vec(), VOCAB, weight);
    w.finish().unwrap()
}

/// The float lexical score: IDF-weighted cosine, query weights summed over turns by DECAY.
fn reference(idf: &dyn Fn(u16) -> f64, turns: &[Vec<u16>], doc: &[u16]) -> f64 {
    let mut q = std::collections::BTreeMap::<u16, f64>::new();
    for (age, t) in turns.iter().enumerate() {
        for &x in t {
            *q.entry(x).or_default() += DECAY[age] as f64 * idf(x);
        }
    }
    let dot: f64 = doc.iter().map(|x| q.get(x).unwrap_or(&0.0) * idf(*x)).sum();
    let nq = q.values().map(|v| v * v).sum::<f64>().sqrt();
    let nd = doc.iter().map(|&x| idf(x).powi(2)).sum::<f64>().sqrt();
    if nq == 0.0 || nd == 0.0 {
        0.0
    } else {
        dot / (nq * nd)
    }
}

#[test]
fn lexicon_round_trips_and_scores_match_the_float_reference() {
    let mut rng = StdRng::seed_from_u64(11);
    let (e, terms) = entries(40, 16, &mut rng);
    let weight = SCORE_ONE * 3 / 2;
    let bytes = write(&e, &terms, weight);
    let bank = Bank::new_checked(&bytes).unwrap();
    let l = bank.lexicon().unwrap();
    assert_eq!((l.weight(), l.vocab_len()), (weight, VOCAB));
    for (i, t) in terms.iter().enumerate() {
        assert_eq!(l.entry_terms(i).collect::<Vec<_>>(), *t);
    }
    assert_eq!(l.entry_terms(40).count(), 0);
    // The stored IDF is the entries' own, in 1/16 units.
    let n = terms.len() as f64;
    for x in 0..VOCAB as u16 {
        let df = terms.iter().filter(|t| t.contains(&x)).count() as f64;
        let want = ((((1.0 + n) / (1.0 + df)).ln() + 1.0) * IDF_ONE as f64).round();
        assert_eq!(l.idf(x) as f64, want.clamp(1.0, 255.0), "idf of {x}");
    }
    assert_eq!(l.idf(VOCAB as u16), 0);
    let idf = |x: u16| l.idf(x) as f64;
    for round in 0..200 {
        let turns: Vec<Vec<u16>> = (0..rng.random_range(1..=8))
            .map(|_| {
                let mut t: Vec<u16> = (0..rng.random_range(0..10))
                    .map(|_| rng.random_range(5..45))
                    .collect();
                t.sort_unstable();
                t.dedup();
                t
            })
            .collect();
        let refs: Vec<&[u16]> = turns.iter().map(Vec::as_slice).collect();
        let c = Context::new(l, &refs);
        for (i, t) in terms.iter().enumerate() {
            let got = c.entry_score(i);
            let want = reference(&idf, &turns, t) * SCORE_ONE as f64;
            assert!(
                (got as f64 - want).abs() <= 2.0,
                "round {round}, entry {i}: {got} vs {want}"
            );
            assert_eq!(got, c.score(t.iter().copied()));
        }
        // The mixed search ranks by the plain score plus the weighted lexical score.
        let q: Vec<i8> = (0..16).map(|_| rng.random_range(-127..=127)).collect();
        let w = rng.random_range(0..=2 * SCORE_ONE);
        let mut hits = [Hit::default(); 40];
        assert_eq!(
            bank.search_mixed(&q, Some((&c, w)), Index::Question, &mut hits),
            40
        );
        let mut want: Vec<(i32, usize)> = (0..40)
            .map(|i| {
                let s = bank.score(&q, i, Index::Question).unwrap();
                (lexicon::mix(s, c.entry_score(i), w), i)
            })
            .collect();
        want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let got: Vec<(i32, usize)> = hits.iter().map(|h| (h.score, h.index)).collect();
        assert_eq!(got, want, "round {round}");
    }
    // A weight of zero, or no context, is the plain search.
    let q = vec![3i8; 16];
    let c = Context::new(l, &[&[5, 6][..]]);
    let (mut a, mut b) = ([Hit::default(); 5], [Hit::default(); 5]);
    bank.search(&q, Index::Question, &mut a);
    bank.search_mixed(&q, Some((&c, 0)), Index::Question, &mut b);
    assert_eq!(a, b);
}

fn reseal(b: &mut [u8]) {
    let total = u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize;
    let crc = pith_runtime::format::CHECKSUM.checksum(&b[..total - 4]);
    b[total - 4..total].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn damaged_lexicons_are_refused_without_panic() {
    let mut rng = StdRng::seed_from_u64(5);
    let (e, terms) = entries(6, 4, &mut rng);
    let bytes = write(&e, &terms, SCORE_ONE);
    Bank::new_checked(&bytes).unwrap();
    // The lexicon ends the body: 8 bytes of sizes, the IDF, the ends, the terms.
    let m: usize = terms.iter().map(Vec::len).sum();
    let lex_at = bytes.len() - 4 - (8 + VOCAB + 4 * 6 + 2 * m);
    assert_eq!(
        u32::from_le_bytes(bytes[lex_at..lex_at + 4].try_into().unwrap()) as usize,
        VOCAB
    );
    for cut in 0..bytes.len() {
        assert!(Bank::new_checked(&bytes[..cut]).is_err(), "cut to {cut}");
    }
    for at in lex_at.saturating_sub(48)..bytes.len() - 4 {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[at] ^= flip;
            reseal(&mut b);
            if let Ok(bank) = Bank::new_checked(&b) {
                let l = bank.lexicon();
                if let Some(l) = l {
                    let c = Context::new(l, &[&[5, 9, 39][..], &[u16::MAX][..]]);
                    let mut hits = [Hit::default(); 3];
                    bank.search_mixed(&[1; 4], Some((&c, l.weight())), Index::Question, &mut hits);
                    for i in 0..=bank.len() {
                        let _ = (c.entry_score(i), l.entry_terms(i).count());
                    }
                }
            }
        }
    }
    let sealed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        edit(&mut b);
        reseal(&mut b);
        Bank::new_checked(&b).err()
    };
    let terms_at = lex_at + 8 + VOCAB + 4 * 6;
    let first = terms.iter().position(|t| t.len() >= 2).unwrap();
    let at = terms_at + 2 * terms[..first].iter().map(Vec::len).sum::<usize>();
    // Terms out of order, a term past the vocabulary, an unknown flag, a weight without lexicon.
    assert_eq!(
        sealed(&|b| {
            let (x, y) = (b[at], b[at + 2]);
            (b[at], b[at + 2]) = (y, x);
            b[at + 1] = b[at + 3];
        }),
        Some(Error::BankCorrupt)
    );
    assert_eq!(
        sealed(&|b| b[at..at + 2].copy_from_slice(&(VOCAB as u16).to_le_bytes())),
        Some(Error::BankCorrupt)
    );
    assert_eq!(sealed(&|b| b[6] = 3), Some(Error::BankCorrupt));
    let mut w = BankWriter::new(4, BankOptions::default());
    for x in &e {
        w.push(x.clone());
    }
    let plain = w.finish().unwrap();
    assert!(Bank::new_checked(&plain).unwrap().lexicon().is_none());
    let mut b = plain.clone();
    b[40] = 1;
    reseal(&mut b);
    assert_eq!(Bank::new_checked(&b).err(), Some(Error::BankCorrupt));
}

#[test]
fn writer_refuses_bad_lexicons() {
    let mut rng = StdRng::seed_from_u64(2);
    let (e, terms) = entries(3, 4, &mut rng);
    let attempt = |terms: Vec<Vec<u16>>, vocab: usize| {
        let mut w = BankWriter::new(4, BankOptions::default());
        for x in &e {
            w.push(x.clone());
        }
        w.lexicon(terms, vocab, 0);
        w.finish().err()
    };
    assert_eq!(attempt(terms.clone(), VOCAB), None);
    assert_eq!(
        attempt(terms[..2].to_vec(), VOCAB),
        Some(Error::BankCorrupt)
    );
    assert_eq!(
        attempt(vec![vec![7, 6], vec![], vec![]], VOCAB),
        Some(Error::BankCorrupt)
    );
    assert_eq!(
        attempt(vec![vec![6, 6], vec![], vec![]], VOCAB),
        Some(Error::BankCorrupt)
    );
    assert_eq!(
        attempt(vec![vec![10], vec![], vec![]], 10),
        Some(Error::BankCorrupt)
    );
    assert_eq!(
        attempt(vec![(0..65).collect(), vec![], vec![]], VOCAB),
        Some(Error::BankCorrupt)
    );
}
