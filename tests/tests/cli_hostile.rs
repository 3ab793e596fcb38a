//! Hostile arguments, checkpoint configs, files and inputs against the release `pith` CLI: each must
//! get a clean error naming the problem (non-zero exit, no panic), or a correct result.
//!
//! Needs the default artifacts (`pith artifacts`: models/minilm-l6.pithkb, models/minilm-l6-12k.pith,
//! models/tier-m.pith and the ONNX exports). Each test collects every failing check of its theme and
//! reports them all at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use regex::Regex;
use serde_json::Value;

/// The default bank the `ask` and `kb info` checks read.
const BANK: &str = "models/minilm-l6.pithkb";
/// The StackFAQ bank source the `kb build` checks read.
const BANK_SOURCE: &str = "data/faq/stackfaq-bank.jsonl";
/// Queries the `embed --file` checks read.
const QUERIES: &str = "data/faq/stackfaq-dev-queries.tsv";
/// The small transformer checkpoint: quantizing it takes seconds.
const TIER_M: &str = "models/tier-m";
/// The ceiling on the resident set while refusing a 2 GB non-package (KiB, as time(1) reports it).
const MAX_REFUSAL_RSS_KB: u64 = 200_000;

fn root() -> PathBuf {
    pith_tools::defaults::repo_root().unwrap()
}

/// `pith ARGS...`, run from the repository root so the relative paths above resolve.
fn pith(args: &[&str]) -> Command {
    let mut cmd = Command::new(pith_tests::cli::pith_bin());
    cmd.args(args).current_dir(root());
    cmd
}

/// `pith quantize ARGS... --calib-count 4 --eval-count 4`: small counts keep each run short.
fn quant(args: &[&str]) -> Command {
    let mut cmd = pith(&["quantize"]);
    cmd.args(args)
        .args(["--calib-count", "4", "--eval-count", "4"]);
    cmd
}

/// A path as a `&str` (temporary paths are UTF-8).
fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Stdout then stderr, as one text.
fn combined(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of the Tier M checkpoint under `work/name` with `file` replaced by `content` (`None`
/// removes it); the big files are symlinks to the committed ones.
fn checkpoint(work: &Path, name: &str, file: &str, content: Option<&str>) -> PathBuf {
    let src = root().join(TIER_M);
    let d = work.join(name);
    std::fs::create_dir_all(d.join("1_Pooling")).unwrap();
    for f in ["model.safetensors", "vocab.txt"] {
        std::os::unix::fs::symlink(src.join(f), d.join(f)).unwrap();
    }
    for f in [
        "config.json",
        "tokenizer_config.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(src.join(f), d.join(f)).unwrap();
    }
    // The link (or copy) goes first, so the new content never reaches the committed file.
    let _ = std::fs::remove_file(d.join(file));
    if let Some(c) = content {
        std::fs::write(d.join(file), c).unwrap();
    }
    d
}

/// Tier M's config.json with `key` set to `value` (JSON).
fn config_with(key: &str, value: &str) -> String {
    let text = std::fs::read_to_string(root().join(TIER_M).join("config.json")).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config[key] = serde_json::from_str(value).unwrap();
    config.to_string()
}

/// Every entry under `dir` (recursively) whose name does not start with `taken.`.
fn leftovers(dir: &Path, found: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("taken.")
        {
            found.push(p.clone());
        }
        if p.is_dir() {
            leftovers(&p, found);
        }
    }
}

/// The failures of one theme's checks, reported together by [`Checks::finish`].
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
}

impl Checks {
    fn fail(&mut self, name: &str, why: impl std::fmt::Display) {
        self.failures.push(format!("{name}: {why}"));
    }

    /// Runs `cmd`; `None` (and a recorded failure) when it does not start.
    fn run(&mut self, name: &str, mut cmd: Command) -> Option<(ExitStatus, String)> {
        match cmd.output() {
            Ok(out) => Some((out.status, combined(&out))),
            Err(e) => {
                self.fail(name, format!("could not run {cmd:?}: {e}"));
                None
            }
        }
    }

    /// `cmd` must exit non-zero, print no panic, and its output must match `pattern` (a regex
    /// matched per line).
    fn expect_error(&mut self, name: &str, pattern: &str, cmd: Command) {
        let re = Regex::new(&format!("(?m){pattern}")).unwrap();
        let Some((status, out)) = self.run(name, cmd) else {
            return;
        };
        if status.success() {
            self.fail(name, "exit 0 (expected an error)");
        } else if out.contains("panicked") {
            self.fail(name, format!("panicked: {out}"));
        } else if !re.is_match(&out) {
            self.fail(name, format!("no /{pattern}/ in: {out}"));
        }
    }

