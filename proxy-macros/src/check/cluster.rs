//! The rules of a `cluster NAME { .. }` declaration: its options, backends, balancer,
//! health checks, TLS, timeouts, and backups.

use super::dns;
use super::resolve;
use super::value::{boolean, check_token, duration, int_in, string, unique_opts};
use crate::ast::{self, KeyExpr, Value};
use crate::errors::Errors;
use crate::hints::hint_or_list;
use crate::model::*;
use std::net::{IpAddr, SocketAddr};
use syn::Ident;

const CLUSTER_KEYS: [&str; 12] = [
    "backends",
    "resolve",
    "balance",
    "health",
    "retries",
    "backup",
    "tls",
    "timeouts",
    "passive",
    "bind_to",
    "tcp_keepalive",
    "alpn",
];

// Rule: a cluster has known options, each once, and `backends`. `cluster api { backend: [..] }`
// is an unknown key (and then no "missing `backends`" on top of it).
pub fn check_cluster(
    errs: &mut Errors,
    c: &ast::ClusterDecl,
    variant: Ident,
    clusters: &[String],
) -> ClusterModel {
    let mut out = ClusterModel {
        name: c.name.clone(),
        variant,
        attrs: c.attrs.clone(),
        backends: Vec::new(),
        balance: BalanceModel {
            kind: BalanceKind::RoundRobin,
            key: None,
        },
        health: None,
        retries: None,
        backup: None,
        tls: None,
        timeouts: TimeoutsModel::default(),
        passive: None,
        bind_to: None,
        tcp_keepalive_ms: None,
        h2c: false,
        resolve: ResolveModel::default(),
    };
    let mut resolve_key = None;
    let mut alpn_key = None;
    let mut health_key: Option<Ident> = None;
    let mut has_backends = false;
    let mut passive_declared = false;
    for opt in unique_opts(errs, &c.options, &CLUSTER_KEYS, "cluster option") {
        match opt.key.to_string().as_str() {
            "backends" => {
                has_backends = true;
                out.backends = check_backends(errs, c, &opt.value);
            }
            "resolve" => {
                resolve_key = Some(&opt.key);
                out.resolve = check_resolve(errs, &opt.value);
            }
            "balance" => out.balance = check_balance(errs, &opt.value),
            "health" => {
                health_key = Some(opt.key.clone());
                out.health = check_health(errs, &opt.value);
            }
            "retries" => {
                if let Some(n) = int_in(errs, &opt.value, 0, 8, "`retries`") {
                    out.retries = Some(n as u32);
                }
            }
            // Rule: `backup` names another cluster: `backup: api_dr`; `backup: api` in
            // `cluster api` is an error.
            "backup" => match &opt.value {
                Value::Ident(i) => {
                    if *i == c.name {
                        errs.push(
                            i.span(),
                            format!("cluster `{}` cannot be its own backup", c.name),
                        );
                    } else {
                        out.backup = resolve(errs, i, clusters, "cluster");
                    }
                }
                v => errs.push(v.span(), "expected a cluster name, e.g. `backup: api_dr`"),
            },
            "tls" => out.tls = check_tls(errs, &opt.value),
            "timeouts" => out.timeouts = check_timeouts(errs, &opt.value),
            "passive" => {
                passive_declared = true;
                out.passive = check_passive(errs, &opt.value);
            }
            // Rule: `bind_to` is a local IP address: `bind_to: "127.0.0.2"`.
            "bind_to" => match &opt.value {
                Value::Str(s) if s.value().parse::<IpAddr>().is_ok() => {
                    out.bind_to = s.value().parse().ok()
                }
                v => errs.push(
                    v.span(),
                    "expected a local IP address to connect from, e.g. `bind_to: \"127.0.0.2\"`",
                ),
            },
            "tcp_keepalive" => out.tcp_keepalive_ms = duration(errs, &opt.value, "`tcp_keepalive`"),
            "alpn" => {
                alpn_key = Some(&opt.key);
                out.h2c = check_plain_alpn(errs, &opt.value);
            }
            _ => {}
        }
    }
    // Rule: a gRPC health check speaks HTTP/2, as the cluster's requests must: `alpn: h2`
    // (h2c) or `tls: { alpn: h2 | h2_h1 }`.
    let speaks_h2 = out.h2c || out.tls.as_ref().is_some_and(|t| t.alpn != "H1");
    if let (Some(key), Some(_), false) = (
        &health_key,
        out.health.as_ref().and_then(|h| h.grpc.as_ref()),
        speaks_h2,
    ) {
        errs.push(
            key.span(),
            "a gRPC health check needs HTTP/2 to the backends: add `alpn: h2` (h2c), or `alpn: h2` in `tls`",
        );
    }
    // Rule: a TLS cluster negotiates its protocol inside `tls`: `tls: { alpn: h2 }`.
    if let (Some(key), Some(_)) = (alpn_key, &out.tls) {
        errs.push(
            key.span(),
            "a TLS cluster negotiates its protocol in `tls`: write `tls: { alpn: h2, .. }`",
        );
        out.h2c = false;
    }
    if let Some(key) = resolve_key {
        if has_backends && !out.backends.iter().any(|b| b.endpoint.is_name()) {
            errs.push(
                key.span(),
                "`resolve` re-resolves backends given by name, and this cluster lists only IP addresses; remove it",
            );
        }
    }
    // Rule: a cluster without `health` or `passive` sets aside a backend whose connection
    // fails (the runtime's default); with `health`, the check decides alone.
    if !passive_declared && out.health.is_none() {
        out.passive = Some(PassiveModel::DEFAULT);
    }
    let misspelled = c
        .options
        .iter()
        .any(|o| !CLUSTER_KEYS.contains(&o.key.to_string().as_str()));
    if !has_backends && !misspelled {
        errs.push(
            c.name.span(),
            format!(
                "cluster `{}` has no `backends`; add `backends: [\"IP:PORT\"]`",
                c.name
            ),
        );
    }
    out
}

