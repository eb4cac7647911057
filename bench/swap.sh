#!/usr/bin/env bash
# Membership swaps under load: what backends given by DNS name cost per request, and
# whether swapping a cluster's members (one backend leaves and one joins) fails a request
# or moves p99 latency, beside the same proxy with addresses and nginx, in one run, on
# loopback only.
#
#   bash bench/swap.sh           # DURATION=10 WARMUP=2 RATE=10000 ROUNDS=3 FLIP_MS=1000
#   ROUNDS=1 DURATION=3 bash bench/swap.sh                 # a smoke run
#   SCENARIOS=rr RATE=5000 bash bench/swap.sh               # round robin only, lower rate
#
# Four nginx backends (`return 200 "ok"`) on 127.0.0.11-14, all on port 18081 (the
# addresses of one name share one port), and a DNS server (bench/src/bin/dns_flipper.rs:
# switchyard::dns::DnsServer, hickory-server on an ephemeral port of 127.0.0.1), on the
# load CPU with oha; the proxy under test alone on CPU 0 with one worker. Four
# configurations, each measured once per round, with the same requests (e2e.sh's `rr`,
# Host: rr.test, round robin; and `hash`, Host: hash.test with one session_id cookie,
# consistent hashing), at a fixed rate (oha -q RATE --latency-correction -z DURATION
# -c CONNS, after WARMUP seconds of the same load unmeasured):
#
#   nginx                 nginx, static upstreams 127.0.0.11-13:18081 (e2e.sh's
#                         configuration, keepalive 64)
#   switchyard-addrs      bench_proxy's default table, every cluster pointed at the same
#                         backends by address (--backend rr=127.0.0.11:18081,...)
#   switchyard-named      SWITCHYARD_BENCH_TABLE=named: the clusters given by name
#                         (rr.sy.test:18081, ..., resolve: { every: 1s }), --dns the
#                         flipper, records held at {11,12,13}
#   switchyard-swapping   the same, with rr.sy.test and sticky.sy.test flipped every
#                         FLIP_MS between {11,12,13} and {12,13,14}: one backend leaves
#                         and one joins per swap, all keep running
#
# For each: requests answered, non-2xx answers, errors (oha's, except those of requests
# still in flight when -z ends), p50/p99/p99.9 from when each request was due, and CPU µs
# per request (utime + stime of the proxy's processes from /proc/PID/stat over the
# measured run ÷ answers, as e2e.sh). The proxy logs `backends now ...` on every swap
# (RUST_LOG=error,proxy_runtime::discovery=info, the same for all three Switchyard
# configurations); the report counts those lines and the flipper's flips inside the
# measured windows. It prints medians over the rounds, then p99 swapping ÷ named, CPU
# named ÷ addrs and named ÷ nginx (and swapping ÷ named), per round too, and exits 1
# when the swapping run failed a request or logged no swap. Every process it starts is
# stopped when it exits; nothing else is touched. Installs nginx from Debian and oha
# (cargo install oha --locked) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
RATE=${RATE:-10000}
ROUNDS=${ROUNDS:-3}
FLIP_MS=${FLIP_MS:-1000}
SCENARIOS=${SCENARIOS:-rr hash}
CONFIGS="nginx switchyard-addrs switchyard-named switchyard-swapping"
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

. bench/common.sh

need nginx:nginx-light python3:python3
command -v oha >/dev/null 2>&1 || { echo "swap: installing oha" >&2; cargo install oha --locked >&2; }
build_proxies bench_proxy dns_flipper

# Ports of their own (not e2e.sh's or tls.sh's): each must be free.
SY_ADDRS=6391 SY_NAMED=6392 NG=6393
BACKEND_PORT=18081
BACKEND_IPS="127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14"
listens() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
for port in $SY_ADDRS $SY_NAMED $NG; do
  ! listens 127.0.0.1 "$port" || { echo "swap: something already listens on 127.0.0.1:$port (another benchmark?); stop it first" >&2; exit 1; }
done
for ip in $BACKEND_IPS; do
  ! listens "$ip" "$BACKEND_PORT" || { echo "swap: something already listens on $ip:$BACKEND_PORT; stop it first" >&2; exit 1; }
done

