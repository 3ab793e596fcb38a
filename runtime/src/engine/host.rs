//! Host only: repacks every linear of a validated BERT package for the x86-64 or aarch64 kernels,
//! once at load.

use super::bert::{Fast, LINEARS};
use super::sections::{Gelu, LayerView, Linear, WideAcc};
use crate::kernels::packed::PackedLinear;

fn pack_one(lin: &Linear<'_>, n: usize, k: usize) -> Option<PackedLinear> {
    let bias: Vec<i32> = (0..n).map(|j| lin.b.at(j)).collect();
    let rq: Vec<(i32, i32)> = (0..n).map(|j| lin.rq.rq(j)).collect();
    PackedLinear::new(lin.w, &bias, &rq, n, k)
}

/// FFN down of a 16-bit FFN layer, with the constants of its one requantization over the 16-bit
/// activations: bias `128·b`, shift 7 more (see `bert::down16`). Not packed where a channel's sum
/// may leave i32 (`WideAcc::I64`): the oracle's i64 path runs it.
fn pack_down16(lin: &Linear<'_>, acc: WideAcc, n: usize, k: usize) -> Option<PackedLinear> {
    if acc == WideAcc::I64 {
        return None;
    }
    let bias: Vec<i32> = (0..n).map(|j| lin.b.at(j).wrapping_mul(128)).collect();
    let rq: Vec<(i32, i32)> = (0..n)
        .map(|j| {
            let (m, sh) = lin.rq.rq(j);
            (m, sh.saturating_add(7))
        })
        .collect();
    PackedLinear::new(lin.w, &bias, &rq, n, k)
}

/// Every layer's linears, packed for this CPU (`None` where no host kernel applies, which
/// leaves that linear on the scalar path), from the layers `Model::new` resolved.
pub fn pack(layers: &[LayerView<'_>], hidden: usize, ffn: usize) -> Vec<[Option<Fast>; LINEARS]> {
    layers
        .iter()
        .map(|v| {
            [
                pack_one(&v.q, hidden, hidden),
                pack_one(&v.k, hidden, hidden),
                pack_one(&v.v, hidden, hidden),
                pack_one(&v.o, hidden, hidden),
                pack_one(&v.up, ffn, hidden),
                match v.gelu {
                    Gelu::I8(_) => pack_one(&v.down, hidden, ffn),
                    Gelu::I16(_) => pack_down16(&v.down, v.down16, hidden, ffn),
                },
            ]
        })
        .collect()
}
