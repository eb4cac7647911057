//! Conditions in disjunctive normal form, and which atoms imply or exclude each other: how
//! `lower` finds rules that can never match.

use super::Cond;
use crate::model::{Atom, Test};
use crate::normalize::segment_prefix;

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

/// `cond` with predicates (the conditions of `Cond::Pred`) inlined, as a disjunction of
/// conjunctions; `None` when too big.
pub fn dnf(cond: &Cond, preds: &[Cond]) -> Option<Vec<Conj>> {
    fn go(c: &Cond, preds: &[Cond], positive: bool) -> Option<Vec<Conj>> {
        let out = match (c, positive) {
            (Cond::True, true) => vec![Conj::default()],
            (Cond::True, false) => vec![],
            (Cond::Pred(i), p) => go(preds.get(*i)?, preds, p)?,
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
        // `/api/v2` is within `/api`; `/apiary` is not.
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
        // A listener has one port.
        (Port(x), Port(y)) => x != y,
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
}
