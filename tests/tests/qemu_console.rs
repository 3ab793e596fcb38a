//! The firmware in QEMU: every board boots and answers `info`; the device console survives hostile
//! input; framed mode works over the real UART; device embeddings equal the host's byte for byte.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pith_console::frame::{Request, Response};
use pith_runtime::Model;
use pith_tests::checkpoint::{mpnet_vocab, tiny_checkpoint, Family};
use pith_tests::cli::{model_vocab, pith_bin};
use pith_tests::qemu::{
    board, build_firmware, build_firmware_with_arena, package_path, repo_root, Qemu, RamFigures,
    BOARDS,
};
use pith_tests::synthetic::{tiny_bert_package, WORDS};

const BOOT: Duration = Duration::from_secs(30);
const REPLY: Duration = Duration::from_secs(20);

/// The int8 kernels each board's build dispatches to (Helium on the M55, SMLAD on the M4/M7/M33,
/// plain Thumb on the M0+-class build) equal the scalar oracle on that core: `kcheck` runs the
/// property check of `kernels::check` (every tail length, -128/127 extremes, all-zero rows,
/// 1..1540-wide rows) on the simulated CPU itself.
#[test]
fn every_board_kernels_equal_the_scalar_oracle_on_the_core() -> Result<()> {
    for b in BOARDS.iter().filter(|b| b.simulated()) {
        let elf = build_firmware(b, None)?;
        let mut q = Qemu::boot(b, &elf, false)?;
        q.start_quiet(BOOT)
            .with_context(|| format!("booting {}", b.name))?;
        for seed in [1u32, 0x9e37_79b9] {
            let r = q.command(&format!("kcheck {seed}"), Duration::from_secs(120))?;
            assert!(r.ok(), "{} seed {seed}: {r:?}", b.name);
            assert_eq!(r.get("mismatches"), Some("0"), "{}: {r:?}", b.name);
            let cases: u32 = r.get("cases").and_then(|v| v.parse().ok()).unwrap_or(0);
            assert_eq!(cases, 72 * 6 + 9 * 4, "{}: every shape ran: {r:?}", b.name);
        }
    }
    Ok(())
}

#[test]
fn every_board_boots_with_banner_and_answers_info() -> Result<()> {
    for b in BOARDS.iter().filter(|b| b.simulated()) {
        let elf = build_firmware(b, None)?;
        let mut q = Qemu::boot(b, &elf, false)?;
        let banner = q
            .start_quiet(BOOT)
            .with_context(|| format!("booting {}", b.name))?;
        let title = format!("pith 0.1.0 console on {} ({})", b.name, b.core);
        assert!(banner.contains(&title), "{}: banner {banner:?}", b.name);
        assert!(
            banner.iter().any(|l| l == "model none (no package linked)"),
            "{}: {banner:?}",
            b.name
        );

        let info = q.command("info", REPLY)?;
        assert!(info.ok(), "{}: {info:?}", b.name);
        assert_eq!(
            info.get("board"),
            Some(format!("{} ({})", b.name, b.core).as_str())
        );
        let flash: u32 = info
            .get("flash")
            .and_then(|v| v.split(' ').next()?.parse().ok())
            .context("flash line")?;
        let ram: u32 = info
            .get("ram")
            .and_then(|v| v.split(' ').next()?.parse().ok())
            .context("ram line")?;
        // Code plus constants: more than a stub, far less than the board's flash.
        assert!(
            (20_000..400_000).contains(&flash),
            "{}: flash {flash}",
            b.name
        );
        assert!(ram < 64 * 1024, "{}: ram {ram}", b.name);
        assert_eq!(
            q.command("embed a cat", REPLY)?.status,
            "ERR 4 no model: no package linked"
        );
        assert_eq!(
            q.command("ask why", REPLY)?.status,
            "ERR 3 no knowledge bank"
        );
    }
    Ok(())
}

