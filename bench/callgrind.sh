#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: a figure that other
# work on the machine cannot move, to compare two builds of the request path exactly.
#
#   bash bench/callgrind.sh                  # N1=1000 N2=3000, the production profile
#   PANIC=unwind bash bench/callgrind.sh     # the same profile built with panic = "unwind"
#
# For each proxy — the Switchyard table (bench_proxy), the same routing written by hand
# in the Pingora guide's style (handwritten), and nginx (`master_process off`,
# `daemon off`) — and for N = N1 and N = N2: start the proxy alone under
# `valgrind --tool=callgrind` (one worker), send N sequential requests over one
# keep-alive connection from one client (curl; `Host: rr.test`, round robin over three
# nginx backends that run outside valgrind), stop the proxy with SIGINT and sum the
# "Collected" lines of its callgrind log. Instructions per request = (I_N2 - I_N1) /
# (N2 - N1): start-up and shutdown cancel out. It counts no kernel time; the CPU-time
# ratios of bench/e2e.sh stay the headline. Installs valgrind and nginx when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh

N1=${N1:-1000}
N2=${N2:-3000}
HOST=${HOST:-rr.test}
START_TRIES=${START_TRIES:-2400} # 50 ms each: a proxy starts slowly under valgrind

need valgrind:valgrind nginx:nginx-light curl:curl
build_proxies
start_backends
nginx_proxy_conf 'master_process off;' 'daemon off;'

# Sends N sequential requests over one connection; fails unless all N were answered 200
# over exactly one TCP connection.
requests() { # port n
  local out ok conns
  out=$(curl -s --max-time 600 -H "Host: $HOST" -o /dev/null -w '\n%{http_code} %{num_connects}\n' \
    "http://127.0.0.1:$1/callgrind/[1-$2]")
  ok=$(echo "$out" | awk '$1 == 200 { n++ } END { print n + 0 }')
  conns=$(echo "$out" | awk '$1 ~ /^[0-9][0-9][0-9]$/ { c += $2 } END { print c + 0 }')
  if [ "$ok" != "$2" ] || [ "$conns" != 1 ]; then
    echo "callgrind: $ok of $2 requests answered 200, over $conns connections" >&2
    return 1
  fi
}

# Sets COUNT to the instructions of one run of a proxy under callgrind that served N
# requests (not in a subshell, so `start`/`stop` keep the PID list the cleanup uses).
instructions() { # name port signal n [VAR=value...] command...
  local name=$1 port=$2 sig=$3 n=$4 vars=(); shift 4
  while [[ $1 == *=* ]]; do vars+=("$1"); shift; done
  start "$name.$n" "$port" "${vars[@]}" valgrind --tool=callgrind \
    --callgrind-out-file="$WORK/$name.$n.%p.out" --log-file="$WORK/$name.$n.%p.vg" "$@"
  requests "$port" "$n"
  stop "$PID" "$sig"
  COUNT=$(awk '/Collected :/ { s += $NF } END { printf "%d\n", s }' "$WORK/$name.$n".*.vg)
  if [ "$COUNT" -eq 0 ]; then
    echo "callgrind: no count from $name (log: $(cat "$WORK/$name.$n".*.vg))" >&2
    return 1
  fi
}

declare -A PER TOTAL1 TOTAL2
measure() { # name port signal [VAR=value...] command...
  local name=$1 port=$2 sig=$3; shift 3
  instructions "$name" "$port" "$sig" "$N1" "$@"; TOTAL1[$name]=$COUNT
  instructions "$name" "$port" "$sig" "$N2" "$@"; TOTAL2[$name]=$COUNT
  PER[$name]=$(( (TOTAL2[$name] - TOTAL1[$name]) / (N2 - N1) ))
  echo "callgrind: $name: ${TOTAL1[$name]} instructions for $N1 requests, ${TOTAL2[$name]} for $N2" >&2
}

# --keepalive-requests: as the nginx configuration (keepalive_requests 10000000), so every
# proxy serves all the requests over one connection.
# EXTRA="hooks plain" also measures the table with a hooks type left at its defaults and
# without forwarding headers (SWITCHYARD_BENCH_TABLE); BEFORE=PATH a bench_proxy built from
# another commit, as `switchyard-before`.
NAMES="switchyard handwritten nginx"
measure switchyard 6191 INT RUST_LOG=error "$BIN/bench_proxy" --listen 127.0.0.1:6191 --threads 1 --keepalive-requests 10000000
for table in ${EXTRA:-}; do
  measure "switchyard-$table" 6191 INT SWITCHYARD_BENCH_TABLE="$table" RUST_LOG=error "$BIN/bench_proxy" --listen 127.0.0.1:6191 --threads 1 --keepalive-requests 10000000
  NAMES="$NAMES switchyard-$table"
done
if [ -n "${BEFORE:-}" ]; then
  measure switchyard-before 6191 INT RUST_LOG=error "$BEFORE" --listen 127.0.0.1:6191 --threads 1 --keepalive-requests 10000000
  NAMES="$NAMES switchyard-before"
fi
measure handwritten 6190 INT LISTEN=127.0.0.1:6190 RUST_LOG=error "$BIN/handwritten"
measure nginx 6192 INT "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"

echo
echo "$(date -u +%Y-%m-%d) $(valgrind --version); Pingora proxies: $BUILD, mimalloc, one worker;"
echo "$N1 and $N2 sequential keep-alive requests (Host: $HOST) from one client"
echo
echo "| proxy | instructions ($N1 req) | instructions ($N2 req) | instructions / request | × nginx | × hand-written |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for name in $NAMES; do
  awk -v n="$name" -v a="${TOTAL1[$name]}" -v b="${TOTAL2[$name]}" -v p="${PER[$name]}" \
    -v ng="${PER[nginx]}" -v hw="${PER[handwritten]}" '
    function group(x,   s) { s = sprintf("%d", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
    BEGIN { printf "| %s | %s | %s | %s | %.2f | %.2f |\n", n, group(a), group(b), group(p), p / ng, p / hw }'
done