    /// `cmd` must exit 0, print no panic, and its output must match `pattern` (per line).
    fn expect_ok(&mut self, name: &str, pattern: &str, cmd: Command) {
        let re = Regex::new(&format!("(?m){pattern}")).unwrap();
        let Some((status, out)) = self.run(name, cmd) else {
            return;
        };
        if !status.success() {
            self.fail(name, format!("{status}: {out}"));
        } else if out.contains("panicked") {
            self.fail(name, format!("panicked: {out}"));
        } else if !re.is_match(&out) {
            self.fail(name, format!("no /{pattern}/ in: {out}"));
        }
    }

    fn finish(self, theme: &str) {
        assert!(
            self.failures.is_empty(),
            "{} {theme} check(s) failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

#[test]
fn hostile_arguments_get_clean_errors() {
    let work = tempfile::tempdir().unwrap();
    let x = work.path().join("x.pith");
    let x = s(&x);
    let b = work.path().join("b.pithkb");
    let b = s(&b);
    let e = work.path().join("e.f32");
    let e = s(&e);
    let mut c = Checks::default();

    c.expect_ok(
        "ask -k 2^64-1 answers",
        r"^\[0\.",
        pith(&[
            "ask",
            "How do I delete my Facebook account?",
            "--kb",
            BANK,
            "-k",
            "18446744073709551615",
        ]),
    );
    c.expect_error(
        "ask -k 0",
        "at least 1",
        pith(&["ask", "hi", "--kb", BANK, "-k", "0"]),
    );
    c.expect_error(
        "quantize --alpha NaN",
        "not a finite number",
        quant(&[TIER_M, "-o", x, "--alpha", "NaN"]),
    );
    c.expect_error(
        "quantize --alpha 2",
        "outside 0..=1",
        quant(&[TIER_M, "-o", x, "--alpha", "2"]),
    );
    c.expect_error(
        "quantize --calib-count 0",
        "calib-count.*at least 1",
        pith(&["quantize", TIER_M, "-o", x, "--calib-count", "0"]),
    );
    c.expect_error(
        "quantize --ffn16 past the last layer",
        "names layer 9 but .* has 4 layers",
        quant(&[TIER_M, "-o", x, "--ffn16", "0,9"]),
    );
    c.expect_error(
        "quantize --ffn16 with a non-number",
        "not a layer index",
        quant(&[TIER_M, "-o", x, "--ffn16", "0,x"]),
    );
    c.expect_error(
        "quantize --ffn16 on a static model",
        "applies to BERT encoders",
        quant(&["models/tier-s", "-o", x, "--ffn16", "all"]),
    );
    c.expect_error(
        "quantize --eval-count 0",
        "eval-count.*at least 1",
        pith(&["quantize", TIER_M, "-o", x, "--eval-count", "0"]),
    );
    c.expect_error(
        "kb build --threshold NaN",
        "threshold.*not a finite number",
        pith(&["kb", "build", BANK_SOURCE, "-o", b, "--threshold", "NaN"]),
    );
    c.expect_error(
        "kb build --threshold 1.5",
        "threshold.*outside -1..=1",
        pith(&["kb", "build", BANK_SOURCE, "-o", b, "--threshold", "1.5"]),
    );
    c.expect_error(
        "kb build --keep inf",
        "keep.*not a finite number",
        pith(&["kb", "build", BANK_SOURCE, "-o", b, "--keep", "inf"]),
    );
    c.expect_error(
        "kb build --bits 5",
        "bits.*not 4 or 8",
        pith(&["kb", "build", BANK_SOURCE, "-o", b, "--bits", "5"]),
    );
    c.expect_error(
        "embed --threads 0",
        "threads.*at least 1",
        pith(&["embed", "--file", QUERIES, "--out", e, "--threads", "0"]),
    );
    c.finish("argument");
}

#[test]
fn broken_pipe_on_stdout_exits_quietly() {
    // The reader is gone before the first line (as after `| head -0`): every write gets EPIPE,
    // however small the output (a reader that took one line could leave the rest in the pipe's
    // buffer and prove nothing).
    let cases: [(&[&str], &[u8]); 4] = [
        (&["kb", "info", BANK, "--entries"], b""),
        (&["boards"], b""),
        (&["chat"], b"hello there\nhow are you\n"),
        (&["chat", "--json"], b"hello there\n"),
    ];
    let mut failures = Vec::new();
    for (args, input) in cases {
        let mut child = pith(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running pith");
        drop(child.stdout.take());
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            // The child may already have stopped reading; a failed write here is fine.
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.contains("panicked") {
            failures.push(format!(
                "pith {args:?} with no reader: {}\n{stderr}",
                out.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_checkpoint_configs_are_named_and_tokenizer_case_is_kept() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let x = w.join("x.pith");
    let x = s(&x);
    let mut c = Checks::default();

    let broken_configs = [
        (
            "num_attention_heads 0",
            "heads",
            "config.json",
            config_with("num_attention_heads", "0"),
            "config.json: .num_attention_heads. is 0",
        ),
        (
            "num_hidden_layers 0",
            "layers",
            "config.json",
            config_with("num_hidden_layers", "0"),
            "config.json: .num_hidden_layers. is 0",
        ),
        (
            "layer_norm_eps -1",
            "eps",
            "config.json",
            config_with("layer_norm_eps", "-1"),
            "layer_norm_eps -1 must be a positive",
        ),
        (
            "position_embedding_type relative_key",
            "pos",
            "config.json",
            config_with("position_embedding_type", r#""relative_key""#),
            "position_embedding_type .relative_key. is not supported",
        ),
        (
            "malformed tokenizer_config.json",
            "tc",
            "tokenizer_config.json",
            r#"{"do_lower_case": "yes"}"#.to_string(),
            "tokenizer_config.json",
        ),
        (
            "malformed 1_Pooling",
            "pool",
            "1_Pooling/config.json",
            r#"{"pooling_mode_mean_tokens": 1}"#.to_string(),
            "1_Pooling/config.json",
        ),
        (
            "malformed sentence_bert_config.json",
            "sb",
            "sentence_bert_config.json",
            r#"{"max_seq_length": "long"}"#.to_string(),
            "sentence_bert_config.json",
        ),
        (
            "malformed modules.json",
            "mod",
            "modules.json",
            r#"{"not": "a list"}"#.to_string(),
            "modules.json",
        ),
    ];
    for (name, dir, file, content, pattern) in &broken_configs {
        let d = checkpoint(w, dir, file, Some(content));
        c.expect_error(name, pattern, quant(&[s(&d), "-o", x]));
    }

    // tokenizer.json alone saying lowercase false: the package must keep case ("HELLO" != "hello").
    let name = "tokenizer.json lowercase false keeps case";
    let d = checkpoint(w, "cased", "tokenizer_config.json", None);
    std::fs::write(
        d.join("tokenizer.json"),
        r#"{"normalizer": {"type": "BertNormalizer", "lowercase": false, "strip_accents": false, "handle_chinese_chars": true}}"#,
    )
    .unwrap();
    let cased = w.join("cased.pith");
    let cased = s(&cased);
    match c.run(name, quant(&[s(&d), "-o", cased])) {
        Some((status, _)) if status.success() => {
            let upper = c.run(name, pith(&["embed", "HELLO", "--model", cased, "--json"]));
            let lower = c.run(name, pith(&["embed", "hello", "--model", cased, "--json"]));
            match (upper, lower) {
                (Some((su, upper)), Some((sl, lower))) if su.success() && sl.success() => {
                    if upper == lower {
                        c.fail(name, "the package lowercases: HELLO and hello embed alike");
                    }
                }
                (upper, lower) => c.fail(
                    name,
                    format!("embedding with the package failed: {upper:?} / {lower:?}"),
                ),
            }
        }
        Some((status, out)) => c.fail(name, format!("the package did not build ({status}): {out}")),
        None => {}
    }
    c.finish("checkpoint config");
}

/// Tier M's model.safetensors with tensor `name`'s first value replaced by `value` (F16 bits), or
/// with its shape entry replaced by `shape`.
fn safetensors_with(name: &str, value: Option<u16>, shape: Option<&str>) -> Vec<u8> {
    let bytes = std::fs::read(root().join(TIER_M).join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut data = bytes[8 + n..].to_vec();
    assert_eq!(header[name]["dtype"], "F16");
    if let Some(v) = value {
        let at = header[name]["data_offsets"][0].as_u64().unwrap() as usize;
        data[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    if let Some(sh) = shape {
        header[name]["shape"] = serde_json::from_str(sh).unwrap();
    }
    let mut head = header.to_string().into_bytes();
    // The format pads its header with spaces to a multiple of 8.
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend(head);
    out.extend(data);
    out
}

/// Checkpoint weights that disagree with config.json or are not finite are refused by both
/// `export` and `quantize`, naming the tensor, before anything is written.
#[test]
fn inconsistent_or_non_finite_weights_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut c = Checks::default();
    let q = "encoder.layer.0.attention.self.query.weight";
    let cases: [(&str, Vec<u8>, Option<String>, &str); 4] = [
        (
            "a NaN query weight",
            safetensors_with(q, Some(0x7e00), None),
            None,
            "tensor .encoder.layer.0.attention.self.query.weight. holds a non-finite value",
        ),
        (
            "an infinite weight",
            safetensors_with("embeddings.LayerNorm.weight", Some(0x7c00), None),
            None,
            "non-finite value",
        ),
        (
            "a query weight stored as [64, 256]",
            safetensors_with(q, None, Some("[64, 256]")),
            None,
            "has shape \\[64, 256\\], config.json implies \\[128, 128\\]",
        ),
        (
            "num_hidden_layers 2 on a 4-layer checkpoint",
            std::fs::read(root().join(TIER_M).join("model.safetensors")).unwrap(),
            Some(config_with("num_hidden_layers", "2")),
            "holds weights of layer 2, but config.json says num_hidden_layers 2",
        ),
    ];
    for (k, (name, weights, config, pattern)) in cases.into_iter().enumerate() {
        let config = config.unwrap_or_else(|| {
            std::fs::read_to_string(root().join(TIER_M).join("config.json")).unwrap()
        });
        let d = checkpoint(w, &format!("ck{k}"), "config.json", Some(&config));
        let st = d.join("model.safetensors");
        std::fs::remove_file(&st).unwrap();
        std::fs::write(&st, weights).unwrap();
        let out = w.join(format!("out{k}.pith"));
        c.expect_error(name, pattern, quant(&[s(&d), "-o", s(&out)]));
        let onnx = w.join(format!("out{k}.onnx"));
        c.expect_error(name, pattern, pith(&["export", s(&d), "-o", s(&onnx)]));
        if out.exists() || onnx.exists() {
            c.fail(name, "an output was written");
        }
    }
    c.finish("checkpoint weights");
}

#[test]
fn failed_writes_keep_existing_files_and_leave_nothing_behind() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = root();
    let mut c = Checks::default();

    let good = w.join("good.pith");
    std::fs::write(&good, "not a package").unwrap();
    let d = checkpoint(
        w,
        "keep",
        "config.json",
        Some(&config_with("num_hidden_layers", "0")),
    );
    c.expect_error(
        "quantize with a bad config",
        "is 0",
        quant(&[s(&d), "-o", s(&good)]),
    );
    if std::fs::read(&good).unwrap() != b"not a package" {
        c.fail("quantize keeps the old output", "it was overwritten");
    }

    let src = w.join("src.jsonl");
    std::fs::copy(root.join(BANK_SOURCE), &src).unwrap();
    let src = s(&src);
    c.expect_error(
        "kb build src -o src",
        "also an input",
        pith(&["kb", "build", src, "-o", src]),
    );
    if std::fs::read(root.join(BANK_SOURCE)).unwrap() != std::fs::read(src).unwrap() {
        c.fail("kb build src -o src", "the source changed");
    }
    c.expect_error(
        "quantize -o the calibration file",
        "also an input",
        quant(&[TIER_M, "--calib", src, "-o", src]),
    );
    c.expect_error(
        "embed --out the input",
        "also an input",
        pith(&["embed", "--file", src, "--out", src]),
    );

    let outdir = w.join("outdir");
    std::fs::create_dir_all(outdir.join("taken.pithkb")).unwrap();
    c.expect_error(
        "kb build onto a folder",
        "taken.pithkb",
        pith(&[
            "kb",
            "build",
            BANK_SOURCE,
            "-o",
            s(&outdir.join("taken.pithkb")),
        ]),
    );
    std::fs::create_dir_all(outdir.join("taken.f32")).unwrap();
    c.expect_error(
        "embed --out onto a folder",
        "taken.f32",
        pith(&[
            "embed",
            "--file",
            QUERIES,
            "--out",
            s(&outdir.join("taken.f32")),
        ]),
    );
    let mut left = Vec::new();
    leftovers(&outdir, &mut left);
    if !left.is_empty() {
        c.fail("failed writes leave nothing behind", format!("{left:?}"));
    }
    c.finish("file");
}

#[test]
fn malformed_bank_sources_are_refused_by_line() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let b = w.join("b.pithkb");
    let b = s(&b);
    let mut c = Checks::default();

    let dup = w.join("dup.jsonl");
    std::fs::write(
        &dup,
        "{\"id\": \"a\", \"question\": \"q1\", \"answer\": \"a1\"}\n\
         {\"id\": \"a\", \"question\": \"q2\", \"answer\": \"a2\"}\n",
    )
    .unwrap();
    c.expect_error(
        "kb build duplicate ids",
        r#"line 2: id "a" was already used on line 1"#,
        pith(&["kb", "build", s(&dup), "-o", b]),
    );
    let obj = w.join("obj.jsonl");
    std::fs::write(
        &obj,
        "{\"id\": \"a\", \"question\": \"q1\", \"answer\": {\"text\": \"a1\"}}\n",
    )
    .unwrap();
    c.expect_error(
        "kb build non-string answer",
        "line 1: .answer. must be a string",
        pith(&["kb", "build", s(&obj), "-o", b]),
    );
    c.finish("bank source");
}

#[test]
fn bad_eval_sts_inputs_are_refused_by_line() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut c = Checks::default();

    let cases = [
        (
            "eval sts NaN score",
            "nan.tsv",
            "1\ta\tb\nNaN\tc\td\n",
            "nan.tsv:2: the score NaN",
        ),
        (
            "eval sts inf score",
            "inf.tsv",
            "1\ta\tb\ninf\tc\td\n",
            "inf.tsv:2: the score inf",
        ),
        ("eval sts empty file", "empty.tsv", "", "0 scored pairs"),
        (
            "eval sts unparsable",
            "junk.tsv",
            "header line\nnot a pair\n",
            "junk.tsv:2: expected",
        ),
    ];
    for (name, file, content, pattern) in cases {
        let p = w.join(file);
        std::fs::write(&p, content).unwrap();
        c.expect_error(name, pattern, pith(&["eval", "sts", s(&p)]));
    }
    c.finish("eval sts input");
}

/// Empty inputs are refused, never reported as a result: a query file with no queries or an empty
/// query, a blank negatives file, conversations with an empty turn or none at all.
#[test]
fn empty_inputs_are_refused_not_reported() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut c = Checks::default();
    let write = |name: &str, content: &str| {
        let p = w.join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let (none, blank_query, blank) = (
        write("none.tsv", "\n\n"),
        write("blank-query.tsv", "3\thow do I reset it\n4\t  \n"),
        write("blank.txt", "\n  \n"),
    );
    let eval_faq = |queries: &Path, extra: &[&str]| {
        let mut cmd = pith(&["eval", "faq", "--bank", BANK, "--queries", s(queries)]);
        cmd.args(extra);
        cmd
    };
    c.expect_error(
        "eval faq, no queries",
        "none.tsv: no queries",
        eval_faq(&none, &[]),
    );
    c.expect_error(
        "eval faq, an empty query",
        "blank-query.tsv:2: the query is empty",
        eval_faq(&blank_query, &[]),
    );
    c.expect_error(
        "eval faq, blank negatives",
        "blank.txt: no negative queries",
        eval_faq(Path::new(QUERIES), &["--abstain", "--negatives", s(&blank)]),
    );
    c.expect_error(
        "kb build --calibrate, no queries",
        "none.tsv: no queries",
        pith(&[
            "kb",
            "build",
            BANK_SOURCE,
            "-o",
            s(&w.join("x.pithkb")),
            "--calibrate",
            s(&none),
        ]),
    );
    let turns = write("empty-turns.jsonl", "{\"turns\": [\"\", \" \"]}\n");
    c.expect_error(
        "eval chat, empty turns",
        "empty-turns.jsonl:1: a turn is empty",
        pith(&["eval", "chat", "--conversations", s(&turns)]),
    );
    let nothing = write("nothing.jsonl", "\n");
    c.expect_error(
        "eval chat, no conversations",
        "nothing.jsonl: no conversations",
        pith(&["eval", "chat", "--conversations", s(&nothing)]),
    );
    c.finish("empty inputs");
}

#[test]
fn mismatched_packages_and_backends_are_refused_cheaply() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut c = Checks::default();

    c.expect_error(
        "tract-fp32 with the 12k package",
        "token table is 30522 x 384 but the package's is 12000 x 384",
        pith(&[
            "embed",
            "hello",
            "--backend",
            "tract-fp32",
            "--model",
            "models/minilm-l6-12k.pith",
        ]),
    );
    c.expect_error(
        "tract-int8 with Tier M",
        "token table",
        pith(&[
            "embed",
            "hello",
            "--backend",
            "tract-int8",
            "--model",
            "models/tier-m.pith",
        ]),
    );

    // A sparse 2 GB file that is not a package: refused without reading it all into memory.
    let name = "2 GB --model";
    let big = w.join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kb=%M"])
        .arg(pith_tests::cli::pith_bin())
        .args(["embed", "hello", "--model", s(&big)])
        .current_dir(root())
        .stdout(Stdio::null())
        .output();
    match out {
        Ok(out) => {
            // time(1) and pith both write to stderr.
            let log = String::from_utf8_lossy(&out.stderr);
            let rss = log
                .lines()
                .find_map(|l| l.strip_prefix("maxrss_kb="))
                .and_then(|v| v.trim().parse::<u64>().ok());
            match rss {
                Some(kb) if log.contains("not a package") && kb < MAX_REFUSAL_RSS_KB => {}
                _ => c.fail(
                    name,
                    format!("not refused under {MAX_REFUSAL_RSS_KB} KB RSS: {log}"),
                ),
            }
        }
        Err(e) => c.fail(name, format!("could not run /usr/bin/time: {e}")),
    }
    c.finish("package and backend");
}

/// A full copy of the committed folder `models/name` under `work` (real files, no links: an
/// overwrite that slipped through must not reach the committed model).
fn copy_dir(work: &Path, name: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let dest = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy(&p, &dest);
            } else {
                std::fs::copy(&p, &dest).unwrap();
            }
        }
    }
    let d = work.join(name);
    copy(&root().join("models").join(name), &d);
    d
}

/// Every file under `dir` with its bytes, for checking that nothing was touched.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                files.push((p.clone(), std::fs::read(&p).unwrap()));
            } else {
                files.push((
                    p.clone(),
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                ));
            }
        }
    }
    files.sort();
    files
}

