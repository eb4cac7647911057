//! The syntax of `routes!`, parsed and judged nothing: every node keeps the tokens an
//! error may point at. Semantic rules live in `check`.

use proc_macro2::Span;
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, bracketed, parenthesized, Attribute, Ident, LitBool, LitInt, LitStr, Token};

pub mod kw {
    syn::custom_keyword!(proxy);
    syn::custom_keyword!(cluster);
    syn::custom_keyword!(route);
    syn::custom_keyword!(weight);
    syn::custom_keyword!(split);
    syn::custom_keyword!(by);
    syn::custom_keyword!(respond);
    syn::custom_keyword!(redirect);
    syn::custom_keyword!(limit);
    syn::custom_keyword!(host);
    syn::custom_keyword!(path);
    syn::custom_keyword!(path_prefix);
    syn::custom_keyword!(path_regex);
    syn::custom_keyword!(method);
    syn::custom_keyword!(header);
    syn::custom_keyword!(query);
    syn::custom_keyword!(cookie);
    syn::custom_keyword!(client_ip);
    syn::custom_keyword!(contains);
    syn::custom_keyword!(starts_with);
}

/// The whole `routes! { .. }` input.
pub struct RouteTable {
    pub items: Vec<Item>,
}

pub enum Item {
    Proxy(ProxyDecl),
    Cluster(ClusterDecl),
    Let(LetDecl),
    Route(RouteDecl),
    /// A table-wide setting: `ambiguous_paths: decode;`.
    Setting(Opt),
}

/// `proxy Gateway;` or `proxy Gateway(Auth);` (with the hooks type).
pub struct ProxyDecl {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub hooks: Option<syn::Path>,
}

/// `cluster api { key: value, .. }`
pub struct ClusterDecl {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub options: Vec<Opt>,
}

/// `key: value` inside a cluster, a health check, `tls` or `timeouts`.
pub struct Opt {
    pub key: Ident,
    pub value: Value,
}

/// An option value. Which shape each key needs is checked later.
pub enum Value {
    /// `["a" weight 2, "b"]`
    List(Vec<BackendLit>, Span),
    /// `{ k: v, .. }`
    Block(Vec<Opt>, Span),
    /// `tcp { .. }` / `http { .. }`
    Tagged(Ident, Vec<Opt>),
    /// `consistent(cookie("x"))`, `hash(client_ip)`
    Call(Ident, KeyExpr),
    Ident(Ident),
    Str(LitStr),
    Int(LitInt),
    Bool(LitBool),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::List(_, s) | Value::Block(_, s) => *s,
            Value::Tagged(i, _) | Value::Call(i, _) | Value::Ident(i) => i.span(),
            Value::Str(s) => s.span(),
            Value::Int(i) => i.span(),
            Value::Bool(b) => b.span,
        }
    }
}

/// `"127.0.0.1:9001" weight 5`, `"api.internal:8080"` or `srv("_http._tcp.api.internal")`.
pub struct BackendLit {
    /// `srv` in `srv("..")`: the string is a DNS SRV name.
    pub call: Option<Ident>,
    pub addr: LitStr,
    pub weight: Option<LitInt>,
}

/// A hashing key: `cookie("sid")`, `header("x")`, `query("u")`, `client_ip`, `path`, `host`.
pub enum KeyExpr {
    Named(Ident, LitStr),
    Bare(Ident),
}

impl KeyExpr {
    pub fn span(&self) -> Span {
        match self {
            KeyExpr::Named(i, _) | KeyExpr::Bare(i) => i.span(),
        }
    }
}

/// `let is_mobile = MATCHER;`
pub struct LetDecl {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub expr: Expr,
}

/// `route name: MATCHER => TARGET;`, or `=> TARGET { ACTION, .. };`
pub struct RouteDecl {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub expr: Expr,
    pub target: TargetExpr,
    pub actions: Option<ActionsBlock>,
}

/// `{ strip_prefix: "/v1", set_header("x-tenant", "a"), limit: 100/s by client_ip }`
pub struct ActionsBlock {
    pub actions: Vec<Action>,
}

/// One route action.
pub enum Action {
    /// `strip_prefix: "/v1"`, `add_prefix: ".."`, `max_body: 1mb`.
    Opt(Opt),
    /// `limit: 100/s by client_ip`
    Limit {
        key: Ident,
        count: LitInt,
        unit: Ident,
        by: Option<KeyExpr>,
    },
    /// `set_header("n", "v")`, `remove_response_header("n")`, `rewrite("re", "/to")`.
    Call {
        name: Ident,
        args: Vec<LitStr>,
        span: Span,
    },
}

