//! pith-tests: host-side integration tests and the QEMU simulator harness.

pub mod capi;
pub mod checkpoint;
pub mod cli;
pub mod defmt;
pub mod hostile;
pub mod memport;
pub mod noise;
pub mod qemu;
pub mod static_head;
pub mod sts;
pub mod synthetic;