# --- backends: one nginx, four servers on 127.0.0.11-14:18081, on the load CPU ----------
mkdir -p "$WORK/backends"
{ nginx_head "$WORK/backends"
  echo "http {"
  echo "  access_log off;"
  echo "  keepalive_requests 10000000;"
  for ip in $BACKEND_IPS; do
    echo "  server { listen $ip:$BACKEND_PORT; location / { return 200 \"ok\"; } }"
  done
  echo "}"
} > "$WORK/backends/nginx.conf"
taskset -c "$LOAD_CPU" "$NGINX" -p "$WORK/backends" -c "$WORK/backends/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for ip in $BACKEND_IPS; do
  for i in $(seq 1 200); do listens "$ip" "$BACKEND_PORT" && break; sleep 0.05; done
  listens "$ip" "$BACKEND_PORT" || { echo "swap: the backend $ip:$BACKEND_PORT did not start" >&2; exit 1; }
done

# --- nginx as the proxy: e2e.sh's configuration on port $NG, upstreams on 127.0.0.11-13 -
nginx_proxy_conf
sed -i -e "s/127\.0\.0\.1:18081/127.0.0.11:$BACKEND_PORT/g" -e "s/127\.0\.0\.1:18082/127.0.0.12:$BACKEND_PORT/g" \
  -e "s/127\.0\.0\.1:18083/127.0.0.13:$BACKEND_PORT/g" -e "s/127\.0\.0\.1:6192/127.0.0.1:$NG/g" "$WORK/nginx/nginx.conf"

# --- the Switchyard configurations -----------------------------------------------------
SET_A=127.0.0.11,127.0.0.12,127.0.0.13
SET_B=127.0.0.12,127.0.0.13,127.0.0.14
# The records of the named table's four clusters; rr and sticky have two sets (flipped
# unless --hold), api and web one. Set A and the others match the addresses of
# switchyard-addrs and nginx.
RECORDS=("rr.sy.test=$SET_A/$SET_B" "sticky.sy.test=$SET_A/$SET_B"
  "api.sy.test=127.0.0.11,127.0.0.12" "web.sy.test=127.0.0.12,127.0.0.13")
BACKENDS=(--backend "rr=127.0.0.11:$BACKEND_PORT,127.0.0.12:$BACKEND_PORT,127.0.0.13:$BACKEND_PORT"
  --backend "sticky=127.0.0.11:$BACKEND_PORT,127.0.0.12:$BACKEND_PORT,127.0.0.13:$BACKEND_PORT"
  --backend "api=127.0.0.11:$BACKEND_PORT,127.0.0.12:$BACKEND_PORT"
  --backend "web=127.0.0.12:$BACKEND_PORT,127.0.0.13:$BACKEND_PORT")
SY_LOG="error,proxy_runtime::discovery=info"
SY_ARGS=(--threads 1 --keepalive-requests 10000000)
cluster_of() { case $1 in rr) echo rr ;; hash) echo sticky ;; esac; }

# Starts dns_flipper on the load CPU (its arguments: --hold or nothing); sets DNS_PID and
# DNS_ADDR. It stops by itself after the time one configuration takes, with a margin.
start_dns() { # name [--hold]
  local name=$1 i n_sc; shift
  n_sc=$(echo $SCENARIOS | wc -w)
  taskset -c "$LOAD_CPU" env --default-signal=INT "$BIN/dns_flipper" --flip-ms "$FLIP_MS" \
    --for $((n_sc * (WARMUP + DURATION) + 60)) "$@" "${RECORDS[@]}" \
    > "$WORK/$name.addr" 2> "$WORK/$name.log" &
  DNS_PID=$!
  PIDS+=("$DNS_PID")
  for i in $(seq 1 200); do [ -s "$WORK/$name.addr" ] && break; sleep 0.05; done
  DNS_ADDR=$(head -1 "$WORK/$name.addr")
  [ -n "$DNS_ADDR" ] || { echo "swap: dns_flipper did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
}

# One oha run at a fixed rate; prints `answered=N achieved_rps=R p50_us= p99_us= p999_us=
# non2xx= errors=`. Requests still in flight when -z ends are aborted and reported by oha
# as errors: not counted here (they were never answered, nor failed).
oha_run() { # port scenario seconds
  local port=$1 scenario=$2 secs=$3 target
  case $scenario in
  rr) target=(-H "Host: rr.test" "http://127.0.0.1:$port/") ;;
  hash) target=(-H "Host: hash.test" -H "Cookie: session_id=4f9c2a7e1b" "http://127.0.0.1:$port/") ;;
  *) echo "swap: unknown scenario $scenario (rr, hash)" >&2; exit 2 ;;
  esac
  taskset -c "$LOAD_CPU" oha --no-tui --output-format json --worker-threads 1 -c "$CONNS" \
    -q "$RATE" --latency-correction -z "${secs}s" "${target[@]}" | python3 -c '
