//! Prints the Rust target of every board in the table, each once: scripts/setup.sh installs
//! exactly these, so a new board's target is installed without touching the script.

fn main() {
    let mut seen: Vec<&str> = Vec::new();
    for b in pith_boards::BOARDS {
        if !seen.contains(&b.target) {
            seen.push(b.target);
            println!("{}", b.target);
        }
    }
}
