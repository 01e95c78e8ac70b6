#!/usr/bin/env bash
# Whole-daemon throughput: starts a Release tracekeep on loopback, drives it with
# tracekeep-loadgen over OTLP/gRPC, and reports accepted spans/s, the daemon's CPU seconds per
# million spans and its peak memory, with the machine line first.
# Usage: bench/load_bench.sh [loadgen flags, e.g. --duration 20s --spans-per-request 1000]
# Env: BUILD_DIR (default <repo>/build-bench), DECISION_WAIT (default 5s),
#      JOURNAL = on (default) | sync (fsync every batch, group-committed) | off.
#      DECISIONS = on (default) | off: sampler.persist_decisions.
#      ORDERS = on (default) | off: orders.enabled (the order tracker).
#      GRACE_PERIOD: orders.grace_period (default: the configuration's, 30s), e.g. 5s to see
#      what the wait of order traces costs in memory.
#      TRACEKEEP_BIN: another tracekeep binary to measure (an older build, for an A/B run on
#      the same machine); default $BUILD_DIR/bin/tracekeep.
#      SKIP_BUILD=1: do not (re)build tracekeep and tracekeep-loadgen in BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-${ROOT}/build-bench}"
if [ -z "${SKIP_BUILD:-}" ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACEKEEP_BUILD_TESTS=OFF >/dev/null
  ninja -C "$BUILD_DIR" -j2 tracekeep tracekeep-loadgen >/dev/null
fi

work="$(mktemp -d /tmp/tracekeep-load-XXXXXX)"
trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/tk.yaml" <<YAML
data_dir: $work/data
log_level: warn
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}, http: {endpoint: "127.0.0.1:0"}}}}
sampler:
  decision_wait: ${DECISION_WAIT:-5s}
  max_pending_traces: 2000000
  persist_decisions: $([ "${DECISIONS:-on}" = off ] && echo false || echo true)
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 1}}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
orders: {enabled: $([ "${ORDERS:-on}" = off ] && echo false || echo true)${GRACE_PERIOD:+, grace_period: ${GRACE_PERIOD}}}
journal: {enabled: $([ "${JOURNAL:-on}" = off ] && echo false || echo true), sync: $([ "${JOURNAL:-on}" = sync ] && echo true || echo false)}
YAML
${PRELOAD:+env LD_PRELOAD=$PRELOAD} "${TRACEKEEP_BIN:-$BUILD_DIR/bin/tracekeep}" --config "$work/tk.yaml" --write-endpoints "$work/ep.json" \
  >"$work/tk.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/ep.json" ] && break; sleep 0.1; done
grpc="$(sed -n 's/.*"otlp_grpc": "\([^"]*\)".*/\1/p' "$work/ep.json")"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "journal: ${JOURNAL:-on}"
echo "machine: nproc=$(nproc) cpu=\"${cpu}\" kernel=$(uname -r) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
before="$(cpu_ticks)"
"$BUILD_DIR/bin/tracekeep-loadgen" --endpoint "$grpc" --json "$@" >"$work/load.json"
after="$(cpu_ticks)"
hz="$(getconf CLK_TCK)"
# Kept spans written to the store by the end of the load (those decided in its last decision_wait
# are not yet): what the run stored, to compare loads that keep different shares.
telemetry="$(sed -n 's/.*"telemetry": "\([^"]*\)".*/\1/p' "$work/ep.json")"
stored="$(curl -s --max-time 5 "http://$telemetry/metrics" |
  awk '$1 == "tracekeep_storage_spans_stored_total" {printf "%d", $2}')"
python3 - "$work/load.json" "$before" "$after" "$hz" "/proc/$pid/status" "${stored:-0}" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
hwm = next(l.split()[1] for l in open(sys.argv[5]) if l.startswith("VmHWM"))
accepted = load.get("spans_accepted", 0)
print(f"accepted spans/s: {load.get('accepted_spans_per_s', 0):,.0f}")
print(f"spans accepted: {accepted:,}  refused: {load.get('spans_sent', 0) - accepted:,}")
print(f"daemon CPU: {cpu:.2f} s = {cpu / max(accepted, 1) * 1e6:.2f} CPU s per million spans")
print(f"daemon peak RSS: {int(hwm) / 1024:.0f} MiB")
stored = int(sys.argv[6])
print(f"spans stored: {stored:,} ({stored / max(accepted, 1) * 100:.1f} % of accepted)")
PY
