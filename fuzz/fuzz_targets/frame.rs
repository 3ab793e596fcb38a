//! The frame decoder: arbitrary bytes through postcard's COBS decoding of requests (what the
//! device parses) and responses (what the host client parses); a decoded request re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pith_runtime::frame::{encode_request, Request, Response, MAX_REQUEST_FRAME};

fuzz_target!(|data: &[u8]| {
    let mut copy = data.to_vec();
    if let Ok(req) = postcard::from_bytes_cobs::<Request<'_>>(&mut copy) {
        let mut buf = [0u8; 4 * MAX_REQUEST_FRAME];
        let _ = encode_request(&req, &mut buf);
    }
    let mut copy = data.to_vec();
    let _ = postcard::from_bytes_cobs::<Response>(&mut copy);
    let _ = postcard::from_bytes::<Request<'_>>(data);
});
