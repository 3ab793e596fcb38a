#!/usr/bin/env bash
# Fetches the BYU Chit-Chat Challenge conversations (PyPI chitchat-dataset 0.9.0, MIT) and writes the
# fixed split data/chitchat/{train,dev,test-seen,test-unseen}.jsonl (see data/chitchat/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/chitchat
if [ -f "$dest/test-unseen.jsonl" ] && [ "${1:-}" != "--force" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" chitchat-dataset==0.9.0
# The wheel's sha256 as first fetched (2026-12): a changed wheel is refused, not split.
want=7bf89f36645e2d5ec87d53370c8e851b5a688479c7beb7079cb4c87fc5acea3e
got=$(sha256sum "$tmp"/*.whl | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "fetch-chitchat.sh: chitchat-dataset wheel has sha256 $got, expected $want" >&2
  exit 1
fi
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("chitchat_dataset/dataset.json", sys.argv[2])' "$tmp"/*.whl "$tmp"
python3 "$dest/split.py" "$tmp/chitchat_dataset/dataset.json" "$dest"
