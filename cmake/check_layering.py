#!/usr/bin/env python3
"""Checks STYLE.md's layering rule: a corio header includes only its own layer and those below.

Usage: check_layering.py <path to include/corio>

Layers, lowest first: detail < io < core (headers directly in include/corio/) < net < tls < http
< pg < redis (pg.hpp and redis.hpp, their umbrellas, belong to them).
A header's layer is its top directory under include/corio/ (so io/detail/ belongs to io).
version.hpp and config.hpp sit below every layer: anyone may include them. The umbrella
corio.hpp is a core-directory header that may reach up to net. Exits 1 listing each include that
crosses the layering or names a corio header that does not exist.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LAYERS = ["base", "detail", "io", "core", "net", "tls", "http", "pg", "redis"]
# Headers directly in include/corio/ whose layer is not "core".
SPECIAL = {"version.hpp": "base", "config.hpp": "base", "corio.hpp": "net", "pg.hpp": "pg", "redis.hpp": "redis"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def layer_of(header: Path, root: Path) -> str | None:
    parts = header.relative_to(root).parts
    if len(parts) == 1:
        return SPECIAL.get(parts[0], "core")
    return parts[0] if parts[0] in LAYERS else None


def resolve(kind: str, name: str, header: Path, root: Path) -> Path | None:
    """The corio header an include names, or None when it names something else."""
    if kind == '"':
        local = (header.parent / name).resolve()
        if local.is_file():
            return local if local.is_relative_to(root) else None
    if name.startswith("corio/"):
        return (root.parent / name).resolve()
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(sys.argv[1]).resolve()
    headers = sorted(root.rglob("*.hpp"))
    errors = []
    for header in headers:
        where = header.relative_to(root.parent)
        layer = layer_of(header, root)
        if layer is None:
            errors.append(f"{where}: directory is not a known layer ({', '.join(LAYERS[1:])})")
            continue
        for number, line in enumerate(header.read_text(encoding="utf-8").splitlines(), start=1):
            match = INCLUDE.match(line)
            if not match:
                continue
            target = resolve(match[1], match[2], header, root)
            if target is None:
                continue
            include = line.strip()
            if not target.is_file():
                errors.append(f"{where}:{number}: {include} names a header that does not exist")
                continue
            target_layer = layer_of(target, root)
            if target_layer is None:
                continue  # reported for the target itself
            if LAYERS.index(target_layer) > LAYERS.index(layer):
                errors.append(f"{where}:{number}: {include}: the {layer} layer may not include "
                              f"the {target_layer} layer")
    for error in errors:
        print(error)
    if errors:
        print(f"layering: {len(errors)} violation(s) in {len(headers)} headers")
        return 1
    print(f"layering: {len(headers)} headers OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
