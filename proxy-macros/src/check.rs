//! Every semantic rule of `routes!`, one `check_*` function each. All errors of a table are
//! collected and reported together, each at the token it is about. The result is a
//! [`Model`] that `lower` and `expand` can trust.

use crate::ast::{self, Expr, FieldTest, Item, KeyExpr, TargetExpr, Value};
use crate::model::*;
use proc_macro2::Span;
use quote::ToTokens;
use std::collections::HashMap;
use syn::{Ident, LitInt, LitStr};

/// Most rules in one table (see `Target::Split`/`Target::Respond` in the runtime).
pub const MAX_ROUTES: usize = u16::MAX as usize;

/// Collected errors.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, span: Span, msg: impl std::fmt::Display) {
        let e = syn::Error::new(span, msg);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn finish(self) -> Result<(), syn::Error> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `; did you mean `x`?` when a known name is close to `name`, else nothing: within a few
/// edits (a swap of neighbours counts as one), or sharing its first four letters.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let best = known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| {
            *d <= (k.len().max(name.len()) / 3).max(1)
                || (name.len() >= 4
                    && k.starts_with(&name[..4])
                    && k.len().abs_diff(name.len()) <= 3)
        })
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!("; did you mean `{k}`?"),
        None => String::new(),
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbouring characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        d[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Check a parsed table and build its model; every error found is in the `Err`.
pub fn check(table: ast::RouteTable) -> Result<Model, syn::Error> {
    let mut errs = Errors::default();
    let mut proxy: Option<(Ident, Vec<syn::Attribute>)> = None;
    let mut cluster_decls = Vec::new();
    let mut lets = Vec::new();
    let mut routes = Vec::new();
    for item in table.items {
        match item {
            Item::Proxy(p) => {
                if let Some((first, _)) = &proxy {
                    errs.push(
                        p.name.span(),
                        format!("a table declares one proxy; `{first}` is already declared"),
                    );
                } else {
                    proxy = Some((p.name, p.attrs));
                }
            }
            Item::Cluster(c) => cluster_decls.push(c),
            Item::Let(l) => lets.push(l),
            Item::Route(r) => routes.push(r),
        }
    }
    let (proxy, proxy_attrs) = match proxy {
        Some(p) => p,
        None => {
            let first = cluster_decls
                .first()
                .map(|c| c.name.span())
                .or_else(|| routes.first().map(|r| r.name.span()));
            errs.push(
                first.unwrap_or_else(Span::call_site),
                "missing `proxy NAME;` before this: it names the generated types, e.g. `proxy Gateway;`",
            );
            (
                Ident::new("__SwitchyardProxy", Span::call_site()),
                Vec::new(),
            )
        }
    };
    check_duplicate_names(&mut errs, "cluster", cluster_decls.iter().map(|c| &c.name));
    check_duplicate_names(&mut errs, "predicate", lets.iter().map(|l| &l.name));
    check_duplicate_names(&mut errs, "route", routes.iter().map(|r| &r.name));
    if cluster_decls.is_empty() {
        errs.push(
            Span::call_site(),
            "the table declares no cluster; add `cluster NAME { backends: [\"IP:PORT\"] }`",
        );
    }
    if routes.is_empty() {
        errs.push(
            Span::call_site(),
            "the table declares no route; add at least `route default: _ => CLUSTER;`",
        );
    }
    // A table holds at most 65,535 rules: splits and fixed answers are numbered with a
    // `u16` so a decision fits in a register.
    if let Some(r) = routes.get(MAX_ROUTES) {
        errs.push(
            r.name.span(),
            format!("too many routes: a table holds at most {MAX_ROUTES}; split it into several proxies"),
        );
    }

    let cluster_names: Vec<String> = cluster_decls.iter().map(|c| c.name.to_string()).collect();
    let mut clusters: Vec<Cluster> = cluster_decls
        .iter()
        .map(|c| check_cluster(&mut errs, c, &cluster_names))
        .collect();
    check_backup_cycles(&mut errs, &cluster_decls, &mut clusters);

    let mut preds = Vec::new();
    let mut pred_names: Vec<String> = Vec::new();
    let all_preds: Vec<String> = lets.iter().map(|l| l.name.to_string()).collect();
    for l in &lets {
        let cond = lower_expr(
            &mut errs,
            &l.expr,
            &Scope {
                before: &pred_names,
                all: &all_preds,
            },
        );
        pred_names.push(l.name.to_string());
        preds.push(Pred {
            name: l.name.clone(),
            attrs: l.attrs.clone(),
            cond,
        });
    }
    let mut splits = Vec::new();
    let mut model_routes = Vec::new();
    for r in &routes {
        let cond = lower_expr(
            &mut errs,
            &r.expr,
            &Scope {
                before: &pred_names,
                all: &all_preds,
            },
        );
        let target = check_target(&mut errs, &r.target, &cluster_names, &mut splits);
        model_routes.push(Route {
            name: r.name.clone(),
            attrs: r.attrs.clone(),
            cond,
            target,
            matcher_text: pretty(r.expr_tokens()),
            target_text: pretty(r.target_tokens()),
        });
    }
    let model = Model {
        proxy,
        proxy_attrs,
        clusters,
        preds,
        routes: model_routes,
        splits,
    };
    if errs.0.is_none() {
        check_reachability(&mut errs, &model);
        check_fallback(&mut errs, &model);
    }
    errs.finish()?;
    Ok(model)
}

impl ast::RouteDecl {
    fn expr_tokens(&self) -> proc_macro2::TokenStream {
        expr_to_tokens(&self.expr)
    }
    fn target_tokens(&self) -> proc_macro2::TokenStream {
        match &self.target {
            TargetExpr::Cluster(i) => i.to_token_stream(),
            TargetExpr::Split { arms, by, .. } => {
                let arms = arms.iter().map(|(n, w)| quote::quote!(#n: #w));
                let by = by.as_ref().map(|k| {
                    let k = key_tokens(k);
                    quote::quote!(by #k)
                });
                quote::quote!(split { #(#arms),* } #by)
            }
            TargetExpr::Respond { status, body, .. } => quote::quote!(respond(#status, #body)),
        }
    }
}

fn key_tokens(k: &KeyExpr) -> proc_macro2::TokenStream {
    match k {
        KeyExpr::Named(i, s) => quote::quote!(#i(#s)),
        KeyExpr::Bare(i) => i.to_token_stream(),
    }
}

fn expr_to_tokens(e: &Expr) -> proc_macro2::TokenStream {
    use quote::quote;
    match e {
        Expr::Any => quote!(_),
        Expr::Pred(i) => quote!(#i),
        Expr::Not(e) => {
            let e = expr_to_tokens(e);
            quote!(!#e)
        }
        Expr::And(a, b) => {
            let (a, b) = (expr_to_tokens(a), expr_to_tokens(b));
            quote!(#a && #b)
        }
        Expr::Or(a, b) => {
            let (a, b) = (expr_to_tokens(a), expr_to_tokens(b));
            quote!(#a || #b)
        }
        Expr::Paren(e) => {
            let e = expr_to_tokens(e);
            quote!((#e))
        }
        Expr::Host(i, s)
        | Expr::Path(i, s)
        | Expr::PathPrefix(i, s)
        | Expr::PathRegex(i, s)
        | Expr::ClientIp(i, s) => {
            quote!(#i(#s))
        }
        Expr::Method(i, ms) => quote!(#i(#(#ms)|*)),
        Expr::Field(i, s, t) => match t {
            FieldTest::Present => quote!(#i(#s)),
            FieldTest::Eq(v) => quote!(#i(#s) == #v),
            FieldTest::Ne(v) => quote!(#i(#s) != #v),
            FieldTest::Contains(v) => quote!(#i(#s).contains(#v)),
            FieldTest::StartsWith(v) => quote!(#i(#s).starts_with(#v)),
        },
    }
}

/// Token text with the spaces a person would write.
fn pretty(ts: proc_macro2::TokenStream) -> String {
    ts.to_string()
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" . ", ".")
        .replace("! ", "!")
        .replace(" :", ":")
}

// Rule: a name is declared once per kind. `cluster api {..} cluster api {..}` is an error
// at the second `api`.
fn check_duplicate_names<'a>(
    errs: &mut Errors,
    kind: &str,
    names: impl Iterator<Item = &'a Ident>,
) {
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    for n in names {
        if let Some(first) = seen.get(&n.to_string()) {
            let _ = first;
            errs.push(
                n.span(),
                format!("duplicate {kind} `{n}`; each {kind} needs its own name"),
            );
        } else {
            seen.insert(n.to_string(), n);
        }
    }
}

const CLUSTER_KEYS: [&str; 10] = [
    "backends",
    "balance",
    "health",
    "retries",
    "backup",
    "tls",
    "timeouts",
    "passive",
    "bind_to",
    "tcp_keepalive",
];

// Rule: a cluster has known options, each once; `backends` is a non-empty list of distinct
// `IP:PORT` strings with weights ≥ 1. `cluster api { backend: [..] }` is an unknown key.
fn check_cluster(errs: &mut Errors, c: &ast::ClusterDecl, clusters: &[String]) -> Cluster {
    let mut out = Cluster {
        name: c.name.clone(),
        attrs: c.attrs.clone(),
        backends: Vec::new(),
        balance: Balance {
            kind: BalanceKind::RoundRobin,
            key: None,
        },
        health: None,
        retries: 0,
        backup: None,
        tls: None,
        timeouts: Timeouts::default(),
        passive: None,
        bind_to: None,
        tcp_keepalive_ms: None,
    };
    let mut has_backends = false;
    for opt in unique_opts(errs, &c.options, &CLUSTER_KEYS, "cluster option") {
        match opt.key.to_string().as_str() {
            "backends" => {
                has_backends = true;
                out.backends = check_backends(errs, c, &opt.value);
            }
            "balance" => out.balance = check_balance(errs, &opt.value),
            "health" => out.health = check_health(errs, &opt.value),
            "retries" => {
                if let Some(n) = int_in(errs, &opt.value, 0, 8, "`retries`") {
                    out.retries = n as u32;
                }
            }
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
            "passive" => out.passive = check_passive(errs, &opt.value),
            "bind_to" => match &opt.value {
                Value::Str(s) if s.value().parse::<std::net::IpAddr>().is_ok() => {
                    out.bind_to = Some(s.value())
                }
                v => errs.push(
                    v.span(),
                    "expected a local IP address to connect from, e.g. `bind_to: \"127.0.0.2\"`",
                ),
            },
            "tcp_keepalive" => out.tcp_keepalive_ms = duration(errs, &opt.value, "`tcp_keepalive`"),
            _ => {}
        }
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

/// The options of a block, each key known and given once.
fn unique_opts<'a>(
    errs: &mut Errors,
    opts: &'a [ast::Opt],
    known: &[&str],
    what: &str,
) -> Vec<&'a ast::Opt> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for o in opts {
        let k = o.key.to_string();
        if !known.contains(&k.as_str()) {
            errs.push(
                o.key.span(),
                format!("unknown {what} `{k}`{}", hint_or_list(&k, known)),
            );
        } else if seen.contains(&k) {
            errs.push(o.key.span(), format!("`{k}` is given twice"));
        } else {
            seen.push(k);
            out.push(o);
        }
    }
    out
}

fn check_backends(errs: &mut Errors, c: &ast::ClusterDecl, v: &Value) -> Vec<(String, u32)> {
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
    let mut out: Vec<(String, u32)> = Vec::new();
    for b in list {
        let text = b.addr.value();
        let addr = match text.parse::<std::net::SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                let port = text.rsplit_once(':').map(|(ip, port)| {
                    (
                        ip.trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok(),
                        port.parse::<u64>(),
                    )
                });
                if let Some((true, Ok(port))) = port {
                    errs.push(
                        b.addr.span(),
                        format!("port `{port}` is out of range; a port is between 1 and 65535"),
                    );
                    continue;
                }
                let hint = if text.contains(':')
                    && !text.starts_with('[')
                    && text.matches(':').count() > 1
                {
                    "; write an IPv6 address in brackets, e.g. \"[::1]:9001\""
                } else if !text.contains(':') {
                    "; add the port, e.g. \"127.0.0.1:9001\""
                } else {
                    "; use an IP address and a port, e.g. \"127.0.0.1:9001\" (names are not resolved at start-up)"
                };
                errs.push(
                    b.addr.span(),
                    format!("`{text}` is not a socket address{hint}"),
                );
                continue;
            }
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
        let canonical = addr.to_string();
        if out.iter().any(|(a, _)| *a == canonical) {
            errs.push(
                b.addr.span(),
                format!(
                    "duplicate backend `{text}` in cluster `{}`; give it a weight instead",
                    c.name
                ),
            );
            continue;
        }
        out.push((canonical, weight));
    }
    out
}

const KEYS: [&str; 6] = ["cookie", "header", "query", "client_ip", "path", "host"];

// Rule: `balance` is `round_robin`, `random`, `consistent(KEY)` or `hash(KEY)`; only the
// hashing balancers take a key: `round_robin(cookie("x"))` is an error.
fn check_balance(errs: &mut Errors, v: &Value) -> Balance {
    let rr = Balance {
        kind: BalanceKind::RoundRobin,
        key: None,
    };
    let names = ["round_robin", "random", "consistent", "hash"];
    match v {
        Value::Ident(i) => match i.to_string().as_str() {
            "round_robin" => rr,
            "random" => Balance {
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
            Balance {
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

pub fn hint_or_list(name: &str, known: &[&str]) -> String {
    match did_you_mean(name, known.iter().copied()).as_str() {
        "" => format!(
            "; expected one of: {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        h => h.to_owned(),
    }
}

// Rule: a key is `cookie("n")`, `header("n")`, `query("n")`, `client_ip`, `path` or `host`,
// with a valid name.
fn check_key(errs: &mut Errors, k: &KeyExpr) -> Option<Key> {
    match k {
        KeyExpr::Named(i, name) => {
            let n = name.value();
            match i.to_string().as_str() {
                "cookie" => check_token(errs, name, "cookie name").then(|| Key::Cookie(n)),
                "header" => check_token(errs, name, "header name")
                    .then(|| Key::Header(n.to_ascii_lowercase())),
                "query" => (!n.is_empty()).then(|| Key::Query(n)).or_else(|| {
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
            "client_ip" => Some(Key::ClientIp),
            "path" => Some(Key::Path),
            "host" => Some(Key::Host),
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

/// An RFC 9110 token (header and cookie names).
fn check_token(errs: &mut Errors, lit: &LitStr, what: &str) -> bool {
    let s = lit.value();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
    if !ok {
        errs.push(
            lit.span(),
            format!(
                "`{s}` is not a valid {what}: use letters, digits and `-`/`_`, no spaces or `:`"
            ),
        );
    }
    ok
}

/// A duration literal with a unit: `500ms`, `5s`, `1m`, `1h`. Returns milliseconds.
fn duration(errs: &mut Errors, v: &Value, what: &str) -> Option<u64> {
    let Value::Int(lit) = v else {
        errs.push(
            v.span(),
            format!("expected a duration for {what}, e.g. `5s` or `500ms`"),
        );
        return None;
    };
    let n: u64 = match lit.base10_parse() {
        Ok(n) => n,
        Err(_) => {
            errs.push(lit.span(), "expected a whole number with a unit, e.g. `5s`");
            return None;
        }
    };
    let ms = match lit.suffix() {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "" => {
            errs.push(
                lit.span(),
                format!("duration without a unit; write `{n}s` or `{n}ms`"),
            );
            return None;
        }
        other => {
            errs.push(
                lit.span(),
                format!("unknown duration unit `{other}`; use `ms`, `s`, `m` or `h`"),
            );
            return None;
        }
    };
    if ms == 0 {
        errs.push(lit.span(), format!("{what} must be longer than zero"));
        return None;
    }
    Some(ms)
}

fn int_in(errs: &mut Errors, v: &Value, min: u64, max: u64, what: &str) -> Option<u64> {
    let Value::Int(lit) = v else {
        errs.push(v.span(), format!("expected a whole number for {what}"));
        return None;
    };
    if !lit.suffix().is_empty() {
        errs.push(
            lit.span(),
            format!("{what} is a plain number, without a unit"),
        );
        return None;
    }
    match lit.base10_parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errs.push(
                lit.span(),
                format!("{what} must be between {min} and {max}"),
            );
            None
        }
    }
}

fn string(errs: &mut Errors, v: &Value, what: &str) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.value()),
        v => {
            errs.push(v.span(), format!("expected a string for {what}"));
            None
        }
    }
}

fn boolean(errs: &mut Errors, v: &Value, what: &str) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(b.value),
        v => {
            errs.push(v.span(), format!("expected `true` or `false` for {what}"));
            None
        }
    }
}

// Rule: `health: tcp { every, fall, rise, timeout }` or `http { path, host, expect, every,
// fall, rise, timeout }`; `every` is required and has a unit.
fn check_health(errs: &mut Errors, v: &Value) -> Option<Health> {
    let Value::Tagged(kind, opts) = v else {
        errs.push(
            v.span(),
            "expected `tcp { every: 5s }` or `http { path: \"/healthz\", every: 5s }`",
        );
        return None;
    };
    let http = match kind.to_string().as_str() {
        "tcp" => false,
        "http" => true,
        other => {
            errs.push(
                kind.span(),
                format!(
                    "unknown health check `{other}`{}",
                    hint_or_list(other, &["tcp", "http"])
                ),
            );
            return None;
        }
    };
    let known: &[&str] = if http {
        &[
            "every", "fall", "rise", "timeout", "start", "path", "host", "expect",
        ]
    } else {
        &["every", "fall", "rise", "timeout", "start"]
    };
    let mut h = Health {
        http: None,
        every_ms: 0,
        fall: 1,
        rise: 1,
        timeout_ms: 1000,
        start_unhealthy: false,
    };
    let (mut path, mut host, mut expect) = ("/".to_owned(), String::new(), 200u16);
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
        &[
            "every", "fall", "rise", "timeout", "start", "path", "host", "expect",
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
        h.http = Some((path, host, expect));
    }
    Some(h)
}

// Rule: `tls: { sni, verify, verify_hostname, alternative_cn, alpn, ca, client_cert,
// client_key }`. Verification is on by default and needs an `sni` (Pingora silently skips
// verification without one); a client certificate needs its key and the other way round.
fn check_tls(errs: &mut Errors, v: &Value) -> Option<Tls> {
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
    let mut t = Tls {
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

// Rule: `passive: { failures: N, cooldown: DURATION }` with both keys, N of 1–1000.
fn check_passive(errs: &mut Errors, v: &Value) -> Option<(u32, u64)> {
    let Value::Block(opts, span) = v else {
        errs.push(v.span(), "expected `{ failures: 5, cooldown: 10s }`");
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
    Some((failures? as u32, cooldown?))
}

fn check_timeouts(errs: &mut Errors, v: &Value) -> Timeouts {
    let mut t = Timeouts::default();
    let Value::Block(opts, _) = v else {
        errs.push(v.span(), "expected `{ connect: 1s, read: 30s, .. }`");
        return t;
    };
    let known = ["connect", "total_connect", "read", "write", "idle"];
    for o in unique_opts(errs, opts, &known, "timeout") {
        let ms = duration(errs, &o.value, &format!("`{}`", o.key));
        match o.key.to_string().as_str() {
            "connect" => t.connect = ms,
            "total_connect" => t.total_connect = ms,
            "read" => t.read = ms,
            "write" => t.write = ms,
            "idle" => t.idle = ms,
            _ => {}
        }
    }
    t
}

// Rule: backups form no cycle: `api` backed by `dr` backed by `api` would loop when both are
// down. Reported at the name of each cluster on the cycle.
fn check_backup_cycles(errs: &mut Errors, decls: &[ast::ClusterDecl], clusters: &mut [Cluster]) {
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

fn resolve(errs: &mut Errors, name: &Ident, known: &[String], kind: &str) -> Option<usize> {
    let n = name.to_string();
    match known.iter().position(|k| *k == n) {
        Some(i) => Some(i),
        None => {
            errs.push(
                name.span(),
                format!(
                    "unknown {kind} `{n}`{}",
                    did_you_mean(&n, known.iter().map(String::as_str))
                ),
            );
            None
        }
    }
}

// Rule: a target is a declared cluster, a split over ≥ 2 distinct declared clusters with
// weights ≥ 1, or `respond(STATUS, "body")` with a status of 200–599.
fn check_target(
    errs: &mut Errors,
    t: &TargetExpr,
    clusters: &[String],
    splits: &mut Vec<Split>,
) -> Target {
    match t {
        TargetExpr::Cluster(name) => {
            Target::Cluster(resolve(errs, name, clusters, "cluster").unwrap_or(0))
        }
        TargetExpr::Split { kw, arms, by } => {
            if arms.len() < 2 {
                errs.push(kw.span, "a split needs at least two arms, e.g. `split { v2: 5, v1: 95 }`; for one cluster, name it directly");
            }
            let mut out: Vec<(usize, u32)> = Vec::new();
            for (name, w) in arms {
                let Some(c) = resolve(errs, name, clusters, "cluster") else {
                    continue;
                };
                if out.iter().any(|(o, _)| *o == c) {
                    errs.push(name.span(), format!("cluster `{name}` appears twice in this split; add the weights together"));
                    continue;
                }
                match split_weight(w) {
                    Ok(w) => out.push((c, w)),
                    Err(msg) => errs.push(w.span(), msg),
                }
            }
            let by = by.as_ref().and_then(|k| check_key(errs, k));
            splits.push(Split { arms: out, by });
            Target::Split(splits.len() - 1)
        }
        TargetExpr::Respond { status, body, .. } => {
            let code = match status.base10_parse::<u16>() {
                Ok(c) if (200..=599).contains(&c) => c,
                _ => {
                    errs.push(status.span(), "status must be between 200 and 599");
                    200
                }
            };
            Target::Respond(code, body.value())
        }
    }
}

fn split_weight(w: &LitInt) -> Result<u32, &'static str> {
    match w.base10_parse::<u32>() {
        Ok(0) => Err("a split arm of weight 0 never gets traffic; remove the arm or give it a weight of at least 1"),
        Ok(n) if n <= 1_000_000 => Ok(n),
        _ => Err("a split weight is a whole number between 1 and 1000000"),
    }
}

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// The predicates a matcher may name: those declared before it, and (for a better error)
/// all of them.
struct Scope<'a> {
    before: &'a [String],
    all: &'a [String],
}

/// Check a matcher expression and turn it into a condition. Predicates may use only the
/// predicates declared before them.
fn lower_expr(errs: &mut Errors, e: &Expr, preds: &Scope) -> Cond {
    match e {
        Expr::Any => Cond::True,
        Expr::Pred(name) => {
            let n = name.to_string();
            if let Some(i) = preds.before.iter().position(|p| *p == n) {
                return Cond::Pred(i);
            }
            if preds.all.contains(&n) {
                errs.push(
                    name.span(),
                    format!("`{n}` is declared below; a predicate can use only the predicates declared before it, so move `let {n}` up"),
                );
            } else {
                resolve(errs, name, preds.before, "predicate");
            }
            Cond::True
        }
        Expr::Not(e) => Cond::Not(Box::new(lower_expr(errs, e, preds))),
        Expr::And(a, b) => Cond::And(vec![lower_expr(errs, a, preds), lower_expr(errs, b, preds)]),
        Expr::Or(a, b) => Cond::Or(vec![lower_expr(errs, a, preds), lower_expr(errs, b, preds)]),
        Expr::Paren(e) => lower_expr(errs, e, preds),
        Expr::Host(_, lit) => check_host(errs, lit).map_or(Cond::True, Cond::Atom),
        Expr::Path(_, lit) => {
            check_path(errs, lit).map_or(Cond::True, |p| Cond::Atom(Atom::Path(p)))
        }
        Expr::PathPrefix(_, lit) => {
            check_path(errs, lit).map_or(Cond::True, |p| Cond::Atom(Atom::PathPrefix(p)))
        }
        Expr::PathRegex(_, lit) => {
            let re = lit.value();
            match regex::bytes::RegexBuilder::new(&re)
                .size_limit(1 << 20)
                .build()
            {
                Ok(_) => Cond::Atom(Atom::PathRegex(re)),
                Err(e) => {
                    errs.push(
                        lit.span(),
                        format!(
                            "invalid regex: {}",
                            e.to_string()
                                .lines()
                                .last()
                                .unwrap_or("")
                                .trim_start_matches("error: ")
                        ),
                    );
                    Cond::True
                }
            }
        }
        Expr::Method(_, ms) => {
            let mut out: Vec<String> = Vec::new();
            for m in ms {
                let s = m.to_string();
                if METHODS.contains(&s.as_str()) {
                    if !out.contains(&s) {
                        out.push(s);
                    }
                } else {
                    let upper = s.to_ascii_uppercase();
                    let hint = if METHODS.contains(&upper.as_str()) {
                        format!("; methods are uppercase: `{upper}`")
                    } else {
                        hint_or_list(&s, &METHODS)
                    };
                    errs.push(m.span(), format!("unknown method `{s}`{hint}"));
                }
            }
            out.sort();
            Cond::Atom(Atom::Method(out))
        }
        Expr::ClientIp(_, lit) => check_cidr(errs, lit).map_or(Cond::True, Cond::Atom),
        Expr::Field(kind, name, test) => {
            let field = match kind.to_string().as_str() {
                "header" => Field::Header,
                "query" => Field::Query,
                _ => Field::Cookie,
            };
            let n = match field {
                Field::Header => {
                    check_token(errs, name, "header name");
                    name.value().to_ascii_lowercase()
                }
                Field::Cookie => {
                    check_token(errs, name, "cookie name");
                    name.value()
                }
                Field::Query => {
                    if name.value().is_empty() {
                        errs.push(name.span(), "a query parameter name cannot be empty");
                    }
                    name.value()
                }
            };
            let test = match test {
                FieldTest::Present => Test::Present,
                FieldTest::Ne(v) => {
                    return Cond::Not(Box::new(Cond::Atom(Atom::Field(
                        field,
                        n,
                        Test::Eq(v.value()),
                    ))));
                }
                FieldTest::Eq(v) => Test::Eq(v.value()),
                FieldTest::Contains(v) => Test::Contains(v.value()),
                FieldTest::StartsWith(v) => Test::StartsWith(v.value()),
            };
            Cond::Atom(Atom::Field(field, n, test))
        }
    }
}

// Rule: a host is a name without port, optionally `*.` for any subdomain; matching is
// case-insensitive, so the name is kept lowercase.
fn check_host(errs: &mut Errors, lit: &LitStr) -> Option<Atom> {
    let raw = lit.value();
    let h = raw.strip_suffix('.').unwrap_or(&raw).to_ascii_lowercase();
    if h.is_empty() {
        errs.push(
            lit.span(),
            "empty host; to match any host, leave `host(..)` out",
        );
        return None;
    }
    if !h.starts_with('[') && h.contains(':') {
        errs.push(
            lit.span(),
            format!(
                "host matchers ignore the port; write `{}`",
                h.split(':').next().unwrap_or("")
            ),
        );
        return None;
    }
    if let Some(rest) = h.strip_prefix("*.") {
        if rest.contains('*') || rest.is_empty() {
            errs.push(
                lit.span(),
                "a wildcard host is `*.` followed by a domain, e.g. `*.example.com`",
            );
            return None;
        }
        return Some(Atom::HostSuffix(format!(".{rest}")));
    }
    if h.contains('*') || h.contains('/') || h.contains(' ') {
        errs.push(
            lit.span(),
            format!("`{raw}` is not a host name; a wildcard goes first, as in `*.example.com`"),
        );
        return None;
    }
    Some(Atom::HostExact(h))
}

// Rule: a path literal starts with `/` and is already normalized, since matching runs on
// normalized paths: `path_prefix("/a/../b")` could never match.
fn check_path(errs: &mut Errors, lit: &LitStr) -> Option<String> {
    let p = lit.value();
    if !p.starts_with('/') {
        errs.push(lit.span(), format!("a path starts with `/`; write `/{p}`"));
        return None;
    }
    if let Some((path, _)) = p.split_once('?') {
        errs.push(
            lit.span(),
            format!("paths are matched without their query string; write `{path}` and test parameters with `query(\"name\")`"),
        );
        return None;
    }
    let normal = normalize_path(&p);
    if normal != p {
        errs.push(
            lit.span(),
            format!("requests are matched on their normalized path, so `{p}` could never match; write `{normal}`"),
        );
        return None;
    }
    Some(p)
}

/// The normal form requests are matched in (the runtime's `request::normalize_path_into`):
/// unreserved `%XX` decoded, other escapes in uppercase, `//` merged, `.` and `..` removed.
fn normalize_path(p: &str) -> String {
    let b = p.as_bytes();
    let mut decoded = String::new();
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = (h * 16 + l) as u8;
                if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                    decoded.push(c as char);
                } else {
                    decoded.push('%');
                    decoded.push_str(&p[i + 1..i + 3].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        decoded.push(b[i] as char);
        i += 1;
    }
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded[1..].split('/').collect();
    let mut trailing = false;
    for (k, seg) in parts.iter().enumerate() {
        let last = k + 1 == parts.len();
        match *seg {
            "" | "." => trailing = last,
            ".." => {
                segments.pop();
                trailing = last;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    out
}

fn check_cidr(errs: &mut Errors, lit: &LitStr) -> Option<Atom> {
    let s = lit.value();
    let net: ipnet::IpNet = match s.parse::<ipnet::IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<std::net::IpAddr>() {
            Ok(ip) => ipnet::IpNet::from(ip),
            Err(_) => {
                errs.push(
                    lit.span(),
                    format!(
                        "`{s}` is not an IP range; write it as `10.0.0.0/8` or `2001:db8::/32`"
                    ),
                );
                return None;
            }
        },
    };
    if net.addr() != net.network() {
        errs.push(
            lit.span(),
            format!("`{s}` has host bits set; the range is `{}`", net.trunc()),
        );
        return None;
    }
    Some(match net {
        ipnet::IpNet::V4(n) => Atom::ClientIp {
            v6: false,
            net: u32::from(n.network()) as u128,
            prefix: n.prefix_len(),
        },
        ipnet::IpNet::V6(n) => Atom::ClientIp {
            v6: true,
            net: u128::from(n.network()),
            prefix: n.prefix_len(),
        },
    })
}

// Rule: every rule can match some request that no earlier rule takes: a rule after `_`, or
// one whose every case an earlier rule already covers (`path_prefix("/api/v2")` after
// `path_prefix("/api")`), is an error at its name.
fn check_reachability(errs: &mut Errors, m: &Model) {
    let mut earlier: Vec<(usize, Vec<crate::lower::Conj>)> = Vec::new();
    for (i, r) in m.routes.iter().enumerate() {
        if let Some(dnf) = crate::lower::dnf(&r.cond, &m.preds) {
            let coverer = dnf.iter().filter(|c| c.satisfiable()).try_fold(
                None,
                |acc: Option<usize>, conj| {
                    earlier
                        .iter()
                        .find(|(_, prev)| prev.iter().any(|p| p.implied_by(conj)))
                        .map(|(j, _)| Some(acc.map_or(*j, |a: usize| a.max(*j))))
                        .ok_or(())
                },
            );
            match coverer {
                Ok(Some(j)) => {
                    let by = &m.routes[j].name;
                    let why = if m.routes[j].cond == Cond::True {
                        format!("rule `{by}` before it matches every request")
                    } else {
                        format!("every request it matches is taken by rule `{by}` (or rules before it) first")
                    };
                    errs.push(
                        r.name.span(),
                        format!(
                            "rule `{}` can never match: {why}; move it up or remove it",
                            r.name
                        ),
                    );
                }
                Ok(None) => errs.push(
                    r.name.span(),
                    format!(
                        "rule `{}` can never match: its conditions contradict each other",
                        r.name
                    ),
                ),
                Err(()) => {}
            }
            earlier.push((i, dnf));
        } else {
            earlier.push((i, Vec::new()));
        }
    }
}

// Rule: the last rule matches everything (`_`), so no request falls through unrouted; for a
// 404, say so: `route default: _ => respond(404, "not found");`.
fn check_fallback(errs: &mut Errors, m: &Model) {
    let Some(last) = m.routes.last() else { return };
    let has_fallback = m.routes.iter().any(|r| {
        crate::lower::dnf(&r.cond, &m.preds).is_some_and(|d| d.iter().any(|c| c.is_empty()))
    });
    if !has_fallback {
        errs.push(
            last.name.span(),
            "the table has no fallback rule, so some requests match no rule; end it with `route default: _ => CLUSTER;` (or `_ => respond(404, \"not found\")`)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        // (typed, known, suggestion)
        let cases = [
            ("wbe", "web", true),
            ("hots", "host", true),
            ("retry", "retries", true),
            ("apii", "api", true),
            ("zzz", "web", false),
            ("cache", "backends", false),
        ];
        for (typed, known, suggested) in cases {
            assert_eq!(
                !did_you_mean(typed, [known]).is_empty(),
                suggested,
                "{typed} vs {known}"
            );
        }
    }

    #[test]
    fn refuses_more_routes_than_a_decision_can_number() {
        let table = |n: usize| {
            let mut t = String::from("proxy P; cluster c { backends: [\"127.0.0.1:1\"] }");
            for i in 0..n - 1 {
                t += &format!(" route r{i}: path(\"/{i}\") => respond(200, \"ok\");");
            }
            t + " route last: _ => c;"
        };
        let err = |n: usize| {
            let parsed: crate::ast::RouteTable = syn::parse_str(&table(n)).unwrap();
            check(parsed).err().map(|e| e.to_string())
        };
        assert_eq!(
            err(MAX_ROUTES + 1).as_deref(),
            Some("too many routes: a table holds at most 65535; split it into several proxies")
        );
        assert_eq!(err(3), None);
    }

    #[test]
    fn normalizes_path_literals_like_the_runtime() {
        let cases = [
            ("/", "/"),
            ("/a/b/", "/a/b/"),
            ("/a//b", "/a/b"),
            ("/a/../b", "/b"),
            ("/%61dmin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/a/.", "/a/"),
            ("/..", "/"),
        ];
        for (p, want) in cases {
            assert_eq!(normalize_path(p), want, "{p}");
        }
    }
}
