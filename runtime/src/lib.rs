//! pith-runtime: sentence embeddings on microcontrollers.
//!
//! Reads a `.pith` package in place (zero-copy, from flash), tokenizes with BERT WordPiece (the same
//! ids as Hugging Face `tokenizers`), runs an integer-only encoder into a caller-supplied arena and
//! pools to an int8 sentence vector. No allocator, no panics on bad input, the same bytes on every CPU.
//!
//! Features: `std` (package writer, std error impls). The host fallback through tract-onnx lives in
//! the tools crate: this crate holds only what a device runs.
//!
//! # Using it in your firmware
//!
//! A package (`.pith`, written by `pith quantize` or `pith artifacts`) sits in flash and is read in
//! place; it is validated once, when it is opened, and no call on it can panic afterwards. All
//! scratch memory is one `i32` arena the caller owns: size it at compile time for the longest
//! input you will embed ([`Model::arena_words`] gives the words for `tokens` tokens).
//!
//! ```no_run
//! use pith_runtime::{Error, Model};
//!
//! // In flash: `include_bytes!`, or a linker section the flasher fills (see firmware/ in the
//! // repository for both).
//! static PACKAGE: &[u8] = include_bytes!("../../models/tier-m.pith");
//! // Enough for 64 tokens of Tier M (Model::arena_words(64) on that package; checked below).
//! static mut ARENA: [i32; 50_000] = [0; 50_000];
//!
//! fn embed_one(arena: &mut [i32]) -> Result<[i8; 128], Error> {
//!     let model = Model::new(PACKAGE)?; // checksum, sections and shapes, once
//!     if arena.len() < model.arena_words(64) {
//!         return Err(Error::ArenaTooSmall);
//!     }
//!     let mut v = [0i8; 128]; // model.dim() values
//!     model.embed("hello world", arena, &mut v)?; // tokenizes, runs the encoder, pools
//!     Ok(v)
//! }
//! ```
//!
//! The same steps on the host, run as a test: embed two sentences, compare them, search a
//! knowledge bank built beside the package.
//!
//! ```
//! use pith_runtime::kb::{Bank, Hit, Index};
//! use pith_runtime::{cosine_i8, Model};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
//! let package = std::fs::read(format!("{root}/models/tier-m.pith"))?;
//! let model = Model::new(&package)?;
//! let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
//! let (mut a, mut b) = (vec![0i8; model.dim()], vec![0i8; model.dim()]);
//! model.embed("A man is playing a guitar.", &mut arena, &mut a)?;
//! model.embed("Someone plays the guitar.", &mut arena, &mut b)?;
//! assert!(cosine_i8(&a, &b) > 0.5);
//! // The static arena of the first example holds 64 tokens of this package.
//! assert!(model.arena_words(64) <= 50_000);
//!
//! // A knowledge bank (`pith kb build`; `pith artifacts` builds this one): validated once,
//! // searched in integers.
//! let bytes = std::fs::read(format!("{root}/models/tier-m.pithkb"))?;
//! let bank = Bank::for_model(&bytes, &model)?;
//! let mut best = [Hit::default(); 3];
//! let n = bank.search(&a, Index::Both, &mut best);
//! assert!(n == 3 && best.windows(2).all(|w| w[0].score >= w[1].score));
//! # Ok(())
//! # }
//! ```
//!
//! Many sentences at once (a host or a large part embedding a corpus): tokenize each
//! ([`Model::tokenizer`]), lay their ids one after another and call [`Model::embed_ids_batch`]
//! with their lengths; every linear layer then reads its weights once for the whole batch, and
//! each vector is the bytes [`Model::embed`] gives its sentence alone.
//!
//! A reasoner ([`Reasoner`]) reads the int8 vectors of the last turns of a conversation (latest
//! first) and predicts the next turn's vector in the same arena; `pith-console`'s `Chat` keeps
//! that ring and answers from a response bank. Every failure is an [`Error`] value: a corrupt
//! package or bank, an arena too small, a buffer of the wrong length.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod engine;
pub mod error;
pub mod fixed;
pub mod format;
pub mod kb;
pub mod kernels;
mod le;
pub mod tokenizer;

pub use engine::profile::{Observer, Profile, Stage};
pub use engine::{cosine_i8, Model, Reasoner};
pub use error::{Error, Result};
pub use format::Package;
