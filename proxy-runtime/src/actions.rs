//! Route actions at run time: what a rule does to a request and its answer beside picking
//! a target (headers, the forwarded path, redirects, rate and body limits), and the
//! forwarding headers. The macro has checked every declaration (`spec::Actions`); this
//! module applies them, each in the phase it belongs to.

use crate::error::Error;
use crate::spec::{Cidr, Forwarding, HeaderAction, LimitSpec, PathRewrite, Piece, RouteSpec};
use http::HeaderValue;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_limits::rate::Rate;
use regex::bytes::Regex;
use std::net::IpAddr;

/// What a rule's actions need beside their static declaration: the compiled rewrite
/// regex and the rate counter. Built once at start-up, one per rule.
#[derive(Default)]
pub(crate) struct RouteState {
    pub(crate) rewrite: Option<Regex>,
    pub(crate) limiter: Option<RateLimiter>,
}

/// A rule's `limit`: counts requests per key and says which are over the rate.
pub struct RateLimiter {
    rate: Rate,
    spec: LimitSpec,
}

impl RateLimiter {
    /// A limiter for `spec`, its window starting now.
    pub fn new(spec: LimitSpec) -> Self {
        RateLimiter {
            rate: Rate::new(spec.per),
            spec,
        }
    }

    /// The declaration it enforces.
    pub fn spec(&self) -> &LimitSpec {
        &self.spec
    }

    /// Count one request of `key`; `true` when it is over the rate. Allocates nothing.
    ///
    /// The estimate is a sliding window: the previous window's count, weighted by how much
    /// of it the sliding window still covers, plus the current one's (Cloudflare's
    /// estimator, `pingora-limits`).
    pub fn over(&self, key: &[u8]) -> bool {
        let current = self.rate.observe(&key, 1);
        if current > self.spec.requests as isize {
            return true;
        }
        let estimate = self.rate.rate_with(&key, |c| {
            c.prev_samples as f64 * (1.0 - c.current_interval_fraction) + c.curr_samples as f64
        });
        estimate > f64::from(self.spec.requests)
    }
}

/// The state of every rule of a table, indexed like `Table::ROUTES`.
pub(crate) fn route_states(routes: &[RouteSpec]) -> Result<Box<[RouteState]>, Error> {
    routes
        .iter()
        .map(|r| {
            let Some(actions) = r.actions else {
                return Ok(RouteState::default());
            };
            let rewrite = match actions.path {
                Some(PathRewrite::Regex { pattern, .. }) => {
                    Some(Regex::new(pattern).map_err(|e| Error::Startup {
                        what: format!("route `{}`: rewrite regex: {e}", r.name),
                    })?)
                }
                _ => None,
            };
            Ok(RouteState {
                rewrite,
                limiter: actions.limit.map(RateLimiter::new),
            })
        })
        .collect()
}