impl Action {
    /// The action's name token.
    pub fn name(&self) -> &Ident {
        match self {
            Action::Opt(o) => &o.key,
            Action::Limit { key, .. } => key,
            Action::Call { name, .. } => name,
        }
    }
}

pub enum TargetExpr {
    Cluster(Ident),
    Split {
        kw: kw::split,
        arms: Vec<(Ident, LitInt)>,
        by: Option<KeyExpr>,
    },
    Respond {
        status: LitInt,
        body: LitStr,
    },
    /// `redirect(308, "https://{host}{uri}")`
    Redirect {
        status: LitInt,
        location: LitStr,
    },
}

/// A matcher expression.
pub enum Expr {
    Any,
    Pred(Ident),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Paren(Box<Expr>),
    Host(Ident, LitStr),
    Path(Ident, LitStr),
    PathPrefix(Ident, LitStr),
    PathRegex(Ident, LitStr),
    Method(Ident, Vec<Ident>),
    ClientIp(Ident, LitStr),
    /// `tls`: the request came in on a TLS listener.
    Tls(Ident),
    /// `port(443)`: the local port of the listener the request came in on.
    Port(Ident, LitInt),
    /// `header("n")`, `query("n")`, `cookie("n")` with an optional test.
    Field(Ident, LitStr, FieldTest),
}

pub enum FieldTest {
    Present,
    Eq(LitStr),
    /// `!= "v"`: present with another value, or absent (`!(x == "v")`).
    Ne(LitStr),
    Contains(LitStr),
    StartsWith(LitStr),
}

impl Parse for RouteTable {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut items = Vec::new();
        while !input.is_empty() {
            items.push(input.parse()?);
        }
        Ok(RouteTable { items })
    }
}

/// The names a table declares: what the expansion of a table with errors is named from,
/// so code using the table still finds its types.
pub struct DeclaredNames {
    pub proxy: Option<(Ident, Vec<Attribute>)>,
    /// The hooks type of the first `proxy`, when the table parses.
    pub hooks: Option<syn::Path>,
    pub clusters: Vec<Ident>,
    pub lets: Vec<Ident>,
    pub routes: Vec<Ident>,
}

impl DeclaredNames {
    /// The names of a parsed table (the first `proxy`).
    pub fn of(table: &RouteTable) -> Self {
        let mut d = DeclaredNames {
            proxy: None,
            hooks: None,
            clusters: Vec::new(),
            lets: Vec::new(),
            routes: Vec::new(),
        };
        for item in &table.items {
            match item {
                Item::Proxy(p) if d.proxy.is_none() => {
                    d.proxy = Some((p.name.clone(), p.attrs.clone()));
                    d.hooks = p.hooks.clone();
                }
                Item::Proxy(_) => {}
                Item::Cluster(c) => d.clusters.push(c.name.clone()),
                Item::Let(l) => d.lets.push(l.name.clone()),
                Item::Route(r) => d.routes.push(r.name.clone()),
                Item::Setting(_) => {}
            }
        }
        d
    }

    /// The names of a table that does not parse, found by a scan of its top-level tokens
    /// for `proxy NAME`, `cluster NAME`, `let NAME` and `route NAME`: a syntax error in one
    /// rule leaves the others' names. Keywords are skipped (`let mut` names nothing).
    pub fn scan(tokens: proc_macro2::TokenStream) -> Self {
        use proc_macro2::TokenTree;
        let mut d = DeclaredNames {
            proxy: None,
            hooks: None,
            clusters: Vec::new(),
            lets: Vec::new(),
            routes: Vec::new(),
        };
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for pair in tokens.windows(2) {
            let [TokenTree::Ident(kind), TokenTree::Ident(name)] = pair else {
                continue;
            };
            if syn::parse2::<Ident>(name.to_token_stream()).is_err() {
                continue;
            }
            match kind.to_string().as_str() {
                "proxy" if d.proxy.is_none() => d.proxy = Some((name.clone(), Vec::new())),
                "cluster" => d.clusters.push(name.clone()),
                "let" => d.lets.push(name.clone()),
                "route" => d.routes.push(name.clone()),
                _ => {}
            }
        }
        d
    }
}

