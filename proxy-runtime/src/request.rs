//! Zero-allocation accessors over a request head.
//!
//! Routing runs on a [`RequestView`]: the request head, its host (lowercase, port and
//! trailing dot stripped) and its normalized path (percent-encoded unreserved bytes decoded,
//! `//` merged, dot-segments removed). Neither allocates: the common case borrows from the
//! request, and a host with capitals or a path that needs normalizing is rewritten into a
//! buffer on the stack of a cold function. The request that is forwarded keeps its original
//! path.

use crate::normalize::{decode_separators_into, hex_value, path_ambiguity, path_is_plain};
use crate::spec::PathPolicy;
use pingora_http::RequestHeader;
use std::net::IpAddr;

// The normal form itself lives in `normalize` (pure byte functions that `proxy-macros`
// tests its compile-time copy against); these names stay reachable here.
pub use crate::normalize::{
    host_wildcard, normalize_path_into, path_is_normal, path_prefix_segment, strip_host, Ambiguity,
    MAX_HOST, MAX_NORMALIZED_PATH,
};

/// Why a request is refused before it is routed or forwarded: a 4xx answer, or 501 for a
/// transfer coding the proxy does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadRequest {
    /// The path needs normalizing but is longer than [`MAX_NORMALIZED_PATH`] (414).
    PathTooLong,
    /// The `Host` header is not valid text, has a port that is not a number of 0–65535, or
    /// is longer than [`MAX_HOST`] (400).
    BadHost,
    /// An HTTP/1.1 request without `Host` (400, RFC 9112 §3.2), or any request without one
    /// that a `redirect` rule needs a `{host}` for.
    MissingHost,
    /// A request target in none of the forms the method allows: not `/…` nor
    /// `http(s)://…`, or `*` with a method other than `OPTIONS` (400, RFC 9112 §3.2).
    BadTarget,
    /// A path a backend may read otherwise than routing does (400; the table's
    /// `ambiguous_paths` policy decides).
    AmbiguousPath(Ambiguity),
    /// `TRACE` where no rule names it (405; Pingora answers `CONNECT` with 405 itself).
    MethodNotAllowed,
    /// An `Expect` other than `100-continue` (417, RFC 9110 §10.1.1).
    UnknownExpectation,
    /// A transfer coding other than one `chunked` (501, RFC 9112 §6.1, as nginx).
    UnsupportedTransferCoding,
    /// A body longer than the rule's `max_body` (413).
    BodyTooLarge,
}

impl BadRequest {
    /// The HTTP status this answers with.
    pub fn status(self) -> u16 {
        match self {
            BadRequest::PathTooLong => 414,
            BadRequest::BadHost
            | BadRequest::MissingHost
            | BadRequest::BadTarget
            | BadRequest::AmbiguousPath(_) => 400,
            BadRequest::MethodNotAllowed => 405,
            BadRequest::UnknownExpectation => 417,
            BadRequest::UnsupportedTransferCoding => 501,
            BadRequest::BodyTooLarge => 413,
        }
    }

    /// A short explanation for the response body and the log.
    pub fn reason(self) -> &'static str {
        match self {
            BadRequest::PathTooLong => "path too long to normalize",
            BadRequest::BadHost => "malformed Host header",
            BadRequest::MissingHost => "request without Host header",
            BadRequest::BadTarget => "malformed request target",
            BadRequest::AmbiguousPath(a) => a.reason(),
            BadRequest::MethodNotAllowed => "method not allowed by any rule",
            BadRequest::UnknownExpectation => "unsupported Expect header",
            BadRequest::UnsupportedTransferCoding => "unsupported Transfer-Encoding",
            BadRequest::BodyTooLarge => "request body larger than this route accepts",
        }
    }
}

/// What routing sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The request head.
    pub req: &'a RequestHeader,
    /// Lowercase host, no port, no trailing dot; empty when the request names none.
    pub host: &'a [u8],
    /// The normalized path (never empty, starts with `/` unless the request target is `*`).
    pub path: &'a [u8],
    /// The client's address, when it is an IP socket.
    pub client: Option<IpAddr>,
    /// The listener the request came in on (`tls`, `port(..)`).
    pub arrival: Arrival,
}

