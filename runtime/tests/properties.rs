//! Property tests of the integer arithmetic against exact or float references: requantization,
//! rounded division, the integer square root, and the bank's integer cosine scoring and search.

use pith_runtime::fixed::{div_round, isqrt_u128, rq, rq_i32, rq_i8};
use pith_runtime::kb::{Bank, BankEntry, BankOptions, BankWriter, Hit, Index, SCORE_ONE};
use proptest::prelude::*;

/// Exact round-half-up of `acc * m / 2^shift` in i128 (no saturation can occur there).
fn rq_exact(acc: i64, m: i32, shift: u32) -> i128 {
    let p = acc as i128 * m as i128;
    if shift == 0 {
        p
    } else {
        (p + (1i128 << (shift - 1))) >> shift
    }
}

fn cosine_f64(a: &[i8], b: &[i8]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| x as f64 * x as f64).sum();
    let nb: f64 = b.iter().map(|&x| x as f64 * x as f64).sum();
    dot / (na * nb).sqrt()
}

proptest! {
    #[test]
    fn requantization_rounds_half_up_like_the_exact_product(
        acc in any::<i32>(), m in 0..=i32::MAX, shift in 0u32..=62
    ) {
        let acc = acc as i64;
        let exact = rq_exact(acc, m, shift);
        prop_assert_eq!(rq(acc, m, shift as i32) as i128, exact);
        prop_assert_eq!(rq_i8(acc, m, shift as i32) as i128, exact.clamp(-127, 127));
        prop_assert_eq!(rq_i32(acc, m, shift as i32) as i128, exact.clamp(i32::MIN as i128, i32::MAX as i128));
        // And against the real multiplier in floating point: within half a unit (plus f64's own
        // rounding of a product up to 2^62).
        let real = acc as f64 * m as f64 / 2f64.powi(shift as i32);
        prop_assert!((rq(acc, m, shift as i32) as f64 - real).abs() <= 0.5 + real.abs() * 1e-15);
    }

    #[test]
    fn hostile_shifts_saturate_instead_of_panicking(acc in any::<i64>(), m in any::<i32>(), shift in any::<i32>()) {
        let _ = (rq(acc, m, shift), rq_i8(acc, m, shift), rq_i32(acc, m, shift));
    }

    #[test]
    fn div_round_matches_float_rounding(a in -(1i64 << 50)..(1i64 << 50), b in 1i64..(1 << 30)) {
        let want = (a as f64 / b as f64).round() as i64; // f64 rounds half away from zero
        prop_assert_eq!(div_round(a, b), want);
    }

    #[test]
    fn isqrt_is_the_floor_root(v in any::<u128>()) {
        let r = isqrt_u128(v);
        prop_assert!(r.checked_mul(r).is_some_and(|sq| sq <= v));
        prop_assert!((r + 1).checked_mul(r + 1).is_none_or(|sq| sq > v));
    }

    #[test]
    fn bank_search_scores_like_float_cosine(
        dim in 1usize..48,
        // Embeddings are symmetric int8 (rq_i8 saturates at ±127), as the bank stores them.
        seed_rows in prop::collection::vec(prop::collection::vec(-127i8..=127, 48), 1..12),
        query in prop::collection::vec(-127i8..=127, 48),
    ) {
        let query = &query[..dim];
        prop_assume!(query.iter().any(|&x| x != 0));
        let rows: Vec<&[i8]> = seed_rows.iter().map(|r| &r[..dim]).filter(|r| r.iter().any(|&x| x != 0)).collect();
        prop_assume!(!rows.is_empty());
        let mut w = BankWriter::new(dim, BankOptions { question_bits: 8, answer_bits: 8, compress: false, ..BankOptions::default() });
        for (i, r) in rows.iter().enumerate() {
            w.push(BankEntry { id: i.to_string(), question: "q".into(), answer: "a".into(), question_vector: r.to_vec(), answer_vector: r.to_vec() });
        }
        let bytes = w.finish().unwrap();
        let bank = Bank::new_checked(&bytes).unwrap();
        let mut hits = vec![Hit::default(); rows.len()];
        prop_assert_eq!(bank.search(query, Index::Question, &mut hits), rows.len());
        let unit = 1.0 / SCORE_ONE as f64;
        let best = rows.iter().map(|r| cosine_f64(query, r)).fold(f64::MIN, f64::max);
        for (rank, h) in hits.iter().enumerate() {
            let f = cosine_f64(query, rows[h.index]);
            // Each score is the float cosine to within two score units ...
            prop_assert!((h.score as f64 * unit - f).abs() <= 2.0 * unit, "score {} vs {}", h.score, f);
            // ... the list is sorted, and the first hit is the float best up to that tolerance.
            if rank > 0 { prop_assert!(hits[rank - 1].score >= h.score); }
        }
        prop_assert!(best - cosine_f64(query, rows[hits[0].index]) <= 4.0 * unit);
    }
}
