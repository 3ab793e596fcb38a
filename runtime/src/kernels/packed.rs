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

use core::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "aarch64")]
use super::aarch64_gemm as gemm;
use super::epilogue::Epilogue;
#[cfg(target_arch = "x86_64")]
use super::x86_gemm as gemm;

/// One 64-byte line of packed weights, cache-line aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Line(pub [u8; 64]);

/// Which host kernel a packed linear runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 VNNI (`vpdpbusd` on zmm), unsigned activations.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    /// AVX2 (`vpsignb`, `vpmaddubsw`, `vpmaddwd`), signed activations.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Armv8.2 dot product (`sdot` by element): Raspberry Pi 5, Graviton 2+, Apple.
    #[cfg(target_arch = "aarch64")]
    Sdot,
    /// Plain Armv8 NEON (`smull`, `smlal`, `sadalp`): Raspberry Pi 4 and other cores without
    /// dotprod.
    #[cfg(target_arch = "aarch64")]
    Neon,
}

/// [`Isa::detect`]'s override set by [`prefer`]: 0 for none, else 1 + the kernel's index in
/// [`Isa::ALL`].
static PREFERRED: AtomicU8 = AtomicU8::new(0);

/// Makes [`Isa::detect`] (and so every `Model` loaded afterwards) use `isa` instead of the fastest
/// kernel, or the fastest again with `None`: lets tests and tools run each kernel of a CPU end to
/// end. Returns false, changing nothing, when this CPU cannot run `isa`.
pub fn prefer(isa: Option<Isa>) -> bool {
    let code = match isa {
        None => 0,
        Some(i) if i.supported() => Isa::ALL.iter().position(|&a| a == i).map_or(0, |p| p + 1),
        Some(_) => return false,
    };
    PREFERRED.store(code as u8, Ordering::Relaxed);
    true
}

impl Isa {
    /// Every kernel of this architecture, fastest first.
    #[cfg(target_arch = "x86_64")]
    pub const ALL: &'static [Isa] = &[Isa::Avx512Vnni, Isa::Avx2];
    /// Every kernel of this architecture, fastest first.
    #[cfg(target_arch = "aarch64")]
    pub const ALL: &'static [Isa] = &[Isa::Sdot, Isa::Neon];

    /// The kernel to pack for: the one set by [`prefer`], else the fastest this CPU runs, if any.
    pub fn detect() -> Option<Isa> {
        let preferred = PREFERRED.load(Ordering::Relaxed) as usize;
        if let Some(&isa) = preferred.checked_sub(1).and_then(|i| Isa::ALL.get(i)) {
            return Some(isa);
        }
        Isa::ALL.iter().copied().find(|i| i.supported())
    }