/// The headers of a request or of an answer, edited the same way.
pub(crate) trait HeaderEdit {
    fn set(&mut self, name: &'static str, value: &'static str) -> pingora_core::Result<()>;
    fn append(&mut self, name: &'static str, value: &'static str) -> pingora_core::Result<()>;
    fn remove(&mut self, name: &'static str);
}

macro_rules! header_edit {
    ($ty:ty) => {
        impl HeaderEdit for $ty {
            fn set(&mut self, name: &'static str, value: &'static str) -> pingora_core::Result<()> {
                self.insert_header(name, value)
            }
            fn append(
                &mut self,
                name: &'static str,
                value: &'static str,
            ) -> pingora_core::Result<()> {
                self.append_header(name, value).map(drop)
            }
            fn remove(&mut self, name: &'static str) {
                self.remove_header(name);
            }
        }
    };
}
header_edit!(RequestHeader);
header_edit!(ResponseHeader);

/// Apply header actions in order.
pub(crate) fn edit_headers(
    head: &mut impl HeaderEdit,
    actions: &[HeaderAction],
) -> pingora_core::Result<()> {
    for action in actions {
        match *action {
            HeaderAction::Set(n, v) => head.set(n, v)?,
            HeaderAction::Append(n, v) => head.append(n, v)?,
            HeaderAction::Remove(n) => head.remove(n),
        }
    }
    Ok(())
}

/// The path to forward: `path` (the normalized path routing used) rewritten. `None` when
/// the rewrite leaves it as it is (a regex that does not match).
pub(crate) fn rewrite_path(
    path: &[u8],
    rewrite: &PathRewrite,
    regex: Option<&Regex>,
) -> Option<Vec<u8>> {
    match *rewrite {
        PathRewrite::Prefix { strip, add } => {
            // The macro proved the rule's matcher only lets through paths under `strip`;
            // a path that is not (impossible) is forwarded with `add` only.
            let rest = path.strip_prefix(strip.as_bytes()).unwrap_or(path);
            let mut out = Vec::with_capacity(add.len() + rest.len() + 1);
            out.extend_from_slice(add.as_bytes());
            if rest.is_empty() {
                // `/v1` stripped from `/v1` leaves the root, `/internal` then the prefix
                // itself.
                if out.is_empty() {
                    out.push(b'/');
                }
            } else {
                out.extend_from_slice(rest);
            }
            Some(out)
        }
        PathRewrite::Regex { replacement, .. } => {
            let regex = regex?;
            if !regex.is_match(path) {
                return None;
            }
            let out = regex.replace(path, replacement.as_bytes()).into_owned();
            Some(if out.first() == Some(&b'/') {
                out
            } else {
                // A replacement of an unanchored match may leave text before a `/`; the
                // forwarded path must still be one.
                [b"/".as_slice(), &out].concat()
            })
        }
    }
}

/// The `Location` of a redirect from its template and the request.
pub(crate) fn render_location(pieces: &[Piece], req: &RequestHeader, host: &[u8]) -> Vec<u8> {
    // A path the client sent as `//evil.example/x` must not become a `Location` a browser
    // reads as another host: leading slashes are one.
    let raw = req.uri.path().as_bytes();
    let path = &raw[raw
        .iter()
        .take_while(|&&b| b == b'/')
        .count()
        .saturating_sub(1)..];
    let query = req.uri.query().unwrap_or("").as_bytes();
    let mut out = Vec::with_capacity(64);
    for piece in pieces {
        match *piece {
            Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
            Piece::Host => out.extend_from_slice(host),
            Piece::Path => out.extend_from_slice(path),
            Piece::Query => out.extend_from_slice(query),
            Piece::Uri => {
                out.extend_from_slice(path);
                if req.uri.query().is_some() {
                    out.push(b'?');
                    out.extend_from_slice(query);
                }
            }
        }
    }
    out
}

/// The client address behind trusted proxies: the nearest address in `X-Forwarded-For`
/// (read right to left, across its lines) that is not a trusted proxy. `peer` is the
/// address of the connection; an untrusted peer is the client, whatever it sends. An
/// entry that does not parse stops the walk: the nearest trusted hop read so far is the
/// best known client.
pub fn client_behind(
    peer: Option<IpAddr>,
    req: &RequestHeader,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| Cidr::any_contains(trusted, ip);
    let mut client = peer?;
    if !is_trusted(client) {
        return Some(client);
    }
    for line in req.headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(line) = std::str::from_utf8(line.as_bytes()) else {
            return Some(client);
        };
        for entry in line.rsplit(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Ok(ip) = entry.parse::<IpAddr>() else {
                return Some(client);
            };
            client = ip;
            if !is_trusted(ip) {
                return Some(ip);
            }
        }
    }
    Some(client)
}