// Rule: `alpn` on a plaintext cluster is `h2` (HTTP/2 with prior knowledge, h2c: what
// gRPC servers speak without TLS) or `h1` (the default). `h2_h1` needs TLS to negotiate.
fn check_plain_alpn(errs: &mut Errors, v: &Value) -> bool {
    match v {
        Value::Ident(i) => match i.to_string().as_str() {
            "h2" => true,
            "h1" => false,
            "h2_h1" => {
                errs.push(
                    i.span(),
                    "a plaintext connection cannot negotiate its protocol: write `alpn: h2` \
                     (h2c, prior knowledge) or `alpn: h1`, or add `tls`",
                );
                false
            }
            other => {
                errs.push(
                    i.span(),
                    format!(
                        "unknown alpn `{other}`{}",
                        hint_or_list(other, &["h1", "h2"])
                    ),
                );
                false
            }
        },
        v => {
            errs.push(v.span(), "expected `h2` (h2c) or `h1`");
            false
        }
    }
}

// Rule: `backends` is a non-empty list of distinct backends with weights of 1–1000:
// `["127.0.0.1:9001", "api.internal:8080" weight 5, srv("_http._tcp.api.internal")]`. An
// address is `IP:PORT` (IPv6 in brackets); a name is an RFC 1123 host name and a port; an
// SRV name is `_service._tcp.domain` and takes ports and weights from its records. A bad
// host name, a missing port, a port out of range, `weight 0` or a weight on `srv(..)` are
// errors.
fn check_backends(errs: &mut Errors, c: &ast::ClusterDecl, v: &Value) -> Vec<BackendModel> {
    let Value::List(list, span) = v else {
        errs.push(
            v.span(),
            "expected a list of backends, e.g. `[\"127.0.0.1:9001\", \"127.0.0.1:9002\" weight 5]`",
        );
        return Vec::new();
    };
    if list.is_empty() {
        errs.push(
            *span,
            format!(
                "cluster `{}` has no backends; list at least one `\"IP:PORT\"`",
                c.name
            ),
        );
    }
    let mut out: Vec<BackendModel> = Vec::new();
    for b in list {
        let text = b.addr.value();
        let endpoint = match &b.call {
            Some(call) if call == "srv" => {
                if let Some(w) = &b.weight {
                    errs.push(
                        w.span(),
                        "an SRV name takes its weights from its records; remove `weight`",
                    );
                    continue;
                }
                // DNS names are case-insensitive: `_HTTP._TCP.x` is `_http._tcp.x`.
                let name = text.to_ascii_lowercase();
                match dns::srv_name_problem(&name) {
                    Some(problem) => {
                        errs.push(b.addr.span(), problem);
                        continue;
                    }
                    None => EndpointModel::Srv(name),
                }
            }
            Some(call) => {
                errs.push(
                    call.span(),
                    format!(
                        "expected a backend `\"HOST:PORT\"` or `srv(\"_service._tcp.NAME\")`, found `{call}(..)`"
                    ),
                );
                continue;
            }
            None => match endpoint(&text) {
                Ok(e) => e,
                Err(problem) => {
                    errs.push(b.addr.span(), problem);
                    continue;
                }
            },
        };
        let weight = match &b.weight {
            Some(w) => match w.base10_parse::<u32>() {
                Ok(0) => {
                    errs.push(w.span(), "weight 0 would never be chosen; use a weight of at least 1, or remove the backend");
                    continue;
                }
                Ok(n) if n > 1000 => {
                    errs.push(
                        w.span(),
                        "weight must be at most 1000; weights are relative, so scale them down",
                    );
                    continue;
                }
                Ok(n) => n,
                Err(_) => {
                    errs.push(w.span(), "expected a whole number, e.g. `weight 5`");
                    continue;
                }
            },
            None => 1,
        };
        if out.iter().any(|o| o.endpoint == endpoint) {
            errs.push(
                b.addr.span(),
                format!(
                    "duplicate backend `{text}` in cluster `{}`; give it a weight instead",
                    c.name
                ),
            );
            continue;
        }
        out.push(BackendModel { endpoint, weight });
    }
    out
}

