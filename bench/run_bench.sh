#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs decode_bench, printing the machine first.
# Usage: bench/run_bench.sh [extra decode_bench flags, e.g. --benchmark_filter=Parse]
# Env: BUILD_DIR (default: <repo>/build-bench), JOBS (default: 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-${ROOT}/build-bench}"
JOBS="${JOBS:-2}"

cmake -S "${ROOT}" -B "${BUILD_DIR}" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "${BUILD_DIR}" -j"${JOBS}" decode_bench buffer_bench tracekeep-loadgen >/dev/null

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "machine: nproc=$(nproc) cpu=\"${cpu}\" kernel=$(uname -r) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
exec "${BUILD_DIR}/bin/decode_bench" --benchmark_min_time=0.2 "$@"
