#!/usr/bin/env bash
# tracekeep on Kafka: a real single-node Apache Kafka broker (KRaft, loopback, the jars that
# scripts/setup.sh --peers installs) and Release tracekeep members on this machine. Phases:
#   fill:     a gateway-mode member takes tracekeep-loadgen traffic (unpaced) for --fill and
#             produces it into topic bench_spans (one record per trace); the span count is noted.
#   drain-1:  a fresh member (initial_offset: earliest, its own group) drains that topic; timed
#             from its first span taken until every record is read (lag 0): spans/s, CPU s per
#             million spans (of the spans taken in that window).
#   drain-2:  two fresh members in one new group drain the same topic together.
#   otlp:     a fresh member takes the same loadgen traffic over OTLP/gRPC (no Kafka), unpaced,
#             for as long as drain-1 took: spans/s, CPU s per million spans.
#   lag:      two gateway-mode members of one group; loadgen offers --rate to the first for
#             --lag-duration; tracekeep_kafka_consumer_lag is sampled every second on both.
#   recovery: still under load, the second member is killed (kill -9); time until the survivor
#             owns every partition, and until its lag is back under the threshold.
# Every member: journal and store on, orders on, errors + 1 %, decision_wait 5s (as
# bench/load_bench.sh). The machine line comes first. On a 2-core machine every process (members,
# broker, load generator) shares the same two cores: see the note the script prints.
#
# Usage: bench/kafka_bench.sh [--fill 40s] [--rate 50000] [--lag-duration 90s]
#                             [--recovery 90s] [--session-timeout 10s] [--partitions 6]
#                             [--lag-threshold auto] [--only throughput|lag]
#   --fill D             how long the gateway fills the topic (default 40s)
#   --rate R             spans/s offered in the lag and recovery phases (default 50000)
#   --lag-duration D     sustained load before the kill (default 90s; the mean is of its last
#                        minute, or of all of it when shorter)
#   --recovery D         how long the load goes on after the kill (default 90s)
#   --session-timeout D  receivers.kafka.session_timeout of the lag members (default 10s)
#   --partitions N       partitions of every topic (default 6)
#   --lag-threshold N    records: "recovered" once the survivor's lag is under it; auto = the
#                        largest of 1000 and twice the highest lag of the last minute before the
#                        kill (default auto)
#   --only P             run only the throughput phases (fill, drain-1, drain-2, otlp) or only
#                        lag (lag, recovery)
# Env: BUILD_DIR (default <repo>/build-bench), KAFKA_LIBS (default <repo>/.deps/kafka/libs, or
#      $TRACEKEEP_DEPS_DIR/kafka/libs), SKIP_BUILD=1: do not (re)build tracekeep and
#      tracekeep-loadgen; KEEP_WORK=1: keep the temporary directory (configs, logs, samples).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-${ROOT}/build-bench}"
KAFKA_LIBS="${KAFKA_LIBS:-${TRACEKEEP_DEPS_DIR:-${ROOT}/.deps}/kafka/libs}"

die() {
  echo "kafka_bench.sh: $*" >&2
  exit 1
}
note() { echo "# $(date +%T) $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# "300s", "5m", "1m30s", "500ms" or a number of seconds -> whole seconds (exit 1 if bad).
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
to_s() {
  local ms
  ms="$(to_ms "$1")" || return 1
  echo $(((ms + 500) / 1000))
}

fill=40s rate=50000 lag_duration=90s recovery=90s session_timeout=10s partitions=6
lag_threshold=auto only=""
while (($#)); do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --fill | --rate | --lag-duration | --recovery | --session-timeout | --partitions | \
      --lag-threshold | --only)
      (($# >= 2)) || die "$1 needs a value"
      v="$2"
      case "$1" in
        --fill) fill="$v" ;;
        --rate) rate="$v" ;;
        --lag-duration) lag_duration="$v" ;;
        --recovery) recovery="$v" ;;
        --session-timeout) session_timeout="$v" ;;
        --partitions) partitions="$v" ;;
        --lag-threshold) lag_threshold="$v" ;;
        --only) only="$v" ;;
      esac
      shift 2
      ;;
    *) die "unknown flag '$1' (see --help)" ;;
  esac
