#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a fixed budget with cargo fuzz (libFuzzer,
# nightly toolchain for the fuzz crate only), starting from the committed seeds in fuzz/corpus.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [--merge]   (default 30 s)
# New inputs go to fuzz/corpus-work/ (git-ignored); --merge minimizes them into fuzz/corpus/.
# A crash stops the run and leaves its input in fuzz/artifacts/<target>/: turn it into a
# regression test (tests/tests/fuzz_regressions.rs) before fixing it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
budget=${1:-30}
merge=0
[ "${2:-}" = "--merge" ] && merge=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=(package bank tokenizer console frame checkpoint)
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus-work/$t" "corpus/$t"
  log=$(mktemp)
  cargo +nightly fuzz run -O "$t" "corpus-work/$t" "corpus/$t" -- \
    -max_total_time="$budget" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || {
    tail -40 "$log"; echo "fuzz.sh: $t crashed (input in fuzz/artifacts/$t/)"; exit 1; }
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  echo "$t: $runs executions in ${budget}s, $cov, no crash"
  rm -f "$log"
  if [ "$merge" = 1 ]; then
    cargo +nightly fuzz cmin -O "$t" "corpus/$t" >/dev/null 2>&1 || true
    cargo +nightly fuzz run -O "$t" "corpus/$t" "corpus-work/$t" -- -merge=1 >/dev/null 2>&1
  fi
done