/// `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`, or what is wrong with it.
fn endpoint(text: &str) -> Result<EndpointModel, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err("port `0` is out of range; a port is between 1 and 65535".to_owned());
        }
        return Ok(EndpointModel::Addr(addr));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        let example = if text.parse::<IpAddr>().is_ok() {
            text
        } else {
            "api.internal"
        };
        return Err(format!(
            "`{text}` has no port; add it, e.g. \"{example}:8080\""
        ));
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err(format!(
            "`{text}` is not a socket address; write an IPv6 address in brackets, e.g. \"[::1]:9001\""
        ));
    }
    let port = match port.parse::<u64>() {
        Ok(p @ 1..=65535) => p as u16,
        Ok(p) => {
            return Err(format!(
                "port `{p}` is out of range; a port is between 1 and 65535"
            ))
        }
        Err(_) => {
            return Err(format!(
                "`{port}` is not a port; a port is a number between 1 and 65535"
            ))
        }
    };
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() {
        // `IP:0` and the like: the address parsed, so the port was the problem.
        return Err(format!(
            "port `{port}` is out of range; a port is between 1 and 65535"
        ));
    }
    if host.starts_with('[') {
        return Err(format!("`{host}` is not an IPv6 address"));
    }
    match dns::host_name_problem(host) {
        Some(problem) => Err(format!("`{text}` is not a backend: {problem}")),
        None => Ok(EndpointModel::Name {
            host: host.to_ascii_lowercase(),
            port,
        }),
    }
}

// Rule: `resolve: { every: 30s }` re-resolves the cluster's names every 30 s; `every: ttl`
// (the default) when their records expire. Only a cluster with names resolves:
// `resolve` beside IP addresses alone is an error.
fn check_resolve(errs: &mut Errors, v: &Value) -> ResolveModel {
    let mut out = ResolveModel::default();
    let Value::Block(opts, _) = v else {
        errs.push(v.span(), "expected `{ every: 30s }` or `{ every: ttl }`");
        return out;
    };
    for opt in unique_opts(errs, opts, &["every"], "`resolve` option") {
        match &opt.value {
            Value::Ident(i) if i == "ttl" => out.every_ms = None,
            v => {
                if let Some(ms) = duration(errs, v, "`every` (or `ttl`: when the records expire)") {
                    if ms < 100 {
                        errs.push(v.span(), "resolving more often than every 100ms floods the DNS server; use `100ms` or more (`1s` is plenty)");
                    } else {
                        out.every_ms = Some(ms);
                    }
                }
            }
        }
    }
    out
}

const KEYS: [&str; 6] = ["cookie", "header", "query", "client_ip", "path", "host"];

