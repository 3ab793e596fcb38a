//! SICK dev (data/sts) and Spearman's rank correlation, for the model-quality tests.

use std::path::PathBuf;

use crate::qemu::repo_root;

/// The SICK dev pairs: (gold score, sentence a, sentence b).
pub fn sick_dev() -> Vec<(f64, String, String)> {
    let path: PathBuf = repo_root().join("data/sts/sick-dev.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pairs: Vec<_> = text
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let score = cols.first()?.trim().parse::<f64>().ok()?;
            (cols.len() == 3).then(|| (score, cols[1].to_string(), cols[2].to_string()))
        })
        .collect();
    assert_eq!(
        pairs.len(),
        4934,
        "{} is not the SICK dev set",
        path.display()
    );
    pairs
}

fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        for k in i..=j {
            r[idx[k]] = (i + j) as f64 / 2.0; // ties share their mean rank
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of `a` and `b` (ties get their mean rank).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma) * (x - ma)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb) * (y - mb)).sum();
    cov / (va * vb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::spearman;

    #[test]
    fn spearman_of_known_rankings() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // x = ranks 0,1,2,3; y ties its middle pair: ranks 0,1.5,1.5,3 -> rho = 4.5 / sqrt(5 * 4.5).
        let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 2.0, 4.0]);
        assert!((r - 4.5 / (5.0f64 * 4.5).sqrt()).abs() < 1e-12, "{r}");
    }
}
