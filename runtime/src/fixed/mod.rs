//! Fixed-point arithmetic shared by the kernels and the engine: requantization by `(m, shift)`,
//! in-place i32 tables, the 16-bit GELU. Below both, so a kernel never reaches into the engine
//! for the arithmetic it must reproduce.

mod gelu16;
mod i32s;
mod requant;

pub use gelu16::{gelu16, planes, GELU16_KNOTS, GELU16_MAX, GELU16_MIN};
pub use i32s::I32s;
pub use requant::{
    ctx_rq, div_round, isqrt_u128, narrow_by, narrow_ok, narrow_ok_for, rq, rq_i32, rq_i8,
    rq_narrow, rq_narrow_by, rq_narrow_half, wide_bound,
};