/// The listener a request came in on, as the `tls` and `port(..)` matchers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arrival {
    /// It terminates TLS.
    pub tls: bool,
    /// Its local port; 0 when unknown (a request decided without a listener).
    pub port: u16,
}

impl<'a> RequestView<'a> {
    /// Build the view of `req` and run `f` on it, refusing ambiguous paths (the default
    /// [`PathPolicy`]).
    pub fn with<R>(
        req: &RequestHeader,
        client: Option<IpAddr>,
        f: impl FnOnce(&RequestView<'_>) -> R,
    ) -> Result<R, BadRequest> {
        Self::with_policy(req, client, PathPolicy::Reject, f)
    }

    /// Build the view of `req` with the table's path policy and run `f` on it. Under
    /// [`PathPolicy::Decode`], the view's path is the one to forward when it differs from
    /// the request's.
    pub fn with_policy<R>(
        req: &RequestHeader,
        client: Option<IpAddr>,
        policy: PathPolicy,
        f: impl FnOnce(&RequestView<'_>) -> R,
    ) -> Result<R, BadRequest> {
        Self::arrived(req, client, Arrival::default(), policy, f)
    }

    /// [`with_policy`](Self::with_policy) for a request that came in on listener `arrival`.
    pub fn arrived<R>(
        req: &RequestHeader,
        client: Option<IpAddr>,
        arrival: Arrival,
        policy: PathPolicy,
        f: impl FnOnce(&RequestView<'_>) -> R,
    ) -> Result<R, BadRequest> {
        let (host, upper) = host_of(req)?;
        let raw_path = req.uri.path().as_bytes();
        if upper {
            with_lower_host(host, |host| {
                with_path(req, host, raw_path, client, arrival, policy, f)
            })
        } else {
            with_path(req, host, raw_path, client, arrival, policy, f)
        }
    }

    /// The values of header `name` (lowercase), one per header line.
    #[inline]
    pub fn header_values(&self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.req
            .headers
            .get_all(name)
            .into_iter()
            .map(|v| v.as_bytes())
    }

    /// The header lines named `name`, found with one lookup; iterate with
    /// [`HeaderLines::iter`] as often as needed without looking the name up again.
    #[inline]
    pub fn header_lines(&self, name: &http::HeaderName) -> HeaderLines<'a> {
        HeaderLines::new(self.req.headers.get_all(name))
    }

    /// The raw (still percent-encoded) value of query parameter `name`, first occurrence.
    #[inline]
    pub fn query(&self, name: &str) -> Option<&'a [u8]> {
        query_value(self.req.uri.query()?.as_bytes(), name.as_bytes())
    }

    /// The value of cookie `name`, first occurrence over all `Cookie` headers.
    #[inline]
    pub fn cookie(&self, name: &str) -> Option<&'a [u8]> {
        cookie_in(&self.cookie_lines(), name)
    }

    /// The `Cookie` header lines, for [`cookie_in`].
    #[inline]
    pub fn cookie_lines(&self) -> HeaderLines<'a> {
        HeaderLines::new(self.req.headers.get_all(http::header::COOKIE))
    }

    /// The bytes of a hashing key, or `None` when the request lacks it.
    pub fn key<'b>(&self, key: crate::spec::Key, ip_buf: &'b mut [u8; 16]) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        use crate::spec::Key;
        match key {
            Key::Cookie(name) => self.cookie(name),
            Key::Header(name) => self.header_values(name).next(),
            Key::Query(name) => self.query(name),
            Key::Path => Some(self.path),
            Key::Host => Some(self.host),
            Key::ClientIp => None,
        }
        .or_else(|| match self.client? {
            IpAddr::V4(v4) => {
                ip_buf[..4].copy_from_slice(&v4.octets());
                Some(&ip_buf[..4])
            }
            IpAddr::V6(v6) => {
                *ip_buf = v6.octets();
                Some(&ip_buf[..])
            }
        })
    }
}

