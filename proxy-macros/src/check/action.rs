//! Route actions and redirects: every action fits the rule it is on, every literal is
//! valid where the runtime will put it (a header, a path, a `Location`).

use super::cluster::check_key;
use super::value::{size, unique_names};
use crate::ast::{Action, ActionsBlock, Value};
use crate::errors::Errors;
use crate::hints::hint_or_list;
use crate::model::*;
use crate::normalize::normalize_path;
use proc_macro2::Span;
use syn::{LitInt, LitStr};

const ACTIONS: [&str; 11] = [
    "set_header",
    "append_header",
    "remove_header",
    "set_response_header",
    "append_response_header",
    "remove_response_header",
    "strip_prefix",
    "add_prefix",
    "rewrite",
    "limit",
    "max_body",
];

/// Actions that change the request sent upstream: meaningless on a rule that answers
/// itself.
const UPSTREAM_ONLY: [&str; 7] = [
    "set_header",
    "append_header",
    "remove_header",
    "strip_prefix",
    "add_prefix",
    "rewrite",
    "max_body",
];

/// Headers whose value frames the message or the connection: set by the proxy, never by a
/// rule.
const FRAMING: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

// Rule: a rule's actions are known, each path action given once, and fit the rule:
// `path_prefix("/api") => api { strip_prefix: "/v2" }` is an error (the matcher does not
// guarantee `/v2`), as are a header action on `content-length`, a rewrite regex that does
// not compile or names a missing group, a rate of 0, and `strip_prefix` on a rule that
// answers itself (`respond`, `redirect`).
pub fn check_actions(
    errs: &mut Errors,
    block: &ActionsBlock,
    matcher: Option<&Matcher>,
    preds: &[PredModel],
    answers_itself: Option<&str>,
) -> Option<ActionsModel> {
    let mut out = ActionsModel::default();
    let mut strip: Option<(String, Span)> = None;
    let mut add: Option<String> = None;
    let mut rewrite: Option<(String, String, Span)> = None;
    let once = ["strip_prefix", "add_prefix", "rewrite", "limit", "max_body"];
    let actions = unique_names(errs, block.actions.iter(), &once);
    for action in actions {
        let name = action.name().to_string();
        if !ACTIONS.contains(&name.as_str()) {
            let hint = hint_or_list(&name, &ACTIONS);
            errs.push(
                action.name().span(),
                format!("unknown action `{name}`{hint}"),
            );
            continue;
        }
        if let (Some(target), true) = (answers_itself, UPSTREAM_ONLY.contains(&name.as_str())) {
            errs.push(
                action.name().span(),
                format!("`{name}` acts on the request sent to a backend, but this rule answers itself (`{target}`); remove it"),
            );
            continue;
        }
        match (name.as_str(), action) {
            (
                "limit",
                Action::Limit {
                    count, unit, by, ..
                },
            ) => {
                out.limit = check_limit(errs, count, unit, by.as_ref());
            }
            ("strip_prefix" | "add_prefix" | "max_body", Action::Opt(opt)) => {
                match (name.as_str(), &opt.value) {
                    ("max_body", v) => out.max_body = size(errs, v, "`max_body`"),
                    ("strip_prefix", Value::Str(lit)) => {
                        strip = check_prefix(errs, lit, "strip").map(|p| (p, lit.span()))
                    }
                    ("add_prefix", Value::Str(lit)) => add = check_prefix(errs, lit, "add"),
                    (_, v) => {
                        errs.push(v.span(), format!("expected a path, e.g. `{name}: \"/v1\"`"))
                    }
                }
            }
            (
                _,
                Action::Call {
                    name: ident,
                    args,
                    span,
                },
            ) if name.ends_with("header") => {
                let response = name.contains("response");
                if let Some(a) = check_header_action(errs, &name, args, *span, response) {
                    if response {
                        out.response_headers.push(a);
                    } else {
                        out.request_headers.push(a);
                    }
                }
                let _ = ident;
            }
            ("rewrite", Action::Call { args, span, .. }) => match args.as_slice() {
                [re, to] => {
                    if let Some((p, r)) = check_rewrite(errs, re, to) {
                        rewrite = Some((p, r, re.span()));
                    }
                }
                _ => errs.push(*span, "expected `rewrite(\"REGEX\", \"/replacement/$1\")`"),
            },
            _ => {
                let form = match name.as_str() {
                    "limit" => "`limit: 100/s` (optionally `by KEY`)",
                    "strip_prefix" | "add_prefix" => "`strip_prefix: \"/v1\"`",
                    "max_body" => "`max_body: 1mb`",
                    "rewrite" => "`rewrite(\"REGEX\", \"/replacement/$1\")`",
                    _ => "`set_header(\"name\", \"value\")`",
                };
                errs.push(action.name().span(), format!("`{name}` is written {form}"));
            }
        }
    }
    // A matcher with errors was reported already: nothing to prove the prefix against.
    if let (Some((prefix, span)), Some(matcher)) = (&strip, matcher) {
        if !guarantees_prefix(matcher, preds, prefix, 0) {
            errs.push(
                *span,
                format!(
                    "`strip_prefix: \"{prefix}\"` needs a rule that only matches paths under `{prefix}`, and this rule's matcher does not guarantee it: every alternative of the matcher needs a `path_prefix(..)` or `path(..)` at or under `{prefix}`"
                ),
            );
        }
    }
    match (rewrite, strip.is_some() || add.is_some()) {
        (Some((_, _, span)), true) => errs.push(
            span,
            "`rewrite` and `strip_prefix`/`add_prefix` both make the forwarded path; use one",
        ),
        (Some((pattern, replacement, _)), false) => {
            out.path = Some(PathRewriteModel::Regex {
                pattern,
                replacement,
            })
        }
        (None, true) => {
            out.path = Some(PathRewriteModel::Prefix {
                strip: strip.map(|s| s.0).unwrap_or_default(),
                add: add.unwrap_or_default(),
            })
        }
        (None, false) => {}
    }
    (out != ActionsModel::default()).then_some(out)
}

