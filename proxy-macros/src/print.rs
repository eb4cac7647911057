//! A rule as the user wrote it, as text: what `--routes` prints (`RouteSpec::matcher` and
//! `::target`) and what the generated `GatewayRoute` variants show in their docs. Written
//! from the syntax tree, so literals keep their text.

use crate::ast::{Action, ActionsBlock, Expr, FieldTest, KeyExpr, TargetExpr, Value};
use quote::ToTokens;
use syn::LitStr;

/// The matcher of a rule: `host("a.example.com") && !is_beta`.
pub fn matcher_text(e: &Expr) -> String {
    match e {
        Expr::Any => "_".to_owned(),
        Expr::Pred(i) => i.to_string(),
        Expr::Not(e) => format!("!{}", matcher_text(e)),
        Expr::And(a, b) => format!("{} && {}", matcher_text(a), matcher_text(b)),
        Expr::Or(a, b) => format!("{} || {}", matcher_text(a), matcher_text(b)),
        Expr::Paren(e) => format!("({})", matcher_text(e)),
        Expr::Host(i, s)
        | Expr::Path(i, s)
        | Expr::PathPrefix(i, s)
        | Expr::PathRegex(i, s)
        | Expr::ClientIp(i, s) => format!("{i}({})", lit(s)),
        Expr::Tls(i) => i.to_string(),
        Expr::Port(i, p) => format!("{i}({p})"),
        Expr::Method(i, ms) => {
            let ms: Vec<String> = ms.iter().map(ToString::to_string).collect();
            format!("{i}({})", ms.join(" | "))
        }
        Expr::Field(i, s, t) => {
            let field = format!("{i}({})", lit(s));
            match t {
                FieldTest::Present => field,
                FieldTest::Eq(v) => format!("{field} == {}", lit(v)),
                FieldTest::Ne(v) => format!("{field} != {}", lit(v)),
                FieldTest::Contains(v) => format!("{field}.contains({})", lit(v)),
                FieldTest::StartsWith(v) => format!("{field}.starts_with({})", lit(v)),
            }
        }
    }
}

/// The target of a rule: `api`, `split { v2: 5, v1: 95 } by cookie("uid")`.
pub fn target_text(t: &TargetExpr) -> String {
    match t {
        TargetExpr::Cluster(i) => i.to_string(),
        TargetExpr::Split { arms, by, .. } => {
            let arms: Vec<String> = arms.iter().map(|(n, w)| format!("{n}: {w}")).collect();
            let by = by
                .as_ref()
                .map(|k| format!(" by {}", key_text(k)))
                .unwrap_or_default();
            format!("split {{ {} }}{by}", arms.join(", "))
        }
        TargetExpr::Respond { status, body, .. } => format!("respond({status}, {})", lit(body)),
        TargetExpr::Redirect {
            status, location, ..
        } => format!("redirect({status}, {})", lit(location)),
    }
}

/// A rule's actions as written: `{ strip_prefix: "/v1", limit: 10/s by client_ip }`.
pub fn actions_text(block: &ActionsBlock) -> String {
    let actions: Vec<String> = block
        .actions
        .iter()
        .map(|a| match a {
            Action::Opt(o) => format!("{}: {}", o.key, value_text(&o.value)),
            Action::Limit {
                key,
                count,
                unit,
                by,
            } => {
                let by = by
                    .as_ref()
                    .map(|k| format!(" by {}", key_text(k)))
                    .unwrap_or_default();
                format!("{key}: {count}/{unit}{by}")
            }
            Action::Call { name, args, .. } => {
                let args: Vec<String> = args.iter().map(lit).collect();
                format!("{name}({})", args.join(", "))
            }
        })
        .collect();
    format!("{{ {} }}", actions.join(", "))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => lit(s),
        Value::Int(i) => i.to_string(),
        Value::Ident(i) => i.to_string(),
        Value::Bool(b) => b.value.to_string(),
        _ => "..".to_owned(),
    }
}

fn key_text(k: &KeyExpr) -> String {
    match k {
        KeyExpr::Named(i, s) => format!("{i}({})", lit(s)),
        KeyExpr::Bare(i) => i.to_string(),
    }
}

/// A string literal as written, quotes and escapes included.
fn lit(s: &LitStr) -> String {
    s.to_token_stream().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::RouteDecl;

    #[test]
    fn prints_rules_as_written() {
        // (rule, matcher text, target text)
        let cases = [
            (
                r#"route a: host("a.example.com") && !(is_beta || method(GET | HEAD)) => api;"#,
                r#"host("a.example.com") && !(is_beta || method(GET | HEAD))"#,
                "api",
            ),
            (
                r#"route b: header("x").contains("y") || cookie("c") != "1" => split { v2: 5, v1: 95 } by cookie("uid");"#,
                r#"header("x").contains("y") || cookie("c") != "1""#,
                r#"split { v2: 5, v1: 95 } by cookie("uid")"#,
            ),
            (
                r#"route c: _ => respond(404, "not found");"#,
                "_",
                r#"respond(404, "not found")"#,
            ),
            // Literal text is kept as written, spaces and parentheses included.
            (
                r#"route d: header("x").starts_with("a (b") && (path("/x") || path_regex("^/a\\.b$")) => api;"#,
                r#"header("x").starts_with("a (b") && (path("/x") || path_regex("^/a\\.b$"))"#,
                "api",
            ),
        ];
        for (rule, matcher, target) in cases {
            let table: crate::ast::RouteTable = syn::parse_str(rule).unwrap();
            let crate::ast::Item::Route(RouteDecl {
                expr, target: t, ..
            }) = &table.items[0]
            else {
                panic!("expected a route")
            };
            assert_eq!(matcher_text(expr), matcher, "{rule}");
            assert_eq!(target_text(t), target, "{rule}");
        }
    }
}
