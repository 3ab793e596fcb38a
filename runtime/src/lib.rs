//! pith-runtime: sentence embeddings on microcontrollers.
//!
//! Reads a `.pith` package in place (zero-copy, from flash), tokenizes with BERT WordPiece (the same
//! ids as Hugging Face `tokenizers`), runs an integer-only encoder into a caller-supplied arena and
//! pools to an int8 sentence vector. No allocator, no panics on bad input, the same bytes on every CPU.
//!
//! Features: `std` (package writer, std error impls). The host fallback through tract-onnx lives in
//! the tools crate: this crate holds only what a device runs.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod engine;
pub mod error;
pub mod fixed;
pub mod format;
pub mod kb;
pub mod kernels;
mod le;
pub mod tokenizer;

pub use engine::{cosine_i8, Model, Reasoner};
pub use error::{Error, Result};
pub use format::Package;
