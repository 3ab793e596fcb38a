//! pith in an embassy task: the executor spawns a task that embeds every sentence and prints its
//! digest over defmt (semihosting in QEMU), as a task of a larger async firmware would. The
//! runtime never blocks on anything but the CPU, so the task simply runs to its end; in a busy
//! system, embed between awaits.
#![no_std]
#![no_main]

use defmt_semihosting as _;
use embassy_executor::Spawner;
use pith_examples::{embed_all, finish, ARENA_WORDS};

#[embassy_executor::task]
async fn embed_task(arena: &'static mut [i32; ARENA_WORDS]) {
    finish(embed_all(arena))
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let arena = cortex_m::singleton!(: [i32; ARENA_WORDS] = [0; ARENA_WORDS]).expect("taken once");
    spawner.spawn(embed_task(arena).expect("one task"));
}
