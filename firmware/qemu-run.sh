#!/bin/sh
# cargo runner: boots a firmware ELF in QEMU. The ELF's file name is the QEMU machine name.
# The UART is this terminal (Ctrl-C quits QEMU); defmt logs (semihosting stderr) go to <elf>.defmt,
# decode them with `defmt-print -e <elf> < <elf>.defmt` when defmt-print is installed.
# PITH_ICOUNT=1 makes instruction counts exact (-icount shift=0: one instruction = one virtual ns).
set -eu
elf="$1"
shift
board=$(basename "$elf")
case "$board" in
mps2-an385 | mps2-an386 | mps2-an500 | mps2-an505 | mps3-an547) ;;
*)
    echo "qemu-run.sh: $board is not a board binary (mps2-an385/386/500/505, mps3-an547)" >&2
    exit 2
    ;;
esac
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
    echo "qemu-run.sh: qemu exited with $rc; QEMU's own messages are at the end of $log" >&2
    exit $rc
}
