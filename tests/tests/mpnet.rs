//! MPNet's relative position bias in the runtime, on the synthetic package: the two sections are
//! checked once at load (one without the other, a bucket past the bias's rows, shapes that
//! disagree with the model: refused), the bias moves the attention, and the host's kernels, the
//! devices' portable path, the scalar oracle and batching all give the same bytes with it.
//! (The real family, exported and quantized from a checkpoint, is checked against numpy in
//! onnx_export.rs and byte for byte on the simulated boards in qemu_console.rs.)

use pith_runtime::format::{DType, SectionKind};
use pith_runtime::{Error, Model};
use pith_tests::synthetic::{add_rel_bias, tiny_bert_package, tiny_package_with, WORDS};

fn sentences() -> Vec<String> {
    // Up to 60 words: offsets reach the coarse buckets as well as the exact ones.
    (0..24usize)
        .map(|i| {
            let n = 1 + (i * 5) % 60;
            (0..n)
                .map(|j| WORDS[(i * 11 + j * 7) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn embed(m: &Model<'_>, text: &str) -> Vec<i8> {
    let mut arena = vec![0i32; m.arena_words(m.max_tokens())];
    let mut out = vec![0i8; m.dim()];
    m.embed(text, &mut arena, &mut out).expect("embeds");
    out
}

fn load(bytes: &[u8]) -> Result<(), Error> {
    Model::new(bytes).map(|_| ())
}

#[test]
fn relative_bias_sections_are_checked_at_load() {
    assert_eq!(load(&tiny_package_with(3, |w| add_rel_bias(w, 5))), Ok(()));
    let only = |kind: SectionKind| {
        tiny_package_with(3, move |w| match kind {
            SectionKind::RelBuckets => w.add(kind, 0, DType::U8, 1, 127, vec![0u8; 127]),
            _ => w.add_i32(kind, 0, 32, 4, &[0; 128]),
        })
    };
    assert_eq!(
        load(&only(SectionKind::RelBuckets)),
        Err(Error::PackageBadSection)
    );
    assert_eq!(
        load(&only(SectionKind::RelBias)),
        Err(Error::PackageMissingSection)
    );
    let broken = |buckets: Vec<u8>, rows: usize, heads: usize| {
        tiny_package_with(3, move |w| {
            w.add(
                SectionKind::RelBuckets,
                0,
                DType::U8,
                1,
                buckets.len(),
                buckets,
            );
            w.add_i32(SectionKind::RelBias, 0, rows, heads, &vec![1; rows * heads]);
        })
    };
    // 64 positions: 127 offsets. A bucket past the 32 rows, one offset short, 3 heads of 4.
    let mut past = vec![0u8; 127];
    past[100] = 32;
    assert_eq!(load(&broken(past, 32, 4)), Err(Error::PackageBadSection));
    assert_eq!(
        load(&broken(vec![0; 126], 32, 4)),
        Err(Error::PackageBadSection)
    );
    assert_eq!(
        load(&broken(vec![0; 127], 32, 3)),
        Err(Error::PackageBadSection)
    );
    assert_eq!(load(&broken(vec![31; 127], 32, 4)), Ok(()));
}

#[test]
fn relative_bias_moves_attention_and_every_path_agrees() {
    let plain = tiny_bert_package(3);
    let biased = tiny_package_with(3, |w| add_rel_bias(w, 5));
    let (p, b) = (Model::new(&plain).unwrap(), Model::new(&biased).unwrap());
    let texts = sentences();
    // The first layer's residual stream: every sentence's attention must move (each has at
    // least three tokens, so at least three offsets). The pooled int8 vector may absorb it:
    // this random model's attention adds little to its residual.
    let first_layer = |m: &Model<'_>, t: &str| {
        let mut ids = vec![0u32; m.max_tokens()];
        let n = m.tokenizer().encode(t, &mut ids).unwrap();
        let mut arena = vec![0i32; m.arena_words(n)];
        let (mut out, mut res) = (vec![0i8; m.dim()], Vec::new());
        let keep = |l: usize, r: &[i32]| {
            if l == 0 {
                res = r.to_vec();
            }
        };
        m.embed_ids_observed(&ids[..n], &mut arena, &mut out, keep)
            .unwrap();
        res
    };
    for t in &texts {
        assert_ne!(first_layer(&p, t), first_layer(&b, t), "{t}");
    }

    let fast: Vec<Vec<i8>> = texts.iter().map(|t| embed(&b, t)).collect();
    pith_runtime::kernels::force_scalar(true);
    let oracle: Vec<Vec<i8>> = texts.iter().map(|t| embed(&b, t)).collect();
    pith_runtime::kernels::force_scalar(false);
    pith_runtime::kernels::force_portable(true);
    let device: Vec<Vec<i8>> = texts.iter().map(|t| embed(&b, t)).collect();
    pith_runtime::kernels::force_portable(false);
    assert_eq!(fast, oracle);
    assert_eq!(device, oracle);

    // A batch of every sentence: positions (and offsets) count within each sentence.
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let mut buf = vec![0u32; b.max_tokens()];
            let n = b.tokenizer().encode(t, &mut buf).unwrap();
            buf.truncate(n);
            buf
        })
        .collect();
    let flat: Vec<u32> = ids.concat();
    let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
    let mut arena = vec![0i32; b.arena_words(flat.len())];
    let mut out = vec![0i8; b.dim() * texts.len()];
    b.embed_ids_batch(&flat, &lens, &mut arena, &mut out)
        .unwrap();
    assert_eq!(out, oracle.concat());
}
