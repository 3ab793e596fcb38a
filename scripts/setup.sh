#!/usr/bin/env bash
# Installs what pith needs on a fresh Debian machine, idempotently: QEMU for the simulated boards,
# QEMU user mode and a cross linker for the aarch64 kernel tests, the Arm bare-metal C toolchain, the Rust thumb and aarch64
# targets, the Python packages of the reference checks, and the default checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
need=()
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
# aarch64: .cargo/config.toml links with aarch64-linux-gnu-gcc against the arm64 libc and runs the
# binaries in qemu-aarch64 with that libc's loader (-L /usr/aarch64-linux-gnu).
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so ] || need+=(libc6-dev-arm64-cross)
# The C API on bare metal (capi/examples/qemu): Debian's Arm cross compiler, newlib and make.
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/librdimon.a ] || need+=(libnewlib-arm-none-eabi)
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The test runner (on most Rust images already; built from crates.io where not).
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
# Every board's target, read from the board table, and aarch64 for the host kernel tests.
# shellcheck disable=SC2046
rustup target add $(cargo run -q --release -p pith-boards --bin board-targets) \
  aarch64-unknown-linux-gnu >/dev/null
# The reference checks' pinned packages (pip skips what is already installed at that version).
python3 -m pip install --quiet -r tests/reference/requirements.txt
./scripts/fetch-model.sh
./scripts/fetch-chitchat.sh
