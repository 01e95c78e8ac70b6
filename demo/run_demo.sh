#!/usr/bin/env bash
# The one-command demo: builds tracekeep, tracekeepctl and tracekeep-demo, starts tracekeep with
# demo/tracekeep.demo.yaml (deadlines of seconds; data in a temporary directory; ports
# 127.0.0.1:4317/4318/4320/9464), plays the shop/CRM/MES services with faults, then asks
# tracekeepctl which orders went wrong and shows one of them.
# Usage: demo/run_demo.sh [tracekeep-demo flags, e.g. --orders 100 --fault-rate 0.5]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
[[ "${SKIP_SETUP:-0}" == 1 ]] || "$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh" tracekeep tracekeepctl tracekeep-demo >/dev/null
BIN="$ROOT/build/bin"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN/tracekeep" --config "$ROOT/demo/tracekeep.demo.yaml" >"$WORK/tracekeep.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  "$BIN/tracekeepctl" status >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== tracekeep-demo: 3 services, faults injected"
"$BIN/tracekeep-demo" --endpoint 127.0.0.1:4317 --orders 30 --time-scale 0.05 --fault-rate 0.5 "$@"
echo
echo "== waiting for deadlines (5 s) and grace periods (2 s)"
sleep 9
echo "== tracekeepctl orders list --anomalous"
"$BIN/tracekeepctl" orders list --anomalous
ORDER="$("$BIN/tracekeepctl" orders list --anomalous --type STALLED | awk 'NR==2 {print $1}')"
if [[ -n "$ORDER" ]]; then
  echo
  echo "== tracekeepctl order get $ORDER"
  "$BIN/tracekeepctl" order get "$ORDER"
  TRACE="$("$BIN/tracekeepctl" order get "$ORDER" | awk '/^Traces/ {getline; print $1}')"
  echo
  echo "== tracekeepctl trace get $TRACE"
  "$BIN/tracekeepctl" trace get "$TRACE"
fi
echo
echo "== metrics"
curl -s 127.0.0.1:9464/metrics | grep -E '^tracekeep_(orders?_|order_anomalies)' | grep -v ' 0$' |
  grep -v _bucket || true