/// Add the forwarding headers to a request going upstream. From a trusted peer, its
/// `X-Forwarded-For` is kept and the peer appended, and its `X-Forwarded-Proto`/`-Host`
/// are kept; from any other client they are replaced, so a client cannot make a backend
/// believe another address.
pub(crate) fn add_forwarding(
    req: &mut RequestHeader,
    peer: Option<IpAddr>,
    trusted: bool,
    tls: bool,
    forwarding: &Forwarding,
) -> pingora_core::Result<()> {
    if forwarding.x_forwarded {
        // Built as header values directly (a static one for the scheme, the request's own
        // `Host` value shared, the address formatted on the stack): this runs on every
        // forwarded request by default.
        let xff = if trusted {
            let mut chain = String::new();
            for line in req.headers.get_all("x-forwarded-for") {
                if let Ok(line) = std::str::from_utf8(line.as_bytes()) {
                    if !chain.is_empty() {
                        chain.push_str(", ");
                    }
                    chain.push_str(line.trim());
                }
            }
            if let Some(peer) = peer {
                use std::fmt::Write;
                if !chain.is_empty() {
                    chain.push_str(", ");
                }
                let _ = write!(chain, "{peer}");
            }
            (!chain.is_empty())
                .then(|| HeaderValue::try_from(chain))
                .transpose()
                .map_err(|_| invalid("X-Forwarded-For"))?
        } else {
            peer.map(ip_value)
        };
        match xff {
            Some(value) => req.insert_header("x-forwarded-for", value)?,
            None => {
                req.remove_header("x-forwarded-for");
            }
        }
        if !(trusted && req.headers.contains_key("x-forwarded-proto")) {
            let proto = HeaderValue::from_static(if tls { "https" } else { "http" });
            req.insert_header("x-forwarded-proto", proto)?;
        }
        if !(trusted && req.headers.contains_key("x-forwarded-host")) {
            let host = match req.headers.get(http::header::HOST) {
                Some(h) => Some(h.clone()),
                None => req
                    .uri
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
            };
            match host {
                Some(host) => req.insert_header("x-forwarded-host", host)?,
                None => {
                    req.remove_header("x-forwarded-host");
                }
            }
        }
    }
    if let Some(via) = forwarding.via {
        let version = match req.version {
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2",
            _ => "1.1",
        };
        req.append_header("via", format!("{version} {via}"))?;
    }
    Ok(())
}

