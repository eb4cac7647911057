#!/usr/bin/env bash
# TLS termination: what terminating TLS costs Switchyard beside nginx, in one run, on
# loopback only.
#
#   bash bench/tls.sh            # DURATION=10 CONNS=32 ROUNDS=3 by default
#   DURATION=6 ROUNDS=3 bash bench/tls.sh
#   SCENARIOS="http https handshake" bash bench/tls.sh   # without http-close
#
# e2e.sh's method and set-up: three trivial nginx backends (`return 200 "ok"`) and wrk on
# CPU 1, the proxy under test alone on CPU 0 with one worker (nginx `worker_processes 1`,
# e2e.sh's configuration; Switchyard `bench_proxy --threads 1 --keepalive-requests
# 10000000`, built with `--profile production`), wrk -t1 -c CONNS closed loop with
# `Host: rr.test` (e2e.sh's round-robin scenario), CPU per request = utime + stime of the
# proxy's processes from /proc/PID/stat over the measured run ÷ the requests wrk
# completed. Each proxy serves a plain and a TLS listener from the same process; both TLS
# listeners serve the same certificate, an ECDSA P-256 one made at start in the work
# directory, HTTP/1.1 only (nginx has no http2 here; Switchyard gets --no-h2), TLS 1.2
# and 1.3. Four scenarios, each run for WARMUP seconds and then measured for DURATION:
#
#   http        plaintext keep-alive: e2e.sh's `rr` (the baseline)
#   https       the same over TLS, keep-alive: handshakes only when wrk connects
#   http-close  plaintext, a new TCP connection per request (`Connection: close`)
#   handshake   a new TLS connection per request (`Connection: close`): one full
#               handshake per request, so req/s is handshakes/s and CPU µs/req is CPU µs
#               per handshake (and its request)
#
# http-close separates what a new connection costs from what its TLS handshake costs
# (handshake − http-close). The handshakes are full ones. nginx's session cache and
# tickets are off; Switchyard (rustls) resumes sessions, by the tickets it sends after
# every handshake, and wrk resumes them: it reconnects with the same SSL object, which
# SSL_clear() leaves holding the last session. So wrk runs the TLS scenarios with a shim
# preloaded (noresume.so, compiled here with cc: SSL_clear() after SSL_set_session(ssl,
# NULL)), and before measuring the script checks both against an nginx that does resume
# (session cache and tickets on, `$ssl_session_reused` logged): wrk alone should resume
# there (the check sees a resumption; it warns if not), wrk with the shim must not, or
# the run stops.
# wrk's latency starts when a request is written, after the connection's handshake: the
# handshake's own time is not in p50/p99.
#
# Each round measures every proxy once; the table reports the median over the rounds, and
# the Switchyard ÷ nginx CPU ratio of each TLS scenario beside that of its plaintext
# counterpart (https beside http, handshake beside http-close), so one sees whether TLS
# costs Switchyard the ratio to nginx that plaintext does. Every process it starts is
# stopped when it exits; nothing else is touched. Installs nginx, wrk, openssl and curl
# from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-3}
# Which proxies each round measures, in this order (nginx is the reference of the ratios).
PROXIES=${PROXIES:-nginx switchyard}
SCENARIOS=${SCENARIOS:-http https http-close handshake}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

. bench/common.sh

need nginx:nginx-light wrk:wrk openssl:openssl curl:curl
build_proxies bench_proxy   # scripts/setup in it installs a C compiler, for the shim below

# Ports of their own (not e2e.sh's), so that nothing else answers in a proxy's place:
# each must be free, and so must the backends' (bench_proxy's table names 18081-18083).
SY_HTTP=6281 SY_TLS=6481 NG_HTTP=6282 NG_TLS=6482 CHECK_TLS=6483
for port in 18081 18082 18083 $SY_HTTP $SY_TLS $NG_HTTP $NG_TLS $CHECK_TLS; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "tls: something already listens on 127.0.0.1:$port (another benchmark?); stop it first" >&2
    exit 1
  fi
