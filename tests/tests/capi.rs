//! The C API: the committed header is what cbindgen makes of capi/src today, and a C program
//! (capi/tests/host.c, built by the system's gcc against libpith.a) embeds, asks, chats and gets
//! an error code for every misuse — with the same bytes as the Rust runtime.

use std::path::PathBuf;
use std::process::Command;

use pith_console::chat::{self, Chat};
use pith_console::fnv1a;
use pith_runtime::kb::{Bank, Hit, Index, Reply};
use pith_runtime::{Model, Reasoner};
use pith_tests::qemu::repo_root;
use pith_tools::artifacts::{chat_bank, package};
use pith_tools::catalog::{reasoner_with_package, REASONER_M, TIER_M};

#[test]
fn c_header_is_current() {
    let fresh = pith_tests::capi::generate().unwrap();
    let committed = std::fs::read_to_string(pith_tests::capi::header_path().unwrap()).unwrap();
    assert!(
        fresh == committed,
        "capi/include/pith.h is stale: run `cargo run -p pith-tests --bin c-header`"
    );
}

/// Builds libpith.a for the host (the release profile, as the tests) and returns it.
fn libpith() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = repo_root().unwrap();
    let st = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "pith-c"])
        .status()
        .unwrap();
    assert!(st.success(), "cargo build -p pith-c");
    root.join("target/release/libpith.a")
}

/// What the C program prints, computed with the Rust runtime and console.
fn expected(
    model: &Model<'_>,
    bank: &Bank<'_>,
    reasoner: &Reasoner<'_>,
    chat_bank: &Bank<'_>,
) -> Vec<String> {
    let dim = model.dim();
    let words = model.arena_words(128);
    let mut arena = vec![0i32; words];
    let mut out = vec![format!("dim {dim} arena {}", model.arena_words(64))];
    let embed = |t: &str, arena: &mut [i32]| {
        let mut v = vec![0i8; dim];
        let n = model.embed(t, arena, &mut v).unwrap();
        (n, v)
    };
    let sentences = [
        "A man is playing a guitar.",
        "Someone plays the guitar on stage.",
        "How do I delete my Facebook account?",
    ];
    let mut last = Vec::new();
    for (i, s) in sentences.iter().enumerate() {
        let (n, v) = embed(s, &mut arena);
        out.push(format!("embed {i} tokens {n} fnv {:08x}", fnv1a(&v)));
        last = v;
    }
    let (_, first) = embed(sentences[0], &mut arena);
    out.push(format!(
        "cosine {:.6}",
        pith_runtime::cosine_i8(&last, &first)
    ));
    let mut hits = [Hit::default(); 3];
    let n = bank.search(&last, Index::Both, &mut hits);
    for (i, h) in hits[..n].iter().enumerate() {
        out.push(format!("hit {i} entry {} score {}", h.index, h.score));
    }
    let (hit, sure) = match bank.ask(&last) {
        Reply::Answer(h) => (h, 1),
        Reply::Abstain(h) => (h.unwrap(), 0),
    };
    let id = bank.entry(hit.index).unwrap().id.to_string();
    out.push(format!("ask entry {} id {id} confident {sure}", hit.index));
    let mut mem = vec![0i32; chat::words(dim)];
    let mut c = Chat::new(reasoner, *chat_bank, model, &mut mem).unwrap();
    let turns = [
        "hi! how are you doing today?",
        "i just got back from a long run",
        "what would you do with a million dollars?",
    ];
    let (mut a, mut b) = (vec![0i8; dim], vec![0i8; dim]);
    for _ in 0..2 {
        for (i, t) in turns.iter().enumerate() {
            let ans = c.step(model, t, &mut arena, &mut a, &mut b).unwrap();
            out.push(format!(
                "chat {i} entry {} prediction {:08x} refined {} answer {}",
                ans.entry,
                ans.prediction,
                i32::from(ans.refined),
                ans.text
            ));
        }
        c.reset();
    }
    out.push("strerror text is not UTF-8".into());
    out.push("errors ok".into());
    out
}

