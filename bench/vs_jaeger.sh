#!/usr/bin/env bash
# tracekeep side by side with Jaeger v2's tail sampling (the OpenTelemetry Collector's
# tail_sampling processor, which Jaeger v2 contains): the same tracekeep-loadgen load, in the same
# run, on this machine, over loopback. Each daemon gets a fresh process per phase:
#   sustained: --duration at --rate (tracekeep, then Jaeger), then
#   burst:     --burst unpaced, as fast as each answers (tracekeep, then Jaeger).
# Reports accepted spans/s, refused share, daemon CPU seconds per million accepted spans, peak
# and sampled RSS (1 s samples), an estimate of memory per pending span and each daemon's own
# gauges; the machine line comes first. See bench/README.md ("tracekeep vs Jaeger").
#
# Usage: bench/vs_jaeger.sh [--duration 300s] [--rate 0] [--order-share 1.0] [--burst 20s]
#                           [--decision-wait 5s] [--only tracekeep|jaeger] [-- loadgen flags]
#   --duration D       sustained phase length (default 300s)
#   --rate R           offered spans/s of the sustained phase; 0 = as fast as the daemon answers
#                      (the loadgen's closed loop, --concurrency requests in flight) (default 0)
#   --order-share S    loadgen --order-share: traces recording a step of an order (default 1.0)
#   --burst D          unpaced burst phase length; 0 = no burst (default 20s)
#   --decision-wait D  sampler.decision_wait / tail_sampling decision_wait (default 5s)
#   --only T           run only tracekeep or only jaeger
#   -- FLAGS           passed on to tracekeep-loadgen (e.g. -- --concurrency 8 --trace-spread 4)
# Env: BUILD_DIR (default <repo>/build-bench), JAEGER_BIN (default <repo>/.deps/gobin/jaeger),
#      SKIP_BUILD=1: do not (re)build tracekeep and tracekeep-loadgen in BUILD_DIR;
#      KEEP_WORK=1: keep the temporary directory (configs, logs, loadgen JSON, RSS samples).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-${ROOT}/build-bench}"
JAEGER_BIN="${JAEGER_BIN:-${ROOT}/.deps/gobin/jaeger}"

die() {
  echo "vs_jaeger.sh: $*" >&2
  exit 1
}
note() { echo "# $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

duration=300s rate=0 order_share=1.0 burst=20s decision_wait=5s only=""
loadgen_extra=()
set_opt() {
  case "$1" in
    --duration) duration="$2" ;;
    --rate) rate="$2" ;;
    --order-share) order_share="$2" ;;
    --burst) burst="$2" ;;
    --decision-wait) decision_wait="$2" ;;
    --only) only="$2" ;;
  esac
}
while (($#)); do
  case "$1" in
    --duration | --rate | --order-share | --burst | --decision-wait | --only)
      (($# >= 2)) || die "$1 needs a value"
      set_opt "$1" "$2"
      shift 2
      ;;
    --duration=* | --rate=* | --order-share=* | --burst=* | --decision-wait=* | --only=*)
      set_opt "${1%%=*}" "${1#*=}"
      shift
      ;;
    --)
      shift
      loadgen_extra=("$@")
      break
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown flag '$1' (tracekeep-loadgen flags go after --; see --help)" ;;
  esac
done
for f in "${loadgen_extra[@]+"${loadgen_extra[@]}"}"; do
  case "$f" in
    --endpoint* | --json* | --duration* | --rate* | --order-share*)
      die "'$f' after --: the script sets it (use its own flag)" ;;
  esac
done
duration_ms="$(to_ms "$duration")" && ((duration_ms > 0)) ||
  die "--duration must be a positive duration like 300s or 5m, got '$duration'"
burst_ms="$(to_ms "$burst")" || die "--burst must be a duration like 20s (0 = none), got '$burst'"
wait_ms="$(to_ms "$decision_wait")" && ((wait_ms > 0)) ||
  die "--decision-wait must be a positive duration like 5s, got '$decision_wait'"
[[ "$rate" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--rate must be a number of spans/s >= 0, got '$rate'"
[[ "$order_share" =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] ||
  die "--order-share must be a number from 0 to 1, got '$order_share'"
case "$only" in
  "") targets=(tracekeep jaeger) ;;
  tracekeep | jaeger) targets=("$only") ;;
  *) die "--only must be tracekeep or jaeger, got '$only'" ;;
