//! The compiler part of the crate: conditions in disjunctive normal form (for finding rules
//! that can never match) and the decision plan (rules grouped by exact host, so a request
//! looks at its host once and then only at the rules that can apply to it).

use crate::model::{Atom, Cond, Pred, Route, Test};

/// Largest DNF kept; tables past it skip the reachability analysis for that rule.
const MAX_CONJUNCTS: usize = 64;

/// A literal: an atom or its negation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lit {
    pub atom: Atom,
    pub positive: bool,
}

/// A conjunction of literals; empty means "always".
#[derive(Clone, Debug, Default)]
pub struct Conj(pub Vec<Lit>);

impl Conj {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every request that satisfies `other` satisfies `self`.
    pub fn implied_by(&self, other: &Conj) -> bool {
        self.0
            .iter()
            .all(|l| other.0.iter().any(|k| lit_implies(k, l)))
    }

    /// Some request can satisfy all literals at once.
    pub fn satisfiable(&self) -> bool {
        !self.0.iter().any(|k| {
            self.0.iter().any(|l| {
                let neg = Lit {
                    atom: l.atom.clone(),
                    positive: !l.positive,
                };
                lit_implies(k, &neg)
            })
        })
    }
}

/// `cond` with predicates inlined, as a disjunction of conjunctions; `None` when too big.
pub fn dnf(cond: &Cond, preds: &[Pred]) -> Option<Vec<Conj>> {
    fn go(c: &Cond, preds: &[Pred], positive: bool) -> Option<Vec<Conj>> {
        let out = match (c, positive) {
            (Cond::True, true) => vec![Conj::default()],
            (Cond::True, false) => vec![],
            (Cond::Pred(i), p) => go(&preds[*i].cond, preds, p)?,
            (Cond::Not(inner), p) => go(inner, preds, !p)?,
            (Cond::Atom(a), p) => vec![Conj(vec![Lit {
                atom: a.clone(),
                positive: p,
            }])],
            // And, or a negated Or: the product of the parts.
            (Cond::And(parts), true) | (Cond::Or(parts), false) => {
                let mut acc = vec![Conj::default()];
                for part in parts {
                    let d = go(part, preds, positive)?;
                    let mut next = Vec::new();
                    for a in &acc {
                        for b in &d {
                            let mut lits = a.0.clone();
                            lits.extend(b.0.iter().cloned());
                            next.push(Conj(lits));
                        }
                    }
                    if next.len() > MAX_CONJUNCTS {
                        return None;
                    }
                    acc = next;
                }
                acc
            }
            (Cond::Or(parts), true) | (Cond::And(parts), false) => {
                let mut acc = Vec::new();
                for part in parts {
                    acc.extend(go(part, preds, positive)?);
                }
                acc
            }
        };
        (out.len() <= MAX_CONJUNCTS).then_some(out)
    }
    go(cond, preds, true)
}

fn lit_implies(k: &Lit, l: &Lit) -> bool {
    match (k.positive, l.positive) {
        (true, true) => atom_implies(&k.atom, &l.atom),
        (false, false) => atom_implies(&l.atom, &k.atom),
        (true, false) => disjoint(&k.atom, &l.atom),
        (false, true) => false,
    }
}

/// `/api/v2` is within `/api`; `/apiary` is not.
fn segment_prefix(p: &str, q: &str) -> bool {
    p.starts_with(q) && (q.ends_with('/') || p.len() == q.len() || p.as_bytes()[q.len()] == b'/')
}

fn net_within(a: (bool, u128, u8), b: (bool, u128, u8)) -> bool {
    let bits = if a.0 { 128 } else { 32 };
    a.0 == b.0 && b.2 <= a.2 && (b.2 == 0 || (a.1 >> (bits - b.2)) == (b.1 >> (bits - b.2)))
}