done
fill_s="$(to_s "$fill")" && ((fill_s > 0)) || die "--fill must be a positive duration, got '$fill'"
lag_s="$(to_s "$lag_duration")" && ((lag_s > 0)) ||
  die "--lag-duration must be a positive duration, got '$lag_duration'"
recovery_s="$(to_s "$recovery")" && ((recovery_s > 0)) ||
  die "--recovery must be a positive duration, got '$recovery'"
session_s="$(to_s "$session_timeout")" && ((session_s >= 6)) ||
  die "--session-timeout must be at least 6s (the broker's group.min.session.timeout.ms), got '$session_timeout'"
[[ "$rate" =~ ^[0-9]+$ ]] && ((rate > 0)) || die "--rate must be a whole number of spans/s > 0, got '$rate'"
[[ "$partitions" =~ ^[0-9]+$ ]] && ((partitions >= 2)) ||
  die "--partitions must be a whole number >= 2, got '$partitions'"
[[ "$lag_threshold" == auto || "$lag_threshold" =~ ^[0-9]+$ ]] ||
  die "--lag-threshold must be a number of records or auto, got '$lag_threshold'"
case "$only" in
  "") phases=(throughput lag) ;;
  throughput | lag) phases=("$only") ;;
  *) die "--only must be throughput or lag, got '$only'" ;;
esac

# ---- binaries ---------------------------------------------------------------------------------
build_release_binaries
[[ -d "$KAFKA_LIBS" ]] || die "no Kafka broker jars in $KAFKA_LIBS: run scripts/setup.sh --peers"
JAVA="$(command -v java || true)"
[[ -x "$JAVA" ]] || die "java is needed for the Kafka broker (scripts/setup.sh --peers)"
for tool in curl python3 awk; do command -v "$tool" >/dev/null || die "$tool is needed"; done

# ---- work directory, processes, cleanup --------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/tracekeep-kafka-bench-XXXXXX")"
pids=()  # every process this script started, killed at exit
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
  local p
  for p in "${pids[@]+"${pids[@]}"}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" 2>/dev/null || true; done
  if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "# work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
tcp_open() { timeout 1 bash -c "exec 3<>/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null; }
log_tail() { tail -n 30 "$1" 2>/dev/null | sed 's/^/    /' >&2 || true; }
hz="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Sum of every series of metric $2 in the Prometheus text at URL $1 whose labels contain $3
# (default: any), "nan" when absent.
metric_sum() {
  curl -s --max-time 2 "$1" 2>/dev/null |
    awk -v m="$2" -v l="${3:-}" '($1 == m || index($1, m "{") == 1) && index($1, l) { s += $NF; n++ }
      END { print n ? s : "nan" }'
}

# ---- the broker -------------------------------------------------------------------------------
broker_pid=""
start_broker() {
  local dir="$work/kafka" port cport i
  mkdir -p "$dir"
  port="$(free_port)" cport="$(free_port)"
  [[ "$port" != "$cport" ]] || cport="$(free_port)"
  bootstrap="127.0.0.1:$port"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/logs
num.partitions=$partitions
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  local id
  id="$(python3 -c 'import base64, os; b = bytearray(os.urandom(16)); b[0] = (b[0] & 0x3f) | 0x40; print(base64.urlsafe_b64encode(bytes(b)).decode().rstrip("="))')"
  "$JAVA" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format --standalone -t "$id" \
    -c "$dir/server.properties" >"$dir/format.log" 2>&1 || { log_tail "$dir/format.log"; die "kafka StorageTool format failed"; }
  "$JAVA" -Xmx512m -XX:+UseSerialGC -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/kafka.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  for ((i = 0; i < 900; i++)); do  # up to 90 s
    kill -0 "$broker_pid" 2>/dev/null || { log_tail "$dir/kafka.log"; die "the Kafka broker exited at start"; }
    tcp_open "$bootstrap" && break
    sleep 0.1
  done
  ((i < 900)) || { log_tail "$dir/kafka.log"; die "the Kafka broker did not listen within 90 s"; }
}

# ---- members ----------------------------------------------------------------------------------
# launch_member NAME KAFKA(on|off) GATEWAY(true|false) TOPIC GROUP: starts a fresh member in
# $work/NAME; sets member_pid. wait_member NAME PID: waits until it is ready; sets member_grpc,
# member_metrics. start_member: both.
start_member() {
  launch_member "$@"
  wait_member "$1" "$member_pid"
}
launch_member() {
  local name="$1" kafka="$2" gateway="$3" topic="$4" group="$5" dir="$work/$1"
  mkdir -p "$dir"
  local kafka_yaml=""
  if [[ "$kafka" == on ]]; then
    kafka_yaml="  kafka:
    enabled: true
    brokers: [\"$bootstrap\"]
    topic: $topic
    group_id: $group
    initial_offset: earliest
    gateway: $gateway
    session_timeout: ${session_s}s"
  fi
  cat >"$dir/tracekeep.yaml" <<YAML
# As bench/load_bench.sh: journal and store on, orders on, errors + 1 %.
data_dir: $dir/data
log_level: warn
receivers:
  otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}, http: {endpoint: "127.0.0.1:0"}}}
