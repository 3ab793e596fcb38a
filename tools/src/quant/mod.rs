//! The quantizer: calibrate, plan, lower, write.

pub mod build;
pub mod calibrate;
pub mod lower;
pub mod model;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod static_model;
