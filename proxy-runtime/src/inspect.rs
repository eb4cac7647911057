//! What a compiled table says about itself: `--routes` (the table as text) and
//! `--explain` (which rule and target a request gets).

use crate::error::Error;
use crate::launch::Launch;
use crate::request::RequestView;
use crate::spec::Target;
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
        for m in launch.members(i) {
            let _ = writeln!(s, "    {} weight {}{source}", m.addr, m.weight);
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
                .members(i)
                .iter()
                .map(|m| json!({ "addr": m.addr.to_string(), "weight": m.weight }))
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

/// Which rule and target `METHOD URL` gets.
pub fn explain<T: Table>(
    request: &str,
    headers: &[String],
    client: Option<std::net::IpAddr>,
) -> Result<String, Error> {
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
    let decision = T::decide(&req, client).map_err(|e| bad(e.reason()))?;
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
                let host = RequestView::with_policy(&req, client, T::PATHS, |v| v.host.to_vec())
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
    let normalized = RequestView::with_policy(&req, client, T::PATHS, |v| {
        String::from_utf8_lossy(v.path).into_owned()
    })
    .unwrap_or_default();
    Ok(format!(
        "route: {route}\ntarget: {target}\nnormalized path: {normalized}\npredicates: {:?}",
        decision.predicates
    ))
}