/// The C program's four inputs (Tier M, its StackFAQ bank, reasoner-m and its response bank)
/// and the lines it must print, computed with the Rust runtime.
fn inputs_and_expected_lines() -> ([PathBuf; 4], Vec<String>) {
    let tier_m = package(TIER_M).unwrap();
    let kb = tier_m.with_extension("pithkb");
    let shipped = reasoner_with_package(REASONER_M).unwrap();
    let rpkg = package(shipped.package).unwrap();
    let ckb = chat_bank(shipped).unwrap();
    let read = |p: &PathBuf| std::fs::read(p).unwrap();
    let (pb, kbb, rb, cb) = (read(&tier_m), read(&kb), read(&rpkg), read(&ckb));
    let model = Model::new(&pb).unwrap();
    let bank = Bank::for_model(&kbb, &model).unwrap();
    let reasoner = Reasoner::new(&rb).unwrap();
    let chat_bank = Bank::for_model(&cb, &model).unwrap();
    let want = expected(&model, &bank, &reasoner, &chat_bank);
    ([tier_m, kb, rpkg, ckb], want)
}

#[test]
fn c_program_on_the_host_matches_the_runtime() {
    let lib = libpith();
    let root = repo_root().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("host");
    let st = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-I"])
        .arg(root.join("capi/include"))
        .arg(root.join("capi/tests/host.c"))
        .arg(&lib)
        // What a Rust staticlib needs from the host's C library (rustc --print native-static-libs).
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
            "-o",
        ])
        .arg(&exe)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc capi/tests/host.c");

    let (inputs, want) = inputs_and_expected_lines();
    let run = Command::new(&exe).args(&inputs).output().unwrap();
    let got = String::from_utf8(run.stdout).unwrap();
    assert!(run.status.success(), "{got}");
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The same C program built for Cortex-M with Debian's gcc-arm-none-eabi and newlib
/// (capi/examples/qemu: its Makefile, start-up and linker script) against libpith.a built for the
/// board's target and CPU, run on the simulated board with its files read through semihosting:
/// every line equal to the Rust runtime's (and so to the host's), misuse checks included.
#[test]
fn c_program_on_the_simulated_boards_matches_the_runtime() {
    let root = repo_root().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let (inputs, want) = inputs_and_expected_lines();
    let work = tempfile::tempdir().unwrap();
    for name in ["mps2-an386", "mps3-an547"] {
        let board = pith_tests::qemu::board(name).unwrap();
        // The library for the board's core, as the Rust firmware is built for it.
        let mut build = Command::new(&cargo);
        build.current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "pith-c",
            "--target",
            board.target,
        ]);
        let target_dir = match board.target_cpu {
            Some(cpu) => {
                let dir = root.join(format!("target/capi-{cpu}"));
                build
                    .env("RUSTFLAGS", format!("-C target-cpu={cpu}"))
                    .arg("--target-dir")
                    .arg(&dir);
                dir
            }
            None => root.join("target"),
        };
        assert!(build.status().unwrap().success(), "libpith.a for {name}");
        let lib = target_dir.join(board.target).join("release/libpith.a");
        // The core the target's baseline is, where the board names no CPU.
        let cpu = board.target_cpu.unwrap_or_else(|| match board.target {
            "thumbv7em-none-eabihf" => "cortex-m4",
            other => panic!("{other}: which gcc -mcpu?"),
        });
        let m = board.memory;
        let out = work.path().join(name);
        let st = Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(root.join("capi/examples/qemu"))
            .arg(format!("CPU={cpu}"))
            .arg(format!("PITH_LIB={}", lib.display()))
            .arg(format!("FLASH_ORIGIN={:#x}", m.flash.origin))
            // The board's largest RAM (its package region): the packages are read into the heap.
            .arg(format!("RAM_ORIGIN={:#x}", m.package.origin))
            .arg(format!("RAM_LENGTH={:#x}", m.package.len))
            .arg(format!("OUT={}", out.display()))
            .status()
            .expect("make (apt-get install make gcc-arm-none-eabi libnewlib-arm-none-eabi)");
        assert!(st.success(), "make for {name}");
        let mut semihosting = String::from("enable=on,target=native,arg=host");
        for p in &inputs {
            semihosting.push_str(&format!(",arg={}", p.display()));
        }
        let run = Command::new("qemu-system-arm")
            .args(["-machine", board.run.qemu.unwrap(), "-nographic"])
            .args(["-monitor", "none", "-serial", "none"])
            .args(["-semihosting-config", &semihosting, "-kernel"])
            .arg(out.join("host.elf"))
            .output()
            .unwrap();
        let got = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{name}: {run:?}");
        let got: Vec<&str> = got.lines().collect();
        assert_eq!(
            got,
            want.iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}"
        );
    }
}