/// An output that is one of the command's inputs, or lies inside an input checkpoint folder
/// (directly, through a link to a file in it, or as a link in it that leads to the weights), is
/// refused before any work, and every input is left as it was.
#[test]
fn outputs_never_overwrite_their_inputs() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut c = Checks::default();
    let ck = copy_dir(w, "tier-m");
    let rs = copy_dir(w, "reasoner-s");
    // A checkpoint whose weights are a link to a file elsewhere: that file is an input too.
    let linked = w.join("linked");
    std::fs::create_dir(&linked).unwrap();
    for f in std::fs::read_dir(&ck).unwrap() {
        let p = f.unwrap().path();
        std::os::unix::fs::symlink(&p, linked.join(p.file_name().unwrap())).unwrap();
    }
    let calib = w.join("y.report.svg");
    std::fs::copy(root().join("data/calib/snli-dev-sentences.txt"), &calib).unwrap();
    let encoder = w.join("tier-s.pith");
    std::fs::copy(root().join("models/tier-s.pith"), &encoder).unwrap();
    std::os::unix::fs::symlink(ck.join("config.json"), w.join("link.json")).unwrap();
    let before = snapshot(w);

    let refused = "refusing to overwrite it";
    let x = w.join("x.pith");
    c.expect_error(
        "export over the checkpoint's weights",
        refused,
        pith(&["export", s(&ck), "-o", s(&ck.join("model.safetensors"))]),
    );
    c.expect_error(
        "export through a link into the checkpoint",
        refused,
        pith(&["export", s(&ck), "-o", s(&w.join("link.json"))]),
    );
    c.expect_error(
        "export over the file a checkpoint links its weights from",
        refused,
        pith(&["export", s(&linked), "-o", s(&ck.join("model.safetensors"))]),
    );
    c.expect_error(
        "quantize over the checkpoint's vocabulary",
        refused,
        quant(&[s(&ck), "-o", s(&ck.join("vocab.txt"))]),
    );
    c.expect_error(
        "quantize over the checkpoint's config",
        refused,
        quant(&[s(&ck), "-o", s(&ck.join("config.json"))]),
    );
    c.expect_error(
        "quantize --onnx over the checkpoint's weights",
        refused,
        quant(&[
            s(&ck),
            "-o",
            s(&x),
            "--onnx",
            s(&ck.join("model.safetensors")),
        ]),
    );
    c.expect_error(
        "quantize, the report over the calibration file",
        refused,
        quant(&[s(&ck), "--calib", s(&calib), "-o", s(&w.join("y.pith"))]),
    );
    c.expect_error(
        "quantize a reasoner over its gate",
        refused,
        quant(&[s(&rs), "-o", s(&rs.join("gate.json"))]),
    );
    c.expect_error(
        "quantize a reasoner over its encoder",
        refused,
        quant(&[s(&rs), "--encoder", s(&encoder), "-o", s(&encoder)]),
    );
    let after = snapshot(w);
    if after != before {
        let changed: Vec<_> = after
            .iter()
            .filter(|f| !before.contains(f))
            .map(|(p, _)| p.display().to_string())
            .collect();
        c.fail("inputs kept", format!("changed or new: {changed:?}"));
    }
    c.finish("outputs over inputs");
}

