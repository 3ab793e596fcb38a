//! How close the default package is to fp32, through the release `pith` binary: per text domain
//! (`pith eval fidelity`) and in retrieval (`pith eval faq --agreement`). The floors are the ones
//! the default package is built for (README, "Measured"); a quantizer or kernel change that loses
//! fidelity fails here.

use pith_tests::cli::pith_bin;
use pith_tests::qemu::repo_root;
use serde_json::Value;

fn json(args: &[&str]) -> Value {
    let out = std::process::Command::new(pith_bin())
        .args(args)
        .current_dir(repo_root().unwrap())
        .output()
        .expect("runs pith");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pith {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("JSON")
}

/// Every held-out domain: mean cosine at least 0.998 and no sentence below 0.995.
#[test]
fn default_package_is_faithful_on_every_domain() {
    let v = json(&["eval", "fidelity", "--json"]);
    eprintln!("{v}");
    let domains = v["domains"].as_object().expect("domains");
    for name in [
        "snli-heldout",
        "sick",
        "faq-queries",
        "faq-questions",
        "faq-answers",
    ] {
        let d = &domains[name];
        assert!(d["sentences"].as_u64().unwrap_or(0) >= 125, "{name}: {d}");
        assert!(d["mean"].as_f64().unwrap_or(0.0) >= 0.998, "{name}: {d}");
        assert!(d["worst"].as_f64().unwrap_or(0.0) >= 0.995, "{name}: {d}");
    }
}

/// The int8 bank and the fp32 engine pick the same FAQ entry for at least 99.5 % of dev queries.
#[test]
fn int8_and_fp32_rankings_agree() {
    let root = repo_root().unwrap();
    let bank = root.join("models/minilm-l6.pithkb");
    let queries = root.join("data/faq/stackfaq-dev-queries.tsv");
    let v = json(&[
        "eval",
        "faq",
        "--bank",
        &bank.to_string_lossy(),
        "--queries",
        &queries.to_string_lossy(),
        "--agreement",
        "--json",
    ]);
    let agreement = v["fp32_top1_agreement"].as_f64().unwrap_or(0.0);
    eprintln!(
        "agreement {agreement} %, disagreements {}",
        v["fp32_disagreements"]
    );
    assert_eq!(v["queries"], 625);
    assert!(agreement >= 99.5, "{agreement}");
}
