//! The decision function `Table::decide_view`: the plan `lower` made, written out as Rust.
//! It looks at the request's host once (a `match` bucketed by length), walks a byte trie
//! over the path for a run of prefix rules, and tests what is left of each rule in order.

use super::spec::{redirect_index, respond_index};
use crate::lower::{Block, Check, Cond, Lowered, Plan, PrefixTrie, TrieNode};
use crate::model::*;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

fn bstr(s: &str) -> Literal {
    Literal::byte_string(s.as_bytes())
}

/// The body of `decide_view(__sy_v: &RequestView) -> Decision<Self>`.
pub fn decide_body(
    m: &Model,
    l: &Lowered,
    route_enum: &Ident,
    cluster_enum: &Ident,
    preds_ty: &Ident,
) -> TokenStream {
    let pv = quote!(::proxy_runtime::__private);
    let pred_fields: Vec<&Ident> = m.preds.iter().map(|p| &p.name).collect();
    let pred_locals: Vec<Ident> = (0..m.preds.len())
        .map(|i| format_ident!("__sy_p{}", i))
        .collect();
    let pred_conds = l.preds.iter().map(cond);
    let lookup = host_lookup(&l.plan);
    let fields = field_locals(l);
    let dispatch = blocks(m, &l.plan.blocks, route_enum, cluster_enum);
    quote! {
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
fn field_locals(l: &Lowered) -> TokenStream {
    fn walk(c: &Cond, out: &mut Vec<(Field, String)>) {
        match c {
            Cond::Not(inner) => walk(inner, out),
            Cond::And(parts) | Cond::Or(parts) => parts.iter().for_each(|p| walk(p, out)),
            Cond::Atom(Atom::Field(f, name, _))
                if !out.iter().any(|(g, n)| g == f && n == name) =>
            {
                out.push((*f, name.clone()));
            }
            _ => {}
        }
    }
    let mut fields = Vec::new();
    for c in l.preds.iter().chain(&l.routes) {
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
            Atom::Tls => quote!(__sy_v.arrival.tls),
            Atom::Port(p) => quote!((__sy_v.arrival.port == #p)),
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

/// The target of rule `route`.
fn target(m: &Model, route: usize, cluster_enum: &Ident) -> TokenStream {
    let t = &m.routes[route].target;
    let pv = quote!(::proxy_runtime::__private);
    match t {
        TargetModel::Cluster(i) => {
            let v = &m.clusters[*i].variant;
            quote!(#pv::Target::Cluster(#cluster_enum::#v))
        }
        TargetModel::Split(i) => {
            // At most one split per rule, and `check` caps the rules at 65,535.
            let i = *i as u16;
            quote!(#pv::Target::Split(#i))
        }
        TargetModel::Respond(..) => {
            let i = respond_index(m, route);
            quote!(#pv::Target::Respond(#i))
        }
        TargetModel::Redirect(..) => {
            let i = redirect_index(m, route);
            quote!(#pv::Target::Redirect(#i))
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
        let variant = &m.routes[*i].variant;
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
fn blocks(m: &Model, blocks_: &[Block], route_enum: &Ident, cluster_enum: &Ident) -> TokenStream {
    let parts = blocks_.iter().map(|b| match b {
        Block::Linear(rules) => rule_checks(m, rules, route_enum, cluster_enum),
        Block::Hosts(per_host) => {
            let arms = per_host.iter().map(|(id, inner)| {
                let inner = blocks(m, inner, route_enum, cluster_enum);
                quote!(#id => { #inner })
            });
            quote!(match __sy_host_id { #(#arms)* _ => {} })
        }
        Block::Prefixes { under, trie, .. } => {
            let walk = prefix_walk(trie);
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

/// The walk of a prefix trie over the path, once: evaluates to the index of the longest
/// prefix the path is under (segment-aware: see `PrefixEnd`), or `usize::MAX`.
fn prefix_walk(trie: &PrefixTrie) -> TokenStream {
    // Expands to nested `match`es on the byte at `depth`; runs of single children become
    // one slice comparison:
    //     if __sy_p.get(0..4) == Some(&b"/api"[..]) {
    //         if __sy_p.len() == 4 || __sy_p[4] == b'/' { __sy_node = 0; }
    //         match __sy_p.get(4).copied() { Some(b'/') => { .. } _ => {} }
    //     }
    fn gen(n: &TrieNode, depth: usize) -> TokenStream {
        let end = n.end.map(|e| {
            let k = e.index;
            if e.plain {
                quote!(__sy_node = #k;)
            } else {
                quote!(if __sy_p.len() == #depth || __sy_p[#depth] == b'/' { __sy_node = #k; })
            }
        });
        let next = match single_child_run(n) {
            Some((run, at)) => {
                let lit = Literal::byte_string(&run);
                let (from, to) = (depth, depth + run.len());
                let inner = gen(at, to);
                quote!(if __sy_p.get(#from..#to) == ::core::option::Option::Some(&#lit[..]) { #inner })
            }
            None if n.children.is_empty() => quote!(),
            None => {
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
    let body = gen(&trie.root, 0);
    quote!(
        let __sy_p: &[u8] = __sy_v.path;
        let mut __sy_node = usize::MAX;
        #body
        __sy_node
    )
}

/// When `n` has one child, the bytes down the chain of single children (stopping after a
/// node where a prefix ends) and the node the chain leads to.
fn single_child_run(n: &TrieNode) -> Option<(Vec<u8>, &TrieNode)> {
    let mut run = Vec::new();
    let mut at = n;
    while at.children.len() == 1 && (run.is_empty() || at.end.is_none()) {
        let (b, child) = at.children.iter().next()?;
        run.push(*b);
        at = child;
    }
    (!run.is_empty()).then_some((run, at))
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