fn with_path<R>(
    req: &RequestHeader,
    host: &[u8],
    raw_path: &[u8],
    client: Option<IpAddr>,
    arrival: Arrival,
    policy: PathPolicy,
    f: impl FnOnce(&RequestView<'_>) -> R,
) -> Result<R, BadRequest> {
    let view = |path: &[u8]| -> R {
        f(&RequestView {
            req,
            host,
            path,
            client,
            arrival,
        })
    };
    if path_is_plain(raw_path) {
        return Ok(view(raw_path));
    }
    with_checked_path(raw_path, policy, view)
}

/// The path has an escape, a `\` or `;`, or needs normalizing: check it under the table's
/// policy, then route on its normal form.
#[cold]
#[inline(never)]
fn with_checked_path<R>(
    raw: &[u8],
    policy: PathPolicy,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, BadRequest> {
    let check = |separators_decoded| match path_ambiguity(raw, separators_decoded) {
        Some(a) => Err(BadRequest::AmbiguousPath(a)),
        None => Ok(()),
    };
    match policy {
        PathPolicy::Reject => check(false)?,
        PathPolicy::Forward => {}
        PathPolicy::Decode => {
            check(true)?;
            if raw.len() > MAX_NORMALIZED_PATH {
                return Err(BadRequest::PathTooLong);
            }
            let mut buf = [0u8; MAX_NORMALIZED_PATH];
            let n = decode_separators_into(raw, &mut buf);
            return with_normalized_path(&buf[..n], f);
        }
    }
    if path_is_normal(raw) {
        return Ok(f(raw));
    }
    with_normalized_path(raw, f)
}

#[cold]
#[inline(never)]
fn with_lower_host<R>(host: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; MAX_HOST];
    let out = &mut buf[..host.len()];
    out.copy_from_slice(host);
    out.make_ascii_lowercase();
    f(out)
}

#[inline(never)]
fn with_normalized_path<R>(raw: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, BadRequest> {
    if raw.len() > MAX_NORMALIZED_PATH {
        return Err(BadRequest::PathTooLong);
    }
    let mut buf = [0u8; MAX_NORMALIZED_PATH];
    let len = normalize_path_into(raw, &mut buf);
    Ok(f(&buf[..len]))
}

/// The lines of one header in a request, looked up once. The first value is kept at hand:
/// most headers have one line.
pub struct HeaderLines<'a> {
    all: http::header::GetAll<'a, http::HeaderValue>,
    first: Option<&'a [u8]>,
    more: bool,
}

impl<'a> HeaderLines<'a> {
    fn new(all: http::header::GetAll<'a, http::HeaderValue>) -> Self {
        let mut values = all.iter();
        let first = values.next().map(|v| v.as_bytes());
        let more = values.next().is_some();
        HeaderLines { all, first, more }
    }

    /// The values, one per header line, in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> {
        self.all.iter().map(|v| v.as_bytes())
    }

    /// Some line satisfies `test`.
    #[inline]
    pub fn any(&self, test: impl FnMut(&'a [u8]) -> bool) -> bool {
        if self.more {
            self.iter().any(test)
        } else {
            self.first.is_some_and(test)
        }
    }

    /// The first line for which `f` gives a value.
    #[inline]
    pub fn find_map<R>(&self, f: impl FnMut(&'a [u8]) -> Option<R>) -> Option<R> {
        if self.more {
            self.iter().find_map(f)
        } else {
            self.first.and_then(f)
        }
    }

    /// The request has at least one such line.
    #[inline]
    pub fn present(&self) -> bool {
        self.first.is_some()
    }
}

/// The host a request names (the `Host` header, else the authority of an absolute-form or
/// HTTP/2 request target), port and trailing dot stripped, and whether it has capitals.
/// One pass over the bytes classifies them all.
#[inline]
fn host_of(req: &RequestHeader) -> Result<(&[u8], bool), BadRequest> {
    // Clients send `Host` first or nearly so: a look at the first few header lines finds
    // it without hashing; otherwise the map lookup.
    let first = req
        .headers
        .iter()
        .take(4)
        .find_map(|(name, value)| (name == http::header::HOST).then_some(value));
    let raw = match first.or_else(|| req.headers.get(http::header::HOST)) {
        Some(h) => h.as_bytes(),
        None => req.uri.host().map(str::as_bytes).unwrap_or(b""),
    };
    crate::normalize::host_parts(raw).ok_or(BadRequest::BadHost)
}

/// The raw value of the first `name` parameter of a query string (`a=1&b=2`). Names are
/// compared after percent-decoding; `notbeta=1` is not `beta`. A parameter without `=`
/// has the empty value.
pub fn query_value<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&c| c == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&c| c == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        (!pair.is_empty() && decoded_eq(k, name, true)).then_some(v)
    })
}