$kafka_yaml
sampler:
  decision_wait: 5s
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
  member_pid=$!
  pids+=("$member_pid")
}
wait_member() {
  local name="$1" pid="$2" dir="$work/$1" i telemetry=""
  for ((i = 0; i < 600; i++)); do  # up to 60 s
    kill -0 "$pid" 2>/dev/null || { log_tail "$dir/daemon.log"; die "member $name exited at start"; }
    if [[ -s "$dir/endpoints.json" ]]; then
      telemetry="$(sed -n 's/.*"telemetry": *"\([^"]*\)".*/\1/p' "$dir/endpoints.json")"
      [[ -n "$telemetry" ]] && curl -sf --max-time 1 "http://$telemetry/readyz" >/dev/null && break
    fi
    sleep 0.1
  done
  ((i < 600)) || { log_tail "$dir/daemon.log"; die "member $name not ready within 60 s"; }
  member_grpc="$(sed -n 's/.*"otlp_grpc": *"\([^"]*\)".*/\1/p' "$dir/endpoints.json")"
  member_metrics="http://$telemetry/metrics"
}

check_alive() {  # pid name
  kill -0 "$1" 2>/dev/null && return 0
  log_tail "$work/$2/daemon.log"
  die "member $2 died during the run"
}

results="$work/results.env"
: >"$results"
put() { echo "$1=$2" >>"$results"; }

cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "machine: nproc=$(nproc) cpu=\"${cpu_model}\" kernel=$(uname -r) load=\"$(loadavg)\""
echo "kafka: $(cat "$KAFKA_LIBS/../version" 2>/dev/null || basename "$(ls "$KAFKA_LIBS"/kafka_2.13-*.jar 2>/dev/null | head -1)" .jar), one KRaft node on loopback, $partitions partitions per topic"
echo "flags: --fill $fill --rate $rate --lag-duration $lag_duration --recovery $recovery --session-timeout $session_timeout --partitions $partitions --lag-threshold $lag_threshold${only:+ --only $only}"

note "starting the Kafka broker"
start_broker
put broker_start_load "\"$(loadavg)\""

# ---- throughput: fill, drain-1, drain-2, otlp --------------------------------------------------
# drain GROUP NAME...: starts the named members in one group on bench_spans and waits until they
# took $produced spans between them. Writes <phase>_* results.
drain() {
  local phase="$1" group="$2"
  shift 2
  local names=("$@") mpids=() murls=() n i t0="" t1="" cpu0=() accepted total first bcpu0 bcpu1 lag l
  # All launched at once, so that they join the group together.
  for n in "${names[@]}"; do
    launch_member "$n" on false bench_spans "$group"
    mpids+=("$member_pid")
  done
  for i in "${!names[@]}"; do
    wait_member "${names[$i]}" "${mpids[$i]}"
    murls+=("$member_metrics")
  done
  # Timed from the first span taken by any member (the group formed) to the last.
  local bound=$((SECONDS + 600))
  while ((SECONDS < bound)); do
    total=0
    for i in "${!names[@]}"; do
      check_alive "${mpids[$i]}" "${names[$i]}"
      accepted="$(metric_sum "${murls[$i]}" tracekeep_kafka_spans_accepted_total)"
      [[ "$accepted" == nan ]] && accepted=0
      total=$(awk -v a="$total" -v b="$accepted" 'BEGIN { print a + b }')
    done
    if [[ -z "$t0" ]] && awk -v t="$total" 'BEGIN { exit !(t > 0) }'; then
      t0="$(now)"
      first="$total"
      put "${phase}_first" "$total"
      cpu0=()
      for i in "${!names[@]}"; do cpu0+=("$(cpu_ticks "${mpids[$i]}")"); done
      bcpu0="$(cpu_ticks "$broker_pid")"
    fi
    # Done: every record read (a rebalance may replay some: more spans than produced).
    lag=0
    for i in "${!names[@]}"; do
      l="$(metric_sum "${murls[$i]}" tracekeep_kafka_consumer_lag)"
      [[ "$l" == nan ]] && l=1
      lag=$(awk -v a="$lag" -v b="$l" 'BEGIN { print a + b }')
    done
    if [[ "$lag" == 0 ]] && awk -v t="$total" -v p="$produced" 'BEGIN { exit !(t >= p) }'; then
      t1="$(now)"
      break
    fi
    sleep 0.1
  done
  [[ -n "$t1" ]] || die "$phase: the members took only $total of $produced spans within 600 s"
  local cpu=0
  for i in "${!names[@]}"; do
    cpu=$((cpu + $(cpu_ticks "${mpids[$i]}") - ${cpu0[$i]}))
    put "${phase}_hwm_kib_$i" "$(awk '$1 == "VmHWM:" { print $2 }' "/proc/${mpids[$i]}/status")"
    put "${phase}_waits_$i" "$(metric_sum "${murls[$i]}" tracekeep_kafka_intake_waits_total)"
  done
  bcpu1="$(cpu_ticks "$broker_pid")"
  # Spans taken within the timed window (the first sample's were taken before it).
  put "${phase}_spans" "$(awk -v t="$total" -v f="$first" 'BEGIN { printf "%d", t - f }')"
  put "${phase}_total" "$total"
  put "${phase}_s" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
  put "${phase}_cpu_s" "$(awk -v c="$cpu" -v hz="$hz" 'BEGIN { print c / hz }')"
  put "${phase}_broker_cpu_s" "$(awk -v a="$bcpu0" -v b="$bcpu1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')"
  put "${phase}_load" "\"$(loadavg)\""
  for i in "${!names[@]}"; do stop_pid "${mpids[$i]}" 30; done
}

if [[ " ${phases[*]} " == *" throughput "* ]]; then
  note "fill: a gateway member produces loadgen traffic into bench_spans for $fill"
  start_member fill on true bench_spans fill
  fill_pid="$member_pid"
  fill_url="$member_metrics"
  c0="$(cpu_ticks "$fill_pid")" b0="$(cpu_ticks "$broker_pid")"
  "$LOADGEN" --endpoint "$member_grpc" --json --duration "${fill_s}s" --rate 0 \
    --order-share 0 >"$work/fill.json" 2>"$work/fill.err" ||
    { log_tail "$work/fill.err"; die "tracekeep-loadgen failed in the fill phase"; }
  c1="$(cpu_ticks "$fill_pid")" b1="$(cpu_ticks "$broker_pid")"
  produced="$(metric_sum "$fill_url" tracekeep_kafka_gateway_spans_produced_total)"
  [[ "$produced" != nan ]] && awk -v p="$produced" 'BEGIN { exit !(p > 0) }' ||
    die "fill: the gateway produced no span (see $work/fill/daemon.log)"
  produced="$(awk -v p="$produced" 'BEGIN { printf "%d", p }')"
  put fill_spans "$produced"
  put fill_cpu_s "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')"
  put fill_broker_cpu_s "$(awk -v a="$b0" -v b="$b1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')"
  put fill_records "$(metric_sum "$fill_url" tracekeep_kafka_gateway_records_produced_total)"
  stop_pid "$fill_pid" 30

  note "drain-1: one fresh member drains $produced spans"
  drain drain1 drain-one d1
  drain1_s="$(awk -F= '$1 == "drain1_s" { print $2 }' "$results")"

  note "drain-2: two fresh members drain the same topic in one group"
  drain drain2 drain-two d2a d2b

  otlp_s="$(awk -v s="$drain1_s" 'BEGIN { s = int(s + 0.999); print s < 5 ? 5 : s }')"
  note "otlp: a fresh member takes the same traffic over OTLP/gRPC for ${otlp_s}s"
  start_member otlp off false - -
  c0="$(cpu_ticks "$member_pid")"
  "$LOADGEN" --endpoint "$member_grpc" --json --duration "${otlp_s}s" --rate 0 \
    --order-share 0 >"$work/otlp.json" 2>"$work/otlp.err" ||
    { log_tail "$work/otlp.err"; die "tracekeep-loadgen failed in the otlp phase"; }
  c1="$(cpu_ticks "$member_pid")"
  put otlp_cpu_s "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')"
  put otlp_hwm_kib "$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$member_pid/status")"
  put otlp_load "\"$(loadavg)\""
  stop_pid "$member_pid" 30
fi

# ---- lag under sustained load, then recovery after kill -9 --------------------------------------
if [[ " ${phases[*]} " == *" lag "* ]]; then
  note "lag: two gateway members, $rate spans/s offered to the first for $lag_duration"
  start_member live0 on true live_spans live
  l0_pid="$member_pid" l0_url="$member_metrics" l0_grpc="$member_grpc"
  start_member live1 on true live_spans live
  l1_pid="$member_pid" l1_url="$member_metrics"
  # Both in the group, each with a share of the partitions.
  for ((i = 0; i < 600; i++)); do
    a0="$(metric_sum "$l0_url" tracekeep_kafka_partition_assigned 'topic="live_spans"')"
    a1="$(metric_sum "$l1_url" tracekeep_kafka_partition_assigned 'topic="live_spans"')"
    [[ "$a0" != nan && "$a1" != nan ]] && ((${a0%.*} > 0 && ${a1%.*} > 0 &&
      ${a0%.*} + ${a1%.*} == partitions)) && break
    sleep 0.1
  done
  ((i < 600)) || die "lag: the two members did not share the $partitions partitions within 60 s"
  "$LOADGEN" --endpoint "$l0_grpc" --json --duration "$((lag_s + recovery_s))s" --rate "$rate" \
    --order-share 0 >"$work/lag.json" 2>"$work/lag.err" &
  loadgen_pid=$!
  pids+=("$loadgen_pid")
  t_start="$(now)"
  c0="$(cpu_ticks "$l0_pid")" c1="$(cpu_ticks "$l1_pid")" b0="$(cpu_ticks "$broker_pid")"
  # Every second: time, member0 lag, member1 lag, member0 partitions, member1 partitions.
  samples="$work/lag_samples.txt"
  killed_at=""
  end=$(awk -v t="$t_start" -v d="$((lag_s + recovery_s))" 'BEGIN { printf "%.3f", t + d }')
  while kill -0 "$loadgen_pid" 2>/dev/null; do
    t="$(now)"
    awk -v t="$t" -v e="$end" 'BEGIN { exit !(t < e + 30) }' || break  # bounded
    check_alive "$l0_pid" live0
    lag0="$(metric_sum "$l0_url" tracekeep_kafka_consumer_lag 'topic="live_spans"')"
    own0="$(metric_sum "$l0_url" tracekeep_kafka_partition_assigned 'topic="live_spans"')"
    if [[ -z "$killed_at" ]]; then
      lag1="$(metric_sum "$l1_url" tracekeep_kafka_consumer_lag 'topic="live_spans"')"
      own1="$(metric_sum "$l1_url" tracekeep_kafka_partition_assigned 'topic="live_spans"')"
    else
      lag1=0 own1=0
    fi
    echo "$t $lag0 $lag1 $own0 $own1" >>"$samples"
    if [[ -z "$killed_at" ]] && awk -v t="$t" -v s="$t_start" -v d="$lag_s" 'BEGIN { exit !(t - s >= d) }'; then
      check_alive "$l1_pid" live1
      put lag_cpu_s "$(awk -v a="$c0" -v b="$(cpu_ticks "$l0_pid")" -v c="$c1" -v d="$(cpu_ticks "$l1_pid")" -v hz="$hz" 'BEGIN { print (b - a + d - c) / hz }')"
      put lag_broker_cpu_s "$(awk -v a="$b0" -v b="$(cpu_ticks "$broker_pid")" -v hz="$hz" 'BEGIN { print (b - a) / hz }')"
      put lag_accepted "$(metric_sum "$l0_url" tracekeep_kafka_gateway_spans_produced_total)"
      put lag_load "\"$(loadavg)\""
      note "recovery: kill -9 of the second member under load"
      kill -KILL "$l1_pid"
      wait "$l1_pid" 2>/dev/null || true
      killed_at="$(now)"
      put killed_at "$killed_at"
    fi
    sleep 1
  done
  wait "$loadgen_pid" 2>/dev/null || { log_tail "$work/lag.err"; die "tracekeep-loadgen failed in the lag phase"; }
  put recovery_load "\"$(loadavg)\""
  put lag_start "$t_start"
  stop_pid "$l0_pid" 30
fi
echo "load at end: \"$(loadavg)\""

python3 - "$results" "$work" "$partitions" "$lag_threshold" "$rate" "$session_s" <<'PY'
import json, os, sys

results, work = sys.argv[1], sys.argv[2]
partitions, threshold_flag, rate, session_s = int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
r = {}
for line in open(results):
    k, _, v = line.strip().partition("=")
    r[k] = v.strip('"')


def f(k, default=None):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return default


if "fill_spans" in r:
    fill = json.load(open(os.path.join(work, "fill.json")))
    otlp = json.load(open(os.path.join(work, "otlp.json")))
    produced = f("fill_spans")
    print()
    print(f"fill (gateway mode, OTLP in, Kafka out): {produced:,.0f} spans in "
          f"{fill.get('duration_s', 0):.1f} s = {fill.get('accepted_spans_per_s', 0):,.0f} spans/s "
          f"acknowledged after Kafka, {f('fill_records', 0):,.0f} records; member "
          f"{f('fill_cpu_s') / produced * 1e6:.2f} CPU s/M spans, broker "
          f"{f('fill_broker_cpu_s') / produced * 1e6:.2f} CPU s/M spans; loadgen refused "
          f"{fill.get('spans_sent', 0) - fill.get('spans_accepted', 0):,} spans")
    rows = [["run", "spans", "seconds", "spans/s", "member CPU s/M spans", "broker CPU s/M spans",
             "peak RSS MiB", "intake waits"]]
    per = {}
    for phase, label, members in (("drain1", "Kafka, 1 member (drain)", 1),
                                  ("drain2", "Kafka, 2 members (drain)", 2)):
        spans, secs = f(f"{phase}_spans"), f(f"{phase}_s")
        per[phase] = spans / secs
        rss = "/".join(f"{f(f'{phase}_hwm_kib_{i}', 0) / 1024:.0f}" for i in range(members))
        waits = "/".join(f"{f(f'{phase}_waits_{i}', 0):.0f}" for i in range(members))
        rows.append([label, f"{spans:,.0f}", f"{secs:.1f}", f"{spans / secs:,.0f}",
                     f"{f(f'{phase}_cpu_s') / spans * 1e6:.2f}",
                     f"{f(f'{phase}_broker_cpu_s') / spans * 1e6:.2f}", rss, waits])
    acc = otlp.get("spans_accepted", 0)
    per["otlp"] = otlp.get("accepted_spans_per_s", 0)
    rows.append(["OTLP/gRPC, 1 member (unpaced loadgen)", f"{acc:,}",
                 f"{otlp.get('duration_s', 0):.1f}", f"{per['otlp']:,.0f}",
                 f"{f('otlp_cpu_s') / max(acc, 1) * 1e6:.2f}", "-",
                 f"{f('otlp_hwm_kib', 0) / 1024:.0f}",
                 f"refused {otlp.get('spans_sent', 0) - acc:,}"])
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(width[j]) if j == 0 else c.rjust(width[j])
                                for j, c in enumerate(row)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 1) + ("-" if j == 0 else ":")
                                 for j, w in enumerate(width)) + "|")
    c1 = f("drain1_cpu_s") / f("drain1_spans")
    co = f("otlp_cpu_s") / max(acc, 1)
    print(f"Kafka/OTLP, one member: spans/s x{per['drain1'] / per['otlp']:.2f}, member CPU per "
          f"span x{c1 / co:.2f}; 2 members/1 member: spans/s x{per['drain2'] / per['drain1']:.2f}, "
          f"member CPU per span x{f('drain2_cpu_s') / f('drain2_spans') / c1:.2f}")
    print(f"load average after drain-1 / drain-2 / otlp: {r.get('drain1_load')} / "
          f"{r.get('drain2_load')} / {r.get('otlp_load')}")

