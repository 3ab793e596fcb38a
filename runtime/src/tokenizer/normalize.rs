//! Hugging Face's `BertNormalizer` (clean-up, CJK spacing, accent stripping, lowercasing) as a
//! stream: one input char in, a few output events out, no buffer.

use super::classes::{is_cjk, is_removed, kept_combining_class, mark, Mark};
use super::tables::{DECOMP_BMP, DECOMP_POOL, DECOMP_WIDE_KEYS, DECOMP_WIDE_VALUES};

/// Which optional steps run (clean-up always does).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steps {
    /// Lowercase with `char::to_lowercase`.
    pub lowercase: bool,
    /// NFD, then drop nonspacing marks.
    pub strip_accents: bool,
    /// Put spaces around CJK ideographs.
    pub split_cjk: bool,
}

/// What the normalizer emits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Norm {
    /// A normalized char; `ccc` is non-zero only for a kept character that NFD's canonical
    /// ordering may move (accent stripping only).
    Char { c: char, ccc: u8 },
    /// A dropped mark with combining class 0: it ended the NFD reordering run it was in.
    RunBreak,
}

const HANGUL_S: u32 = 0xAC00;
const HANGUL_L: u32 = 0x1100;
const HANGUL_V: u32 = 0x1161;
const HANGUL_T: u32 = 0x11A7;
const HANGUL_V_COUNT: u32 = 21;
const HANGUL_T_COUNT: u32 = 28;
const HANGUL_S_COUNT: u32 = 19 * HANGUL_V_COUNT * HANGUL_T_COUNT;

/// Normalizes one input char, in HF's order: clean-up, CJK spacing, NFD + mark removal, lowercase.
pub(crate) fn normalize_char(c: char, steps: Steps, emit: &mut impl FnMut(Norm)) {
    if is_removed(c) {
        return;
    }
    let c = if c.is_whitespace() { ' ' } else { c };
    if steps.split_cjk && is_cjk(c) {
        emit(Norm::Char { c: ' ', ccc: 0 });
        after_cleanup(c, steps, emit);
        emit(Norm::Char { c: ' ', ccc: 0 });
    } else {
        after_cleanup(c, steps, emit);
    }
}

fn after_cleanup(c: char, steps: Steps, emit: &mut impl FnMut(Norm)) {
    if !steps.strip_accents {
        return lowercase(c, 0, steps, emit);
    }
    decompose(c, &mut |d| match mark(d) {
        Mark::No => lowercase(d, kept_combining_class(d), steps, emit),
        Mark::Starter => emit(Norm::RunBreak),
        Mark::NonStarter => {}
    });
}

fn lowercase(c: char, ccc: u8, steps: Steps, emit: &mut impl FnMut(Norm)) {
    // Characters NFD may reorder have no lowercase mapping (checked in classes' tests), and
    // whatever lowercasing produces must not be reordered: HF lowercases after NFD.
    if !steps.lowercase || ccc != 0 {
        return emit(Norm::Char { c, ccc });
    }
    if c.is_ascii() {
        return emit(Norm::Char {
            c: c.to_ascii_lowercase(),
            ccc: 0,
        });
    }
    for l in c.to_lowercase() {
        emit(Norm::Char { c: l, ccc: 0 });
    }
}