    /// True when this CPU can run `self` (tests force each path the machine has).
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "aarch64")]
            Isa::Sdot => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
        }
    }

    /// What the layout adds to each weight byte (see the module doc).
    fn offset(self) -> u8 {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => 128,
            _ => 0,
        }
    }

    /// True when the kernel cannot take a -128 weight: AVX2's sign trick negates weights (-128
    /// has no negation in i8); plain NEON adds two `i8 × i8` products in i16, which only
    /// -128·-128 pairs overflow (2 · 16384 > 32767).
    fn needs_no_min_weight(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => true,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            _ => false,
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
    #[cfg(target_arch = "x86_64")]
    pub(crate) vbmi: bool,
    /// Shared by layers that differ only in their constants (the 16-bit FFN's two passes over
    /// FFN down): one copy of the weights, which the second pass then finds in cache.
    pub(crate) w: std::sync::Arc<Vec<Line>>,
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
        let w = &w[..n * k];
        if isa.needs_no_min_weight() && w.contains(&-128) {
            return None;
        }
        let offset = isa.offset();
        let (groups, blocks) = (k / 4, n.div_ceil(BLOCK));
        let mut lines = vec![Line([0; 64]); groups * blocks];
        for (row, ws) in w.chunks_exact(k).enumerate() {
            let (b, c) = (row / BLOCK, row % BLOCK);
            for (col, &v) in ws.iter().enumerate() {
                lines[b * groups + col / 4].0[4 * c + col % 4] = (v as u8).wrapping_add(offset);
            }
        }
        let p = PackedLinear {
            n,
            k,
            groups,
            blocks,
            isa,
            #[cfg(target_arch = "x86_64")]
            vbmi: isa == Isa::Avx512Vnni && std::is_x86_feature_detected!("avx512vbmi"),
            w: std::sync::Arc::new(lines),
            bias: Vec::new(),
            mult: Vec::new(),
            shift: Vec::new(),
        };
        p.with_constants(bias, rq)
    }

    /// The same packed weights with other per-channel `bias` and `(m, shift)`; `None` when the
    /// bias leaves the range in which the kernel is exact.
    pub fn with_constants(&self, bias: &[i32], rq: &[(i32, i32)]) -> Option<Self> {
        let (n, k) = (self.n, self.k);
        if bias.len() < n || rq.len() < n {
            return None;
        }
        // Exactness: the kernel's i32 `acc + b - 128·Σx` must equal the oracle's i64 `acc + b`.
        // |Σ (w+128)·x| <= k·255·128 and |128·Σx| <= k·128·128 (VNNI; the others need less).
        let bound = k as i64 * (255 * 128 + 128 * 128);
        if bias[..n]
            .iter()
            .any(|&b| bound + (b as i64).abs() >= i32::MAX as i64)
        {
            return None;
        }
        let padded = self.blocks * BLOCK;
        let (mut eb, mut em, mut es) = (vec![0i32; padded], vec![0i32; padded], vec![0i32; padded]);
        for row in 0..n {
            eb[row] = bias[row];
            em[row] = rq[row].0;
            es[row] = rq[row].1.clamp(0, 62);
        }
        Some(PackedLinear {
            w: self.w.clone(),
            bias: eb,
            mult: em,
            shift: es,
            ..*self
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
        gemm::gemm(self, &x[..tokens * self.k], tokens, epi);
    }

    /// Stores the 16-channel block `block` of token `t` from raw kernel sums (`Σ w'·x`, where `w'`
    /// is the kernel's view of the weights) minus the token's correction `corr`: the scalar
    /// epilogue, used by the AVX2 and aarch64 paths and by VNNI blocks whose output slice is short.
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
    use crate::kernels::epilogue::{GELU16_KNOTS, GELU16_MAX, GELU16_MIN};
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
        p.run(&c.x, c.tokens, &mut got);
        let mut want = Epilogue::Gelu16 {
            hi: &mut bh,
            lo: &mut bl,
            table,
        };
        oracle(&c.x, &c.w, &c.bias, &c.rq, dims, &mut want);
        prop_assert_eq!((&ah, &al), (&bh, &bl), "gelu16 epilogue");
        Ok(())
    }

    #[cfg(target_arch = "x86_64")]
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

    #[cfg(target_arch = "x86_64")]
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

        /// Every tail: channels not a multiple of 16, input groups not a multiple of 4 (SDOT's
        /// 16-byte activation load) or 2 (NEON's group pairs), tokens not a multiple of the tile
        /// height (4 for SDOT, 2 for NEON).
        #[test]
        fn sdot_equals_oracle(c in case(70, 70)) {
            check(Isa::Sdot, &c)?;
        }

        #[test]
        fn neon_equals_oracle(c in case(70, 70)) {
            check(Isa::Neon, &c)?;
        }

        /// SDOT sums in i32, so it also takes the -128 weights that plain NEON refuses.
        #[test]
        fn sdot_takes_min_weights(c in case_with(70, 70, -128)) {
            check(Isa::Sdot, &c)?;
        }
    }

    #[cfg(target_arch = "aarch64")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// The model's own shapes (384 and 1536 inputs) with saturating values.
        #[test]
        fn model_shapes_equal_oracle(c in case(40, 1536)) {
            check(Isa::Sdot, &c)?;
            check(Isa::Neon, &c)?;
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
