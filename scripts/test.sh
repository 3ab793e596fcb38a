#!/usr/bin/env bash
# The test command (README, CI): installs prerequisites, builds the default artifacts, checks
# formatting and lints, runs every test.
#   scripts/test.sh          everything (CI)
#   scripts/test.sh --quick  day to day: lints, host tests, aarch64 kernel tests, the short QEMU
#                            tests (the long bit-exactness runs and other boards are CI's)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac
# Each step's wall time goes to stderr, so CI logs show where the minutes go.
start=$SECONDS
step() { echo "[test.sh] $(( SECONDS - start ))s: $*" >&2; }
./scripts/setup.sh
step "setup done"

cargo fmt --all --check
(cd firmware && cargo fmt --check)
(cd examples && cargo fmt --check)
# One release build serves the CLI, the default artifacts and the tests (deps compile once).
cargo build --release --bin pith
step "pith built"
cargo clippy --release --workspace --all-targets -- -D warnings
step "workspace clippy done"
# Two independent jobs side by side, so that neither leaves a core idle while the other links or
# runs a single-threaded stage: the firmware lints (cargo, thumb targets) in the background, the
# default artifacts (the pith binary) and the no_std/aarch64 builds below in the foreground.
# Lints: the firmware of every board with a HAL and of each reference board with a CPU no HAL
# board shares (the board table decides: tools/src/device/firmware.rs, lint_boards), and the
# examples of pith in someone else's firmware (cortex-m-rt, embassy; their own workspace).
lint_log=target/lint-firmware.log
mkdir -p target
( cargo run --release -p pith-tests --bin lint-firmware &&
  cd examples && cargo clippy --release -- -D warnings ) >"$lint_log" 2>&1 &
lint_pid=$!
./target/release/pith artifacts
step "artifacts built"

# The runtime and the console must stay no_std: the C library (capi/, which links both) builds
# for every Cortex-M profile a C firmware uses.
for t in thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf; do
  cargo build --release -p pith-c --target "$t"
done
# ... and with the defmt feature the firmware uses to log why a package or bank was refused.
cargo check --release -p pith-runtime --features defmt --target thumbv7em-none-eabihf
# aarch64 host kernels (SDOT, plain NEON): lints for that target. Their property suites and the
# end-to-end comparison with x86-64 run under qemu-aarch64 in tests/tests/aarch64_qemu.rs (only
# the runtime is cross-built, into target/cross).
cargo clippy --release -p pith-runtime --features std --target aarch64-unknown-linux-gnu \
  --target-dir target/cross --all-targets -- -D warnings
step "aarch64 lints done"
if ! wait "$lint_pid"; then
  cat "$lint_log"
  echo "test.sh: firmware or examples lint failed (log above)" >&2
  exit 1
fi
grep -E "^firmware clippy:|^(warning|error)" "$lint_log" || true
step "firmware and examples lints done"
# cargo-nextest runs each test in its own process and the tests of all binaries side by side
# (.config/nextest.toml starts the long simulator runs first).
# The binary the tests drive is the one built above (no cargo call per test process).
export PITH_BIN=$PWD/target/release/pith
if [ "$quick" = 1 ]; then
  # Host tests and the short simulator tests; the other boards and the long bit-exactness runs
  # (the default board's 50-turn chat among them) are CI's.
  cargo nextest run --release --workspace -E 'not (test(every_board_boots) | test(cortex_m4) |
    test(cortex_m55) | test(device_ask_answers) | test(m0plus_class) | test(tier_m_student_fits) |
    test(aarch64_kernels_under_qemu) | test(every_real_board_image_fits) |
    test(device_answers_every_hostile_line) | test(default_board_chat_equals_host_chat))'
else
  cargo nextest run --release --workspace
fi
# nextest runs no doctests; rustdoc does. The runtime is a library others adopt: its docs build
# without a warning (every public item documented, every link resolved).
cargo test --release --workspace --doc
RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps -p pith-runtime -p pith-console
step "tests done"
