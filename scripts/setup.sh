#!/usr/bin/env bash
# Installs everything tracekeep needs to build and test on Debian 12 (bookworm). Idempotent:
# a second run only checks and returns. Usage: scripts/setup.sh [--peers]
#   --peers  also installs the test peers (Prometheus, OTel SDKs for Python/JS).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEPS="${TRACEKEEP_DEPS_DIR:-$ROOT/.deps}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

log() { echo "[setup] $*"; }

# --- 1. Debian packages (bookworm main) -------------------------------------------------------
PKGS=(build-essential cmake ninja-build ccache pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libabsl-dev libbenchmark-dev libgtest-dev libgmock-dev libyaml-cpp-dev libre2-dev
  zlib1g-dev libcurl4-openssl-dev civetweb libcivetweb-dev curl ca-certificates openssl)
BACKPORTS=(opentelemetry-cpp-dev libopentelemetry-proto-dev)

missing=()
for p in "${PKGS[@]}" "${BACKPORTS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  # bookworm-backports carries opentelemetry-cpp 1.19 and the compiled OTLP proto library.
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    uri="$(grep -rhs '^URIs:.*debian$' /etc/apt/sources.list.d/ | head -n1 | awk '{print $2}')"
    [ -n "$uri" ] || uri="http://deb.debian.org/debian"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" | $SUDO tee /etc/apt/sources.list.d/tracekeep-backports.sources >/dev/null
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS[@]}"
fi

# --- 2. prometheus-cpp from trixie, unpacked into a private prefix ----------------------------
PROM="$DEPS/prometheus-cpp"
if [ ! -f "$PROM/usr/lib/x86_64-linux-gnu/cmake/prometheus-cpp/prometheus-cpp-config.cmake" ]; then
  log "fetching prometheus-cpp (trixie) into $PROM"
  work="$DEPS/apt-trixie"
  mkdir -p "$work/lists/partial" "$work/debs" "$PROM"
  uri="$(grep -rhs '^URIs:.*debian$' /etc/apt/sources.list.d/ | head -n1 | awk '{print $2}')"
  [ -n "$uri" ] || uri="http://deb.debian.org/debian"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" > "$work/sources.list"
  opts=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o Dir::State::Lists="$work/lists")
  apt-get "${opts[@]}" update -qq
  (cd "$work/debs" && apt-get "${opts[@]}" download prometheus-cpp-dev libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libprometheus-cpp-push1.0)
  for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$PROM"; done
fi

# --- 3. Test peers (optional) -----------------------------------------------------------------
if [ "${1:-}" = "--peers" ]; then
  if ! command -v promtool >/dev/null; then
    log "installing prometheus"
    $SUDO apt-get install -y -qq --no-install-recommends prometheus
  fi
  PYENV="$DEPS/pyenv"
  if [ ! -x "$PYENV/bin/python" ] || ! "$PYENV/bin/python" -c 'import opentelemetry.exporter.otlp.proto.http' 2>/dev/null; then
    log "installing the OpenTelemetry Python SDK into $PYENV"
    python3 -m venv "$PYENV"
    "$PYENV/bin/pip" install -q opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc \
      opentelemetry-exporter-otlp-proto-http
  fi
fi
log "dependencies ready"
