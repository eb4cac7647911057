# What the benchmark scripts (e2e.sh, tls.sh, callgrind.sh, idle_rss.sh) share; sourced
# by them, not run on its own. They run from the repository root, on loopback only, and
# stop every process they start (and nothing else) when they exit.

# --- tools -------------------------------------------------------------------------------

# Installs the Debian packages of the commands that are missing: `need CMD:PACKAGE...`.
need() {
  local missing=() pair cmd
  for pair in "$@"; do
    cmd=${pair%%:*}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- the proxies under test --------------------------------------------------------------

# Builds the benchmark proxies (the binaries named, by default the two: bench_proxy and
# handwritten) with the `production` profile (fat LTO, one codegen unit, the panic
# strategy declared in Cargo.toml) and sets BIN to their directory. PANIC=unwind (or
# abort) builds the same profile with that panic strategy instead, as a profile of its
# own (target/production-unwind/), to compare the two.
build_proxies() { # [binary...]
  local profile=production config=() bins=() b
  [ $# -gt 0 ] || set -- bench_proxy handwritten
  for b in "$@"; do bins+=(--bin "$b"); done
  if [ -n "${PANIC:-}" ]; then
    profile="production-$PANIC"
    config=(--config "profile.$profile.inherits=\"production\"" --config "profile.$profile.panic=\"$PANIC\"")
  fi
  scripts/setup
  cargo build "${config[@]}" --profile "$profile" -p switchyard-bench "${bins[@]}" >&2
  BIN=${CARGO_TARGET_DIR:-target}/$profile
  local panic=${PANIC:-$(awk '/^\[profile\.production\]/ { p = 1; next } /^\[/ { p = 0 }
    p && $1 == "panic" { gsub(/"/, "", $3); print $3 }' Cargo.toml)}
  BUILD="--profile $profile (fat LTO, one codegen unit, panic = \"${panic:-unwind}\")"
}

# --- processes ---------------------------------------------------------------------------

WORK=$(mktemp -d /tmp/switchyard-bench.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() { # port [tries of 50 ms]
  local i
  for i in $(seq 1 "${2:-200}"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# Starts a process in the background on CPU $PROXY_CPU, its output in $WORK/NAME.log, and
# waits for its port; sets PID. `env --default-signal` undoes the SIGINT that a background
# job of a script otherwise ignores, so SIGINT reaches the program as it does in a terminal.
start() { # name port command...
  local name=$1 port=$2; shift 2
  taskset -c "${PROXY_CPU:-0}" env --default-signal=INT "$@" > "$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_port "$port" "${START_TRIES:-200}"
}

# Pingora takes SIGINT as a fast shutdown (SIGTERM makes it wait out its grace period);
# nginx and HAProxy take SIGTERM. The PID leaves the list once reaped, so the cleanup at
# exit never signals a recycled PID.
stop() { # pid [signal]
  kill "-${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

# --- nginx: the three backends and nginx as a proxy -----------------------------------

# The part of an nginx configuration the backends and the nginx under test share.
nginx_head() { # dir
  cat <<EOF
worker_processes 1;
error_log $1/error.log;
pid $1/nginx.pid;
events { worker_connections 4096; }
EOF
}

# Three trivial backends (`return 200 "ok"`) on 127.0.0.1:18081-18083, one nginx worker
# on CPU $LOAD_CPU.
start_backends() {
  mkdir -p "$WORK/backends"
  { nginx_head "$WORK/backends"; cat <<EOF
http {
  access_log off;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:18081; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:18082; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:18083; location / { return 200 "ok"; } }
}
EOF
  } > "$WORK/backends/nginx.conf"
  taskset -c "${LOAD_CPU:-1}" "$NGINX" -p "$WORK/backends" -c "$WORK/backends/nginx.conf" -g 'daemon off;' &
  PIDS+=($!)
  local p
  for p in 18081 18083 18082; do wait_port $p; done
}

# nginx as the proxy under test on 127.0.0.1:6192, the same four scenarios as the two
# Pingora proxies. Extra top-level directives (e.g. `master_process off;`) as arguments.
nginx_proxy_conf() { # directives...
  mkdir -p "$WORK/nginx"
  { nginx_head "$WORK/nginx"; printf '%s\n' "$@"; cat <<EOF
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
  } > "$WORK/nginx/nginx.conf"
}

# --- CPU time, wrk's figures and the report ---------------------------------------------

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

# wrk prints latencies as 512.00us / 1.09ms / 1.20s: microseconds, as a number.
to_us() { echo "$1" | awk '/us$/ { printf "%.0f", $0 + 0; next } /ms$/ { printf "%.0f", ($0 + 0) * 1000; next } /s$/ { printf "%.0f", ($0 + 0) * 1e6; next } { print "" }'; }
kv() { # key line -> value
  echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'
}
cpu_per() { # ticks-before ticks-after requests -> µs of CPU per request
  awk -v d=$(($2 - $1)) -v hz="$CLK_TCK" -v n="$3" 'BEGIN { printf "%.1f", (n > 0) ? d / hz * 1e6 / n : 0 }'
}

# The rows of a markdown table from a TSV of `round proxy scenario metric...`, one row per
# (proxy, scenario) in the order first seen: the median over the rounds of each metric,
# formatted by its kind in COLUMNS (comma-separated: rps, us, cpu; the last is CPU per
# request), then one column per reference proxy (REFS, default `nginx
# pingora-handwritten`): the CPU of the row ÷ the reference's on the same scenario, "-"
# when it was not measured. Ratios are of the medians.
report() { # file columns [refs]
  awk -F'\t' -v cols="$2" -v refs="${3:-nginx pingora-handwritten}" '
    function median(key,   n, i, j, t, v) {
      n = split(vals[key], v, " ")
      for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
      return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function us(v) { return (v >= 1000) ? sprintf("%.2f ms", v / 1000) : sprintf("%d µs", v) }
    {
      key = $2 SUBSEP $3
      if (!(key in seen)) { seen[key] = 1; order[++n] = key; name[key] = $2; sc[key] = $3 }
      for (c = 4; c <= NF; c++) vals[key, c] = vals[key, c] " " $c
      rounds[key]++
    }
    END {
      nc = split(cols, kind, ",")
      nr = split(refs, ref_name, " ")
      for (i = 1; i <= n; i++) {
        key = order[i]
        line = "| " name[key] " | " sc[key]
        for (c = 1; c <= nc; c++) {
          m[c] = (vals[key, c + 3] ~ /[0-9]/) ? median(key SUBSEP c + 3) : "-"
          line = line " | " ((kind[c] == "us" && m[c] != "-") ? us(m[c]) : (kind[c] == "rps" && m[c] != "-") ? sprintf("%.0f", m[c]) : (kind[c] == "cpu" && m[c] != "-") ? sprintf("%.1f", m[c]) : m[c])
        }
        cpu = m[nc]
        for (r = 1; r <= nr; r++) {
          ref = ((ref_name[r] SUBSEP sc[key]) in seen) ? median((ref_name[r] SUBSEP sc[key]) SUBSEP nc + 3) : 0
          line = line " | " ((cpu != "-" && ref > 0) ? sprintf("%.2f", cpu / ref) : "-")
        }
        print line " |"
      }
    }' "$1"
}
