//! `pith artifacts`: builds the default artifacts (what `pith` would build on first use, all at
//! once): scripts/test.sh runs it before the tests that link them. An artifact that is there but
//! does not load (truncated, damaged, or a reasoner built over an older encoder) is rebuilt.

use std::path::PathBuf;

use anyhow::Result;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Build only these (paths relative to the repository root, e.g. models/tier-s.pith or
    /// models/tier-m.pithkb); default: every default artifact.
    pub only: Vec<PathBuf>,
}

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    if a.only.is_empty() {
        crate::artifacts::build_all()
    } else {
        crate::artifacts::build_some(&a.only)
    }
}