impl Parse for Item {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let la = input.lookahead1();
        if la.peek(kw::proxy) {
            input.parse::<kw::proxy>()?;
            let name = input.parse()?;
            let hooks = if input.peek(syn::token::Paren) {
                let content;
                parenthesized!(content in input);
                let path = content.parse()?;
                if !content.is_empty() {
                    return Err(content.error("expected `)`: a proxy names one hooks type"));
                }
                Some(path)
            } else {
                None
            };
            input.parse::<Token![;]>()?;
            Ok(Item::Proxy(ProxyDecl { attrs, name, hooks }))
        } else if la.peek(kw::cluster) {
            input.parse::<kw::cluster>()?;
            let name = input.parse()?;
            let content;
            braced!(content in input);
            let options = parse_opts(&content)?;
            Ok(Item::Cluster(ClusterDecl {
                attrs,
                name,
                options,
            }))
        } else if la.peek(Token![let]) {
            input.parse::<Token![let]>()?;
            let name = input.parse()?;
            input.parse::<Token![=]>()?;
            let expr = input.parse()?;
            input.parse::<Token![;]>()?;
            Ok(Item::Let(LetDecl { attrs, name, expr }))
        } else if la.peek(kw::route) {
            input.parse::<kw::route>()?;
            let name = input.parse()?;
            input.parse::<Token![:]>()?;
            let expr = input.parse()?;
            input.parse::<Token![=>]>()?;
            let target = input.parse()?;
            let actions = if input.peek(syn::token::Brace) {
                Some(input.parse()?)
            } else {
                None
            };
            input.parse::<Token![;]>()?;
            Ok(Item::Route(RouteDecl {
                attrs,
                name,
                expr,
                target,
                actions,
            }))
        } else if input.peek(Ident) && input.peek2(Token![:]) {
            let key = input.parse()?;
            input.parse::<Token![:]>()?;
            let value = input.parse()?;
            input.parse::<Token![;]>()?;
            Ok(Item::Setting(Opt { key, value }))
        } else if input.peek(Ident) {
            let ident: Ident = input.fork().parse()?;
            let hint = crate::hints::did_you_mean(
                &ident.to_string(),
                ["proxy", "cluster", "let", "route"],
            );
            let mut e = la.error();
            if !hint.is_empty() {
                e = syn::Error::new(
                    ident.span(),
                    format!("expected one of: `proxy`, `cluster`, `let`, `route`{hint}"),
                );
            }
            Err(e)
        } else {
            Err(la.error())
        }
    }
}

/// `key: value` pairs separated by commas, trailing comma allowed.
fn parse_opts(input: ParseStream) -> syn::Result<Vec<Opt>> {
    let mut opts = Vec::new();
    while !input.is_empty() {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        input.parse::<Token![:]>()?;
        let value = input.parse()?;
        opts.push(Opt { key, value });
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(opts)
}

impl Parse for Value {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(syn::token::Bracket) {
            let content;
            let b = bracketed!(content in input);
            let mut list = Vec::new();
            while !content.is_empty() {
                let (call, addr) = if content.peek(Ident) {
                    let call: Ident = content.parse()?;
                    let inner;
                    parenthesized!(inner in content);
                    (Some(call), inner.parse()?)
                } else {
                    (None, content.parse()?)
                };
                let weight = if content.peek(kw::weight) {
                    content.parse::<kw::weight>()?;
                    Some(content.parse()?)
                } else {
                    None
                };
                list.push(BackendLit { call, addr, weight });
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            return Ok(Value::List(list, b.span.join()));
        }
        if input.peek(syn::token::Brace) {
            let content;
            let b = braced!(content in input);
            return Ok(Value::Block(parse_opts(&content)?, b.span.join()));
        }
        if input.peek(LitStr) {
            return Ok(Value::Str(input.parse()?));
        }
        if input.peek(LitInt) {
            return Ok(Value::Int(input.parse()?));
        }
        if input.peek(LitBool) {
            return Ok(Value::Bool(input.parse()?));
        }
        if input.peek(Ident) {
            let ident: Ident = input.parse()?;
            if input.peek(syn::token::Brace) {
                let content;
                braced!(content in input);
                return Ok(Value::Tagged(ident, parse_opts(&content)?));
            }
            if input.peek(syn::token::Paren) {
                let content;
                parenthesized!(content in input);
                let key = content.parse()?;
                if !content.is_empty() {
                    return Err(content.error("expected `)`: a balancer takes one key"));
                }
                return Ok(Value::Call(ident, key));
            }
            return Ok(Value::Ident(ident));
        }
        Err(input.error(
            "expected a value: a string, a number with a unit, `true`/`false`, a name, `[..]` or `{..}`",
        ))
    }
}

impl Parse for KeyExpr {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let ident: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            let name = content.parse()?;
            Ok(KeyExpr::Named(ident, name))
        } else {
            Ok(KeyExpr::Bare(ident))
        }
    }
}

