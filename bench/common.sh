# What bench/e2e.sh and bench/callgrind.sh share; sourced by them, not run on its own.
# Both run from the repository root, on loopback only, and stop every process they start
# (and nothing else) when they exit.

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

# Builds the two benchmark proxies with the `production` profile (fat LTO, one codegen
# unit, the panic strategy declared in Cargo.toml) and sets BIN to their directory.
# PANIC=unwind (or abort) builds the same profile with that panic strategy instead, as a
# profile of its own (target/production-unwind/), to compare the two.
build_proxies() {
  local profile=production config=()
  if [ -n "${PANIC:-}" ]; then
    profile="production-$PANIC"
    config=(--config "profile.$profile.inherits=\"production\"" --config "profile.$profile.panic=\"$PANIC\"")
  fi
  scripts/setup
  cargo build "${config[@]}" --profile "$profile" -p switchyard-bench --bin bench_proxy --bin handwritten >&2
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
