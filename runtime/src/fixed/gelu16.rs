//! The 16-bit GELU's integer arithmetic: a table of knots interpolated on the i16 grid, and the
//! split of its output into two int8 planes that the int8 GEMM takes as they are.

use super::I32s;

/// Knots of a 16-bit GELU table: one every 256 input steps over the i16 range, both ends included.
pub const GELU16_KNOTS: usize = 257;
/// Range of the 16-bit GELU output, chosen so that `y = 128·hi + lo` with `hi` in -128..=127 and
/// `lo` in -64..=63: both planes are int8 activations the int8 GEMM takes as they are.
pub const GELU16_MIN: i32 = -16384;
/// See [`GELU16_MIN`].
pub const GELU16_MAX: i32 = 16319;

/// GELU on the 16-bit grid: the input `x` (clamped to i16) falls between knots `i = (x + 32768) >> 8`
/// and `i + 1` of `table` (little-endian i32); the output interpolates them linearly with the low
/// 8 bits (rounding half up) and is clamped to [`GELU16_MIN`]..=[`GELU16_MAX`]. A table shorter
/// than [`GELU16_KNOTS`] reads missing knots as 0 (validation makes that unreachable).
#[inline(always)]
pub fn gelu16(x: i64, table: &[u8]) -> i32 {
    let u = (x.clamp(i16::MIN as i64, i16::MAX as i64) + 32768) as usize;
    let (i, f) = (u >> 8, (u & 255) as i64);
    let knot = |k: usize| I32s(table).at(k) as i64;
    let (a, b) = (knot(i), knot(i + 1));
    let y = a + (((b - a) * f + 128) >> 8);
    y.clamp(GELU16_MIN as i64, GELU16_MAX as i64) as i32
}

/// Splits a 16-bit GELU output into its planes: `hi = round(y / 128)` (half up), `lo = y - 128·hi`.
#[inline(always)]
pub fn planes(y: i32) -> (i8, i8) {
    let hi = (y + 64) >> 7;
    (hi as i8, (y - (hi << 7)) as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output in range splits into planes that are valid int8 activations and rebuild it.
    #[test]
    fn planes_rebuild_every_output() {
        for y in GELU16_MIN..=GELU16_MAX {
            let (hi, lo) = planes(y);
            assert!((-64..=63).contains(&lo), "{y}");
            assert_eq!(128 * hi as i32 + lo as i32, y);
        }
    }

    /// On the knots the table is returned exactly, between them the chord, at the ends clamped.
    #[test]
    fn gelu16_interpolates_the_knots() {
        let knots: Vec<i32> = (0..GELU16_KNOTS as i32).map(|k| 3 * k - 300).collect();
        let table: Vec<u8> = knots.iter().flat_map(|k| k.to_le_bytes()).collect();
        for (k, &knot) in knots.iter().enumerate().take(256) {
            let x = k as i64 * 256 - 32768;
            assert_eq!(gelu16(x, &table), knot);
            assert_eq!(gelu16(x + 128, &table), knot + 2); // 1.5 rounds half up
        }
        assert_eq!(gelu16(i64::MAX, &table), gelu16(32767, &table));
        assert_eq!(gelu16(i64::MIN, &table), knots[0]);
        let huge: Vec<u8> = [i32::MAX; GELU16_KNOTS]
            .iter()
            .flat_map(|k| k.to_le_bytes())
            .collect();
        assert_eq!(gelu16(0, &huge), GELU16_MAX);
        assert_eq!(gelu16(0, &[]), 0);
    }
}