#[test]
fn device_console_survives_hostile_input() -> Result<()> {
    let b = board("mps3-an547")?;
    let elf = build_firmware(b, None)?;
    let mut q = Qemu::boot(b, &elf, false)?;
    q.start_quiet(BOOT)?;
    // Small on purpose: QEMU moves only a few KB/s into the guest.
    let mut hostile = Vec::new();
    hostile.extend_from_slice(b"\x00\x00\x01\x02\x1b[A\x7f\x7f\x7f\r");
    hostile.extend(std::iter::repeat_n(b'z', 1500));
    hostile.extend_from_slice(b"\r\xff\xfe\xc0\x80\n\xe2\x82\r\n");
    hostile.extend_from_slice(b"embed \x00\x00\r");
    q.send(&hostile)?;
    let mut errs = Vec::new();
    for _ in 0..4 {
        errs.push(q.read_reply(REPLY)?.status);
    }
    assert_eq!(
        errs,
        [
            "ERR 1 control byte 0x00 in line",
            "ERR 1 line too long (max 512 bytes)",
            "ERR 1 invalid UTF-8",
            "ERR 1 invalid UTF-8",
        ]
    );
    assert_eq!(
        q.read_reply(REPLY)?.status,
        "ERR 1 control byte 0x00 in line"
    );
    let info = q.command("info", REPLY)?;
    assert!(
        info.ok() && info.get("board") == Some("mps3-an547 (Cortex-M55)"),
        "{info:?}"
    );
    Ok(())
}

#[test]
fn framed_mode_over_the_uart() -> Result<()> {
    let b = board("mps3-an547")?;
    let elf = build_firmware(b, None)?;
    let mut q = Qemu::boot(b, &elf, false)?;
    q.start_quiet(BOOT)?;
    let ack = q.command("frame", REPLY)?;
    assert!(ack.status.starts_with("OK framed"), "{ack:?}");
    match q.request(&Request::Info, REPLY)? {
        Response::Info(info) => assert_eq!(info.board.as_str(), "mps3-an547"),
        other => bail!("expected Info, got {other:?}"),
    }
    match q.request(&Request::Embed { text: "a cat" }, REPLY)? {
        Response::Error { code: 4, .. } => {}
        other => bail!("expected ERR 4, got {other:?}"),
    }
    q.send(&[0x03, 0xff, 0x00])?;
    assert!(matches!(
        q.read_response(REPLY)?,
        Response::Error { code: 6, .. }
    ));
    assert_eq!(q.request(&Request::Exit, REPLY)?, Response::Bye);
    assert!(q.command("info", REPLY)?.ok());
    Ok(())
}

/// Embeds every sentence on the device (framed mode) and on the host; they must agree exactly.
fn assert_bit_exact(board_name: &str, package: PathBuf, sentences: &[String]) -> Result<()> {
    let b = board(board_name)?;
    let elf = build_firmware(b, Some(&package))?;
    let mut q = Qemu::boot(b, &elf, false)?;
    q.start_quiet(BOOT)?;
    assert_bit_exact_on(&mut q, &package, sentences)
}

/// [`assert_bit_exact`] on a device already booted with `package`.
fn assert_bit_exact_on(
    q: &mut Qemu,
    package: &std::path::Path,
    sentences: &[String],
) -> Result<()> {
    let bytes = std::fs::read(package).with_context(|| format!("reading {}", package.display()))?;
    let model = Model::new(&bytes).context("host model")?;
    let info = q.command("info", REPLY)?;
    let max_tokens: usize = info
        .get("max_tokens")
        .and_then(|v| v.parse().ok())
        .context("max_tokens in info")?;
    assert!(q.command("frame", REPLY)?.ok());
    let mut arena = vec![0i32; model.arena_words(max_tokens)];
    let mut want = vec![0i8; model.dim()];
    let mut digests = std::collections::HashSet::new();
    for (i, s) in sentences.iter().enumerate() {
        let tokens = model
            .embed(s, &mut arena, &mut want)
            .with_context(|| format!("host embed of {s:?}"))?;
        match q.request(&Request::Embed { text: s }, Duration::from_secs(120))? {
            Response::Embedding { tokens: t, values } => {
                assert_eq!(
                    (t as usize, values.as_slice()),
                    (tokens, want.as_slice()),
                    "sentence {i}: {s:?}"
                );
            }
            other => bail!("sentence {i} {s:?}: {other:?}"),
        }
        digests.insert(pith_console::fnv1a(&want));
    }
    // Guards against a degenerate model or package whose every output is the same vector.
    assert!(
        digests.len() > sentences.len() / 2,
        "only {} distinct embeddings",
        digests.len()
    );
    assert_eq!(q.request(&Request::Exit, REPLY)?, Response::Bye);
    Ok(())
}

