//! MPNet's relative position bias: which bucket a query-to-key offset falls in (T5's
//! bidirectional log-spaced buckets, as MPNet computes them) and the bias that every layer adds
//! to its attention scores. The fp32 reference, the ONNX graphs and the package all take their
//! buckets from [`bucket`].

use ndarray::Array2;

/// Offsets at least this far apart share the last bucket of their direction (MPNet's
/// `max_distance`).
pub const MAX_DISTANCE: i64 = 128;

/// The bucket of the offset `key − query` among `buckets`: half for keys before the query, half
/// after; the nearest quarter one bucket per offset, the rest log-spaced up to [`MAX_DISTANCE`].
///
/// Computed in f32 like the reference (a float32 log, truncated); [`tests`] checks that f64 gives
/// the same buckets for every offset up to 4,096, so the rounding of the log cannot decide one.
pub fn bucket(offset: i64, buckets: usize) -> usize {
    let half = (buckets / 2) as i64;
    let exact = half / 2;
    // MPNet's n = -(key - query): positive for keys before the query.
    let n = -offset;
    let side = if n < 0 { half } else { 0 };
    let n = n.abs();
    let within = if n < exact {
        n
    } else {
        let ratio =
            (n as f32 / exact as f32).ln() / ((MAX_DISTANCE as f64 / exact as f64).ln() as f32);
        (exact + (ratio * (half - exact) as f32) as i64).min(half - 1)
    };
    (side + within) as usize
}

/// The bias of every head for `tokens` tokens: `[heads][query, key]` from the `[buckets, heads]`
/// table.
pub fn head_bias(table: &Array2<f32>, tokens: usize) -> Vec<Array2<f32>> {
    let (buckets, heads) = table.dim();
    (0..heads)
        .map(|h| {
            Array2::from_shape_fn((tokens, tokens), |(t, u)| {
                table[[bucket(u as i64 - t as i64, buckets), h]]
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same buckets in f64: no offset sits so close to a bucket edge that a float32 log
    /// could round it across.
    #[test]
    fn f32_and_f64_logs_agree_on_every_bucket() {
        for buckets in [8usize, 32, 64] {
            let (half, exact) = ((buckets / 2) as i64, (buckets / 4) as i64);
            for offset in -4096i64..=4096 {
                let n = offset.abs();
                let want = if n < exact {
                    n
                } else {
                    let r =
                        (n as f64 / exact as f64).ln() / (MAX_DISTANCE as f64 / exact as f64).ln();
                    (exact + (r * (half - exact) as f64) as i64).min(half - 1)
                } + if offset > 0 { half } else { 0 };
                assert_eq!(bucket(offset, buckets) as i64, want, "offset {offset}");
            }
        }
    }

    /// MPNet's 32 buckets at a few offsets, worked out by hand from its definition: 0..7 exact,
    /// 8 and 16 at 8·2^(k/2) (k = 0, 2), 15 from 128 on; keys after the query 16 higher.
    #[test]
    fn known_buckets() {
        for (offset, b) in [
            (0, 0),
            (-1, 1),
            (-7, 7),
            (-8, 8),
            (-16, 10),
            (-32, 12),
            (-64, 14),
            (-127, 15),
            (-128, 15),
            (-1000, 15),
            (1, 17),
            (16, 26),
            (500, 31),
        ] {
            assert_eq!(bucket(offset, 32), b, "offset {offset}");
        }
    }
}
