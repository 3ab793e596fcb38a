//! aarch64 = x86-64 = the scalar oracle, byte for byte, on the default package: the runtime's
//! `embed_lines` example, cross-built for aarch64-unknown-linux-gnu and run under `qemu-aarch64
//! -cpu max` (the runner in .cargo/config.toml; scripts/setup.sh installs QEMU user mode and the
//! cross linker), embeds SNLI sentences with each aarch64 kernel (SDOT, plain NEON); this process
//! embeds the same sentences with every x86 kernel this CPU has and with the scalar oracle.
//!
//! Only pith-runtime is cross-built, into target/cross; its kernel property suites run there too.

use std::process::Command;

use pith_runtime::kernels::packed::{prefer, Isa};
use pith_runtime::Model;
use pith_tools::catalog::PACKAGE;
use pith_tools::defaults::{calib_file, repo_root};

/// Sentences compared (the first of data/calib/snli-dev-sentences.txt).
const SENTENCES: usize = 100;
/// The cross target and where its build lives.
const TARGET: &str = "aarch64-unknown-linux-gnu";
const TARGET_DIR: &str = "target/cross";

fn package_path() -> String {
    std::env::var("PITH_PACKAGE").unwrap_or_else(|_| {
        repo_root()
            .unwrap()
            .join(PACKAGE)
            .to_string_lossy()
            .into_owned()
    })
}

/// `cargo VERB` on the runtime cross-built for aarch64 (`--example embed_lines` for its example),
/// with the outer build's flags removed (they are for x86-64).
fn cargo(verb: &str) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(repo_root().unwrap())
        .args([verb, "--release", "-p", "pith-runtime", "--features", "std"])
        .args(["--target", TARGET, "--target-dir", TARGET_DIR])
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    c
}

/// The kernel `embed_lines` reports and its embeddings, run under QEMU with `kernel`.
fn aarch64(kernel: &str) -> (String, Vec<Vec<i8>>) {
    let out = cargo("run")
        .args(["--example", "embed_lines", "--"])
        .arg(package_path())
        .arg(calib_file().unwrap())
        .arg(SENTENCES.to_string())
        .arg(kernel)
        .output()
        .expect("running cargo run for the aarch64 example");
    assert!(
        out.status.success(),
        "aarch64 embed_lines {kernel} failed (scripts/setup.sh installs qemu-user and \
         gcc-aarch64-linux-gnu):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let ran = lines
        .next()
        .and_then(|l| l.strip_prefix("kernel "))
        .expect("a first line naming the kernel")
        .to_string();
    let embeddings = lines
        .map(|l| {
            (0..l.len() / 2)
                .map(|i| u8::from_str_radix(&l[2 * i..2 * i + 2], 16).expect("hex") as i8)
                .collect()
        })
        .collect();
    (ran, embeddings)
}

/// This process's embeddings of the same sentences on the current kernel selection.
fn host(bytes: &[u8], sentences: &[&str]) -> Vec<Vec<i8>> {
    let m = Model::new(bytes).expect("package loads");
    let mut arena = vec![0i32; m.arena_words(m.max_tokens())];
    sentences
        .iter()
        .map(|s| {
            let mut out = vec![0i8; m.dim()];
            m.embed(s, &mut arena, &mut out).expect("embeds");
            out
        })
        .collect()
}

#[test]
fn aarch64_kernels_under_qemu_give_the_host_and_oracle_bytes() {
    let build = cargo("build")
        .args(["--example", "embed_lines"])
        .output()
        .expect("running cargo build");
    assert!(
        build.status.success(),
        "cross build for {TARGET} failed (scripts/setup.sh installs gcc-aarch64-linux-gnu and \
         the Rust target):\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    // Both QEMU runs overlap with the host's work (each is one core for about half a minute).
    let sdot = std::thread::spawn(|| aarch64("sdot"));
    let neon = std::thread::spawn(|| aarch64("neon"));

    let bytes =
        std::fs::read(package_path()).expect("the default package (scripts/test.sh builds it)");
    let text = std::fs::read_to_string(calib_file().unwrap()).expect("SNLI sentences");
    let sentences: Vec<&str> = text.lines().take(SENTENCES).collect();
    assert_eq!(sentences.len(), SENTENCES);
    pith_runtime::kernels::force_scalar(true);
    let oracle = host(&bytes, &sentences);
    pith_runtime::kernels::force_scalar(false);
    let mut ran = 0;
    for &isa in Isa::ALL.iter().filter(|i| i.supported()) {
        assert!(prefer(Some(isa)));
        let fast = host(&bytes, &sentences);
        for (i, (f, o)) in fast.iter().zip(&oracle).enumerate() {
            assert_eq!(
                f, o,
                "host {isa:?} vs the scalar oracle, sentence {i}: {:?}",
                sentences[i]
            );
        }
        ran += 1;
    }
    prefer(None);
    assert!(
        ran > 0,
        "this host CPU runs no packed kernel: nothing but the oracle was compared"
    );

    for (want, run) in [("Sdot", sdot), ("Neon", neon)] {
        let (kernel, emb) = run.join().expect("QEMU thread");
        // `-cpu max` has dotprod: the SDOT run must not have fallen back to anything else.
        assert_eq!(kernel, want, "aarch64 ran {kernel}, not {want}");
        assert_eq!(
            emb.len(),
            SENTENCES,
            "aarch64 {want} embedded {} sentences",
            emb.len()
        );
        for (i, (a, o)) in emb.iter().zip(&oracle).enumerate() {
            assert_eq!(
                a, o,
                "aarch64 {want} vs the host, sentence {i}: {:?}",
                sentences[i]
            );
        }
    }
}

/// The runtime's kernel and engine property suites (every aarch64 kernel against the scalar
/// oracle), cross-built and run under `qemu-aarch64 -cpu max`: a test here so it runs beside the
/// others instead of before them.
#[test]
fn aarch64_kernel_property_suites_pass_under_qemu() {
    let out = cargo("test")
        .args(["--lib", "--", "kernels::", "engine::"])
        .output()
        .expect("running cargo test for aarch64");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aarch64 property suites failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both instruction sets' suites ran (none ignored, none filtered away).
    for suite in ["packed::tests::sdot::", "packed::tests::neon::"] {
        assert!(
            text.lines()
                .any(|l| l.contains(suite) && l.ends_with("... ok")),
            "{suite} did not run:\n{text}"
        );
    }
}