/// `matcher` only lets through requests whose normalized path is `prefix` or under it
/// (segment-wise): a `path(..)` or `path_prefix(..)` under it in every alternative.
fn guarantees_prefix(matcher: &Matcher, preds: &[PredModel], prefix: &str, depth: usize) -> bool {
    let under = |p: &str| {
        p == prefix || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
    };
    match matcher {
        Matcher::Atom(Atom::PathPrefix(p) | Atom::Path(p)) => under(p),
        Matcher::And(a, b) => {
            guarantees_prefix(a, preds, prefix, depth) || guarantees_prefix(b, preds, prefix, depth)
        }
        Matcher::Or(a, b) => {
            guarantees_prefix(a, preds, prefix, depth) && guarantees_prefix(b, preds, prefix, depth)
        }
        Matcher::Pred(i) => {
            depth < preds.len()
                && preds
                    .get(*i)
                    .is_some_and(|p| guarantees_prefix(&p.matcher, preds, prefix, depth + 1))
        }
        _ => false,
    }
}

// Rule: a prefix to strip or add is a normalized path without a trailing `/` and not `/`
// alone: `strip_prefix: "/v1"`; `"v1"`, `"/v1/"` and `"/a/../v1"` are errors.
fn check_prefix(errs: &mut Errors, lit: &LitStr, what: &str) -> Option<String> {
    let p = lit.value();
    let bad = |errs: &mut Errors, why: String| {
        errs.push(lit.span(), why);
        None
    };
    if !p.starts_with('/') {
        return bad(errs, format!("a path prefix starts with `/`; write `/{p}`"));
    }
    if p == "/" {
        return bad(errs, format!("`/` {what}s nothing; remove the action"));
    }
    if let Some(trimmed) = p.strip_suffix('/') {
        return bad(errs, format!("write `{trimmed}`: prefixes are whole segments, and the `/` after one stays in the path"));
    }
    if !p.bytes().all(path_byte) {
        return bad(errs, format!("`{p}` has a character a path cannot carry as it is (space, `?`, `#`, `%`, control or non-ASCII); write the path as routing sees it"));
    }
    let normal = normalize_path(&p);
    if normal != p {
        return bad(
            errs,
            format!("`{p}` is not a normalized path; write `{normal}`"),
        );
    }
    Some(p)
}

/// A byte a forwarded path may carry literally.
fn path_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'?' | b'#' | b'%' | b'\\' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'^'
        )
}

