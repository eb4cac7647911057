#!/usr/bin/env bash
# End-to-end benchmark: Switchyard beside a hand-written Pingora proxy, nginx and HAProxy,
# and a direct connection, in one run, on loopback only.
#
#   bash bench/e2e.sh            # DURATION=10 CONNS=32 RATE=10000 by default
#   DURATION=5 bash bench/e2e.sh
#
# Three trivial nginx backends (`return 200 "ok"`) and wrk run on CPU 1; the proxy under
# test runs alone on CPU 0 with one worker. Four scenarios, chosen by the Host header:
# round robin over three backends, path routing, host routing, and consistent hashing on a
# `session_id` cookie. For each proxy and scenario it reports requests/s, p50 and p99
# latency (closed loop, wrk -c CONNS), and CPU time per request read from /proc/PID/stat
# (utime + stime of the proxy's processes, over the measured run), with ratios against
# nginx from the same run. Every process it starts is stopped when it exits; nothing else
# is touched. Installs nginx, haproxy and wrk from Debian when missing.
#
# Then the same at a fixed offered rate (RATE req/s, `examples/loadgen.rs`, open loop:
# latency counted from when each request was due, so a stall is not hidden by the
# generator waiting for it), which compares CPU per request at equal load, and last the
# allocations per proxied request of the two Pingora proxies (counting allocator, two
# runs of different lengths, the difference divided by the difference in requests).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
RATE=${RATE:-10000}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "e2e: installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

scripts/setup
cargo build --release --example bench_proxy --example handwritten --example loadgen >&2
TARGET=${CARGO_TARGET_DIR:-target}/release/examples

WORK=$(mktemp -d /tmp/switchyard-e2e.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { # port
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "e2e: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# --- backends: one nginx, three servers, on the load CPU -------------------------------
mkdir -p "$WORK/backends"
cat > "$WORK/backends/nginx.conf" <<EOF
worker_processes 1;
error_log $WORK/backends/error.log;
pid $WORK/backends/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:18081; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:18082; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:18083; location / { return 200 "ok"; } }
}
EOF
taskset -c "$LOAD_CPU" "$NGINX" -p "$WORK/backends" -c "$WORK/backends/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for p in 18081 18082 18083; do wait_port $p; done

