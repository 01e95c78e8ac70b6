#!/usr/bin/env bash
# Configures and builds tracekeep into build/ (Ninja, ccache). Extra arguments name targets.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
ninja -C "$ROOT/build" "$@"
