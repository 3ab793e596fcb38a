//! The console on the host, over an in-memory port: commands, echo, hostile input, framed mode.

use pith_console::frame::{encode_request, Request, Response};
use pith_console::{Board, Console, NoClock, Service};
use pith_runtime::{Error, Model};
use pith_tests::memport::MemPort;
use pith_tests::qemu::decode_response;
use pith_tests::synthetic::tiny_bert_package;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BOARD: Board<'static> = Board {
    name: "host-test",
    cpu: "x86",
    flash_used: 1234,
    flash_size: 4096,
    ram_used: 56,
    ram_size: 1024,
    package_bytes: 0,
    arena_bytes: 4096,
    stack_peak: None,
};

/// Runs the console over `input` (read in chunks of up to `max_read` bytes) and returns its output.
fn run(model: Result<Model<'_>, Error>, board: Board<'_>, input: &[u8], max_read: usize) -> String {
    let mut arena = vec![0i32; 8192];
    let service = Service::new(model.as_ref().map_err(|e| *e), &mut arena, board, NoClock);
    let mut console = Console::new(service);
    let mut port = MemPort::new(max_read);
    port.push(input);
    console.serve(&mut port).unwrap();
    String::from_utf8_lossy(&port.output).into_owned()
}

/// Status lines (`OK...`/`ERR...`) in order.
fn statuses(out: &str) -> Vec<String> {
    out.split("\r\n")
        .map(|l| l.trim_start_matches("pith> "))
        .filter(|l| l.starts_with("OK") || l.starts_with("ERR"))
        .map(str::to_string)
        .collect()
}

#[test]
fn banner_prompt_and_info_without_a_package() {
    let out = run(Err(Error::PackageTruncated), BOARD, b"info\r", 0);
    assert!(
        out.contains("pith 0.1.0 console on host-test (x86)"),
        "{out}"
    );
    assert!(out.contains("model none (no package linked)"), "{out}");
    assert!(
        out.contains("pith> info\r\n"),
        "typed text is echoed: {out}"
    );
    assert!(
        out.contains("flash 1234 of 4096 bytes\r\nram 56 of 1024 bytes\r\n"),
        "{out}"
    );
    assert_eq!(statuses(&out), ["OK"]);
    assert!(out.ends_with("OK\r\npith> "), "{out:?}");
}

#[test]
fn model_commands_answer_err_without_a_model_and_the_console_keeps_serving() {
    let board = Board {
        package_bytes: 100,
        ..BOARD
    };
    let input = b"echo off\rembed a cat\rsim a | b\rbench\rask why\rfrobnicate\rembed\r\rinfo\r";
    let out = run(Err(Error::PackageBadChecksum), board, input, 3);
    assert_eq!(
        statuses(&out),
        [
            "OK",
            "ERR 4 no model: package checksum mismatch (corrupted)",
            "ERR 4 no model: package checksum mismatch (corrupted)",
            "ERR 4 no model: package checksum mismatch (corrupted)",
            "ERR 3 no knowledge bank",
            "ERR 2 unknown command (try help)",
            "ERR 2 usage: embed TEXT",
            "OK",
        ]
    );
    assert!(
        !out.contains("pith> embed"),
        "echo off hides prompt and echo: {out}"
    );
}

