//! The packed layout and its invariants: a [`PackedLinear`] can only be built by packing, so every
//! kernel may rely on its shapes (lines for every block and group, constants padded to whole
//! blocks, `k` a multiple of 4) without checking them again.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::kernels::epilogue::Epilogue;

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
    n: usize,
    k: usize,
    /// Groups of 4 inputs (`ceil(k / 4)`).
    groups: usize,
    /// Blocks of 16 outputs (`ceil(n / 16)`).
    blocks: usize,
    isa: Isa,
    /// AVX-512 VBMI present: the GELU table lookup runs in vector registers.
    #[cfg(target_arch = "x86_64")]
    vbmi: bool,
    /// Shared by layers that differ only in their constants (the 16-bit FFN's two passes over
    /// FFN down): one copy of the weights, which the second pass then finds in cache.
    w: std::sync::Arc<Vec<Line>>,
    /// Per channel, padded to `blocks * 16`: bias, multiplier, and shift clamped to 0..=62 as the
    /// oracle does.
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i32>,
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
    #[inline(always)]
    pub fn outputs(&self) -> usize {
        self.n
    }

    /// Inputs per channel.
    #[inline(always)]
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// The kernel this layer runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Groups of 4 inputs (`k / 4`; packing takes whole groups only).
    #[inline(always)]
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Blocks of [`BLOCK`] output channels (`ceil(n / 16)`).
    #[inline(always)]
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// The packed weights: `blocks · groups` lines, line `(b, g)` at `b · groups + g`.
    #[inline(always)]
    pub fn lines(&self) -> &[Line] {
        &self.w
    }

    /// Per-channel bias, multiplier and shift (0..=62), each padded to `blocks · 16`.
    #[inline(always)]
    pub fn constants(&self) -> (&[i32], &[i32], &[i32]) {
        (&self.bias, &self.mult, &self.shift)
    }

    /// AVX-512 VBMI present: the GELU table lookup runs in vector registers.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub fn vbmi(&self) -> bool {
        self.vbmi
    }

    /// Stores the 16-channel block `block` of token `t` from raw kernel sums (`Σ w'·x`, where `w'`
    /// is the kernel's view of the weights) minus the token's correction `corr`: the scalar
    /// epilogue, used by the AVX2 and aarch64 paths and by VNNI blocks whose output slice is short.
    #[inline]
    pub(super) fn store_block(
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