done

# --- the certificate both proxies serve ---------------------------------------------------
CERT=$WORK/cert.pem
KEY=$WORK/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test -days 2 \
  -keyout "$KEY" -out "$CERT" 2> "$WORK/openssl-req.log" \
  || { cat "$WORK/openssl-req.log" >&2; exit 1; }

# --- backends: one nginx, three servers, on the load CPU ----------------------------------
start_backends

# --- the proxies under test ---------------------------------------------------------------
# nginx: e2e.sh's configuration, its plain listener moved to NG_HTTP, a TLS listener on
# NG_TLS beside it (the default server and rr.test), full handshakes only.
nginx_proxy_conf
sed -i \
  -e "s/listen 127.0.0.1:6192 default_server;/listen 127.0.0.1:$NG_HTTP default_server; listen 127.0.0.1:$NG_TLS ssl default_server;/" \
  -e "s/listen 127.0.0.1:6192; server_name rr.test;/listen 127.0.0.1:$NG_HTTP; listen 127.0.0.1:$NG_TLS ssl; server_name rr.test;/" \
  -e "s/listen 127.0.0.1:6192;/listen 127.0.0.1:$NG_HTTP;/" \
  -e "s#^  proxy_set_header Connection \"\";#&\n  ssl_certificate $CERT;\n  ssl_certificate_key $KEY;\n  ssl_protocols TLSv1.2 TLSv1.3;\n  ssl_session_cache off;\n  ssl_session_tickets off;#" \
  "$WORK/nginx/nginx.conf"
if grep -q 6192 "$WORK/nginx/nginx.conf" || [ "$(grep -c "listen 127.0.0.1:$NG_TLS ssl" "$WORK/nginx/nginx.conf")" != 2 ] \
  || ! grep -q 'ssl_session_tickets off;' "$WORK/nginx/nginx.conf"; then
  echo "tls: common.sh's nginx configuration changed; adapt the sed of tls.sh to it:" >&2
  cat "$WORK/nginx/nginx.conf" >&2
  exit 1
fi

proxy_cmd() { # name -> sets CMD (the command), SIG (its stop signal), HTTP and TLS (ports)
  case $1 in
  nginx)
    CMD=("$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;')
    SIG=TERM HTTP=$NG_HTTP TLS=$NG_TLS ;;
  switchyard)
    CMD=(env RUST_LOG=error "$BIN/bench_proxy" --listen "127.0.0.1:$SY_HTTP" --listen-tls "127.0.0.1:$SY_TLS"
      --cert "$CERT,$KEY" --no-h2 --threads 1 --keepalive-requests 10000000)
    SIG=INT HTTP=$SY_HTTP TLS=$SY_TLS ;;
  *) echo "tls: unknown proxy $1 in PROXIES (nginx, switchyard)" >&2; exit 2 ;;
  esac
}

# A proxy just started must answer `ok` on both listeners, or the run stops with its log.
answers() { # name
  local url body
  for url in "http://127.0.0.1:$HTTP/" "https://127.0.0.1:$TLS/"; do
    body=$(curl -sk --max-time 5 -H 'Host: rr.test' "$url" 2>&1) || true
    if [ "$body" != ok ]; then
      echo "tls: $1 did not answer ok on $url: $body" >&2
      cat "$WORK/$1.log" >&2 2>/dev/null || true
      exit 1
    fi
  done
}

# What a TLS listener negotiates with OpenSSL's client (the library wrk uses, its
# defaults, the server name wrk sends: the URL's host), and how many session tickets it
# sends after a full handshake. One line.
negotiated() { # port
  local brief tickets
  brief=$(timeout 5 openssl s_client -connect "127.0.0.1:$1" -servername 127.0.0.1 -brief < /dev/null 2>&1 || true)
  tickets=$(sleep 0.5 | timeout 5 openssl s_client -connect "127.0.0.1:$1" -servername 127.0.0.1 -msg 2>&1 \
    | grep -c '<<< .*NewSessionTicket' || true)
  echo "$brief" | awk -F': *' -v t="$tickets" '
    /^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 } /^Signature type/ { s = $2 }
    /^(Server Temp Key|Negotiated TLS1.3 group)/ { g = $2 }
    END { printf "%s, %s, %s, key exchange %s, %s session tickets sent\n", p, c, s, g, t }'
}

