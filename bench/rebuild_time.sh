#!/usr/bin/env bash
# How long a rebuild takes after a one-line table edit, per build profile, beside the same
# edit in a hand-written Pingora proxy.
#
#   bash bench/rebuild_time.sh          # REPEAT=2 timings of each
#
# For each (proxy, profile): build once so everything is up to date, then REPEAT times
# change one string literal of the proxy's routing (the Switchyard table's
# `path_prefix("/static/")` in bench_proxy.rs; the hand-written proxy's `"b.test"` in
# handwritten.rs), wait for a quiet machine, and time `cargo build` of that binary. The
# files are restored when the script exits. Profiles: `dev` (debug), `release` (cargo's
# defaults: opt-level 3, thin-local LTO, 16 codegen units) and `production` (fat LTO, one
# codegen unit). Timings are only comparable on a quiet machine: before each one the
# script waits (up to QUIET_MAX seconds) until no other rustc or cargo build runs, and
# marks a timing taken without that "busy".
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-2}
QUIET_MAX=${QUIET_MAX:-900}

SY=bench/src/bin/bench_proxy.rs
HW=bench/src/bin/handwritten.rs
SAVED=$(mktemp -d /tmp/switchyard-rebuild.XXXXXX)
cp "$SY" "$HW" "$SAVED/"
restore() {
  cp "$SAVED/$(basename "$SY")" "$SY"
  cp "$SAVED/$(basename "$HW")" "$HW"
  rm -rf "$SAVED"
}
trap restore EXIT

# Waits until no rustc and no other cargo build/test/clippy has run for 5 s in a row;
# sets QUIET to "" or "busy" (gave up after QUIET_MAX seconds).
wait_quiet() {
  local calm=0 waited=0
  while [ "$calm" -lt 5 ]; do
    if pgrep -x rustc >/dev/null || pgrep -f 'cargo (build|test|clippy|bench|check|install)' >/dev/null; then
      calm=0
    else
      calm=$((calm + 1))
    fi
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" -ge "$QUIET_MAX" ]; then QUIET=busy; return; fi
  done
  QUIET=""
}

# Alternates one literal of the file between two spellings, so every build sees a change.
edit() { # file
  case $1 in
  "$SY") grep -q '"/static/"' "$1" && sed -i 's|path_prefix("/static/")|path_prefix("/statik/")|' "$1" ||
    sed -i 's|path_prefix("/statik/")|path_prefix("/static/")|' "$1" ;;
  "$HW") grep -q '"b.test"' "$1" && sed -i 's|host == "b.test"|host == "b.tesu"|' "$1" ||
    sed -i 's|host == "b.tesu"|host == "b.test"|' "$1" ;;
  esac
}

measure() { # label file bin cargo-profile-arguments...
  local label=$1 file=$2 bin=$3 times=() i t0 t1; shift 3
  cargo build "$@" -p switchyard-bench --bin "$bin" >&2
  for i in $(seq 1 "$REPEAT"); do
    edit "$file"
    wait_quiet
    t0=$(date +%s.%N)
    cargo build "$@" -p switchyard-bench --bin "$bin" -q
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc | awk '{ printf "%.1f s", $1 }')${QUIET:+ ($QUIET)}")
    echo "rebuild: $label #$i: ${times[-1]} (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  done
  local joined
  joined=$(printf '%s, ' "${times[@]}")
  printf '| %s | %s |\n' "$label" "${joined%, }"
}

echo "$(date -u +%Y-%m-%d) $(nproc) CPUs, $(rustc --version): rebuild after a one-line edit, $REPEAT timings each"
echo
echo "| binary, profile | rebuild |"
echo "| --- | ---: |"
measure "Switchyard table (bench_proxy), dev" "$SY" bench_proxy
measure "hand-written Pingora (handwritten), dev" "$HW" handwritten
measure "Switchyard table (bench_proxy), release" "$SY" bench_proxy --release
measure "hand-written Pingora (handwritten), release" "$HW" handwritten --release
measure "Switchyard table (bench_proxy), production" "$SY" bench_proxy --profile production
measure "hand-written Pingora (handwritten), production" "$HW" handwritten --profile production