/// Every request matching `a` matches `b`.
pub fn atom_implies(a: &Atom, b: &Atom) -> bool {
    use Atom::*;
    if a == b {
        return true;
    }
    match (a, b) {
        (HostExact(h), HostSuffix(s)) => h.len() > s.len() && h.ends_with(s.as_str()),
        (HostSuffix(x), HostSuffix(y)) => x.ends_with(y.as_str()),
        (Path(p), PathPrefix(q)) | (PathPrefix(p), PathPrefix(q)) => segment_prefix(p, q),
        (Method(x), Method(y)) => x.iter().all(|m| y.contains(m)),
        (Field(f1, n1, t1), Field(f2, n2, t2)) if f1 == f2 && n1 == n2 => match (t1, t2) {
            (_, Test::Present) => true,
            (Test::Eq(v), Test::Contains(s))
            | (Test::StartsWith(v), Test::Contains(s))
            | (Test::Contains(v), Test::Contains(s)) => v.contains(s.as_str()),
            (Test::Eq(v), Test::StartsWith(s)) | (Test::StartsWith(v), Test::StartsWith(s)) => {
                v.starts_with(s.as_str())
            }
            _ => false,
        },
        (
            ClientIp {
                v6: a6,
                net: an,
                prefix: ap,
            },
            ClientIp {
                v6: b6,
                net: bn,
                prefix: bp,
            },
        ) => net_within((*a6, *an, *ap), (*b6, *bn, *bp)),
        _ => false,
    }
}

/// No request matches both.
fn disjoint(a: &Atom, b: &Atom) -> bool {
    use Atom::*;
    match (a, b) {
        (HostExact(x), HostExact(y)) | (Path(x), Path(y)) => x != y,
        (HostExact(_), HostSuffix(_)) | (Path(_), PathPrefix(_)) => !atom_implies(a, b),
        (HostSuffix(_), HostExact(_)) | (PathPrefix(_), Path(_)) => !atom_implies(b, a),
        (Method(x), Method(y)) => !x.iter().any(|m| y.contains(m)),
        // Query parameters and cookies have one value (the first); header lines can repeat.
        (Field(f1, n1, Test::Eq(v1)), Field(f2, n2, Test::Eq(v2))) => {
            f1 == f2 && *f1 != crate::model::Field::Header && n1 == n2 && v1 != v2
        }
        (
            ClientIp {
                v6: a6,
                net: an,
                prefix: ap,
            },
            ClientIp {
                v6: b6,
                net: bn,
                prefix: bp,
            },
        ) => {
            let (a, b) = ((*a6, *an, *ap), (*b6, *bn, *bp));
            a6 != b6 || !(net_within(a, b) || net_within(b, a))
        }
        _ => false,
    }
}

/// How `decide` walks the rules.
pub struct Plan {
    /// Distinct exact hosts that some rule requires, with the rules to try when the request
    /// has that host.
    pub host_groups: Vec<(String, Checks)>,
    /// The rules to try when the host is none of those (all rules when no rule names one).
    pub other: Checks,
}

/// One rule to try: its index and what is left to test once the dispatch got there.
pub type Check = (usize, Cond);

/// The rules of one host group.
pub enum Checks {
    /// Try each in order.
    Linear(Vec<Check>),
    /// Find the longest declared prefix the path is under (one walk of a byte trie), then
    /// try only the rules that can match under it, in order.
    ByPrefix {
        /// Distinct prefixes; the trie returns an index into this.
        prefixes: Vec<String>,
        /// For each prefix: the rules under it or under one of its ancestors, and the rules
        /// with no top-level prefix, in table order.
        under: Vec<Vec<Check>>,
        /// When no prefix matches: only the rules with no top-level prefix.
        none: Vec<Check>,
    },
}

/// A prefix dispatch pays off from this many prefix rules in a group.
const MIN_PREFIX_RULES: usize = 4;
/// Above this many generated checks, a group stays linear (code size bound).
const MAX_PREFIX_CHECKS: usize = 20_000;

/// The exact host a rule requires at its top level (`host("a") && ..`), if any.
fn required_host(cond: &Cond) -> Option<&str> {
    match cond {
        Cond::Atom(Atom::HostExact(h)) => Some(h),
        Cond::And(parts) => parts.iter().find_map(required_host),
        _ => None,
    }
}

/// The path prefix a rule requires at its top level (`path_prefix("/a") && ..`), if any.
fn required_prefix(cond: &Cond) -> Option<&str> {
    match cond {
        Cond::Atom(Atom::PathPrefix(p)) => Some(p),
        Cond::And(parts) => parts.iter().find_map(required_prefix),
        _ => None,
    }
}

/// `cond` with the first top-level conjunct equal to `atom` replaced by `true`.
fn without(cond: &Cond, atom: &Atom) -> Cond {
    match cond {
        Cond::Atom(a) if a == atom => Cond::True,
        Cond::And(parts) => {
            let mut done = false;
            let parts: Vec<Cond> = parts
                .iter()
                .map(|p| {
                    let has = matches!(p, Cond::Atom(a) if a == atom)
                        || matches!(p, Cond::And(_) if contains_top(p, atom));
                    if !done && has {
                        done = true;
                        without(p, atom)
                    } else {
                        p.clone()
                    }
                })
                .filter(|p| *p != Cond::True)
                .collect();
            match parts.len() {
                0 => Cond::True,
                1 => parts.into_iter().next().unwrap_or(Cond::True),
                _ => Cond::And(parts),
            }
        }
        c => c.clone(),
    }
}

