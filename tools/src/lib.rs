//! pith-tools: everything the `pith` CLI does, as a library the tests reuse: reading checkpoints,
//! export and quantization, the host backends (native and the tract fallback), the default
//! artifacts, and building and talking to the firmware (QEMU or a real board).

pub mod args;
pub mod artifacts;
pub mod backend;
pub mod catalog;
pub mod checkpoint;
pub mod checkpoint_onnx;
pub mod cmd;
pub mod console_line;
pub mod defaults;
pub mod device;
pub mod firmware;
pub mod fp32;
pub mod framed_file;
pub mod hf_config;
pub mod image;
pub mod kb;
pub mod load;
pub mod onnx;
pub mod output;
pub mod pairs;
pub mod prune;
pub mod quant;
pub mod reasoner;
pub mod stats;
pub mod stdout;
pub mod text;
pub mod tract;
pub mod uf2;
