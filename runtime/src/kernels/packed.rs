//! Host GEMM on weights repacked once at load into the layout the x86 inner loops read.
//!
//! Why repack on the host instead of storing this layout in the package: one package is flashed to
//! every target and must give the same bytes everywhere. Cortex-M kernels (SMLAD pairs, Helium's
//! `VMLADAVA` over 16 contiguous bytes of one row) read the package's row-major `[out, in]` rows;
//! `vpdpbusd` wants 16 output channels side by side with 4 consecutive inputs each. No single layout
//! feeds both without a shuffle in the inner loop, and the host has memory and time to spare at load
//! (a few milliseconds for MiniLM), so the host keeps its own copy.
//!
//! Layout: output channels in blocks of 16, inputs in groups of 4, one 64-byte line per
//! (block, group): byte `4c + i` of line `(block, g)` is `w[16 block + c][4 g + i]`, zero-padded
//! past the last channel. `vpdpbusd` multiplies unsigned by signed bytes and only its signed operand
//! can be a broadcast from memory, so the VNNI layout stores `w + 128` (unsigned) and the activations
//! stay signed, broadcast straight from the arena; each token's `128 · Σ_k x[t][k]` is subtracted in
//! the epilogue. The inner loop is pure multiply-accumulate.

use super::epilogue::Epilogue;
use super::x86_gemm;

/// One 64-byte line of packed weights, cache-line aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Line(pub [u8; 64]);

/// Which x86 kernel a packed linear runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 VNNI (`vpdpbusd` on zmm), unsigned activations.
    Avx512Vnni,
    /// AVX2 (`vpsignb`, `vpmaddubsw`, `vpmaddwd`), signed activations.
    Avx2,
}

impl Isa {
    /// The fastest kernel this CPU runs, if any.
    pub fn detect() -> Option<Isa> {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni")
        {
            Some(Isa::Avx512Vnni)
        } else if std::is_x86_feature_detected!("avx2") {
            Some(Isa::Avx2)
        } else {
            None
        }
    }

    /// True when this CPU can run `self` (tests force each path the machine has).
    pub fn supported(self) -> bool {
        match self {
            Isa::Avx512Vnni => Isa::detect() == Some(Isa::Avx512Vnni),
            Isa::Avx2 => std::is_x86_feature_detected!("avx2"),
        }
    }
}

/// Output channels per block (one zmm of i32 lanes).
pub const BLOCK: usize = 16;

/// A linear layer's weights and output constants in kernel order.
pub struct PackedLinear {
    pub(crate) n: usize,
    pub(crate) k: usize,
    /// Groups of 4 inputs (`ceil(k / 4)`).
    pub(crate) groups: usize,
    /// Blocks of 16 outputs (`ceil(n / 16)`).
    pub(crate) blocks: usize,
    pub(crate) isa: Isa,
    /// AVX-512 VBMI present: the GELU table lookup runs in vector registers.
    pub(crate) vbmi: bool,
    pub(crate) w: Vec<Line>,
    /// Per channel, padded to `blocks * 16`: bias, multiplier, and shift clamped to 0..=62 as the
    /// oracle does.
    pub(crate) bias: Vec<i32>,
    pub(crate) mult: Vec<i32>,
    pub(crate) shift: Vec<i32>,
}

impl PackedLinear {
    /// Packs `w` (`[n, k]`, row-major) with per-channel `bias` and `(m, shift)` for the fastest
    /// kernel of this CPU. `None` when there is none or the layer is outside the range in which the
    /// kernel is provably exact (then the caller keeps the scalar path).
    pub fn new(w: &[i8], bias: &[i32], rq: &[(i32, i32)], n: usize, k: usize) -> Option<Self> {
        Self::with_isa(Isa::detect()?, w, bias, rq, n, k)
    }

    /// [`PackedLinear::new`] for a given kernel (which the CPU must support).
    pub fn with_isa(
        isa: Isa,
        w: &[i8],
        bias: &[i32],
        rq: &[(i32, i32)],
        n: usize,
        k: usize,
    ) -> Option<Self> {
        // Whole groups of 4 only: a broadcast of the last group must not read past the arena row.
        if !isa.supported() || n == 0 || k == 0 || !k.is_multiple_of(4) || w.len() < n * k {
            return None;
        }
        if bias.len() < n || rq.len() < n {
            return None;
        }
        let w = &w[..n * k];
        // AVX2's sign trick negates weights: -128 has no negation in i8.
        if isa == Isa::Avx2 && w.contains(&-128) {
            return None;
        }
        // Exactness: the kernel's i32 `acc + b - 128·Σx` must equal the oracle's i64 `acc + b`.
        // |Σ (w+128)·x| <= k·255·128 and |128·Σx| <= k·128·128 (VNNI; AVX2 needs less).
        let bound = k as i64 * (255 * 128 + 128 * 128);
        if bias[..n]
            .iter()
            .any(|&b| bound + (b as i64).abs() >= i32::MAX as i64)
        {
            return None;
        }
        let offset = match isa {
            Isa::Avx512Vnni => 128u8,
            Isa::Avx2 => 0,
        };
        let (groups, blocks) = (k / 4, n.div_ceil(BLOCK));
        let mut lines = vec![Line([0; 64]); groups * blocks];
        for (row, ws) in w.chunks_exact(k).enumerate() {
            let (b, c) = (row / BLOCK, row % BLOCK);
            for (col, &v) in ws.iter().enumerate() {
                lines[b * groups + col / 4].0[4 * c + col % 4] = (v as u8).wrapping_add(offset);
            }
        }
        let padded = blocks * BLOCK;
        let (mut eb, mut em, mut es) = (vec![0i32; padded], vec![0i32; padded], vec![0i32; padded]);
        for row in 0..n {
            eb[row] = bias[row];
            em[row] = rq[row].0;
            es[row] = rq[row].1.clamp(0, 62);
        }
        Some(PackedLinear {
            n,
            k,
            groups,
            blocks,
            isa,
            vbmi: isa == Isa::Avx512Vnni && std::is_x86_feature_detected!("avx512vbmi"),
            w: lines,
            bias: eb,
            mult: em,
            shift: es,
        })
    }

