//! Clippy (`-D warnings`) on the firmware of every board the board table says to lint
//! (`pith_tools::device::firmware::lint_boards`): scripts/test.sh runs it, so a new board is linted
//! without a new line there.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut failed = 0;
    for b in pith_tools::device::firmware::lint_boards() {
        match pith_tools::device::firmware::lint(b) {
            Ok(()) => eprintln!("firmware clippy: {} ({}) clean", b.name, b.target),
            Err(e) => {
                eprintln!("{e:#}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
