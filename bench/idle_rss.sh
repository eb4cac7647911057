#!/usr/bin/env bash
# Resident memory per idle keep-alive downstream connection: Switchyard (bench_proxy, the
# default build: mimalloc) beside nginx doing the same proxying, in one run, on loopback.
#
#   bash bench/idle_rss.sh             # CONNS=9000
#   CONNS=2000 bash bench/idle_rss.sh
#
# Three nginx backends on 127.0.0.1:18081-18083 (as e2e.sh), then, one proxy at a time,
# one worker each (bench_proxy --threads 1; nginx worker_processes 1, keepalive upstreams,
# e2e.sh's configuration): start it, warm it up (WARMUP connections, one request each, then
# closed), read VmRSS from /proc/PID/status, open CONNS connections with
# bench/src/bin/idle_clients.rs (each sends one `GET /` with `Host: rr.test`, reads the whole
# response and stays open, idle), wait SETTLE seconds, read VmRSS again, close them all.
# kB per connection = (after - before) / CONNS. For nginx the figures are of its worker
# process, which holds the connections (the master's RSS is printed beside the table);
# nginx allocates a slot per worker_connections when it starts, so the same nginx is also
# started with 1,024 slots and the cost of a slot is printed with the table.
# Kernel socket memory is not in RSS and is not counted. The table is printed and appended
# to bench/RESULTS.md. Needs CONNS + 1024 open files per process (ulimit -n); installs
# nginx from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The command line as run, for RESULTS.md: the variables given, then the script.
COMMAND="$(for v in CONNS WARMUP SETTLE PROXY_CPU LOAD_CPU; do
  if [ -n "${!v:-}" ]; then printf '%s=%s ' "$v" "${!v}"; fi
done)bash bench/idle_rss.sh"
CONNS=${CONNS:-9000}
WARMUP=${WARMUP:-32}
SETTLE=${SETTLE:-2}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

. bench/common.sh

