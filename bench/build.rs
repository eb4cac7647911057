//! Generates the routing tables of the `decide` benchmark into `OUT_DIR`, where
//! `benches/decide.rs` includes them. Nothing it writes is committed.
//!
//! For each size N in 10, 100 and 1000 it writes:
//!
//! - `tN.rs`: the table as a `proxy_runtime::routes! { proxy TN; ... }` block;
//! - `tN_hand.rs`: the same rules as a hand-written if/else in the Pingora guide's style
//!   (`to_str().unwrap_or("")`, the host copied into a `String` as the guide's
//!   `ctx.selected_host = Some(host.to_string())` does, `contains("beta=true")`);
//! - `tN.rules`: the same rules as configuration for the runtime interpreter of the bench,
//!   one rule a line: `cond && cond ...`, each cond `kind:arg[:value]`;
//! - `tN.reqs`: 64 requests, one a line: `expected-rule<TAB>METHOD<TAB>PATH<TAB>name: value...`,
//!   hitting early, middle and late rules and the fallback. The expected rule is computed
//!   here by a reference first-match scan, and the bench checks that all three deciders
//!   agree with it before timing anything.
//!
//! Shape of a table of N rules (like a gateway's): H = max(2, N / 10) exact hosts, each with
//! up to 9 rules (path prefixes, a path + method, a header, a cookie, and for every other
//! host a catch-all), then host-less rules (path prefixes, header and cookie values, a few
//! regexes), then the `_` fallback. Every rule is distinct and reachable. The output is
//! deterministic: the same bytes on every build.
//!
//! No dependencies, so the script compiles in well under a second.

use std::fmt::Write as _;
use std::path::Path;

const SIZES: [usize; 3] = [10, 100, 1000];
const CLUSTERS: usize = 4;
const WORDS: [&str; 8] = [
    "api",
    "www",
    "shop",
    "media",
    "auth",
    "admin-portal",
    "m",
    "static-assets",
];

/// Common request headers, present on every request so lookups do not hit an empty map.
const COMMON: [(&str, &str); 4] = [
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    ),
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-US,en;q=0.9"),
];
const BASE_COOKIE: &str = "_ga=GA1.2.1234567890.1700000000; theme=dark; session_id=4f9c2a7e1b";

