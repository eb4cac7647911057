//! The rules of a matcher (`host(..) && !is_beta`): every name resolves, every literal
//! could match some request. Produces the checked [`Matcher`] that `lower` turns into a
//! condition.

use super::resolve;
use super::value::check_token;
use crate::ast::{Expr, FieldTest};
use crate::errors::Errors;
use crate::hints::hint_or_list;
use crate::model::{Atom, Field, Matcher, Test};
use crate::normalize::{host_literal, normalize_path, HostError, HostLiteral, MAX_HOST};
use syn::{Ident, LitStr};

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// The predicates a matcher may name: those declared before it, and (for a better error)
/// all of them.
pub struct Scope<'a> {
    pub before: &'a [String],
    pub all: &'a [String],
}

/// Check a matcher expression; `None` when some part of it is wrong (reported in `errs`).
/// Every part is checked, so all its mistakes are reported at once.
pub fn check_matcher(errs: &mut Errors, e: &Expr, scope: &Scope) -> Option<Matcher> {
    let both = |errs: &mut Errors, a, b| {
        let (a, b) = (check_matcher(errs, a, scope), check_matcher(errs, b, scope));
        Some((Box::new(a?), Box::new(b?)))
    };
    match e {
        Expr::Any => Some(Matcher::Any),
        Expr::Pred(name) => check_predicate_declared_before(errs, name, scope).map(Matcher::Pred),
        Expr::Not(e) => Some(Matcher::Not(Box::new(check_matcher(errs, e, scope)?))),
        Expr::And(a, b) => both(errs, a, b).map(|(a, b)| Matcher::And(a, b)),
        Expr::Or(a, b) => both(errs, a, b).map(|(a, b)| Matcher::Or(a, b)),
        Expr::Paren(e) => check_matcher(errs, e, scope),
        Expr::Host(_, lit) => check_host(errs, lit).map(Matcher::Atom),
        Expr::Path(_, lit) => check_path(errs, lit).map(|p| Matcher::Atom(Atom::Path(p))),
        Expr::PathPrefix(_, lit) => {
            check_path(errs, lit).map(|p| Matcher::Atom(Atom::PathPrefix(p)))
        }
        Expr::PathRegex(_, lit) => check_regex(errs, lit).map(Matcher::Atom),
        Expr::Method(_, ms) => check_methods(errs, ms).map(Matcher::Atom),
        Expr::ClientIp(_, lit) => check_cidr(errs, lit).map(Matcher::Atom),
        Expr::Tls(_) => Some(Matcher::Atom(Atom::Tls)),
        Expr::Port(_, lit) => check_port(errs, lit).map(Matcher::Atom),
        Expr::Field(kind, name, test) => check_field(errs, kind, name, test),
    }
}

// Rule: a matcher names a predicate declared before it, so predicates cannot be circular:
// `let a = b; let b = ..;` is an error at `b` (move `let b` up).
fn check_predicate_declared_before(
    errs: &mut Errors,
    name: &Ident,
    scope: &Scope,
) -> Option<usize> {
    let n = name.to_string();
    if let Some(i) = scope.before.iter().position(|p| *p == n) {
        return Some(i);
    }
    if scope.all.contains(&n) {
        errs.push(
            name.span(),
            format!("`{n}` is declared below; a predicate can use only the predicates declared before it, so move `let {n}` up"),
        );
    } else {
        resolve(errs, name, scope.before, "predicate");
    }
    None
}

