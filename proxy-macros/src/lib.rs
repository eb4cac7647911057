//! The `routes!` macro of Switchyard. Use it through `proxy-runtime`, which re-exports it
//! and documents the language.
//!
//! The macro runs in four phases: `ast` parses; `check` applies every semantic rule,
//! collects all errors and produces the checked `model` (names resolved, literals
//! validated); `lower` turns its matchers into conditions, finds rules that can never
//! match and plans the decision tree; `expand` generates code from the model and the plan.
//! Beside them: `hints` (did you mean), `normalize` (the normal form of paths and hosts,
//! proven equal to the runtime's), `print` (rules as text), `errors` (collecting them).

mod ast;
mod check;
mod errors;
mod expand;
mod hints;
mod lower;
mod model;
mod normalize;
mod print;

use proc_macro::TokenStream;

/// Declares a routing table: the upstream clusters and the rules that pick one.
///
/// ```text
/// routes! {
///     proxy Gateway;                                   // names the generated types
///     cluster api {
///         backends: ["127.0.0.1:9001", "127.0.0.1:9002" weight 5],
///         balance: round_robin,                        // | random | consistent(KEY) | hash(KEY)
///         health: tcp { every: 5s, fall: 3, rise: 2 }, // | http { path, host, expect, every, .. }
///         retries: 2,
///         backup: api_dr,
///         timeouts: { connect: 1s, total_connect: 3s, read: 30s, write: 30s, idle: 60s },
///         tls: { sni: "api.internal", verify: true, verify_hostname: true, alpn: h2_h1 },
///     }
///     let is_beta = query("beta") == "true" || cookie("beta") == "true";
///     route v2:      host("api.example.com") && path_prefix("/v2") => api;
///     route beta:    is_beta => split { api: 5, web: 95 } by cookie("uid");
///     route admin:   path_prefix("/admin") && !client_ip("10.0.0.0/8") => respond(403, "forbidden");
///     route default: _ => web;
/// }
/// ```
///
/// **Clusters** list `backends` as `"IP:PORT"` or `"HOST:PORT"` (optionally `weight N`,
/// 1–1000) or `srv("_service._tcp.NAME")` (ports and weights from the SRV records); names
/// are resolved at start-up and again `resolve: { every: 30s }` or, by default, at the
/// records' TTL (kept within 1 s..60 s), off the request path. A cluster may also set
/// `balance` (default `round_robin`), `health`, `retries` (0–8; by default a connect
/// failure tries every other backend once), `passive` (by default, without `health`, a
/// backend whose connection fails is set aside for 10 s; `passive: off`), `backup` (a
/// cluster used when none of this one's backends is healthy), `timeouts` and `tls`. Durations carry a unit: `500ms`, `5s`, `1m`, `1h`. A key (`consistent`, `hash`,
/// `split .. by`) is `cookie("n")`, `header("n")`, `query("n")`, `client_ip`, `path` or
/// `host`; a request without it is hashed on its client IP.
///
/// **Matchers**: `host("a.example.com")` (case-insensitive, port and trailing dot ignored)
/// or `host("*.example.com")`; `path("/x")`, `path_prefix("/x")` (segment-aware: not
/// `/xy`), `path_regex("^/users/[0-9]+$")`, all on the normalized path; `method(GET |
/// HEAD)`; `header("n")`, `query("n")`, `cookie("n")` alone (present), `== "v"`, `!= "v"`,
/// `.contains("v")` or `.starts_with("v")`; `client_ip("10.0.0.0/8")`; `_`; a `let` name;
/// combined with `!`, `&&`, `||` and parentheses (`&&` binds tighter).
///
/// **Targets**: a cluster, `split { a: 5, b: 95 }` (optionally `by KEY`),
/// `respond(STATUS, "body")`, or `redirect(308, "https://{host}{uri}")` (301/302/303/307/308;
/// variables `{host}`, `{path}`, `{query}`, `{uri}`). Rules are tried in order; the table
/// must end with a rule that matches everything. `TRACE` is forwarded only by a rule that
/// names it in `method(..)`; elsewhere it gets 405.
///
/// **Actions**, in braces after a target: `set_header("n", "v")`, `append_header`,
/// `remove_header("n")` (the request sent upstream), `set_response_header`,
/// `append_response_header`, `remove_response_header` (the answer), `strip_prefix: "/v1"`
/// (the rule's matcher must guarantee it), `add_prefix: "/api"`, `rewrite("^/u/([0-9]+)$",
/// "/users/$1")`, `limit: 100/s by client_ip` (429), `max_body: 1mb` (413):
/// `route v1: path_prefix("/v1") => api { strip_prefix: "/v1", limit: 50/s };`.
///
/// **Hooks**: `proxy Gateway(Auth);` names a type implementing `proxy_runtime::Hooks<Gateway>`
/// (one `async fn` per phase, each with a default); `Gateway::serve_with(auth)` and
/// `Gateway::builder_with(auth)` take a value, `serve()`/`builder()` use `Default`.
///
/// **Settings**: `ambiguous_paths: reject | decode | forward;` says what happens to a path
/// a backend may read otherwise than routing does (`/admin%2f`, `/x/..;/admin`, `%00`,
/// double encoding, overlong UTF-8): refused with 400 (the default), routed and forwarded
/// with encoded slashes decoded, or routed as it is and forwarded unchanged.
/// `trusted_proxies: ["10.0.0.0/8"];` names the peers whose `X-Forwarded-For` gives the
/// client address that `client_ip`, hashing and limits see; `forwarded_headers: off;` stops
/// the `X-Forwarded-For`/`-Proto`/`-Host` headers added upstream; `via: "edge";` adds `Via`.
///
/// Generated: `Gateway` (with `serve()`, `builder()` and `decide()`), `GatewayRoute` and
/// `GatewayCluster` (enums with `name()` and `ALL`), `GatewayPredicates` (one `bool` per
/// `let`), and `GatewayCtx`, the runtime's per-request context for this table (route,
/// cluster, backend, tries, start time and the predicates).
///
/// Mistakes are compile errors at the offending token, all reported at once: unknown or
/// duplicate names (with "did you mean"), rules that can never match, no fallback, bad
/// addresses, weights, regexes, CIDRs, header names, option keys, durations without a
/// unit, TLS verification without `sni`, zero split weights, backup cycles, and keys on
/// balancers that ignore them.
#[proc_macro]
pub fn routes(input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    let table = match syn::parse2::<ast::RouteTable>(input.clone()) {
        Ok(table) => table,
        Err(e) => return with_fallback(e, &ast::DeclaredNames::scan(input)),
    };
    let checked =
        check::check(&table).and_then(|model| lower::lower(&model).map(|lowered| (model, lowered)));
    match checked {
        Ok((model, lowered)) => expand::routes(&model, &lowered).into(),
        Err(e) => with_fallback(e, &ast::DeclaredNames::of(&table)),
    }
}

/// The errors, and beside them the table's public items, so code that uses the table
/// reports the table's errors rather than missing items.
fn with_fallback(e: syn::Error, declared: &ast::DeclaredNames) -> TokenStream {
    let errors = e.to_compile_error();
    let fallback = expand::fallback(declared);
    quote::quote!(#errors #fallback).into()
}
