//! The compiler part of the crate: checked matchers become conditions (`Cond`), rules that
//! can never match are found in their disjunctive normal form (`dnf`), and the rules are
//! planned as the decision tree `expand` writes out (`plan`).

mod dnf;
mod plan;

pub use plan::{Block, Check, Plan, PrefixTrie, TrieNode};

use crate::errors::Errors;
use crate::model::{Atom, Matcher, Model, Test};

/// A condition over a request: what a matcher means, with `!=` spelled out and `&&`/`||`
/// as lists.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Cond {
    True,
    /// The value of a named predicate: index into `Lowered::preds`.
    Pred(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Atom(Atom),
}

/// A table as `expand` writes it out.
pub struct Lowered {
    /// The condition of each named predicate, in declaration order.
    pub preds: Vec<Cond>,
    /// The condition of each rule, in order.
    pub routes: Vec<Cond>,
    /// How `decide` walks the rules.
    pub plan: Plan,
}

/// Lower a checked table; a rule that can never match, or a table without a fallback
/// rule, is an error.
pub fn lower(m: &Model) -> Result<Lowered, syn::Error> {
    let preds: Vec<Cond> = m.preds.iter().map(|p| lower_matcher(&p.matcher)).collect();
    let routes: Vec<Cond> = m.routes.iter().map(|r| lower_matcher(&r.matcher)).collect();
    let mut errs = Errors::default();
    find_shadowed_rules(&mut errs, m, &routes, &preds);
    find_missing_fallback(&mut errs, m, &routes, &preds);
    let plan = plan::plan(&routes);
    errs.finish(Lowered {
        preds,
        routes,
        plan,
    })
}

/// A matcher as a condition. `x != "v"` holds when `x` is absent or has another value:
/// `!(x == "v")`.
pub fn lower_matcher(m: &Matcher) -> Cond {
    match m {
        Matcher::Any => Cond::True,
        Matcher::Pred(i) => Cond::Pred(*i),
        Matcher::Not(inner) => Cond::Not(Box::new(lower_matcher(inner))),
        Matcher::And(a, b) => Cond::And(vec![lower_matcher(a), lower_matcher(b)]),
        Matcher::Or(a, b) => Cond::Or(vec![lower_matcher(a), lower_matcher(b)]),
        Matcher::Atom(a) => Cond::Atom(a.clone()),
        Matcher::NotEqual(field, name, value) => Cond::Not(Box::new(Cond::Atom(Atom::Field(
            *field,
            name.clone(),
            Test::Eq(value.clone()),
        )))),
    }
}

// Rule: every rule can match some request that no earlier rule takes: a rule after `_`, or
// one whose every case an earlier rule already covers (`path_prefix("/api/v2")` after
// `path_prefix("/api")`), is an error at its name.
fn find_shadowed_rules(errs: &mut Errors, m: &Model, routes: &[Cond], preds: &[Cond]) {
    let mut earlier: Vec<(usize, Vec<dnf::Conj>)> = Vec::new();
    for (i, (r, cond)) in m.routes.iter().zip(routes).enumerate() {
        let Some(dnf) = dnf::dnf(cond, preds) else {
            earlier.push((i, Vec::new()));
            continue;
        };
        let coverer =
            dnf.iter()
                .filter(|c| c.satisfiable())
                .try_fold(None, |acc: Option<usize>, conj| {
                    earlier
                        .iter()
                        .find(|(_, prev)| prev.iter().any(|p| p.implied_by(conj)))
                        .map(|(j, _)| Some(acc.map_or(*j, |a: usize| a.max(*j))))
                        .ok_or(())
                });
        match coverer {
            Ok(Some(j)) => {
                let by = &m.routes[j].name;
                let why = if routes[j] == Cond::True {
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
    }
}

// Rule: the last rule matches everything (`_`), so no request falls through unrouted; for a
// 404, say so: `route default: _ => respond(404, "not found");`.
fn find_missing_fallback(errs: &mut Errors, m: &Model, routes: &[Cond], preds: &[Cond]) {
    let Some(last) = m.routes.last() else { return };
    let has_fallback = routes
        .iter()
        .any(|c| dnf::dnf(c, preds).is_some_and(|d| d.iter().any(|c| c.is_empty())));
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
    use crate::model::Field;

    #[test]
    fn not_equal_is_absent_or_another_value() {
        let ne = Matcher::NotEqual(Field::Cookie, "beta".into(), "true".into());
        assert_eq!(
            lower_matcher(&ne),
            Cond::Not(Box::new(Cond::Atom(Atom::Field(
                Field::Cookie,
                "beta".into(),
                Test::Eq("true".into())
            ))))
        );
    }

    fn lowered(table: &str) -> Result<Lowered, String> {
        let parsed: crate::ast::RouteTable = syn::parse_str(table).unwrap();
        let model = crate::check::check(&parsed).map_err(|e| e.to_string())?;
        lower(&model).map_err(|e| e.to_string())
    }

    #[test]
    fn finds_shadowed_rules_and_missing_fallbacks() {
        let head = r#"proxy P; cluster c { backends: ["127.0.0.1:1"] }"#;
        // (rules, the error, if any)
        let cases = [
            (
                r#"route a: path_prefix("/api") => c; route b: _ => c;"#,
                None,
            ),
            (
                r#"route a: path_prefix("/api") => c; route b: path_prefix("/api/v2") => c; route z: _ => c;"#,
                Some("rule `b` can never match: every request it matches is taken by rule `a` (or rules before it) first; move it up or remove it"),
            ),
            (
                r#"route a: _ => c; route b: path("/x") => c;"#,
                Some("rule `b` can never match: rule `a` before it matches every request; move it up or remove it"),
            ),
            (
                r#"route a: host("a") && host("b") => c; route z: _ => c;"#,
                Some("rule `a` can never match: its conditions contradict each other"),
            ),
            (
                r#"route a: path("/x") => c;"#,
                Some("the table has no fallback rule, so some requests match no rule; end it with `route default: _ => CLUSTER;` (or `_ => respond(404, \"not found\")`)"),
            ),
            (
                r#"let x = cookie("b") != "1"; route a: x => c; route z: _ => c;"#,
                None,
            ),
        ];
        for (rules, want) in cases {
            let got = lowered(&format!("{head} {rules}")).err();
            assert_eq!(got.as_deref(), want, "{rules}");
        }
    }
}