// Rule: `balance` is `round_robin`, `random`, `consistent(KEY)` or `hash(KEY)`; only the
// hashing balancers take a key: `round_robin(cookie("x"))` is an error.
fn check_balance(errs: &mut Errors, v: &Value) -> BalanceModel {
    let rr = BalanceModel {
        kind: BalanceKind::RoundRobin,
        key: None,
    };
    let names = ["round_robin", "random", "consistent", "hash"];
    match v {
        Value::Ident(i) => match i.to_string().as_str() {
            "round_robin" => rr,
            "random" => BalanceModel {
                kind: BalanceKind::Random,
                key: None,
            },
            n @ ("consistent" | "hash") => {
                errs.push(i.span(), format!("`{n}` needs a key to hash, e.g. `{n}(cookie(\"session_id\"))` or `{n}(client_ip)`"));
                rr
            }
            n => {
                errs.push(
                    i.span(),
                    format!("unknown balancer `{n}`{}", hint_or_list(n, &names)),
                );
                rr
            }
        },
        Value::Call(i, key) => {
            let kind = match i.to_string().as_str() {
                "consistent" => BalanceKind::Consistent,
                "hash" => BalanceKind::Hash,
                n @ ("round_robin" | "random") => {
                    errs.push(key.span(), format!("`{n}` ignores keys; use `consistent(..)` or `hash(..)` to hash on a key, or remove the key"));
                    return rr;
                }
                n => {
                    errs.push(
                        i.span(),
                        format!("unknown balancer `{n}`{}", hint_or_list(n, &names)),
                    );
                    return rr;
                }
            };
            BalanceModel {
                kind,
                key: check_key(errs, key),
            }
        }
        v => {
            errs.push(
                v.span(),
                "expected a balancer: `round_robin`, `random`, `consistent(KEY)` or `hash(KEY)`",
            );
            rr
        }
    }
}

// Rule: a key is `cookie("n")`, `header("n")`, `query("n")`, `client_ip`, `path` or `host`,
// with a valid name.
pub fn check_key(errs: &mut Errors, k: &KeyExpr) -> Option<KeyModel> {
    match k {
        KeyExpr::Named(i, name) => {
            let n = name.value();
            match i.to_string().as_str() {
                "cookie" => check_token(errs, name, "cookie name").then_some(KeyModel::Cookie(n)),
                "header" => check_token(errs, name, "header name")
                    .then_some(KeyModel::Header(n.to_ascii_lowercase())),
                "query" => (!n.is_empty()).then_some(KeyModel::Query(n)).or_else(|| {
                    errs.push(name.span(), "a query parameter name cannot be empty");
                    None
                }),
                other => {
                    errs.push(
                        i.span(),
                        format!("unknown key `{other}(..)`{}", hint_or_list(other, &KEYS)),
                    );
                    None
                }
            }
        }
        KeyExpr::Bare(i) => match i.to_string().as_str() {
            "client_ip" => Some(KeyModel::ClientIp),
            "path" => Some(KeyModel::Path),
            "host" => Some(KeyModel::Host),
            n @ ("cookie" | "header" | "query") => {
                errs.push(
                    i.span(),
                    format!("`{n}` needs a name, e.g. `{n}(\"session_id\")`"),
                );
                None
            }
            other => {
                errs.push(
                    i.span(),
                    format!("unknown key `{other}`{}", hint_or_list(other, &KEYS)),
                );
                None
            }
        },
    }
}

