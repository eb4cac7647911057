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

impl Atom {
    /// `(v6, network, prefix)` of a `client_ip` atom.
    fn net(&self) -> Option<(bool, u128, u8)> {
        match self {
            Atom::ClientIp { v6, net, prefix } => Some((*v6, *net, *prefix)),
            _ => None,
        }
    }
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
        (ClientIp { .. }, ClientIp { .. }) => match (a.net(), b.net()) {
            (Some(x), Some(y)) => net_within(x, y),
            _ => false,
        },
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
        (ClientIp { .. }, ClientIp { .. }) => match (a.net(), b.net()) {
            (Some(x), Some(y)) => x.0 != y.0 || !(net_within(x, y) || net_within(y, x)),
            _ => false,
        },
        _ => false,
    }
}

/// How `decide` walks the rules: blocks tried in order, each covering a run of
/// consecutive rules, so first-match order holds and every rule is generated once (or once
/// per ancestor prefix inside a prefix block).
pub struct Plan {
    /// Every distinct exact host some rule requires; a request's host is looked up once.
    pub hosts: Vec<String>,
    pub blocks: Vec<Block>,
}

/// One rule to try: its index and what is left to test once the dispatch got there.
pub type Check = (usize, Cond);

/// A run of consecutive rules.
pub enum Block {
    /// Try each in order.
    Linear(Vec<Check>),
    /// Rules that each require an exact host: only those of the request's host are tried
    /// (index into `Plan::hosts`, and the rules of that host as blocks).
    Hosts(Vec<(usize, Vec<Block>)>),
    /// Rules that each require a path prefix: find the longest declared prefix the path is
    /// under (one walk of a byte trie), then try the rules under it or its ancestors.
    Prefixes {
        /// Distinct prefixes; the trie yields an index into this.
        prefixes: Vec<String>,
        /// For each prefix: the rules of the run whose prefix it is under, in order.
        under: Vec<Vec<Check>>,
    },
}

/// A prefix dispatch pays off from this many consecutive prefix rules.
const MIN_PREFIX_RULES: usize = 4;
/// A host dispatch pays off from this many consecutive host rules.
const MIN_HOST_RULES: usize = 2;

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
                    if !done && contains_top(p, atom) {
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

/// Split `items` into maximal runs where `key` is `Some` for all or `None` for all.
fn runs<T, K>(items: Vec<T>, key: impl Fn(&T) -> Option<K>) -> Vec<(bool, Vec<T>)> {
    let mut out: Vec<(bool, Vec<T>)> = Vec::new();
    for item in items {
        let keyed = key(&item).is_some();
        match out.last_mut() {
            Some((k, run)) if *k == keyed => run.push(item),
            _ => out.push((keyed, vec![item])),
        }
    }
    out
}

/// Plan the rules as blocks: runs of host rules become host dispatches, runs of prefix
/// rules prefix dispatches, the rest lists.
pub fn plan(routes: &[Route]) -> Plan {
    let mut hosts: Vec<String> = Vec::new();
    for r in routes {
        if let Some(h) = required_host(&r.cond) {
            if !hosts.iter().any(|g| g == h) {
                hosts.push(h.to_owned());
            }
        }
    }
    let checks: Vec<Check> = routes
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.cond.clone()))
        .collect();
    let mut blocks = Vec::new();
    for (keyed, run) in runs(checks, |(_, c)| required_host(c).map(str::to_owned)) {
        if !keyed || run.len() < MIN_HOST_RULES {
            blocks.extend(prefix_blocks(run));
            continue;
        }
        let mut per_host: Vec<(usize, Vec<Check>)> = Vec::new();
        for (i, c) in run {
            let h = required_host(&c).unwrap_or_default().to_owned();
            let id = hosts.iter().position(|x| *x == h).unwrap_or(0);
            let rest = without(&c, &Atom::HostExact(h));
            match per_host.iter_mut().find(|(k, _)| *k == id) {
                Some((_, list)) => list.push((i, rest)),
                None => per_host.push((id, vec![(i, rest)])),
            }
        }
        blocks.push(Block::Hosts(
            per_host
                .into_iter()
                .map(|(id, list)| (id, prefix_blocks(list)))
                .collect(),
        ));
    }
    Plan { hosts, blocks }
}

/// Runs of at least `MIN_PREFIX_RULES` prefix rules become prefix dispatches.
fn prefix_blocks(rules: Vec<Check>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut linear: Vec<Check> = Vec::new();
    for (keyed, run) in runs(rules, |(_, c)| required_prefix(c).map(str::to_owned)) {
        if !keyed || run.len() < MIN_PREFIX_RULES {
            linear.extend(run);
            continue;
        }
        if !linear.is_empty() {
            out.push(Block::Linear(std::mem::take(&mut linear)));
        }
        let mut prefixes: Vec<String> = Vec::new();
        for (_, c) in &run {
            let p = required_prefix(c).unwrap_or_default();
            if !prefixes.iter().any(|q| q == p) {
                prefixes.push(p.to_owned());
            }
        }
        let under_lists = prefixes
            .iter()
            .map(|deepest| {
                run.iter()
                    .filter_map(|(i, c)| {
                        let p = required_prefix(c).unwrap_or_default();
                        under(deepest, p).then(|| (*i, without(c, &Atom::PathPrefix(p.to_owned()))))
                    })
                    .collect()
            })
            .collect();
        out.push(Block::Prefixes {
            prefixes,
            under: under_lists,
        });
    }
    if !linear.is_empty() {
        out.push(Block::Linear(linear));
    }
    out
}

