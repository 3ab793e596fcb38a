//! The response-selection protocol of `pith eval chat`: at every position t ≥ 1 of every
//! conversation, the context is the ≤ 8 turns before t and the target is turn t; the candidates are
//! the target and 99 other turns of the same file drawn with a seeded generator. A method scores
//! each candidate by cosine to its query vector; rank = 1 + the number of candidates scored
//! strictly higher than the target. Reported: top-1 (rank 1) and MRR, in percent.

use anyhow::{bail, Context, Result};
use std::path::Path;

use super::WINDOW;

/// One conversation's turns.
pub type Conversation = Vec<String>;

/// Reads JSONL `{"turns": ["...", ...]}`, one conversation a line (blank lines skipped).
pub fn read_conversations(path: &Path) -> Result<Vec<Conversation>> {
    let text = crate::input::text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let Some(turns) = v.get("turns").and_then(|t| t.as_array()) else {
            bail!(
                "{}:{}: expected {{\"turns\": [...]}}",
                path.display(),
                i + 1
            );
        };
        let mut c = Vec::with_capacity(turns.len());
        for t in turns {
            let Some(s) = t.as_str() else {
                bail!("{}:{}: a turn is not a string", path.display(), i + 1);
            };
            // An empty turn would be scored as if it said something (every empty candidate
            // equals an empty target).
            if s.trim().is_empty() {
                bail!("{}:{}: a turn is empty", path.display(), i + 1);
            }
            c.push(s.to_string());
        }
        out.push(c);
    }
    if out.is_empty() {
        bail!("{}: no conversations", path.display());
    }
    Ok(out)
}

/// SplitMix64: the candidate draws, reproducible across platforms and Rust versions.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// One prediction position: where its window and target lie in the flat turn list.
#[derive(Clone, Debug)]
pub struct Position {
    /// Flat indices of the window's turns, latest first (1 to 8).
    pub window: Vec<usize>,
    /// Flat index of the target turn.
    pub target: usize,
}

/// Every position t ≥ 1 of every conversation, as indices into the conversations' turns laid end
/// to end.
pub fn positions(convs: &[Conversation]) -> Vec<Position> {
    let mut out = Vec::new();
    let mut start = 0;
    for c in convs {
        for t in 1..c.len() {
            let lo = t.saturating_sub(WINDOW);
            out.push(Position {
                window: (lo..t).rev().map(|i| start + i).collect(),
                target: start + t,
            });
        }
        start += c.len();
    }
    out
}

/// The candidate lists: for each position the target first, then `others` distinct other turn
/// indices (fewer when the file has fewer turns), drawn from seed `seed`.
pub fn candidates(pos: &[Position], turns: usize, others: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = SplitMix::new(seed);
    let k = others.min(turns.saturating_sub(1));
    pos.iter()
        .map(|p| {
            let mut c = Vec::with_capacity(k + 1);
            c.push(p.target);
            while c.len() < k + 1 {
                let j = rng.below(turns as u64) as usize;
                if !c.contains(&j) {
                    c.push(j);
                }
            }
            c
        })
        .collect()
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// Rank (1-based) of candidate 0 among `scores` (one per candidate, the target first): every
/// candidate scored higher counts against it, and so does every tie unless `same(k)` says
/// candidate `k` is the target's own response (a lexical scorer gives most candidates the same
/// zero; a candidate "Hi!" for the target "hi" is the same answer).
pub fn rank_of(scores: &[f64], same: impl Fn(usize) -> bool) -> usize {
    let s0 = scores[0];
    1 + (1..scores.len())
        .filter(|&k| scores[k] > s0 || (scores[k] == s0 && !same(k)))
        .count()
}

/// Rank (1-based) of candidate 0 under `query`, by cosine (`same` as in [`rank_of`]).
pub fn rank(
    query: &[f32],
    cands: &[usize],
    emb: &[Vec<f32>],
    same: impl Fn(usize) -> bool,
) -> usize {
    let s: Vec<f64> = cands
        .iter()
        .map(|&j| cosine(query, &emb[j]) as f64)
        .collect();
    rank_of(&s, same)
}

/// Top-1 and MRR accumulator.
#[derive(Default, Clone, Copy, Debug)]
pub struct Score {
    pub n: usize,
    pub top1: usize,
    pub rr: f64,
}

impl Score {
    pub fn add(&mut self, rank: usize) {
        self.n += 1;
        self.top1 += usize::from(rank == 1);
        self.rr += 1.0 / rank as f64;
    }

    /// `{"top1": %, "mrr": %}`.
    pub fn json(&self) -> serde_json::Value {
        let n = self.n.max(1) as f64;
        serde_json::json!({
            "top1": 100.0 * self.top1 as f64 / n,
            "mrr": 100.0 * self.rr / n,
        })
    }
}

/// Mean of the window's rows.
pub fn mean_of(window: &[usize], emb: &[Vec<f32>]) -> Vec<f32> {
    let d = emb.first().map_or(0, Vec::len);
    let mut m = vec![0f32; d];
    for &i in window {
        for (a, x) in m.iter_mut().zip(&emb[i]) {
            *a += x;
        }
    }
    let n = window.len().max(1) as f32;
    m.iter_mut().for_each(|a| *a /= n);
    m
}

/// The linear-map baseline: `y ≈ M x` from context mean `x` to next turn `y`, fitted by least
/// squares pulled towards the identity, `M = (XᵀX + λI)⁻¹ (XᵀY + λI)` (so M = W + I with W the
/// ridge-shrunk correction), λ = trace(XᵀX) / dim: one fixed rule, not tuned.
pub struct LinearMap {
    /// Row-major `[dim, dim]`, applied as `y_j = Σ_i x_i M[i][j]`.
    pub m: Vec<f64>,
    pub dim: usize,
}

impl LinearMap {
    /// Fits on the (context mean, next turn) pairs of `pos` over `emb`.
    pub fn fit(pos: &[Position], emb: &[Vec<f32>]) -> Result<Self> {
        let d = emb.first().map_or(0, Vec::len);
        if d == 0 || pos.is_empty() {
            bail!("the linear map needs at least one training position");
        }
        let mut xtx = vec![0f64; d * d];
        let mut xty = vec![0f64; d * d];
        for p in pos {
            let x = mean_of(&p.window, emb);
            let y = &emb[p.target];
            for i in 0..d {
                let xi = x[i] as f64;
                for j in 0..d {
                    xtx[i * d + j] += xi * x[j] as f64;
                    xty[i * d + j] += xi * y[j] as f64;
                }
            }
        }
        let lambda = (0..d).map(|i| xtx[i * d + i]).sum::<f64>() / d as f64;
        for i in 0..d {
            xtx[i * d + i] += lambda;
            xty[i * d + i] += lambda;
        }
        let m = cholesky_solve(&xtx, &xty, d).context("fitting the linear map")?;
        Ok(LinearMap { m, dim: d })
    }

    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.dim;
        let mut y = vec![0f64; d];
        for (i, &xi) in x.iter().enumerate().take(d) {
            for (j, yj) in y.iter_mut().enumerate() {
                *yj += xi as f64 * self.m[i * d + j];
            }
        }
        y.into_iter().map(|v| v as f32).collect()
    }
}

