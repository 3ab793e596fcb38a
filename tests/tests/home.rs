//! Pith's home is found at run time: a `pith` binary run outside a checkout, or pointed at a
//! folder that is not one, says how to set `PITH_HOME`; pointed at the checkout, it works from
//! anywhere.

use std::process::Command;

use pith_tests::cli::pith_bin;
use pith_tools::defaults::repo_root;

fn embed_in(dir: &std::path::Path, home: Option<&std::path::Path>) -> std::process::Output {
    let mut c = Command::new(pith_bin());
    c.args(["embed", "hello there"]).current_dir(dir);
    c.env_remove("PITH_HOME");
    if let Some(h) = home {
        c.env("PITH_HOME", h);
    }
    c.output().expect("running pith")
}

#[test]
fn outside_a_checkout_pith_names_pith_home() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = embed_in(elsewhere.path(), None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded outside a checkout");
    assert!(
        err.contains("not inside a pith checkout") && err.contains("PITH_HOME"),
        "{err}"
    );
}

#[test]
fn pith_home_that_is_not_a_checkout_is_refused() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = embed_in(elsewhere.path(), Some(elsewhere.path()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is not a pith checkout"), "{err}");
}

#[test]
fn pith_home_serves_a_binary_run_from_anywhere() {
    let elsewhere = tempfile::tempdir().unwrap();
    let root = repo_root().unwrap();
    let there = embed_in(elsewhere.path(), Some(&root));
    let here = embed_in(&root, None);
    assert!(
        there.status.success(),
        "{}",
        String::from_utf8_lossy(&there.stderr)
    );
    // The same default model from either place: the same vector.
    assert_eq!(there.stdout, here.stdout);
    assert!(!there.stdout.is_empty());
}
