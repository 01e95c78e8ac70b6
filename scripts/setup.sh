#!/usr/bin/env bash
# Installs everything tracekeep needs to build and test on Debian 12 (bookworm). Idempotent:
# a second run only checks and returns. Usage: scripts/setup.sh [--peers]
#   --peers  also installs the test peers: Prometheus + promtool, Jaeger v2 and telemetrygen
#            (built with Go into .deps/gobin), the OpenTelemetry SDKs for Python and JavaScript,
#            and an Apache Kafka broker (its jars from Maven Central into .deps/kafka).
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
  librocksdb-dev libabsl-dev libbenchmark-dev libgtest-dev libgmock-dev libyaml-cpp-dev libre2-dev libjemalloc-dev
  zlib1g-dev libcurl4-openssl-dev civetweb libcivetweb-dev librdkafka-dev curl ca-certificates openssl
  clang libclang-rt-14-dev)  # clang + compiler-rt: the libFuzzer targets (scripts/fuzz.sh)
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
# Real programs the interop tests (tests/interop) talk to. Each is cached in $DEPS and only
# rebuilt when missing or of another version.
JAEGER_VERSION="v1.76.0"            # the Go module version; its binary is Jaeger v2 (cmd/jaeger)
TELEMETRYGEN_VERSION="v0.161.0"
GOBIN_DIR="$DEPS/gobin"

# Builds Go program $1 (binary name) at version $2 with the command $3..., unless the cached
# binary already has that version (recorded in $GOBIN_DIR/$1.version).
go_peer() {
  local name="$1" version="$2"; shift 2
  if [ -x "$GOBIN_DIR/$name" ] && [ "$(cat "$GOBIN_DIR/$name.version" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  if ! command -v go >/dev/null; then
    log "WARNING: go is not installed; cannot build $name $version (its interop tests will say so)"
    return 1
  fi
  log "building $name $version into $GOBIN_DIR (a few minutes on 2 cores)"
  mkdir -p "$GOBIN_DIR"
  if "$@"; then
    echo "$version" > "$GOBIN_DIR/$name.version"
  else
    log "WARNING: building $name $version failed (command: $*)"
    return 1
  fi
}

build_jaeger() {
  # `go install github.com/jaegertracing/jaeger/cmd/jaeger@<commit>` is refused: the module
  # proxy reachable here does not serve pseudo-versions of main (403 "This module version is not
  # available"), and v1.76.0 has a `replace` directive, which `go install` rejects. So the tagged
  # module is downloaded and built as the main module, where its replace directive applies.
  local dir src
  dir="$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" |
         sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || return 1
  [ -n "$dir" ] || return 1
  src="$DEPS/src/jaeger-$JAEGER_VERSION"
  rm -rf "$src" && mkdir -p "$DEPS/src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  (cd "$src" && go build -o "$GOBIN_DIR/jaeger" ./cmd/jaeger)
}

# Apache Kafka's broker, for the Kafka receiver's end-to-end tests: the jars of
# org.apache.kafka:kafka_2.13 and its runtime dependencies, copied by Maven into $KAFKA_DIR/libs
# (started in KRaft mode by the tests with `java -cp 'libs/*' kafka.Kafka server.properties`).
KAFKA_VERSION="4.4.0"
KAFKA_DIR="$DEPS/kafka"
fetch_kafka() {
  if [ -f "$KAFKA_DIR/libs/kafka_2.13-$KAFKA_VERSION.jar" ] &&
     [ "$(cat "$KAFKA_DIR/version" 2>/dev/null)" = "$KAFKA_VERSION" ]; then
    return 0
  fi
  if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then
    log "installing maven and a Java runtime (for the Kafka broker)"
    $SUDO apt-get install -y -qq --no-install-recommends maven default-jre-headless
  fi
  log "fetching Apache Kafka $KAFKA_VERSION (org.apache.kafka:kafka_2.13) into $KAFKA_DIR"
  local work="$KAFKA_DIR/pom"
  rm -rf "$KAFKA_DIR/libs" && mkdir -p "$work" "$KAFKA_DIR/libs"
  cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tracekeep.deps</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
  if (cd "$work" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$KAFKA_DIR/libs"); then
    echo "$KAFKA_VERSION" > "$KAFKA_DIR/version"
  else
    log "WARNING: fetching Apache Kafka $KAFKA_VERSION with Maven failed (its tests will say so)"
    return 1
  fi
}

if [ "${1:-}" = "--peers" ]; then
  if ! command -v promtool >/dev/null; then
    log "installing prometheus"
    $SUDO apt-get install -y -qq --no-install-recommends prometheus
  fi
  # The Debian package starts a Prometheus server on :9090; the tests start their own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi

  PYENV="$DEPS/pyenv"
  PYREQ="$ROOT/tests/interop/requirements.txt"
  if [ ! -x "$PYENV/bin/python" ]; then
    python3 -m venv "$PYENV"
  fi
  if ! cmp -s "$PYREQ" "$PYENV/.tracekeep-requirements.txt"; then
    log "installing the OpenTelemetry Python SDK and pytest into $PYENV"
    "$PYENV/bin/pip" install -q -r "$PYREQ"
    cp "$PYREQ" "$PYENV/.tracekeep-requirements.txt"
  fi

  JSDIR="$ROOT/tests/interop/js"
  if ! cmp -s "$JSDIR/package-lock.json" "$JSDIR/node_modules/.tracekeep-lock.json" 2>/dev/null; then
    if ! command -v npm >/dev/null; then
      log "installing nodejs and npm"
      $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
    fi
    log "installing the OpenTelemetry JavaScript SDK into $JSDIR/node_modules"
    (cd "$JSDIR" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$JSDIR/package-lock.json" "$JSDIR/node_modules/.tracekeep-lock.json"
  fi

  go_peer telemetrygen "$TELEMETRYGEN_VERSION" env GOBIN="$GOBIN_DIR" go install \
    "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$TELEMETRYGEN_VERSION" || true
  go_peer jaeger "$JAEGER_VERSION" build_jaeger || true
  fetch_kafka || true
fi
log "dependencies ready"