/// A copy of the Tier S reasoner checkpoint under `work/name` whose reasoner.json has `key` set
/// to `value` (JSON); the weights and gate are links to the committed ones (only read).
fn reasoner_with(work: &Path, name: &str, key: &str, value: &str) -> PathBuf {
    let src = root().join("models/reasoner-s");
    let d = work.join(name);
    std::fs::create_dir_all(&d).unwrap();
    for f in ["model.safetensors", "gate.json"] {
        std::os::unix::fs::symlink(src.join(f), d.join(f)).unwrap();
    }
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("reasoner.json")).unwrap()).unwrap();
    cfg[key] = serde_json::from_str(value).unwrap();
    std::fs::write(d.join("reasoner.json"), cfg.to_string()).unwrap();
    d
}

/// A reasoner checkpoint whose config disagrees with the integer engine or with its weights is
/// refused by every engine; a reasoner is paired only with the encoder it was built over; a
/// tract backend runs only the kind of graph it names.
#[test]
fn reasoner_configs_pairings_and_graph_kinds_are_checked() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut c = Checks::default();
    let onnx = w.join("r.onnx");
    for (key, value, why) in [
        ("gelu", "\"tanh\"", r#""gelu" must be "erf""#),
        (
            "layer_norm_eps",
            "0",
            r#""layer_norm_eps" must be a positive number"#,
        ),
        ("layers", "0", "layers and ffn must be at least 1"),
        (
            "layers",
            "1",
            "holds tensors reasoner.json does not account for .*layers.1",
        ),
    ] {
        let r = reasoner_with(w, &format!("{key}-{value}"), key, value);
        c.expect_error(
            &format!("export, {key} {value}"),
            why,
            pith(&["export", s(&r), "-o", s(&onnx)]),
        );
        c.expect_error(
            &format!("chat --backend tract-fp32, {key} {value}"),
            why,
            pith(&[
                "chat",
                "--reasoner",
                s(&r),
                "--backend",
                "tract-fp32",
                "--bank",
                "models/reasoner-s.pithkb",
                "hello there",
            ]),
        );
    }
    if onnx.exists() {
        c.fail("export", "an ONNX was written from a refused config");
    }

    // The Tier S reasoner over Tier M's vectors: both 128 wide, different spaces.
    for backend in ["native", "tract-fp32"] {
        c.expect_error(
            &format!("chat {backend}, another encoder"),
            "models/tier-m.pith .* is not the encoder the reasoner was built over",
            pith(&[
                "chat",
                "--reasoner",
                "models/reasoner-s",
                "--backend",
                backend,
                "--model",
                "models/tier-m.pith",
                "--bank",
                "models/tier-m.pithkb",
                "hello there",
            ]),
        );
    }
    c.expect_error(
        "eval chat, another encoder",
        "is not the encoder the reasoner was built over",
        pith(&[
            "eval",
            "chat",
            "--reasoner",
            "models/reasoner-s",
            "--model",
            "models/tier-m.pith",
            "--conversations",
            "data/chitchat/dev.jsonl",
        ]),
    );

    // Each tract engine runs only its own kind of graph.
    c.expect_error(
        "tract-int8 with the fp32 export",
        "an fp32 graph .* tract-int8",
        pith(&[
            "embed",
            "--backend",
            "tract-int8",
            "--onnx",
            "models/minilm-l6.fp32.onnx",
            "hi",
        ]),
    );
    c.expect_error(
        "tract-fp32 with the QDQ graph",
        "a quantized \\(QDQ\\) graph, but the tract-fp32",
        pith(&[
            "embed",
            "--backend",
            "tract-fp32",
            "--onnx",
            "models/minilm-l6.int8.onnx",
            "hi",
        ]),
    );
    c.expect_error(
        "reasoner tract-int8 with an fp32 graph",
        "an fp32 graph .* reasoner's QDQ graph",
        pith(&[
            "chat",
            "--backend",
            "tract-int8",
            "--qdq",
            "models/minilm-l6.fp32.onnx",
            "hi",
        ]),
    );
    c.finish("reasoner configs, pairings and graph kinds");
}