// Rule: a header action names a valid header that does not frame the message, and sets a
// valid value: `set_header("x-tenant", "a")`; `set_header("content-length", "0")` and
// `set_header("x", "a\nb")` are errors.
fn check_header_action(
    errs: &mut Errors,
    action: &str,
    args: &[LitStr],
    span: Span,
    response: bool,
) -> Option<HeaderActionModel> {
    let remove = action.starts_with("remove");
    let (name, value) = match (args, remove) {
        ([n], true) => (n, None),
        ([n, v], false) => (n, Some(v)),
        _ => {
            let form = if remove {
                format!("`{action}(\"name\")`")
            } else {
                format!("`{action}(\"name\", \"value\")`")
            };
            errs.push(span, format!("expected {form}"));
            return None;
        }
    };
    if !super::value::check_token(errs, name, "header name") {
        return None;
    }
    let n = name.value().to_ascii_lowercase();
    if FRAMING.contains(&n.as_str()) {
        let whose = if response { "answer" } else { "request" };
        errs.push(
            name.span(),
            format!("`{n}` frames the {whose} and is set by the proxy; a rule cannot change it"),
        );
        return None;
    }
    let Some(value) = value else {
        if n == "host" && !response {
            errs.push(
                name.span(),
                "an HTTP/1.1 request needs a `Host`; replace it with `set_header(\"host\", \"..\")` instead",
            );
            return None;
        }
        return Some(HeaderActionModel::Remove(n));
    };
    let v = value.value();
    if !v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        || v.starts_with([' ', '\t'])
        || v.ends_with([' ', '\t'])
    {
        errs.push(
            value.span(),
            "a header value is printable ASCII, without line breaks or leading and trailing spaces",
        );
        return None;
    }
    Some(if action.starts_with("set") {
        HeaderActionModel::Set(n, v)
    } else {
        HeaderActionModel::Append(n, v)
    })
}

// Rule: a rewrite's regex compiles, and its replacement is a path (`/` first, no query,
// no space) whose `$N` / `${name}` groups exist: `rewrite("^/u/([0-9]+)$", "/users/$2")`
// is an error (one group).
fn check_rewrite(errs: &mut Errors, re: &LitStr, to: &LitStr) -> Option<(String, String)> {
    let pattern = re.value();
    let regex = match regex::bytes::RegexBuilder::new(&pattern)
        .size_limit(1 << 20)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            let last = msg
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ");
            errs.push(re.span(), format!("invalid regex: {last}"));
            return None;
        }
    };
    let replacement = to.value();
    if !(replacement.starts_with('/') || replacement.starts_with('$')) {
        errs.push(
            to.span(),
            format!("the rewritten path starts with `/`; write `/{replacement}`"),
        );
        return None;
    }
    let mut rest = replacement.as_str();
    let mut literal = String::new();
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            literal.push('$');
            rest = tail;
            continue;
        }
        let (group, tail, braced) = if let Some(b) = after.strip_prefix('{') {
            match b.find('}') {
                Some(end) => (&b[..end], &b[end + 1..], true),
                None => {
                    errs.push(to.span(), "`${` is not closed; write `${1}` or `${name}`");
                    return None;
                }
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..], false)
        };
        let exists = match group.parse::<usize>() {
            Ok(i) => i < regex.captures_len(),
            Err(_) => !group.is_empty() && regex.capture_names().flatten().any(|n| n == group),
        };
        if !exists {
            let groups = regex.captures_len() - 1;
            let hint = match (braced, group.find(|c: char| !c.is_ascii_digit())) {
                (false, Some(split)) if split > 0 => format!(
                    "; to follow group {} with text, write `${{{}}}{}`",
                    &group[..split],
                    &group[..split],
                    &group[split..]
                ),
                _ => format!(
                    "; the regex has {groups} group{}",
                    if groups == 1 { "" } else { "s" }
                ),
            };
            errs.push(
                to.span(),
                format!(
                    "the replacement names group `{group}`, which the regex does not have{hint}"
                ),
            );
            return None;
        }
        rest = tail;
    }
    literal.push_str(rest);
    if !literal.bytes().all(path_byte) {
        errs.push(
            to.span(),
            "the replacement is a path: no space, `?`, `#`, `%`, control or non-ASCII character (the query is kept as it came)",
        );
        return None;
    }
    Some((pattern, replacement))
}