samples_path = os.path.join(work, "lag_samples.txt")
if "lag_start" in r and os.path.exists(samples_path):
    start, killed = f("lag_start"), f("killed_at")
    samples = []
    for line in open(samples_path):
        p = line.split()
        if len(p) == 5:
            samples.append([float(x) if x != "nan" else 0.0 for x in p])
    before = [s for s in samples if killed is None or s[0] < killed]
    last_min = [s for s in before if s[0] >= before[-1][0] - 60] if before else []
    lag = lambda s: s[1] + s[2]
    print()
    lag_json = json.load(open(os.path.join(work, "lag.json")))
    print(f"lag: 2 gateway members, {rate:,} spans/s offered to member 0 "
          f"({lag_json.get('accepted_spans_per_s', 0):,.0f} spans/s acknowledged over the whole "
          f"run, {lag_json.get('spans_sent', 0) - lag_json.get('spans_accepted', 0):,} refused)")
    if before:
        acc = f("lag_accepted", 0)
        print(f"  before the kill ({before[-1][0] - start:.0f} s): consumer lag (records, both "
              f"members) max {max(lag(s) for s in before):,.0f}, mean of the last "
              f"{last_min[-1][0] - last_min[0][0]:.0f} s {sum(lag(s) for s in last_min) / len(last_min):,.0f}, "
              f"last {lag(before[-1]):,.0f}; members {f('lag_cpu_s', 0) / max(acc, 1) * 1e6:.2f} "
              f"CPU s/M spans (both, gateway + consume), broker "
              f"{f('lag_broker_cpu_s', 0) / max(acc, 1) * 1e6:.2f}; load average {r.get('lag_load')}")
    if killed is not None:
        after = [s for s in samples if s[0] >= killed]
        pre_max = max((lag(s) for s in last_min), default=0)
        threshold = max(1000, 2 * pre_max) if threshold_flag == "auto" else int(threshold_flag)
        owned = next((s for s in after if s[3] >= partitions), None)
        # A partition just taken over reads lag 0 until its first record is handled: recovered
        # is the first sample under the threshold after the highest lag seen from the takeover.
        rec = peak_at = None
        if owned:
            since = [s for s in after if s[0] >= owned[0]]
            peak_at = max(since, key=lambda s: s[1])
            rec = next((s for s in since if s[0] >= peak_at[0] and s[1] < threshold), None)
        peak = max((s[1] for s in after), default=0)
        print(f"  recovery after kill -9 of member 1 (session_timeout {session_s} s, 1 s samples): "
              + (f"survivor owns all {partitions} partitions after {owned[0] - killed:.1f} s"
                 if owned else f"survivor did not own all {partitions} partitions within "
                 f"{after[-1][0] - killed if after else 0:.0f} s")
              + (f", lag under {threshold:,} records after {rec[0] - killed:.1f} s "
                 f"(catch-up {rec[0] - owned[0]:.1f} s after the takeover)" if rec else
                 f", lag not under {threshold:,} records before the load ended")
              + f"; peak lag after the kill {peak:,.0f} records"
              + (f" ({peak_at[0] - killed:.1f} s after it)" if peak_at else "")
              + f"; load average {r.get('recovery_load')}")
        tail = [s for s in after if s[0] >= after[-1][0] - 30] if after else []
        if tail:
            print(f"  lag over the last {tail[-1][0] - tail[0][0]:.0f} s of load (survivor alone): "
                  f"mean {sum(s[1] for s in tail) / len(tail):,.0f}, last {tail[-1][1]:,.0f}")

print("""
What a 2-core machine can and cannot show: the members, the broker (Java) and the load generator
share the same two cores, so a second member adds no CPU: 1 vs 2 members shows how the work splits
and what coordination costs (rebalance, two consumers on one broker), not how a cluster scales;
absolute spans/s are lower than on dedicated machines, and ratios within one run are what to
compare. The broker here is one node without replication (a real cluster writes each record 3
times). Recovery time is dominated by session_timeout (the group notices the dead member) plus the
replay of what the dead member had not committed (records not yet decided: about decision_wait +
the commit interval of its share), then the catch-up at the survivor's spare capacity.""")
PY
