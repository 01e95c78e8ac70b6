#!/usr/bin/env bash
# The one-command demo: builds tracekeep, tracekeepctl and tracekeep-demo, starts tracekeep with
# demo/tracekeep.demo.yaml (deadlines of seconds; data in a temporary directory; ports
# 127.0.0.1:4317/4318/4320/9464), plays the shop/CRM/MES services with faults, waits until
# tracekeep reports every injected fault and has kept every trace of those orders, then asks
# tracekeepctl which orders went wrong and shows one of them.
# Usage: demo/run_demo.sh [tracekeep-demo flags, e.g. --orders 100 --fault-rate 0.5]
# Env: SKIP_SETUP=1 (do not run scripts/setup.sh), DEMO_WAIT_S (bound of the wait, default 120).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
[[ "${SKIP_SETUP:-0}" == 1 ]] || "$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh" tracekeep tracekeepctl tracekeep-demo >/dev/null
BIN="$ROOT/build/bin"
WAIT_S="${DEMO_WAIT_S:-120}"
WORK="$(mktemp -d)"
PID=""
trap '[[ -n "$PID" ]] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN/tracekeep" --config "$ROOT/demo/tracekeep.demo.yaml" >"$WORK/tracekeep.log" 2>&1 &
PID=$!

fail() {
  echo "run_demo.sh: $*" >&2
  echo "--- last lines of the tracekeep log ---" >&2
  tail -n 20 "$WORK/tracekeep.log" >&2 || true
  exit 1
}

# tracekeep answers on its admin port (bounded: 30 s).
for ((i = 0; ; i++)); do
  kill -0 "$PID" 2>/dev/null || fail "tracekeep exited at start (are 127.0.0.1:4317/4318/4320/9464 free?)"
  "$BIN/tracekeepctl" status >/dev/null 2>&1 && break
  ((i < 300)) || fail "tracekeep did not answer on 127.0.0.1:4320 within 30 s"
  sleep 0.1
done

echo "== tracekeep-demo: 3 services, faults injected"
"$BIN/tracekeep-demo" --endpoint 127.0.0.1:4317 --orders 30 --time-scale 0.05 --fault-rate 0.5 "$@" |
  tee "$WORK/demo.out"
echo
echo "== waiting until tracekeep reports every injected fault and keeps its order's traces" \
  "(deadlines 5 s, grace periods 2 s; at most ${WAIT_S} s)"
# What tracekeep-demo injected (its table, or its --json) against `tracekeepctl --json orders
# list --anomalous`, every 0.5 s: each faulty order must be listed with the expected anomaly and
# with all its traces kept.
python3 - "$WORK/demo.out" "$BIN/tracekeepctl" "$WAIT_S" <<'PY' || fail "tracekeep's findings are incomplete after ${WAIT_S} s (DEMO_WAIT_S sets the bound)"
import json, subprocess, sys, time

demo_out, ctl, wait_s = sys.argv[1], sys.argv[2], float(sys.argv[3])

expected = {}  # order id -> (anomaly type, traces the demo sent)
text = open(demo_out).read()
if text.lstrip().startswith("{"):
    for o in json.loads(text)["orders"]:
        if o["expected_anomaly"]:
            expected[o["order_id"]] = (o["expected_anomaly"], len(o["traces"]))
else:  # ORDER FAULT AT-STATE EXPECTED TRACES
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) != 5 or not f[4].isdigit():
            continue
        if f[3] != "healthy":
            expected[f[0]] = (f[3], int(f[4]))


def missing():
    """What tracekeep has not reported or kept yet, one string per order."""
    r = subprocess.run([ctl, "--json", "orders", "list", "--anomalous", "--limit", "100000"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return [f"tracekeepctl failed ({r.returncode}): {r.stderr.strip()}"]
    listed = {o["order_id"]: o for o in json.loads(r.stdout).get("orders", [])}
    out = []
    for order_id, (anomaly, traces) in sorted(expected.items()):
        o = listed.get(order_id)
        if o is None:
            out.append(f"{order_id}: {anomaly} not reported yet")
            continue
        types = {a.get("type") for a in o.get("anomalies", [])}
        kept, linked = len(o.get("kept_trace_ids", [])), len(o.get("trace_ids", []))
        if anomaly not in types:
            out.append(f"{order_id}: {anomaly} not reported yet (has {','.join(sorted(types))})")
        elif kept < max(traces, linked):
            out.append(f"{order_id}: {anomaly}, {kept}/{max(traces, linked)} traces kept so far")
    return out


deadline = time.monotonic() + wait_s
last = None
while True:
    todo = missing()
    if not todo:
        print(f"all {len(expected)} faulty orders reported, every trace of them kept")
        break
    summary = f"{len(expected) - len(todo)}/{len(expected)} faulty orders reported with every trace kept"
    if summary != last:
        print("  " + summary, flush=True)
        last = summary
    if time.monotonic() > deadline:
        print(f"tracekeep did not report every injected fault within {wait_s:.0f} s; missing:",
              file=sys.stderr)
        for m in todo:
            print("  " + m, file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
PY
echo
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
