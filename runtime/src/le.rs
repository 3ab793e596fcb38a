//! Little-endian reads at a byte offset, `None` past the end (never a panic, never an overflow):
//! the package and the knowledge bank read their fixed fields through these, the LayerNorm its
//! i64 parameters.

/// The `u16` at `at`.
pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// The `u32` at `at`.
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The `i64` at `at`.
pub(crate) fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_and_refuses_past_the_end() {
        let b = [0x34, 0x12, 0x78, 0x56];
        assert_eq!(u16_at(&b, 0), Some(0x1234));
        assert_eq!(u32_at(&b, 0), Some(0x5678_1234));
        assert_eq!(u16_at(&b, 3), None);
        assert_eq!(u32_at(&b, 1), None);
        assert_eq!(u32_at(&b, usize::MAX), None);
        let w = (-2i64).to_le_bytes();
        assert_eq!(i64_at(&w, 0), Some(-2));
        assert_eq!(i64_at(&w, 1), None);
        assert_eq!(i64_at(&w, usize::MAX), None);
    }
}
