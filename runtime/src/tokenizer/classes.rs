//! Character classes as Hugging Face's BERT normalizer and pre-tokenizer see them, looked up by
//! binary search in the generated tables (see `tables.rs` for the Unicode versions).

use super::tables::{MARK_NONSTARTER, MARK_STARTER, PUNCTUATION, REMOVED, SURVIVOR_CCC};

/// Bits of a packed range entry that hold `len - 1`.
const RANGE_LEN_BITS: u32 = 11;

/// Whether `c` lies in a table of packed `start << 11 | (len - 1)` ranges.
fn in_ranges(table: &[u32], c: char) -> bool {
    let c = u32::from(c);
    let after = table.partition_point(|&r| (r >> RANGE_LEN_BITS) <= c);
    match after.checked_sub(1).and_then(|i| table.get(i)) {
        Some(&r) => c - (r >> RANGE_LEN_BITS) <= (r & ((1 << RANGE_LEN_BITS) - 1)),
        None => false,
    }
}

/// Dropped by clean-up: NUL, U+FFFD and HF's "control" (Cc, Cf, Co) except `\t`, `\n`, `\r`.
pub(crate) fn is_removed(c: char) -> bool {
    if c.is_ascii() {
        return (c.is_ascii_control()) && !matches!(c, '\t' | '\n' | '\r');
    }
    in_ranges(REMOVED, c)
}

/// BERT punctuation: ASCII punctuation (symbols such as `$` and `+` included) or Unicode P*.
pub(crate) fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    in_ranges(PUNCTUATION, c)
}

/// A nonspacing mark (Mn), which accent stripping drops.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mark {
    /// Not a nonspacing mark: kept.
    No,
    /// A mark with combining class 0: besides being dropped, it ends an NFD reordering run.
    Starter,
    /// A mark with a non-zero combining class.
    NonStarter,
}

/// Classifies `c` for accent stripping.
pub(crate) fn mark(c: char) -> Mark {
    if c.is_ascii() {
        Mark::No
    } else if in_ranges(MARK_NONSTARTER, c) {
        Mark::NonStarter
    } else if in_ranges(MARK_STARTER, c) {
        Mark::Starter
    } else {
        Mark::No
    }
}

/// Canonical combining class of a character accent stripping keeps (0 for nearly all).
pub(crate) fn kept_combining_class(c: char) -> u8 {
    if c.is_ascii() {
        return 0;
    }
    let c = u32::from(c);
    match SURVIVOR_CCC.binary_search_by_key(&c, |&e| e >> 8) {
        Ok(i) => SURVIVOR_CCC.get(i).map_or(0, |&e| (e & 0xFF) as u8),
        Err(_) => 0,
    }
}

/// HF's "Chinese character": the CJK Unified Ideographs blocks and compatibility ideographs.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_disjoint() {
        for table in [REMOVED, PUNCTUATION, MARK_STARTER, MARK_NONSTARTER] {
            for w in table.windows(2) {
                let end = (w[0] >> RANGE_LEN_BITS) + (w[0] & ((1 << RANGE_LEN_BITS) - 1));
                assert!(end < w[1] >> RANGE_LEN_BITS);
            }
        }
        assert!(SURVIVOR_CCC.windows(2).all(|w| w[0] >> 8 < w[1] >> 8));
    }

    #[test]
    fn spot_checks() {
        assert!(is_removed('\0') && is_removed('\u{7}') && is_removed('\u{200D}'));
        assert!(is_removed('\u{FFFD}') && is_removed('\u{E000}') && is_removed('\u{10FFFD}'));
        assert!(!is_removed('\t') && !is_removed('a') && !is_removed('é'));
        assert!(is_punctuation('$') && is_punctuation('¿') && is_punctuation('。'));
        assert!(!is_punctuation('€') && !is_punctuation('a'));
        assert_eq!(mark('\u{301}'), Mark::NonStarter);
        assert_eq!(mark('\u{0B56}'), Mark::Starter);
        assert_eq!(mark('e'), Mark::No);
        assert_eq!(kept_combining_class('\u{1D165}'), 216);
        assert_eq!(kept_combining_class('a'), 0);
        assert!(is_cjk('中') && !is_cjk('한') && !is_cjk('の'));
    }

    #[test]
    fn kept_combining_marks_have_no_case() {
        // Lowercasing after NFD would otherwise have to re-run the reordering.
        for &e in SURVIVOR_CCC {
            let c = char::from_u32(e >> 8).unwrap();
            assert!(c.to_lowercase().eq([c]), "{c:?}");
        }
    }
}