// Rule: a rate limit allows at least one request, per second or per minute, keyed as
// hashing is: `limit: 100/s by client_ip`; `limit: 0/s` and `limit: 10/h` are errors.
fn check_limit(
    errs: &mut Errors,
    count: &LitInt,
    unit: &syn::Ident,
    by: Option<&crate::ast::KeyExpr>,
) -> Option<LimitModel> {
    let requests = match count.base10_parse::<u32>() {
        Ok(0) => {
            errs.push(count.span(), "a limit of 0 refuses every request; use `respond(429, \"..\")` for that, or allow at least 1");
            None
        }
        Ok(n) if n <= 1_000_000_000 && count.suffix().is_empty() => Some(n),
        _ => {
            errs.push(count.span(), "a rate is a whole number of requests (1 to 1000000000) per `s` or `m`, e.g. `limit: 100/s`");
            None
        }
    };
    let per_secs = match unit.to_string().as_str() {
        "s" => Some(1),
        "m" => Some(60),
        other => {
            errs.push(
                unit.span(),
                format!("a rate is per second (`/s`) or per minute (`/m`), not `/{other}`"),
            );
            None
        }
    };
    let by = match by {
        Some(k) => Some(check_key(errs, k)?),
        None => None,
    };
    Some(LimitModel {
        requests: requests?,
        per_secs: per_secs?,
        by,
    })
}

const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];
const TEMPLATE_VARS: [&str; 4] = ["host", "path", "query", "uri"];

// Rule: a redirect has a redirect status and a `Location` template that is a path or an
// http(s) URL, names known variables only and is a valid header value:
// `redirect(308, "https://{host}{uri}")`; `redirect(200, ..)`, `"{hots}"` and
// `"{host}/x"` (no scheme) are errors.
pub fn check_redirect(errs: &mut Errors, status: &LitInt, location: &LitStr) -> TargetModel {
    let code = match status.base10_parse::<u16>() {
        Ok(c) if REDIRECT_STATUSES.contains(&c) => c,
        _ => {
            errs.push(status.span(), "a redirect's status is 301, 302, 303, 307 or 308 (308 and 307 keep the method and body)");
            308
        }
    };
    let pieces = parse_template(&location.value()).unwrap_or_else(|e| {
        errs.push(location.span(), e);
        Vec::new()
    });
    // `{path}` and `{uri}` start with `/`: after a `/` they make `//`, which a browser
    // reads as another host.
    for pair in pieces.windows(2) {
        if let [PieceModel::Text(t), PieceModel::Path | PieceModel::Uri] = pair {
            if t.ends_with('/') {
                errs.push(location.span(), "`/` before `{path}` or `{uri}` makes `//`, which a browser reads as another host: the path starts with its own `/`");
                break;
            }
        }
    }
    if let Some(PieceModel::Text(first)) = pieces.first() {
        let lower = first.to_ascii_lowercase();
        if !(first.starts_with('/')
            || lower.starts_with("http://")
            || lower.starts_with("https://"))
        {
            errs.push(
                location.span(),
                "a redirect goes to a path (`/..`) or a URL (`https://..`)",
            );
        }
    } else if !pieces.is_empty()
        && !matches!(pieces.first(), Some(PieceModel::Path | PieceModel::Uri))
    {
        errs.push(location.span(), "a redirect goes to a path (`/..`) or a URL: begin with `https://`, e.g. `\"https://{host}{uri}\"`");
    }
    TargetModel::Redirect(code, pieces)
}

