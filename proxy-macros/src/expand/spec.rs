//! The table's declarations as `static` data: `Table::CLUSTERS`, `ROUTES`, `SPLITS` and
//! `RESPONSES`. Every value is finished here (socket addresses, durations, indices), so
//! the runtime parses nothing from the table.

use crate::model::*;
use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use std::net::{IpAddr, SocketAddr};
use syn::Ident;

fn opt_ms(ms: Option<u64>) -> TokenStream {
    match ms {
        Some(ms) => {
            quote!(::core::option::Option::Some(::proxy_runtime::__private::Duration::from_millis(#ms)))
        }
        None => quote!(::core::option::Option::None),
    }
}

fn opt_str(s: &Option<String>) -> TokenStream {
    match s {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

pub fn key(k: &KeyModel) -> TokenStream {
    let p = quote!(::proxy_runtime::__private::Key);
    match k {
        KeyModel::Cookie(n) => quote!(#p::Cookie(#n)),
        KeyModel::Header(n) => quote!(#p::Header(#n)),
        KeyModel::Query(n) => quote!(#p::Query(#n)),
        KeyModel::ClientIp => quote!(#p::ClientIp),
        KeyModel::Path => quote!(#p::Path),
        KeyModel::Host => quote!(#p::Host),
    }
}

/// `"10.0.0.1:9001"` as `socket_v4([10, 0, 0, 1], 9001)`: a `const` value.
fn socket_addr(a: &SocketAddr) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let port = a.port();
    match a {
        SocketAddr::V4(a) => {
            let ip = a.ip().octets().map(Literal::u8_unsuffixed);
            quote!(#pv::socket_v4([#(#ip),*], #port))
        }
        SocketAddr::V6(a) => {
            let ip = a.ip().segments().map(Literal::u16_unsuffixed);
            let scope = a.scope_id();
            quote!(#pv::socket_v6([#(#ip),*], #port, #scope))
        }
    }
}

/// `"10.0.0.1"` as `ip_v4([10, 0, 0, 1])`.
fn ip_addr(a: &IpAddr) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    match a {
        IpAddr::V4(a) => {
            let ip = a.octets().map(Literal::u8_unsuffixed);
            quote!(#pv::ip_v4([#(#ip),*]))
        }
        IpAddr::V6(a) => {
            let ip = a.segments().map(Literal::u16_unsuffixed);
            quote!(#pv::ip_v6([#(#ip),*]))
        }
    }
}

/// One `ClusterSpec`.
pub fn cluster_spec(c: &ClusterModel) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let name = c.name.to_string();
    let backends = c.backends.iter().map(|b| {
        let w = b.weight;
        let endpoint = match &b.endpoint {
            EndpointModel::Addr(addr) => {
                let addr = socket_addr(addr);
                quote!(#pv::Endpoint::Addr(#addr))
            }
            EndpointModel::Name { host, port } => {
                quote!(#pv::Endpoint::Name { host: #host, port: #port })
            }
            EndpointModel::Srv(name) => quote!(#pv::Endpoint::Srv(#name)),
        };
        quote!(#pv::BackendSpec { endpoint: #endpoint, weight: #w })
    });
    let resolve = match c.resolve.every_ms {
        Some(ms) => quote!(#pv::Refresh::Every(#pv::Duration::from_millis(#ms))),
        None => quote!(#pv::Refresh::Ttl),
    };
    let k = c
        .balance
        .key
        .as_ref()
        .map(key)
        .unwrap_or_else(|| quote!(#pv::Key::ClientIp));
    let balance = match c.balance.kind {
        BalanceKind::RoundRobin => quote!(#pv::Balance::RoundRobin),
        BalanceKind::Random => quote!(#pv::Balance::Random),
        BalanceKind::Consistent => quote!(#pv::Balance::Consistent(#k)),
        BalanceKind::Hash => quote!(#pv::Balance::Hash(#k)),
    };
    let health = match &c.health {
        Some(h) => {
            let kind = match &h.http {
                Some(HttpProbeModel { path, host, expect }) => {
                    quote!(#pv::HealthKind::Http { path: #path, host: #host, expect: #expect })
                }
                None => match &h.grpc {
                    Some(service) => quote!(#pv::HealthKind::Grpc { service: #service }),
                    None => quote!(#pv::HealthKind::Tcp),
                },
            };
            let (every, fall, rise, timeout, start_unhealthy) =
                (h.every_ms, h.fall, h.rise, h.timeout_ms, h.start_unhealthy);
            quote!(::core::option::Option::Some(#pv::HealthSpec {
                kind: #kind,
                every: #pv::Duration::from_millis(#every),
                fall: #fall,
                rise: #rise,
                timeout: #pv::Duration::from_millis(#timeout),
                start_unhealthy: #start_unhealthy,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    let retries = match c.retries {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let backup = match c.backup {
        Some(i) => quote!(::core::option::Option::Some(#i)),
        None => quote!(::core::option::Option::None),
    };
    let tls = match &c.tls {
        Some(t) => {
            let (sni, verify, vh, alpn) = (
                &t.sni,
                t.verify,
                t.verify_hostname,
                Ident::new(t.alpn, Span::call_site()),
            );
            let (acn, ca, cc, ck) = (
                opt_str(&t.alternative_cn),
                opt_str(&t.ca),
                opt_str(&t.client_cert),
                opt_str(&t.client_key),
            );
            quote!(::core::option::Option::Some(#pv::TlsSpec {
                sni: #sni, verify: #verify, verify_hostname: #vh, alternative_cn: #acn,
                alpn: #pv::Alpn::#alpn, ca: #ca, client_cert: #cc, client_key: #ck,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    let passive = match &c.passive {
        Some(PassiveModel {
            failures,
            cooldown_ms,
            count_5xx,
        }) => quote!(::core::option::Option::Some(#pv::PassiveSpec {
            failures: #failures,
            cooldown: #pv::Duration::from_millis(#cooldown_ms),
            count_5xx: #count_5xx,
        })),
        None => quote!(::core::option::Option::None),
    };
    let bind_to = match &c.bind_to {
        Some(ip) => {
            let ip = ip_addr(ip);
            quote!(::core::option::Option::Some(#ip))
        }
        None => quote!(::core::option::Option::None),
    };
    let keepalive = opt_ms(c.tcp_keepalive_ms);
    let h2c = c.h2c;
    let t = &c.timeouts;
    let (tc, ttc, tr, tw, ti, tws) = (
        opt_ms(t.connect),
        opt_ms(t.total_connect),
        opt_ms(t.read),
        opt_ms(t.write),
        opt_ms(t.idle),
        opt_ms(t.websocket),
    );
    quote!(#pv::ClusterSpec {
        name: #name,
        backends: &[#(#backends),*],
        balance: #balance,
        health: #health,
        retries: #retries,
        backup: #backup,
        tls: #tls,
        timeouts: #pv::Timeouts { connect: #tc, total_connect: #ttc, read: #tr, write: #tw, idle: #ti, websocket: #tws },
        passive: #passive,
        bind_to: #bind_to,
        tcp_keepalive: #keepalive,
        h2c: #h2c,
        resolve: #resolve,
    })
}

/// One `RouteSpec` per rule: its name and text for `--routes`, and whether it lets TRACE
/// through.
pub fn route_specs(m: &Model) -> impl Iterator<Item = TokenStream> + '_ {
    m.routes.iter().map(|r| {
        let (n, mt, tt) = (r.name.to_string(), &r.matcher_text, &r.target_text);
        let trace = names_method(&r.matcher, &m.preds, "TRACE");
        let actions = match &r.actions {
            Some(a) => {
                let a = actions(a);
                quote!(::core::option::Option::Some(&#a))
            }
            None => quote!(::core::option::Option::None),
        };
        let check = check(&r.matcher);
        quote!(::proxy_runtime::__private::RouteSpec {
            name: #n, matcher: #mt, target: #tt, trace: #trace, actions: #actions,
            check: &#check,
        })
    })
}

/// A matcher as a constant `Check` expression (for `--explain`).
fn check(m: &Matcher) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let field = |f: &Field| match f {
        Field::Header => quote!(#pv::Field::Header),
        Field::Query => quote!(#pv::Field::Query),
        Field::Cookie => quote!(#pv::Field::Cookie),
    };
    match m {
        Matcher::Any => quote!(#pv::Check::Any),
        Matcher::Pred(i) => quote!(#pv::Check::Pred(#i)),
        Matcher::Not(x) => {
            let x = check(x);
            quote!(#pv::Check::Not(&#x))
        }
        Matcher::And(a, b) => {
            let (a, b) = (check(a), check(b));
            quote!(#pv::Check::And(&#a, &#b))
        }
        Matcher::Or(a, b) => {
            let (a, b) = (check(a), check(b));
            quote!(#pv::Check::Or(&#a, &#b))
        }
        Matcher::NotEqual(f, n, v) => {
            let f = field(f);
            quote!(#pv::Check::NotEqual(#f, #n, #v))
        }
        Matcher::Atom(a) => match a {
            Atom::HostExact(h) => quote!(#pv::Check::Host(#h)),
            Atom::HostSuffix(h) => quote!(#pv::Check::HostSuffix(#h)),
            Atom::Path(p) => quote!(#pv::Check::Path(#p)),
            Atom::PathPrefix(p) => quote!(#pv::Check::PathPrefix(#p)),
            Atom::PathRegex(r) => quote!(#pv::Check::PathRegex(#r)),
            Atom::Method(ms) => quote!(#pv::Check::Method(&[#(#ms),*])),
            Atom::ClientIp { v6, net, prefix } => {
                quote!(#pv::Check::ClientIp(#pv::Cidr { v6: #v6, net: #net, prefix: #prefix }))
            }
            Atom::Tls => quote!(#pv::Check::Tls),
            Atom::Port(p) => quote!(#pv::Check::Port(#p)),
            Atom::Field(f, n, t) => {
                let f = field(f);
                let t = match t {
                    Test::Present => quote!(#pv::FieldTest::Present),
                    Test::Eq(v) => quote!(#pv::FieldTest::Eq(#v)),
                    Test::Contains(v) => quote!(#pv::FieldTest::Contains(#v)),
                    Test::StartsWith(v) => quote!(#pv::FieldTest::StartsWith(#v)),
                };
                quote!(#pv::Check::Field(#f, #n, #t))
            }
        },
    }
}

/// `const PREDICATES` of the `Table` impl: each `let` as data, for `--explain`.
pub fn predicates(m: &Model) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    if m.preds.is_empty() {
        return TokenStream::new();
    }
    let preds = m.preds.iter().map(|p| {
        let name = p.name.to_string();
        let c = check(&p.matcher);
        quote!(#pv::PredicateSpec { name: #name, check: &#c })
    });
    quote!(const PREDICATES: &'static [#pv::PredicateSpec] = &[#(#preds),*];)
}

/// A rule's `Actions` as a constant expression.
fn actions(a: &ActionsModel) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let headers = |list: &[HeaderActionModel]| -> Vec<TokenStream> {
        list.iter()
            .map(|h| match h {
                HeaderActionModel::Set(n, v) => quote!(#pv::HeaderAction::Set(#n, #v)),
                HeaderActionModel::Append(n, v) => quote!(#pv::HeaderAction::Append(#n, #v)),
                HeaderActionModel::Remove(n) => quote!(#pv::HeaderAction::Remove(#n)),
            })
            .collect()
    };
    let request = headers(&a.request_headers);
    let response = headers(&a.response_headers);
    let path = match &a.path {
        Some(PathRewriteModel::Prefix { strip, add }) => {
            quote!(::core::option::Option::Some(#pv::PathRewrite::Prefix { strip: #strip, add: #add }))
        }
        Some(PathRewriteModel::Regex {
            pattern,
            replacement,
        }) => quote!(::core::option::Option::Some(#pv::PathRewrite::Regex {
            pattern: #pattern, replacement: #replacement,
        })),
        None => quote!(::core::option::Option::None),
    };
    let limit = match &a.limit {
        Some(l) => {
            let (requests, secs) = (l.requests, l.per_secs);
            let by = match &l.by {
                Some(k) => {
                    let k = key(k);
                    quote!(::core::option::Option::Some(#k))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(::core::option::Option::Some(#pv::LimitSpec {
                requests: #requests,
                per: #pv::Duration::from_secs(#secs),
                by: #by,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    let max_body = match a.max_body {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    quote!(#pv::Actions {
        request_headers: &[#(#request),*],
        response_headers: &[#(#response),*],
        path: #path,
        limit: #limit,
        max_body: #max_body,
    })
}

/// The `redirect(..)` targets of the table, in rule order: `Table::REDIRECTS`.
pub fn redirect_specs(m: &Model) -> impl Iterator<Item = TokenStream> + '_ {
    let pv = quote!(::proxy_runtime::__private);
    m.routes.iter().filter_map(move |r| match &r.target {
        TargetModel::Redirect(status, pieces) => {
            let pieces = pieces.iter().map(|p| match p {
                PieceModel::Text(t) => quote!(#pv::Piece::Text(#t)),
                PieceModel::Host => quote!(#pv::Piece::Host),
                PieceModel::Path => quote!(#pv::Piece::Path),
                PieceModel::Query => quote!(#pv::Piece::Query),
                PieceModel::Uri => quote!(#pv::Piece::Uri),
            });
            Some(quote!(#pv::RedirectSpec { status: #status, location: &[#(#pieces),*] }))
        }
        _ => None,
    })
}

/// The index in `Table::REDIRECTS` of the redirect of rule `route` (as `respond_index`).
pub fn redirect_index(m: &Model, route: usize) -> u16 {
    m.routes[..route]
        .iter()
        .filter(|r| matches!(r.target, TargetModel::Redirect(..)))
        .count() as u16
}

/// `const TRUSTED_PROXIES` and `const FORWARDING` of the `Table` impl, when the table does
/// not keep the defaults.
pub fn forwarding(m: &Model) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let mut out = TokenStream::new();
    if !m.trusted_proxies.is_empty() {
        let cidrs = m.trusted_proxies.iter().map(|c| {
            let (v6, net, prefix) = (c.v6, c.net, c.prefix);
            quote!(#pv::Cidr { v6: #v6, net: #net, prefix: #prefix })
        });
        out.extend(quote!(const TRUSTED_PROXIES: &'static [#pv::Cidr] = &[#(#cidrs),*];));
    }
    if !m.x_forwarded || m.via.is_some() {
        let x = m.x_forwarded;
        let via = match &m.via {
            Some(v) => quote!(::core::option::Option::Some(#v)),
            None => quote!(::core::option::Option::None),
        };
        out.extend(quote!(const FORWARDING: #pv::Forwarding = #pv::Forwarding { x_forwarded: #x, via: #via };));
    }
    out
}

/// `const LISTENER_PORT: bool = true;` when a rule or predicate tests `port(..)`: only
/// then does the runtime look the listener's port up for each request.
pub fn listener_port(m: &Model) -> TokenStream {
    fn uses_port(matcher: &Matcher) -> bool {
        match matcher {
            Matcher::Atom(Atom::Port(_)) => true,
            Matcher::Not(a) => uses_port(a),
            Matcher::And(a, b) | Matcher::Or(a, b) => uses_port(a) || uses_port(b),
            _ => false,
        }
    }
    let used = m.routes.iter().map(|r| &r.matcher);
    if used
        .chain(m.preds.iter().map(|p| &p.matcher))
        .any(uses_port)
    {
        quote!(
            const LISTENER_PORT: bool = true;
        )
    } else {
        TokenStream::new()
    }
}

/// `matcher` (or a predicate it uses) names `method` in a `method(..)` test.
fn names_method(matcher: &Matcher, preds: &[PredModel], method: &str) -> bool {
    match matcher {
        Matcher::Atom(Atom::Method(methods)) => methods.iter().any(|m| m == method),
        Matcher::Pred(i) => preds
            .get(*i)
            .is_some_and(|p| names_method(&p.matcher, preds, method)),
        Matcher::Not(m) => names_method(m, preds, method),
        Matcher::And(a, b) | Matcher::Or(a, b) => {
            names_method(a, preds, method) || names_method(b, preds, method)
        }
        Matcher::Any | Matcher::Atom(_) | Matcher::NotEqual(..) => false,
    }
}

/// `const PATHS` of the `Table` impl, when the table does not keep the default.
pub fn path_policy(policy: PathPolicyModel) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let variant = match policy {
        PathPolicyModel::Reject => return TokenStream::new(),
        PathPolicyModel::Decode => quote!(Decode),
        PathPolicyModel::Forward => quote!(Forward),
    };
    quote!(const PATHS: #pv::PathPolicy = #pv::PathPolicy::#variant;)
}

/// One `SplitSpec` per `split { .. }` target, in rule order.
pub fn split_specs(m: &Model) -> impl Iterator<Item = TokenStream> + '_ {
    m.splits.iter().map(|s| {
        let pv = quote!(::proxy_runtime::__private);
        let arms = s.arms.iter().map(|(c, w)| quote!((#c, #w)));
        // `check` caps the sum at `u32::MAX`.
        let total: u32 = s.arms.iter().fold(0u32, |t, a| t.saturating_add(a.1));
        let by = match &s.by {
            Some(k) => {
                let k = key(k);
                quote!(::core::option::Option::Some(#k))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(#pv::SplitSpec { arms: &[#(#arms),*], total: #total, by: #by })
    })
}

/// The `respond(..)` targets of the table, in rule order: `Table::RESPONSES`.
fn responses(m: &Model) -> impl Iterator<Item = (u16, &str)> {
    m.routes.iter().filter_map(|r| match &r.target {
        TargetModel::Respond(status, body) => Some((*status, body.as_str())),
        _ => None,
    })
}

pub fn response_specs(m: &Model) -> impl Iterator<Item = TokenStream> + '_ {
    responses(m).map(|(status, body)| {
        quote!(::proxy_runtime::__private::Response { status: #status, body: #body })
    })
}

/// The index in `Table::RESPONSES` of the `respond(..)` target of rule `route`: how many
/// rules before it answer with `respond(..)` (`responses` lists them in rule order). The
/// checker caps a table at 65,535 rules, so the count fits.
pub fn respond_index(m: &Model, route: usize) -> u16 {
    let before = m.routes[..route]
        .iter()
        .filter(|r| matches!(r.target, TargetModel::Respond(..)))
        .count();
    before as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_const_values() {
        let cases = [
            ("127.0.0.1:9001", "socket_v4 ([127 , 0 , 0 , 1] , 9001u16)"),
            (
                "[2001:db8::1]:443",
                "socket_v6 ([8193 , 3512 , 0 , 0 , 0 , 0 , 0 , 1] , 443u16 , 0u32)",
            ),
        ];
        for (text, want) in cases {
            let got = socket_addr(&text.parse().unwrap()).to_string();
            assert!(got.ends_with(want), "{text}: {got}");
        }
        let got = ip_addr(&"10.0.0.2".parse().unwrap()).to_string();
        assert!(got.ends_with("ip_v4 ([10 , 0 , 0 , 2])"), "{got}");
    }
}
