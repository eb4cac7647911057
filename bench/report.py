#!/usr/bin/env python3
"""Print the figures of the `decide` benchmark as a markdown table.

Reads criterion's estimates under target/criterion/ (written by
`cargo bench -p switchyard-bench --bench decide -- ...`; $CARGO_TARGET_DIR is honoured).
Each benchmark iteration decides the 64 requests of the generated tN.reqs (bench/build.rs),
so ns per decision = criterion's time per iteration / 64.
"""

import json
import os
import sys

ROOT = os.path.join(
    os.environ.get("CARGO_TARGET_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target"),
    "criterion",
)
SIZES = [10, 100, 1000]
KINDS = ["generated", "handwritten", "interpreted"]
# Not a decider: the Host and Cookie header lookups alone (see bench/benches/decide.rs).
FLOOR = "floor"
PER_ITER = 64


def estimate(size, kind):
    path = os.path.join(ROOT, f"decide_{size}", kind, "new", "estimates.json")
    with open(path) as f:
        e = json.load(f)
    m = e["median"]
    ci = m["confidence_interval"]
    return m["point_estimate"] / PER_ITER, ci["lower_bound"] / PER_ITER, ci["upper_bound"] / PER_ITER


def main():
    ns = {}
    try:
        for s in SIZES:
            for k in KINDS + [FLOOR]:
                ns[s, k] = estimate(s, k)
    except FileNotFoundError as e:
        sys.exit(f"missing {e.filename}: run the benchmark first")
    print("| rules | generated ns/decision | hand-written ns/decision | interpreted ns/decision "
          "| hand-written / generated | interpreted / generated | floor (Host + Cookie lookups) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for s in SIZES:
        g, h, i = (ns[s, k][0] for k in KINDS)
        f = ns[s, FLOOR][0]
        print(f"| {s} | {g:.1f} | {h:.1f} | {i:.1f} | {h / g:.2f}× | {i / g:.1f}× | {f:.1f} |")
    print()
    print("Median of criterion's samples, per decision (95% interval of the median):")
    for s in SIZES:
        parts = [f"{k} {ns[s, k][1]:.1f}–{ns[s, k][2]:.1f}" for k in KINDS + [FLOOR]]
        print(f"- {s} rules: " + ", ".join(parts) + " ns")
    print()
    print("Growth from 10 to 1,000 rules (time at 1,000 / time at 10):")
    for k in KINDS:
        print(f"- {k}: {ns[1000, k][0] / ns[10, k][0]:.2f}×")


if __name__ == "__main__":
    main()