/// Solves `A X = B` for symmetric positive definite `A` (`[d, d]`) and `B` (`[d, d]`), row-major.
fn cholesky_solve(a: &[f64], b: &[f64], d: usize) -> Result<Vec<f64>> {
    let mut l = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s <= 0.0 {
                    bail!("matrix is not positive definite");
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    let mut x = b.to_vec();
    for c in 0..d {
        for i in 0..d {
            let mut s = x[i * d + c];
            for k in 0..i {
                s -= l[i * d + k] * x[k * d + c];
            }
            x[i * d + c] = s / l[i * d + i];
        }
        for i in (0..d).rev() {
            let mut s = x[i * d + c];
            for k in i + 1..d {
                s -= l[k * d + i] * x[k * d + c];
            }
            x[i * d + c] = s / l[i * d + i];
        }
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_turn_conversations_give_one_position_each() {
        let convs = vec![
            vec!["q1".to_string(), "a1".to_string()],
            vec!["q2".to_string(), "a2".to_string()],
            vec!["only".to_string()],
        ];
        let p = positions(&convs);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].window.clone(), p[0].target), (vec![0], 1));
        assert_eq!((p[1].window.clone(), p[1].target), (vec![2], 3));
    }

    #[test]
    fn windows_hold_at_most_eight_turns_latest_first() {
        let convs = vec![(0..12).map(|i| i.to_string()).collect::<Vec<_>>()];
        let p = positions(&convs);
        assert_eq!(p[10].target, 11);
        assert_eq!(p[10].window, vec![10, 9, 8, 7, 6, 5, 4, 3]);
    }

    #[test]
    fn candidates_are_distinct_and_lead_with_the_target() {
        let convs = vec![(0..40).map(|i| i.to_string()).collect::<Vec<_>>()];
        let p = positions(&convs);
        let c = candidates(&p, 40, 99, 7);
        for (pi, ci) in p.iter().zip(&c) {
            assert_eq!(ci[0], pi.target);
            assert_eq!(ci.len(), 40);
            let mut s = ci.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 40);
        }
        assert_eq!(c, candidates(&p, 40, 99, 7));
        assert_ne!(c, candidates(&p, 40, 99, 8));
    }

    #[test]
    fn splitmix_is_the_reference_generator() {
        // The first outputs of SplitMix64 from seed 0 (Steele, Lea & Flood 2014; the reference
        // C code of Vigna's splitmix64.c gives the same).
        let mut r = SplitMix::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn ties_count_against_the_target_unless_the_same_response() {
        assert_eq!(rank_of(&[0.5, 0.1, 0.2], |_| false), 1);
        assert_eq!(rank_of(&[0.5, 0.9, 0.2], |_| false), 2);
        // All zero (no word in common): last, not first.
        assert_eq!(rank_of(&[0.0, 0.0, 0.0], |_| false), 3);
        assert_eq!(rank_of(&[0.0, 0.0, 0.0], |k| k == 1), 2);
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4, 2], [2, 3]], B = A · [[1, 2], [3, 4]].
        let a = [4.0, 2.0, 2.0, 3.0];
        let b = [10.0, 16.0, 11.0, 16.0];
        let x = cholesky_solve(&a, &b, 2).unwrap();
        for (got, want) in x.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
    }
}
