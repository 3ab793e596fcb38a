//! 4-bit tensors (`StaticEmb4`): two signed values a byte, the even column in the low nibble,
//! symmetric in −[`I4_MAX`]..=[`I4_MAX`] (−8 is never written, so negation is exact).

/// Largest |value| of a 4-bit tensor.
pub const I4_MAX: i8 = 7;

/// The (even, odd) column values held by byte `b`.
#[inline(always)]
pub fn nibbles(b: u8) -> (i8, i8) {
    (((b << 4) as i8) >> 4, (b as i8) >> 4)
}

/// The byte holding `even` and `odd` (each in −8..=7).
#[inline(always)]
pub fn pack(even: i8, odd: i8) -> u8 {
    (even as u8 & 0x0f) | ((odd as u8) << 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_round_trips() {
        for even in -8i8..=7 {
            for odd in -8i8..=7 {
                assert_eq!(nibbles(pack(even, odd)), (even, odd));
            }
        }
    }
}
