//! Every semantic rule of `routes!`, one `check_*` function each, each opened by a comment
//! stating the rule with an example. All errors of a table are collected and reported
//! together, each at the token it is about. The result is a [`Model`] with every name
//! resolved and every literal validated, which `lower` and `expand` can trust.
//!
//! The table-wide rules are here; `cluster` checks declarations of clusters, `matcher`
//! the matchers of rules and predicates, `value` the option values they share.

mod action;
mod cluster;
mod dns;
mod matcher;
mod value;

use crate::ast::{self, Item, TargetExpr};
use crate::errors::Errors;
use crate::hints::did_you_mean;
use crate::model::*;
use crate::print;
use matcher::Scope;
use proc_macro2::Span;
use std::collections::HashMap;
use syn::{Ident, LitInt};

/// Most rules in one table (see `Target::Split`/`Target::Respond` in the runtime).
pub const MAX_ROUTES: usize = u16::MAX as usize;

/// The declarations of a table, by kind, in order.
struct Decls<'a> {
    proxies: Vec<&'a ast::ProxyDecl>,
    clusters: Vec<&'a ast::ClusterDecl>,
    lets: Vec<&'a ast::LetDecl>,
    routes: Vec<&'a ast::RouteDecl>,
    settings: Vec<&'a ast::Opt>,
}

impl<'a> Decls<'a> {
    fn of(table: &'a ast::RouteTable) -> Self {
        let mut d = Decls {
            proxies: Vec::new(),
            clusters: Vec::new(),
            lets: Vec::new(),
            routes: Vec::new(),
            settings: Vec::new(),
        };
        for item in &table.items {
            match item {
                Item::Proxy(p) => d.proxies.push(p),
                Item::Cluster(c) => d.clusters.push(c),
                Item::Let(l) => d.lets.push(l),
                Item::Route(r) => d.routes.push(r),
                Item::Setting(o) => d.settings.push(o),
            }
        }
        d
    }
}

/// Check a parsed table and build its model; every error found is in the `Err`.
pub fn check(table: &ast::RouteTable) -> Result<Model, syn::Error> {
    let mut errs = Errors::default();
    let d = Decls::of(table);
    let (proxy, proxy_attrs) = check_one_proxy(&mut errs, &d);
    check_duplicate_names(&mut errs, "cluster", d.clusters.iter().map(|c| &c.name));
    check_duplicate_names(&mut errs, "predicate", d.lets.iter().map(|l| &l.name));
    check_duplicate_names(&mut errs, "route", d.routes.iter().map(|r| &r.name));
    check_not_empty(&mut errs, &d);
    check_route_count(&mut errs, &d);
    let cluster_variants = check_variant_names(
        &mut errs,
        "cluster",
        &format!("{proxy}Cluster"),
        d.clusters.iter().map(|c| &c.name),
    );
    let route_variants = check_variant_names(
        &mut errs,
        "route",
        &format!("{proxy}Route"),
        d.routes.iter().map(|r| &r.name),
    );

    let cluster_names: Vec<String> = d.clusters.iter().map(|c| c.name.to_string()).collect();
    let mut clusters: Vec<ClusterModel> = d
        .clusters
        .iter()
        .zip(cluster_variants)
        .map(|(c, v)| cluster::check_cluster(&mut errs, c, v, &cluster_names))
        .collect();
    cluster::check_backup_cycles(&mut errs, &d.clusters, &mut clusters);

    let all_preds: Vec<String> = d.lets.iter().map(|l| l.name.to_string()).collect();
    let mut preds = Vec::new();
    for (k, l) in d.lets.iter().enumerate() {
        check_predicate_name(&mut errs, &l.name);
        let scope = Scope {
            before: &all_preds[..k],
            all: &all_preds,
        };
        let matcher = matcher::check_matcher(&mut errs, &l.expr, &scope);
        preds.push(PredModel {
            name: l.name.clone(),
            attrs: l.attrs.clone(),
            matcher: matcher.unwrap_or(Matcher::Any),
        });
    }
    let mut splits = Vec::new();
    let mut routes = Vec::new();
    for (r, variant) in d.routes.iter().zip(route_variants) {
        let scope = Scope {
            before: &all_preds,
            all: &all_preds,
        };
        let matcher = matcher::check_matcher(&mut errs, &r.expr, &scope);
        let target = check_target(&mut errs, &r.target, &cluster_names, &mut splits);
        let answers_itself = match &r.target {
            TargetExpr::Respond { .. } => Some("respond"),
            TargetExpr::Redirect { .. } => Some("redirect"),
            _ => None,
        };
        let actions = r.actions.as_ref().and_then(|block| {
            action::check_actions(&mut errs, block, matcher.as_ref(), &preds, answers_itself)
        });
        let mut target_text = print::target_text(&r.target);
        if let Some(block) = &r.actions {
            target_text.push(' ');
            target_text.push_str(&print::actions_text(block));
        }
        routes.push(RouteModel {
            name: r.name.clone(),
            variant,
            attrs: r.attrs.clone(),
            // A wrong matcher is reported; the model is then never used.
            matcher: matcher.unwrap_or(Matcher::Any),
            target,
            matcher_text: print::matcher_text(&r.expr),
            target_text,
            actions,
        });
    }
    let settings = check_settings(&mut errs, &d.settings);
    errs.finish(Model {
        proxy,
        proxy_attrs,
        clusters,
        preds,
        routes,
        splits,
        paths: settings.paths,
        hooks: d.proxies.first().and_then(|p| p.hooks.clone()),
        trusted_proxies: settings.trusted_proxies,
        x_forwarded: settings.x_forwarded,
        via: settings.via,
    })
}