fn contains_top(cond: &Cond, atom: &Atom) -> bool {
    match cond {
        Cond::Atom(a) => a == atom,
        Cond::And(parts) => parts.iter().any(|p| contains_top(p, atom)),
        _ => false,
    }
}

/// Group the rules by the exact host they require, keeping first-match order in each group,
/// and dispatch on path prefixes inside a group when it has enough of them.
pub fn plan(routes: &[Route]) -> Plan {
    let mut hosts: Vec<String> = Vec::new();
    for r in routes {
        if let Some(h) = required_host(&r.cond) {
            if !hosts.iter().any(|g| g == h) {
                hosts.push(h.to_owned());
            }
        }
    }
    let host_groups = hosts
        .iter()
        .map(|h| {
            let rules: Vec<Check> = routes
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match required_host(&r.cond) {
                    Some(rh) if rh == h => Some((i, without(&r.cond, &Atom::HostExact(h.clone())))),
                    Some(_) => None,
                    None => Some((i, r.cond.clone())),
                })
                .collect();
            (h.clone(), by_prefix(rules))
        })
        .collect();
    let other = routes
        .iter()
        .enumerate()
        .filter(|(_, r)| required_host(&r.cond).is_none())
        .map(|(i, r)| (i, r.cond.clone()))
        .collect();
    Plan {
        host_groups,
        other: by_prefix(other),
    }
}

/// Segment-aware prefix implication: every path under `p` is under `q`.
pub fn under(p: &str, q: &str) -> bool {
    segment_prefix(p, q)
}

