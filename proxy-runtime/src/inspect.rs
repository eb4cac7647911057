//! What a compiled table says about itself: `--routes` (the table as text) and
//! `--explain` (which rule and target a request gets).

use crate::discovery::{Entry, Source};
use crate::error::Error;
use crate::launch::Launch;
use crate::request::RequestView;
use crate::spec::{Check, Cidr, Field, FieldTest, PredicateSpec, Refresh, Target};
use crate::table::{Id, Table};

/// The table as text: rules in order, then clusters with their backends.
pub fn describe<T: Table>(launch: &Launch<T>) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "proxy {}\nambiguous paths: {:?}\n\nroutes (first match wins):\n",
        T::NAME,
        T::PATHS
    );
    let width = T::ROUTES.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for r in T::ROUTES {
        let _ = writeln!(s, "  {:width$}  {}  =>  {}", r.name, r.matcher, r.target);
    }
    if !T::TRUSTED_PROXIES.is_empty() {
        let _ = writeln!(s, "\ntrusted proxies: {}", T::TRUSTED_PROXIES.len());
    }
    s.push_str("\nclusters:\n");
    for (i, c) in T::CLUSTERS.iter().enumerate() {
        let _ = write!(s, "  {}  balance={:?}", c.name, c.balance);
        if let Some(h) = &c.health {
            let _ = write!(
                s,
                " health={:?} every={:?} fall={} rise={}",
                h.kind, h.every, h.fall, h.rise
            );
        }
        match c.retries {
            Some(n) => {
                let _ = write!(s, " retries={n}");
            }
            None => s.push_str(" retries=each-backend-once-on-connect-failure"),
        }
        match c.passive {
            Some(p) => {
                let what = if p.count_5xx {
                    "failures-or-5xx"
                } else {
                    "failures"
                };
                let _ = write!(
                    s,
                    " passive={} {what} -> {:?} aside",
                    p.failures, p.cooldown
                );
            }
            None => s.push_str(" passive=off"),
        }
        s.push('\n');
        let source = if launch.is_overridden(i) {
            " (--backend)"
        } else {
            ""
        };
        for e in launch.entries(i) {
            match e.source {
                Source::Addr(addr) => {
                    let _ = writeln!(s, "    {addr} weight {}{source}", e.weight);
                }
                _ => {
                    let _ = writeln!(s, "    {e}{source} (resolved: {})", refresh(c.resolve));
                }
            }
        }
    }
    s
}

/// The table as JSON (`--routes --json`): the same facts as [`describe`], for tools.
pub fn describe_json<T: Table>(launch: &Launch<T>) -> String {
    use serde_json::json;
    let routes: Vec<_> = T::ROUTES
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "matcher": r.matcher,
                "target": r.target,
                "trace": r.trace,
                "has_actions": r.actions.is_some(),
            })
        })
        .collect();
    let clusters: Vec<_> = T::CLUSTERS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let backends: Vec<_> = launch
                .entries(i)
                .iter()
                .map(|e| match &e.source {
                    Source::Addr(addr) => json!({ "addr": addr.to_string(), "weight": e.weight }),
                    Source::Name { host, port } => {
                        json!({ "name": format!("{host}:{port}"), "weight": e.weight })
                    }
                    Source::Srv(name) => json!({ "srv": name }),
                })
                .collect();
            json!({
                "name": c.name,
                "balance": format!("{:?}", c.balance),
                "health": c.health.map(|h| json!({
                    "kind": format!("{:?}", h.kind),
                    "every_ms": h.every.as_millis() as u64,
                    "fall": h.fall,
                    "rise": h.rise,
                })),
                "retries": c.retries,
                "passive": c.passive.map(|p| json!({
                    "failures": p.failures,
                    "cooldown_ms": p.cooldown.as_millis() as u64,
                    "count_5xx": p.count_5xx,
                })),
                "backup": c.backup.and_then(|b| T::CLUSTERS.get(b)).map(|b| b.name),
                "backends_overridden": launch.is_overridden(i),
                "resolve": refresh(c.resolve),
                "backends": backends,
            })
        })
        .collect();
    json!({
        "proxy": T::NAME,
        "ambiguous_paths": format!("{:?}", T::PATHS).to_lowercase(),
        "forwarded_headers": T::FORWARDING.x_forwarded,
        "via": T::FORWARDING.via,
        "trusted_proxies": T::TRUSTED_PROXIES.len(),
        "routes": routes,
        "clusters": clusters,
    })
    .to_string()
}

