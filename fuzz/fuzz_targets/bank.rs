//! The bank loader: any bytes either load as a bank or are refused; a bank that loads answers
//! searches and yields its entries without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pith_runtime::kb::{Bank, Hit, Index};

/// `data` with the CRC the bank declares at its end recomputed, so that mutations reach the
/// parser behind the checksum instead of stopping at it.
fn with_valid_crc(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    let total = v
        .get(8..12)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if total >= 4 && total <= v.len() {
        let crc = pith_runtime::format::CHECKSUM.checksum(&v[..total - 4]);
        v[total - 4..total].copy_from_slice(&crc.to_le_bytes());
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let _ = Bank::new_checked(data);
    let fixed = with_valid_crc(data);
    let Ok(b) = Bank::new_checked(&fixed) else {
        return;
    };
    let query: Vec<i8> = (0..b.dim()).map(|i| (i as i8).wrapping_mul(37)).collect();
    let mut hits = [Hit::default(); 3];
    for index in [Index::Question, Index::Answer, Index::Both] {
        let n = b.search(&query, index, &mut hits);
        for h in &hits[..n] {
            let _ = b.entry(h.index);
        }
    }
    for e in b.entries() {
        let _ = (e.id.len(), e.question.len(), e.answer.len());
    }
});
