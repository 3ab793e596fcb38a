#!/usr/bin/env python3
"""Unpacks the members of ZIP under PREFIX into DEST (PREFIX stripped), all or nothing: they go
to DEST.part first, which replaces DEST only once every file is written. Names ending in one of
the --skip suffixes are left out. Used by the fetch scripts.

  python3 scripts/unpack.py ZIP PREFIX DEST [--skip SUFFIX ...]
"""

import argparse
import os
import shutil
import zipfile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zip")
    ap.add_argument("prefix")
    ap.add_argument("dest")
    ap.add_argument("--skip", action="append", default=[])
    a = ap.parse_args()
    part = a.dest + ".part"
    if os.path.exists(part):
        shutil.rmtree(part)
    os.makedirs(part)
    with zipfile.ZipFile(a.zip) as z:
        for name in z.namelist():
            if not name.startswith(a.prefix) or name.endswith("/"):
                continue
            if any(name.endswith(s) for s in a.skip):
                continue
            out = os.path.join(part, name[len(a.prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    if os.path.exists(a.dest):
        shutil.rmtree(a.dest)
    os.rename(part, a.dest)


if __name__ == "__main__":
    main()