/// Which rule and target `METHOD URL` gets, with the table's declared backends.
pub fn explain<T: Table>(
    request: &str,
    headers: &[String],
    client: Option<std::net::IpAddr>,
) -> Result<String, Error> {
    explain_in(&Launch::<T>::default(), request, headers, client)
}

/// Which rule and target `METHOD URL` gets: for each rule before the one that matches,
/// the condition that failed; the normalized path and the predicates; and the backend the
/// balancer would pick for it in a proxy started now with `launch`'s backends.
pub fn explain_in<T: Table>(
    launch: &Launch<T>,
    request: &str,
    headers: &[String],
    client: Option<std::net::IpAddr>,
) -> Result<String, Error> {
    explanation(launch, request, headers, client).map(|(text, _)| text)
}

/// [`explain_in`]'s text, and whether a rule matched.
pub(crate) fn explanation<T: Table>(
    launch: &Launch<T>,
    request: &str,
    headers: &[String],
    client: Option<std::net::IpAddr>,
) -> Result<(String, bool), Error> {
    let bad = |why: &str| Error::BadArgument(format!("--explain `{request}`: {why}"));
    let (method, url) = request
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("expected `METHOD URL`"))?;
    let uri: http::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = pingora_http::RequestHeader::build(method, path.as_bytes(), None)
        .map_err(|_| bad("bad method or path"))?;
    if let Some(host) = uri.authority() {
        req.insert_header("host", host.as_str())
            .map_err(|_| bad("bad host"))?;
    }
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| bad("a --header is not `name: value`"))?;
        req.append_header(name.trim().to_ascii_lowercase(), value.trim())
            .map_err(|_| bad("bad header"))?;
    }
    // The URL's scheme and port say which listener the request is taken to arrive on:
    // `https://h/` is TLS on 443, `http://h:8080/` plain on 8080.
    let tls = uri.scheme_str() == Some("https");
    let arrival = crate::request::Arrival {
        tls,
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
    };
    let decision = T::decide_at(&req, client, arrival).map_err(|e| bad(e.reason()))?;
    let route = decision.route.map_or("(none)", Id::name);
    let target = match decision.target {
        Target::Cluster(c) => format!("cluster `{}`", c.name()),
        Target::Split(i) => {
            let Some(split) = T::SPLITS.get(usize::from(i)) else {
                return Err(bad("unknown split"));
            };
            let arms: Vec<String> = split
                .arms
                .iter()
                .map(|(c, w)| {
                    let name = T::CLUSTERS.get(*c).map_or("?", |spec| spec.name);
                    format!("{name}: {w}")
                })
                .collect();
            format!("split {{ {} }}", arms.join(", "))
        }
        Target::Respond(_) => match decision.response() {
            Some(r) => format!("respond({}, {:?})", r.status, r.body),
            None => "respond(?)".to_owned(),
        },
        Target::Redirect(_) => match decision.redirect() {
            Some(r) => {
                let host =
                    RequestView::arrived(&req, client, arrival, T::PATHS, |v| v.host.to_vec())
                        .unwrap_or_default();
                let location = crate::actions::render_location(r.location, &req, &host);
                format!(
                    "redirect({}) to {}",
                    r.status,
                    String::from_utf8_lossy(&location)
                )
            }
            None => "redirect(?)".to_owned(),
        },
        Target::NoRoute => "404 (no rule matches)".to_owned(),
    };
    let (normalized, skipped, backend) =
        RequestView::arrived(&req, client, arrival, T::PATHS, |v| {
            let skipped: Vec<String> = T::ROUTES
                .iter()
                .take_while(|r| Some(r.name) != decision.route.map(Id::name))
                .map(|r| {
                    let why = why_not(r.check, v, T::PREDICATES).unwrap_or_else(|| "?".to_owned());
                    format!("  {}: {why}\n", r.name)
                })
                .collect();
            let cluster = match decision.target {
                Target::Cluster(c) => Some(c.index()),
                // An unkeyed split's first request goes to its first arm.
                Target::Split(i) => T::SPLITS.get(usize::from(i)).map(|s| {
                    crate::proxy::pick_arm(s, crate::proxy::keyed_point(s, v).unwrap_or(0))
                }),
                _ => None,
            };
            let backend = cluster.map(|i| pick_now(launch, i, v));
            (
                String::from_utf8_lossy(v.path).into_owned(),
                skipped,
                backend,
            )
        })
        .unwrap_or_default();
    let mut out = String::new();
    if !skipped.is_empty() {
        out.push_str("rules before it that did not match:\n");
        for line in skipped {
            out.push_str(&line);
        }
    }
    out.push_str(&format!(
        "route: {route}\ntarget: {target}\nnormalized path: {normalized}\npredicates: {:?}",
        decision.predicates
    ));
    if let Some(backend) = backend {
        out.push_str(&format!("\nbackend now: {backend}"));
    }
    Ok((out, decision.route.is_some()))
}

