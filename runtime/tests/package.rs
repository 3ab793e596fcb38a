//! The runtime against the real default package: validation of damaged packages, determinism,
//! and no panic on hostile text. Needs models/minilm-l6.pith (scripts/test.sh builds it first).

use pith_runtime::{Error, Model};

fn package() -> Vec<u8> {
    let path = std::env::var("PITH_PACKAGE").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../models/minilm-l6.pith").to_string()
    });
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; build it with `cargo run --release --bin pith -- embed hi` (scripts/test.sh does)")
    })
}

fn embed(m: &Model<'_>, text: &str) -> Vec<i8> {
    let mut arena = vec![0i32; m.arena_words(m.max_tokens())];
    let mut out = vec![0i8; m.dim()];
    m.embed(text, &mut arena, &mut out).expect("embeds");
    out
}

#[test]
fn damaged_packages_are_refused_with_the_right_error() {
    let good = package();
    assert!(Model::new(&good).is_ok());
    // Truncation anywhere: never a panic, always an error.
    for cut in [0, 3, 10, 27, 100, 4096, good.len() / 2, good.len() - 1] {
        assert!(Model::new(&good[..cut]).is_err(), "truncated at {cut}");
    }
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(Model::new(&bad).err(), Some(Error::PackageBadMagic));
    let mut bad = good.clone();
    bad[4] = 99;
    assert_eq!(
        Model::new(&bad).err(),
        Some(Error::PackageUnsupportedVersion(99))
    );
    // A flipped bit in the weights is caught by the checksum.
    let mut bad = good.clone();
    let at = good.len() * 3 / 4;
    bad[at] ^= 0x10;
    assert_eq!(Model::new(&bad).err(), Some(Error::PackageBadChecksum));
    // Garbage of every small size.
    for n in 0..64 {
        let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
        assert!(Model::new(&junk).is_err());
    }
}

#[test]
fn a_damaged_header_or_section_table_fails_the_checksum_and_never_panics_without_it() {
    let good = package();
    let mut bad = good.clone();
    let (mut refused, mut embeds) = (0, 0);
    for at in 24..600 {
        bad[at] ^= 0xff;
        // With its checksum every damaged byte is refused (checked on every 8th: each check reads
        // the whole package) ...
        assert!(
            at % 8 != 0 || pith_runtime::Package::new_checked(&bad).is_err(),
            "byte {at} damaged and the package still loads"
        );
        // ... and without it the structural checks refuse the damage or load a model that runs
        // (a swapped layer index loads other weights: only the checksum can tell): never a panic.
        match embed_with(&bad) {
            None => refused += 1,
            Some(_) => embeds += 1,
        }
        bad[at] ^= 0xff;
    }
    eprintln!("without the checksum: {refused} refused, {embeds} loaded and embedded");
    assert!(refused > 2 * embeds, "refused {refused}, embedded {embeds}");
}

/// The embedding of one sentence with the package `bytes` loaded without its checksum, or `None`
/// when loading or embedding refuses it.
fn embed_with(bytes: &[u8]) -> Option<Vec<i8>> {
    let p = pith_runtime::Package::new_checked_without_crc(bytes).ok()?;
    let m = Model::from_package(p).ok()?;
    let mut arena = vec![0i32; m.arena_words(16)];
    let mut out = vec![0i8; m.dim()];
    m.embed("still answers", &mut arena, &mut out).ok()?;
    Some(out)
}

/// A 16-bit GELU table whose knot leaves the output range is refused at load: the kernels'
/// interpolation is exact in i32 only for knots in range, so no embedding may run on it.
#[test]
fn an_out_of_range_gelu16_knot_is_refused() {
    use pith_runtime::format::SectionKind;
    let good = package();
    let at = {
        let p = pith_runtime::Package::new_checked(&good).expect("default package");
        let (_, data) = p
            .find(SectionKind::GeluTable16, 0)
            .expect("the default package runs its FFNs at 16 bits");
        data.as_ptr() as usize - good.as_ptr() as usize
    };
    for knot in [0usize, 128, 256] {
        for v in [16_320i32, -16_385, i32::MAX] {
            let mut bad = good.clone();
            bad[at + 4 * knot..at + 4 * knot + 4].copy_from_slice(&v.to_le_bytes());
            let p = pith_runtime::Package::new_checked_without_crc(&bad).expect("structure intact");
            assert_eq!(
                Model::from_package(p).err(),
                Some(Error::PackageBadSection),
                "knot {knot} = {v}"
            );
        }
    }
}