# --- the handshake client resumes no session ---------------------------------------------
# wrk keeps a connection's SSL object across its reconnections, and SSL_clear() keeps the
# last session in it: the next handshake offers it. The shim forgets it first.
cat > "$WORK/noresume.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
typedef struct ssl_st SSL;
/* libssl's SSL_clear(), without the session it would keep for the next handshake. */
int SSL_clear(SSL *s) {
  static int (*real_clear)(SSL *);
  static int (*set_session)(SSL *, void *);
  if (!real_clear) {
    real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    set_session = (int (*)(SSL *, void *))dlsym(RTLD_NEXT, "SSL_set_session");
  }
  set_session(s, 0);
  return real_clear(s);
}
EOF
cc -shared -fPIC -O2 -o "$WORK/noresume.so" "$WORK/noresume.c" -ldl
WRK_TLS=(env LD_PRELOAD="$WORK/noresume.so" wrk)

# An nginx that resumes sessions (cache and tickets on) logs `r` for a request on a resumed
# session and `.` for one after a full handshake. wrk alone must get some `r` (the check
# sees wrk's resumption); wrk with the shim must get none.
mkdir -p "$WORK/check"
{ nginx_head "$WORK/check"; cat <<EOF
http {
  log_format reused '\$ssl_session_reused';
  access_log $WORK/check/access.log reused;
  ssl_certificate $CERT;
  ssl_certificate_key $KEY;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:check:1m;
  ssl_session_tickets on;
  server { listen 127.0.0.1:$CHECK_TLS ssl; location / { return 200 "ok"; } }
}
EOF
} > "$WORK/check/nginx.conf"
start nginx-check "$CHECK_TLS" "$NGINX" -p "$WORK/check" -c "$WORK/check/nginx.conf" -g 'daemon off;'
CHECK_PID=$PID
reused() { # wrk-command... -> `full resumed`: one second of reconnections over 4 connections
  local before
  before=$(wc -l < "$WORK/check/access.log" 2>/dev/null || echo 0)
  taskset -c "$LOAD_CPU" "$@" -t1 -c4 -d1s -H 'Connection: close' "https://127.0.0.1:$CHECK_TLS/" > /dev/null
  tail -n +$((before + 1)) "$WORK/check/access.log" | awk '$1 == "." { f++ } $1 == "r" { r++ } END { print f + 0, r + 0 }'
}
read -r PLAIN_FULL PLAIN_RESUMED <<< "$(reused wrk)"
read -r SHIM_FULL SHIM_RESUMED <<< "$(reused "${WRK_TLS[@]}")"
stop "$CHECK_PID" TERM
RESUMPTION="against an nginx that resumes sessions, wrk reconnecting (Connection: close): $PLAIN_FULL full handshakes, $PLAIN_RESUMED resumed; wrk with the shim, as measured: $SHIM_FULL full, $SHIM_RESUMED resumed"
echo "tls: $RESUMPTION" >&2
if [ "$SHIM_RESUMED" != 0 ] || [ "$SHIM_FULL" = 0 ]; then
  echo "tls: the handshake scenario would not measure full handshakes only; stopping" >&2
  exit 1
fi
[ "$PLAIN_RESUMED" != 0 ] || echo "tls: warning: wrk without the shim resumed no session either: the check may not see resumption" >&2

# --- measuring ----------------------------------------------------------------------------
cat > "$WORK/rr.lua" <<'EOF'
wrk.headers["Host"] = "rr.test"
EOF

RESULTS="$WORK/tls.tsv"   # round proxy scenario req/s p50 p99 cpu errors
: > "$RESULTS"
: > "$WORK/negotiated.txt"

