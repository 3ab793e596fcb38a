//! Scored sentence pairs (STS-B, SICK): the files `pith eval` and the fidelity report read.

use std::path::Path;

use anyhow::{bail, Result};

/// Reads (score, a, b) triples from either layout. A first line that does not parse is a header;
/// any later one, a score that is not a finite number, or a file with fewer than two pairs (or
/// with every gold score equal, where Spearman is undefined) is an error naming the file and line.
pub fn read_pairs(path: &Path) -> Result<Vec<(f64, String, String)>> {
    let text = crate::input::text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let fields = match cols.len() {
            3 => Some((cols[0], cols[1], cols[2])),
            n if n >= 7 => Some((cols[4], cols[5], cols[6])),
            _ => None,
        };
        let parsed = fields.and_then(|(s, a, b)| Some((s.trim().parse::<f64>().ok()?, a, b)));
        match parsed {
            Some((s, a, b)) if s.is_finite() => out.push((s, a.to_string(), b.to_string())),
            Some((s, _, _)) => bail!(
                "{}:{}: the score {s} is not a finite number",
                path.display(),
                i + 1
            ),
            None if out.is_empty() && i == first_line(&text) => continue, // a header line
            None => bail!(
                "{}:{}: expected score<TAB>a<TAB>b or the STS-B layout",
                path.display(),
                i + 1
            ),
        }
    }
    if out.len() < 2 {
        bail!(
            "{}: {} scored pairs; Spearman needs at least two",
            path.display(),
            out.len()
        );
    }
    if out.iter().all(|p| p.0 == out[0].0) {
        bail!(
            "{}: every gold score is {}; Spearman is undefined",
            path.display(),
            out[0].0
        );
    }
    Ok(out)
}

/// Index of the first non-blank line (where a header may be).
fn first_line(text: &str) -> usize {
    text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<(f64, String, String)>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("sts.tsv");
        std::fs::write(&p, text)?;
        read_pairs(&p)
    }

    #[test]
    fn bad_scores_and_empty_files_are_errors_naming_the_line() {
        let e = |t: &str| format!("{:#}", read(t).unwrap_err());
        assert!(e("1\ta\tb\nNaN\tc\td\n").contains("sts.tsv:2: the score NaN"));
        assert!(e("inf\ta\tb\n1\tc\td\n").contains(":1: the score inf"));
        assert!(e("").contains("0 scored pairs"));
        assert!(e("score\ta\tb\n").contains("0 scored pairs"));
        assert!(e("header\nnot a pair\n").contains(":2: expected"));
        assert!(e("2\ta\tb\n2\tc\td\n").contains("undefined"));
        let ok = read("\nscore\ta\tb\n1\ta\tb\n2.5\tc\td\n").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].0, 2.5);
    }
}