// Rule: `health: tcp { every, fall, rise, timeout }`, `http { path, host, expect, every,
// fall, rise, timeout }` or `grpc { service, every, fall, rise, timeout }` (the standard
// `grpc.health.v1` check); `every` is required and has a unit.
fn check_health(errs: &mut Errors, v: &Value) -> Option<HealthModel> {
    let Value::Tagged(kind, opts) = v else {
        errs.push(
            v.span(),
            "expected `tcp { every: 5s }`, `http { path: \"/healthz\", every: 5s }` or `grpc { every: 5s }`",
        );
        return None;
    };
    let (http, grpc) = match kind.to_string().as_str() {
        "tcp" => (false, false),
        "http" => (true, false),
        "grpc" => (false, true),
        other => {
            errs.push(
                kind.span(),
                format!(
                    "unknown health check `{other}`{}",
                    hint_or_list(other, &["tcp", "http", "grpc"])
                ),
            );
            return None;
        }
    };
    let known: &[&str] = if http {
        &[
            "every", "fall", "rise", "timeout", "start", "path", "host", "expect",
        ]
    } else if grpc {
        &["every", "fall", "rise", "timeout", "start", "service"]
    } else {
        &["every", "fall", "rise", "timeout", "start"]
    };
    let mut h = HealthModel {
        http: None,
        grpc: None,
        every_ms: 0,
        fall: 1,
        rise: 1,
        timeout_ms: 1000,
        start_unhealthy: false,
    };
    let (mut path, mut host, mut expect) = ("/".to_owned(), String::new(), 200u16);
    let mut service = String::new();
    if !http {
        for o in opts
            .iter()
            .filter(|o| ["path", "host", "expect"].contains(&o.key.to_string().as_str()))
        {
            errs.push(
                o.key.span(),
                format!("`{}` is an option of `http` health checks, e.g. `health: http {{ path: \"/healthz\", every: 5s }}`", o.key),
            );
        }
    }
    let known: &[&str] = if http {
        known
    } else {
        // `path`, `host` and `expect` were reported above.
        &[
            "every", "fall", "rise", "timeout", "start", "path", "host", "expect", "service",
        ]
    };
    for o in unique_opts(errs, opts, known, "health check option") {
        let v = &o.value;
        match o.key.to_string().as_str() {
            "every" => h.every_ms = duration(errs, v, "`every`").unwrap_or(1000),
            "timeout" => h.timeout_ms = duration(errs, v, "`timeout`").unwrap_or(1000),
            "fall" => h.fall = int_in(errs, v, 1, 100, "`fall`").unwrap_or(1) as u32,
            "rise" => h.rise = int_in(errs, v, 1, 100, "`rise`").unwrap_or(1) as u32,
            "expect" => expect = int_in(errs, v, 100, 599, "`expect`").unwrap_or(200) as u16,
            "path" => {
                if let Some(p) = string(errs, v, "`path`") {
                    if !p.starts_with('/') {
                        errs.push(v.span(), "a health check path starts with `/`");
                    }
                    path = p;
                }
            }
            "host" => host = string(errs, v, "`host`").unwrap_or_default(),
            "service" if grpc => service = string(errs, v, "`service`").unwrap_or_default(),
            "service" => errs.push(
                o.key.span(),
                "`service` is an option of `grpc` health checks, e.g. `health: grpc { service: \"pkg.Svc\", every: 5s }`",
            ),
            "start" => match v {
                Value::Ident(i) if i == "healthy" => h.start_unhealthy = false,
                Value::Ident(i) if i == "unhealthy" => h.start_unhealthy = true,
                v => errs.push(v.span(), "expected `healthy` or `unhealthy`: the state of a backend before its first check"),
            },
            _ => {}
        }
    }
    if !opts.iter().any(|o| o.key == "every") {
        errs.push(
            kind.span(),
            "a health check needs `every: DURATION`, e.g. `every: 5s`",
        );
    }
    if http {
        h.http = Some(HttpProbeModel { path, host, expect });
    }
    if grpc {
        h.grpc = Some(service);
    }
    Some(h)
}

// Rule: `tls: { sni, verify, verify_hostname, alternative_cn, alpn, ca, client_cert,
// client_key }`. Verification is on by default and needs an `sni` (Pingora silently skips
// verification without one); a client certificate needs its key and the other way round.
fn check_tls(errs: &mut Errors, v: &Value) -> Option<TlsModel> {
    let Value::Block(opts, span) = v else {
        errs.push(v.span(), "expected `{ sni: \"name\", .. }`");
        return None;
    };
    let known = [
        "sni",
        "verify",
        "verify_hostname",
        "alternative_cn",
        "alpn",
        "ca",
        "client_cert",
        "client_key",
    ];
    let mut t = TlsModel {
        sni: String::new(),
        verify: true,
        verify_hostname: true,
        alternative_cn: None,
        alpn: "H1",
        ca: None,
        client_cert: None,
        client_key: None,
    };
    let mut verify_span = *span;
    for o in unique_opts(errs, opts, &known, "tls option") {
        let v = &o.value;
        match o.key.to_string().as_str() {
            "sni" => t.sni = string(errs, v, "`sni`").unwrap_or_default(),
            "verify" => {
                verify_span = v.span();
                t.verify = boolean(errs, v, "`verify`").unwrap_or(true);
            }
            "verify_hostname" => {
                t.verify_hostname = boolean(errs, v, "`verify_hostname`").unwrap_or(true)
            }
            "alternative_cn" => t.alternative_cn = string(errs, v, "`alternative_cn`"),
            "ca" => t.ca = string(errs, v, "`ca`"),
            "client_cert" => t.client_cert = string(errs, v, "`client_cert`"),
            "client_key" => t.client_key = string(errs, v, "`client_key`"),
            "alpn" => match v {
                Value::Ident(i) => match i.to_string().as_str() {
                    "h1" => t.alpn = "H1",
                    "h2" => t.alpn = "H2",
                    "h2_h1" => t.alpn = "H2H1",
                    other => errs.push(
                        i.span(),
                        format!(
                            "unknown alpn `{other}`{}",
                            hint_or_list(other, &["h1", "h2", "h2_h1"])
                        ),
                    ),
                },
                v => errs.push(v.span(), "expected `h1`, `h2` or `h2_h1`"),
            },
            _ => {}
        }
    }
    if t.verify && t.sni.is_empty() {
        errs.push(
            verify_span,
            "certificate verification needs an `sni` to verify against; add `sni: \"name\"`, or set `verify: false` to skip verification explicitly",
        );
    }
    let key_span = |k: &str| {
        opts.iter()
            .find(|o| o.key == k)
            .map_or(*span, |o| o.key.span())
    };
    match (&t.client_cert, &t.client_key) {
        (Some(_), None) => errs.push(
            key_span("client_cert"),
            "`client_cert` needs its private key: add `client_key: \"path/to/key.pem\"`",
        ),
        (None, Some(_)) => errs.push(
            key_span("client_key"),
            "`client_key` needs its certificate: add `client_cert: \"path/to/cert.pem\"`",
        ),
        _ => {}
    }
    Some(t)
}

