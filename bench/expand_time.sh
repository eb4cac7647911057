#!/usr/bin/env bash
# How long `routes!` takes to expand the generated tables of 10, 100 and 1,000 rules.
#
#   bash bench/expand_time.sh            # the macro as `cargo build` / `cargo check` builds it (debug)
#   bash bench/expand_time.sh release    # the macro as `cargo build --release` / `cargo bench` builds it
#
# A proc macro cannot be linked into a benchmark, so this compiles each table alone with
# rustc (the repository's pinned toolchain), against the dependencies cargo already built,
# with `-Z time-passes` (enabled on the stable compiler by RUSTC_BOOTSTRAP=1 on this one
# rustc command only, so no cargo fingerprint changes). It prints rustc's
# `macro_expand_crate` time (parsing the table, checking every rule, planning and generating
# the code: the whole of `routes!`), and the wall time of the whole check (`--emit=metadata`:
# expansion, name resolution, type and borrow checking of the generated code). The tables
# are the ones bench/build.rs generates into the bench crate's OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-debug}
case "$mode" in
debug) build=(cargo check -p switchyard-bench --bench decide --message-format=json) ;;
release) build=(cargo bench -p switchyard-bench --bench decide --no-run --message-format=json) ;;
*) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac

# The artifacts of proxy-runtime and pingora-http that this build uses (built if needed),
# and the directory the generated tables are in.
read -r runtime http deps tables < <("${build[@]}" 2>/dev/null | python3 -c '
import json, os, sys
found = {}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "switchyard-bench" in m["package_id"]:
        found["tables"] = m["out_dir"]
    if m.get("reason") != "compiler-artifact":
        continue
    name = m["target"]["name"]
    if name in ("proxy_runtime", "proxy-runtime", "pingora_http", "pingora-http"):
        files = [f for f in m["filenames"] if f.endswith((".rlib", ".rmeta"))]
        found[name.replace("-", "_")] = files[-1]
rt, http = found["proxy_runtime"], found["pingora_http"]
print(rt, http, os.path.dirname(rt), found["tables"])
')

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "routes! expansion, macro built $mode ($(rustc --version))"
printf '%-7s %-22s %s\n' table macro_expand_crate "whole check (wall)"
for n in 10 100 1000; do
    printf '#![allow(dead_code)]\ninclude!("%s/t%s.rs");\n' "$tables" "$n" >"$tmp/t$n.rs"
    start=$(date +%s.%N)
    RUSTC_BOOTSTRAP=1 rustc --edition 2021 --crate-type lib --crate-name "bench_t$n" \
        --emit=metadata -o "$tmp/t$n.rmeta" -Z time-passes \
        --extern "proxy_runtime=$runtime" --extern "pingora_http=$http" -L "dependency=$deps" \
        "$tmp/t$n.rs" >"$tmp/t$n.log" 2>&1 || { cat "$tmp/t$n.log" >&2; exit 1; }
    end=$(date +%s.%N)
    expand=$(awk '$NF == "macro_expand_crate" { print $2 }' "$tmp/t$n.log" | tr -d ';')
    printf '%-7s %-22s %.2f s\n' "t$n" "${expand} s" "$(echo "$end - $start" | bc)"
done