fn by_prefix(rules: Vec<Check>) -> Checks {
    let mut prefixes: Vec<String> = Vec::new();
    for (_, c) in &rules {
        if let Some(p) = required_prefix(c) {
            if !prefixes.iter().any(|q| q == p) {
                prefixes.push(p.to_owned());
            }
        }
    }
    let with_prefix = rules
        .iter()
        .filter(|(_, c)| required_prefix(c).is_some())
        .count();
    let without_prefix = rules.len() - with_prefix;
    if with_prefix < MIN_PREFIX_RULES || prefixes.len() * (without_prefix + 1) > MAX_PREFIX_CHECKS {
        return Checks::Linear(rules);
    }
    let under_lists = prefixes
        .iter()
        .map(|deepest| {
            rules
                .iter()
                .filter_map(|(i, c)| match required_prefix(c) {
                    Some(p) if under(deepest, p) => {
                        Some((*i, without(c, &Atom::PathPrefix(p.to_owned()))))
                    }
                    Some(_) => None,
                    None => Some((*i, c.clone())),
                })
                .collect()
        })
        .collect();
    let none = rules
        .iter()
        .filter(|(_, c)| required_prefix(c).is_none())
        .cloned()
        .collect();
    Checks::ByPrefix {
        prefixes,
        under: under_lists,
        none,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Cond {
        Cond::Atom(Atom::HostExact(h.into()))
    }
    fn prefix(p: &str) -> Cond {
        Cond::Atom(Atom::PathPrefix(p.into()))
    }

    #[test]
    fn prefixes_imply_by_segment() {
        let a = Atom::PathPrefix("/api/v2".into());
        let b = Atom::PathPrefix("/api".into());
        assert!(atom_implies(&a, &b));
        assert!(!atom_implies(&b, &a));
        assert!(!atom_implies(&Atom::PathPrefix("/apiary".into()), &b));
        assert!(atom_implies(
            &Atom::HostExact("a.example.com".into()),
            &Atom::HostSuffix(".example.com".into())
        ));
    }

    #[test]
    fn finds_contradictions() {
        let d = dnf(&Cond::And(vec![host("a"), host("b")]), &[]).unwrap();
        assert!(!d[0].satisfiable());
        let d = dnf(
            &Cond::And(vec![prefix("/a"), Cond::Not(Box::new(prefix("/a")))]),
            &[],
        )
        .unwrap();
        assert!(!d[0].satisfiable());
        let d = dnf(&Cond::And(vec![host("a"), prefix("/a")]), &[]).unwrap();
        assert!(d[0].satisfiable());
    }

    #[test]
    fn negation_distributes() {
        // !(a || b) == !a && !b: one conjunct of two negative literals.
        let d = dnf(
            &Cond::Not(Box::new(Cond::Or(vec![host("a"), host("b")]))),
            &[],
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0.len(), 2);
        assert!(d[0].0.iter().all(|l| !l.positive));
    }

    fn routes(conds: Vec<Cond>) -> Vec<Route> {
        conds
            .into_iter()
            .enumerate()
            .map(|(i, cond)| Route {
                name: syn::Ident::new(&format!("r{i}"), proc_macro2::Span::call_site()),
                attrs: vec![],
                cond,
                target: crate::model::Target::Cluster(0),
                matcher_text: String::new(),
                target_text: String::new(),
            })
            .collect()
    }

    fn linear(c: &Checks) -> Vec<(usize, Cond)> {
        match c {
            Checks::Linear(v) => v.clone(),
            Checks::ByPrefix { .. } => panic!("expected a linear group"),
        }
    }

    #[test]
    fn plan_keeps_order_within_host_groups() {
        let p = plan(&routes(vec![
            Cond::And(vec![host("a"), prefix("/x")]),
            prefix("/y"),
            host("b"),
            host("a"),
            Cond::True,
        ]));
        let groups: Vec<(String, Vec<usize>)> = p
            .host_groups
            .iter()
            .map(|(h, c)| (h.clone(), linear(c).iter().map(|x| x.0).collect()))
            .collect();
        assert_eq!(
            groups,
            vec![
                ("a".to_owned(), vec![0, 1, 3, 4]),
                ("b".to_owned(), vec![1, 2, 4])
            ]
        );
        assert_eq!(
            linear(&p.other).iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![1, 4]
        );
        assert_eq!(linear(&p.host_groups[0].1)[0].1, prefix("/x"));
        assert_eq!(linear(&p.host_groups[0].1)[2].1, Cond::True);
    }

    #[test]
    fn prefix_dispatch_lists_ancestors_and_unprefixed_rules_in_order() {
        let hdr = Cond::Atom(Atom::Field(
            crate::model::Field::Header,
            "h".into(),
            Test::Present,
        ));
        let p = plan(&routes(vec![
            prefix("/api/v2"),
            prefix("/api"),
            hdr.clone(),
            Cond::And(vec![prefix("/static/"), hdr.clone()]),
            prefix("/apiary"),
            Cond::True,
        ]));
        let Checks::ByPrefix {
            prefixes,
            under,
            none,
        } = &p.other
        else {
            panic!("expected a prefix dispatch")
        };
        let idx = |s: &str| prefixes.iter().position(|p| p == s).unwrap();
        let rules = |s: &str| under[idx(s)].iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(rules("/api/v2"), vec![0, 1, 2, 5]);
        assert_eq!(rules("/api"), vec![1, 2, 5]);
        assert_eq!(rules("/apiary"), vec![2, 4, 5]);
        assert_eq!(under[idx("/static/")][1], (3, hdr.clone()));
        assert_eq!(none.iter().map(|c| c.0).collect::<Vec<_>>(), vec![2, 5]);
    }
}

/// Random tables against a naive interpreter: the plan (host groups, prefix dispatch,
/// residual conditions) must pick the rule a first-match scan picks, for every request.
#[cfg(test)]
mod plan_agrees_with_first_match {
    use super::*;
    use crate::model::{Field, Target};
    use proptest::prelude::*;

    struct Req {
        host: &'static str,
        path: &'static str,
        headers: Vec<&'static str>,
    }

    fn eval(c: &Cond, r: &Req) -> bool {
        match c {
            Cond::True => true,
            Cond::Pred(_) => unreachable!("no predicates generated"),
            Cond::Not(c) => !eval(c, r),
            Cond::And(cs) => cs.iter().all(|c| eval(c, r)),
            Cond::Or(cs) => cs.iter().any(|c| eval(c, r)),
            Cond::Atom(Atom::HostExact(h)) => r.host == h,
            Cond::Atom(Atom::Path(p)) => r.path == p,
            Cond::Atom(Atom::PathPrefix(p)) => segment_prefix(r.path, p),
            Cond::Atom(Atom::Field(Field::Header, n, Test::Present)) => {
                r.headers.contains(&n.as_str())
            }
            Cond::Atom(a) => unreachable!("not generated: {a:?}"),
        }
    }

    fn first_in(list: &[Check], r: &Req) -> Option<usize> {
        list.iter().find(|(_, c)| eval(c, r)).map(|(i, _)| *i)
    }

    fn run_plan(p: &Plan, r: &Req) -> Option<usize> {
        let checks = p
            .host_groups
            .iter()
            .find(|(h, _)| h == r.host)
            .map_or(&p.other, |(_, c)| c);
        match checks {
            Checks::Linear(list) => first_in(list, r),
            Checks::ByPrefix {
                prefixes,
                under,
                none,
            } => {
                let deepest = prefixes
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| segment_prefix(r.path, p))
                    .max_by_key(|(_, p)| p.len())
                    .map(|(k, _)| k);
                match deepest {
                    Some(k) => first_in(&under[k], r),
                    None => first_in(none, r),
                }
            }
        }
    }

    fn atom() -> impl Strategy<Value = Cond> {
        prop_oneof![
            prop::sample::select(vec!["a", "b", "c"])
                .prop_map(|h| Cond::Atom(Atom::HostExact(h.into()))),
            prop::sample::select(vec!["/", "/x", "/x/", "/x/y", "/xy", "/y"])
                .prop_map(|p| Cond::Atom(Atom::PathPrefix(p.into()))),
            prop::sample::select(vec!["/x", "/y"]).prop_map(|p| Cond::Atom(Atom::Path(p.into()))),
            prop::sample::select(vec!["h1", "h2"]).prop_map(|h| Cond::Atom(Atom::Field(
                Field::Header,
                h.into(),
                Test::Present
            ))),
        ]
    }

    fn prefix() -> impl Strategy<Value = Cond> {
        prop::sample::select(vec!["/", "/x", "/x/", "/x/y", "/xy", "/y"])
            .prop_map(|p| Cond::Atom(Atom::PathPrefix(p.into())))
    }

    fn general() -> impl Strategy<Value = Cond> {
        atom().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Cond::And),
                prop::collection::vec(inner.clone(), 2..3).prop_map(Cond::Or),
                inner.prop_map(|c| Cond::Not(Box::new(c))),
            ]
        })
    }

    /// Rules shaped like real tables: many start with a host and/or a path prefix, so
    /// groups get big enough for the prefix dispatch.
    fn cond() -> impl Strategy<Value = Cond> {
        let host = prop::sample::select(vec!["a", "b"])
            .prop_map(|h| Cond::Atom(Atom::HostExact(h.into())));
        prop_oneof![
            3 => prefix(),
            3 => (prefix(), general()).prop_map(|(p, g)| Cond::And(vec![p, g])),
            2 => (host, prefix(), general()).prop_map(|(h, p, g)| Cond::And(vec![h, p, g])),
            3 => general(),
        ]
    }

    fn table(conds: Vec<Cond>) -> Vec<Route> {
        conds
            .into_iter()
            .chain([Cond::True])
            .enumerate()
            .map(|(i, cond)| Route {
                name: syn::Ident::new(&format!("r{i}"), proc_macro2::Span::call_site()),
                attrs: vec![],
                cond,
                target: Target::Cluster(0),
                matcher_text: String::new(),
                target_text: String::new(),
            })
            .collect()
    }

    static DISPATCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn random_tables_exercise_the_prefix_dispatch() {
        on_random_tables();
        assert!(
            DISPATCHES.load(std::sync::atomic::Ordering::Relaxed) > 100,
            "too few prefix dispatches generated"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn on_random_tables(conds in prop::collection::vec(cond(), 1..24)) {
            let routes = table(conds);
            let plan = plan(&routes);
            let dispatched = std::iter::once(&plan.other).chain(plan.host_groups.iter().map(|g| &g.1));
            DISPATCHES.fetch_add(dispatched.filter(|c| matches!(c, Checks::ByPrefix { .. })).count(), std::sync::atomic::Ordering::Relaxed);
            for host in ["a", "b", "c", "d"] {
                for path in ["/", "/x", "/x/", "/x/y", "/x/y/z", "/xy", "/xyz", "/y", "/y/", "/z"] {
                    for headers in [vec![], vec!["h1"], vec!["h2"], vec!["h1", "h2"]] {
                        let r = Req { host, path, headers };
                        let want = routes.iter().position(|rt| eval(&rt.cond, &r));
                        prop_assert_eq!(run_plan(&plan, &r), want, "host {} path {} headers {:?}", host, path, r.headers);
                    }
                }
            }
        }
    }
}