// Rule: `passive: { failures: N, cooldown: DURATION }` with both keys, N of 1–1000, or
// `passive: off`.
fn check_passive(errs: &mut Errors, v: &Value) -> Option<PassiveModel> {
    let Value::Block(opts, span) = v else {
        if !matches!(v, Value::Ident(i) if i == "off") {
            errs.push(
                v.span(),
                "expected `{ failures: 5, cooldown: 10s }` or `off`",
            );
        }
        return None;
    };
    let (mut failures, mut cooldown) = (None, None);
    for o in unique_opts(
        errs,
        opts,
        &["failures", "cooldown"],
        "passive health option",
    ) {
        match o.key.to_string().as_str() {
            "failures" => failures = int_in(errs, &o.value, 1, 1000, "`failures`"),
            "cooldown" => cooldown = duration(errs, &o.value, "`cooldown`"),
            _ => {}
        }
    }
    if !opts.iter().any(|o| o.key == "failures") || !opts.iter().any(|o| o.key == "cooldown") {
        errs.push(*span, "passive health needs both `failures` and `cooldown`, e.g. `{ failures: 5, cooldown: 10s }`");
    }
    Some(PassiveModel {
        failures: failures? as u32,
        cooldown_ms: cooldown?,
        count_5xx: true,
    })
}

// Rule: `timeouts: { connect, total_connect, read, write, idle, websocket }`, each a
// duration.
fn check_timeouts(errs: &mut Errors, v: &Value) -> TimeoutsModel {
    let mut t = TimeoutsModel::default();
    let Value::Block(opts, _) = v else {
        errs.push(v.span(), "expected `{ connect: 1s, read: 30s, .. }`");
        return t;
    };
    let known = [
        "connect",
        "total_connect",
        "read",
        "write",
        "idle",
        "websocket",
    ];
    for o in unique_opts(errs, opts, &known, "timeout") {
        let ms = duration(errs, &o.value, &format!("`{}`", o.key));
        match o.key.to_string().as_str() {
            "connect" => t.connect = ms,
            "total_connect" => t.total_connect = ms,
            "read" => t.read = ms,
            "write" => t.write = ms,
            "idle" => t.idle = ms,
            "websocket" => t.websocket = ms,
            _ => {}
        }
    }
    t
}

// Rule: backups form no cycle: `api` backed by `dr` backed by `api` would loop when both are
// down. Reported at the name of each cluster on the cycle.
pub fn check_backup_cycles(
    errs: &mut Errors,
    decls: &[&ast::ClusterDecl],
    clusters: &mut [ClusterModel],
) {
    for start in 0..clusters.len() {
        let mut seen = vec![start];
        let mut at = start;
        while let Some(next) = clusters[at].backup {
            if next == start {
                let path: Vec<String> = seen
                    .iter()
                    .chain([&start])
                    .map(|&i| format!("`{}`", clusters[i].name))
                    .collect();
                errs.push(
                    decls[start].name.span(),
                    format!(
                        "backup cycle: {}; a cluster cannot end up backing itself",
                        path.join(" -> ")
                    ),
                );
                clusters[start].backup = None;
                break;
            }
            if seen.contains(&next) {
                break;
            }
            seen.push(next);
            at = next;
        }
    }
}
