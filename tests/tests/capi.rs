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

    let tier_m = package(TIER_M).unwrap();
    let kb = tier_m.with_extension("pithkb");
    let shipped = reasoner_with_package(REASONER_M).unwrap();
    let rpkg = package(shipped.package).unwrap();
    let ckb = chat_bank(shipped).unwrap();
    let run = Command::new(&exe)
        .args([&tier_m, &kb, &rpkg, &ckb])
        .output()
        .unwrap();
    let got = String::from_utf8(run.stdout).unwrap();
    assert!(run.status.success(), "{got}");

    let read = |p: &PathBuf| std::fs::read(p).unwrap();
    let (pb, kbb, rb, cb) = (read(&tier_m), read(&kb), read(&rpkg), read(&ckb));
    let model = Model::new(&pb).unwrap();
    let bank = Bank::for_model(&kbb, &model).unwrap();
    let reasoner = Reasoner::new(&rb).unwrap();
    let chat_bank = Bank::for_model(&cb, &model).unwrap();
    let want = expected(&model, &bank, &reasoner, &chat_bank);
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>());
}