esac

# ---- binaries ---------------------------------------------------------------------------------
build_release_binaries
if [[ " ${targets[*]} " == *" jaeger "* && ! -x "$JAEGER_BIN" ]]; then
  die "Jaeger v2 not found at $JAEGER_BIN: run scripts/setup.sh --peers (or --only tracekeep)"
fi
for tool in curl python3 awk; do command -v "$tool" >/dev/null || die "$tool is needed"; done

# ---- work directory, processes, cleanup --------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/tracekeep-vs-jaeger-XXXXXX")"
daemon_pid="" sampler_pid=""
stop_pid() {  # pid, seconds to wait after SIGTERM before SIGKILL
  local pid="$1" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$sampler_pid" 1
  stop_pid "$daemon_pid" 5
  if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "# work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
tcp_open() { timeout 1 bash -c "exec 3<>/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null; }
log_tail() { tail -n 30 "$1" 2>/dev/null | sed 's/^/    /' >&2 || true; }

# The sum of every series of metric $2 in the Prometheus text of URL $1 ("nan" if absent).
metric_sum() {
  curl -s --max-time 2 "$1" 2>/dev/null |
    awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF; n++ } END { print n ? s : "nan" }'
}

hz="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# ---- the daemons ------------------------------------------------------------------------------
# Each start_* sets daemon_pid, otlp (host:port), metrics_url and pending_metric (a gauge of
# pending data: spans for tracekeep, traces for Jaeger).
start_tracekeep() {
  local dir="$1" i
  cat >"$dir/tracekeep.yaml" <<YAML
# As bench/load_bench.sh: journal and store on, orders on, errors + 1 % (when_full: evict, the
# default), every listener on a free loopback port.
data_dir: $dir/data
log_level: warn
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}, http: {endpoint: "127.0.0.1:0"}}}}
sampler:
  decision_wait: ${wait_ms}ms
  max_pending_traces: 2000000
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 1}}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
jaeger_remote_storage: {endpoint: "127.0.0.1:0"}
orders: {enabled: true}
journal: {enabled: true, sync: false}
YAML
  "$TRACEKEEP" --config "$dir/tracekeep.yaml" --write-endpoints "$dir/endpoints.json" \
    >"$dir/daemon.log" 2>&1 &
  daemon_pid=$!
  local telemetry=""
  for ((i = 0; i < 600; i++)); do  # up to 60 s
    kill -0 "$daemon_pid" 2>/dev/null || { log_tail "$dir/daemon.log"; die "tracekeep exited at start"; }
    if [[ -s "$dir/endpoints.json" ]]; then
      telemetry="$(sed -n 's/.*"telemetry": *"\([^"]*\)".*/\1/p' "$dir/endpoints.json")"
      [[ -n "$telemetry" ]] && curl -sf --max-time 1 "http://$telemetry/readyz" >/dev/null && break
    fi
    sleep 0.1
  done
  ((i < 600)) || { log_tail "$dir/daemon.log"; die "tracekeep not ready within 60 s"; }
  otlp="$(sed -n 's/.*"otlp_grpc": *"\([^"]*\)".*/\1/p' "$dir/endpoints.json")"
  metrics_url="http://$telemetry/metrics"
  pending_metric=tracekeep_sampler_spans_pending
}

start_jaeger() {
  local dir="$1" i
  local grpc_port query_http query_grpc metrics_port
  grpc_port="$(free_port)" query_http="$(free_port)" query_grpc="$(free_port)"
  metrics_port="$(free_port)"
  cat >"$dir/jaeger.yaml" <<YAML
# Jaeger v2 with the tail_sampling processor (cmd/jaeger/config-tail-sampling-always-sample.yaml
# of Jaeger, with tracekeep's policies): OTLP/gRPC in, tail sampling, in-memory storage. The
# decision caches have tracekeep's default sizes; without them the processor keeps every decided
# trace id in memory until num_traces evicts it.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource: {service.name: jaeger}
    logs: {level: warn}
    metrics:
      level: normal
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: $metrics_port}}}
    traces: {level: none}
extensions:
  jaeger_query:
    storage: {traces: memstore}
    http: {endpoint: "127.0.0.1:$query_http"}
    grpc: {endpoint: "127.0.0.1:$query_grpc"}
  jaeger_storage:
    backends:
      memstore: {memory: {max_traces: 100000}}
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:$grpc_port"}
processors:
  tail_sampling:
    decision_wait: ${wait_ms}ms
    num_traces: 2000000
    decision_cache: {sampled_cache_size: 100000, non_sampled_cache_size: 100000}
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
      - {name: baseline, type: probabilistic, probabilistic: {sampling_percentage: 1}}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
  (cd "$dir" && exec "$JAEGER_BIN" --config "$dir/jaeger.yaml") >"$dir/daemon.log" 2>&1 &
  daemon_pid=$!
  otlp="127.0.0.1:$grpc_port"
  metrics_url="http://127.0.0.1:$metrics_port/metrics"
  pending_metric=otelcol_processor_tail_sampling_sampling_traces_on_memory
  # Receivers start last: once OTLP accepts connections, the whole pipeline runs.
  for ((i = 0; i < 600; i++)); do  # up to 60 s
    kill -0 "$daemon_pid" 2>/dev/null || { log_tail "$dir/daemon.log"; die "jaeger exited at start"; }
    tcp_open "$otlp" && curl -sf --max-time 1 "$metrics_url" >/dev/null && break
    sleep 0.1
  done
  ((i < 600)) || { log_tail "$dir/daemon.log"; die "jaeger's OTLP receiver not up within 60 s"; }
}

