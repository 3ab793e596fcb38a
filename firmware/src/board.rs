//! The board this image is for: its entry in the board table (`pith-boards`), picked by build.rs
//! from the one board feature enabled, and the arena size (the board's, or `PITH_ARENA_BYTES`).

include!(concat!(env!("OUT_DIR"), "/board.rs"));