#[test]
fn info_reports_the_model_from_a_valid_package() {
    let bytes = tiny_bert_package(1);
    let board = Board {
        package_bytes: bytes.len() as u32,
        ..BOARD
    };
    let out = run(Model::new(&bytes), board, b"echo off\rinfo\r", 0);
    for want in [
        "model tiny-random-bert\r\n",
        "dim 32\r\n",
        "layers 2\r\n",
        "vocab 41\r\n",
        "max_tokens 64\r\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
}

#[test]
fn embed_and_sim_report_what_the_model_computes() {
    let bytes = tiny_bert_package(1);
    let model = Model::new(&bytes).unwrap();
    let text = "a man is playing a guitar";
    let mut arena = vec![0i32; 8192];
    let mut want = vec![0i8; model.dim()];
    let tokens = model.embed(text, &mut arena, &mut want).unwrap();
    let head: Vec<String> = want.iter().take(8).map(|v| v.to_string()).collect();

    let board = Board {
        package_bytes: bytes.len() as u32,
        ..BOARD
    };
    let out = run(
        Model::new(&bytes),
        board,
        format!("echo off\rembed {text}\rsim {text} | {text}\r").as_bytes(),
        5,
    );
    let expected = format!(
        "tokens {tokens}\r\ndim 32\r\nfnv1a {:08x}\r\nhead {}\r\nOK\r\n",
        pith_console::fnv1a(&want),
        head.join(" ")
    );
    assert!(out.contains(&expected), "want {expected:?} in {out:?}");
    assert!(
        out.contains(&format!("cosine 1.0000\r\ntokens {tokens} {tokens}\r\nOK")),
        "{out:?}"
    );
}

#[test]
fn backspace_and_delete_edit_the_line_on_screen_and_in_the_buffer() {
    let out = run(
        Err(Error::PackageTruncated),
        BOARD,
        b"inx\x7ffo\x08\x08fo\r",
        0,
    );
    assert!(
        out.contains("pith> inx\x08 \x08fo\x08 \x08\x08 \x08fo\r\n"),
        "{out:?}"
    );
    assert!(
        out.contains("board host-test"),
        "the edited line ran as `info`: {out}"
    );
}

#[test]
fn help_lists_every_command() {
    let out = run(Err(Error::PackageTruncated), BOARD, b"help\r", 0);
    for cmd in [
        "help",
        "info",
        "embed TEXT",
        "sim A | B",
        "ask QUESTION",
        "chat TEXT",
        "chat reset",
        "bench",
        "echo on|off",
        "frame",
    ] {
        assert!(out.contains(cmd), "help lacks {cmd}: {out}");
    }
}

/// Seeded, so a failure replays exactly.
fn hostile_lines(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut input = Vec::new();
    for i in 0..n {
        match i % 5 {
            // Random bytes of any value, CR and LF included.
            0 => input.extend((0..rng.random_range(0..200)).map(|_| rng.random::<u8>())),
            // 10 kB without a line end inside.
            1 => input.extend((0..10_000).map(|_| rng.random_range(b'a'..=b'z'))),
            // Invalid UTF-8: a lone continuation byte, an overlong form, a cut sequence.
            2 => input.extend_from_slice(&[b'e', b'm', 0x80, 0xc0, 0xaf, 0xe2, 0x82]),
            // Control bytes and a NUL, plus a half escape sequence.
            3 => input.extend_from_slice(b"info\x00\x01\x07\x1b[12"),
            // An unknown command.
            _ => input.extend_from_slice(b"\xf0\x9f\x90\x88 meow"),
        }
        input.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
    }
    input
}

#[test]
fn ten_thousand_hostile_lines_then_info_still_answers_correctly() {
    let baseline = run(Err(Error::PackageTruncated), BOARD, b"echo off\rinfo\r", 0);
    let baseline_info = baseline
        .split_once("OK\r\n")
        .map(|(_, rest)| rest.to_string())
        .unwrap();

    let mut input = hostile_lines(10_000, 0x9e37_79b9_7f4a_7c15);
    input.extend_from_slice(b"\recho off\rinfo\r");
    let out = run(Err(Error::PackageTruncated), BOARD, &input, 61);

    let s = statuses(&out);
    assert!(
        s.len() >= 8_000,
        "most hostile lines get a reply, got {}",
        s.len()
    );
    assert!(s.iter().any(|l| l == "ERR 1 line too long (max 512 bytes)"));
    assert!(s.iter().any(|l| l == "ERR 1 invalid UTF-8"));
    assert!(s.iter().any(|l| l == "ERR 1 control byte 0x00 in line"));
    assert!(s.iter().any(|l| l == "ERR 2 unknown command (try help)"));
    assert!(
        out.ends_with(&baseline_info),
        "last reply differs from a fresh console's info:\n{}",
        &out[out.len() - 400..]
    );
}

#[test]
fn a_megabyte_without_line_end_is_one_err_then_service_resumes() {
    let mut input = vec![b'x'; 1 << 20];
    input.extend_from_slice(b"\recho off\rinfo\r");
    let out = run(Err(Error::PackageTruncated), BOARD, &input, 0);
    assert_eq!(
        statuses(&out),
        ["ERR 1 line too long (max 512 bytes)", "OK", "OK"]
    );
    assert!(
        out.len() < 2_000,
        "nothing of the flood is echoed back past the buffer: {} bytes",
        out.len()
    );
}

fn frame(request: &Request<'_>) -> Vec<u8> {
    let mut buf = [0u8; 1100];
    encode_request(request, &mut buf).unwrap().to_vec()
}

/// Splits framed output (after the `OK framed` line) into responses.
fn responses(out: &[u8]) -> Vec<Response> {
    out.split_inclusive(|&b| b == 0)
        .filter(|f| f.last() == Some(&0))
        .map(|f| decode_response(f).unwrap())
        .collect()
}

#[test]
fn framed_mode_serves_requests_survives_garbage_and_exits_to_text() {
    let mut input = b"echo off\rframe\r".to_vec();
    input.extend(frame(&Request::Info));
    input.extend(frame(&Request::Embed { text: "a cat" }));
    input.extend(frame(&Request::Ask { question: "why?" }));
    input.push(0); // a resynchronisation byte: no response
    input.extend_from_slice(&[0x05, 0xff, 0xff, 0xff, 0xff, 0x00]); // decodes to no Request
    input.extend(std::iter::repeat_n(0x42, 3000)); // overlong frame: one error, then resync at its 0x00
    input.push(0);
    input.extend(frame(&Request::Sim { a: "a", b: "b" }));
    input.extend(frame(&Request::Exit));
    input.extend_from_slice(b"info\r");
    let mut arena = vec![0i32; 64];
    let service = Service::new(
        Err(Error::PackageBadMagic),
        &mut arena,
        Board {
            package_bytes: 9,
            ..BOARD
        },
        NoClock,
    );
    let mut console = Console::new(service);
    let mut port = MemPort::new(7);
    port.push(&input);
    console.serve(&mut port).unwrap();
    let out = port.take_output();

    let text = String::from_utf8_lossy(&out);
    let start = text.find("OK framed").expect("frame acknowledged")
        + "OK framed: postcard Request in COBS frames until Exit\r\n".len();
    let framed_part = &out[start..];
    let end = framed_part.iter().rposition(|&b| b == 0).unwrap() + 1;
    let got = responses(&framed_part[..end]);
    assert_eq!(got.len(), 7, "{got:?}");
    match &got[0] {
        Response::Info(info) => {
            assert_eq!(info.board.as_str(), "host-test");
            assert_eq!(
                (info.dim, info.flash_used, info.package_bytes),
                (0, 1234, 9)
            );
        }
        other => panic!("expected Info, got {other:?}"),
    }
    let codes: Vec<u8> = got[1..6]
        .iter()
        .map(|r| match r {
            Response::Error { code, .. } => *code,
            other => panic!("expected an error, got {other:?}"),
        })
        .collect();
    assert_eq!(codes, [4, 3, 6, 6, 4], "embed, ask, garbage, overlong, sim");
    assert_eq!(got[6], Response::Bye);
    let after = String::from_utf8_lossy(&framed_part[end..]);
    assert!(
        after.contains("board host-test") && after.trim_end().ends_with("OK"),
        "text mode is back: {after}"
    );
}

/// 5,000 seeded bad frames (garbage, oversize, truncated COBS, truncated postcard), read in uneven
/// chunks: each draws exactly one error 6, and the `Info` request after it its answer.
#[test]
fn every_bad_frame_gets_one_error_and_the_next_request_its_answer() {
    let seed = pith_tests::noise::seed_from_env();
    eprintln!("seed {seed:#x} (replay: PITH_NOISE_SEED={seed:#x})");
    let mut frames = pith_tests::noise::Frames::new(seed);
    let mut input = b"echo off\rframe\r".to_vec();
    let n = 5_000;
    for _ in 0..n {
        input.extend(frames.next_frame().bytes);
        input.extend(frame(&Request::Info));
    }
    input.extend(frame(&Request::Exit));
    let mut arena = vec![0i32; 64];
    let service = Service::new(Err(Error::PackageTruncated), &mut arena, BOARD, NoClock);
    let mut console = Console::new(service);
    let mut port = MemPort::new(61);
    port.push(&input);
    console.serve(&mut port).unwrap();
    let out = port.take_output();
    let text = String::from_utf8_lossy(&out);
    let start = text.find("OK framed").expect("frame acknowledged")
        + "OK framed: postcard Request in COBS frames until Exit\r\n".len();
    let got = responses(&out[start..]);
    assert_eq!(got.len(), 2 * n + 1, "seed {seed:#x}");
    for (i, pair) in got[..2 * n].chunks(2).enumerate() {
        assert!(
            matches!(pair[0], Response::Error { code: 6, .. }),
            "frame {i}, seed {seed:#x}: {:?}",
            pair[0]
        );
        assert!(
            matches!(pair[1], Response::Info(_)),
            "after frame {i}, seed {seed:#x}: {:?}",
            pair[1]
        );
    }
    assert_eq!(got[2 * n], Response::Bye);
}
