//! Host GEMM on weights repacked once at load into the layout the x86 and aarch64 inner loops read.
//!
//! Why repack on the host instead of storing this layout in the package: one package is flashed to
//! every target and must give the same bytes everywhere. Cortex-M kernels (SMLAD pairs, Helium's
//! `VMLADAVA` over 16 contiguous bytes of one row) read the package's row-major `[out, in]` rows;
//! `vpdpbusd` and `sdot` want 16 output channels side by side with 4 consecutive inputs each. No
//! single layout feeds both without a shuffle in the inner loop, and the host has memory and time to
//! spare at load (a few milliseconds for MiniLM), so the host keeps its own copy.
//!
//! Layout: output channels in blocks of 16, inputs in groups of 4, one 64-byte line per
//! (block, group): byte `4c + i` of line `(block, g)` is `w[16 block + c][4 g + i]`, zero-padded
//! past the last channel. `vpdpbusd` multiplies unsigned by signed bytes and only its signed operand
//! can be a broadcast from memory, so the VNNI layout stores `w + 128` (unsigned) and the activations
//! stay signed, broadcast straight from the arena; each token's `128 · Σ_k x[t][k]` is subtracted in
//! the epilogue. Every other kernel (AVX2, aarch64 SDOT and plain NEON) reads the raw signed
//! weights. The inner loop is pure multiply-accumulate.

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod layout;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(target_arch = "aarch64")]
use aarch64 as gemm;
#[cfg(target_arch = "x86_64")]
use x86 as gemm;

pub use layout::{prefer, Isa, Line, PackedLinear, BLOCK};

use super::epilogue::Epilogue;

pub use super::Input;

#[cfg(target_arch = "x86_64")]
impl Input<'_> {
    /// Each token's `Σx` over its `k` inputs (for planes, `Σy = 128·Σhi + Σlo`, wrapping like
    /// the sums it corrects).
    fn sums(&self, k: usize, tokens: usize) -> Vec<i32> {
        let sum = |r: &[i8]| r.iter().map(|&v| v as i32).sum::<i32>();
        match self {
            Input::I8(x) => x.chunks_exact(k).take(tokens).map(sum).collect(),
            Input::Planes(h, l) => h
                .chunks_exact(k)
                .zip(l.chunks_exact(k))
                .take(tokens)
                .map(|(h, l)| sum(h).wrapping_mul(128).wrapping_add(sum(l)))
                .collect(),
        }
    }
}

/// `tile = 128·high + tile` over every lane (a tile's unused lanes included: harmless): the sums
/// of the 16-bit FFN's planes meeting, wrapping like every kernel sum (exact where the layer's
/// load-time bound holds).
fn meet(tile: &mut [i32], high: &[i32]) {
    for (a, h) in tile.iter_mut().zip(high) {
        *a = h.wrapping_mul(128).wrapping_add(*a);
    }
}

