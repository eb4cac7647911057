//! Code generation from a checked [`Model`]. Runtime items are reached only through
//! `::proxy_runtime::__private`, std items through `::core`/`::std`, and locals are
//! prefixed `__sy_`, so nothing in the user's scope can change what this expands to.

use crate::lower::{plan, Block, Check, Plan};
use crate::model::*;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

fn camel(ident: &Ident) -> Ident {
    let s = ident.to_string();
    let s = s.strip_prefix("r#").unwrap_or(&s);
    let mut out = String::new();
    let mut up = true;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'R');
    }
    Ident::new(&out, ident.span())
}

fn bstr(s: &str) -> Literal {
    Literal::byte_string(s.as_bytes())
}

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

fn key(k: &Key) -> TokenStream {
    let p = quote!(::proxy_runtime::__private::Key);
    match k {
        Key::Cookie(n) => quote!(#p::Cookie(#n)),
        Key::Header(n) => quote!(#p::Header(#n)),
        Key::Query(n) => quote!(#p::Query(#n)),
        Key::ClientIp => quote!(#p::ClientIp),
        Key::Path => quote!(#p::Path),
        Key::Host => quote!(#p::Host),
    }
}

fn cluster_spec(c: &Cluster) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let name = c.name.to_string();
    let backends = c
        .backends
        .iter()
        .map(|(a, w)| quote!(#pv::BackendSpec { addr: #a, weight: #w }));
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
                Some((path, host, expect)) => {
                    quote!(#pv::HealthKind::Http { path: #path, host: #host, expect: #expect })
                }
                None => quote!(#pv::HealthKind::Tcp),
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
    let retries = c.retries;
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
    let passive = match c.passive {
        Some((failures, cooldown)) => quote!(::core::option::Option::Some(#pv::PassiveSpec {
            failures: #failures,
            cooldown: #pv::Duration::from_millis(#cooldown),
        })),
        None => quote!(::core::option::Option::None),
    };
    let bind_to = opt_str(&c.bind_to);
    let keepalive = opt_ms(c.tcp_keepalive_ms);
    let t = &c.timeouts;
    let (tc, ttc, tr, tw, ti) = (
        opt_ms(t.connect),
        opt_ms(t.total_connect),
        opt_ms(t.read),
        opt_ms(t.write),
        opt_ms(t.idle),
    );
    quote!(#pv::ClusterSpec {
        name: #name,
        backends: &[#(#backends),*],
        balance: #balance,
        health: #health,
        retries: #retries,
        backup: #backup,
        tls: #tls,
        timeouts: #pv::Timeouts { connect: #tc, total_connect: #ttc, read: #tr, write: #tw, idle: #ti },
        passive: #passive,
        bind_to: #bind_to,
        tcp_keepalive: #keepalive,
    })
}

/// The local that caches the value of query parameter or cookie `name` for one request.
fn field_local(field: Field, name: &str) -> Ident {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    let kind = match field {
        Field::Query => "query",
        Field::Cookie => "cookie",
        Field::Header => "header",
    };
    format_ident!("__sy_{}_{}", kind, hex)
}

/// One lazily filled local per header, query parameter and cookie the table tests, so a
/// request looks each header up, and parses its `Cookie` header and query string, at most
/// once per name.
fn field_locals(m: &Model) -> TokenStream {
    fn walk(c: &Cond, out: &mut Vec<(Field, String)>) {
        match c {
            Cond::Not(inner) => walk(inner, out),
            Cond::And(parts) | Cond::Or(parts) => parts.iter().for_each(|p| walk(p, out)),
            Cond::Atom(Atom::Field(f, name, _)) => {
                if !out.iter().any(|(g, n)| g == f && n == name) {
                    out.push((*f, name.clone()));
                }
            }
            _ => {}
        }
    }
    let mut fields = Vec::new();
    for c in m
        .preds
        .iter()
        .map(|p| &p.cond)
        .chain(m.routes.iter().map(|r| &r.cond))
    {
        walk(c, &mut fields);
    }
    let pv = quote!(::proxy_runtime::__private);
    // All cookies come from the same `Cookie` lines: look those up once too.
    let cookie_lines = fields.iter().any(|(f, _)| *f == Field::Cookie).then(|| {
        quote!(let __sy_cookie_lines: ::core::cell::OnceCell<#pv::HeaderLines<'_>> = ::core::cell::OnceCell::new();)
    });
    let locals = fields.iter().map(|(f, n)| {
        let local = field_local(*f, n);
        match f {
            Field::Header => quote!(
                let #local: ::core::cell::OnceCell<#pv::HeaderLines<'_>> = ::core::cell::OnceCell::new();
            ),
            _ => quote!(
                let #local: ::core::cell::OnceCell<::core::option::Option<&[u8]>> = ::core::cell::OnceCell::new();
            ),
        }
    });
    quote!(#cookie_lines #(#locals)*)
}

/// The bytes every match of `re` starts with, when it is anchored at the start (`^`) and
/// they are known; `None` when there is nothing to test before running the regex.
fn regex_required_prefix(re: &str) -> Option<Vec<u8>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::Look;
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(re)
        .ok()?;
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let prefix = seq.longest_common_prefix()?;
    (!prefix.is_empty()).then(|| prefix.to_vec())
}

/// The test of one condition against the view `__sy_v`.
fn cond(c: &Cond) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    match c {
        Cond::True => quote!(true),
        Cond::Pred(i) => {
            let p = format_ident!("__sy_p{}", *i);
            quote!(#p)
        }
        Cond::Not(inner) => {
            let inner = cond(inner);
            quote!(!(#inner))
        }
        Cond::And(parts) => {
            let parts = parts.iter().map(cond);
            quote!((#(#parts)&&*))
        }
        Cond::Or(parts) => {
            let parts = parts.iter().map(cond);
            quote!((#(#parts)||*))
        }
        Cond::Atom(a) => match a {
            Atom::HostExact(h) => {
                let h = bstr(h);
                quote!((__sy_v.host == #h))
            }
            Atom::HostSuffix(s) => {
                let s = bstr(s);
                quote!(#pv::host_wildcard(__sy_v.host, #s))
            }
            Atom::Path(p) => {
                let p = bstr(p);
                quote!((__sy_v.path == #p))
            }
            Atom::PathPrefix(p) => {
                let p = bstr(p);
                quote!(#pv::path_prefix_segment(__sy_v.path, #p))
            }
            Atom::PathRegex(re) => {
                // `^/users/[0-9]+$` can only match under `/users/`: a `starts_with` turns
                // most paths away before the regex engine is entered.
                let guard = regex_required_prefix(re).map(|p| {
                    let p = proc_macro2::Literal::byte_string(&p);
                    quote!(__sy_v.path.starts_with(#p) &&)
                });
                quote!({
                    static __SY_RE: #pv::LazyRegex = #pv::LazyRegex::new(|| {
                        // Checked by `routes!` with the same regex crate; cannot fail.
                        #pv::Regex::new(#re).unwrap_or_else(|_| #pv::Regex::new("$^").unwrap())
                    });
                    #guard __SY_RE.is_match(__sy_v.path)
                })
            }
            Atom::Method(ms) => {
                let ms = ms.iter().map(|m| Ident::new(m, Span::call_site()));
                quote!((#(__sy_v.req.method == #pv::Method::#ms)||*))
            }
            Atom::ClientIp { v6, net, prefix } => {
                quote!(#pv::ip_in(__sy_v.client, #v6, #net, #prefix))
            }
            Atom::Field(field, name, test) => {
                let (get, decoded) = match field {
                    Field::Header => {
                        // The name is parsed once, at compile time, not per request.
                        let header = quote!({
                            static __SY_H: #pv::HeaderName = #pv::HeaderName::from_static(#name);
                            &__SY_H
                        });
                        // Looked up once per request, on first use (see `field_locals`).
                        let local = field_local(*field, name);
                        let lines = quote!(#local.get_or_init(|| __sy_v.header_lines(#header)));
                        return match test {
                            Test::Present => quote!(#lines.present()),
                            Test::Eq(v) => {
                                let v = bstr(v);
                                quote!(#lines.any(|__sy_x| __sy_x == #v))
                            }
                            Test::Contains(v) => {
                                let v = bstr(v);
                                quote!(#lines.any(|__sy_x| #pv::contains(__sy_x, #v)))
                            }
                            Test::StartsWith(v) => {
                                let v = bstr(v);
                                quote!(#lines.any(|__sy_x| __sy_x.starts_with(#v)))
                            }
                        };
                    }
                    // Looked up once per request, on first use (see `field_locals`).
                    Field::Query => {
                        let local = field_local(*field, name);
                        (quote!((*#local.get_or_init(|| __sy_v.query(#name)))), true)
                    }
                    Field::Cookie => {
                        let local = field_local(*field, name);
                        (
                            quote!((*#local.get_or_init(|| #pv::cookie_in(
                                __sy_cookie_lines.get_or_init(|| __sy_v.cookie_lines()),
                                #name,
                            )))),
                            false,
                        )
                    }
                };
                let test = match (test, decoded) {
                    (Test::Present, _) => return quote!(#get.is_some()),
                    (Test::Eq(v), true) => {
                        let v = bstr(v);
                        quote!(#pv::decoded_eq(__sy_x, #v, true))
                    }
                    (Test::Contains(v), true) => {
                        let v = bstr(v);
                        quote!(#pv::decoded_contains(__sy_x, #v, true))
                    }
                    (Test::StartsWith(v), true) => {
                        let v = bstr(v);
                        quote!(#pv::decoded_starts_with(__sy_x, #v, true))
                    }
                    (Test::Eq(v), false) => {
                        let v = bstr(v);
                        quote!(__sy_x == #v)
                    }
                    (Test::Contains(v), false) => {
                        let v = bstr(v);
                        quote!(#pv::contains(__sy_x, #v))
                    }
                    (Test::StartsWith(v), false) => {
                        let v = bstr(v);
                        quote!(__sy_x.starts_with(#v))
                    }
                };
                quote!(match #get { ::core::option::Option::Some(__sy_x) => #test, ::core::option::Option::None => false })
            }
        },
    }
}

/// The `respond(..)` targets of the table, in rule order: `Table::RESPONSES`.
fn responses(m: &Model) -> impl Iterator<Item = (u16, &str)> {
    m.routes.iter().filter_map(|r| match &r.target {
        Target::Respond(status, body) => Some((*status, body.as_str())),
        _ => None,
    })
}

/// The index in `Table::RESPONSES` of the `respond(..)` target of rule `route`: how many
/// rules before it answer with `respond(..)` (`responses` lists them in rule order). The
/// checker caps a table at 65,535 rules, so the count fits.
fn respond_index(m: &Model, route: usize) -> u16 {
    let before = m.routes[..route]
        .iter()
        .filter(|r| matches!(r.target, Target::Respond(..)))
        .count();
    before as u16
}

/// The target of rule `route`.
fn target(m: &Model, route: usize, cluster_enum: &Ident) -> TokenStream {
    let t = &m.routes[route].target;
    let pv = quote!(::proxy_runtime::__private);
    match t {
        Target::Cluster(i) => {
            let v = camel(&m.clusters[*i].name);
            quote!(#pv::Target::Cluster(#cluster_enum::#v))
        }
        Target::Split(i) => {
            let i = *i as u16;
            quote!(#pv::Target::Split(#i))
        }
        Target::Respond(..) => {
            let i = respond_index(m, route);
            quote!(#pv::Target::Respond(#i))
        }
    }
}

/// The rules of one list, tried in order.
fn rule_checks(
    m: &Model,
    rules: &[Check],
    route_enum: &Ident,
    cluster_enum: &Ident,
) -> TokenStream {
    let checks = rules.iter().map(|(i, residual)| {
        let r = &m.routes[*i];
        let variant = camel(&r.name);
        let t = target(m, *i, cluster_enum);
        let hit =
            quote!(break '__sy_decide (::core::option::Option::Some(#route_enum::#variant), #t));
        match residual {
            Cond::True => quote!(#hit;),
            c => {
                let c = cond(c);
                quote!(if #c { #hit; })
            }
        }
    });
    quote!(#(#checks)*)
}

/// Blocks in order; each falls through to the next when none of its rules matches.
fn blocks(
    m: &Model,
    plan: &Plan,
    blocks_: &[Block],
    route_enum: &Ident,
    cluster_enum: &Ident,
) -> TokenStream {
    let parts = blocks_.iter().map(|b| match b {
        Block::Linear(rules) => rule_checks(m, rules, route_enum, cluster_enum),
        Block::Hosts(per_host) => {
            let arms = per_host.iter().map(|(id, inner)| {
                let inner = blocks(m, plan, inner, route_enum, cluster_enum);
                quote!(#id => { #inner })
            });
            quote!(match __sy_host_id { #(#arms)* _ => {} })
        }
        Block::Prefixes { prefixes, under } => {
            let walk = prefix_trie(prefixes);
            let arms = under.iter().enumerate().map(|(k, rules)| {
                let checks = rule_checks(m, rules, route_enum, cluster_enum);
                quote!(#k => { #checks })
            });
            quote!({
                let __sy_node: usize = { #walk };
                match __sy_node {
                    #(#arms)*
                    _ => {}
                }
            })
        }
    });
    quote!(#(#parts)*)
}

/// A byte trie over `prefixes`, walked once over the path: evaluates to the index of the
/// longest prefix the path is under (segment-aware), or `usize::MAX`.
fn prefix_trie(prefixes: &[String]) -> TokenStream {
    #[derive(Default)]
    struct Node {
        end: Option<(usize, bool)>,
        children: std::collections::BTreeMap<u8, Node>,
    }
    let mut root = Node::default();
    for (k, p) in prefixes.iter().enumerate() {
        let mut n = &mut root;
        for &b in p.as_bytes() {
            n = n.children.entry(b).or_default();
        }
        n.end = Some((k, p.ends_with('/')));
    }
    // Expands to nested `match`es on the byte at `depth`; runs of single children become
    // one slice comparison.
    fn gen(n: &Node, depth: usize) -> TokenStream {
        let end = n.end.map(|(k, slash)| {
            if slash {
                quote!(__sy_node = #k;)
            } else {
                quote!(if __sy_p.len() == #depth || __sy_p[#depth] == b'/' { __sy_node = #k; })
            }
        });
        let next = match n.children.len() {
            0 => quote!(),
            1 => {
                let mut run = Vec::new();
                let mut at = n;
                while at.children.len() == 1 && (run.is_empty() || at.end.is_none()) {
                    let (b, child) = at.children.iter().next().expect("one child");
                    run.push(*b);
                    at = child;
                }
                let lit = Literal::byte_string(&run);
                let (from, to) = (depth, depth + run.len());
                let inner = gen(at, to);
                quote!(if __sy_p.get(#from..#to) == ::core::option::Option::Some(&#lit[..]) { #inner })
            }
            _ => {
                let arms = n.children.iter().map(|(b, child)| {
                    let inner = gen(child, depth + 1);
                    let b = Literal::u8_suffixed(*b);
                    quote!(::core::option::Option::Some(#b) => { #inner })
                });
                quote!(match __sy_p.get(#depth).copied() { #(#arms)* _ => {} })
            }
        };
        quote!(#end #next)
    }
    let body = gen(&root, 0);
    quote!(
        let __sy_p: &[u8] = __sy_v.path;
        let mut __sy_node = usize::MAX;
        #body
        __sy_node
    )
}

/// The request's host as an index into `plan.hosts` (`usize::MAX` for none of them): a
/// `match` bucketed by length first, so a request compares against few names.
fn host_lookup(plan: &Plan) -> TokenStream {
    if plan.hosts.is_empty() {
        return quote!();
    }
    let mut by_len: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (id, h) in plan.hosts.iter().enumerate() {
        by_len.entry(h.len()).or_default().push(id);
    }
    // Within a length, the host is compared as a fixed-size array: the compiler turns
    // `[u8; N] == [u8; N]` into a few word compares instead of a call to `memcmp`.
    //     16 => match <&[u8; 16]>::try_from(host) {
    //         Ok(h) => if h == b"api0.example.com" { 0 } else if .. { 1 } else { MAX }, ..
    let len_arms = by_len.iter().map(|(len, ids)| {
        let tests = ids.iter().map(|&id| {
            let h = proc_macro2::Literal::byte_string(plan.hosts[id].as_bytes());
            quote!(if __sy_h == #h { #id } else)
        });
        quote!(#len => match <&[u8; #len]>::try_from(__sy_v.host) {
            ::core::result::Result::Ok(__sy_h) => #(#tests)* { usize::MAX },
            ::core::result::Result::Err(_) => usize::MAX,
        },)
    });
    quote!(let __sy_host_id: usize = match __sy_v.host.len() { #(#len_arms)* _ => usize::MAX };)
}

/// The whole expansion.
pub fn routes(m: &Model) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let proxy = &m.proxy;
    let proxy_attrs = &m.proxy_attrs;
    let name = proxy.to_string();
    let route_enum = format_ident!("{}Route", proxy);
    let cluster_enum = format_ident!("{}Cluster", proxy);
    let ctx = format_ident!("{}Ctx", proxy);
    let preds_ty = format_ident!("{}Predicates", proxy);

    let route_variants: Vec<Ident> = m.routes.iter().map(|r| camel(&r.name)).collect();
    let route_names: Vec<String> = m.routes.iter().map(|r| r.name.to_string()).collect();
    let route_docs = m.routes.iter().map(|r| {
        let attrs = &r.attrs;
        let doc = format!(
            " `route {}: {} => {};`",
            r.name, r.matcher_text, r.target_text
        );
        quote!(#(#attrs)* #[doc = ""] #[doc = #doc])
    });
    let cluster_variants: Vec<Ident> = m.clusters.iter().map(|c| camel(&c.name)).collect();
    let cluster_names: Vec<String> = m.clusters.iter().map(|c| c.name.to_string()).collect();
    let cluster_docs = m.clusters.iter().map(|c| {
        let attrs = &c.attrs;
        quote!(#(#attrs)*)
    });
    let cluster_idx: Vec<usize> = (0..m.clusters.len()).collect();
    let specs = m.clusters.iter().map(cluster_spec);
    let route_specs = m.routes.iter().map(|r| {
        let (n, mt, tt) = (r.name.to_string(), &r.matcher_text, &r.target_text);
        quote!(#pv::RouteSpec { name: #n, matcher: #mt, target: #tt })
    });
    let response_specs =
        responses(m).map(|(status, body)| quote!(#pv::Response { status: #status, body: #body }));
    let split_specs = m.splits.iter().map(|s| {
        let arms = s.arms.iter().map(|(c, w)| quote!((#c, #w)));
        let total: u32 = s.arms.iter().map(|a| a.1).sum();
        let by = match &s.by {
            Some(k) => {
                let k = key(k);
                quote!(::core::option::Option::Some(#k))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(#pv::SplitSpec { arms: &[#(#arms),*], total: #total, by: #by })
    });

    let pred_fields: Vec<&Ident> = m.preds.iter().map(|p| &p.name).collect();
    let pred_docs: Vec<TokenStream> = m
        .preds
        .iter()
        .map(|p| {
            let attrs = &p.attrs;
            quote!(#(#attrs)*)
        })
        .collect();
    let pred_locals: Vec<Ident> = (0..m.preds.len())
        .map(|i| format_ident!("__sy_p{}", i))
        .collect();
    let pred_conds = m.preds.iter().map(|p| cond(&p.cond));

    let plan = plan(&m.routes);
    let lookup = host_lookup(&plan);
    let fields = field_locals(m);
    let dispatch = blocks(m, &plan, &plan.blocks, &route_enum, &cluster_enum);
    let n_routes = m.routes.len();
    let n_clusters = m.clusters.len();
    let ctx_doc = format!("The per-request context of [`{name}`]: the route, cluster and backend chosen, and one field per named predicate.");
    let route_doc = format!("The rules of [`{name}`], in the order they are tried.");
    let cluster_doc = format!("The upstream clusters of [`{name}`].");
    let preds_doc = format!("The named predicates of [`{name}`] for one request.");

    quote! {
        #(#proxy_attrs)*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct #proxy;

        #[doc = #route_doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum #route_enum { #(#route_docs #route_variants,)* }

        impl #route_enum {
            /// Every rule, in order.
            pub const ALL: [Self; #n_routes] = [#(Self::#route_variants),*];
            /// The rule's name as written in the table (also its log and metric label).
            pub const fn name(self) -> &'static str {
                match self { #(Self::#route_variants => #route_names,)* }
            }
        }

        #[doc = #cluster_doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum #cluster_enum { #(#cluster_docs #cluster_variants,)* }

        impl #cluster_enum {
            /// Every cluster, in declaration order.
            pub const ALL: [Self; #n_clusters] = [#(Self::#cluster_variants),*];
            /// The cluster's name as written in the table.
            pub const fn name(self) -> &'static str {
                match self { #(Self::#cluster_variants => #cluster_names,)* }
            }
        }

        #[doc = #preds_doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[allow(non_snake_case)]
        pub struct #preds_ty { #(#pred_docs pub #pred_fields: bool,)* }

        #[doc = #ctx_doc]
        #[derive(Debug)]
        #[allow(non_snake_case)]
        pub struct #ctx {
            /// The rule that matched.
            pub route: ::core::option::Option<#route_enum>,
            /// The cluster the request went to (after any split or backup).
            pub cluster: ::core::option::Option<#cluster_enum>,
            /// The backend of the latest attempt.
            pub backend: ::core::option::Option<#pv::SocketAddr>,
            /// Connection attempts made.
            pub tries: u32,
            /// When the request arrived.
            pub started: #pv::Instant,
            #(#pred_docs pub #pred_fields: bool,)*
            #[doc(hidden)]
            pub __sy_state: #pv::RequestState,
        }

        impl #proxy {
            /// Parse the command line and run the proxy until SIGTERM.
            pub fn serve() {
                #pv::serve::<Self>()
            }

            /// A proxy on a background thread, for tests and embedding.
            pub fn builder() -> #pv::Builder<Self> {
                ::core::default::Default::default()
            }

            /// Which rule and target a request head gets. Allocates nothing.
            pub fn decide(
                req: &#pv::RequestHeader,
                client: ::core::option::Option<#pv::IpAddr>,
            ) -> ::core::result::Result<#pv::Decision<Self>, #pv::BadRequest> {
                <Self as #pv::Table>::decide(req, client)
            }
        }

        impl #pv::Table for #proxy {
            type Route = #route_enum;
            type Cluster = #cluster_enum;
            type Predicates = #preds_ty;
            type Ctx = #ctx;

            const NAME: &'static str = #name;
            const CLUSTERS: &'static [#pv::ClusterSpec] = &[#(#specs),*];
            const ROUTES: &'static [#pv::RouteSpec] = &[#(#route_specs),*];
            const SPLITS: &'static [#pv::SplitSpec] = &[#(#split_specs),*];
            const RESPONSES: &'static [#pv::Response] = &[#(#response_specs),*];

            #[allow(unused_variables, unreachable_code, clippy::all)]
            #[inline]
            fn decide_view(__sy_v: &#pv::RequestView<'_>) -> #pv::Decision<Self> {
                #fields
                #(let #pred_locals: bool = #pred_conds;)*
                #lookup
                let (__sy_route, __sy_target) = '__sy_decide: {
                    #dispatch
                    (::core::option::Option::None, #pv::Target::NoRoute)
                };
                #pv::Decision {
                    route: __sy_route,
                    target: __sy_target,
                    predicates: #preds_ty { #(#pred_fields: #pred_locals,)* },
                }
            }

            fn cluster_index(cluster: #cluster_enum) -> usize {
                match cluster { #(#cluster_enum::#cluster_variants => #cluster_idx,)* }
            }

            fn cluster_at(index: usize) -> #cluster_enum {
                #cluster_enum::ALL[index % #n_clusters]
            }

            fn route_name(route: #route_enum) -> &'static str {
                route.name()
            }

            fn new_ctx() -> #ctx {
                #ctx {
                    route: ::core::option::Option::None,
                    cluster: ::core::option::Option::None,
                    backend: ::core::option::Option::None,
                    tries: 0,
                    started: #pv::Instant::now(),
                    #(#pred_fields: false,)*
                    __sy_state: ::core::default::Default::default(),
                }
            }

            fn ctx_parts(ctx: &mut #ctx) -> #pv::CtxParts<'_, Self> {
                #pv::CtxParts {
                    route: &mut ctx.route,
                    cluster: &mut ctx.cluster,
                    backend: &mut ctx.backend,
                    tries: &mut ctx.tries,
                    state: &mut ctx.__sy_state,
                }
            }

            fn record_predicates(ctx: &mut #ctx, p: &#preds_ty) {
                #(ctx.#pred_fields = p.#pred_fields;)*
            }
        }
    }
}

/// What a table with errors expands to beside its `compile_error!`s: the proxy type, so
/// code that uses it reports the table's errors rather than a missing type.
pub fn fallback(input: &crate::ast::RouteTable) -> TokenStream {
    let name = input.items.iter().find_map(|i| match i {
        crate::ast::Item::Proxy(p) => Some(p.name.clone()),
        _ => None,
    });
    match name {
        Some(name) => quote! {
            #[derive(Debug, Clone, Copy, Default)]
            pub struct #name;
            impl #name {
                /// Unavailable: the routing table has errors.
                pub fn serve() { ::core::unreachable!() }
            }
        },
        None => TokenStream::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::regex_required_prefix;

    #[test]
    fn regex_guards_only_anchored_known_prefixes() {
        // (regex, the prefix every match must start with)
        let cases: [(&str, Option<&[u8]>); 10] = [
            ("^/users/[0-9]+$", Some(b"/users/")),
            ("^/u3/[0-9]+$", Some(b"/u3/")),
            ("^/(api|app)/", Some(b"/ap")),
            ("^/a|^/b", Some(b"/")),
            ("(?i)^/Admin", Some(b"/")),
            // Not anchored: a match may start anywhere.
            ("/users/[0-9]+$", None),
            ("^.*\\.php$", None),
            ("^$", None),
            // `(?m)^` is the start of any line, not of the path.
            ("(?m)^/admin", None),
            // Only one branch is anchored.
            ("(?:^/a|/b)", None),
        ];
        for (re, want) in cases {
            assert_eq!(regex_required_prefix(re).as_deref(), want, "{re}");
        }
    }
}
