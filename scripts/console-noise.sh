#!/bin/sh
# Hostile input through the default board's UART in QEMU (tests/tests/qemu_hostile.rs) at full
# size: 10,000 seeded hostile lines and 1,000 bad frames, each answered in step, then `info`, with
# the stack's painted peak checked. Seed 0x5eed unless PITH_NOISE_SEED=<seed> or PITH_NOISE_SEED=random; the seed is printed.
#   scripts/console-noise.sh [LINES [FRAMES]]
set -eu
cd "$(dirname "$0")/.."
export PITH_NOISE_LINES="${1:-10000}" PITH_NOISE_FRAMES="${2:-1000}"
exec cargo test --release -p pith-tests --test qemu_hostile -- --test-threads 1 --nocapture
