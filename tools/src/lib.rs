//! pith-tools: everything the `pith` CLI does, as a library the tests reuse: reading checkpoints,
//! export and quantization, the host backends (native and the tract fallback), the default
//! artifacts, and building and talking to the firmware (QEMU or a real board).
//!
//! The flow, each layer using only those below it: `checkpoint` (Hugging Face directories, fp32
//! exports read back) → `onnx` (export) → `quant` (calibrate, plan, lower into a package) and
//! `reasoner` (its checkpoint, quantization, engines, evaluation) → `kb` (banks) → `catalog` (the
//! shipped artifacts' paths) → `artifacts` (their recipes, built on first use) → `load` (what a
//! command runs, defaults resolved) → `distill` (students of a teacher: labels, training,
//! their cards) → `cmd` (the subcommands). `device` builds the firmware and
//! talks to it (QEMU, a serial port); `backend` and `tract` are the host engines.

pub mod args;
pub mod artifacts;
pub mod backend;
pub mod batch;
pub mod catalog;
pub mod checkpoint;
pub mod cmd;
pub mod defaults;
pub mod device;
pub mod distill;
pub mod fp32;
pub mod framed_file;
pub mod input;
pub mod kb;
pub mod lexical;
pub mod load;
pub mod onnx;
pub mod output;
pub mod pairs;
pub mod quant;
pub mod reasoner;
pub mod stats;
pub mod stdout;
pub mod text;
pub mod tract;