/// The backend a proxy started now would pick in cluster `index` for this request (the
/// first pick of its balancer; no health check has run yet).
fn pick_now<T: Table>(launch: &Launch<T>, index: usize, view: &RequestView<'_>) -> String {
    let Some(spec) = T::CLUSTERS.get(index) else {
        return "-".to_owned();
    };
    let entries = launch.entries(index);
    if entries.iter().any(Entry::is_name) {
        // `--explain` asks no DNS server: the pick depends on what the names resolve to.
        return format!(
            "one of the addresses cluster `{}` resolves ({})",
            spec.name,
            entries
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let members = crate::discovery::literal_members(&entries);
    match crate::cluster::LiveCluster::build(T::NAME, spec, members, false) {
        Ok((cluster, _)) => {
            let mut ip = [0u8; 16];
            let key = spec
                .balance
                .key()
                .and_then(|k| view.key(k, &mut ip))
                .unwrap_or(b"");
            match cluster.select(key, |_| false, true, |addr, _| addr) {
                Some(addr) => format!("{addr} (cluster `{}`)", spec.name),
                None => format!("none healthy in cluster `{}`", spec.name),
            }
        }
        Err(e) => format!("cluster `{}` cannot be built: {e}", spec.name),
    }
}

/// Why `check` does not hold for the request, or `None` when it does.
pub fn why_not(check: &Check, v: &RequestView<'_>, preds: &[PredicateSpec]) -> Option<String> {
    why_not_at(check, v, preds, 0)
}

fn why_not_at(
    check: &Check,
    v: &RequestView<'_>,
    preds: &[PredicateSpec],
    depth: usize,
) -> Option<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match *check {
        Check::Any => None,
        Check::Pred(i) => {
            let p = preds.get(i)?;
            if depth > preds.len() {
                return None;
            }
            why_not_at(p.check, v, preds, depth + 1)
                .map(|why| format!("predicate `{}` is false ({why})", p.name))
        }
        Check::Not(inner) => why_not_at(inner, v, preds, depth)
            .is_none()
            .then(|| format!("`!{}` fails: it holds", check_text(inner, preds))),
        Check::And(a, b) => {
            why_not_at(a, v, preds, depth).or_else(|| why_not_at(b, v, preds, depth))
        }
        Check::Or(a, b) => {
            let wa = why_not_at(a, v, preds, depth)?;
            let wb = why_not_at(b, v, preds, depth)?;
            Some(format!("{wa}; and {wb}"))
        }
        Check::Host(h) => {
            (v.host != h.as_bytes()).then(|| format!("host is `{}`, not `{h}`", text(v.host)))
        }
        Check::HostSuffix(s) => (!crate::request::host_wildcard(v.host, s.as_bytes()))
            .then(|| format!("host `{}` is not under `*{s}`", text(v.host))),
        Check::Path(p) => {
            (v.path != p.as_bytes()).then(|| format!("path `{}` is not `{p}`", text(v.path)))
        }
        Check::PathPrefix(p) => (!crate::request::path_prefix_segment(v.path, p.as_bytes()))
            .then(|| format!("path `{}` is not under `{p}`", text(v.path))),
        Check::PathRegex(re) => {
            let hit = regex::bytes::Regex::new(re).is_ok_and(|r| r.is_match(v.path));
            (!hit).then(|| format!("path `{}` does not match `{re}`", text(v.path)))
        }
        Check::Method(ms) => (!ms.contains(&v.req.method.as_str()))
            .then(|| format!("method is {}, not {}", v.req.method, ms.join(" | "))),
        Check::ClientIp(c) => (!v.client.is_some_and(|ip| c.contains(ip))).then(|| {
            let client = v.client.map_or("unknown".to_owned(), |ip| ip.to_string());
            format!("client {client} is not in {}", cidr_text(&c))
        }),
        Check::Tls => (!v.arrival.tls).then(|| "the request did not come in over TLS".to_owned()),
        Check::Port(p) => {
            (v.arrival.port != p).then(|| format!("listener port is {}, not {p}", v.arrival.port))
        }
        Check::Field(field, name, test) => {
            let values = field_values(field, name, v);
            let what = field_name(field);
            if values.is_empty() {
                return Some(format!("{what} `{name}` is absent"));
            }
            let decoded = field == Field::Query;
            let pass = |x: &[u8]| match test {
                FieldTest::Present => true,
                FieldTest::Eq(w) if decoded => crate::request::decoded_eq(x, w.as_bytes(), true),
                FieldTest::Contains(w) if decoded => {
                    crate::request::decoded_contains(x, w.as_bytes(), true)
                }
                FieldTest::StartsWith(w) if decoded => {
                    crate::request::decoded_starts_with(x, w.as_bytes(), true)
                }
                FieldTest::Eq(w) => x == w.as_bytes(),
                FieldTest::Contains(w) => crate::request::contains(x, w.as_bytes()),
                FieldTest::StartsWith(w) => x.starts_with(w.as_bytes()),
            };
            if values.iter().any(|x| pass(x)) {
                return None;
            }
            let seen: Vec<String> = values.iter().map(|x| format!("`{}`", text(x))).collect();
            let (verb, w) = match test {
                FieldTest::Present => ("is", ""),
                FieldTest::Eq(w) => ("is not", w),
                FieldTest::Contains(w) => ("does not contain", w),
                FieldTest::StartsWith(w) => ("does not start with", w),
            };
            Some(format!(
                "{what} `{name}` is {}, which {verb} `{w}`",
                seen.join(", ")
            ))
        }
        Check::NotEqual(field, name, w) => {
            let values = field_values(field, name, v);
            let decoded = field == Field::Query;
            let equal = values.iter().any(|x| {
                if decoded {
                    crate::request::decoded_eq(x, w.as_bytes(), true)
                } else {
                    x == &w.as_bytes()
                }
            });
            equal.then(|| format!("{} `{name}` is `{w}`", field_name(field)))
        }
    }
}

/// The values a field test reads: every line of a header, else the one value.
fn field_values<'a>(field: Field, name: &str, v: &RequestView<'a>) -> Vec<&'a [u8]> {
    match field {
        Field::Header => v.header_values(name).collect(),
        Field::Query => v.query(name).into_iter().collect(),
        Field::Cookie => crate::request::cookie_in(&v.cookie_lines(), name)
            .into_iter()
            .collect(),
    }
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::Header => "header",
        Field::Query => "query parameter",
        Field::Cookie => "cookie",
    }
}

