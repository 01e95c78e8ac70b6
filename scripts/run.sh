#!/usr/bin/env bash
# Installs what is needed, builds, and starts tracekeep on its embedded defaults (data in ./data,
# OTLP on :4317/:4318, metrics on :9464, admin on 127.0.0.1:4320). Arguments go to tracekeep,
# e.g. scripts/run.sh --config deploy/tracekeep.yaml
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh" tracekeep tracekeepctl
exec "$ROOT/build/bin/tracekeep" "$@"
