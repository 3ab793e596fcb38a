//! Value parsers for numeric CLI arguments: clap calls them at the edge, so NaN, infinities and
//! out-of-range numbers are refused with the argument's name before any work starts.

/// A finite `f32` in `lo..=hi`.
fn f32_in(s: &str, lo: f32, hi: f32) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("`{s}` is not a finite number"));
    }
    if !(lo..=hi).contains(&v) {
        return Err(format!("{v} is outside {lo}..={hi}"));
    }
    Ok(v)
}

/// A count of at least 1 (`--calib-count`, `--eval-count`, `-k`, `--threads`).
pub fn count(s: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if v == 0 {
        return Err("must be at least 1".into());
    }
    Ok(v)
}

/// Bits per stored value (a bank vector's element, a static table's value): 4 or 8.
pub fn value_bits(s: &str) -> Result<u8, String> {
    match s.trim() {
        "4" => Ok(4),
        "8" => Ok(8),
        _ => Err(format!("`{s}` is not 4 or 8")),
    }
}

/// A share: a finite number in 0..=1 (SmoothQuant's alpha, the share of queries kept).
pub fn fraction(s: &str) -> Result<f32, String> {
    f32_in(s, 0.0, 1.0)
}

/// A share as f64 (for arguments kept in f64).
pub fn fraction_f64(s: &str) -> Result<f64, String> {
    fraction(s).map(f64::from)
}

/// A cosine: a finite number in -1..=1 (thresholds, biases on the score scale).
pub fn cosine(s: &str) -> Result<f32, String> {
    f32_in(s, -1.0, 1.0)
}

/// A lexical weight: a finite number in 0..=8 (how much a bank's lexical match adds to a cosine).
pub fn lexical_weight(s: &str) -> Result<f32, String> {
    f32_in(s, 0.0, 8.0)
}

/// A set of layer indices as a bit mask: `all`, `none`, or a comma list such as `0,5`.
pub fn layers(s: &str) -> Result<u64, String> {
    match s.trim() {
        "all" => return Ok(u64::MAX),
        "none" | "" => return Ok(0),
        _ => {}
    }
    s.split(',').try_fold(0u64, |mask, part| {
        let part = part.trim();
        match part.parse::<u32>() {
            Ok(l) if l < 64 => Ok(mask | 1 << l),
            _ => Err(format!(
                "`{part}` is not a layer index (0..63); give `all`, `none` or a list like 0,5"
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_sets_parse_or_name_the_bad_part() {
        assert_eq!(layers("all"), Ok(u64::MAX));
        assert_eq!(layers("none"), Ok(0));
        assert_eq!(layers("0, 5"), Ok(0b100001));
        assert!(layers("0,x").unwrap_err().contains("`x`"));
        assert!(layers("64").is_err());
    }

    #[test]
    fn non_finite_and_out_of_range_values_are_refused() {
        for bad in ["NaN", "nan", "inf", "-inf", "1e40", "x", "", "1.5", "-0.1"] {
            assert!(fraction(bad).is_err(), "{bad}");
        }
        assert_eq!(fraction("0.7"), Ok(0.7));
        assert_eq!(fraction(" 1 "), Ok(1.0));
        assert!(cosine("-1.01").is_err());
        assert_eq!(cosine("-1"), Ok(-1.0));
        assert_eq!(fraction_f64("0.5"), Ok(0.5));
        assert!(count("0").is_err() && count("-1").is_err() && count("1.5").is_err());
        assert_eq!(count("18446744073709551615"), Ok(usize::MAX));
    }
}
