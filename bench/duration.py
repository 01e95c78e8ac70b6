#!/usr/bin/env python3
"""Prints a duration ("300s", "5m", "1m30s", "500ms", "2h", or a number of seconds) in
milliseconds; exits 1 when it is not one. Shared by the benchmark scripts' flag parsing."""
import re
import sys

s = sys.argv[1].strip() if len(sys.argv) == 2 else ""
if re.fullmatch(r"\d+(\.\d+)?", s):
    s += "s"
parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", s)
if not parts or "".join(a + b for a, b in parts) != s:
    sys.exit(1)
print(round(sum(float(a) * {"ms": 1, "s": 1e3, "m": 6e4, "h": 3.6e6}[b] for a, b in parts)))
