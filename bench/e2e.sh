#!/usr/bin/env bash
# End-to-end benchmark: Switchyard beside a hand-written Pingora proxy, nginx and HAProxy,
# and a direct connection, in one run, on loopback only.
#
#   bash bench/e2e.sh            # DURATION=10 CONNS=32 RATE=10000 ROUNDS=3 by default
#   DURATION=6 ROUNDS=3 bash bench/e2e.sh
#   PROXIES="nginx switchyard" DURATION=5 ROUNDS=2 bash bench/e2e.sh   # fewer proxies
#   PROXIES="nginx nginx-xff pingora-handwritten switchyard switchyard-hooks switchyard-plain" \
#     bash bench/e2e.sh   # the cost of hooks and of forwarding headers, beside nginx's
#   PROXIES="nginx nginx-log switchyard switchyard-observed" bash bench/e2e.sh
#                         # the cost of metrics and the access log, beside nginx's access_log
#   PROXIES="nginx switchyard switchyard-before" BEFORE=PATH bash bench/e2e.sh
#                         # this build beside a bench_proxy built from an earlier commit
#
# Each round measures every proxy once (closed loop, then fixed rate); the tables report
# the median over the rounds, so that a slow spell of the machine does not land on one
# proxy only, and the Switchyard / hand-written ratio of every round is printed too.
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
# Then the same at a fixed offered rate (RATE req/s, oha `-q RATE --latency-correction`,
# open loop: latency counted from when each request was due, so a stall is not hidden by
# the generator waiting for it), which compares CPU per request at equal load, and last the
# allocations per proxied request of the two Pingora proxies (counting allocator, two
# runs of different lengths, the difference divided by the difference in requests).
# Installs oha with `cargo install oha --locked` when missing.
#
# The Pingora proxies are built with `--profile production` (bench/README.md);
# PANIC=unwind bash bench/e2e.sh measures them built with panic = "unwind" instead.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
RATE=${RATE:-10000}
ROUNDS=${ROUNDS:-3}
# Which proxies each round measures, in this order (nginx is the reference of the ratios).
PROXIES=${PROXIES:-nginx haproxy pingora-handwritten switchyard}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

. bench/common.sh

need nginx:nginx-light haproxy:haproxy wrk:wrk python3:python3
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
command -v oha >/dev/null 2>&1 || { echo "e2e: installing oha" >&2; cargo install oha --locked >&2; }
build_proxies

# --- backends: one nginx, three servers, on the load CPU -------------------------------
start_backends

# --- the proxies under test --------------------------------------------------------------
nginx_proxy_conf
# nginx doing the forwarding work Switchyard does by default (X-Forwarded-For appended,
# -Proto and -Host set), on port 6194.
mkdir -p "$WORK/nginx-xff"
sed -e "s#$WORK/nginx/#$WORK/nginx-xff/#g" -e 's/6192/6194/g' \
  -e 's/proxy_set_header Connection "";/proxy_set_header Connection "";\n  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n  proxy_set_header X-Forwarded-Proto $scheme;\n  proxy_set_header X-Forwarded-Host $host;/' \
  "$WORK/nginx/nginx.conf" > "$WORK/nginx-xff/nginx.conf"
mkdir -p "$WORK/haproxy"
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

# nginx with its access log on (the default `combined` format, to a file), on port 6197.
mkdir -p "$WORK/nginx-log"
sed -e "s#$WORK/nginx/#$WORK/nginx-log/#g" -e 's/6192/6197/g' \
  -e "0,/access_log off;/s##access_log $WORK/nginx-log/access.log;#" \
  "$WORK/nginx/nginx.conf" > "$WORK/nginx-log/nginx.conf"

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

# ticks, family, to_us, kv, cpu_per (CPU time and wrk's figures) and report (the tables):
# bench/common.sh.
RESULTS="$WORK/closed.tsv"   # round proxy scenario req/s p50 p99 cpu errors
FIXED="$WORK/fixed.tsv"      # round proxy scenario req/s p50 p99 p99.9 cpu errors
: > "$RESULTS"
: > "$FIXED"
SCENARIOS="rr path host hash"

closed_loop() { # round name port pid-or-empty
  local round=$1 name=$2 port=$3 pid=${4:-} scenario out reqs t0 t1 cpu errors
  for scenario in $SCENARIOS; do
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$WORK/$scenario.lua" "http://127.0.0.1:$port/" >/dev/null
    t0=$( [ -n "$pid" ] && ticks $(family "$pid") || echo 0 )
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/$scenario.lua" "http://127.0.0.1:$port/")
    t1=$( [ -n "$pid" ] && ticks $(family "$pid") || echo 0 )
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    cpu=$( [ -n "$pid" ] && cpu_per "$t0" "$t1" "${reqs:-0}" || echo "-" )
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$scenario" \
      "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
      "$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")" \
      "$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")" "$cpu" "$errors" >> "$RESULTS"
    echo "e2e: round $round closed $name $scenario: $(tail -1 "$RESULTS" | cut -f4-)" >&2
  done
}