/// `pith artifacts` rebuilds an artifact that is there but does not load (here a truncated Tier S
/// package, in a home of its own): the rebuilt package is byte for byte the committed one, and a
/// second run leaves it alone.
#[test]
fn artifacts_rebuilds_a_package_that_does_not_load() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join("models")).unwrap();
    std::fs::create_dir_all(h.join("boards/src")).unwrap();
    std::fs::write(h.join("boards/src/lib.rs"), "").unwrap();
    std::fs::copy(root().join("models/README.md"), h.join("models/README.md")).unwrap();
    std::os::unix::fs::symlink(root().join("models/tier-s"), h.join("models/tier-s")).unwrap();
    std::os::unix::fs::symlink(root().join("data"), h.join("data")).unwrap();
    let committed = std::fs::read(root().join("models/tier-s.pith")).unwrap();
    let package = h.join("models/tier-s.pith");
    std::fs::write(&package, &committed[..committed.len() / 3]).unwrap();
    let run = || {
        let out = Command::new(pith_tests::cli::pith_bin())
            .args(["artifacts", "models/tier-s.pith"])
            .env("PITH_HOME", h)
            .current_dir(h)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", combined(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = run();
    assert!(first.contains("does not load"), "{first}");
    assert!(
        std::fs::read(&package).unwrap() == committed,
        "the rebuilt package differs from the committed one"
    );
    let second = run();
    assert!(!second.contains("rebuilding"), "{second}");
}

