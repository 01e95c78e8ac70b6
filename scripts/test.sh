#!/usr/bin/env bash
# Installs what is needed (test peers included), builds everything, and runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh" --peers
"$ROOT/scripts/build.sh"
cd "$ROOT/build"
ctest --output-on-failure -j2 "$@"