# One oha run against a scenario at a fixed rate; extra arguments say for how long (-z)
# or how many (-n). Prints `completed=N achieved_rps=R p50_us=.. p99_us=.. p999_us=..
# errors=E`. The scenarios as wrk's scripts send them, except that a request's Host and
# Cookie cannot vary within one oha run: path routing takes a random one of the three
# paths, host routing a random one of the two hosts (both resolved to the proxy by
# --connect-to, over the same kept-alive connections), and cookie hash sends one
# session_id (the same hashing work per request, always the same backend).
oha_run() { # port scenario oha-arguments...
  local port=$1 scenario=$2 target; shift 2
  case $scenario in
  rr) target=(-H "Host: rr.test" "http://127.0.0.1:$port/") ;;
  path)
    printf "http://127.0.0.1:$port%s\n" /api/users /static/app.js /index.html > "$WORK/path.urls"
    target=(-H "Host: path.test" --urls-from-file "$WORK/path.urls") ;;
  host)
    printf 'http://%s/\n' a.test b.test > "$WORK/host.urls"
    target=(--connect-to "a.test:80:127.0.0.1:$port" --connect-to "b.test:80:127.0.0.1:$port"
      --urls-from-file "$WORK/host.urls") ;;
  hash) target=(-H "Host: hash.test" -H "Cookie: session_id=4f9c2a7e1b" "http://127.0.0.1:$port/") ;;
  esac
  taskset -c "$LOAD_CPU" oha --no-tui --output-format json --worker-threads 1 -c "$CONNS" \
    "$@" "${target[@]}" | python3 -c '
import json, sys
r = json.load(sys.stdin)
codes = r["statusCodeDistribution"]
done = sum(codes.values())
# Requests still in flight when -z ends are aborted and reported as errors: not errors here.
errors = done - codes.get("200", 0) + sum(
    n for e, n in r["errorDistribution"].items() if "deadline" not in e)
lat = r["latencyPercentiles"]
us = lambda k: "-" if lat.get(k) is None else "%.0f" % (lat[k] * 1e6)
print("completed=%d achieved_rps=%.0f p50_us=%s p99_us=%s p999_us=%s errors=%d"
      % (done, done / r["summary"]["total"], us("p50"), us("p99"), us("p99.9"), errors))'
}

fixed_rate() { # round name port pid
  local round=$1 name=$2 port=$3 pid=$4 scenario out t0 t1
  for scenario in $SCENARIOS; do
    t0=$(ticks $(family "$pid"))
    out=$(oha_run "$port" "$scenario" -q "$RATE" --latency-correction -z "${DURATION}s")
    t1=$(ticks $(family "$pid"))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$scenario" "$(kv achieved_rps "$out")" \
      "$(kv p50_us "$out")" "$(kv p99_us "$out")" "$(kv p999_us "$out")" \
      "$(cpu_per "$t0" "$t1" "$(kv completed "$out")")" "$(kv errors "$out")" >> "$FIXED"
    echo "e2e: round $round fixed $RATE/s $name $scenario: $out" >&2
  done
}

measure() { # round name port signal command...
  local round=$1 name=$2 port=$3 sig=$4; shift 4
  start "$name" "$port" "$@"
  closed_loop "$round" "$name" "$port" "$PID"
  fixed_rate "$round" "$name" "$port" "$PID"
  stop "$PID" "$sig"
}

# Rounds: every proxy once per round, so a slow spell of this shared VM falls on all of
# them rather than on whichever ran then; the report takes the median over the rounds.
# Switchyard's --keepalive-requests matches nginx's configuration (keepalive_requests
# 10000000); the hand-written Pingora proxy has no limit.
for round in $(seq 1 "$ROUNDS"); do
  for proxy in $PROXIES; do
    case $proxy in
    nginx) measure "$round" nginx 6192 TERM "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' ;;
    haproxy) measure "$round" haproxy 6193 TERM "$HAPROXY" -f "$WORK/haproxy/haproxy.cfg" -db ;;
    pingora-handwritten) measure "$round" pingora-handwritten 6190 INT env LISTEN=127.0.0.1:6190 RUST_LOG=error "$BIN/handwritten" ;;
    switchyard) measure "$round" switchyard 6191 INT env RUST_LOG=error "$BIN/bench_proxy" --listen 127.0.0.1:6191 --threads 1 --keepalive-requests 10000000 ;;
    # The same table with a hooks type left at its defaults, and without forwarding headers.
    switchyard-hooks) measure "$round" switchyard-hooks 6195 INT env SWITCHYARD_BENCH_TABLE=hooks RUST_LOG=error "$BIN/bench_proxy" --listen 127.0.0.1:6195 --threads 1 --keepalive-requests 10000000 ;;
    switchyard-plain) measure "$round" switchyard-plain 6196 INT env SWITCHYARD_BENCH_TABLE=plain RUST_LOG=error "$BIN/bench_proxy" --listen 127.0.0.1:6196 --threads 1 --keepalive-requests 10000000 ;;
    # The default table with metrics recorded and served, and the access log to a file.
    switchyard-observed) measure "$round" switchyard-observed 6198 INT env RUST_LOG=error "$BIN/bench_proxy" --listen 127.0.0.1:6198 --threads 1 --keepalive-requests 10000000 --metrics 127.0.0.1:0 --access-log "$WORK/switchyard-access.log" ;;
    # BEFORE=PATH: a bench_proxy built from an earlier commit, as in callgrind.sh.
    switchyard-before) measure "$round" switchyard-before 6199 INT env RUST_LOG=error "${BEFORE:?switchyard-before needs BEFORE=PATH of a bench_proxy}" --listen 127.0.0.1:6199 --threads 1 --keepalive-requests 10000000 ;;
    nginx-log) measure "$round" nginx-log 6197 TERM "$NGINX" -p "$WORK/nginx-log" -c "$WORK/nginx-log/nginx.conf" -g 'daemon off;' ;;
    nginx-xff) measure "$round" nginx-xff 6194 TERM "$NGINX" -p "$WORK/nginx-xff" -c "$WORK/nginx-xff/nginx.conf" -g 'daemon off;' ;;
    *) echo "e2e: unknown proxy $proxy in PROXIES" >&2; exit 2 ;;
    esac
  done