/// The value of cookie `name`, first occurrence over the `Cookie` lines of a request.
#[inline]
pub fn cookie_in<'a>(lines: &HeaderLines<'a>, name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    lines.find_map(|h| cookie_value(h, name))
}

/// The value of cookie `name` in one `Cookie` header (`a=1; beta=true`), quotes removed.
/// Pairs are found with `memchr` on `;`; only a pair that starts with the name is looked
/// at further.
pub fn cookie_value<'c>(header: &'c [u8], name: &[u8]) -> Option<&'c [u8]> {
    let mut rest = header;
    loop {
        let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
        let pair = trim_start_ows(&rest[..end]);
        if let Some(after) = pair.strip_prefix(name) {
            if let [b'=', v @ ..] = trim_start_ows(after) {
                let v = trim_ows(v);
                return Some(match v {
                    [b'"', inner @ .., b'"'] => inner,
                    _ => v,
                });
            }
        }
        if end == rest.len() {
            return None;
        }
        rest = &rest[end + 1..];
    }
}

#[inline]
fn trim_start_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let mut s = trim_start_ows(s);
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Bytes of a percent-encoded string, decoded on the fly (`+` is a space in a query).
#[derive(Clone)]
pub struct Decoded<'a> {
    raw: &'a [u8],
    plus_is_space: bool,
}

impl<'a> Decoded<'a> {
    /// Decode `raw`; `plus_is_space` for `application/x-www-form-urlencoded` query strings.
    pub fn new(raw: &'a [u8], plus_is_space: bool) -> Self {
        Decoded { raw, plus_is_space }
    }
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let (&c, rest) = self.raw.split_first()?;
        if c == b'%' && rest.len() >= 2 {
            if let (Some(h), Some(l)) = (hex_value(rest[0]), hex_value(rest[1])) {
                self.raw = &rest[2..];
                return Some(h << 4 | l);
            }
        }
        self.raw = rest;
        Some(if c == b'+' && self.plus_is_space {
            b' '
        } else {
            c
        })
    }
}

/// `raw` has an escape, or a `+` that means a space.
#[inline]
fn needs_decoding(raw: &[u8], plus_is_space: bool) -> bool {
    raw.contains(&b'%') || (plus_is_space && raw.contains(&b'+'))
}

/// `raw`, decoded, equals `expected`.
#[inline]
pub fn decoded_eq(raw: &[u8], expected: &[u8], plus_is_space: bool) -> bool {
    if !needs_decoding(raw, plus_is_space) {
        return raw == expected;
    }
    Decoded::new(raw, plus_is_space).eq(expected.iter().copied())
}

/// `raw`, decoded, starts with `prefix`.
#[inline]
pub fn decoded_starts_with(raw: &[u8], prefix: &[u8], plus_is_space: bool) -> bool {
    let mut d = Decoded::new(raw, plus_is_space);
    prefix.iter().all(|&p| d.next() == Some(p))
}

/// `raw`, decoded, contains `needle`.
pub fn decoded_contains(raw: &[u8], needle: &[u8], plus_is_space: bool) -> bool {
    if !needs_decoding(raw, plus_is_space) {
        return contains(raw, needle);
    }
    let mut d = Decoded::new(raw, plus_is_space);
    loop {
        if decoded_starts_with(d.raw, needle, plus_is_space) {
            return true;
        }
        if d.next().is_none() {
            return false;
        }
    }
}