const SETTING_KEYS: [&str; 4] = [
    "ambiguous_paths",
    "trusted_proxies",
    "forwarded_headers",
    "via",
];

/// The table-wide settings.
struct Settings {
    paths: PathPolicyModel,
    trusted_proxies: Vec<CidrModel>,
    x_forwarded: bool,
    via: Option<String>,
}

// Rule: table-wide settings are known keys, each once: `ambiguous_paths: reject | decode |
// forward;` (what happens to a path a backend may read otherwise than routing does),
// `trusted_proxies: ["10.0.0.0/8"];` (ranges, no host bits), `forwarded_headers: on | off;`,
// `via: "edge-1";` (a token).
fn check_settings(errs: &mut Errors, settings: &[&ast::Opt]) -> Settings {
    let mut out = Settings {
        paths: PathPolicyModel::Reject,
        trusted_proxies: Vec::new(),
        x_forwarded: true,
        via: None,
    };
    for opt in value::unique_opts(
        errs,
        settings.iter().copied(),
        &SETTING_KEYS,
        "table setting",
    ) {
        match (opt.key.to_string().as_str(), &opt.value) {
            ("ambiguous_paths", v) => {
                out.paths = match v {
                    ast::Value::Ident(i) if i == "reject" => PathPolicyModel::Reject,
                    ast::Value::Ident(i) if i == "decode" => PathPolicyModel::Decode,
                    ast::Value::Ident(i) if i == "forward" => PathPolicyModel::Forward,
                    v => {
                        errs.push(
                            v.span(),
                            "expected `reject`, `decode` or `forward`, e.g. `ambiguous_paths: decode;`",
                        );
                        out.paths
                    }
                }
            }
            ("trusted_proxies", ast::Value::List(items, _)) => {
                for item in items {
                    if let Some(w) = &item.weight {
                        errs.push(w.span(), "a trusted proxy range has no weight");
                    }
                    if let Some(call) = &item.call {
                        errs.push(
                            call.span(),
                            "a trusted proxy range is a CIDR string, e.g. `\"10.0.0.0/8\"`",
                        );
                        continue;
                    }
                    if let Some(Atom::ClientIp { v6, net, prefix }) =
                        matcher::check_cidr(errs, &item.addr)
                    {
                        out.trusted_proxies.push(CidrModel { v6, net, prefix });
                    }
                }
            }
            ("trusted_proxies", v) => errs.push(
                v.span(),
                "expected a list of ranges, e.g. `trusted_proxies: [\"10.0.0.0/8\", \"::1/128\"];`",
            ),
            ("forwarded_headers", ast::Value::Ident(i)) if i == "on" || i == "off" => {
                out.x_forwarded = i == "on";
            }
            ("forwarded_headers", v) => errs.push(
                v.span(),
                "expected `on` or `off`, e.g. `forwarded_headers: off;`",
            ),
            ("via", ast::Value::Str(lit)) => {
                if value::check_token(errs, lit, "`via` name") {
                    out.via = Some(lit.value());
                }
            }
            (_, v) => errs.push(v.span(), "expected a name, e.g. `via: \"edge-1\";`"),
        }
    }
    out
}

