//! The decision plan: rules grouped by exact host, so a request looks at its host once and
//! then only at the rules that can apply to it, and runs of path-prefix rules dispatched by
//! one walk of a byte trie. First-match order holds throughout.

use super::Cond;
use crate::model::Atom;
use crate::normalize::segment_prefix;
use std::collections::BTreeMap;

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
        /// The distinct prefixes as a byte trie, which yields an index into `under`.
        trie: PrefixTrie,
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
pub fn plan(routes: &[Cond]) -> Plan {
    let mut hosts: Vec<String> = Vec::new();
    for cond in routes {
        if let Some(h) = required_host(cond) {
            if !hosts.iter().any(|g| g == h) {
                hosts.push(h.to_owned());
            }
        }
    }
    let checks: Vec<Check> = routes.iter().cloned().enumerate().collect();
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
            trie: PrefixTrie::new(&prefixes),
            under: under_lists,
        });
    }
    if !linear.is_empty() {
        out.push(Block::Linear(linear));
    }
    out
}

/// Segment-aware prefix implication: every path under `p` is under `q`.
fn under(p: &str, q: &str) -> bool {
    segment_prefix(p, q)
}

/// The prefixes of a prefix dispatch as a byte trie; `expand` writes it out as nested
/// `match`es that walk the path once.
#[derive(Debug)]
pub struct PrefixTrie {
    pub root: TrieNode,
}

#[derive(Default, Debug)]
pub struct TrieNode {
    /// The prefix that ends at this node, if any.
    pub end: Option<PrefixEnd>,
    pub children: BTreeMap<u8, TrieNode>,
}

/// A prefix ending at a trie node at depth `d`. The path is under it when the path's
/// byte `d` ends a segment (it is `/` or the path ends there), or, for a prefix that ends
/// in `/` (`plain`), always: the segment-aware rule of `normalize::segment_prefix`.
#[derive(Clone, Copy, Debug)]
pub struct PrefixEnd {
    /// Index into the dispatch's `prefixes`.
    pub index: usize,
    pub plain: bool,
}

impl PrefixTrie {
    pub fn new(prefixes: &[String]) -> Self {
        let mut root = TrieNode::default();
        for (index, p) in prefixes.iter().enumerate() {
            let mut n = &mut root;
            for &b in p.as_bytes() {
                n = n.children.entry(b).or_default();
            }
            n.end = Some(PrefixEnd {
                index,
                plain: p.ends_with('/'),
            });
        }
        PrefixTrie { root }
    }

    /// The longest prefix `path` is under, found as the generated walk finds it: down the
    /// trie byte by byte, each prefix passed on the way replacing the shorter one.
    #[cfg(test)]
    pub fn longest(&self, path: &[u8]) -> Option<usize> {
        let (mut node, mut depth, mut found) = (&self.root, 0, None);
        loop {
            if let Some(end) = node.end {
                if end.plain || path.len() == depth || path[depth] == b'/' {
                    found = Some(end.index);
                }
            }
            match path.get(depth).and_then(|b| node.children.get(b)) {
                Some(child) => (node, depth) = (child, depth + 1),
                None => return found,
            }
        }
    }

    /// The prefixes, by index.
    #[cfg(test)]
    pub fn prefixes(&self) -> Vec<String> {
        fn walk(n: &TrieNode, path: &mut Vec<u8>, out: &mut Vec<(usize, String)>) {
            if let Some(e) = n.end {
                out.push((e.index, String::from_utf8_lossy(path).into_owned()));
            }
            for (b, child) in &n.children {
                path.push(*b);
                walk(child, path, out);
                path.pop();
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut Vec::new(), &mut out);
        out.sort();
        out.into_iter().map(|(_, p)| p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Field, Test};

    fn host(h: &str) -> Cond {
        Cond::Atom(Atom::HostExact(h.into()))
    }
    fn prefix(p: &str) -> Cond {
        Cond::Atom(Atom::PathPrefix(p.into()))
    }

    fn routes(conds: Vec<Cond>) -> Vec<Cond> {
        conds
    }

    #[test]
    fn plan_splits_rules_into_ordered_blocks() {
        let hdr = Cond::Atom(Atom::Field(Field::Header, "h".into(), Test::Present));
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
        let hdr = Cond::Atom(Atom::Field(Field::Header, "h".into(), Test::Present));
        let p = plan(&routes(vec![
            prefix("/api/v2"),
            prefix("/api"),
            Cond::And(vec![prefix("/static/"), hdr.clone()]),
            prefix("/apiary"),
            hdr.clone(),
            Cond::True,
        ]));
        let Block::Prefixes { trie, under } = &p.blocks[0] else {
            panic!("expected a prefix dispatch")
        };
        let prefixes = trie.prefixes();
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
    use crate::model::{Field, Test};
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
            Block::Prefixes { trie, under } => {
                let deepest = trie
                    .prefixes()
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| segment_prefix(r.path, p))
                    .max_by_key(|(_, p)| p.len())
                    .map(|(k, _)| k);
                // The trie walk `expand` generates finds the same prefix.
                assert_eq!(trie.longest(r.path.as_bytes()), deepest);
                first_in(&under[deepest?], r)
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

    fn table(conds: Vec<Cond>) -> Vec<Cond> {
        conds.into_iter().chain([Cond::True]).collect()
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
                        let want = routes.iter().position(|c| eval(c, &r));
                        prop_assert_eq!(run_plan(&plan, &r), want, "host {} path {} headers {:?}", host, path, r.headers);
                    }
                }
            }
        }
    }
}