/// The tiny random model (one int8 FFN, one 16-bit FFN) on every kernel family: Helium (M55),
/// DSP (M4F) and Thumb-1 (M0+ class), each byte for byte with the host.
#[test]
fn tiny_random_model_is_bit_exact_on_the_device() -> Result<()> {
    let dir = repo_root().unwrap().join("target/pith-tests");
    std::fs::create_dir_all(&dir)?;
    let package = dir.join("tiny-random-bert.pith");
    std::fs::write(&package, tiny_bert_package(7))?;
    let sentences = tiny_sentences();
    for board in ["mps3-an547", "mps2-an386", "mps2-an385"] {
        assert_bit_exact(board, package.clone(), &sentences)?;
    }
    Ok(())
}

/// A tiny random MPNet checkpoint through `pith quantize` (layer 0's FFN at 16 bits, layer 1's
/// int8; a 3,000-token vocabulary): the relative position bias in every layer's attention on
/// Helium, DSP and Thumb-1 cores, byte for byte with the host. Sentences of up to 60 words reach
/// the log-spaced buckets.
#[test]
fn tiny_random_mpnet_is_bit_exact_on_the_device() -> Result<()> {
    let dir = repo_root().unwrap().join("target/pith-tests/tiny-mpnet");
    let _ = std::fs::remove_dir_all(&dir);
    let ck = dir.join("checkpoint");
    tiny_checkpoint(&ck, 13, &mpnet_vocab(&model_vocab()), Family::Mpnet)?;
    let package = dir.join("tiny-random-mpnet.pith");
    let status = std::process::Command::new(pith_bin())
        .args(["quantize", "--ffn16", "0", "--vocab-size", "3000", "-o"])
        .arg(&package)
        .arg(&ck)
        .status()?;
    assert!(status.success(), "pith quantize of the tiny MPNet failed");
    let mut sentences = tiny_sentences();
    sentences.extend(snli(0, 40)?.chunks(4).map(|c| c.join(" ")));
    for board in ["mps3-an547", "mps2-an386", "mps2-an385"] {
        assert_bit_exact(board, package.clone(), &sentences)?;
    }
    Ok(())
}