impl Parse for TargetExpr {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(kw::split) && input.peek2(syn::token::Brace) {
            let kw = input.parse()?;
            let content;
            braced!(content in input);
            let mut arms = Vec::new();
            while !content.is_empty() {
                let name: Ident = content.parse()?;
                content.parse::<Token![:]>()?;
                let w: LitInt = content.parse()?;
                arms.push((name, w));
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            let by = if input.peek(kw::by) {
                input.parse::<kw::by>()?;
                Some(input.parse()?)
            } else {
                None
            };
            return Ok(TargetExpr::Split { kw, arms, by });
        }
        if input.peek(kw::redirect) && input.peek2(syn::token::Paren) {
            input.parse::<kw::redirect>()?;
            let content;
            parenthesized!(content in input);
            let status = content.parse()?;
            content.parse::<Token![,]>()?;
            let location = content.parse()?;
            if !content.is_empty() {
                return Err(content.error("expected `)`: `redirect(STATUS, \"location\")`"));
            }
            return Ok(TargetExpr::Redirect { status, location });
        }
        if input.peek(kw::respond) && input.peek2(syn::token::Paren) {
            input.parse::<kw::respond>()?;
            let content;
            parenthesized!(content in input);
            let status = content.parse()?;
            content.parse::<Token![,]>()?;
            let body = content.parse()?;
            return Ok(TargetExpr::Respond { status, body });
        }
        let la = input.lookahead1();
        if la.peek(Ident) {
            Ok(TargetExpr::Cluster(input.parse()?))
        } else {
            Err(input.error(
                "expected a target: a cluster name, `split { .. }`, `respond(STATUS, \"body\")` or \
                 `redirect(STATUS, \"location\")`",
            ))
        }
    }
}

impl Parse for ActionsBlock {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let content;
        braced!(content in input);
        let mut actions = Vec::new();
        while !content.is_empty() {
            actions.push(content.parse()?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(ActionsBlock { actions })
    }
}

impl Parse for Action {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if !input.peek(Ident) {
            return Err(input.error(
                "expected an action: `set_header(..)`, `strip_prefix: \"/p\"`, `limit: 10/s`, ..",
            ));
        }
        if input.peek(kw::limit) && input.peek2(Token![:]) {
            let key = Ident::new("limit", input.parse::<kw::limit>()?.span);
            input.parse::<Token![:]>()?;
            let count = input.parse()?;
            input.parse::<Token![/]>()?;
            let unit = input.parse()?;
            let by = if input.peek(kw::by) {
                input.parse::<kw::by>()?;
                Some(input.parse()?)
            } else {
                None
            };
            return Ok(Action::Limit {
                key,
                count,
                unit,
                by,
            });
        }
        let name: Ident = input.parse()?;
        if name == "redirect" {
            return Err(syn::Error::new(
                name.span(),
                "a redirect is a target, not an action: `=> redirect(308, \"https://{host}{uri}\")`",
            ));
        }
        if input.peek(syn::token::Paren) {
            let content;
            let p = parenthesized!(content in input);
            let args: Punctuated<LitStr, Token![,]> = Punctuated::parse_terminated(&content)?;
            return Ok(Action::Call {
                name,
                args: args.into_iter().collect(),
                span: p.span.join(),
            });
        }
        if input.peek(Token![:]) {
            input.parse::<Token![:]>()?;
            let value = input.parse()?;
            return Ok(Action::Opt(Opt { key: name, value }));
        }
        Err(input.error("expected `(` or `:` after the action's name"))
    }
}

impl Parse for Expr {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        parse_or(input)
    }
}

fn parse_or(input: ParseStream) -> syn::Result<Expr> {
    let mut lhs = parse_and(input)?;
    while input.peek(Token![||]) {
        input.parse::<Token![||]>()?;
        let rhs = parse_and(input)?;
        lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
    }
    Ok(lhs)
}

fn parse_and(input: ParseStream) -> syn::Result<Expr> {
    let mut lhs = parse_unary(input)?;
    while input.peek(Token![&&]) {
        input.parse::<Token![&&]>()?;
        let rhs = parse_unary(input)?;
        lhs = Expr::And(Box::new(lhs), Box::new(rhs));
    }
    Ok(lhs)
}

fn parse_unary(input: ParseStream) -> syn::Result<Expr> {
    if input.peek(Token![!]) {
        input.parse::<Token![!]>()?;
        return Ok(Expr::Not(Box::new(parse_unary(input)?)));
    }
    parse_primary(input)
}