# --- open files: every connection is a descriptor in the client and in the proxy ------------
need_files=$((CONNS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_files" ]; then
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_files" ]; then
  echo "idle_rss: $CONNS connections need $need_files open files per process, but ulimit -n is" \
    "$(ulimit -n) and cannot be raised (hard limit $(ulimit -Hn)): raise the hard limit" \
    "(e.g. as root, or in /etc/security/limits.conf) or run with a smaller CONNS" >&2
  exit 1
fi

need nginx:nginx-light
scripts/setup
cargo build --profile production -p switchyard-bench --bin bench_proxy --bin idle_clients >&2
BIN=${CARGO_TARGET_DIR:-target}/production

start_backends
nginx_proxy_conf
# e2e.sh's nginx allows 4,096 connections per worker; this needs CONNS and the upstreams.
sed -i "s/worker_connections [0-9]*;/worker_connections $need_files;/" "$WORK/nginx/nginx.conf"

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; } # pid -> kB

# Starts idle_clients against PORT in the background with its stdin on a FIFO held open
# by this shell (fd 7), and waits for its `idle N` line; sets CPID. Closing fd 7 ends it.
hold_idle() { # port n
  local i
  rm -f "$WORK/ctl"
  mkfifo "$WORK/ctl"
  taskset -c "$LOAD_CPU" "$BIN/idle_clients" "127.0.0.1:$1" "$2" 120 < "$WORK/ctl" > "$WORK/clients.out" 2> "$WORK/clients.err" &
  CPID=$!
  PIDS+=("$CPID")
  exec 7> "$WORK/ctl"
  for i in $(seq 1 1200); do # 100 ms each
    grep -q '^idle ' "$WORK/clients.out" && return 0
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "idle_rss: the client did not get $2 idle connections to 127.0.0.1:$1: $(cat "$WORK/clients.err")" >&2
  return 1
}
release_idle() { # closes the client's stdin, gives it 10 s to close its connections and exit
  local i
  exec 7>&-
  for i in $(seq 1 100); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
  stop "$CPID"
  cat "$WORK/clients.err" >&2
}

TABLE="$WORK/table.tsv" # proxy before-kB after-kB
: > "$TABLE"
MASTER=0

# Starts a proxy (one worker), warms it up (WARMUP connections, one request each, closed)
# and reads its RSS; sets PROC (the process holding the connections: nginx's worker, not
# its master) and BEFORE (kB).
up() { # name port command...
  local name=$1 port=$2
  start "$@"
  PROC=$PID
  if [[ $name == nginx* ]]; then
    for _ in $(seq 1 50); do PROC=$(pgrep -P "$PID" | head -1) && break; sleep 0.1; done
    [ -n "$PROC" ] || { echo "idle_rss: no nginx worker" >&2; exit 1; }
  fi
  taskset -c "$LOAD_CPU" "$BIN/idle_clients" "127.0.0.1:$port" "$WARMUP" 0 < /dev/null > /dev/null 2> "$WORK/warmup.err" ||
    { cat "$WORK/warmup.err" >&2; exit 1; }
  sleep 0.5
  BEFORE=$(rss "$PROC")
}

measure() { # name port signal command...
  local name=$1 port=$2 sig=$3 after; shift 3
  up "$name" "$port" "$@"
  hold_idle "$port" "$CONNS"
  sleep "$SETTLE"
  after=$(rss "$PROC")
  [ "$PROC" = "$PID" ] || MASTER=$(rss "$PID")
  release_idle
  stop "$PID" "$sig"
  printf '%s\t%s\t%s\n' "$name" "$BEFORE" "$after" >> "$TABLE"
  echo "idle_rss: $name: VmRSS $BEFORE kB before, $after kB with $CONNS idle connections" >&2
}

# nginx allocates its whole connection table (worker_connections slots) when it starts, so
# part of each connection is already in its RSS before: measured against the same nginx
# with 1,024 slots.
sed "s/worker_connections [0-9]*;/worker_connections 1024;/" "$WORK/nginx/nginx.conf" > "$WORK/nginx/small.conf"
up nginx-small 6192 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/small.conf" -g 'daemon off;'
SMALL=$BEFORE
stop "$PID" TERM

measure nginx 6192 TERM "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
measure switchyard 6191 INT env RUST_LOG=error "$BIN/bench_proxy" --listen 127.0.0.1:6191 --threads 1

# --- report ------------------------------------------------------------------------------
table() {
  echo "| proxy | RSS before (MB) | RSS with $CONNS idle connections (MB) | kB per idle connection | × nginx |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  awk -F'\t' -v n="$CONNS" '
    { name[NR] = $1; b[NR] = $2; a[NR] = $3; per[NR] = ($3 - $2) / n; if ($1 == "nginx") ng = per[NR] }
    END {
      for (i = 1; i <= NR; i++)
        printf "| %s | %.1f | %.1f | %.2f | %s |\n", (name[i] == "nginx" ? "nginx (worker)" : "switchyard (bench_proxy)"),
          b[i] / 1024, a[i] / 1024, per[i], (ng > 0 ? sprintf("%.2f", per[i] / ng) : "-")
    }' "$TABLE"
}
REPORT=$(
  echo "## Idle keep-alive connections: RSS per connection ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  echo "\`$COMMAND\` — $(nproc) CPUs, $(uname -r), nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'); one worker each;"
  echo "Switchyard \`--profile production\`, mimalloc (the default allocator). $CONNS connections, each"
  echo "after one \`GET /\` (\`Host: rr.test\`) answered in full, idle ${SETTLE} s; VmRSS of the"
  echo "process holding them, after $WARMUP warm-up connections; kB per connection = (after − before) / $CONNS."
  echo
  table
  echo
  awk -F'\t' -v n="$CONNS" -v small="$SMALL" -v slots=$((need_files - 1024)) -v wc="$need_files" -v master="$MASTER" '
    { per[$1] = ($3 - $2) / n; before[$1] = $2 }
    END {
      slot = (before["nginx"] - small) / slots
      printf "nginx allocates its connection table (worker_connections %d) when it starts: its worker\n", wc
      printf "had %.1f MB before, against %.1f MB with 1,024 slots, so %.2f kB per slot already in\n", before["nginx"] / 1024, small / 1024, slot
      printf "\"before\". Counting it, nginx holds %.2f kB per idle connection and Switchyard %.1f× that.\n", per["nginx"] + slot, per["switchyard"] / (per["nginx"] + slot)
      printf "nginx master (not counted above): %.1f MB.\n", master / 1024
    }' "$TABLE"
)
echo
echo "$REPORT"
printf '\n%s\n' "$REPORT" >> bench/RESULTS.md
echo >&2
echo "idle_rss: appended to bench/RESULTS.md" >&2
