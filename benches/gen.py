#!/usr/bin/env python3
"""Generate the routing tables of the `decide` benchmark.

For each size N in 10, 100 and 1000 this writes, under benches/tables/:

  tN.rs       the table as a `proxy_runtime::routes! { proxy TN; ... }` block
  tN_hand.rs  the same rules as a hand-written if/else in the Pingora guide's style
              (`to_str().unwrap_or("")`, the host copied into a `String` as the guide's
              `ctx.selected_host = Some(host.to_string())` does, `contains("beta=true")`)
  tN.rules    the same rules as configuration for the runtime interpreter of the bench,
              one rule a line: `cond && cond ...`, each cond `kind:arg[:value]`
  tN.reqs     64 requests, one a line: `expected-rule<TAB>METHOD<TAB>PATH<TAB>name: value...`
              hitting early, middle and late rules and the fallback; the expected rule is
              computed here by a reference first-match scan, and the bench checks that all
              three deciders agree with it before timing anything.

Shape of a table of N rules (like a gateway's): H = max(2, N / 10) exact hosts, each with
up to 9 rules (path prefixes, a path + method, a header, a cookie, and for every other host
a catch-all), then host-less rules (path prefixes, header and cookie values, a few regexes),
then the `_` fallback. Every rule is distinct and reachable.

Run from the repository root: `python3 benches/gen.py`. The output is committed.
"""

import os
import re

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")
SIZES = [10, 100, 1000]
CLUSTERS = 4
WORDS = ["api", "www", "shop", "media", "auth", "admin-portal", "m", "static-assets"]

# Common request headers, present on every request so lookups do not hit an empty map.
COMMON = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-US,en;q=0.9"),
]
BASE_COOKIE = "_ga=GA1.2.1234567890.1700000000; theme=dark; session_id=4f9c2a7e1b"


def host_name(i):
    return f"{WORDS[i % len(WORDS)]}{i}.example.com"


# A condition is a tuple: ("host", h) | ("prefix", p) | ("path", p) | ("method", m)
#   | ("header", name, value) | ("cookie", name, value) | ("regex", re) | ("any",)


def host_rules(i, per_host):
    h = ("host", host_name(i))
    all_rules = [
        [h, ("prefix", "/api/v2"), ("header", "x-canary", "1")],
        [h, ("prefix", "/api/v2")],
        [h, ("prefix", "/api/v1")],
        [h, ("prefix", "/static/")],
        [h, ("prefix", "/app"), ("cookie", "beta", "true")],
        [h, ("prefix", "/app")],
        [h, ("path", "/login"), ("method", "POST")],
        [h, ("header", "x-tenant", f"t{i}")],
        [h] if i % 2 == 0 else [h, ("cookie", "region", "eu")],
    ]
    if per_host >= len(all_rules):
        return all_rules
    pick = {4: [1, 4, 7, 8]}[per_host]
    return [all_rules[k] for k in pick]


def hostless_rules(m):
    rules = []
    regexes = 0
    for j in range(m):
        k = j % 4
        if k == 0:
            rules.append([("prefix", f"/svc{j}")])
        elif k == 1:
            rules.append([("header", "x-route", f"r{j}")])
        elif k == 2:
            rules.append([("cookie", "shard", f"s{j:04}")])  # fixed width: no value is a prefix of another
        elif regexes < 3:
            regexes += 1
            rules.append([("regex", f"^/u{j}/[0-9]+$")])
        else:
            rules.append([("prefix", f"/files{j}/"), ("method", "PUT")])
    return rules