/// Canonical decomposition with nonstarter marks already removed (the table keeps only what
/// accent stripping needs); characters without one come through unchanged.
fn decompose(c: char, out: &mut impl FnMut(char)) {
    let cp = u32::from(c);
    if cp < 0x80 {
        return out(c);
    }
    if let Some(s) = cp.checked_sub(HANGUL_S).filter(|&s| s < HANGUL_S_COUNT) {
        let (l, v, t) = (
            s / (HANGUL_V_COUNT * HANGUL_T_COUNT),
            (s / HANGUL_T_COUNT) % HANGUL_V_COUNT,
            s % HANGUL_T_COUNT,
        );
        let jamo = [
            HANGUL_L + l,
            HANGUL_V + v,
            if t == 0 { 0 } else { HANGUL_T + t },
        ];
        for j in jamo
            .into_iter()
            .filter(|&j| j != 0)
            .filter_map(char::from_u32)
        {
            out(j);
        }
        return;
    }
    if cp < 0x1_0000 {
        if let Ok(i) = DECOMP_BMP.binary_search_by_key(&cp, |&e| e >> 16) {
            if let Some(d) = DECOMP_BMP.get(i).and_then(|&e| char::from_u32(e & 0xFFFF)) {
                return out(d);
            }
        }
    }
    let Ok(i) = DECOMP_WIDE_KEYS.binary_search(&cp) else {
        return out(c);
    };
    let Some(&value) = DECOMP_WIDE_VALUES.get(i) else {
        return out(c);
    };
    if value & (1 << 31) == 0 {
        if let Some(d) = char::from_u32(value) {
            out(d);
        }
        return;
    }
    let (at, len) = (((value & !(1 << 31)) >> 4) as usize, (value & 0xF) as usize);
    let pool = DECOMP_POOL.get(at..at.saturating_add(len)).unwrap_or(&[]);
    for d in pool.iter().filter_map(|&d| char::from_u32(d)) {
        out(d);
    }
}

// Against Hugging Face `tokenizers`, a dev-dependency of x86-64 hosts only: the cross-built
// aarch64 tests (under QEMU) check the kernels, and this logic is the same on every CPU.
#[cfg(test)]
#[cfg(target_arch = "x86_64")]
mod tests {
    use super::*;
    use tokenizers::normalizers::BertNormalizer;
    use tokenizers::{NormalizedString, Normalizer};

    /// Our normalization of `s` as a string (run breaks dropped, reordering not applied).
    fn ours(s: &str, steps: Steps) -> String {
        let mut out = String::new();
        for c in s.chars() {
            normalize_char(c, steps, &mut |n| {
                if let Norm::Char { c, .. } = n {
                    out.push(c)
                }
            });
        }
        out
    }

    fn hf(s: &str, steps: Steps) -> String {
        let n = BertNormalizer::new(
            true,
            steps.split_cjk,
            Some(steps.strip_accents),
            steps.lowercase,
        );
        let mut ns = NormalizedString::from(s);
        n.normalize(&mut ns).unwrap();
        ns.get().to_string()
    }

    const ALL_STEPS: [Steps; 4] = [
        Steps {
            lowercase: true,
            strip_accents: true,
            split_cjk: true,
        },
        Steps {
            lowercase: false,
            strip_accents: true,
            split_cjk: true,
        },
        Steps {
            lowercase: true,
            strip_accents: false,
            split_cjk: false,
        },
        Steps {
            lowercase: false,
            strip_accents: false,
            split_cjk: true,
        },
    ];

    #[test]
    fn every_code_point_matches_hugging_face() {
        let mut mismatches = Vec::new();
        for steps in ALL_STEPS {
            for cp in 0..=0x10FFFFu32 {
                let Some(c) = char::from_u32(cp) else {
                    continue;
                };
                let s = c.to_string();
                if ours(&s, steps) != hf(&s, steps) {
                    mismatches.push((cp, steps));
                }
            }
        }
        let shown: Vec<String> = mismatches
            .iter()
            .take(40)
            .map(|(cp, s)| format!("U+{cp:04X} {s:?}"))
            .collect();
        assert!(
            mismatches.is_empty(),
            "{} mismatches: {shown:#?}",
            mismatches.len()
        );
    }

    #[test]
    fn hangul_decomposes_to_jamo() {
        let steps = ALL_STEPS[0];
        assert_eq!(
            ours("한국어", steps),
            "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}\u{110B}\u{1165}"
        );
        assert_eq!(ours("한국어", steps), hf("한국어", steps));
    }

    #[test]
    fn accents_cleanup_and_case() {
        let steps = ALL_STEPS[0];
        for (input, want) in [
            ("Café Naïve ÅNGSTRÖM", "cafe naive angstrom"),
            ("a\u{0}b\u{FFFD}c\u{200D}d\te\u{A0}f\u{2028}g", "abcd e f g"),
            ("中文x", " 中  文 x"),
            ("İstanbul", "istanbul"),
        ] {
            assert_eq!(ours(input, steps), want);
            assert_eq!(ours(input, steps), hf(input, steps));
        }
    }
}
