//! Little-endian i32 tables read in place from a package (flash need not be aligned).

/// Little-endian i32 array read in place (no alignment needed).
#[derive(Clone, Copy)]
pub struct I32s<'a>(pub &'a [u8]);

impl I32s<'_> {
    /// Element `i`, or 0 past the end (validation makes that unreachable).
    #[inline(always)]
    pub fn at(&self, i: usize) -> i32 {
        match self.0.get(i * 4..i * 4 + 4) {
            Some(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }
    /// (multiplier, shift) pair `i` of a `[n, 2]` requantization table.
    #[inline(always)]
    pub fn rq(&self, i: usize) -> (i32, i32) {
        // One range check for both words (this runs once per output channel on the devices).
        match self.0.get(i * 8..i * 8 + 8) {
            Some(&[m0, m1, m2, m3, s0, s1, s2, s3]) => (
                i32::from_le_bytes([m0, m1, m2, m3]),
                i32::from_le_bytes([s0, s1, s2, s3]),
            ),
            _ => (self.at(2 * i), self.at(2 * i + 1)),
        }
    }
}
