//! Host only: repacks every linear of a validated BERT package for the x86-64 or aarch64 kernels,
//! once at load.

use super::bert::{low_rq, Fast, LINEARS};
use super::sections::{LayerView, Linear};
use crate::error::Result;
use crate::format::Package;
use crate::kernels::packed::PackedLinear;

fn pack_one(lin: &Linear<'_>, n: usize, k: usize) -> Option<PackedLinear> {
    let bias: Vec<i32> = (0..n).map(|j| lin.b.at(j)).collect();
    let rq: Vec<(i32, i32)> = (0..n).map(|j| lin.rq.rq(j)).collect();
    PackedLinear::new(lin.w, &bias, &rq, n, k)
}

/// The 16-bit FFN's low-plane pass of FFN down: the packed weights of the high-plane pass, no
/// bias, `low_rq`.
fn pack_low(high: &PackedLinear, lin: &Linear<'_>, n: usize) -> Option<PackedLinear> {
    let rq: Vec<(i32, i32)> = (0..n).map(|j| low_rq(lin.rq.rq(j))).collect();
    high.with_constants(&vec![0; n], &rq)
}

/// Every layer's linears, packed for this CPU (`None` where no host kernel applies, which
/// leaves that linear on the scalar path).
pub fn pack(
    p: &Package<'_>,
    layers: u16,
    hidden: usize,
    ffn: usize,
) -> Result<Vec<[Option<Fast>; LINEARS]>> {
    (0..layers)
        .map(|l| {
            let v = LayerView::resolve(p, l, hidden, ffn)?;
            let down = pack_one(&v.down, hidden, ffn);
            let low = match (&down, v.gelu.wide()) {
                (Some(high), true) => pack_low(high, &v.down, hidden),
                _ => None,
            };
            Ok([
                pack_one(&v.q, hidden, hidden),
                pack_one(&v.k, hidden, hidden),
                pack_one(&v.v, hidden, hidden),
                pack_one(&v.o, hidden, hidden),
                pack_one(&v.up, ffn, hidden),
                down,
                low,
            ])
        })
        .collect()
}
