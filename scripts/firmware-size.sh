#!/bin/sh
# Per board: flash and RAM used by the firmware and instructions per embedding of a 16-token
# sentence (bench under QEMU -icount shift=0). Set PITH_PACKAGE to link a model (without one the
# bench column shows the ERR). Boards may be named: scripts/firmware-size.sh mps3-an547 mps2-an386
# With binutils-arm-none-eabi installed, the ELF sections are listed too.
set -eu
cd "$(dirname "$0")/.."
for t in thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
cargo run -q --release -p pith-tests --bin firmware-report -- "$@"
if command -v arm-none-eabi-size >/dev/null 2>&1; then
    echo
    echo "ELF sections (arm-none-eabi-size -A; .pith_package is the model, .pith_arena scratch):"
    flavour=nopkg
    [ -n "${PITH_PACKAGE:-}" ] && flavour=pkg
    for elf in firmware/target/elf/mps*-"$flavour"*; do
        case "$elf" in *.d | *.defmt) continue ;; esac
        [ -f "$elf" ] || continue
        echo "== $(basename "$elf")"
        arm-none-eabi-size -A "$elf" | grep -E '^\.(vector_table|text|rodata|data|bss|uninit|pith_package|pith_arena) '
    done
fi
