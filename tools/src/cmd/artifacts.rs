//! `pith artifacts`: builds the default artifacts (what `pith` would build on first use, all at
//! once): scripts/test.sh runs it before the tests that link them.

use anyhow::Result;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_: Args) -> Result<()> {
    crate::artifacts::build_all()
}