#[test]
fn embeddings_are_deterministic_and_sensible() {
    let bytes = package();
    let m = Model::new(&bytes).expect("package loads");
    let a = embed(&m, "A man is playing a guitar.");
    let b = embed(&m, "A man is playing a guitar.");
    assert_eq!(a, b);
    // Same bytes from another thread and another arena (no hidden state).
    let bytes2 = bytes.clone();
    let c = std::thread::spawn(move || {
        let m = Model::new(&bytes2).expect("loads");
        embed(&m, "A man is playing a guitar.")
    })
    .join()
    .expect("thread");
    assert_eq!(a, c);
    let near = embed(&m, "Someone plays the guitar.");
    let far = embed(&m, "The stock market fell sharply today.");
    let s_near = pith_runtime::cosine_i8(&a, &near);
    let s_far = pith_runtime::cosine_i8(&a, &far);
    assert!(
        s_near > 0.6 && s_far < 0.3 && s_near > s_far + 0.3,
        "near {s_near} far {s_far}"
    );
}

#[test]
fn simd_and_scalar_kernels_give_the_same_bytes() {
    let bytes = package();
    let m = Model::new(&bytes).expect("package loads");
    let lines = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/calib/snli-dev-sentences.txt"
    ))
    .expect("calibration sentences");
    for line in lines.lines().skip(1000).take(40) {
        pith_runtime::kernels::force_scalar(false);
        let fast = embed(&m, line);
        pith_runtime::kernels::force_scalar(true);
        let scalar = embed(&m, line);
        pith_runtime::kernels::force_scalar(false);
        assert_eq!(fast, scalar, "{line}");
    }
}

#[test]
fn hostile_text_never_panics() {
    let bytes = package();
    let m = Model::new(&bytes).expect("package loads");
    let mut arena = vec![0i32; m.arena_words(m.max_tokens())];
    let mut out = vec![0i8; m.dim()];
    let long = "word ".repeat(20_000); // 100 kB
    let controls: String = (0u8..32).map(|b| b as char).collect();
    let mut seed = 7u32;
    let random: String = (0..5000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            char::from_u32(seed % 0x30000).unwrap_or('?')
        })
        .collect();
    for text in [
        "",
        " ",
        "\u{0}",
        controls.as_str(),
        long.as_str(),
        random.as_str(),
        "[CLS] [SEP] [PAD]",
    ] {
        let n = m
            .embed(text, &mut arena, &mut out)
            .expect("any text embeds");
        assert!((2..=m.max_tokens()).contains(&n));
    }
    // A tiny arena is an error, not a panic; a modest one truncates.
    assert_eq!(
        m.embed("hello", &mut arena[..10], &mut out).err(),
        Some(Error::ArenaTooSmall)
    );
    let words = m.arena_words(16);
    assert_eq!(m.embed(&long, &mut arena[..words], &mut out), Ok(16));
    let mut wrong = vec![0i8; 3];
    assert_eq!(
        m.embed("hello", &mut arena, &mut wrong).err(),
        Some(Error::OutputSizeMismatch)
    );
}

/// `embed_observed` reports every stage once per embedding (the per-layer ones once per layer),
/// in order, and gives the plain embedding: with a
/// clock that ticks once per read, each stage's total is how often it was reported.
#[test]
fn the_profile_sees_every_stage_of_every_layer() {
    use pith_runtime::{Profile, Stage};
    let bytes = package();
    let m = Model::new(&bytes).unwrap();
    let layers = m.header().model.layers as u64;
    let mut arena = vec![0i32; m.arena_words(m.max_tokens())];
    let mut out = vec![0i8; m.dim()];
    let mut ticks = 0u64;
    let mut seen = Vec::new();
    let mut p = Profile::new(|| {
        ticks += 1;
        ticks
    });
    struct Order<'a, P>(&'a mut P, &'a mut Vec<Stage>);
    impl<P: pith_runtime::Observer> pith_runtime::Observer for Order<'_, P> {
        fn stage(&mut self, layer: usize, stage: Stage) {
            self.1.push(stage);
            self.0.stage(layer, stage);
        }
    }
    let text = "A man is playing a guitar.";
    let tokens = m
        .embed_observed(text, &mut arena, &mut out, &mut Order(&mut p, &mut seen))
        .unwrap();
    assert_eq!(out, embed(&m, text));
    for s in Stage::ALL {
        let want = match s {
            Stage::Tokenize | Stage::Embed | Stage::Pool => 1,
            _ => layers,
        };
        assert_eq!(p.totals[s as usize], want, "{s:?}");
    }
    // In the order the stages run: every report is at or after its predecessor in Stage::ALL
    // within a layer.
    assert_eq!(seen.first(), Some(&Stage::Tokenize));
    assert_eq!(seen.last(), Some(&Stage::Pool));
    let macs = m.stage_macs(tokens);
    let (t, h, f) = (tokens as u64, m.dim() as u64, m.header().model.ffn as u64);
    assert_eq!(macs[Stage::Q as usize], layers * t * h * h);
    assert_eq!(macs[Stage::FfnUp as usize], layers * t * h * f);
    assert_eq!(macs[Stage::Attention as usize], layers * 2 * t * t * h);
}