// Rule: a table declares exactly one proxy, which names the generated types:
// `proxy Gateway;` gives `Gateway`, `GatewayRoute`, `GatewayCluster`, `GatewayCtx`. A
// second `proxy Edge;` is an error at `Edge`, noting where `Gateway` is declared.
fn check_one_proxy(errs: &mut Errors, d: &Decls) -> (Ident, Vec<syn::Attribute>) {
    let Some((first, more)) = d.proxies.split_first() else {
        let first = d
            .clusters
            .first()
            .map(|c| c.name.span())
            .or_else(|| d.routes.first().map(|r| r.name.span()));
        errs.push(
            first.unwrap_or_else(Span::call_site),
            "missing `proxy NAME;` before this: it names the generated types, e.g. `proxy Gateway;`",
        );
        return (unnamed_proxy(), Vec::new());
    };
    for p in more {
        errs.push_with_note(
            p.name.span(),
            format!(
                "a table declares one proxy; `{}` is already declared",
                first.name
            ),
            first.name.span(),
            format!("`{}` is first declared here", first.name),
        );
    }
    (first.name.clone(), first.attrs.clone())
}

// Rule: a name is declared once per kind. `cluster api {..} cluster api {..}` is an error
// at the second `api`, noting where the first is.
fn check_duplicate_names<'a>(
    errs: &mut Errors,
    kind: &str,
    names: impl Iterator<Item = &'a Ident>,
) {
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    for n in names {
        match seen.get(&n.to_string()) {
            Some(first) => errs.push_with_note(
                n.span(),
                format!("duplicate {kind} `{n}`; each {kind} needs its own name"),
                first.span(),
                format!("`{first}` is first declared here"),
            ),
            None => {
                seen.insert(n.to_string(), n);
            }
        }
    }
}

// Rule: each route and cluster name becomes an enum variant, so two names may not become
// the same one: `api_v1` and `api__v1` are both `GatewayRoute::ApiV1`. A name that
// becomes a keyword (`self_` → `Self`) is an error too. Returns the variants, in order.
fn check_variant_names<'a>(
    errs: &mut Errors,
    kind: &str,
    enum_name: &str,
    names: impl Iterator<Item = &'a Ident>,
) -> Vec<Ident> {
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    let mut out = Vec::new();
    for n in names {
        let Some(v) = variant_name(n) else {
            errs.push(
                n.span(),
                format!(
                    "{kind} `{n}` would be `{enum_name}::{}`, which is not a usable name; rename the {kind}",
                    variant_text(&n.to_string())
                ),
            );
            out.push(n.clone());
            continue;
        };
        let text = v.to_string();
        match seen.get(&text) {
            // The same name twice is a duplicate, reported on its own.
            Some(first) if *first != n => errs.push_with_note(
                n.span(),
                format!("{kind} `{n}` and {kind} `{first}` would both be `{enum_name}::{text}`; rename one of them"),
                first.span(),
                format!("`{first}` is declared here"),
            ),
            Some(_) => {}
            None => {
                seen.insert(text, n);
            }
        }
        out.push(v);
    }
    out
}

// Rule: a `let` may not be named `tls`, which is the listener matcher: `let tls = ..;`
// would be shadowed by it in every rule.
fn check_predicate_name(errs: &mut Errors, name: &Ident) {
    if name == "tls" {
        errs.push(
            name.span(),
            "`tls` is the matcher of requests that came in over TLS; name the predicate otherwise",
        );
    }
}

// Rule: a table has at least one cluster and one route: `cluster web { .. }` and
// `route default: _ => web;`.
fn check_not_empty(errs: &mut Errors, d: &Decls) {
    if d.clusters.is_empty() {
        errs.push(
            Span::call_site(),
            "the table declares no cluster; add `cluster NAME { backends: [\"IP:PORT\"] }`",
        );
    }
    if d.routes.is_empty() {
        errs.push(
            Span::call_site(),
            "the table declares no route; add at least `route default: _ => CLUSTER;`",
        );
    }
}

// Rule: a table holds at most 65,535 rules: splits and fixed answers are numbered with a
// `u16` so a decision fits in a register.
fn check_route_count(errs: &mut Errors, d: &Decls) {
    if let Some(r) = d.routes.get(MAX_ROUTES) {
        errs.push(
            r.name.span(),
            format!("too many routes: a table holds at most {MAX_ROUTES}; split it into several proxies"),
        );
    }
}

