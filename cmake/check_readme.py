#!/usr/bin/env python3
"""Fails when README.md's example drifts from the compiled example it shows.

Usage: check_readme.py README.md examples/hello.cpp
The README's first ```cpp block must be the example file, byte for byte.
"""
import re
import sys


def main() -> int:
    readme_path, example_path = sys.argv[1], sys.argv[2]
    readme = open(readme_path, encoding="utf-8").read()
    example = open(example_path, encoding="utf-8").read()
    match = re.search(r"```cpp\n(.*?)```", readme, re.S)
    if match is None:
        print(f"{readme_path}: no ```cpp block found")
        return 1
    if match.group(1) != example:
        print(f"{readme_path}: its first ```cpp block differs from {example_path}; "
              f"copy the example into the README (or the README's block into the example)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
