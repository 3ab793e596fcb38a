#!/usr/bin/env bash
# Installs what pith needs on a fresh Debian machine, idempotently: QEMU for the simulated boards,
# the Rust thumb targets, the Python packages of the reference checks, and the default checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
if ! command -v qemu-system-arm >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-system-arm >/dev/null
fi
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf >/dev/null
# The reference checks' pinned packages (pip skips what is already installed at that version).
python3 -m pip install --quiet -r tests/reference/requirements.txt
./scripts/fetch-model.sh