impl PackedLinear {
    /// Runs the layer over `tokens` rows of `x` (`[tokens, k]`) into `epi` (`[tokens, n]`).
    /// Gives exactly the bytes of the scalar oracle with the same epilogue. Over the 16-bit
    /// FFN's planes, each tile is computed over both (the weights still in cache for the second)
    /// and its sums meet, `128·hi + lo`, before the one epilogue: `epi` takes
    /// `rq(128·(hi·w) + lo·w + bias, m, shift)` with this layer's constants (for the 16-bit FFN,
    /// `128·b` and `shift + 7`), exact where the sum fits i32.
    pub fn run(&self, x: Input<'_>, tokens: usize, epi: &mut Epilogue<'_>) {
        let tokens = x.rows(self.inputs(), tokens);
        gemm::gemm(self, x, tokens, epi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{GELU16_KNOTS, GELU16_MAX, GELU16_MIN};
    use crate::kernels::generic;
    use proptest::prelude::*;

    /// The oracle: scalar dot products through the same epilogue.
    fn oracle(
        x: &[i8],
        w: &[i8],
        bias: &[i32],
        rq: &[(i32, i32)],
        (n, k, tokens): (usize, usize, usize),
        epi: &mut Epilogue<'_>,
    ) {
        for t in 0..tokens {
            for j in 0..n {
                let acc = generic::dot_i8(&x[t * k..(t + 1) * k], &w[j * k..(j + 1) * k]);
                epi.store(t * n + j, acc as i64 + bias[j] as i64, rq[j].0, rq[j].1);
            }
        }
    }

    /// int8 with the extremes over-represented.
    fn byte(lo: i8) -> impl Strategy<Value = i8> {
        prop_oneof![Just(lo), Just(127i8), Just(0i8), lo..=127i8, lo..=127i8]
    }

    #[derive(Debug, Clone)]
    struct Case {
        n: usize,
        k: usize,
        tokens: usize,
        x: Vec<i8>,
        w: Vec<i8>,
        bias: Vec<i32>,
        rq: Vec<(i32, i32)>,
        xr: Vec<i32>,
        table: Vec<i8>,
        /// A 16-bit GELU table's bytes (knots within the output range, as validation requires).
        table16: Vec<u8>,
    }

    fn case(max_n: usize, max_k: usize) -> impl Strategy<Value = Case> {
        case_with(max_n, max_k, -127)
    }

    /// As [`case`], with weights from `w_lo` up.
    fn case_with(max_n: usize, max_k: usize, w_lo: i8) -> impl Strategy<Value = Case> {
        (1..=max_n, 1..=max_k / 4, 1..=19usize, any::<bool>())
            .prop_flat_map(move |(n, groups, tokens, zero_rows)| {
                let k = 4 * groups;
                (
                    Just((n, k, tokens)),
                    proptest::collection::vec(byte(-128), tokens * k),
                    proptest::collection::vec(byte(w_lo), n * k).prop_map(move |mut w| {
                        // All-zero rows: a channel that only carries its bias.
                        if zero_rows {
                            w.iter_mut().take(k).for_each(|v| *v = 0);
                        }
                        w
                    }),
                    proptest::collection::vec(-(1i32 << 28)..(1 << 28), n),
                    proptest::collection::vec((any::<i32>(), -3..70i32), n),
                    proptest::collection::vec(
                        prop_oneof![Just(i32::MAX), Just(i32::MIN), any::<i32>()],
                        tokens * n,
                    ),
                    proptest::collection::vec(any::<i8>(), 256),
                    proptest::collection::vec(
                        prop_oneof![Just(GELU16_MIN), Just(GELU16_MAX), GELU16_MIN..=GELU16_MAX],
                        GELU16_KNOTS,
                    ),
                )
            })
            .prop_map(|((n, k, tokens), x, w, bias, rq, xr, table, knots)| Case {
                n,
                k,
                tokens,
                x,
                w,
                bias,
                rq,
                xr,
                table,
                table16: knots.iter().flat_map(|v| v.to_le_bytes()).collect(),
            })
    }

    /// Runs `c` through `isa`'s packed kernel and the oracle with all three epilogues.
    fn check(isa: Isa, c: &Case) -> Result<(), TestCaseError> {
        // These shapes and ranges are all in the kernel's range: a refusal is a failure (a suite
        // only runs on a CPU that has its instructions; see `isa_suite!`).
        let Some(p) = PackedLinear::with_isa(isa, &c.w, &c.bias, &c.rq, c.n, c.k) else {
            return Err(TestCaseError::fail(format!(
                "{isa:?} refused a case in range (CPU supports it: {})",
                isa.supported()
            )));
        };
        let dims = (c.n, c.k, c.tokens);
        let len = c.tokens * c.n;
        let (mut a, mut b) = (vec![0i8; len], vec![0i8; len]);
        p.run(Input::I8(&c.x), c.tokens, &mut Epilogue::I8(&mut a));
        oracle(&c.x, &c.w, &c.bias, &c.rq, dims, &mut Epilogue::I8(&mut b));
        prop_assert_eq!(&a, &b, "i8 epilogue");
        let (mut a, mut b) = (c.xr.clone(), c.xr.clone());
        p.run(Input::I8(&c.x), c.tokens, &mut Epilogue::Residual(&mut a));
        oracle(
            &c.x,
            &c.w,
            &c.bias,
            &c.rq,
            dims,
            &mut Epilogue::Residual(&mut b),
        );
        prop_assert_eq!(&a, &b, "residual epilogue");
        let (mut a, mut b) = (vec![0i8; len], vec![0i8; len]);
        p.run(
            Input::I8(&c.x),
            c.tokens,
            &mut Epilogue::Gelu(&mut a, &c.table),
        );
        oracle(
            &c.x,
            &c.w,
            &c.bias,
            &c.rq,
            dims,
            &mut Epilogue::Gelu(&mut b, &c.table),
        );
        prop_assert_eq!(&a, &b, "gelu epilogue");
        let table = &c.table16[..];
        let (mut ah, mut al, mut bh, mut bl) = (
            vec![0i8; len],
            vec![0i8; len],
            vec![0i8; len],
            vec![0i8; len],
        );
        let mut got = Epilogue::Gelu16 {
            hi: &mut ah,
            lo: &mut al,
            table,
        };
        p.run(Input::I8(&c.x), c.tokens, &mut got);
        let mut want = Epilogue::Gelu16 {
            hi: &mut bh,
            lo: &mut bl,
            table,
        };
        oracle(&c.x, &c.w, &c.bias, &c.rq, dims, &mut want);
        prop_assert_eq!((&ah, &al), (&bh, &bl), "gelu16 epilogue");
        // The 16-bit FFN's planes: `x` as the high plane, a low plane in -64..=63 beside it. The
        // sum wraps in i32 like every kernel's (exact where the engine's load-time bound holds,
        // which random cases need not meet), so the oracle wraps too.
        let lo: Vec<i8> = c.x.iter().map(|&v| v >> 1).collect();
        let (mut a, mut b) = (c.xr.clone(), c.xr.clone());
        p.run(
            Input::Planes(&c.x, &lo),
            c.tokens,
            &mut Epilogue::Residual(&mut a),
        );
        let mut want = Epilogue::Residual(&mut b);
        for t in 0..c.tokens {
            for j in 0..c.n {
                let row = &c.w[j * c.k..(j + 1) * c.k];
                let dh = generic::dot_i8(&c.x[t * c.k..(t + 1) * c.k], row);
                let dl = generic::dot_i8(&lo[t * c.k..(t + 1) * c.k], row);
                let s = dh
                    .wrapping_mul(128)
                    .wrapping_add(dl)
                    .wrapping_add(c.bias[j]);
                want.store(t * c.n + j, s as i64, c.rq[j].0, c.rq[j].1);
            }
        }
        prop_assert_eq!(&a, &b, "16-bit planes");
        Ok(())
    }

    /// One property suite per instruction set: every tail (channels not a multiple of 16 or 32,
    /// input groups not a multiple of 2 or 4, tokens not a multiple of the tile height) and the
    /// model's own shapes (384 and 1536 inputs) with saturating values. `$runs` is the cfg under
    /// which this CPU has the instructions; elsewhere the suite is reported ignored with `$why`.
    macro_rules! isa_suite {
        ($name:ident, $isa:expr, $runs:meta, $why:literal) => {
            mod $name {
                use super::*;

                proptest! {
                    #![proptest_config(ProptestConfig::with_cases(300))]

                    #[test]
                    #[cfg_attr(not($runs), ignore = $why)]
                    fn every_tail_equals_oracle(c in case(70, 70)) {
                        check($isa, &c)?;
                    }
                }

                proptest! {
                    #![proptest_config(ProptestConfig::with_cases(12))]

                    #[test]
                    #[cfg_attr(not($runs), ignore = $why)]
                    fn model_shapes_equal_oracle(c in case(40, 1536)) {
                        check($isa, &c)?;
                    }
                }
            }
        };
    }

    #[cfg(target_arch = "x86_64")]
    isa_suite!(
        vnni,
        Isa::Avx512Vnni,
        pith_cpu_avx512_vnni,
        "not run: CPU lacks AVX-512 F/BW/VL/VNNI"
    );
    #[cfg(target_arch = "x86_64")]
    isa_suite!(avx2, Isa::Avx2, pith_cpu_avx2, "not run: CPU lacks AVX2");
    // aarch64 runs under `qemu-aarch64 -cpu max`, which has both: neither suite is ever skipped.
    #[cfg(target_arch = "aarch64")]
    isa_suite!(sdot, Isa::Sdot, all(), "never skipped");
    #[cfg(target_arch = "aarch64")]
    isa_suite!(neon, Isa::Neon, all(), "never skipped");

    /// The cases the kernels must refuse rather than compute inexactly.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn refuses_what_it_cannot_compute_exactly() {
        let rq = [(1 << 30, 31)];
        // AVX2 cannot negate -128.
        assert!(PackedLinear::with_isa(Isa::Avx2, &[-128, 1], &[0], &rq, 1, 2).is_none());
        // A bias near i32::MAX could overflow the kernel's i32 sum.
        assert!(PackedLinear::with_isa(Isa::Avx2, &[1; 4], &[i32::MAX - 5], &rq, 1, 4).is_none());
        // Partial groups of 4 inputs stay on the scalar path.
        assert!(PackedLinear::with_isa(Isa::Avx2, &[1; 6], &[0], &rq, 1, 6).is_none());
        assert!(PackedLinear::with_isa(Isa::Avx2, &[1; 8], &[0], &rq, 1, 8).is_some());
    }

    #[cfg(target_arch = "aarch64")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// SDOT sums in i32, so it also takes the -128 weights that plain NEON refuses.
        #[test]
        fn sdot_takes_min_weights(c in case_with(70, 70, -128)) {
            check(Isa::Sdot, &c)?;
        }
    }