import json, sys
r = json.load(sys.stdin)
codes = r["statusCodeDistribution"]
done = sum(codes.values())
ok = sum(n for c, n in codes.items() if str(c).startswith("2"))
failed = {e: n for e, n in r["errorDistribution"].items() if "deadline" not in e}
for e, n in failed.items():
    print("swap: oha error x%d: %s" % (n, e), file=sys.stderr)
for c, n in codes.items():
    if not str(c).startswith("2"):
        print("swap: status %s x%d" % (c, n), file=sys.stderr)
lat = r["latencyPercentiles"]
us = lambda k: "-" if lat.get(k) is None else "%.0f" % (lat[k] * 1e6)
print("answered=%d achieved_rps=%.0f p50_us=%s p99_us=%s p999_us=%s non2xx=%d errors=%d"
      % (done, done / r["summary"]["total"], us("p50"), us("p99"), us("p99.9"), done - ok,
         sum(failed.values())))'
}

count() { grep -c -- "$1" "$2" 2>/dev/null || true; } # pattern file -> matching lines

RESULTS="$WORK/swap.tsv" # round config scenario rps p50 p99 p999 cpu answered non2xx errors swaps flips
: > "$RESULTS"

# Every scenario against the running proxy: WARMUP s of the load unmeasured, then
# DURATION s measured (CPU ticks, swaps logged and flips made counted over that window).
measure() { # round config port pid dns-log-or-empty
  local round=$1 config=$2 port=$3 pid=$4 dnslog=${5:-} scenario out t0 t1 s0 s1 f0 f1 pattern
  for scenario in $SCENARIOS; do
    oha_run "$port" "$scenario" "$WARMUP" > /dev/null
    pattern="cluster \`$(cluster_of "$scenario")\`: backends now"
    s0=$(count "$pattern" "$WORK/$config.log"); f0=$( [ -n "$dnslog" ] && count ": flip " "$dnslog" || echo 0)
    t0=$(ticks $(family "$pid"))
    out=$(oha_run "$port" "$scenario" "$DURATION")
    t1=$(ticks $(family "$pid"))
    s1=$(count "$pattern" "$WORK/$config.log"); f1=$( [ -n "$dnslog" ] && count ": flip " "$dnslog" || echo 0)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$config" "$scenario" \
      "$(kv achieved_rps "$out")" "$(kv p50_us "$out")" "$(kv p99_us "$out")" "$(kv p999_us "$out")" \
      "$(cpu_per "$t0" "$t1" "$(kv answered "$out")")" "$(kv answered "$out")" "$(kv non2xx "$out")" \
      "$(kv errors "$out")" $((s1 - s0)) $((f1 - f0)) >> "$RESULTS"
    echo "swap: round $round $config $scenario: $out swaps=$((s1 - s0)) flips=$((f1 - f0))" >&2
  done
}

for round in $(seq 1 "$ROUNDS"); do
  for config in $CONFIGS; do
    case $config in
    nginx)
      start nginx "$NG" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
      measure "$round" nginx "$NG" "$PID"
      stop "$PID" TERM ;;
    switchyard-addrs)
      start "$config" "$SY_ADDRS" env RUST_LOG="$SY_LOG" "$BIN/bench_proxy" --listen "127.0.0.1:$SY_ADDRS" "${SY_ARGS[@]}" "${BACKENDS[@]}"
      measure "$round" "$config" "$SY_ADDRS" "$PID"
      stop "$PID" INT ;;
    switchyard-named | switchyard-swapping)
      if [ "$config" = switchyard-named ]; then start_dns "dns-$config" --hold; else start_dns "dns-$config"; fi
      start "$config" "$SY_NAMED" env SWITCHYARD_BENCH_TABLE=named RUST_LOG="$SY_LOG" "$BIN/bench_proxy" \
        --listen "127.0.0.1:$SY_NAMED" --dns "$DNS_ADDR" "${SY_ARGS[@]}"
      measure "$round" "$config" "$SY_NAMED" "$PID" "$WORK/dns-$config.log"
      stop "$PID" INT
      stop "$DNS_PID" INT ;;
    esac
    # The proxy's log of this configuration and round, kept for the checks below.
    cat "$WORK/$config.log" >> "$WORK/$config.all.log"
  done
done