    /// Output channels.
    pub fn outputs(&self) -> usize {
        self.n
    }

    /// Inputs per channel.
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// The kernel this layer runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Runs the layer over `tokens` rows of `x` (`[tokens, k]`) into `epi` (`[tokens, n]`).
    /// Gives exactly the bytes of the scalar oracle with the same epilogue.
    pub fn run(&self, x: &[i8], tokens: usize, epi: &mut Epilogue<'_>) {
        let tokens = tokens.min(x.len() / self.k);
        x86_gemm::gemm(self, &x[..tokens * self.k], tokens, epi);
    }

    /// Stores the 16-channel block `block` of token `t` from raw kernel sums (`Σ w'·x`, where `w'`
    /// is the kernel's view of the weights) minus the token's correction `corr`: the scalar
    /// epilogue, used by the AVX2 path and by VNNI blocks whose output slice is short.
    #[inline]
    pub(crate) fn store_block(
        &self,
        t: usize,
        block: usize,
        sums: &[i32; BLOCK],
        corr: i32,
        epi: &mut Epilogue<'_>,
    ) {
        let base = block * BLOCK;
        for (c, &acc) in sums.iter().enumerate().take(self.n.saturating_sub(base)) {
            let j = base + c;
            // The bound checked at pack time makes this i32 sum exact.
            let s = acc.wrapping_add(self.bias[j]).wrapping_sub(corr) as i64;
            epi.store(t * self.n + j, s, self.mult[j], self.shift[j]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }

    fn case(max_n: usize, max_k: usize) -> impl Strategy<Value = Case> {
        (1..=max_n, 1..=max_k / 4, 1..=19usize, any::<bool>())
            .prop_flat_map(|(n, groups, tokens, zero_rows)| {
                let k = 4 * groups;
                (
                    Just((n, k, tokens)),
                    proptest::collection::vec(byte(-128), tokens * k),
                    proptest::collection::vec(byte(-127), n * k).prop_map(move |mut w| {
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
                )
            })
            .prop_map(|((n, k, tokens), x, w, bias, rq, xr, table)| Case {
                n,
                k,
                tokens,
                x,
                w,
                bias,
                rq,
                xr,
                table,
            })
    }

    /// Runs `c` through `isa`'s packed kernel and the oracle with all three epilogues.
    fn check(isa: Isa, c: &Case) -> Result<(), TestCaseError> {
        let Some(p) = PackedLinear::with_isa(isa, &c.w, &c.bias, &c.rq, c.n, c.k) else {
            // Only a missing CPU feature may refuse these shapes and ranges.
            prop_assert!(!isa.supported(), "{isa:?} refused a case in range");
            return Ok(());
        };
        let dims = (c.n, c.k, c.tokens);
        let len = c.tokens * c.n;
        let (mut a, mut b) = (vec![0i8; len], vec![0i8; len]);
        p.run(&c.x, c.tokens, &mut Epilogue::I8(&mut a));
        oracle(&c.x, &c.w, &c.bias, &c.rq, dims, &mut Epilogue::I8(&mut b));
        prop_assert_eq!(&a, &b, "i8 epilogue");
        let (mut a, mut b) = (c.xr.clone(), c.xr.clone());
        p.run(&c.x, c.tokens, &mut Epilogue::Residual(&mut a));
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
        p.run(&c.x, c.tokens, &mut Epilogue::Gelu(&mut a, &c.table));
        oracle(
            &c.x,
            &c.w,
            &c.bias,
            &c.rq,
            dims,
            &mut Epilogue::Gelu(&mut b, &c.table),
        );
        prop_assert_eq!(&a, &b, "gelu epilogue");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every tail: channels not a multiple of 16 or 32, input groups not a multiple of 2,
        /// tokens not a multiple of the tile height.
        #[test]
        fn vnni_equals_oracle(c in case(70, 70)) {
            check(Isa::Avx512Vnni, &c)?;
        }

        #[test]
        fn avx2_equals_oracle(c in case(70, 70)) {
            check(Isa::Avx2, &c)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// The model's own shapes (384 and 1536 inputs) with saturating values.
        #[test]
        fn model_shapes_equal_oracle(c in case(40, 1536)) {
            check(Isa::Avx512Vnni, &c)?;
            check(Isa::Avx2, &c)?;
        }
    }

    /// The cases the kernels must refuse rather than compute inexactly.
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
}