# Dies with the daemon's exit status and log if it is gone.
check_alive() {
  kill -0 "$daemon_pid" 2>/dev/null && return 0
  local st=0
  wait "$daemon_pid" 2>/dev/null || st=$?
  daemon_pid=""
  log_tail "$2/daemon.log"
  if ((st > 128)); then
    die "$1 died during the run: killed by signal $((st - 128)) ($(kill -l $((st - 128)) 2>/dev/null))"
  fi
  die "$1 exited during the run with status $st"
}

# RSS and the pending gauge about every second: "unix_time rss_kib pending" lines.
sample_loop() {
  local pid="$1" out="$2" deadline=$((SECONDS + $3)) rss
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    rss="$(status_kib "$pid" VmRSS 2>/dev/null)" || break
    echo "$(date +%s.%N) $rss $(metric_sum "$metrics_url" "$pending_metric")" >>"$out"
    sleep 1
  done
}

# One phase against one daemon, in a fresh process; leaves its figures in $dir/run.env and the
# loadgen summary in $dir/load.json.
run_one() {
  local target="$1" phase="$2" len_ms="$3" run_rate="$4"
  local dir="$work/$target-$phase" i
  mkdir -p "$dir"
  note "$phase: $target (${len_ms} ms at rate ${run_rate})"
  "start_$target" "$dir"
  sleep 1  # let start-up allocations settle before the idle RSS
  local idle_kib cpu0 cpu1 t0 t1 t2 rc=0
  idle_kib="$(status_kib "$daemon_pid" VmRSS)"
  sample_loop "$daemon_pid" "$dir/rss.txt" $((len_ms / 1000 + wait_ms / 1000 + 120)) &
  sampler_pid=$!
  cpu0="$(cpu_ticks "$daemon_pid")"
  t0="$(date +%s.%N)"
  "$LOADGEN" --endpoint "$otlp" --json --duration "${len_ms}ms" --rate "$run_rate" \
    --order-share "$order_share" "${loadgen_extra[@]+"${loadgen_extra[@]}"}" \
    >"$dir/load.json" 2>"$dir/load.err" || rc=$?
  t1="$(date +%s.%N)"
  if ((rc != 0)) || [[ ! -s "$dir/load.json" ]]; then
    log_tail "$dir/load.err"
    check_alive "$target" "$dir"
    die "tracekeep-loadgen failed against $target (exit $rc)"
  fi
  curl -s --max-time 5 "$metrics_url" >"$dir/metrics_load_end.txt" || true
  local end_kib
  end_kib="$(status_kib "$daemon_pid" VmRSS)"
  # The last decisions: wait until nothing is pending (bounded); the CPU they cost is counted.
  local pending drained=0 bound=$(((wait_ms + 60000) / 100))
  for ((i = 0; i < bound; i++)); do
    check_alive "$target" "$dir"
    pending="$(metric_sum "$metrics_url" "$pending_metric")"
    if [[ "$pending" == 0 ]]; then
      drained=1
      break
    fi
    sleep 0.1
  done
  t2="$(date +%s.%N)"
  cpu1="$(cpu_ticks "$daemon_pid")"
  local hwm_kib
  hwm_kib="$(status_kib "$daemon_pid" VmHWM)"
  curl -s --max-time 5 "$metrics_url" >"$dir/metrics_final.txt" || true
  stop_pid "$sampler_pid" 1
  sampler_pid=""
  stop_pid "$daemon_pid" 30
  daemon_pid=""
  cat >"$dir/run.env" <<ENV
target=$target
phase=$phase
rate=$run_rate
t0=$t0
t1=$t1
t2=$t2
drained=$drained
cpu_s=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')
idle_kib=$idle_kib
end_kib=$end_kib
hwm_kib=$hwm_kib
ENV
}

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "machine: nproc=$(nproc) cpu=\"${cpu}\" kernel=$(uname -r) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "load: tracekeep-loadgen --rate $rate --order-share $order_share${loadgen_extra[*]:+ ${loadgen_extra[*]}}; sustained $duration, burst $burst (unpaced), decision_wait $decision_wait"

