//! `pith distill CHECKPOINT --tier s|m -o DIR`: a microcontroller-sized student of a teacher
//! checkpoint, with its bank, model card and training record (the recipe: `crate::distill`).

use anyhow::Result;

/// Arguments: the distiller's options.
pub use crate::distill::Options as Args;

/// Runs the subcommand.
pub fn run(a: Args) -> Result<()> {
    crate::distill::run(a).map(|_| ())
}
