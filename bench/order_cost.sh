#!/usr/bin/env bash
# What an order trace costs beyond any other trace, taken apart: runs bench/load_bench.sh on the
# same machine, alternating, on six loads of one fixed offered rate:
#   other                 --order-share 0 (the reference of issue 11's target 1)
#   other, stores more    --order-share 0 --error-share E: about as many spans stored as `order`
#   order, untracked      --order-share 1.0 with orders.enabled false: order-sized spans, no tracker
#   order                 --order-share 1.0 (the load of target 1)
#   other, no errors      --order-share 0 --error-share 0
#   order, no errors      --order-share 1.0 --error-share 0: nothing anomalous, nothing more stored
# and prints each one's CPU seconds per million spans (mean of the rounds), the share of spans
# stored, the ratio to `other`, and what the difference is made of:
#   storing             other, stores more − other (the spans an anomalous order keeps)
#   tracking            order − other, stores more (the order tracker and what it holds)
#   tracking, no errors order, no errors − other, no errors
# Target 1 asks `order` / `other` <= 1.25. The ratio `other, stores more` / `other` is what order
# traffic would cost with a tracker that cost nothing: the part of the gap no tracker change moves.
# Usage: bench/order_cost.sh [--duration 50s] [--rate 250000] [--rounds 2] [--seed 4242]
#                            [--stored-error-share 0.087]
# Env: as bench/load_bench.sh (BUILD_DIR, TRACEKEEP_BIN, SKIP_BUILD...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration=50s rate=250000 rounds=2 seed=4242 stored_error_share=0.087
die() { echo "order_cost.sh: $*" >&2; exit 2; }
while (($#)); do
  case "$1" in
    --duration | --rate | --rounds | --seed | --stored-error-share)
      (($# >= 2)) || die "$1 needs a value"
      v="$2"
      case "$1" in
        --duration) duration="$v" ;;
        --rate) rate="$v" ;;
        --rounds) rounds="$v" ;;
        --seed) seed="$v" ;;
        --stored-error-share) stored_error_share="$v" ;;
      esac
      shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown flag '$1' (see --help)" ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '$rounds'"
[[ "$rate" =~ ^[1-9][0-9]*$ ]] || die "--rate must be a positive integer (spans/s), got '$rate'"

BUILD_DIR="${BUILD_DIR:-${ROOT}/build-bench}"
note() { echo "order_cost.sh: $*" >&2; }
# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"
build_release_binaries  # once; each load below runs with SKIP_BUILD=1
export SKIP_BUILD=1

names=("other" "other, stores more" "order, untracked" "order" "other, no errors"
  "order, no errors")
args=("--order-share 0" "--order-share 0 --error-share $stored_error_share" "--order-share 1.0"
  "--order-share 1.0" "--order-share 0 --error-share 0" "--order-share 1.0 --error-share 0")
orders=(on on off on on on)

results="$(mktemp /tmp/tracekeep-order-cost-XXXXXX)"
trap 'rm -f "$results"' EXIT
cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "machine: nproc=$(nproc) cpu=\"${cpu}\" kernel=$(uname -r) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "load: tracekeep-loadgen --rate $rate --duration $duration --seed $seed, $rounds rounds, alternated"
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    # shellcheck disable=SC2086  # the loads' flags split on purpose
    out="$(ORDERS="${orders[$i]}" "$ROOT/bench/load_bench.sh" --duration "$duration" \
      --rate "$rate" --seed "$seed" ${args[$i]} 2>&1)" || die "load_bench.sh failed: $out"
    cpu_per_m="$(sed -n 's/.*= \([0-9.]*\) CPU s per million spans.*/\1/p' <<<"$out")"
    stored="$(sed -n 's/.*spans stored: .* (\([0-9.]*\) % of accepted).*/\1/p' <<<"$out")"
    refused="$(sed -n 's/.*refused: \([0-9,]*\).*/\1/p' <<<"$out" | tr -d ,)"
    [ -n "$cpu_per_m" ] || die "no CPU figure in load_bench.sh's output: $out"
    printf '%s\t%s\t%s\t%s\n' "$i" "$cpu_per_m" "${stored:-0}" "${refused:-0}" >>"$results"
    printf '  round %d  %-20s %s CPU s/M, %s %% stored, %s refused\n' "$r" "${names[$i]}" \
      "$cpu_per_m" "${stored:-?}" "${refused:-?}"
  done
done

python3 - "$results" "${names[@]}" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
names = sys.argv[2:]
cpu = {i: [] for i in range(len(names))}
stored = {i: [] for i in range(len(names))}
refused = {i: 0 for i in range(len(names))}
for i, c, s, r in rows:
    cpu[int(i)].append(float(c))
    stored[int(i)].append(float(s))
    refused[int(i)] += int(r)
mean = lambda xs: sum(xs) / len(xs)
c = {i: mean(v) for i, v in cpu.items()}
print()
print("| load | CPU s per M spans | runs | stored | refused | × other |")
print("|---|---|---|---|---|---|")
for i, name in enumerate(names):
    runs = " / ".join(f"{x:.2f}" for x in cpu[i])
    print(f"| {name} | {c[i]:.2f} | {runs} | {mean(stored[i]):.1f} % | {refused[i]} | ×{c[i] / c[0]:.2f} |")
print()
print(f"storing what anomalous orders keep:  {c[1] - c[0]:+.2f} CPU s/M")
print(f"order-sized spans, untracked:        {c[2] - c[0]:+.2f} CPU s/M")
print(f"tracking (same stored volume):       {c[3] - c[1]:+.2f} CPU s/M")
print(f"tracking, no errors:                 {c[5] - c[4]:+.2f} CPU s/M (×{c[5] / c[4]:.2f})")
print(f"target 1 (order / other <= 1.25):    ×{c[3] / c[0]:.2f}")
print(f"with a tracker that cost nothing:    ×{c[1] / c[0]:.2f}")
budget = 1.25 * c[0] - c[1]
print(f"tracking the target leaves room for: {budget:+.2f} CPU s/M (measured {c[3] - c[1]:.2f})")
PY
