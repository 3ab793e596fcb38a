#!/usr/bin/env bash
# The test command (README, CI): installs prerequisites, builds the default model, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

# One release build serves the CLI, the default artifacts and the tests (deps compile once).
cargo build --release --bin pith
# Builds models/minilm-l6.pith and its ONNX exports on first use.
./target/release/pith embed "warming up the default model" >/dev/null
# The 12k-vocabulary package for the 16 MiB mps2 boards (firmware tests link it).
[ -f models/minilm-l6-12k.pith ] ||
  ./target/release/pith quantize models/cache/all-MiniLM-L6-v2 -o models/minilm-l6-12k.pith \
    --vocab-size 12000 --eval-count 100 --name "all-MiniLM-L6-v2 int8 12k-vocab" \
    --vocab-corpus data/calib/snli-dev-sentences.txt --vocab-corpus data/faq/stackfaq-bank.jsonl
# Tier S, the static model for 512 KB parts (an M0+-class firmware test links it).
[ -f models/tier-s.pith ] || ./target/release/pith quantize models/tier-s -o models/tier-s.pith
# The StackFAQ bank embedded by each package (the firmware links the one of its package).
for pkg in models/minilm-l6 models/minilm-l6-12k; do
  [ -f $pkg.pithkb ] ||
    ./target/release/pith kb build data/faq/stackfaq-bank.jsonl --model $pkg.pith -o $pkg.pithkb \
      --calibrate data/faq/stackfaq-dev-queries.tsv
done

cargo test --release --workspace
# The runtime must stay no_std: check it for a Cortex-M target.
cargo check --release -p pith-runtime --target thumbv7em-none-eabihf
if [ -x firmware/test.sh ]; then firmware/test.sh; fi