// Rule: a host is a name without port, optionally `*.` for any subdomain, that a `Host`
// header can hold: `host("api.example.com")`, `host("*.example.com")`; matching is
// case-insensitive, so the name is kept lowercase. `host("a.example.com:8080")` is an error.
fn check_host(errs: &mut Errors, lit: &LitStr) -> Option<Atom> {
    let raw = lit.value();
    let msg = match host_literal(&raw) {
        Ok(HostLiteral::Exact(h)) => return Some(Atom::HostExact(h)),
        Ok(HostLiteral::Suffix(s)) => return Some(Atom::HostSuffix(s)),
        Err(HostError::Empty) => "empty host; to match any host, leave `host(..)` out".to_owned(),
        Err(HostError::Port(without)) => {
            format!("host matchers ignore the port; write `{without}`")
        }
        Err(HostError::BadWildcard) => {
            "a wildcard host is `*.` followed by a domain, e.g. `*.example.com`".to_owned()
        }
        Err(HostError::NotAHost)
            if raw
                .bytes()
                .any(|c| !(0x21..=0x7e).contains(&c) && c != b' ') =>
        {
            format!("`{raw}` is not a host name: a `Host` header holds printable ASCII only; write an internationalized name in its `xn--` form")
        }
        Err(HostError::NotAHost) => {
            format!("`{raw}` is not a host name; a wildcard goes first, as in `*.example.com`")
        }
        Err(HostError::TooLong) => format!("a host name has at most {MAX_HOST} characters"),
    };
    errs.push(lit.span(), msg);
    None
}

// Rule: a path literal starts with `/`, has no query, and is already normalized, since
// matching runs on normalized paths: `path_prefix("/a/../b")` could never match.
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

// Rule: a path regex compiles (with the runtime's regex crate, within 1 MiB):
// `path_regex("^/users/([0-9]+$")` is an error ("unclosed group").
fn check_regex(errs: &mut Errors, lit: &LitStr) -> Option<Atom> {
    let re = lit.value();
    match regex::bytes::RegexBuilder::new(&re)
        .size_limit(1 << 20)
        .build()
    {
        Ok(_) => Some(Atom::PathRegex(re)),
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
            None
        }
    }
}

// Rule: methods are the standard ones, in uppercase: `method(GET | HEAD)`; `method(post)`
// is an error with the hint `POST`.
fn check_methods(errs: &mut Errors, ms: &[Ident]) -> Option<Atom> {
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
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
            ok = false;
        }
    }
    out.sort();
    ok.then_some(Atom::Method(out))
}

// Rule: a header or cookie name is a token, a query parameter name is not empty:
// `header("x-user") == "a"`, `cookie("beta")`, `query("v").starts_with("2")`. Header names
// are compared lowercase.
fn check_field(
    errs: &mut Errors,
    kind: &Ident,
    name: &LitStr,
    test: &FieldTest,
) -> Option<Matcher> {
    let (field, n, ok) = match kind.to_string().as_str() {
        "header" => (
            Field::Header,
            name.value().to_ascii_lowercase(),
            check_token(errs, name, "header name"),
        ),
        "cookie" => (
            Field::Cookie,
            name.value(),
            check_token(errs, name, "cookie name"),
        ),
        _ => {
            let ok = !name.value().is_empty();
            if !ok {
                errs.push(name.span(), "a query parameter name cannot be empty");
            }
            (Field::Query, name.value(), ok)
        }
    };
    if !ok {
        return None;
    }
    let test = match test {
        FieldTest::Present => Test::Present,
        FieldTest::Ne(v) => return Some(Matcher::NotEqual(field, n, v.value())),
        FieldTest::Eq(v) => Test::Eq(v.value()),
        FieldTest::Contains(v) => Test::Contains(v.value()),
        FieldTest::StartsWith(v) => Test::StartsWith(v.value()),
    };
    Some(Matcher::Atom(Atom::Field(field, n, test)))
}

// Rule: a client range is a CIDR without host bits, or one address:
// `client_ip("10.0.0.0/8")`; `client_ip("10.0.0.1/8")` is an error (the range is
// `10.0.0.0/8`).
// Rule: `port(N)` names a port a listener can have, 1..=65535: `port(443)`; `port(0)`
// and `port(70000)` are errors.
fn check_port(errs: &mut Errors, lit: &syn::LitInt) -> Option<Atom> {
    match lit.base10_parse::<u16>() {
        Ok(p) if p > 0 => Some(Atom::Port(p)),
        _ => {
            errs.push(
                lit.span(),
                format!("`{lit}` is not a port: a listener's port is 1 to 65535"),
            );
            None
        }
    }
}

pub fn check_cidr(errs: &mut Errors, lit: &LitStr) -> Option<Atom> {
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
