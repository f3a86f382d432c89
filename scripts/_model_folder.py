"""Shared by scripts/make_*_model.py: build a model folder once, atomically, and say so.

A folder is complete when its marker file names the current recipe version (and any
required file exists). It is built in a temporary folder next to the target and swapped
in, so a concurrent reader never sees half a model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def is_complete(out: Path, marker: str, recipe_version: int, required: Sequence[str] = ()) -> bool:
    try:
        data = json.loads((out / marker).read_text())
    except (OSError, ValueError):
        return False
    return data.get("recipe_version") == recipe_version and all((out / name).exists() for name in required)


def build_atomically(
    out: Path, write: Callable[[Path], Any], complete: Callable[[Path], bool], *, force: bool = False
) -> Path:
    """Run ``write(tmp)`` and move ``tmp`` to ``out`` unless ``out`` is already complete."""
    out = out.resolve()
    if complete(out) and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(
    name: str,
    doc: str,
    default_out: Path,
    make: Callable[..., Path],
    complete: Callable[[Path], bool],
    argv: list[str] | None = None,
    note: str = "",
) -> int:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out, help=f"output folder (default {default_out})")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete folder exists")
    args = parser.parse_args(argv)
    start = time.monotonic()
    existed = complete(args.out.resolve()) and not args.force
    out = make(args.out, force=args.force)
    verb = "already there" if existed else "made"
    print(f"{name}: {out} {verb} ({time.monotonic() - start:.1f} s){note}")
    return 0