/// An IP address as a header value, formatted without a heap buffer of its own.
fn ip_value(ip: IpAddr) -> HeaderValue {
    use std::io::Write;
    let mut buf = [0u8; 48];
    let mut rest = &mut buf[..];
    // An IPv6 address is at most 45 characters.
    let _ = write!(rest, "{ip}");
    let len = 48 - rest.len();
    HeaderValue::from_bytes(&buf[..len]).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn invalid(what: &str) -> Box<pingora_core::Error> {
    pingora_core::Error::explain(
        pingora_core::ErrorType::InvalidHTTPHeader,
        format!("{what}: not a valid header value"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(xff: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/p?q=1", None).unwrap();
        r.insert_header("host", "Example.com:8080").unwrap();
        for line in xff {
            r.append_header("x-forwarded-for", *line).unwrap();
        }
        r
    }

    fn cidr(s: &str) -> Cidr {
        let net: ipnet::IpNet = s.parse().unwrap();
        match net {
            ipnet::IpNet::V4(n) => Cidr {
                v6: false,
                net: u32::from(n.network()).into(),
                prefix: n.prefix_len(),
            },
            ipnet::IpNet::V6(n) => Cidr {
                v6: true,
                net: n.network().into(),
                prefix: n.prefix_len(),
            },
        }
    }

    #[test]
    fn client_is_the_nearest_untrusted_hop() {
        let trusted = [cidr("10.0.0.0/8"), cidr("192.168.0.0/16")];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // (peer, X-Forwarded-For lines, client seen)
        let cases: &[(&str, &[&str], &str)] = &[
            // An untrusted peer is the client, whatever it claims.
            ("203.0.113.9", &["10.1.1.1"], "203.0.113.9"),
            // A trusted peer: the address it appended.
            ("10.0.0.2", &["198.51.100.7"], "198.51.100.7"),
            // Spoofed entries left of the real client are not read.
            ("10.0.0.2", &["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
            // Chains of trusted proxies are walked, across lines.
            (
                "10.0.0.2",
                &["198.51.100.7, 192.168.1.1", "10.9.9.9"],
                "198.51.100.7",
            ),
            // Garbage stops the walk at the nearest trusted hop.
            ("10.0.0.2", &["198.51.100.7, junk, 10.3.3.3"], "10.3.3.3"),
            // Only trusted hops: the farthest one.
            ("10.0.0.2", &["10.3.3.3"], "10.3.3.3"),
            // No header: the peer.
            ("10.0.0.2", &[], "10.0.0.2"),
        ];
        for (peer, xff, want) in cases {
            assert_eq!(
                client_behind(ip(peer), &req(xff), &trusted),
                ip(want),
                "peer {peer}, XFF {xff:?}"
            );
        }
    }

    #[test]
    fn forwarding_headers_are_replaced_unless_the_peer_is_trusted() {
        let peer = Some("127.0.0.1".parse().unwrap());
        let mut r = req(&["6.6.6.6"]);
        r.insert_header("x-forwarded-proto", "https").unwrap();
        add_forwarding(&mut r, peer, false, false, &Forwarding::DEFAULT).unwrap();
        assert_eq!(r.headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(r.headers["x-forwarded-proto"], "http");
        assert_eq!(r.headers["x-forwarded-host"], "Example.com:8080");

        let mut r = req(&["6.6.6.6", "7.7.7.7"]);
        r.insert_header("x-forwarded-proto", "https").unwrap();
        let via = Forwarding {
            x_forwarded: true,
            via: Some("edge"),
        };
        add_forwarding(&mut r, peer, true, false, &via).unwrap();
        assert_eq!(r.headers["x-forwarded-for"], "6.6.6.6, 7.7.7.7, 127.0.0.1");
        assert_eq!(r.headers["x-forwarded-proto"], "https");
        assert_eq!(r.headers["via"], "1.1 edge");
    }

    #[test]
    fn prefixes_are_stripped_and_added() {
        let p = |strip, add, path: &str| {
            let rw = PathRewrite::Prefix { strip, add };
            String::from_utf8(rewrite_path(path.as_bytes(), &rw, None).unwrap()).unwrap()
        };
        assert_eq!(p("/v1", "", "/v1/users"), "/users");
        assert_eq!(p("/v1", "", "/v1"), "/");
        assert_eq!(p("/v1", "/internal", "/v1/users"), "/internal/users");
        assert_eq!(p("/v1", "/internal", "/v1"), "/internal");
        assert_eq!(p("", "/internal", "/users"), "/internal/users");
        assert_eq!(p("", "/internal", "/"), "/internal/");
    }

    #[test]
    fn regex_rewrites_use_groups_and_leave_other_paths() {
        let rw = PathRewrite::Regex {
            pattern: r"^/users/(?<id>[0-9]+)/(.*)$",
            replacement: "/u/${id}/$2",
        };
        let re = Regex::new(r"^/users/(?<id>[0-9]+)/(.*)$").unwrap();
        assert_eq!(
            rewrite_path(b"/users/42/x/y", &rw, Some(&re)).as_deref(),
            Some(b"/u/42/x/y".as_slice())
        );
        assert_eq!(rewrite_path(b"/other", &rw, Some(&re)), None);
    }

    #[test]
    fn locations_follow_their_template() {
        let r = req(&[]);
        let pieces = [Piece::Text("https://"), Piece::Host, Piece::Uri];
        assert_eq!(
            render_location(&pieces, &r, b"example.com"),
            b"https://example.com/p?q=1"
        );
        let pieces = [
            Piece::Text("/new"),
            Piece::Path,
            Piece::Text("#"),
            Piece::Query,
        ];
        assert_eq!(render_location(&pieces, &r, b"x"), b"/new/p#q=1");
        // `//evil.example/` as the path does not become a protocol-relative URL.
        let evil = RequestHeader::build("GET", b"//evil.example/x", None).unwrap();
        assert_eq!(
            render_location(&[Piece::Uri], &evil, b"h"),
            b"/evil.example/x"
        );
    }
}