fn parse_primary(input: ParseStream) -> syn::Result<Expr> {
    if input.peek(syn::token::Paren) {
        let content;
        parenthesized!(content in input);
        return Ok(Expr::Paren(Box::new(content.parse()?)));
    }
    if input.peek(Token![_]) {
        input.parse::<Token![_]>()?;
        return Ok(Expr::Any);
    }
    let la = input.lookahead1();
    if !la.peek(Ident) {
        return Err(input.error(
            "expected a matcher: `host(..)`, `path(..)`, `path_prefix(..)`, `path_regex(..)`, \
             `method(..)`, `header(..)`, `query(..)`, `cookie(..)`, `client_ip(..)`, `tls`, \
             `port(..)`, a predicate name, `!`, `(` or `_`",
        ));
    }
    let ident: Ident = input.parse()?;
    if !input.peek(syn::token::Paren) {
        // `tls` is the listener matcher; a `let` may not take its name (check.rs).
        if ident == "tls" {
            return Ok(Expr::Tls(ident));
        }
        return Ok(Expr::Pred(ident));
    }
    let content;
    parenthesized!(content in input);
    let kind = ident.to_string();
    if kind == "method" {
        let methods: Punctuated<Ident, Token![|]> = Punctuated::parse_separated_nonempty(&content)?;
        if !content.is_empty() {
            return Err(content.error("expected `|` between methods, e.g. `method(GET | HEAD)`"));
        }
        return Ok(Expr::Method(ident, methods.into_iter().collect()));
    }
    if kind == "tls" {
        return Err(syn::Error::new(
            ident.span(),
            "`tls` takes no arguments: write `tls`, or `!tls` for plain listeners",
        ));
    }
    if kind == "port" {
        let port: LitInt = content.parse()?;
        if !content.is_empty() {
            return Err(content.error("expected `)`: `port(..)` takes one port number"));
        }
        return Ok(Expr::Port(ident, port));
    }
    let arg: LitStr = content.parse()?;
    if !content.is_empty() {
        return Err(content.error("expected `)`: a matcher takes one string"));
    }
    Ok(match kind.as_str() {
        "host" => Expr::Host(ident, arg),
        "path" => Expr::Path(ident, arg),
        "path_prefix" => Expr::PathPrefix(ident, arg),
        "path_regex" => Expr::PathRegex(ident, arg),
        "client_ip" => Expr::ClientIp(ident, arg),
        "header" | "query" | "cookie" => {
            let test = parse_field_test(input)?;
            Expr::Field(ident, arg, test)
        }
        _ => {
            const MATCHERS: [&str; 11] = [
                "host",
                "path",
                "path_prefix",
                "path_regex",
                "method",
                "header",
                "query",
                "cookie",
                "client_ip",
                "tls",
                "port",
            ];
            let hint = crate::hints::hint_or_list(&kind, &MATCHERS);
            return Err(syn::Error::new(
                ident.span(),
                format!("unknown matcher `{kind}`{hint}"),
            ));
        }
    })
}

fn parse_field_test(input: ParseStream) -> syn::Result<FieldTest> {
    if input.peek(Token![==]) {
        input.parse::<Token![==]>()?;
        return Ok(FieldTest::Eq(input.parse()?));
    }
    if input.peek(Token![!=]) {
        input.parse::<Token![!=]>()?;
        return Ok(FieldTest::Ne(input.parse()?));
    }
    if input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        let la = input.lookahead1();
        let contains = if la.peek(kw::contains) {
            input.parse::<kw::contains>()?;
            true
        } else if la.peek(kw::starts_with) {
            input.parse::<kw::starts_with>()?;
            false
        } else {
            return Err(la.error());
        };
        let content;
        parenthesized!(content in input);
        let lit: LitStr = content.parse()?;
        return Ok(if contains {
            FieldTest::Contains(lit)
        } else {
            FieldTest::StartsWith(lit)
        });
    }
    Ok(FieldTest::Present)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_the_names_of_a_table_that_does_not_parse() {
        let tokens: proc_macro2::TokenStream = r#"
            /// Doc.
            proxy Gateway;
            cluster web { backends: ["127.0.0.1:1"] }
            let mut is_beta = cookie("beta");
            let is_mobile = header("user-agent").contains("Mobile");
            rout x: _ => web;
            route default: _ => web;
        "#
        .parse()
        .unwrap();
        assert!(syn::parse2::<RouteTable>(tokens.clone()).is_err());
        let d = DeclaredNames::scan(tokens);
        let names = |v: &[Ident]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(d.proxy.map(|p| p.0.to_string()).as_deref(), Some("Gateway"));
        assert_eq!(names(&d.clusters), ["web"]);
        assert_eq!(names(&d.lets), ["is_mobile"]);
        assert_eq!(names(&d.routes), ["default"]);
    }
}