    /// Plain NEON is part of every aarch64 Linux CPU: its proptests can never pass by refusing.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn neon_runs_everywhere() {
        assert!(Isa::Neon.supported());
        assert!(Isa::detect().is_some());
    }

    /// The cases the aarch64 kernels must refuse rather than compute inexactly.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn refuses_what_it_cannot_compute_exactly() {
        let rq = [(1 << 30, 31)];
        // Plain NEON's i16 pair sums overflow on -128·-128 twice; SDOT's i32 sums do not.
        assert!(PackedLinear::with_isa(Isa::Neon, &[-128, 1, 2, 3], &[0], &rq, 1, 4).is_none());
        assert!(PackedLinear::with_isa(Isa::Neon, &[-127, 1, 2, 3], &[0], &rq, 1, 4).is_some());
        if Isa::Sdot.supported() {
            assert!(PackedLinear::with_isa(Isa::Sdot, &[-128, 1, 2, 3], &[0], &rq, 1, 4).is_some());
        }
        // A bias near i32::MAX could overflow the kernel's i32 sum.
        assert!(PackedLinear::with_isa(Isa::Neon, &[1; 4], &[i32::MAX - 5], &rq, 1, 4).is_none());
        // Partial groups of 4 inputs stay on the scalar path.
        assert!(PackedLinear::with_isa(Isa::Neon, &[1; 6], &[0], &rq, 1, 6).is_none());
    }

    /// [`prefer`] refuses nothing it can run and is undone by `None`.
    #[test]
    fn prefer_selects_each_supported_kernel() {
        for &isa in Isa::ALL.iter().filter(|i| i.supported()) {
            assert!(prefer(Some(isa)));
            assert_eq!(Isa::detect(), Some(isa));
        }
        assert!(prefer(None));
        assert_eq!(
            Isa::detect(),
            Isa::ALL.iter().copied().find(|i| i.supported())
        );
    }
}
