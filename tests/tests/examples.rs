//! examples/: pith-runtime as a dependency of someone else's firmware — a minimal cortex-m-rt
//! program and an embassy task — built for the Cortex-M4F, run in QEMU mps2-an386, their defmt
//! frames decoded with the ELF's format strings: every sentence's token count and digest equal
//! what the runtime computes on the host from the same package.

use std::process::Command;

use pith_runtime::Model;
use pith_tests::qemu::repo_root;

#[test]
fn examples_print_the_host_digests_over_defmt() {
    let root = repo_root().unwrap();
    let dir = root.join("examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Its own workspace and target (examples/.cargo/config.toml): thumbv7em-none-eabihf.
    let st = Command::new(cargo)
        .current_dir(&dir)
        .args(["build", "--release", "--bins"])
        .status()
        .unwrap();
    assert!(st.success(), "cargo build in examples/");

    let package = std::fs::read(root.join("models/tier-m.pith")).unwrap();
    let model = Model::new(&package).unwrap();
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let host = |sentence: &str| {
        let mut v = vec![0i8; model.dim()];
        let tokens = model.embed(sentence, &mut arena, &mut v).unwrap();
        format!(
            "embed {tokens} tokens {:08x} fnv: {sentence}",
            pith_console::fnv1a(&v)
        )
    };
    let mut host = host;
    for bin in ["cortex-m-rt", "embassy"] {
        let elf = dir.join("target/thumbv7em-none-eabihf/release").join(bin);
        let run = Command::new("qemu-system-arm")
            .args(["-machine", "mps2-an386", "-nographic", "-monitor", "none"])
            .args([
                "-serial",
                "none",
                "-semihosting-config",
                "enable=on,target=native",
            ])
            .arg("-kernel")
            .arg(&elf)
            .output()
            .unwrap();
        let lines = pith_tests::defmt::decode(&std::fs::read(&elf).unwrap(), &run.stdout).unwrap();
        assert!(run.status.success(), "{bin}: {lines:?} {run:?}");
        assert_eq!(lines.len(), 3, "{bin}: {lines:?}");
        for line in &lines {
            let sentence = line.split_once("fnv: ").expect("a sentence").1;
            assert_eq!(*line, host(sentence), "{bin}");
        }
    }
}
