#!/bin/sh
# cargo runner for every board (firmware/.cargo/config.toml): the image says how it runs. build.rs
# writes a `pith-runner=...;` marker from the board table into a section that is never loaded:
#   qemu:<machine>     boot it in QEMU (qemu-run.sh): reference boards, and real boards built with
#                      --features qemu
#   probe-rs:<chip>    flash it with probe-rs and show the defmt log (RTT)
set -eu
elf="$1"
shift
runner=$(grep -aoE 'pith-runner=[a-z0-9-]+:[A-Za-z0-9_.-]+;' "$elf" | head -n 1 | sed 's/^pith-runner=//; s/;$//')
case "$runner" in
qemu:*) exec sh "$(dirname "$0")/qemu-run.sh" "$elf" "${runner#qemu:}" "$@" ;;
probe-rs:*)
    command -v probe-rs >/dev/null 2>&1 || {
        echo "run.sh: probe-rs is not installed (https://probe.rs: cargo install probe-rs-tools)" >&2
        exit 127
    }
    exec probe-rs run --chip "${runner#probe-rs:}" "$elf" "$@" ;;
*)
    echo "run.sh: $elf carries no pith-runner marker (not built from firmware/?)" >&2
    exit 2 ;;
esac