/// One condition of a rule.
#[derive(Clone)]
enum Cond {
    Any,
    Host(String),
    Prefix(String),
    Path(String),
    Method(&'static str),
    Header(&'static str, String),
    Cookie(&'static str, String),
    /// `^/u{N}/[0-9]+$`, the one regex shape the tables use; kept as its number so the
    /// reference scan needs no regex engine (the bench's deciders use real ones).
    Regex(usize),
}

impl Cond {
    fn regex_source(n: usize) -> String {
        format!("^/u{n}/[0-9]+$")
    }
}

type Rule = Vec<Cond>;

fn host_name(i: usize) -> String {
    format!("{}{i}.example.com", WORDS[i % WORDS.len()])
}

fn host_rules(i: usize, per_host: usize) -> Vec<Rule> {
    let h = Cond::Host(host_name(i));
    let prefix = |p: &str| Cond::Prefix(p.to_owned());
    let all: Vec<Rule> = vec![
        vec![
            h.clone(),
            prefix("/api/v2"),
            Cond::Header("x-canary", "1".into()),
        ],
        vec![h.clone(), prefix("/api/v2")],
        vec![h.clone(), prefix("/api/v1")],
        vec![h.clone(), prefix("/static/")],
        vec![
            h.clone(),
            prefix("/app"),
            Cond::Cookie("beta", "true".into()),
        ],
        vec![h.clone(), prefix("/app")],
        vec![h.clone(), Cond::Path("/login".into()), Cond::Method("POST")],
        vec![h.clone(), Cond::Header("x-tenant", format!("t{i}"))],
        if i.is_multiple_of(2) {
            vec![h]
        } else {
            vec![h, Cond::Cookie("region", "eu".into())]
        },
    ];
    if per_host >= all.len() {
        return all;
    }
    let pick: &[usize] = match per_host {
        4 => &[1, 4, 7, 8],
        n => panic!("no pick of {n} rules per host"),
    };
    pick.iter().map(|&k| all[k].clone()).collect()
}

fn hostless_rules(m: usize) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(m);
    let mut regexes = 0;
    for j in 0..m {
        rules.push(match j % 4 {
            0 => vec![Cond::Prefix(format!("/svc{j}"))],
            1 => vec![Cond::Header("x-route", format!("r{j}"))],
            // Fixed width: no value is a prefix of another.
            2 => vec![Cond::Cookie("shard", format!("s{j:04}"))],
            _ if regexes < 3 => {
                regexes += 1;
                vec![Cond::Regex(j)]
            }
            _ => vec![Cond::Prefix(format!("/files{j}/")), Cond::Method("PUT")],
        });
    }
    rules
}

fn table(n: usize) -> (usize, Vec<Rule>) {
    let hosts = 2.max(n / 10);
    let per_host = 9.min((n - n / 10) / hosts);
    let mut rules: Vec<Rule> = (0..hosts).flat_map(|i| host_rules(i, per_host)).collect();
    rules.extend(hostless_rules(n - rules.len() - 1));
    rules.push(vec![Cond::Any]);
    assert_eq!(rules.len(), n);
    (hosts, rules)
}

// ---- reference semantics (the bench's requests avoid every case where the three deciders
// legitimately differ: uppercase hosts, ports, unnormalized paths, a path equal to a
// prefix, cookie names that end in another's name) ----

struct Request {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
}

fn seg_prefix(path: &str, p: &str) -> bool {
    path.starts_with(p)
        && (p.ends_with('/') || path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .find_map(|pair| {
            let (a, b) = pair.split_once('=')?;
            (a.trim() == name).then(|| b.trim())
        })
}

/// `^/u{n}/[0-9]+$` on a path (paths here hold no newline, where Python's `$` differs).
fn regex_matches(n: usize, path: &str) -> bool {
    path.strip_prefix(&format!("/u{n}/"))
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

fn matches(c: &Cond, req: &Request) -> bool {
    match c {
        Cond::Any => true,
        Cond::Host(h) => header(req, "host") == Some(h),
        Cond::Prefix(p) => seg_prefix(&req.path, p),
        Cond::Path(p) => req.path == *p,
        Cond::Method(m) => req.method == *m,
        Cond::Header(name, v) => header(req, name) == Some(v),
        Cond::Cookie(name, v) => cookie(req, name) == Some(v),
        Cond::Regex(n) => regex_matches(*n, &req.path),
    }
}

fn first_match(rules: &[Rule], req: &Request) -> usize {
    rules
        .iter()
        .position(|r| r.iter().all(|c| matches(c, req)))
        .expect("the table ends with a fallback")
}

/// A request that satisfies every condition of `rule`.
fn request_for(rule: &[Cond], variant: usize) -> Request {
    let mut method = "GET";
    let mut path = format!("/home/{variant}");
    let mut host = format!("unknown{variant}.example.net");
    let mut extra = Vec::new();
    let mut cookies = vec![BASE_COOKIE.to_owned()];
    for c in rule {
        match c {
            Cond::Any => {}
            Cond::Host(h) => host = h.clone(),
            Cond::Prefix(p) => path = format!("{}/items/{variant}", p.trim_end_matches('/')),
            Cond::Path(p) => path = p.clone(),
            Cond::Method(m) => method = m,
            Cond::Header(name, v) => extra.push((name.to_string(), v.clone())),
            Cond::Cookie(name, v) => cookies.push(format!("{name}={v}")),
            Cond::Regex(n) => path = format!("/u{n}/{}", 1000 + variant),
        }
    }
    let mut headers = vec![("host".to_owned(), host)];
    headers.extend(COMMON.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
    headers.extend(extra);
    headers.push(("cookie".to_owned(), cookies.join("; ")));
    Request {
        method,
        path,
        headers,
    }
}

fn requests(rules: &[Rule]) -> Vec<(usize, Request)> {
    const COUNT: usize = 64;
    const FALLBACKS: usize = 8;
    let n = rules.len();
    let targets = COUNT - FALLBACKS;
    // Evenly spread over the rules (early, middle, late); with few rules, cycle.
    let spread = (0..targets).map(|k| {
        let idx = if n > targets {
            k * (n - 1) / targets
        } else {
            k % (n - 1)
        };
        request_for(&rules[idx], k)
    });
    // Nothing matches: an unknown host, a path no prefix covers, no routing headers.
    let fallbacks = (0..FALLBACKS).map(|k| request_for(&[Cond::Any], 100 + k));
    spread
        .chain(fallbacks)
        .map(|r| (first_match(rules, &r), r))
        .collect()
}

// ---- emitters ----

fn rs_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn routes_source(n: usize, rules: &[Rule]) -> String {
    let mut out = format!(
        "// Generated by bench/build.rs: {n} rules. Do not edit.\nproxy_runtime::routes! {{\n    proxy T{n};\n\n"
    );
    for c in 0..CLUSTERS {
        let _ = writeln!(
            out,
            "    cluster c{c} {{ backends: [\"127.0.0.1:{}\"] }}",
            20000 + c
        );
    }
    out.push('\n');
    for (i, r) in rules.iter().enumerate() {
        let parts: Vec<String> = r
            .iter()
            .map(|c| match c {
                Cond::Any => "_".to_owned(),
                Cond::Host(h) => format!("host({})", rs_str(h)),
                Cond::Prefix(p) => format!("path_prefix({})", rs_str(p)),
                Cond::Path(p) => format!("path({})", rs_str(p)),
                Cond::Method(m) => format!("method({m})"),
                Cond::Header(name, v) => format!("header({}) == {}", rs_str(name), rs_str(v)),
                Cond::Cookie(name, v) => format!("cookie({}) == {}", rs_str(name), rs_str(v)),
                Cond::Regex(k) => format!("path_regex({})", rs_str(&Cond::regex_source(*k))),
            })
            .collect();
        let _ = writeln!(
            out,
            "    route r{i}: {} => c{};",
            parts.join(" && "),
            i % CLUSTERS
        );
    }
    out.push_str("}\n");
    out
}

/// A condition of the hand-written twin; `None` for the host (tested by the enclosing
/// block) and the catch-all.
fn hand_cond(c: &Cond, regex_ids: &[usize]) -> Option<String> {
    Some(match c {
        Cond::Any | Cond::Host(_) => return None,
        Cond::Prefix(p) => {
            let p = if p.ends_with('/') {
                p.clone()
            } else {
                format!("{p}/")
            };
            format!("path.starts_with({})", rs_str(&p))
        }
        Cond::Path(p) => format!("path == {}", rs_str(p)),
        Cond::Method(m) => format!("req.method == Method::{m}"),
        Cond::Header(name, v) => format!(
            "req.headers.get({}).map(|v| v.to_str().unwrap_or(\"\")) == Some({})",
            rs_str(name),
            rs_str(v)
        ),
        Cond::Cookie(name, v) => format!(
            "req.headers.get(\"cookie\").map_or(false, |c| c.to_str().unwrap_or(\"\").contains({}))",
            rs_str(&format!("{name}={v}"))
        ),
        Cond::Regex(k) => {
            let id = regex_ids.iter().position(|x| x == k).expect("collected");
            format!("RE_{id}.is_match(path.as_bytes())")
        }
    })
}

fn hand_rule(out: &mut String, i: usize, rule: &[Cond], regex_ids: &[usize], indent: usize) {
    let conds: Vec<String> = rule
        .iter()
        .filter_map(|c| hand_cond(c, regex_ids))
        .collect();
    let pad = " ".repeat(indent);
    if conds.is_empty() {
        let _ = writeln!(out, "{pad}return {i};");
    } else {
        let _ = writeln!(out, "{pad}if {} {{", conds.join(" && "));
        let _ = writeln!(out, "{pad}    return {i};");
        let _ = writeln!(out, "{pad}}}");
    }
}

fn host_of(rule: &[Cond]) -> Option<&str> {
    match rule.first() {
        Some(Cond::Host(h)) => Some(h),
        _ => None,
    }
}

fn hand_source(n: usize, rules: &[Rule]) -> String {
    // Regexes numbered in order of first appearance.
    let mut regex_ids = Vec::new();
    for c in rules.iter().flatten() {
        if let Cond::Regex(k) = c {
            if !regex_ids.contains(k) {
                regex_ids.push(*k);
            }
        }
    }
    let mut out = format!(
        "// Generated by bench/build.rs: the {n}-rule table as a hand-written if/else. Do not edit.\n\n"
    );
    for (id, k) in regex_ids.iter().enumerate() {
        let _ = writeln!(
            out,
            "static RE_{id}: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| Regex::new({}).unwrap());",
            rs_str(&Cond::regex_source(*k))
        );
    }
    out.push_str(
        "\n/// The rule a request meets (its index), decided the way the Pingora guide writes it.\n\
         #[allow(clippy::all)]\n",
    );
    let _ = writeln!(
        out,
        "pub fn handwritten_{n}(req: &RequestHeader) -> usize {{"
    );
    out.push_str(
        "    let host_header = match req.headers.get(\"host\") {\n\
         \x20       Some(h) => h.to_str().unwrap_or(\"\"),\n\
         \x20       None => \"\",\n\
         \x20   };\n\
         \x20   // The guide keeps the host in its context: `ctx.selected_host = Some(host.to_string())`.\n\
         \x20   let host: String = host_header.to_string();\n\
         \x20   let path = req.uri.path();\n\
         \x20   let _ = &path;\n",
    );
    // Host blocks in order, then host-less rules (all of which follow the host rules).
    let mut i = 0;
    let mut first = true;
    while let Some(h) = rules.get(i).and_then(|r| host_of(r)) {
        let kw = if first { "if" } else { "} else if" };
        let _ = writeln!(out, "    {kw} host == {} {{", rs_str(h));
        first = false;
        while rules.get(i).and_then(|r| host_of(r)) == Some(h) {
            hand_rule(&mut out, i, &rules[i], &regex_ids, 8);
            i += 1;
        }
    }
    if !first {
        out.push_str("    }\n");
    }
    while i < n - 1 {
        hand_rule(&mut out, i, &rules[i], &regex_ids, 4);
        i += 1;
    }
    let _ = writeln!(out, "    {}", n - 1);
    out.push_str("}\n");
    out
}

fn rules_source(rules: &[Rule]) -> String {
    let mut out = String::new();
    for r in rules {
        let conds: Vec<String> = r
            .iter()
            .map(|c| match c {
                Cond::Any => "any".to_owned(),
                Cond::Host(h) => format!("host:{h}"),
                Cond::Prefix(p) => format!("prefix:{p}"),
                Cond::Path(p) => format!("path:{p}"),
                Cond::Method(m) => format!("method:{m}"),
                Cond::Header(name, v) => format!("header:{name}:{v}"),
                Cond::Cookie(name, v) => format!("cookie:{name}:{v}"),
                Cond::Regex(k) => format!("regex:{}", Cond::regex_source(*k)),
            })
            .collect();
        out.push_str(&conds.join(" && "));
        out.push('\n');
    }
    out
}

fn reqs_source(reqs: &[(usize, Request)]) -> String {
    let mut out = String::new();
    for (expected, r) in reqs {
        let mut fields = vec![expected.to_string(), r.method.to_owned(), r.path.clone()];
        fields.extend(r.headers.iter().map(|(k, v)| format!("{k}: {v}")));
        assert!(fields.iter().all(|f| !f.contains('\t')));
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    for n in SIZES {
        let (_hosts, rules) = table(n);
        let reqs = requests(&rules);
        let files = [
            (format!("t{n}.rs"), routes_source(n, &rules)),
            (format!("t{n}_hand.rs"), hand_source(n, &rules)),
            (format!("t{n}.rules"), rules_source(&rules)),
            (format!("t{n}.reqs"), reqs_source(&reqs)),
        ];
        for (name, text) in files {
            let path = out.join(name);
            // Rewrite only on change, so a rebuild of the script alone recompiles nothing.
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text).expect("write a generated table");
            }
        }
    }
}