fn cidr_text(c: &Cidr) -> String {
    let ip: std::net::IpAddr = if c.v6 {
        std::net::Ipv6Addr::from(c.net).into()
    } else {
        std::net::Ipv4Addr::from(c.net as u32).into()
    };
    format!("{ip}/{}", c.prefix)
}

/// A check as the table writes it.
fn check_text(check: &Check, preds: &[PredicateSpec]) -> String {
    match *check {
        Check::Any => "_".to_owned(),
        Check::Pred(i) => preds.get(i).map_or("?", |p| p.name).to_owned(),
        Check::Not(x) => format!("!{}", check_text(x, preds)),
        Check::And(a, b) => format!("({} && {})", check_text(a, preds), check_text(b, preds)),
        Check::Or(a, b) => format!("({} || {})", check_text(a, preds), check_text(b, preds)),
        Check::Host(h) => format!("host({h:?})"),
        Check::HostSuffix(s) => format!("host(\"*{s}\")"),
        Check::Path(p) => format!("path({p:?})"),
        Check::PathPrefix(p) => format!("path_prefix({p:?})"),
        Check::PathRegex(r) => format!("path_regex({r:?})"),
        Check::Method(ms) => format!("method({})", ms.join(" | ")),
        Check::ClientIp(c) => format!("client_ip({:?})", cidr_text(&c)),
        Check::Tls => "tls".to_owned(),
        Check::Port(p) => format!("port({p})"),
        Check::Field(f, n, t) => {
            let f = match f {
                Field::Header => "header",
                Field::Query => "query",
                Field::Cookie => "cookie",
            };
            match t {
                FieldTest::Present => format!("{f}({n:?})"),
                FieldTest::Eq(w) => format!("{f}({n:?}) == {w:?}"),
                FieldTest::Contains(w) => format!("{f}({n:?}).contains({w:?})"),
                FieldTest::StartsWith(w) => format!("{f}({n:?}).starts_with({w:?})"),
            }
        }
        Check::NotEqual(f, n, w) => {
            let f = match f {
                Field::Header => "header",
                Field::Query => "query",
                Field::Cookie => "cookie",
            };
            format!("{f}({n:?}) != {w:?}")
        }
    }
}

/// When a cluster's names are resolved again, as `--routes` shows it.
fn refresh(r: Refresh) -> String {
    match r {
        Refresh::Ttl => "every ttl".to_owned(),
        Refresh::Every(d) => format!("every {d:?}"),
    }
}