runs=()
for t in "${targets[@]}"; do
  run_one "$t" sustained "$duration_ms" "$rate"
  runs+=("$work/$t-sustained")
done
if ((burst_ms > 0)); then
  for t in "${targets[@]}"; do
    run_one "$t" burst "$burst_ms" 0
    runs+=("$work/$t-burst")
  done
fi
echo "load at end: \"$(cut -d' ' -f1-3 /proc/loadavg)\""

python3 - "$wait_ms" "${runs[@]}" <<'PY'
import json, math, os, sys

wait_s = int(sys.argv[1]) / 1000


def env(path):
    out = {}
    for line in open(path):
        k, _, v = line.strip().partition("=")
        out[k] = v
    return out


def metrics(path):
    """Sum of every series of each metric name in a Prometheus text file."""
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        if not line or line[0] == "#":
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        name = parts[0].split("{")[0]
        try:
            out[name] = out.get(name, 0.0) + float(parts[-1])
        except ValueError:
            pass
    return out


def labelled(path, name, label):
    """{label value: value} of metric `name`."""
    out = {}
    if not os.path.exists(path):
        return out
    for line in open(path):
        if line.startswith(name + "{") and f'{label}="' in line:
            value = line.split(f'{label}="', 1)[1].split('"', 1)[0]
            out[value] = out.get(value, 0.0) + float(line.split()[-1])
    return out


runs = []
for d in sys.argv[2:]:
    r = env(os.path.join(d, "run.env"))
    r["load"] = json.load(open(os.path.join(d, "load.json")))
    r["end"] = metrics(os.path.join(d, "metrics_load_end.txt"))
    r["final"] = metrics(os.path.join(d, "metrics_final.txt"))
    r["final_path"] = os.path.join(d, "metrics_final.txt")
    samples = []
    if os.path.exists(os.path.join(d, "rss.txt")):
        for line in open(os.path.join(d, "rss.txt")):
            p = line.split()
            if len(p) == 3:
                pending = float(p[2]) if p[2] != "nan" else math.nan
                samples.append((float(p[0]), int(p[1]) / 1024, pending))
    r["samples"] = samples
    runs.append(r)


def mib(kib):
    return int(kib) / 1024


def rss_at(samples, t):
    """The RSS sample nearest to unix time t (None if no sample within 2 s)."""
    best = min(samples, key=lambda s: abs(s[0] - t), default=None)
    return best[1] if best and abs(best[0] - t) <= 2 else None


def slope(samples, t_from, t_to):
    """Least-squares slope of RSS in MiB/min over [t_from, t_to]."""
    pts = [(s[0], s[1]) for s in samples if t_from <= s[0] <= t_to]
    if len(pts) < 3:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    var = sum((p[0] - mx) ** 2 for p in pts)
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


def fmt(v, spec, none="-"):
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