# --- the proxies under test --------------------------------------------------------------
mkdir -p "$WORK/nginx" "$WORK/haproxy"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream rr { server 127.0.0.1:18081; server 127.0.0.1:18082; server 127.0.0.1:18083; keepalive 64; }
  upstream api { server 127.0.0.1:18081; server 127.0.0.1:18082; keepalive 64; }
  upstream web { server 127.0.0.1:18082; server 127.0.0.1:18083; keepalive 64; }
  upstream sticky { hash \$cookie_session_id consistent; server 127.0.0.1:18081; server 127.0.0.1:18082; server 127.0.0.1:18083; keepalive 64; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  server { listen 127.0.0.1:6192 default_server; location / { proxy_pass http://rr; } }
  server { listen 127.0.0.1:6192; server_name rr.test; location / { proxy_pass http://rr; } }
  server { listen 127.0.0.1:6192; server_name path.test;
           location /api/ { proxy_pass http://api; }
           location /static/ { proxy_pass http://rr; }
           location / { proxy_pass http://web; } }
  server { listen 127.0.0.1:6192; server_name a.test; location / { proxy_pass http://api; } }
  server { listen 127.0.0.1:6192; server_name b.test; location / { proxy_pass http://web; } }
  server { listen 127.0.0.1:6192; server_name hash.test; location / { proxy_pass http://sticky; } }
}
EOF
cat > "$WORK/haproxy/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:6193
  acl h_rr hdr(host) -i rr.test
  acl h_path hdr(host) -i path.test
  acl h_a hdr(host) -i a.test
  acl h_b hdr(host) -i b.test
  acl h_hash hdr(host) -i hash.test
  acl p_api path_beg /api/
  acl p_static path_beg /static/
  use_backend api if h_path p_api
  use_backend rr if h_path p_static
  use_backend web if h_path
  use_backend rr if h_rr
  use_backend api if h_a
  use_backend web if h_b
  use_backend sticky if h_hash
  default_backend rr
backend rr
  balance roundrobin
  server s1 127.0.0.1:18081
  server s2 127.0.0.1:18082
  server s3 127.0.0.1:18083
backend api
  balance roundrobin
  server s1 127.0.0.1:18081
  server s2 127.0.0.1:18082
backend web
  balance roundrobin
  server s2 127.0.0.1:18082
  server s3 127.0.0.1:18083
backend sticky
  balance hash req.cook(session_id)
  hash-type consistent
  server s1 127.0.0.1:18081
  server s2 127.0.0.1:18082
  server s3 127.0.0.1:18083
EOF

# --- wrk scenarios -----------------------------------------------------------------------
cat > "$WORK/rr.lua" <<'EOF'
wrk.headers["Host"] = "rr.test"
EOF
cat > "$WORK/path.lua" <<'EOF'
wrk.headers["Host"] = "path.test"
local paths = {"/api/users", "/static/app.js", "/index.html"}
local i = 0
request = function()
  i = i % 3 + 1
  return wrk.format(nil, paths[i])
end
EOF
cat > "$WORK/host.lua" <<'EOF'
local hosts = {"a.test", "b.test"}
local i = 0
request = function()
  i = i % 2 + 1
  return wrk.format(nil, "/", {["Host"] = hosts[i]})
end
EOF
cat > "$WORK/hash.lua" <<'EOF'
wrk.headers["Host"] = "hash.test"
request = function()
  return wrk.format(nil, "/", {["Cookie"] = "session_id=" .. math.random(1, 100000)})
end
EOF

CLK_TCK=$(getconf CLK_TCK)
ticks() { # pids... -> utime+stime of all, in clock ticks
  local total=0 pid stat fields
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a fields <<< "${stat##*) }"
    # After the command name: state is field 3 of stat(5), utime 14, stime 15.
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
family() { # pid -> pid and its children
  echo "$1" $(pgrep -P "$1" || true)
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
run_proxy() { # name port pid-or-empty
  local name=$1 port=$2 pid=${3:-} scenario out reqs rps p50 p99 t0 t1 cpu
  for scenario in rr path host hash; do
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$WORK/$scenario.lua" "http://127.0.0.1:$port/" >/dev/null
    t0=$( [ -n "$pid" ] && ticks $(family "$pid") || echo 0 )
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/$scenario.lua" "http://127.0.0.1:$port/")
    t1=$( [ -n "$pid" ] && ticks $(family "$pid") || echo 0 )
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    if [ -n "$pid" ] && [ "${reqs:-0}" -gt 0 ]; then
      cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    else
      cpu="-"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$scenario" "$rps" "$p50" "$p99" "$cpu" "$errors" >> "$RESULTS"
    echo "e2e: $name $scenario: $rps req/s, p50 $p50, p99 $p99, $cpu us CPU/request $errors" >&2
  done
}

start() { # name port command... ; sets PID
  local name=$1 port=$2; shift 2
  taskset -c "$PROXY_CPU" "$@" > "$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_port "$port"
}

# Pingora takes SIGINT as a fast shutdown (SIGTERM makes it wait out its grace period);
# nginx and HAProxy take SIGTERM (a background job of a script ignores SIGINT).
stop() { kill "-${2:-TERM}" "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

start nginx 6192 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
run_proxy nginx 6192 "$PID"; stop "$PID"
start haproxy 6193 "$HAPROXY" -f "$WORK/haproxy/haproxy.cfg" -db
run_proxy haproxy 6193 "$PID"; stop "$PID"
start handwritten 6190 env LISTEN=127.0.0.1:6190 RUST_LOG=error "$TARGET/handwritten"
run_proxy pingora-handwritten 6190 "$PID"; stop "$PID" INT
start switchyard 6191 env RUST_LOG=error "$TARGET/bench_proxy" --listen 127.0.0.1:6191 --threads 1
run_proxy switchyard 6191 "$PID"; stop "$PID" INT
run_proxy direct 18081 ""

# --- the same at a fixed rate ------------------------------------------------------------
FIXED="$WORK/fixed.tsv"
: > "$FIXED"
run_fixed() { # name port pid
  local name=$1 port=$2 pid=$3 scenario out t0 t1 done_ cpu
  for scenario in rr path host hash; do
    t0=$(ticks $(family "$pid"))
    out=$(taskset -c "$LOAD_CPU" "$TARGET/loadgen" --addr "127.0.0.1:$port" --scenario "$scenario" \
      --rate "$RATE" --duration "$DURATION" --conns "$CONNS" --warmup 0)
    t1=$(ticks $(family "$pid"))
    done_=$(kv completed "$out")
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$done_" 'BEGIN { printf "%.1f", (n > 0) ? d / hz * 1e6 / n : 0 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$scenario" "$(kv achieved_rps "$out")" \
      "$(kv p50_us "$out")" "$(kv p99_us "$out")" "$(kv p999_us "$out")" "$cpu" "$(kv errors "$out")" >> "$FIXED"
    echo "e2e: fixed $RATE/s $name $scenario: $out cpu_us=$cpu" >&2
  done
}
kv() { # key line -> value
  echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'
}
# CPU per request over the whole run, warm-up included: warm each proxy first.
warm() { taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$WORK/rr.lua" "http://127.0.0.1:$1/" >/dev/null; }

start nginx 6192 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
warm 6192; run_fixed nginx 6192 "$PID"; stop "$PID"
start haproxy 6193 "$HAPROXY" -f "$WORK/haproxy/haproxy.cfg" -db
warm 6193; run_fixed haproxy 6193 "$PID"; stop "$PID"
start handwritten 6190 env LISTEN=127.0.0.1:6190 RUST_LOG=error "$TARGET/handwritten"
warm 6190; run_fixed pingora-handwritten 6190 "$PID"; stop "$PID" INT
start switchyard 6191 env RUST_LOG=error "$TARGET/bench_proxy" --listen 127.0.0.1:6191 --threads 1
warm 6191; run_fixed switchyard 6191 "$PID"; stop "$PID" INT

# --- allocations per proxied request -----------------------------------------------------
ALLOC_RATE=${ALLOC_RATE:-5000}
allocs() { # name port seconds command... -> "requests allocations"
  local name=$1 port=$2 secs=$3 out n a; shift 3
  start "$name" "$port" env SWITCHYARD_COUNT_ALLOCS=1 RUST_LOG=error "$@"
  out=$(taskset -c "$LOAD_CPU" "$TARGET/loadgen" --addr "127.0.0.1:$port" --scenario rr \
    --rate "$ALLOC_RATE" --duration "$secs" --conns "$CONNS" --warmup 0)
  stop "$PID" INT
  n=$(kv sent "$out")
  a=$(awk '/^allocations:/ { print $2 }' "$WORK/$name.log")
  echo "$n ${a:-0}"
}
per_request() { # name port command...
  local name=$1 port=$2 short long; shift 2
  short=$(allocs "$name" "$port" 2 "$@")
  long=$(allocs "$name" "$port" 6 "$@")
  echo "$short $long" | awk '{ printf "%.1f", ($4 - $2) / ($3 - $1) }'
}
ALLOC_HAND=$(per_request handwritten 6190 env LISTEN=127.0.0.1:6190 "$TARGET/handwritten")
ALLOC_SY=$(per_request switchyard 6191 "$TARGET/bench_proxy" --listen 127.0.0.1:6191 --threads 1)

# --- report ------------------------------------------------------------------------------
echo
echo "$(date -u +%Y-%m-%d) $(nproc) CPUs, $(uname -r); wrk -t1 -c$CONNS -d${DURATION}s; proxy on CPU $PROXY_CPU, wrk and backends on CPU $LOAD_CPU"
echo
echo "| proxy | scenario | req/s | p50 | p99 | CPU µs/req | req/s × nginx | CPU × nginx |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '
  { name[NR]=$1; sc[NR]=$2; rps[NR]=$3; p50[NR]=$4; p99[NR]=$5; cpu[NR]=$6; err[NR]=$7
    if ($1 == "nginx") { nrps[$2]=$3; ncpu[$2]=$6 } }
  END {
    for (i = 1; i <= NR; i++) {
      r = (nrps[sc[i]] > 0) ? sprintf("%.2f", rps[i] / nrps[sc[i]]) : "-"
      c = (cpu[i] != "-" && ncpu[sc[i]] > 0) ? sprintf("%.2f", cpu[i] / ncpu[sc[i]]) : "-"
      note = (err[i] != "") ? " (" err[i] ")" : ""
      printf "| %s | %s | %.0f | %s | %s | %s | %s | %s |%s\n", name[i], sc[i], rps[i], p50[i], p99[i], cpu[i], r, c, note
    }
  }' "$RESULTS"
echo
echo "Fixed rate: $RATE req/s offered (open loop, $CONNS connections, latency from when each request was due)"
echo
echo "| proxy | scenario | achieved req/s | p50 | p99 | p99.9 | CPU µs/req | CPU × nginx | CPU × hand-written |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '
  { name[NR]=$1; sc[NR]=$2; rps[NR]=$3; p50[NR]=$4; p99[NR]=$5; p999[NR]=$6; cpu[NR]=$7; err[NR]=$8
    if ($1 == "nginx") ncpu[$2]=$7
    if ($1 == "pingora-handwritten") hcpu[$2]=$7 }
  function us(v) { return (v >= 1000) ? sprintf("%.2f ms", v / 1000) : sprintf("%d µs", v) }
  END {
    for (i = 1; i <= NR; i++) {
      c = (ncpu[sc[i]] > 0) ? sprintf("%.2f", cpu[i] / ncpu[sc[i]]) : "-"
      h = (hcpu[sc[i]] > 0) ? sprintf("%.2f", cpu[i] / hcpu[sc[i]]) : "-"
      note = (err[i] != "" && err[i] != "0") ? " (" err[i] " errors)" : ""
      printf "| %s | %s | %.0f | %s | %s | %s | %s | %s | %s |%s\n", name[i], sc[i], rps[i], us(p50[i]), us(p99[i]), us(p999[i]), cpu[i], c, h, note
    }
  }' "$FIXED"
echo
echo "Allocations per proxied request (round robin, counting allocator): hand-written Pingora $ALLOC_HAND, Switchyard $ALLOC_SY"
