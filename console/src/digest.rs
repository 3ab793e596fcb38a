//! A short digest of an embedding, printed by `embed` and `chat` so people and tests compare
//! vectors by eye.

/// FNV-1a (32-bit) of the int8 values as bytes: a short, stable digest to compare embeddings by eye.
pub fn fnv1a(values: &[i8]) -> u32 {
    values.iter().fold(0x811c_9dc5u32, |h, &v| {
        (h ^ v as u8 as u32).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vector() {
        // FNV-1a 32 of "a" is 0xe40c292c.
        assert_eq!(fnv1a(&[b'a' as i8]), 0xe40c_292c);
        assert_eq!(fnv1a(&[]), 0x811c_9dc5);
    }
}