rows = []
for r in runs:
    load = r["load"]
    t0, t1, t2 = float(r["t0"]), float(r["t1"]), float(r["t2"])
    sent, accepted = load.get("spans_sent", 0), load.get("spans_accepted", 0)
    per_trace = load.get("spans_per_trace", 10)
    rate = load.get("accepted_spans_per_s", 0.0)
    idle, hwm = mib(r["idle_kib"]), mib(r["hwm_kib"])
    end = mib(r["end_kib"])
    run_s = t1 - t0
    before = rss_at(r["samples"], t1 - 60) if run_s >= 62 else None
    window = min(60.0, run_s)
    sl = slope(r["samples"], t1 - window, t1)
    pending_est = rate * wait_s
    per_pending = (hwm - idle) * 2**20 / pending_est if pending_est > 0 else None
    # Pending spans as each daemon counts them (Jaeger: traces on memory x spans per trace).
    scale = 1 if r["target"] == "tracekeep" else per_trace
    measured = [s[2] * scale for s in r["samples"] if s[0] <= t1 + 0.5 and not math.isnan(s[2])]
    rows.append(dict(
        r=r, name=f"{r['target']} {r['phase']}", rate=rate, sent=sent, accepted=accepted,
        refused=100 * (sent - accepted) / sent if sent else None,
        cpu_per_m=float(r["cpu_s"]) / accepted * 1e6 if accepted else None, cpu_s=float(r["cpu_s"]),
        hwm=hwm, idle=idle, before=before, end=end, slope=sl, window=window,
        per_pending=per_pending, pending_est=pending_est,
        measured_peak=max(measured) if measured else None, drain_s=t2 - t1,
        drained=r["drained"] == "1"))

by = {(x["r"]["target"], x["r"]["phase"]): x for x in rows}
print()
head = ["run", "accepted spans/s", "refused %", "CPU s/M spans", "peak RSS MiB",
        "RSS end-60s", "RSS end", "RSS MiB/min", "B/pending span (est.)", "tk/jaeger spans/s"]
table = [head]
for x in rows:
    ratio = None
    other = by.get(("jaeger", x["r"]["phase"]))
    if x["r"]["target"] == "tracekeep" and other and other["rate"] > 0:
        ratio = x["rate"] / other["rate"]
    table.append([x["name"], fmt(x["rate"], ",.0f"), fmt(x["refused"], ".2f"),
                  fmt(x["cpu_per_m"], ".2f"), fmt(x["hwm"], ".0f"), fmt(x["before"], ".0f"),
                  fmt(x["end"], ".0f"), fmt(x["slope"], "+.1f"), fmt(x["per_pending"], ",.0f"),
                  fmt(ratio, ".2f", "") + ("x" if ratio else "")])
width = [max(len(row[i]) for row in table) for i in range(len(head))]
for i, row in enumerate(table):
    print("| " + " | ".join(c.ljust(width[j]) if j == 0 else c.rjust(width[j])
                            for j, c in enumerate(row)) + " |")
    if i == 0:
        print("|" + "|".join("-" * (w + 1) + ("-" if j == 0 else ":")
                             for j, w in enumerate(width)) + "|")

print()
for phase in ("sustained", "burst"):
    tk, jg = by.get(("tracekeep", phase)), by.get(("jaeger", phase))
    if tk and jg and jg["rate"] > 0:
        mem = (fmt(tk["per_pending"] / jg["per_pending"], ".2f")
               if tk["per_pending"] and jg["per_pending"] else "-")
        print(f"{phase}: tracekeep/jaeger accepted spans/s = {tk['rate'] / jg['rate']:.2f}, "
              f"memory per pending span (estimate) = {mem}")