scenario_run() { # round name scenario pid (HTTP and TLS ports from proxy_cmd)
  local round=$1 name=$2 scenario=$3 pid=$4 url extra=() out t0 t1 reqs errors cpu client=(wrk)
  case $scenario in
  http) url="http://127.0.0.1:$HTTP/" ;;
  https) url="https://127.0.0.1:$TLS/" client=("${WRK_TLS[@]}") ;;
  http-close) url="http://127.0.0.1:$HTTP/" extra=(-H 'Connection: close') ;;
  handshake) url="https://127.0.0.1:$TLS/" extra=(-H 'Connection: close') client=("${WRK_TLS[@]}") ;;
  *) echo "tls: unknown scenario $scenario in SCENARIOS (http https http-close handshake)" >&2; exit 2 ;;
  esac
  taskset -c "$LOAD_CPU" "${client[@]}" -t1 -c"$CONNS" -d"${WARMUP}s" -s "$WORK/rr.lua" "${extra[@]}" "$url" > /dev/null
  t0=$(ticks $(family "$pid"))
  out=$(taskset -c "$LOAD_CPU" "${client[@]}" -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/rr.lua" "${extra[@]}" "$url")
  t1=$(ticks $(family "$pid"))
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  cpu=$(cpu_per "$t0" "$t1" "${reqs:-0}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$scenario" \
    "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")" \
    "$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")" "$cpu" "$errors" >> "$RESULTS"
  echo "tls: round $round $name $scenario: $(tail -1 "$RESULTS" | cut -f4-)" >&2
}

# Rounds: every proxy once per round, so that a slow spell of the machine falls on all of
# them; the report takes the median over the rounds.
for round in $(seq 1 "$ROUNDS"); do
  for proxy in $PROXIES; do
    proxy_cmd "$proxy"
    start "$proxy" "$HTTP" "${CMD[@]}"
    wait_port "$TLS"
    answers "$proxy"
    [ "$round" != 1 ] || echo "$proxy: $(negotiated "$TLS")" >> "$WORK/negotiated.txt"
    for scenario in $SCENARIOS; do scenario_run "$round" "$proxy" "$scenario" "$PID"; done
    stop "$PID" "$SIG"
  done
done

# --- report -------------------------------------------------------------------------------
# Medians over the rounds as `proxy scenario cpu-µs req/s` lines, for the ratios.
MEDIANS=$(awk -F'\t' '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { k = $2 "\t" $3; cpu[k] = cpu[k] " " $7; rps[k] = rps[k] " " $4 }
  END { for (k in cpu) print k "\t" median(cpu[k]) "\t" median(rps[k]) }' "$RESULTS")
med() { echo "$MEDIANS" | awk -F'\t' -v p="$1" -v s="$2" '$1 == p && $2 == s { print $3 }'; } # proxy scenario
# The share of its CPU a proxy was busy: req/s × CPU µs/req (medians).
busy() { echo "$MEDIANS" | awk -F'\t' -v p="$1" -v s="$2" '$1 == p && $2 == s { printf "%.0f%%", $3 * $4 / 1e4 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
ratio_pos() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.1f", a - b; else print "-" }'; }
plain_of() { case $1 in https) echo http ;; handshake) [[ " $SCENARIOS " == *" http-close "* ]] && echo http-close || echo http ;; esac; }