/// The devices' path (the portable matmul with the short requantization the load-time ranges
/// admit) gives the definition's bytes on the real package: 40 sentences, both ways.
#[test]
fn the_short_requantization_matches_the_definition_on_the_real_package() {
    let bytes = package();
    let m = Model::new(&bytes).unwrap();
    let sentences: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "sentence {i} about a dog running in the park number {}",
                i * 7
            )
        })
        .collect();
    pith_runtime::kernels::force_scalar(true);
    let oracle: Vec<Vec<i8>> = sentences.iter().map(|s| embed(&m, s)).collect();
    pith_runtime::kernels::force_scalar(false);
    pith_runtime::kernels::force_portable(true);
    let device: Vec<Vec<i8>> = sentences.iter().map(|s| embed(&m, s)).collect();
    pith_runtime::kernels::force_portable(false);
    assert_eq!(device, oracle);
}

/// A batch gives each sentence the bytes it gets alone: batches of 1 to all 12 sentences (short,
/// long, one-word), on the host's kernels and on the devices' portable path.
#[test]
fn a_batch_gives_each_sentence_its_own_bytes() {
    let bytes = package();
    let m = Model::new(&bytes).unwrap();
    let long = "the quick brown fox jumps over the lazy dog ".repeat(40);
    let texts = [
        "A man is playing a guitar.",
        "hi",
        "Two dogs run through a snowy field while a third watches from the fence.",
        long.as_str(),
        "What is the capital of France?",
        "ok",
        "A woman slices an onion in a small kitchen.",
        "Nobody is swimming.",
        "The kids are not playing outside because it is raining hard today.",
        "x",
        "Is it safe to delete the contents of /tmp on a running Linux server?",
        "A cat sleeps.",
    ];
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let mut buf = vec![0u32; m.max_tokens()];
            let n = m.tokenizer().encode(t, &mut buf).unwrap();
            buf.truncate(n);
            buf
        })
        .collect();
    let alone: Vec<Vec<i8>> = texts.iter().map(|t| embed(&m, t)).collect();
    for portable in [false, true] {
        pith_runtime::kernels::force_portable(portable);
        for size in [1, 2, 5, 12] {
            for (c, chunk) in ids.chunks(size).enumerate() {
                let flat: Vec<u32> = chunk.concat();
                let lens: Vec<usize> = chunk.iter().map(Vec::len).collect();
                let mut arena = vec![0i32; m.arena_words(flat.len()) - flat.len()];
                let mut out = vec![0i8; chunk.len() * m.dim()];
                m.embed_ids_batch(&flat, &lens, &mut arena, &mut out)
                    .unwrap();
                for (i, v) in out.chunks_exact(m.dim()).enumerate() {
                    let want = &alone[c * size + i];
                    assert_eq!(
                        v,
                        &want[..],
                        "batch {size}, sentence {}, portable {portable}",
                        c * size + i
                    );
                }
            }
        }
    }
    pith_runtime::kernels::force_portable(false);
    // Lengths that do not add up, an empty sentence or a short output are refused.
    let mut arena = vec![0i32; m.arena_words(8)];
    let mut out = vec![0i8; 2 * m.dim()];
    let flat = [ids[1].clone(), ids[5].clone()].concat();
    assert_eq!(
        m.embed_ids_batch(&flat, &[ids[1].len(), 1], &mut arena, &mut out),
        Err(Error::PackageBadConfig)
    );
    assert_eq!(
        m.embed_ids_batch(&flat, &[flat.len(), 0], &mut arena, &mut out),
        Err(Error::PackageBadConfig)
    );
    assert_eq!(
        m.embed_ids_batch(
            &flat,
            &[ids[1].len(), ids[5].len()],
            &mut arena,
            &mut out[..5]
        ),
        Err(Error::OutputSizeMismatch)
    );
}