# --- report ------------------------------------------------------------------------------
echo
echo "$(date -u +%Y-%m-%d) $(nproc) CPUs, $(uname -r); proxy alone on CPU $PROXY_CPU (one worker), oha, the backends and the DNS server on CPU $LOAD_CPU; $ROUNDS rounds, median of each; Pingora proxies: $BUILD; oha $(oha --version | awk '{print $2}')"
echo
echo "Fixed rate (oha -q $RATE --latency-correction -z ${DURATION}s -c $CONNS after ${WARMUP}s unmeasured; records flipped every $FLIP_MS ms in switchyard-swapping):"
echo
echo "| proxy | scenario | achieved req/s | p50 | p99 | p99.9 | CPU µs/req | CPU × nginx | CPU × switchyard-addrs |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
cut -f1-8 "$RESULTS" > "$WORK/swap.cols"
report "$WORK/swap.cols" "rps,us,us,us,cpu" "nginx switchyard-addrs"
echo
echo "Summed over the $ROUNDS rounds' measured windows (swaps: \`backends now\` lines the proxy logged for the scenario's cluster; flips: record changes the DNS server made):"
echo
echo "| proxy | scenario | requests answered | non-2xx | errors | swaps logged | flips |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '{ k = $2 SUBSEP $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k; name[k] = $2; sc[k] = $3 }
    a[k] += $9; x[k] += $10; e[k] += $11; s[k] += $12; f[k] += $13 }
  END { for (i = 1; i <= n; i++) { k = order[i]; printf "| %s | %s | %d | %d | %d | %d | %d |\n", name[k], sc[k], a[k], x[k], e[k], s[k], f[k] } }' "$RESULTS"
echo
echo "Ratios of the medians (per round in brackets):"
echo
awk -F'\t' -v scenarios="$SCENARIOS" '
  function median(s,   n, v, i, j, t) {
    n = split(s, v, " ")
    for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  function ratio(what, num, den, sc,   r, line, m) {
    m = median(vals[den, sc, what])
    m = (m > 0) ? sprintf("%.2f", median(vals[num, sc, what]) / m) : "-"
    line = sprintf("  %-4s %s: %s  [", sc, label[what] " " short[num] " ÷ " short[den], m)
    for (r = 1; r <= rounds; r++) line = line ((r > 1) ? " " : "") ((byround[den, sc, what, r] > 0) ? sprintf("%.2f", byround[num, sc, what, r] / byround[den, sc, what, r]) : "-")
    print line "]"
  }
  { for (c = 6; c <= 8; c += 2) { vals[$2, $3, c] = vals[$2, $3, c] " " $c; byround[$2, $3, c, $1] = $c }
    if ($1 > rounds) rounds = $1 }
  END {
    label[6] = "p99"; label[8] = "CPU"
    short["nginx"] = "nginx"; short["switchyard-addrs"] = "(a) addrs"; short["switchyard-named"] = "(b) named"; short["switchyard-swapping"] = "(c) swapping"
    n = split(scenarios, sc, " ")
    for (i = 1; i <= n; i++) {
      ratio(6, "switchyard-swapping", "switchyard-named", sc[i])
      ratio(8, "switchyard-named", "switchyard-addrs", sc[i])
      ratio(8, "switchyard-named", "nginx", sc[i])
      ratio(8, "switchyard-swapping", "switchyard-named", sc[i])
      ratio(6, "switchyard-named", "switchyard-addrs", sc[i])
    }
  }' "$RESULTS"
echo
# The claim: no failed request while swapping, and swaps did happen.
awk -F'\t' '$2 == "switchyard-swapping" { s += $12 } END { exit !(s > 0) }' "$RESULTS" \
  && SWAPPED=1 || SWAPPED=0
FAILED=$(awk -F'\t' '$2 == "switchyard-swapping" { f += $10 + $11 } END { print f + 0 }' "$RESULTS")
TOTAL_SWAPS=$(count "backends now" "$WORK/switchyard-swapping.all.log")
echo "switchyard-swapping: $FAILED failed requests (non-2xx + errors) in the measured windows; the proxy logged $TOTAL_SWAPS swaps in all (rr and sticky, warm-ups included), e.g.:"
grep -m 2 -- "backends now" "$WORK/switchyard-swapping.all.log" | sed 's/^/  /' || true
STEADY=$(cat "$WORK/switchyard-named.all.log" "$WORK/switchyard-addrs.all.log" | count "backends now" /dev/stdin)
[ "$STEADY" = 0 ] || echo "note: the steady configurations logged $STEADY swaps (expected none)"
if [ "$FAILED" != 0 ] || [ "$SWAPPED" != 1 ]; then
  echo "swap: CHECK FAILED: the swapping run must fail no request and log at least one swap" >&2
  exit 1
fi