fn tiny_sentences() -> Vec<String> {
    let mut sentences = Vec::new();
    for i in 0..40usize {
        let n = 1 + i % 12;
        sentences.push(
            (0..n)
                .map(|j| WORDS[(i * 7 + j * 13) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    sentences
}

fn snli(skip: usize, count: usize) -> Result<Vec<String>> {
    let path = repo_root()
        .unwrap()
        .join("data/calib/snli-dev-sentences.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let sentences: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .skip(skip)
        .take(count)
        .map(str::to_string)
        .collect();
    assert_eq!(sentences.len(), count);
    Ok(sentences)
}

/// The 12k-vocabulary MiniLM on the Cortex-M4F board (scalar Thumb-2 kernels) against the host
/// (AVX2 or scalar): 200 sentences, byte for byte.
#[test]
fn real_model_is_bit_exact_on_cortex_m4_for_200_snli_sentences() -> Result<()> {
    let package = repo_root()
        .unwrap()
        .join(board("mps2-an386")?.default_package);
    assert!(
        package.is_file(),
        "{} is missing: scripts/test.sh builds it",
        package.display()
    );
    assert_bit_exact("mps2-an386", package, &snli(2000, 200)?)
}

/// The full MiniLM on the Cortex-M55 board, whose build is auto-vectorized for Helium. QEMU
/// emulates Helium slowly (about 20 MIPS), so this one checks fewer sentences.
#[test]
fn real_model_is_bit_exact_on_cortex_m55_helium() -> Result<()> {
    let package = package_path()?;
    let b = board("mps3-an547")?;
    let elf = build_firmware(b, Some(&package))?;
    let mut q = Qemu::boot(b, &elf, true)?;
    q.start_quiet(BOOT)?;
    bench_profiles_every_stage(&mut q, &package)?;
    assert_bit_exact_on(&mut q, &package, &snli(3000, 24)?)
}

/// The device's `bench` (under `-icount shift=0`): a line per stage whose instructions add up to
/// the total, every stage of a 16-bit-FFN model nonzero, and each stage's MACs the host's count
/// for the same tokens.
fn bench_profiles_every_stage(q: &mut Qemu, package: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(package)?;
    let model = Model::new(&bytes)?;
    let bench = q.command("bench", Duration::from_secs(300))?;
    assert!(bench.ok(), "{bench:?}");
    let num = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
    let tokens = num(bench.get("tokens")).context("tokens")?;
    let ns = num(bench.get("ns")).context("ns")?;
    let macs = model.stage_macs(tokens as usize);
    let mut sum = 0;
    for s in pith_runtime::Stage::ALL {
        let line = bench
            .get(s.name())
            .with_context(|| format!("no {} line", s.name()))?;
        let (instr, m) = line.split_once(" macs ").context("NAME N macs M")?;
        let instr: u64 = instr.parse()?;
        assert!(instr > 0, "{}: {bench:?}", s.name());
        assert_eq!(m.parse::<u64>()?, macs[s as usize], "{}", s.name());
        sum += instr;
    }
    assert_eq!(sum, ns);
    Ok(())
}

/// `ask` on the device (Cortex-M4F, 12k-vocabulary package, its StackFAQ bank in flash) answers 50
/// dev queries with exactly the entries the host picks from the same bank.
#[test]
fn device_ask_answers_like_the_host() -> Result<()> {
    let package = repo_root()
        .unwrap()
        .join(board("mps2-an386")?.default_package);
    let bank_path = package.with_extension("pithkb");
    assert!(
        bank_path.is_file(),
        "{} is missing: scripts/test.sh builds it",
        bank_path.display()
    );
    let bytes = std::fs::read(&package)?;
    let model = Model::new(&bytes).context("host model")?;
    let bank_bytes = std::fs::read(&bank_path)?;
    let bank = pith_runtime::kb::Bank::for_model(&bank_bytes, &model).context("host bank")?;
    let b = board("mps2-an386")?;
    let elf = build_firmware(b, Some(&package))?;
    let mut q = Qemu::boot(b, &elf, false)?;
    q.start_quiet(BOOT)?;
    let kb = q.command("kb", REPLY)?;
    assert!(kb.ok(), "{kb:?}");
    assert_eq!(kb.get("entries"), Some(bank.len().to_string().as_str()));
    let queries = std::fs::read_to_string(
        repo_root()
            .unwrap()
            .join("data/faq/stackfaq-dev-queries.tsv"),
    )?;
    let mut arena = vec![0i32; model.arena_words(model.max_tokens())];
    let mut v = vec![0i8; model.dim()];
    let mut answered = 0;
    for line in queries.lines().step_by(12).take(50) {
        let Some((_, query)) = line.split_once('\t') else {
            continue;
        };
        model
            .embed(query, &mut arena, &mut v)
            .context("host embed")?;
        let reply = q.command(&format!("ask {query}"), Duration::from_secs(120))?;
        assert!(reply.ok(), "{query:?}: {reply:?}");
        match bank.ask(&v) {
            pith_runtime::kb::Reply::Answer(hit) => {
                let entry = bank.entry(hit.index).context("entry")?;
                assert_eq!(
                    reply.get("id"),
                    Some(entry.id.to_string().as_str()),
                    "{query:?}"
                );
                answered += 1;
            }
            pith_runtime::kb::Reply::Abstain(_) => {
                assert_eq!(
                    reply.get("answer"),
                    Some("none (no confident answer)"),
                    "{query:?}"
                );
            }
        }
    }
    assert!(answered >= 45, "only {answered} of 50 dev queries answered");
    // The product's example works out of the box.
    let fb = q.command(
        "ask How do I delete my Facebook account?",
        Duration::from_secs(120),
    )?;
    assert!(
        fb.ok()
            && fb
                .get("answer")
                .is_some_and(|a| a.to_lowercase().contains("delete")),
        "{fb:?}"
    );
    Ok(())
}

/// Tier S (static model, 512 KB package) on the M0+-class build (thumbv6m, run on mps2-an385):
/// byte-identical to the host, with its int8 table and with the same table at 4 bits
/// (`StaticEmb4`, what `pith distill --tier s` writes by default).
#[test]
fn tier_s_static_model_is_bit_exact_on_the_m0plus_class_build() -> Result<()> {
    let root = repo_root().unwrap();
    let package = root.join("models/tier-s.pith");
    assert!(
        package.is_file(),
        "{} is missing: scripts/test.sh builds it",
        package.display()
    );
    let sentences = snli(4000, 100)?;
    assert_bit_exact("mps2-an385", package, &sentences)?;

    let dir = root.join("target/pith-tests/tier-s-4bit");
    let _ = std::fs::remove_dir_all(&dir);
    let ck = dir.join("checkpoint");
    std::fs::create_dir_all(&ck)?;
    for f in ["vocab.txt", "embeddings.safetensors"] {
        std::fs::copy(root.join("models/tier-s").join(f), ck.join(f))?;
    }
    let config = std::fs::read_to_string(root.join("models/tier-s/config.json"))?;
    let mut config: serde_json::Value = serde_json::from_str(&config)?;
    config["bits"] = 4.into();
    std::fs::write(ck.join("config.json"), config.to_string())?;
    let quantize = |out: &std::path::Path| -> Result<()> {
        let status = std::process::Command::new(pith_bin())
            .args(["quantize", "-o"])
            .arg(out)
            .arg(&ck)
            .status()?;
        anyhow::ensure!(status.success(), "pith quantize {} failed", ck.display());
        Ok(())
    };
    let four = dir.join("tier-s-4bit.pith");
    quantize(&four)?;
    assert_bit_exact("mps2-an385", four, &sentences)?;

    // A head on the pooled vector (what `pith distill --tier s` trains; a random one here, the
    // bytes must agree all the same), run by the encoder's linear kernels: Thumb-1 here, Helium
    // on the M55.
    pith_tests::static_head::add_random_head(&ck, 64, 2.0, 11)?;
    let head = dir.join("tier-s-head.pith");
    quantize(&head)?;
    let bytes = std::fs::read(&head)?;
    let model = Model::new(&bytes).context("Tier S with a head")?;
    assert_eq!(model.header().model.ffn, 64);
    assert_bit_exact("mps2-an385", head.clone(), &sentences)?;
    assert_bit_exact("mps3-an547", head, &sentences)
}

/// Tier M (a distilled 4-layer student, ≤ 2 MB package) on the Cortex-M4F board with the arena cut
/// to what 64 tokens need: the device reports at least 64 tokens, statics + the stack's painted
/// high-water mark + the arena stay within a 128 KiB part after a 64-token embedding, and
/// embeddings are byte-identical to the host's.
#[test]
fn tier_m_student_fits_128k_of_ram_and_is_bit_exact_on_the_m4() -> Result<()> {
    let package = repo_root().unwrap().join("models/tier-m.pith");
    let bytes =
        std::fs::read(&package).with_context(|| format!("reading {}", package.display()))?;
    assert!(bytes.len() <= 2_000_000, "package {} bytes", bytes.len());
    let model = Model::new(&bytes).context("host model")?;
    let arena = u32::try_from(model.arena_words(64) * 4)?;
    let b = board("mps2-an386")?;
    let elf = build_firmware_with_arena(b, Some(&package), Some(arena))?;
    let mut q = Qemu::boot(b, &elf, false)?;
    q.start_quiet(BOOT)?;
    let long = "a man in a red jacket is riding a brown horse along the beach while two dogs run \
                beside them and children watch from the dunes near an old wooden lighthouse that \
                stands at the end of a long and narrow pier under a grey and cloudy sky, and later that \
                evening the whole family sits by the fire telling stories about the old sailors";
    let e = q.command(&format!("embed {long}"), Duration::from_secs(120))?;
    assert!(e.ok(), "{e:?}");
    assert_eq!(e.get("tokens"), Some("64"), "{e:?}");
    let info = q.command("info", REPLY)?;
    let num = |key: &str| -> Result<u32> {
        info.get(key)
            .and_then(|v| v.split(' ').next()?.parse().ok())
            .with_context(|| format!("`{key}` in {info:?}"))
    };
    assert_eq!(num("max_tokens")?, 64, "{info:?}");
    let ram = RamFigures::from_info(&info)?;
    assert!(
        ram.stack_peak > 256,
        "stack peak {ram:?}: the painting did not work"
    );
    let peak = ram.peak();
    eprintln!(
        "tier M on mps2-an386: statics {} + stack {} + arena {} = {peak} bytes",
        ram.statics, ram.stack_peak, ram.arena
    );
    assert!(peak <= 128 * 1024, "peak RAM {peak} bytes > 128 KiB");
    let mut sentences = snli(5000, 40)?;
    sentences.push(long.to_string());
    assert_bit_exact_on(&mut q, &package, &sentences)
}

/// Tier M through the cores whose kernels no other model test reaches: the plain-Thumb kernel
/// (M0+-class build on mps2-an385) and the SMLAD tile on the Cortex-M33 (mps2-an505); odd and
/// even token counts, so the kernels' paired-token tails run too.
#[test]
fn tier_m_is_bit_exact_on_the_m0plus_class_and_m33_builds() -> Result<()> {
    let package = repo_root().unwrap().join("models/tier-m.pith");
    let sentences = snli(6000, 12)?;
    for name in ["mps2-an385", "mps2-an505"] {
        assert_bit_exact(name, package.clone(), &sentences)
            .with_context(|| format!("tier M on {name}"))?;
    }
    Ok(())
}

/// The STM32F405 image on its real HAL (stm32f4xx-hal, HSI) in QEMU's `netduinoplus2`, with Tier S
/// and its StackFAQ bank: `ask` finds the Facebook entry, and 100 SNLI sentences embed byte for
/// byte as on the host.
#[test]
fn stm32f405_tier_s_answers_and_is_bit_exact_for_100_snli_sentences() -> Result<()> {
    let b = board("stm32f405")?;
    let package = repo_root().unwrap().join(b.default_package);
    assert!(
        package.is_file(),
        "{} is missing: `pith artifacts` builds it",
        package.display()
    );
    assert!(
        package.with_extension("pithkb").is_file(),
        "Tier S's bank is missing: `pith artifacts` builds it"
    );
    let elf = build_firmware(b, Some(&package))?;
    let mut q = Qemu::boot(b, &elf, false)?;
    let banner = q.start_quiet(BOOT)?;
    assert!(
        banner.iter().any(|l| l.contains("stm32f405 (Cortex-M4F)")),
        "{banner:?}"
    );
    let info = q.command("info", REPLY)?;
    assert!(info.ok(), "{info:?}");
    let fb = q.command("ask How do I delete my Facebook account?", REPLY)?;
    assert!(
        fb.ok()
            && fb
                .get("answer")
                .is_some_and(|a| a.to_lowercase().contains("facebook")),
        "{fb:?}"
    );
    let sim = q.command(
        "sim A man is playing a guitar. | Someone plays music.",
        REPLY,
    )?;
    assert!(sim.ok(), "{sim:?}");
    assert_bit_exact_on(&mut q, &package, &snli(6000, 100)?)
}
