//! `chat` in the console on the host (in-memory port): text and framed mode give the same answers
//! (with and without a lexicon in the response bank), `chat reset` starts over, a lexicon at
//! weight 0 answers as no lexicon, and a console without a reasoner answers ERR 3.

use pith_console::chat::{self, Chat};
use pith_console::frame::{encode_request, Request, Response};
use pith_console::{Board, Console, NoClock, Service};
use pith_runtime::kb::Bank;
use pith_runtime::{Model, Reasoner};
use pith_tests::memport::MemPort;
use pith_tests::qemu::{decode_response, repo_root};
use pith_tools::artifacts::package;
use pith_tools::catalog::{REASONER_S, TIER_M, TIER_S};

const BOARD: Board<'static> = Board {
    package_bytes: 1,
    ..Board::host("host-test", "x86")
};

const TURNS: [&str; 3] = [
    "hi! how are you doing today?",
    "i just got back from a long run",
    "what would you do with a million dollars?",
];

/// A response bank of the first 30 training conversations' turns, embedded by Tier S, with a
/// lexicon at `lexical_weight` when given.
fn bank(tier_s: &std::path::Path, lexical_weight: Option<&str>) -> Vec<u8> {
    let train = std::fs::read_to_string(repo_root().unwrap().join("data/chitchat/train.jsonl"))
        .expect("data/chitchat/train.jsonl (scripts/fetch-chitchat.sh)");
    let mut lines: Vec<String> = Vec::new();
    for l in train.lines().take(30) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for t in v["turns"].as_array().unwrap() {
            let t = t.as_str().unwrap().replace(['\n', '\r'], " ");
            if !lines.contains(&t) {
                lines.push(t);
            }
        }
    }
    // Tests run in parallel threads of one process: each bank gets its own directory.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("turns.txt");
    let out = dir.path().join("turns.pithkb");
    std::fs::write(&src, lines.join("\n")).unwrap();
    let st = std::process::Command::new(pith_tests::cli::pith_bin())
        .args(["kb", "build"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("--model")
        .arg(tier_s)
        .args(["--threshold", "-1"])
        .args(
            lexical_weight
                .map(|w| ["--lexical-weight", w])
                .iter()
                .flatten(),
        )
        .status()
        .unwrap();
    assert!(st.success());
    let b = std::fs::read(&out).unwrap();
    if let Some(w) = lexical_weight {
        let l = pith_runtime::kb::Bank::new_checked(&b)
            .unwrap()
            .lexicon()
            .unwrap();
        assert_eq!(l.weight() as f32 / 65536.0, w.parse::<f32>().unwrap());
    }
    b
}

fn frame(request: &Request<'_>) -> Vec<u8> {
    let mut buf = [0u8; 1100];
    encode_request(request, &mut buf).unwrap().to_vec()
}

/// The console's output for `input`, over Tier S, reasoner-s and `bank_bytes` (no reasoner
/// unless `attach`).
fn serve(bank_bytes: &[u8], input: &[u8], attach: bool) -> Vec<u8> {
    let tier_s = package(TIER_S).unwrap();
    let enc = std::fs::read(&tier_s).unwrap();
    let rs = std::fs::read(package(REASONER_S).unwrap()).unwrap();
    {
        let model = Model::new(&enc).unwrap();
        let reasoner = Reasoner::new(&rs).unwrap();
        let mut arena = vec![0i32; 16 * 1024];
        let (arena, mem) = arena.split_at_mut(16 * 1024 - chat::words(128));
        let bank = Bank::for_model(bank_bytes, &model).unwrap();
        let chat = attach.then(|| Chat::new(&reasoner, bank, &model, mem).unwrap());
        let mut service = Service::new(Ok(&model), arena, BOARD, NoClock);
        if let Some(c) = chat {
            service.attach_chat(c).unwrap();
        }
        let mut console = Console::new(service);
        let mut port = MemPort::new(5);
        port.push(input);
        console.serve(&mut port).unwrap();
        port.take_output()
    }
}

/// Text mode's (score, answer, prediction, margin) lines for the three turns, reset, the first
/// turn again.
fn text_answers(bank_bytes: &[u8]) -> Vec<(String, String, String, String)> {
    // Text: three turns, reset, the first turn again.
    let mut input = b"echo off\r".to_vec();
    for t in TURNS {
        input.extend_from_slice(format!("chat {t}\r").as_bytes());
    }
    input.extend_from_slice(format!("chat reset\rchat {}\r", TURNS[0]).as_bytes());
    let text = String::from_utf8(serve(bank_bytes, &input, true)).unwrap();
    let answers: Vec<(String, String, String, String)> = text
        .split("\r\n")
        .collect::<Vec<_>>()
        .windows(4)
        .filter_map(|w| {
            let s = w[0].strip_prefix("score ")?;
            Some((
                s.to_string(),
                w[1].strip_prefix("answer ")?.to_string(),
                w[2].strip_prefix("prediction ")?.to_string(),
                w[3].strip_prefix("margin ")?.to_string(),
            ))
        })
        .collect();
    assert_eq!(answers.len(), 4, "{text}");
    assert_eq!(answers[3], answers[0], "reset starts the conversation over");
    answers
}

#[test]
fn text_and_framed_chat_agree_and_reset_starts_over() {
    let tier_s = package(TIER_S).unwrap();
    let plain = bank(&tier_s, None);
    for lexical in [None, Some("1.25")] {
        let b = match lexical {
            None => plain.clone(),
            Some(w) => bank(&tier_s, Some(w)),
        };
        text_and_framed_agree(&b);
    }
    // Without a reasoner: ERR 3, and the console keeps serving.
    let out = String::from_utf8(serve(
        &plain,
        b"echo off\rchat hello\rchat reset\rinfo\r",
        false,
    ))
    .unwrap();
    assert!(
        out.contains("ERR 3 no reasoner and response bank linked"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("OK"), "{out}");
}

/// A lexicon adds nothing at weight 0, and something at a weight that counts.
#[test]
fn a_lexicon_at_weight_zero_answers_as_none() {
    let tier_s = package(TIER_S).unwrap();
    let plain = text_answers(&bank(&tier_s, None));
    assert_eq!(text_answers(&bank(&tier_s, Some("0"))), plain);
    assert_ne!(text_answers(&bank(&tier_s, Some("4"))), plain);
}

/// The device never answers with a sentence still in its ring: told the same thing twelve
/// times, it does not repeat any of its last four answers (the ring's eight turns).
#[test]
fn chat_does_not_repeat_its_recent_answers() {
    let tier_s = package(TIER_S).unwrap();
    let bank_bytes = bank(&tier_s, Some("1.25"));
    let mut input = b"echo off\r".to_vec();
    for _ in 0..12 {
        input.extend_from_slice(b"chat ok\r");
    }
    let out = String::from_utf8(serve(&bank_bytes, &input, true)).unwrap();
    let answers: Vec<&str> = out
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("answer "))
        .collect();
    assert_eq!(answers.len(), 12, "{out}");
    for (i, a) in answers.iter().enumerate() {
        let recent = &answers[i.saturating_sub(4)..i];
        assert!(!recent.contains(a), "turn {i} repeats {a:?}: {answers:?}");
    }
}

fn text_and_framed_agree(bank_bytes: &[u8]) {
    let answers = text_answers(bank_bytes);

    // Framed: the same turns, the same answers and scores.
    let mut input = b"echo off\rframe\r".to_vec();
    for t in TURNS {
        input.extend(frame(&Request::Chat { text: t }));
    }
    input.extend(frame(&Request::ChatReset));
    input.extend(frame(&Request::Chat { text: TURNS[0] }));
    let out = serve(bank_bytes, &input, true);
    let start = out.windows(10).position(|w| w == b"OK framed:").unwrap();
    let nl = start + out[start..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let got: Vec<Response> = out[nl..]
        .split_inclusive(|&b| b == 0)
        .filter(|f| f.last() == Some(&0))
        .map(|f| decode_response(f).unwrap())
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[3], Response::Done);
    for (i, k) in [0usize, 1, 2, 4].into_iter().enumerate() {
        let Response::Chat {
            text,
            score,
            prediction,
            margin,
            refined,
        } = &got[k]
        else {
            panic!("{:?}", got[k])
        };
        let refined = if *refined { " refined" } else { "" };
        assert_eq!(
            (
                format!("{score:.4}"),
                text.to_string(),
                format!("{prediction:08x}"),
                format!("{margin:.4}{refined}"),
            ),
            answers[i],
            "turn {i}"
        );
    }
}

/// A reasoner opens only with the encoder it was built over (its package records the tag), and
/// every turn must come from that encoder: Tier M's vectors are 128 wide like Tier S's, but in
/// another space. The console refuses a chat opened for another model likewise.
#[test]
fn chat_takes_only_the_encoder_its_reasoner_was_built_over() {
    let (tier_s, tier_m) = (package(TIER_S).unwrap(), package(TIER_M).unwrap());
    let (enc_s, enc_m) = (
        std::fs::read(&tier_s).unwrap(),
        std::fs::read(&tier_m).unwrap(),
    );
    let rs = std::fs::read(package(REASONER_S).unwrap()).unwrap();
    let (model_s, model_m) = (Model::new(&enc_s).unwrap(), Model::new(&enc_m).unwrap());
    assert_eq!(model_s.dim(), model_m.dim());
    let reasoner = Reasoner::new(&rs).unwrap();
    assert_eq!(
        reasoner.encoder_tag(),
        pith_runtime::kb::package_tag(model_s.package())
    );
    let bank_bytes = bank(&tier_s, None);
    let bank_s = Bank::for_model(&bank_bytes, &model_s).unwrap();
    let mut mem = vec![0i32; chat::words(128)];
    assert_eq!(
        Chat::new(&reasoner, bank_s, &model_m, &mut mem).err(),
        Some(pith_runtime::Error::ReasonerEncoderMismatch)
    );

    let mut c = Chat::new(&reasoner, bank_s, &model_s, &mut mem).unwrap();
    let mut arena = vec![0i32; model_m.arena_words(model_m.max_tokens()).max(4096)];
    let (mut a, mut b) = (vec![0i8; 128], vec![0i8; 128]);
    assert_eq!(
        c.step(&model_m, TURNS[0], &mut arena, &mut a, &mut b).err(),
        Some(pith_runtime::Error::ReasonerEncoderMismatch)
    );
    assert!(c.is_empty(), "a refused turn leaves the ring as it was");
    let mut service = Service::new(Ok(&model_m), &mut arena, BOARD, NoClock);
    assert_eq!(
        service.attach_chat(c).err(),
        Some(pith_runtime::Error::ReasonerEncoderMismatch)
    );
}