echo
echo "$(date -u +%Y-%m-%d) $(nproc) CPUs, $(uname -r); proxy alone on CPU $PROXY_CPU (one worker), load generator and backends on CPU $LOAD_CPU; $ROUNDS rounds, median of each; Switchyard: $BUILD; $("$NGINX" -v 2>&1 | sed 's#.*/##;s#^#nginx #'), $(openssl version | awk '{print $1, $2}'), $(wrk --version 2>&1 | awk 'NR == 1 {print $1, $2}')"
echo
echo "Certificate: ECDSA P-256, self-signed, CN and subjectAltName bench.test, the same file for both proxies. Negotiated with OpenSSL's client (wrk's library; server name 127.0.0.1, the URL's host, as wrk sends it):"
echo
sed 's/^/- /' "$WORK/negotiated.txt"
echo
echo "Full handshakes: $RESUMPTION."
echo
echo "Closed loop (wrk -t1 -c$CONNS -d${DURATION}s, Host: rr.test). http: plaintext keep-alive; https: TLS keep-alive; http-close: plaintext, a new TCP connection per request; handshake: a new TLS connection per request, a full handshake each (req/s = handshakes/s, CPU µs/req = CPU µs per handshake and its request). Latency from wrk: from the request written to its response, so a connection's handshake is not in it:"
echo
echo "| proxy | scenario | req/s | p50 | p99 | CPU µs/req | CPU × nginx |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
cut -f1-7 "$RESULTS" > "$WORK/tls.cols"
report "$WORK/tls.cols" "rps,us,us,cpu" nginx
echo
if [[ " $PROXIES " == *" nginx "* && " $PROXIES " == *" switchyard "* ]]; then
  echo "Switchyard ÷ nginx, CPU µs per request (medians), each TLS scenario beside its plaintext counterpart:"
  echo
  echo "| scenario | nginx CPU µs/req | Switchyard CPU µs/req | Switchyard ÷ nginx | ÷ the plaintext ratio |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for scenario in $SCENARIOS; do
    n=$(med nginx "$scenario") s=$(med switchyard "$scenario") plain=$(plain_of "$scenario")
    r=$(ratio "$s" "$n")
    rel=-
    [ -z "$plain" ] || rel="$(ratio "$r" "$(ratio "$(med switchyard "$plain")" "$(med nginx "$plain")")") (÷ $plain's)"
    echo "| $scenario | ${n:--} | ${s:--} | $r | $rel |"
  done
  echo
  echo "What TLS adds, CPU µs (differences of the medians; a ratio only when both are positive):"
  echo
  echo "| | nginx | Switchyard | Switchyard ÷ nginx |"
  echo "| --- | ---: | ---: | ---: |"
  for pair in "https http per keep-alive request (https − http)" "handshake http-close per new connection: its handshake (handshake − http-close)"; do
    set -- $pair
    tls=$1 plain=$2; shift 2
    [[ " $SCENARIOS " == *" $tls "* && " $SCENARIOS " == *" $plain "* ]] || continue
    dn=$(minus "$(med nginx "$tls")" "$(med nginx "$plain")") ds=$(minus "$(med switchyard "$tls")" "$(med switchyard "$plain")")
    echo "| $* | $dn | $ds | $(ratio_pos "$ds" "$dn") |"
  done
  echo
  echo "The proxy's CPU busy, req/s × CPU µs/req (medians): below 100%, the load generator (wrk's own TLS, and the backends, on CPU $LOAD_CPU) set the rate, not the proxy: compare the proxies there by CPU µs/req, not req/s."
  echo
  for proxy in nginx switchyard; do
    line="- $proxy:"
    for scenario in $SCENARIOS; do line="$line $scenario $(busy "$proxy" "$scenario")"; done
    echo "$line"
  done
  echo
  echo "Per round, CPU µs/req of Switchyard ÷ nginx:"
  awk -F'\t' -v scs="$SCENARIOS" '{ if ($2 == "nginx") n[$1, $3] = $7; if ($2 == "switchyard") s[$1, $3] = $7; if ($1 > r) r = $1 }
    END { k = split(scs, sc, " "); for (i = 1; i <= r; i++) { line = "  round " i ":"
      for (j = 1; j <= k; j++) if (n[i, sc[j]] > 0) line = line sprintf(" %s %.2f", sc[j], s[i, sc[j]] / n[i, sc[j]]); print line } }' "$RESULTS"
fi
awk -F'\t' '$NF != "" && $NF != "0" { print "errors: round " $1 " " $2 " " $3 ": " $NF }' "$RESULTS"
