//! One file per subcommand: its clap arguments and its `run`.

pub mod artifacts;
pub mod ask;
pub mod bench;
pub mod boards;
pub mod chat;
pub mod console;
pub mod distill;
pub mod embed;
pub mod eval;
pub mod eval_chat;
pub mod eval_faq;
pub mod eval_fidelity;
pub mod export;
pub mod firmware;
pub mod kb;
pub mod quantize;
pub mod sim;
