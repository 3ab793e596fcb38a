#!/bin/sh
# Boots a firmware ELF in QEMU machine MACHINE (run.sh, the cargo runner, reads it from the image).
# Usage: qemu-run.sh ELF MACHINE [QEMU ARGS...]
# The UART is this terminal (Ctrl-C quits QEMU); defmt logs (semihosting stderr) go to <elf>.defmt,
# decode them with `defmt-print -e <elf> < <elf>.defmt` when defmt-print is installed.
# PITH_ICOUNT=1 makes instruction counts exact (-icount shift=0: one instruction = one virtual ns).
set -eu
elf="$1"
board="$2"
shift 2
icount=""
if [ "${PITH_ICOUNT:-0}" = 1 ]; then icount="-icount shift=0"; fi
log="$elf.defmt"
echo "qemu-run.sh: $board; defmt log in $log; Ctrl-C quits" >&2
# defmt frames arrive on QEMU's stderr (semihosting), so stderr goes to the log, not the terminal.
# shellcheck disable=SC2086
qemu-system-arm -machine "$board" -kernel "$elf" $icount \
    -display none -monitor none -serial stdio \
    -semihosting-config enable=on,target=native "$@" 2>"$log" || {
    rc=$?
    echo "qemu-run.sh: qemu exited with $rc (is $board a board of boards/src/lib.rs?); QEMU's own messages are at the end of $log" >&2
    exit $rc
}
