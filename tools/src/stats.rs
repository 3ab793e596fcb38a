//! Rank statistics for the benchmarks.

/// Ranks with ties given their average rank (1-based), as Spearman's rho needs.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va.sqrt() * vb.sqrt())
    }
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// A paired bootstrap of the difference between two systems' Spearman against the same gold
/// scores: both scored on the same resampled pairs each time.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PairedBootstrap {
    /// Resamples drawn.
    pub resamples: usize,
    /// Spearman(gold, a) − Spearman(gold, b) on the full set, ×100.
    pub diff: f64,
    /// The 2.5th and 97.5th percentiles of the resampled differences, ×100.
    pub low: f64,
    /// See `low`.
    pub high: f64,
    /// Share of resamples in which `a` did not beat `b` (a one-sided p-value for "a > b").
    pub share_not_better: f64,
}

/// SplitMix64's increment.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function (a bijective mix of all 64 bits).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// [`PairedBootstrap`] over `resamples` draws of `gold.len()` pairs with replacement, from a
/// generator seeded by `seed` (the same seed, the same interval); each draw correlates the
/// whole set's ranks. Resamples run on rayon's threads.
pub fn paired_bootstrap(
    gold: &[f64],
    a: &[f64],
    b: &[f64],
    resamples: usize,
    seed: u64,
) -> PairedBootstrap {
    use rayon::prelude::*;
    let n = gold.len().min(a.len()).min(b.len());
    // Ranks of the whole set, resampled as they are: re-ranking each resample would rank its
    // duplicated pairs as ties and pull every resampled Spearman off the full set's.
    let (rg, ra, rb) = (ranks(&gold[..n]), ranks(&a[..n]), ranks(&b[..n]));
    let diff = (pearson(&rg, &ra) - pearson(&rg, &rb)) * 100.0;
    let mut diffs: Vec<f64> = (0..resamples)
        .into_par_iter()
        .map(|r| {
            // SplitMix64, one stream per resample (independent of the thread count), each
            // starting at a hashed point of the sequence: streams that started `r·γ` apart would
            // be the same draws shifted by one, every resample nearly the same.
            let mut state = mix(seed ^ mix(r as u64));
            let mut next = || {
                state = state.wrapping_add(GAMMA);
                mix(state)
            };
            let idx: Vec<usize> = (0..n)
                .map(|_| (next() % n.max(1) as u64) as usize)
                .collect();
            let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let g = pick(&rg);
            (pearson(&g, &pick(&ra)) - pearson(&g, &pick(&rb))) * 100.0
        })
        .collect();
    diffs.sort_by(f64::total_cmp);

    let at = |q: f64| {
        diffs
            .get(((q * resamples as f64) as usize).min(resamples.saturating_sub(1)))
            .copied()
            .unwrap_or(diff)
    };
    PairedBootstrap {
        resamples,
        diff,
        low: at(0.025),
        high: at(0.975),
        share_not_better: diffs.iter().filter(|&&d| d <= 0.0).count() as f64
            / resamples.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two identical systems differ by exactly 0 in every resample; a system that follows the gold
    /// scores against one that is noise wins every resample, its interval well above 0; the same
    /// seed gives the same interval.
    #[test]
    fn the_paired_bootstrap_brackets_the_difference() {
        let gold: Vec<f64> = (0..400).map(|i| (i % 37) as f64).collect();
        let good: Vec<f64> = gold
            .iter()
            .enumerate()
            .map(|(i, g)| g + (i % 5) as f64)
            .collect();
        let noise: Vec<f64> = (0..400).map(|i| ((i * 7919) % 401) as f64).collect();
        let same = paired_bootstrap(&gold, &good, &good, 200, 1);
        assert_eq!((same.diff, same.low, same.high), (0.0, 0.0, 0.0));
        assert_eq!(same.share_not_better, 1.0);
        let b = paired_bootstrap(&gold, &good, &noise, 200, 1);
        assert!(b.low > 50.0 && b.low <= b.diff && b.diff <= b.high, "{b:?}");
        let again = paired_bootstrap(&gold, &good, &noise, 200, 1);
        assert_eq!((b.low, b.high), (again.low, again.high));
        // Two noisy systems of a known gap: the interval holds the estimate and has a width
        // of the order the sample size implies (resamples that repeated one another would give
        // a sliver off the estimate).
        let mut s = 12345u64;
        let mut rnd = || {
            s = mix(s);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let gold: Vec<f64> = (0..4000).map(|_| rnd() * 5.0).collect();
        let a: Vec<f64> = gold.iter().map(|g| g + rnd() * 3.0).collect();
        let c: Vec<f64> = gold.iter().map(|g| g + rnd() * 4.0).collect();
        let r = paired_bootstrap(&gold, &a, &c, 400, 7);
        assert!(r.low < r.diff && r.diff < r.high, "{r:?}");
        assert!(r.high - r.low > 0.5 && r.high - r.low < 5.0, "{r:?}");
        assert_eq!(b.share_not_better, 0.0);
    }

    #[test]
    fn spearman_matches_hand_computed_values() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // ties: ranks of [1,2,2,3] are [1,2.5,2.5,4]
        assert_eq!(ranks(&[1.0, 2.0, 2.0, 3.0]), vec![1.0, 2.5, 2.5, 4.0]);
        // scipy.stats.spearmanr([1,2,3,4,5],[5,6,7,8,7]) = 0.8207826816681233
        assert!(
            (spearman(&[1., 2., 3., 4., 5.], &[5., 6., 7., 8., 7.]) - 0.8207826816681233).abs()
                < 1e-12
        );
    }
}