/// Small slips a user makes in input files: a byte-order mark at the start of an STS file or a
/// vocabulary is dropped (it used to cost the first pair, or the `[PAD]` token); a token on two
/// lines of vocab.txt and a package name longer than the header holds are refused by name.
#[test]
fn byte_order_marks_duplicate_tokens_and_long_names() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut c = Checks::default();
    let sts = w.join("bom.tsv");
    std::fs::write(
        &sts,
        "\u{feff}4.5\tA man is playing a guitar.\tA man plays the guitar.\n\
         1.0\tA cat sleeps.\tThe stock market fell.\n\
         3.0\tA woman cuts onions.\tSomeone is cooking.\n",
    )
    .unwrap();
    c.expect_ok(
        "eval sts, a BOM before the first pair",
        "^3 pairs, Spearman",
        pith(&["eval", "sts", s(&sts), "--model", "models/tier-s.pith"]),
    );

    let vocab = std::fs::read_to_string(root().join(TIER_M).join("vocab.txt")).unwrap();
    let bom = checkpoint(w, "bom", "vocab.txt", Some(&format!("\u{feff}{vocab}")));
    c.expect_ok(
        "quantize, a BOM before [PAD] in vocab.txt",
        "^package ",
        quant(&[s(&bom), "-o", s(&w.join("bom.pith"))]),
    );
    let mut lines: Vec<&str> = vocab.lines().collect();
    let last = lines.len() - 1;
    lines[last] = lines[1000];
    let dup = checkpoint(w, "dup", "vocab.txt", Some(&(lines.join("\n") + "\n")));
    c.expect_error(
        "quantize, a token twice in vocab.txt",
        &format!(
            "vocab.txt:{}: the token .* is already on line 1001",
            last + 1
        ),
        quant(&[s(&dup), "-o", s(&w.join("dup.pith"))]),
    );
    let long = "x".repeat(49);
    c.expect_error(
        "quantize --name over 48 bytes",
        "--name is 49 bytes; a package name holds at most 48",
        quant(&[TIER_M, "-o", s(&w.join("long.pith")), "--name", &long]),
    );
    c.finish("input slips");
}
