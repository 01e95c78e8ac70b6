# Shared by the whole-daemon benchmark scripts (source it after defining die and note, with ROOT
# and BUILD_DIR set).

# "300s", "5m", "1m30s", "500ms", "2h" or a number of seconds -> milliseconds (exit 1 if bad).
to_ms() { python3 "$ROOT/bench/duration.py" "$1"; }

# Builds tracekeep and tracekeep-loadgen (Release) into $BUILD_DIR unless SKIP_BUILD=1, and sets
# TRACEKEEP and LOADGEN to them.
build_release_binaries() {
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    note "building tracekeep and tracekeep-loadgen (Release) in $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DTRACEKEEP_BUILD_TESTS=OFF >/dev/null || die "cmake failed for $BUILD_DIR"
    ninja -C "$BUILD_DIR" -j2 tracekeep tracekeep-loadgen >/dev/null ||
      die "building tracekeep / tracekeep-loadgen in $BUILD_DIR failed"
  fi
  TRACEKEEP="$BUILD_DIR/bin/tracekeep"
  LOADGEN="$BUILD_DIR/bin/tracekeep-loadgen"
  [[ -x "$TRACEKEEP" ]] || die "tracekeep not found at $TRACEKEEP"
  [[ -x "$LOADGEN" ]] || die "tracekeep-loadgen not found at $LOADGEN"
}
