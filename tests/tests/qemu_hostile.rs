//! Hostile input through the default board's UART in QEMU (mps3-an547, no `-icount`, so it runs
//! at full speed): thousands of seeded hostile lines, then garbage frames, each answered in step,
//! without a restart, and the stack's painted high-water mark stays well inside the stack.
//!
//! Counts: `PITH_NOISE_LINES` (default [`CI_LINES`]) and
//! `PITH_NOISE_FRAMES`; seed: `PITH_NOISE_SEED` (printed on every run, so a failure replays).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pith_console::frame::{Request, Response};
use pith_tests::noise::{count_from_env, seed_from_env, Frames, Lines, Predictor};
use pith_tests::qemu::{board, build_firmware, Qemu, RamFigures, Reply};

const BOOT: Duration = Duration::from_secs(30);
const REPLY: Duration = Duration::from_secs(20);

/// Lines per run: the full 10,000 take about 3 minutes on 2 cores (figures in README).
const CI_LINES: usize = 10_000;
/// Bad frames per run.
const CI_FRAMES: usize = 300;
/// Lines sent before their replies are read: enough to keep the UART busy, few enough that a
/// reply gone missing is found near where it went.
const BATCH: usize = 50;
/// The stack must keep at least this share of its room free after the hostile input.
const STACK_MARGIN: u32 = 4;

fn boot() -> Result<Qemu> {
    let b = board("mps3-an547")?;
    let elf = build_firmware(b, None)?;
    let mut q = Qemu::boot(b, &elf, false)?;
    q.start_quiet(BOOT)?;
    Ok(q)
}

/// A reply that carries the boot banner means the device started over.
fn assert_no_restart(r: &Reply, context: &str) {
    assert!(
        !r.body.iter().any(|l| l.contains("console on")),
        "the device restarted ({context}): {r:?}"
    );
}

/// `info` answers OK, from the same running device, and the stack's peak leaves room.
fn assert_info_and_stack(q: &mut Qemu, what: &str) -> Result<RamFigures> {
    let info = q.command("info", REPLY)?;
    assert!(
        info.ok() && info.get("board") == Some("mps3-an547 (Cortex-M55)"),
        "{info:?}"
    );
    assert_no_restart(&info, what);
    let ram = RamFigures::from_info(&info)?;
    assert!(ram.stack_peak > 256, "stack peak {ram:?}: no painting?");
    assert!(
        ram.stack_peak * STACK_MARGIN < ram.stack_size(),
        "after {what}: stack peak {} of {} bytes leaves under 1/{STACK_MARGIN} free",
        ram.stack_peak,
        ram.stack_size()
    );
    eprintln!(
        "after {what}: stack peak {} of {} bytes",
        ram.stack_peak,
        ram.stack_size()
    );
    Ok(ram)
}

#[test]
fn device_answers_every_hostile_line_in_step() -> Result<()> {
    let seed = seed_from_env();
    let n = count_from_env("PITH_NOISE_LINES", CI_LINES);
    eprintln!("{n} hostile lines, seed {seed:#x} (replay: PITH_NOISE_SEED={seed:#x})");
    let mut q = boot()?;
    let before = assert_info_and_stack(&mut q, "boot")?;
    let mut lines = Lines::new(seed);
    let mut host = Predictor::new();
    let (start, mut sent, mut bytes, mut replies) = (Instant::now(), 0, 0, 0);
    while sent < n {
        let (mut batch, mut want) = (Vec::new(), Vec::new());
        for _ in 0..BATCH.min(n - sent) {
            let chunk = lines.next_chunk();
            want.extend(host.statuses(&chunk));
            batch.extend(chunk);
            sent += 1;
        }
        q.send(&batch)?;
        bytes += batch.len();
        for (i, expected) in want.iter().enumerate() {
            let context = format!("reply {i} to the batch ending at line {sent}, seed {seed:#x}");
            let r = q.read_reply(REPLY).with_context(|| context.clone())?;
            assert_no_restart(&r, &context);
            assert_eq!(&r.status, expected, "{context}");
        }
        replies += want.len();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("{n} lines ({bytes} bytes, {replies} replies) in {secs:.1} s, all in step");
    assert!(replies >= n / 2, "only {replies} replies to {n} lines");
    let after = assert_info_and_stack(&mut q, "the hostile lines")?;
    assert_eq!(after.statics, before.statics);
    Ok(())
}

#[test]
fn device_answers_every_bad_frame_then_the_next_request() -> Result<()> {
    let seed = seed_from_env();
    let n = count_from_env("PITH_NOISE_FRAMES", CI_FRAMES);
    eprintln!("{n} bad frames, seed {seed:#x} (replay: PITH_NOISE_SEED={seed:#x})");
    let mut q = boot()?;
    let ack = q.command("frame", REPLY)?;
    assert!(ack.status.starts_with("OK framed"), "{ack:?}");
    let mut frames = Frames::new(seed);
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for i in 0..n {
        let bad = frames.next_frame();
        let context = format!("bad frame {i} ({}), seed {seed:#x}", bad.kind);
        // A run of resynchronisation bytes before it: dropped without an answer.
        let mut bytes = vec![0u8; i % 3];
        bytes.extend_from_slice(&bad.bytes);
        q.send(&bytes)?;
        match q.read_response(REPLY).with_context(|| context.clone())? {
            Response::Error { code: 6, .. } => {}
            other => bail!("{context}: expected error 6, got {other:?}"),
        }
        let next = if i % 2 == 0 {
            Request::Info
        } else {
            Request::Embed { text: "a cat" }
        };
        match (
            q.request(&next, REPLY).with_context(|| context.clone())?,
            i % 2,
        ) {
            (Response::Info(info), 0) => assert_eq!(info.board.as_str(), "mps3-an547"),
            (Response::Error { code: 4, .. }, 1) => {}
            (other, _) => bail!("{context}: the next request got {other:?}"),
        }
        *kinds.entry(bad.kind).or_default() += 1;
    }
    eprintln!("every bad frame answered with error 6, then the next request: {kinds:?}");
    assert_eq!(
        kinds.len(),
        4,
        "every kind of bad frame was sent: {kinds:?}"
    );
    assert_eq!(q.request(&Request::Exit, REPLY)?, Response::Bye);
    assert_info_and_stack(&mut q, "the bad frames")?;
    Ok(())
}