/// Resolve a declared name to its index; an unknown name is an error with a hint:
/// ``unknown cluster `apii`; did you mean `api`?``.
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
// weights ≥ 1, or `respond(STATUS, "body")` with a status of 200–599:
// `=> split { v2: 5, v1: 95 } by cookie("uid")`, `=> respond(403, "forbidden")`.
fn check_target(
    errs: &mut Errors,
    t: &TargetExpr,
    clusters: &[String],
    splits: &mut Vec<SplitModel>,
) -> TargetModel {
    match t {
        TargetExpr::Cluster(name) => {
            TargetModel::Cluster(resolve(errs, name, clusters, "cluster").unwrap_or(0))
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
            if out.iter().map(|a| u64::from(a.1)).sum::<u64>() > u64::from(u32::MAX) {
                errs.push(
                    kw.span,
                    format!(
                        "the weights of a split add up to at most {}; scale them down",
                        u32::MAX
                    ),
                );
            }
            let by = by.as_ref().and_then(|k| cluster::check_key(errs, k));
            splits.push(SplitModel { arms: out, by });
            TargetModel::Split(splits.len() - 1)
        }
        TargetExpr::Redirect {
            status, location, ..
        } => action::check_redirect(errs, status, location),
        TargetExpr::Respond { status, body, .. } => {
            let code = match status.base10_parse::<u16>() {
                Ok(c) if (200..=599).contains(&c) => c,
                _ => {
                    errs.push(status.span(), "status must be between 200 and 599");
                    200
                }
            };
            TargetModel::Respond(code, body.value())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(table: &str) -> Option<String> {
        let parsed: ast::RouteTable = syn::parse_str(table).unwrap();
        check(&parsed).err().map(|e| {
            e.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
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
        let err = |n: usize| errors(&table(n));
        assert_eq!(
            err(MAX_ROUTES + 1).as_deref(),
            Some("too many routes: a table holds at most 65535; split it into several proxies")
        );
        assert_eq!(err(3), None);
    }

    #[test]
    fn duplicates_point_at_the_first_declaration() {
        let got = errors(
            r#"proxy P; proxy Q; cluster c { backends: ["127.0.0.1:1"] } cluster c { backends: ["127.0.0.1:2"] }
               route r: _ => c; route r: _ => c;"#,
        );
        assert_eq!(
            got.as_deref(),
            Some(
                "a table declares one proxy; `P` is already declared\n\
                 `P` is first declared here\n\
                 duplicate cluster `c`; each cluster needs its own name\n\
                 `c` is first declared here\n\
                 duplicate route `r`; each route needs its own name\n\
                 `r` is first declared here"
            )
        );
    }

    #[test]
    fn names_must_make_distinct_variants() {
        let got = errors(
            r#"proxy P; cluster c { backends: ["127.0.0.1:1"] }
               route api_v1: path("/a") => c; route api__v1: path("/b") => c; route self_: _ => c;"#,
        );
        assert_eq!(
            got.as_deref(),
            Some(
                "route `api__v1` and route `api_v1` would both be `PRoute::ApiV1`; rename one of them\n\
                 `api_v1` is declared here\n\
                 route `self_` would be `PRoute::Self`, which is not a usable name; rename the route"
            )
        );
    }

    #[test]
    fn backends_are_parsed_once() {
        let parsed: ast::RouteTable = syn::parse_str(
            r#"proxy P; cluster c { backends: ["127.0.0.1:1", "[::1]:2" weight 3, "Api.Internal.:80",
                   srv("_HTTP._tcp.api.internal")], bind_to: "10.0.0.1", resolve: { every: 5s } }
               route r: _ => c;"#,
        )
        .unwrap();
        let m = check(&parsed).map_err(|e| e.to_string()).unwrap();
        let c = &m.clusters[0];
        assert_eq!(
            c.backends,
            vec![
                BackendModel {
                    endpoint: EndpointModel::Addr("127.0.0.1:1".parse().unwrap()),
                    weight: 1
                },
                BackendModel {
                    endpoint: EndpointModel::Addr("[::1]:2".parse().unwrap()),
                    weight: 3
                },
                BackendModel {
                    endpoint: EndpointModel::Name {
                        host: "api.internal.".into(),
                        port: 80
                    },
                    weight: 1
                },
                BackendModel {
                    endpoint: EndpointModel::Srv("_http._tcp.api.internal".into()),
                    weight: 1
                },
            ]
        );
        assert_eq!(c.resolve.every_ms, Some(5000));
        assert_eq!(c.bind_to, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn user_input_never_panics() {
        // Each of these once reached a panic (a byte slice inside a character, an overflow).
        for table in [
            r#"proxy P; cluster c { backends: ["127.0.0.1:1"] } route r: _ => abcñ;"#,
            r#"proxy P; cluster c { backends: ["127.0.0.1:1"], health: tcp { every: 18446744073709551615h } } route r: _ => c;"#,
        ] {
            assert!(errors(table).is_some(), "{table}");
        }
    }
}
