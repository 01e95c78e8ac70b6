#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) into build-fuzz/ and runs
# each for SECONDS (default 60) over its seed corpus. New inputs found go to build-fuzz/corpus/
# (the repository's seeds are not modified); a crash stops with the input written to
# build-fuzz/crashes/<target>/ — copy it into tests/fuzz/regressions/<target>/ with the fix.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS=0 only replays the seeds and regressions once (what ctest's fuzz_regressions does).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(otlp_wire_fuzz otlp_json_fuzz gunzip_fuzz config_fuzz
  journal_record_fuzz span_codec_fuzz redaction_fuzz token_file_fuzz)
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found: run scripts/setup.sh" >&2; exit 2; }

OUT="$ROOT/build-fuzz"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$OUT" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTRACEKEEP_FUZZ=ON -DTRACEKEEP_BUILD_TESTS=OFF -DTRACEKEEP_BUILD_BENCH=OFF >/dev/null
ninja -C "$OUT" "${TARGETS[@]}"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for t in "${TARGETS[@]}"; do
  seeds="$ROOT/tests/fuzz/corpus/$t"
  regressions="$ROOT/tests/fuzz/regressions/$t"
  mkdir -p "$OUT/corpus/$t" "$OUT/crashes/$t"
  dirs=("$OUT/corpus/$t" "$seeds")
  [ -d "$regressions" ] && dirs+=("$regressions")
  if [ "$SECONDS_EACH" = "0" ]; then
    echo "[fuzz] $t: replaying seeds and regressions"
    "$OUT/fuzz/$t" -runs=0 "$seeds" ${regressions:+$( [ -d "$regressions" ] && echo "$regressions")}
  else
    echo "[fuzz] $t: ${SECONDS_EACH}s"
    "$OUT/fuzz/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$OUT/crashes/$t/" -print_final_stats=1 "${dirs[@]}"
  fi
done