print("\ndetails")
for x in rows:
    r, load, end, fin = x["r"], x["r"]["load"], x["r"]["end"], x["r"]["final"]
    print(f"  {x['name']}: offered rate {float(r['rate']):,.0f} spans/s (0 = unpaced), "
          f"{load.get('duration_s', 0):.1f} s, sent {x['sent']:,}, accepted {x['accepted']:,}, "
          f"refused RESOURCE_EXHAUSTED {load.get('refused_resource_exhausted', 0):,} / "
          f"UNAVAILABLE {load.get('refused_unavailable', 0):,} / "
          f"other {load.get('refused_other', 0):,}; latency p50 {load.get('latency_p50_ms', 0):.1f} "
          f"ms p99 {load.get('latency_p99_ms', 0):.1f} ms; loadgen CPU "
          f"{load.get('client_cpu_s', 0):.1f} s")
    if x["accepted"] == 0:
        print(f"    WARNING: {r['target']} accepted no span in this phase")
    print(f"    daemon CPU {x['cpu_s']:.1f} s (load + last decisions); idle RSS {x['idle']:.0f} MiB; "
          f"RSS slope over the last {x['window']:.0f} s of load {fmt(x['slope'], '+.1f')} MiB/min; "
          f"pending spans estimated {x['pending_est']:,.0f} (accepted/s x decision_wait), "
          f"peak measured {fmt(x['measured_peak'], ',.0f')}; "
          + (f"all decided {x['drain_s']:.1f} s after the load" if x["drained"]
             else f"still pending {x['drain_s']:.0f} s after the load"))
    if r["target"] == "tracekeep":
        print("    at end of load: "
              f"spans pending {fmt(end.get('tracekeep_sampler_spans_pending'), ',.0f')}, "
              f"traces pending {fmt(end.get('tracekeep_sampler_traces_pending'), ',.0f')}, "
              f"bytes pending {fmt(end.get('tracekeep_sampler_bytes_pending'), ',.0f')}, "
              f"orders tracked {fmt(end.get('tracekeep_orders_tracked'), ',.0f')}, "
              f"held traces {fmt(end.get('tracekeep_order_held_traces'), ',.0f')} "
              f"({fmt(end.get('tracekeep_order_held_bytes', 0) / 2**20, ',.0f')} MiB)")
        # RocksDB's buffers are bounded by configuration (write_buffer_mib per column family,
        # block_cache_mib), not by the spans pending: the estimate without them.
        rocks = (end.get("tracekeep_storage_memtable_bytes", 0.0)
                 + end.get("tracekeep_storage_block_cache_bytes", 0.0)) / 2**20
        without = ((x["hwm"] - x["idle"] - rocks) * 2**20 / x["pending_est"]
                   if x["pending_est"] > 0 else None)
        print(f"    RocksDB memtables "
              f"{fmt(end.get('tracekeep_storage_memtable_bytes', 0) / 2**20, ',.0f')} MiB + block "
              f"cache {fmt(end.get('tracekeep_storage_block_cache_bytes', 0) / 2**20, ',.0f')} "
              f"MiB at end of load; memory per pending span without them "
              f"{fmt(without, ',.0f')} B (estimate)")
        print("    after decisions: "
              f"traces kept {fmt(fin.get('tracekeep_sampler_traces_sampled_total'), ',.0f')} / "
              f"not kept {fmt(fin.get('tracekeep_sampler_traces_not_sampled_total'), ',.0f')}, "
              f"evicted {fmt(fin.get('tracekeep_sampler_traces_evicted_total'), ',.0f')}, "
              f"spans stored {fmt(fin.get('tracekeep_storage_spans_stored_total'), ',.0f')}, "
              f"held traces {fmt(fin.get('tracekeep_order_held_traces'), ',.0f')}, "
              f"refused by receiver {fmt(fin.get('tracekeep_receiver_spans_refused_total'), ',.0f')}")
    else:
        p = "otelcol_processor_tail_sampling_"
        sampled = labelled(r["final_path"], p + "global_count_traces_sampled_total", "sampled")
        print("    at end of load: "
              f"traces on memory {fmt(end.get(p + 'sampling_traces_on_memory'), ',.0f')}, "
              f"new trace ids {fmt(end.get(p + 'new_trace_id_received_total'), ',.0f')}, "
              f"receiver accepted {fmt(end.get('otelcol_receiver_accepted_spans_total'), ',.0f')} "
              f"/ refused {fmt(end.get('otelcol_receiver_refused_spans_total'), ',.0f')} spans")
        print("    after decisions: "
              f"traces kept {fmt(sampled.get('true'), ',.0f')} / not kept "
              f"{fmt(sampled.get('false'), ',.0f')}, dropped too early "
              f"{fmt(fin.get(p + 'sampling_trace_dropped_too_early_total'), ',.0f')}, "
              "spans stored "
              f"{fmt(fin.get('otelcol_exporter_sent_spans_total'), ',.0f')} "
              "(jaeger_storage_exporter)")
        if not any(k.startswith(p) for k in fin):
            print("    WARNING: no otelcol_processor_tail_sampling_* metric: is tail_sampling in "
                  "the pipeline?")
PY