def table(n):
    hosts = max(2, n // 10)
    per_host = min(9, (n - n // 10) // hosts)
    rules = []
    for i in range(hosts):
        rules += host_rules(i, per_host)
    rules += hostless_rules(n - len(rules) - 1)
    rules.append([("any",)])
    assert len(rules) == n, (n, len(rules))
    return hosts, rules


# ---- reference semantics (the bench's requests avoid every case where the three deciders
# legitimately differ: uppercase hosts, ports, unnormalized paths, a path equal to a
# prefix, cookie names that end in another's name) ----


def seg_prefix(path, p):
    return path.startswith(p) and (p.endswith("/") or len(path) == len(p) or path[len(p)] == "/")


def cookie(headers, name):
    for k, v in headers:
        if k == "cookie":
            for pair in v.split(";"):
                if "=" in pair:
                    a, b = pair.split("=", 1)
                    if a.strip() == name:
                        return b.strip()
    return None


def header(headers, name):
    for k, v in headers:
        if k == name:
            return v
    return None


def matches(cond, method, path, headers):
    kind = cond[0]
    if kind == "any":
        return True
    if kind == "host":
        return header(headers, "host") == cond[1]
    if kind == "prefix":
        return seg_prefix(path, cond[1])
    if kind == "path":
        return path == cond[1]
    if kind == "method":
        return method == cond[1]
    if kind == "header":
        return header(headers, cond[1]) == cond[2]
    if kind == "cookie":
        return cookie(headers, cond[1]) == cond[2]
    if kind == "regex":
        return re.search(cond[1], path) is not None
    raise ValueError(kind)


def first_match(rules, req):
    method, path, headers = req
    for i, r in enumerate(rules):
        if all(matches(c, method, path, headers) for c in r):
            return i
    raise AssertionError("no fallback")


def request_for(rule, variant):
    """A request that satisfies every condition of `rule`."""
    method = "GET"
    path = f"/home/{variant}"
    headers = [("host", f"unknown{variant}.example.net")]
    extra = []
    cookies = [BASE_COOKIE]
    for c in rule:
        kind = c[0]
        if kind == "host":
            headers[0] = ("host", c[1])
        elif kind == "prefix":
            p = c[1].rstrip("/")
            path = f"{p}/items/{variant}"
        elif kind == "path":
            path = c[1]
        elif kind == "method":
            method = c[1]
        elif kind == "header":
            extra.append((c[1], c[2]))
        elif kind == "cookie":
            cookies.append(f"{c[1]}={c[2]}")
        elif kind == "regex":
            m = re.match(r"\^/u(\d+)/", c[1])
            path = f"/u{m.group(1)}/{1000 + variant}"
    return method, path, headers + COMMON + extra + [("cookie", "; ".join(cookies))]


def requests(rules, count=64, fallbacks=8):
    n = len(rules)
    reqs = []
    targets = count - fallbacks
    for k in range(targets):
        # Evenly spread over the rules (early, middle, late); with few rules, cycle.
        idx = (k * (n - 1)) // targets if n - 1 >= targets else k % (n - 1)
        reqs.append(request_for(rules[idx], k))
    for k in range(fallbacks):
        # Nothing matches: an unknown host, a path no prefix covers, no routing headers.
        reqs.append(request_for([("any",)], 100 + k))
    return [(first_match(rules, r), r) for r in reqs]


# ---- emitters ----


def rs_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def routes_source(n, rules):
    lines = [
        f"// Generated by benches/gen.py: {n} rules. Do not edit.",
        "proxy_runtime::routes! {",
        f"    proxy T{n};",
        "",
    ]
    for c in range(CLUSTERS):
        lines.append(f'    cluster c{c} {{ backends: ["127.0.0.1:{20000 + c}"] }}')
    lines.append("")
    for i, r in enumerate(rules):
        parts = []
        for c in r:
            kind = c[0]
            if kind == "any":
                parts.append("_")
            elif kind == "host":
                parts.append(f"host({rs_str(c[1])})")
            elif kind == "prefix":
                parts.append(f"path_prefix({rs_str(c[1])})")
            elif kind == "path":
                parts.append(f"path({rs_str(c[1])})")
            elif kind == "method":
                parts.append(f"method({c[1]})")
            elif kind == "header":
                parts.append(f"header({rs_str(c[1])}) == {rs_str(c[2])}")
            elif kind == "cookie":
                parts.append(f"cookie({rs_str(c[1])}) == {rs_str(c[2])}")
            elif kind == "regex":
                parts.append(f"path_regex({rs_str(c[1])})")
        lines.append(f"    route r{i}: {' && '.join(parts)} => c{i % CLUSTERS};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def hand_cond(c, regex_ids):
    kind = c[0]
    if kind == "prefix":
        p = c[1] if c[1].endswith("/") else c[1] + "/"
        return f"path.starts_with({rs_str(p)})"
    if kind == "path":
        return f"path == {rs_str(c[1])}"
    if kind == "method":
        return f"req.method == Method::{c[1]}"
    if kind == "header":
        return (
            f"req.headers.get({rs_str(c[1])}).map(|v| v.to_str().unwrap_or(\"\")) "
            f"== Some({rs_str(c[2])})"
        )
    if kind == "cookie":
        return (
            'req.headers.get("cookie").map_or(false, |c| c.to_str().unwrap_or("")'
            f".contains({rs_str(c[1] + '=' + c[2])}))"
        )
    if kind == "regex":
        return f"RE_{regex_ids[c[1]]}.is_match(path.as_bytes())"
    raise ValueError(kind)


def hand_rule(i, r, regex_ids, indent):
    conds = [hand_cond(c, regex_ids) for c in r if c[0] not in ("host", "any")]
    pad = " " * indent
    if not conds:
        return [f"{pad}return {i};"]
    return [f"{pad}if {' && '.join(conds)} {{", f"{pad}    return {i};", f"{pad}}}"]


def hand_source(n, rules):
    regex_ids = {}
    for r in rules:
        for c in r:
            if c[0] == "regex" and c[1] not in regex_ids:
                regex_ids[c[1]] = len(regex_ids)
    lines = [
        f"// Generated by benches/gen.py: the {n}-rule table as a hand-written if/else. Do not edit.",
        "",
    ]
    for src, k in regex_ids.items():
        lines.append(
            f"static RE_{k}: std::sync::LazyLock<Regex> = "
            f"std::sync::LazyLock::new(|| Regex::new({rs_str(src)}).unwrap());"
        )
    lines += [
        "",
        "/// The rule a request meets (its index), decided the way the Pingora guide writes it.",
        "#[allow(clippy::all)]",
        f"pub fn handwritten_{n}(req: &RequestHeader) -> usize {{",
        "    let host_header = match req.headers.get(\"host\") {",
        "        Some(h) => h.to_str().unwrap_or(\"\"),",
        "        None => \"\",",
        "    };",
        "    // The guide keeps the host in its context: `ctx.selected_host = Some(host.to_string())`.",
        "    let host: String = host_header.to_string();",
        "    let path = req.uri.path();",
        "    let _ = &path;",
    ]
    # Host blocks in order, then host-less rules (all of which follow the host rules).
    first = True
    i = 0
    while i < n and rules[i][0][0] == "host":
        h = rules[i][0][1]
        kw = "if" if first else "} else if"
        lines.append(f"    {kw} host == {rs_str(h)} {{")
        first = False
        while i < n and rules[i][0][0] == "host" and rules[i][0][1] == h:
            lines += hand_rule(i, rules[i], regex_ids, 8)
            i += 1
    if not first:
        lines.append("    }")
    while i < n - 1:
        lines += hand_rule(i, rules[i], regex_ids, 4)
        i += 1
    lines.append(f"    {n - 1}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def rules_source(rules):
    out = []
    for r in rules:
        out.append(" && ".join(":".join(c) for c in r))
    return "\n".join(out) + "\n"


def reqs_source(reqs):
    out = []
    for expected, (method, path, headers) in reqs:
        fields = [str(expected), method, path] + [f"{k}: {v}" for k, v in headers]
        assert all("\t" not in f for f in fields)
        out.append("\t".join(fields))
    return "\n".join(out) + "\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    for n in SIZES:
        hosts, rules = table(n)
        reqs = requests(rules)
        files = {
            f"t{n}.rs": routes_source(n, rules),
            f"t{n}_hand.rs": hand_source(n, rules),
            f"t{n}.rules": rules_source(rules),
            f"t{n}.reqs": reqs_source(reqs),
        }
        for name, text in files.items():
            with open(os.path.join(OUT, name), "w") as f:
                f.write(text)
        hit = sorted({e for e, _ in reqs})
        print(f"t{n}: {hosts} hosts, {n} rules, {len(reqs)} requests hitting {len(hit)} rules")


if __name__ == "__main__":
    main()