/// `"https://{host}{uri}"` → text and variables; `{{` and `}}` are braces.
pub fn parse_template(t: &str) -> Result<Vec<PieceModel>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("`{{{name}` is not closed; variables are written `{{host}}`, and a brace `{{{{`")),
                    }
                }
                let piece = match name.as_str() {
                    "host" => PieceModel::Host,
                    "path" => PieceModel::Path,
                    "query" => PieceModel::Query,
                    "uri" => PieceModel::Uri,
                    _ => {
                        return Err(format!(
                            "unknown variable `{{{name}}}`{}",
                            hint_or_list(&name, &TEMPLATE_VARS)
                        ))
                    }
                };
                if !text.is_empty() {
                    out.push(PieceModel::Text(std::mem::take(&mut text)));
                }
                out.push(piece);
            }
            '}' => return Err("a lone `}`; write `}}` for a brace".to_owned()),
            c if c == '\t' || (' '..='~').contains(&c) => text.push(c),
            _ => return Err("a `Location` is printable ASCII, without line breaks; percent-encode other characters".to_owned()),
        }
    }
    if !text.is_empty() {
        out.push(PieceModel::Text(text));
    }
    if out.is_empty() {
        return Err("a redirect needs a location, e.g. `\"https://{host}{uri}\"`".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_into_text_and_variables() {
        use PieceModel::*;
        assert_eq!(
            parse_template("https://{host}{uri}").unwrap(),
            [Text("https://".into()), Host, Uri]
        );
        assert_eq!(
            parse_template("/new{path}?{query}&x={{y}}").unwrap(),
            [
                Text("/new".into()),
                Path,
                Text("?".into()),
                Query,
                Text("&x={y}".into())
            ]
        );
        assert!(parse_template("/x/{hots}")
            .unwrap_err()
            .contains("did you mean `host`"));
        assert!(parse_template("/x/{host")
            .unwrap_err()
            .contains("not closed"));
        assert!(parse_template("/x}").unwrap_err().contains("lone"));
        assert!(parse_template("/x\ny").is_err());
    }

    fn lit(s: &str) -> LitStr {
        LitStr::new(s, Span::call_site())
    }

    fn rewrite(re: &str, to: &str) -> Result<(), String> {
        let mut errs = Errors::default();
        let r = check_rewrite(&mut errs, &lit(re), &lit(to));
        errs.finish(()).map_err(|e| e.to_string())?;
        r.map(drop).ok_or_else(|| "none".into())
    }

    #[test]
    fn rewrites_name_existing_groups() {
        assert!(rewrite("^/u/([0-9]+)$", "/users/$1").is_ok());
        assert!(rewrite("^/u/(?<id>[0-9]+)$", "/users/${id}/$$").is_ok());
        assert!(rewrite("^/u/([0-9]+)$", "/users/$2")
            .unwrap_err()
            .contains("group `2`"));
        assert!(rewrite("^/u/([0-9]+)$", "/users/$1a")
            .unwrap_err()
            .contains("write `${1}a`"));
        assert!(rewrite("^/u/(x", "/u")
            .unwrap_err()
            .contains("invalid regex"));
        assert!(rewrite("^/u$", "users")
            .unwrap_err()
            .contains("starts with `/`"));
        assert!(rewrite("^/u$", "/u?x=1")
            .unwrap_err()
            .contains("the query is kept"));
    }

    #[test]
    fn prefixes_are_guaranteed_by_the_matcher() {
        let prefix = |p: &str| Matcher::Atom(Atom::PathPrefix(p.into()));
        let host = Matcher::Atom(Atom::HostExact("a".into()));
        let and = |a, b| Matcher::And(Box::new(a), Box::new(b));
        let or = |a, b| Matcher::Or(Box::new(a), Box::new(b));
        let g = |m: &Matcher, p| guarantees_prefix(m, &[], p, 0);
        assert!(g(&prefix("/v1"), "/v1"));
        assert!(g(&prefix("/v1/users"), "/v1"));
        assert!(!g(&prefix("/v10"), "/v1"));
        assert!(!g(&prefix("/api"), "/v2"));
        assert!(g(&and(host.clone(), prefix("/v1")), "/v1"));
        assert!(!g(&or(host.clone(), prefix("/v1")), "/v1"));
        assert!(g(&or(prefix("/v1/a"), prefix("/v1/b")), "/v1"));
        assert!(!g(&Matcher::Not(Box::new(prefix("/v1"))), "/v1"));
        let preds = [PredModel {
            name: syn::Ident::new("under", Span::call_site()),
            attrs: Vec::new(),
            matcher: prefix("/v1"),
        }];
        assert!(guarantees_prefix(
            &and(host, Matcher::Pred(0)),
            &preds,
            "/v1",
            0
        ));
    }
}