/// Segment-aware prefix implication: every path under `p` is under `q`.
pub fn under(p: &str, q: &str) -> bool {
    segment_prefix(p, q)
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

    #[test]
    fn plan_splits_rules_into_ordered_blocks() {
        let hdr = Cond::Atom(Atom::Field(
            crate::model::Field::Header,
            "h".into(),
            Test::Present,
        ));
        let p = plan(&routes(vec![
            Cond::And(vec![host("a"), prefix("/x")]),
            host("b"),
            host("a"),
            prefix("/y"),
            hdr.clone(),
            Cond::True,
        ]));
        assert_eq!(p.hosts, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(p.blocks.len(), 2);
        let Block::Hosts(per_host) = &p.blocks[0] else {
            panic!("expected a host block")
        };
        let rules: Vec<(usize, Vec<usize>)> = per_host
            .iter()
            .map(|(h, blocks)| match &blocks[..] {
                [Block::Linear(list)] => (*h, list.iter().map(|c| c.0).collect()),
                _ => panic!("expected one list per host"),
            })
            .collect();
        assert_eq!(rules, vec![(0, vec![0, 2]), (1, vec![1])]);
        let Block::Linear(rest) = &p.blocks[1] else {
            panic!("expected a list")
        };
        assert_eq!(rest.iter().map(|c| c.0).collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[test]
    fn prefix_dispatch_lists_ancestors_in_order() {
        let hdr = Cond::Atom(Atom::Field(
            crate::model::Field::Header,
            "h".into(),
            Test::Present,
        ));
        let p = plan(&routes(vec![
            prefix("/api/v2"),
            prefix("/api"),
            Cond::And(vec![prefix("/static/"), hdr.clone()]),
            prefix("/apiary"),
            hdr.clone(),
            Cond::True,
        ]));
        let Block::Prefixes { prefixes, under } = &p.blocks[0] else {
            panic!("expected a prefix dispatch")
        };
        let idx = |s: &str| prefixes.iter().position(|p| p == s).unwrap();
        let rules = |s: &str| under[idx(s)].iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(rules("/api/v2"), vec![0, 1]);
        assert_eq!(rules("/api"), vec![1]);
        assert_eq!(rules("/apiary"), vec![3]);
        assert_eq!(under[idx("/static/")], vec![(2, hdr.clone())]);
        let Block::Linear(rest) = &p.blocks[1] else {
            panic!("expected a list")
        };
        assert_eq!(rest.iter().map(|c| c.0).collect::<Vec<_>>(), vec![4, 5]);
    }

    #[test]
    fn generated_checks_grow_linearly_with_the_table() {
        // 100 hosts of 5 prefix rules each, then 100 rules without a host: each rule is
        // generated once (or once per ancestor prefix), never once per host.
        let mut conds = Vec::new();
        for h in 0..100 {
            for p in ["/a", "/b", "/c", "/d", "/e"] {
                conds.push(Cond::And(vec![host(&format!("h{h}")), prefix(p)]));
            }
        }
        for i in 0..100 {
            conds.push(prefix(&format!("/s{i}")));
        }
        conds.push(Cond::True);
        let p = plan(&routes(conds));
        fn count(b: &Block) -> usize {
            match b {
                Block::Linear(l) => l.len(),
                Block::Hosts(hs) => hs.iter().flat_map(|(_, bs)| bs.iter()).map(count).sum(),
                Block::Prefixes { under, .. } => under.iter().map(Vec::len).sum(),
            }
        }
        assert_eq!(p.blocks.iter().map(count).sum::<usize>(), 601);
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

    fn run_blocks(p: &Plan, blocks: &[Block], r: &Req) -> Option<usize> {
        blocks.iter().find_map(|b| match b {
            Block::Linear(list) => first_in(list, r),
            Block::Hosts(per_host) => {
                let id = p.hosts.iter().position(|h| h == r.host)?;
                let (_, inner) = per_host.iter().find(|(h, _)| *h == id)?;
                run_blocks(p, inner, r)
            }
            Block::Prefixes { prefixes, under } => {
                let deepest = prefixes
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| segment_prefix(r.path, p))
                    .max_by_key(|(_, p)| p.len())?
                    .0;
                first_in(&under[deepest], r)
            }
        })
    }

    fn run_plan(p: &Plan, r: &Req) -> Option<usize> {
        run_blocks(p, &p.blocks, r)
    }

    fn prefix_dispatches(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .map(|b| match b {
                Block::Prefixes { .. } => 1,
                Block::Hosts(hs) => hs.iter().map(|(_, bs)| prefix_dispatches(bs)).sum(),
                Block::Linear(_) => 0,
            })
            .sum()
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
            DISPATCHES.fetch_add(prefix_dispatches(&plan.blocks), std::sync::atomic::Ordering::Relaxed);
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