done
closed_loop 1 direct 18081 ""

# --- allocations per proxied request -----------------------------------------------------
ALLOC_RATE=${ALLOC_RATE:-5000}
# Not in a subshell, so `start`/`stop` keep the PID list the cleanup uses. Sets COUNTED to
# "requests allocations".
allocs() { # name port seconds command...
  local name=$1 port=$2 secs=$3 out; shift 3
  start "$name" "$port" env SWITCHYARD_COUNT_ALLOCS=1 RUST_LOG=error "$@"
  out=$(oha_run "$port" rr -q "$ALLOC_RATE" -n $((ALLOC_RATE * secs))) || true
  stop "$PID" INT
  COUNTED="$(kv completed "$out") $(awk '/^allocations:/ { print $2 }' "$WORK/$name.log")"
}
per_request() { # name port command... -> sets PER_REQUEST ("-" when a run failed)
  local name=$1 port=$2 short; shift 2
  allocs "$name" "$port" 2 "$@"; short=$COUNTED
  allocs "$name" "$port" 6 "$@"
  PER_REQUEST=$(echo "$short $COUNTED" | awk 'NF == 4 && $3 > $1 { printf "%.1f", ($4 - $2) / ($3 - $1); next } { print "-" }')
}
per_request handwritten 6190 env LISTEN=127.0.0.1:6190 "$BIN/handwritten"; ALLOC_HAND=$PER_REQUEST
per_request switchyard 6191 "$BIN/bench_proxy" --listen 127.0.0.1:6191 --threads 1 --keepalive-requests 10000000; ALLOC_SY=$PER_REQUEST

# --- report ------------------------------------------------------------------------------
# Medians over the rounds of each (proxy, scenario), CPU ratios to nginx and to the
# hand-written proxy: report() in bench/common.sh.
echo
echo "$(date -u +%Y-%m-%d) $(nproc) CPUs, $(uname -r); proxy alone on CPU $PROXY_CPU (one worker), load generator and backends on CPU $LOAD_CPU; $ROUNDS rounds, median of each; Pingora proxies: $BUILD"
echo
echo "Closed loop (wrk -t1 -c$CONNS -d${DURATION}s):"
echo
echo "| proxy | scenario | req/s | p50 | p99 | CPU µs/req | CPU × nginx | CPU × hand-written |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
cut -f1-7 "$RESULTS" > "$WORK/closed.cols"
report "$WORK/closed.cols" "rps,us,us,cpu"
echo
echo "Fixed rate (oha -q $RATE --latency-correction -z ${DURATION}s -c $CONNS: open loop, latency from when each request was due):"
echo
echo "| proxy | scenario | achieved req/s | p50 | p99 | p99.9 | CPU µs/req | CPU × nginx | CPU × hand-written |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
cut -f1-8 "$FIXED" > "$WORK/fixed.cols"
report "$WORK/fixed.cols" "rps,us,us,us,cpu"
echo
echo "Allocations per proxied request (round robin, counting allocator): hand-written Pingora $ALLOC_HAND, Switchyard $ALLOC_SY"
echo
awk -F'\t' '$NF != "" && $NF != "0" { print "errors: round " $1 " " $2 " " $3 ": " $NF }' "$RESULTS" "$FIXED"
echo "Per round, CPU µs/req of Switchyard / hand-written (closed loop; fixed rate):"
for f in "$RESULTS" "$FIXED"; do
  awk -F'\t' '{ if ($2 == "pingora-handwritten") h[$1, $3] = $(NF - 1); if ($2 == "switchyard") s[$1, $3] = $(NF - 1); if ($1 > r) r = $1 }
    END { for (i = 1; i <= r; i++) { line = "  round " i ":"; split("rr path host hash", sc, " ")
      for (j = 1; j <= 4; j++) if (h[i, sc[j]] > 0) line = line sprintf(" %s %.2f", sc[j], s[i, sc[j]] / h[i, sc[j]]); print line } }' "$f"
done
