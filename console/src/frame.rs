//! Framed binary mode: postcard messages in COBS frames (each frame ends with a 0x00 byte).
//!
//! A program that wants many embeddings switches the console into this mode with the text command
//! `frame`, then sends one [`Request`] per frame and reads one [`Response`] per frame, until it sends
//! [`Request::Exit`]. Requests borrow their text from the receive buffer (no copies on the device);
//! responses are owned so the host decodes them with a plain `CobsAccumulator::feed`.

use serde::{Deserialize, Serialize};

/// Largest embedding dimension a [`Response::Embedding`] carries.
pub const MAX_DIM: usize = 1024;
/// Longest encoded request frame the device accepts (delimiter included).
pub const MAX_REQUEST_FRAME: usize = 1100;
/// Longest encoded response frame the device sends (delimiter included).
pub const MAX_RESPONSE_FRAME: usize = 1200;

/// A request from the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Embed `text`; answered by [`Response::Embedding`].
    Embed {
        /// UTF-8 text, at most what fits in one frame.
        text: &'a str,
    },
    /// Cosine similarity of two texts; answered by [`Response::Similarity`].
    Sim {
        /// First text.
        a: &'a str,
        /// Second text.
        b: &'a str,
    },
    /// Ask the knowledge bank; answered by [`Response::Answer`] or an error while no bank exists.
    Ask {
        /// The question.
        question: &'a str,
    },
    /// Describe the model and the board; answered by [`Response::Info`].
    Info,
    /// Leave framed mode; answered by [`Response::Bye`], after which the console speaks text again.
    Exit,
    /// One conversation turn; answered by [`Response::Chat`].
    Chat {
        /// What the user says.
        text: &'a str,
    },
    /// Forget the conversation; answered by [`Response::Done`].
    ChatReset,
}

/// A response from the device.
// No heap to box the embedding into: a response lives on the stack once per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The int8 embedding of the request's text.
    Embedding {
        /// Tokens the text became (`[CLS]` and `[SEP]` included).
        tokens: u16,
        /// The full vector, model dimension long.
        values: heapless::Vec<i8, MAX_DIM>,
    },
    /// Cosine similarity of two embeddings.
    Similarity {
        /// Cosine in [-1, 1].
        cosine: f32,
        /// Tokens of the first text.
        tokens_a: u16,
        /// Tokens of the second text.
        tokens_b: u16,
    },
    /// The best knowledge-bank entry for a question.
    Answer {
        /// The entry's answer (cut to fit); empty when not confident.
        text: heapless::String<512>,
        /// Cosine of the best entry to the question.
        score: f32,
        /// False: below the bank's abstain threshold ("no confident answer").
        confident: bool,
    },
    /// Model and board description.
    Info(InfoReply),
    /// The request failed; `code` is the same as the text console's `ERR <code>`.
    Error {
        /// Error code (see `console::ErrCode`).
        code: u8,
        /// Human-readable cause.
        message: heapless::String<96>,
    },
    /// Acknowledges [`Request::Exit`].
    Bye,
    /// The response-bank sentence `chat` answers with.
    Chat {
        /// The sentence (cut to fit).
        text: heapless::String<512>,
        /// Its cosine to the predicted next turn.
        score: f32,
        /// FNV-1a of the predicted int8 vector.
        prediction: u32,
        /// Best minus second-best bank cosine before refining.
        margin: f32,
        /// Whether the answer went through refinement.
        refined: bool,
    },
    /// Acknowledges a request that returns nothing ([`Request::ChatReset`]).
    Done,
}

/// What `info` reports, in framed form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoReply {
    /// Model name, empty when no valid package is linked.
    pub model: heapless::String<{ pith_runtime::format::NAME_MAX }>,
    /// Embedding dimension (0 without a model).
    pub dim: u32,
    /// Transformer layers.
    pub layers: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// Longest input in tokens the arena allows.
    pub max_tokens: u32,
    /// Board name.
    pub board: heapless::String<32>,
    /// Flash bytes used by code and constants.
    pub flash_used: u32,
    /// RAM bytes used by statics (stack excluded).
    pub ram_used: u32,
    /// Bytes of the linked package.
    pub package_bytes: u32,
}

/// Encodes `response` as one COBS frame (0x00 terminated) into `buf`; returns the frame.
pub fn encode_response<'b>(
    response: &Response,
    buf: &'b mut [u8],
) -> postcard::Result<&'b mut [u8]> {
    postcard::to_slice_cobs(response, buf)
}

/// Encodes `request` as one COBS frame (0x00 terminated) into `buf`; returns the frame.
pub fn encode_request<'b>(
    request: &Request<'_>,
    buf: &'b mut [u8],
) -> postcard::Result<&'b mut [u8]> {
    postcard::to_slice_cobs(request, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_through_a_frame() {
        let mut buf = [0u8; MAX_REQUEST_FRAME];
        let req = Request::Sim {
            a: "a cat",
            b: "a dog",
        };
        let frame = encode_request(&req, &mut buf).unwrap();
        assert_eq!(frame.last(), Some(&0));
        assert!(!frame[..frame.len() - 1].contains(&0));
        let back: Request<'_> = postcard::from_bytes_cobs(frame).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn a_full_embedding_fits_the_response_frame() {
        let mut values = heapless::Vec::new();
        for i in 0..MAX_DIM {
            values.push((i % 256) as u8 as i8).unwrap();
        }
        let resp = Response::Embedding {
            tokens: 512,
            values,
        };
        let mut buf = [0u8; MAX_RESPONSE_FRAME];
        let frame = encode_response(&resp, &mut buf).unwrap();
        let back: Response = postcard::from_bytes_cobs(frame).unwrap();
        assert_eq!(back, resp);
    }
}