/// Byte-string search.
#[inline(always)]
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// `ip` lies in `net/prefix`. `net` holds the address bits: a `u32` widened for IPv4.
#[inline]
pub fn ip_in(ip: Option<IpAddr>, v6: bool, net: u128, prefix: u8) -> bool {
    match (ip, v6) {
        (Some(IpAddr::V4(a)), false) => {
            let a = u32::from(a) as u128;
            prefix == 0 || (a >> (32 - prefix)) == (net >> (32 - prefix))
        }
        (Some(IpAddr::V6(a)), true) => {
            let a = u128::from(a);
            prefix == 0 || (a >> (128 - prefix)) == (net >> (128 - prefix))
        }
        // An IPv4-mapped IPv6 client (::ffff:a.b.c.d) matches IPv4 ranges.
        (Some(IpAddr::V6(a)), false) => match a.to_ipv4_mapped() {
            Some(v4) => ip_in(Some(IpAddr::V4(v4)), false, net, prefix),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_by_name() {
        let q = b"notbeta=true&beta=false&x&b%65ta2=1&sp=a+b%21";
        assert_eq!(query_value(q, b"beta"), Some(&b"false"[..]));
        assert_eq!(query_value(q, b"x"), Some(&b""[..]));
        assert_eq!(query_value(q, b"beta2"), Some(&b"1"[..]));
        assert_eq!(query_value(q, b"eta"), None);
        let sp = query_value(q, b"sp").unwrap();
        assert!(decoded_eq(sp, b"a b!", true));
        assert!(decoded_starts_with(sp, b"a b", true));
        assert!(decoded_contains(sp, b" b!", true));
        assert!(!decoded_contains(sp, b"b!!", true));
    }

    #[test]
    fn parses_cookies_by_name() {
        let h = b"a=1; notbeta=true;beta=\"true\" ;  session_id=abc";
        assert_eq!(cookie_value(h, b"beta"), Some(&b"true"[..]));
        assert_eq!(cookie_value(h, b"session_id"), Some(&b"abc"[..]));
        assert_eq!(cookie_value(h, b"eta"), None);
        assert_eq!(cookie_value(b"beta", b"beta"), None);
    }

    #[test]
    fn reads_the_host_wherever_it_is() {
        // (header lines before `Host`, Host value, expected host or error)
        let cases: [(usize, &str, Result<&str, BadRequest>); 8] = [
            (0, "api.example.com", Ok("api.example.com")),
            // `~` is the last printable byte; `!` the first.
            (1, "a~b!.example.com", Ok("a~b!.example.com")),
            (3, "API.Example.com:8080", Ok("api.example.com")),
            // Past the first few lines: found by the map lookup.
            (9, "late.example.com.", Ok("late.example.com")),
            (0, "[::1]:8080", Ok("[::1]")),
            (0, "a b.example.com", Err(BadRequest::BadHost)),
            (5, "caf\u{e9}.example.com", Err(BadRequest::BadHost)),
            (0, "", Ok("")),
        ];
        for (before, host, want) in cases {
            let mut req = RequestHeader::build("GET", b"/x", None).unwrap();
            for i in 0..before {
                req.append_header(format!("x-h{i}"), "v").unwrap();
            }
            req.append_header("host", host).unwrap();
            let got =
                RequestView::with(&req, None, |v| String::from_utf8(v.host.to_vec()).unwrap());
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                want,
                "{before} lines, then Host: {host}"
            );
        }
    }

    #[test]
    fn matches_cidrs() {
        // Path segments and hosts: `normalize::tests`.
        let net = u32::from(std::net::Ipv4Addr::new(10, 0, 0, 0)) as u128;
        assert!(ip_in(Some("10.1.2.3".parse().unwrap()), false, net, 8));
        assert!(!ip_in(Some("11.1.2.3".parse().unwrap()), false, net, 8));
        assert!(ip_in(
            Some("::ffff:10.1.2.3".parse().unwrap()),
            false,
            net,
            8
        ));
        assert!(!ip_in(None, false, net, 8));
    }
}
