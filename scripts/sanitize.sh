#!/usr/bin/env bash
# Builds unit tests with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs
# them. Usage: scripts/sanitize.sh [TEST...]   (default: the tests of the security-sensitive
# parsers and the access control: security, redaction, receiver, admin, config, pipeline).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TESTS=("$@")
[ "${#TESTS[@]}" -gt 0 ] || TESTS=(security_test redaction_test receiver_test admin_test config_test
  pipeline_test)
OUT="$ROOT/build-asan"
cmake -S "$ROOT" -B "$OUT" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRACEKEEP_SANITIZE=ON \
  -DTRACEKEEP_BUILD_BENCH=OFF >/dev/null
ninja -C "$OUT" "${TESTS[@]}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for t in "${TESTS[@]}"; do
  echo "[sanitize] $t"
  "$OUT/tests/$t" --gtest_brief=1
done
