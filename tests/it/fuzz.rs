//! Fuzzing that runs on stable Rust: `proptest` properties over arbitrary bytes for every
//! public request accessor, `decide` on arbitrary request heads against a linear first-match
//! interpreter, and seeded mutations of raw HTTP/1.1 requests sent to a running proxy.
//!
//! The references in `naive` are written to be obviously right rather than fast: they
//! split, allocate and percent-decode into `Vec`s, so a disagreement points at the runtime's
//! zero-allocation code. The runtime may refuse a request head (a bad `Host`, a path too long
//! to normalize, and whatever else `RequestView::with` learns to refuse): the properties never
//! assume a head is accepted, they compare only what the runtime accepts and check that every
//! refusal is a 4xx.
//!
//! The raw-socket test is reproducible: a xorshift generator seeded from
//! `SWITCHYARD_FUZZ_SEED` (a fixed default) drives the mutations, every failure names the seed
//! and the case, and `SWITCHYARD_FUZZ_CASES` (default 300) sets how many requests are sent.

use crate::support::*;
use pingora_http::RequestHeader;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use proxy_runtime::normalize::host_parts;
use proxy_runtime::request::{
    contains, cookie_value, decoded_contains, decoded_eq, decoded_starts_with, host_wildcard,
    ip_in, normalize_path_into, path_is_normal, path_prefix_segment, query_value, strip_host,
    Decoded, RequestView, MAX_HOST, MAX_NORMALIZED_PATH,
};
use proxy_runtime::spec::Key;
use proxy_runtime::{Id, Table, Target};
use std::net::{IpAddr, Ipv4Addr};

// ---------------------------------------------------------------------------------------
// Inputs: byte strings built from the tokens each parser cares about, mixed with arbitrary
// bytes, so that escapes, separators and dot segments meet often enough to matter while
// NUL, control bytes, bytes >= 0x80 and invalid UTF-8 still show up.
// ---------------------------------------------------------------------------------------

const PATH_TOKENS: &[&[u8]] = &[
    b"/",
    b"/",
    b"/",
    b".",
    b"..",
    b"%",
    b"%2e",
    b"%2E",
    b"%2f",
    b"%2F",
    b"%5c",
    b"%5C",
    b"%25",
    b"%00",
    b"%0a",
    b"%41",
    b"%61",
    b"%7e",
    b"%7E",
    b"%zz",
    b"%2",
    b"%c3%a9",
    b"%ff",
    b";",
    b"\\",
    b"\0",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\xc3\xa9",
    b"?",
    b"#",
    b"&",
    b"=",
    b"+",
    b" ",
    b"a",
    b"B",
    b"v1",
    b"pub",
    b"exact",
    b"users",
    b"12",
    b"w",
    b"in",
    b"ne",
    b"tea",
    b"p1",
    b"p2",
    b"q=",
    b"beta=true",
    b"v=no",
    b"%20",
    b"x",
];

const QUERY_TOKENS: &[&[u8]] = &[
    b"&", b"&", b"=", b"=", b"+", b"%", b"%2", b"%20", b"%2B", b"%2b", b"%26", b"%3D", b"%25",
    b"%62eta", b"beta", b"true", b"q", b"v", b"no", b"a", b"b", b"a+b", b"a%20b", b" ", b"\0",
    b"\x80", b"\xff", b"%zz", b"%%", b"#", b"?",
];

/// Names looked up in generated query strings and cookie lines.
const QUERY_NAMES: &[&[u8]] = &[
    b"beta", b"q", b"v", b"a", b"b eta", b"", b"a+b", b"a b", b"%",
];
const COOKIE_NAMES: &[&[u8]] = &[b"sid", b"beta", b"a", b"", b"x y", b" sid"];

const COOKIE_TOKENS: &[&[u8]] = &[
    b";", b"; ", b";", b" ", b"\t", b"=", b"=", b"\"", b"sid", b"beta", b"1", b"abc", b"x y", b"a",
    b"\0", b"\x80", b",", b"%3B",
];

const HOST_TOKENS: &[&[u8]] = &[
    b"api", b"example", b"org", b"com", b".", b".", b":", b"8080", b"API", b"Example", b"[",
    b"]", b"::1", b"\x80", b" ", b"a", b"*", b"%", b"_", b"\0",
    // Long labels, so some hosts pass MAX_HOST (255).
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

const VALUE_TOKENS: &[&[u8]] = &[
    b"yes", b"Mobile", b"Android", b"a;b", b"%2F", b"sid=abc", b"sid", b"=", b"abc", b";", b" ",
    b"\t", b"beta=1", b"\"", b"x y", b"x", b"\0", b"\x80", b"\x7f", b"\r\n", b",",
];

const METHODS: &[&str] = &[
    "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "PURGE",
    "get", "M-SEARCH", "X",
];

/// Header names the decide table tests, plus `host` (so some heads carry several) and one it
/// does not.
const HEADER_NAMES: &[&str] = &[
    "host",
    "x-eq",
    "x-has",
    "x-present",
    "x-p",
    "user-agent",
    "user-agent",
    "cookie",
    "cookie",
    "x-other",
];

/// Whole values that hit the decide table's literals (token soup alone rarely spells
/// `api.example.com` or `sid=abc`), some of them in a form routing must see through.
const PATH_STEMS: &[&[u8]] = &[
    b"",
    b"v1",
    b"v1/x",
    b"V1",
    b"pub/",
    b"pub",
    b"exact",
    b"exact/",
    b"users/12",
    b"users/",
    b"users/1x",
    b"w",
    b"w/x",
    b"wx",
    b"p1",
    b"p2/y",
    b"in",
    b"ne",
    b"tea",
    b"tea/pot",
    b"x/../v1",
    b"%76%31",
    b"./exact",
    b"users/007",
    b"a//exact",
];
const HOSTS: &[&[u8]] = &[
    b"api.example.com",
    b"API.Example.COM:8080",
    b"api.example.com.",
    b"a.example.org",
    b"b.A.example.org:1",
    b"example.org",
    b"xexample.org",
    b".example.org",
    b"[::1]:80",
    b"localhost",
    b"",
];
const QUERIES: &[&[u8]] = &[
    b"beta=true",
    b"q=a+b",
    b"q=a%20b",
    b"q=%25",
    b"q=b%61",
    b"q=bee&beta=true",
    b"v=no",
    b"v=yes",
    b"%62eta=%74rue",
    b"notbeta=true",
    b"q",
    b"beta=true&v=no",
];
const VALUES: &[&[u8]] = &[
    b"yes",
    b"Mobile Safari",
    b"Android 14",
    b"x%2Fy",
    b"a;b",
    b"sid=abc",
    b"beta=1",
    b"sid=x y z",
    b"a=1; sid=abc",
    b"sid=\"abc\"",
    b"beta=1; sid=abc",
    b"",
    b"YES",
];

/// One of `whole` (as it is, or followed by token soup), or token soup alone.
fn value_from(
    whole: &'static [&'static [u8]],
    tokens: &'static [&'static [u8]],
    max: usize,
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => select(whole).prop_map(|w| w.to_vec()),
        1 => (select(whole), bytes_from(tokens, max / 2 + 1)).prop_map(|(w, t)| [w, &t[..]].concat()),
        1 => bytes_from(tokens, max),
    ]
}

/// A `Cookie` line: `name = value` pairs (whitespace, quotes and soup around them), or soup.
fn cookie_line() -> impl Strategy<Value = Vec<u8>> {
    const OWS: &[&[u8]] = &[b"", b"", b" ", b"\t", b"  "];
    let pair = (
        select(OWS),
        select(COOKIE_NAMES),
        select(OWS),
        select(OWS),
        any::<bool>(),
        bytes_from(COOKIE_TOKENS, 3),
        select(OWS),
    )
        .prop_map(|(a, name, b, c, quoted, value, d)| {
            let q: &[u8] = if quoted { b"\"" } else { b"" };
            [a, name, b, b"=", c, q, &value, q, d].concat()
        });
    prop_oneof![
        proptest::collection::vec(pair, 0..4).prop_map(|pairs| pairs.join(&b';')),
        bytes_from(COOKIE_TOKENS, 16),
    ]
}

/// Byte strings of at most `max` pieces, each a token or an arbitrary byte.
fn bytes_from(tokens: &'static [&'static [u8]], max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => select(tokens).prop_map(|t| t.to_vec()),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
}

/// A client address: none, anywhere, or inside (or mapped into) the table's ranges; also
/// the deprecated IPv4-compatible form (`::10.1.2.3`), which is not a mapped address.
fn client_ip() -> impl Strategy<Value = Option<IpAddr>> {
    prop_oneof![
        Just(None),
        any::<[u8; 4]>().prop_map(|o| Some(IpAddr::from(o))),
        any::<[u8; 3]>().prop_map(|o| Some(IpAddr::from([10, o[0], o[1], o[2]]))),
        any::<[u8; 2]>().prop_map(|o| Some(IpAddr::from([192, 168, o[0], o[1]]))),
        any::<[u16; 8]>().prop_map(|s| Some(IpAddr::from(s))),
        any::<[u16; 2]>().prop_map(|s| Some(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, s[0], s[1]]))),
        any::<[u8; 3]>().prop_map(|o| {
            Some(IpAddr::V6(
                Ipv4Addr::new(10, o[0], o[1], o[2]).to_ipv6_mapped(),
            ))
        }),
        any::<[u8; 3]>().prop_map(|o| {
            Some(IpAddr::V6(
                Ipv4Addr::new(10, o[0], o[1], o[2]).to_ipv6_compatible(),
            ))
        }),
    ]
}

/// A request head from arbitrary parts, or `None` when Pingora refuses them (a method or
/// target `build` rejects, a header value `append_header` rejects): such bytes never reach
/// the runtime.
fn build_head(
    method: &str,
    target: &[u8],
    headers: &[(&'static str, Vec<u8>)],
) -> Option<RequestHeader> {
    let mut req = RequestHeader::build(method, target, None).ok()?;
    for (name, value) in headers {
        req.append_header(*name, value.as_slice()).ok()?;
    }
    Some(req)
}

/// Bytes for a failure message: escaped, and cut short.
fn show(b: &[u8]) -> String {
    let cut = &b[..b.len().min(400)];
    let more = if b.len() > cut.len() { "…" } else { "" };
    format!("\"{}\"{more} ({} bytes)", cut.escape_ascii(), b.len())
}

// ---------------------------------------------------------------------------------------
// References: allocating, one obvious step at a time.
// ---------------------------------------------------------------------------------------

mod naive {
    use std::net::IpAddr;

    fn hex(c: u8) -> Option<u8> {
        char::from(c).to_digit(16).map(|d| d as u8)
    }

    /// The escape `%XY` at the start of `s`, decoded.
    fn escape_at(s: &[u8]) -> Option<u8> {
        match s {
            [b'%', h, l, ..] => Some(hex(*h)? * 16 + hex(*l)?),
            _ => None,
        }
    }

    /// Percent-decode: `%` and two hex digits is one byte; any other byte is itself, `+` a
    /// space when asked.
    pub fn decode(raw: &[u8], plus_is_space: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if let Some(d) = escape_at(&raw[i..]) {
                out.push(d);
                i += 3;
            } else {
                out.push(if plus_is_space && raw[i] == b'+' {
                    b' '
                } else {
                    raw[i]
                });
                i += 1;
            }
        }
        out
    }

    /// Every `%` starts a `%XY` escape.
    pub fn escapes_well_formed(raw: &[u8]) -> bool {
        (0..raw.len()).all(|i| raw[i] != b'%' || escape_at(&raw[i..]).is_some())
    }

    pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
        (0..=hay.len()).any(|i| hay[i..].starts_with(needle))
    }

    /// The raw value of the first parameter whose decoded name is `name`.
    pub fn query_value<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
        for pair in query.split(|&c| c == b'&') {
            if pair.is_empty() {
                continue;
            }
            let mut kv = pair.splitn(2, |&c| c == b'=');
            let key = kv.next().unwrap_or_default();
            let value = kv.next().unwrap_or_default();
            if decode(key, true) == name {
                return Some(value);
            }
        }
        None
    }

    fn is_ows(c: &u8) -> bool {
        *c == b' ' || *c == b'\t'
    }

    fn trim_start(s: &[u8]) -> &[u8] {
        let n = s.iter().take_while(|c| is_ows(c)).count();
        &s[n..]
    }

    fn trim(s: &[u8]) -> &[u8] {
        let s = trim_start(s);
        let n = s.iter().rev().take_while(|c| is_ows(c)).count();
        &s[..s.len() - n]
    }

    /// The value of the first `name=value` pair of a `Cookie` line (whitespace around the
    /// pair and the `=` ignored), double quotes around the value removed.
    pub fn cookie_value<'c>(line: &'c [u8], name: &[u8]) -> Option<&'c [u8]> {
        for pair in line.split(|&c| c == b';') {
            let Some(after) = trim_start(pair).strip_prefix(name) else {
                continue;
            };
            let Some(value) = trim_start(after).strip_prefix(b"=") else {
                continue;
            };
            let value = trim(value);
            let quoted = value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"';
            return Some(if quoted {
                &value[1..value.len() - 1]
            } else {
                value
            });
        }
        None
    }

    /// RFC 3986 §5.2.4 over whole segments: unreserved escapes decoded (other escapes kept,
    /// in uppercase), empty segments merged, `.` dropped, `..` pops (never above the root);
    /// a path that ends in a separator or a dot segment keeps a trailing slash.
    pub fn normalize(raw: &[u8]) -> Vec<u8> {
        if raw.first() != Some(&b'/') {
            return raw.to_vec();
        }
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            match escape_at(&raw[i..]) {
                Some(d) if d.is_ascii_alphanumeric() || b"-._~".contains(&d) => decoded.push(d),
                Some(_) => decoded.extend(raw[i..i + 3].to_ascii_uppercase()),
                None => {
                    decoded.push(raw[i]);
                    i += 1;
                    continue;
                }
            }
            i += 3;
        }
        let segments: Vec<&[u8]> = decoded[1..].split(|&c| c == b'/').collect();
        let mut kept: Vec<&[u8]> = Vec::new();
        let mut trailing = false;
        for (k, seg) in segments.iter().enumerate() {
            let last = k + 1 == segments.len();
            match *seg {
                b"" | b"." => trailing = last,
                b".." => {
                    kept.pop();
                    trailing = last;
                }
                s => {
                    kept.push(s);
                    trailing = false;
                }
            }
        }
        let mut out = Vec::new();
        for s in &kept {
            out.push(b'/');
            out.extend_from_slice(s);
        }
        if kept.is_empty() || trailing {
            out.push(b'/');
        }
        out
    }

    /// Segment-aware prefix: the path is the prefix or continues it with `/`; a prefix that
    /// ends with `/` is a plain prefix.
    pub fn under(path: &[u8], prefix: &[u8]) -> bool {
        if prefix.ends_with(b"/") {
            return path.starts_with(prefix);
        }
        let mut with_slash = prefix.to_vec();
        with_slash.push(b'/');
        path == prefix || path.starts_with(&with_slash)
    }

    /// The first `bits` bits of two addresses of one family agree.
    fn same_bits(a: &[u8], b: &[u8], bits: u8) -> bool {
        let to_bits = |x: &[u8]| -> String { x.iter().map(|o| format!("{o:08b}")).collect() };
        to_bits(a)[..usize::from(bits)] == to_bits(b)[..usize::from(bits)]
    }

    /// `client` lies in `net/bits`; against an IPv4 network, an IPv4-mapped IPv6 client
    /// counts as its IPv4 address.
    pub fn in_net(client: Option<IpAddr>, net: IpAddr, bits: u8) -> bool {
        match (client, net) {
            (Some(IpAddr::V4(c)), IpAddr::V4(n)) => same_bits(&c.octets(), &n.octets(), bits),
            (Some(IpAddr::V6(c)), IpAddr::V6(n)) => same_bits(&c.octets(), &n.octets(), bits),
            (Some(IpAddr::V6(c)), IpAddr::V4(n)) => c
                .to_ipv4_mapped()
                .is_some_and(|c| same_bits(&c.octets(), &n.octets(), bits)),
            _ => false,
        }
    }

    /// The host routing must see for this `Host` value (or request-target authority):
    /// lowercase, without port and one trailing dot; `None` when it must be refused (a byte
    /// outside printable ASCII, or longer than `MAX_HOST`). `Some(None)` when the value is a
    /// bracketed name followed by something that is not a port (`[a]b`), whose reading the
    /// runtime leaves open.
    pub fn host(raw: &[u8], max: usize) -> Option<Option<Vec<u8>>> {
        if raw.iter().any(|&c| !(0x21..=0x7e).contains(&c)) {
            return None;
        }
        let host: &[u8] = if raw.first() == Some(&b'[') {
            match raw.iter().position(|&c| c == b']') {
                Some(end) => {
                    let after = &raw[end + 1..];
                    if !(after.is_empty() || after.starts_with(b":") || after == b".") {
                        return Some(None);
                    }
                    &raw[..=end]
                }
                None => raw,
            }
        } else {
            match raw.iter().rposition(|&c| c == b':') {
                Some(colon) => &raw[..colon],
                None => raw,
            }
        };
        let host = host.strip_suffix(b".").unwrap_or(host);
        (host.len() <= max).then(|| Some(host.to_ascii_lowercase()))
    }
}

// ---------------------------------------------------------------------------------------
// 1. Every public accessor, on arbitrary bytes.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoding_agrees_with_a_reference(
        raw in bytes_from(QUERY_TOKENS, 12),
        plus in any::<bool>(),
        from in any::<prop::sample::Index>(),
        len in 0usize..6,
        flip in proptest::option::of((any::<prop::sample::Index>(), 1u8..=255)),
    ) {
        let decoded = naive::decode(&raw, plus);
        let got: Vec<u8> = Decoded::new(&raw, plus).collect();
        prop_assert_eq!(&got, &decoded, "Decoded of {}", show(&raw));
        // A needle taken from the decoded bytes (so the tests are often true), sometimes
        // with one byte changed (so they are often false).
        let start = if decoded.is_empty() { 0 } else { from.index(decoded.len() + 1) };
        let mut needle = decoded[start..(start + len).min(decoded.len())].to_vec();
        if let (Some((at, x)), false) = (flip, needle.is_empty()) {
            let at = at.index(needle.len());
            needle[at] ^= x;
        }
        let prefix = &decoded[..(len * 2).min(decoded.len())];
        prop_assert!(decoded_eq(&raw, &decoded, plus), "decoded_eq of {}", show(&raw));
        prop_assert_eq!(decoded_eq(&raw, &needle, plus), decoded == needle,
            "decoded_eq({}, {})", show(&raw), show(&needle));
        prop_assert_eq!(decoded_starts_with(&raw, &needle, plus), decoded.starts_with(&needle),
            "decoded_starts_with({}, {})", show(&raw), show(&needle));
        prop_assert!(decoded_starts_with(&raw, prefix, plus),
            "decoded_starts_with({}, {})", show(&raw), show(prefix));
        prop_assert_eq!(decoded_contains(&raw, &needle, plus), naive::contains(&decoded, &needle),
            "decoded_contains({}, {}, {})", show(&raw), show(&needle), plus);
        prop_assert_eq!(contains(&raw, &needle), naive::contains(&raw, &needle),
            "contains({}, {})", show(&raw), show(&needle));
    }

    #[test]
    fn query_values_agree_with_a_reference(
        query in value_from(QUERIES, QUERY_TOKENS, 16),
        name in prop_oneof![
            select(QUERY_NAMES).prop_map(|n| n.to_vec()),
            bytes_from(QUERY_TOKENS, 3),
        ],
    ) {
        prop_assert_eq!(query_value(&query, &name), naive::query_value(&query, &name),
            "query_value({}, {})", show(&query), show(&name));
    }

    #[test]
    fn cookie_values_agree_with_a_reference(
        line in cookie_line(),
        name in prop_oneof![
            select(COOKIE_NAMES).prop_map(|n| n.to_vec()),
            bytes_from(COOKIE_TOKENS, 3),
        ],
    ) {
        prop_assert_eq!(cookie_value(&line, &name), naive::cookie_value(&line, &name),
            "cookie_value({}, {})", show(&line), show(&name));
    }

    #[test]
    fn normalization_agrees_with_a_reference_and_is_a_normal_form(
        slash in proptest::bool::weighted(0.9),
        rest in bytes_from(PATH_TOKENS, 24),
    ) {
        let raw = if slash { [&b"/"[..], &rest].concat() } else { rest };
        // Exactly as long as the input: the documented bound on the output buffer.
        let mut buf = vec![0u8; raw.len()];
        let n = normalize_path_into(&raw, &mut buf);
        let out = &buf[..n];
        prop_assert_eq!(out, &naive::normalize(&raw)[..], "normalizing {}", show(&raw));

        // The fast path may skip normalizing only a path that normalizing leaves alone, and
        // must skip every such path without escapes (escapes always take the slow path).
        let escaped = raw.first() == Some(&b'/') && raw.contains(&b'%');
        prop_assert_eq!(path_is_normal(&raw), out == &raw[..] && !escaped,
            "path_is_normal({}); normalized {}", show(&raw), show(out));

        if raw.first() == Some(&b'/') {
            prop_assert!(out.starts_with(b"/"), "{} gave {}", show(&raw), show(out));
            prop_assert!(!naive::contains(out, b"//"), "{} gave {}", show(&raw), show(out));
            let dots = out[1..].split(|&c| c == b'/').any(|s| s == b"." || s == b"..");
            prop_assert!(!dots, "{} gave a dot segment: {}", show(&raw), show(out));
            if !out.contains(&b'%') {
                prop_assert!(path_is_normal(out), "{} gave {}", show(&raw), show(out));
            }
        }
        // Normalizing twice changes nothing, when every `%` is an escape. (With a stray `%`
        // it can: `/%%36%31` becomes `/%61`, which becomes `/a`. Those paths are ambiguous
        // and for `RequestView::with` to refuse.)
        if naive::escapes_well_formed(&raw) {
            let mut again = vec![0u8; out.len()];
            let m = normalize_path_into(out, &mut again);
            prop_assert_eq!(&again[..m], out, "normalizing {} twice", show(&raw));
        }
    }

    #[test]
    fn segment_prefixes_and_host_wildcards_agree_with_references(
        path in bytes_from(PATH_TOKENS, 8),
        prefix in bytes_from(PATH_TOKENS, 3),
        host in bytes_from(HOST_TOKENS, 6),
        suffix in bytes_from(HOST_TOKENS, 3),
    ) {
        prop_assert_eq!(path_prefix_segment(&path, &prefix), naive::under(&path, &prefix),
            "path_prefix_segment({}, {})", show(&path), show(&prefix));
        let dot_suffix = [&b"."[..], &suffix].concat();
        let want = host.len() > dot_suffix.len() && host.ends_with(&dot_suffix);
        prop_assert_eq!(host_wildcard(&host, &dot_suffix), want,
            "host_wildcard({}, {})", show(&host), show(&dot_suffix));
        // A host is under its own wildcard once it has a label in front.
        let sub = [&b"x"[..], &dot_suffix].concat();
        prop_assert!(host_wildcard(&sub, &dot_suffix));
    }

    #[test]
    fn hosts_are_stripped_and_classified(
        raw in bytes_from(HOST_TOKENS, 8),
        name in bytes_from(HOST_TOKENS, 4),
        dot in any::<bool>(),
        port in proptest::option::of(any::<u16>()),
        v6 in any::<[u16; 8]>(),
    ) {
        // Arbitrary bytes: a prefix comes back, never a panic.
        let stripped = strip_host(&raw);
        prop_assert!(raw.starts_with(stripped), "strip_host({})", show(&raw));

        // NAME[.][:PORT] gives NAME (and `[v6]:PORT` gives `[v6]`).
        let plain = !name.contains(&b':') && name.first() != Some(&b'[');
        let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
        if plain {
            let with_dot = [&name[..], if dot { &b"."[..] } else { &b""[..] }].concat();
            let want = with_dot.strip_suffix(b".").unwrap_or(&with_dot);
            let full = [&with_dot[..], port_text.as_bytes()].concat();
            prop_assert_eq!(strip_host(&full), want, "strip_host({})", show(&full));
        }
        let literal = format!("[{}]", std::net::Ipv6Addr::from(v6));
        let full = format!("{literal}{port_text}");
        prop_assert_eq!(strip_host(full.as_bytes()), literal.as_bytes());

        // host_parts: a byte outside printable ASCII or an overlong name is refused, and a
        // plain name (no port) never is; what it accepts is the name routing compares, with
        // `true` whenever it has capitals. (What follows a `:` may be refused for more
        // reasons than these: the property does not say which.)
        let printable = raw.iter().all(|&c| (0x21..=0x7e).contains(&c));
        match host_parts(&raw) {
            None => prop_assert!(!printable || raw.len() > MAX_HOST || raw.contains(&b':'),
                "host_parts refused {}", show(&raw)),
            Some((host, upper)) => {
                prop_assert!(printable, "host_parts accepted {}", show(&raw));
                prop_assert!(host.len() <= MAX_HOST);
                prop_assert!(raw.starts_with(host));
                if raw.contains(&b':') || raw.ends_with(b".") {
                    prop_assert_eq!(host, strip_host(&raw), "host_parts({})", show(&raw));
                } else {
                    prop_assert_eq!(host, &raw[..]);
                }
                prop_assert!(upper || !host.iter().any(u8::is_ascii_uppercase),
                    "host_parts({}) says no capitals", show(&raw));
            }
        }
    }

    #[test]
    fn ip_ranges_agree_with_a_bitwise_reference(
        client in client_ip(),
        v6 in any::<bool>(),
        prefix in any::<prop::sample::Index>(),
        noise in any::<u128>(),
        near in any::<bool>(),
    ) {
        let width: u32 = if v6 { 128 } else { 32 };
        let prefix = prefix.index(width as usize + 1) as u8;
        // `near`: a network built from the client's own address, host bits scrambled, so
        // matches are common; otherwise random bits.
        let own = match client {
            Some(IpAddr::V4(a)) if !v6 => Some(u128::from(u32::from(a))),
            Some(IpAddr::V6(a)) if !v6 => a.to_ipv4_mapped().map(|a| u128::from(u32::from(a))),
            Some(IpAddr::V6(a)) if v6 => Some(u128::from(a)),
            _ => None,
        };
        let host_bits = |bits: u32| if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 };
        let low = host_bits(width - u32::from(prefix));
        let net = match (own, near) {
            (Some(own), true) => own ^ (noise & low),
            _ => noise & host_bits(width),
        };
        let net_ip = if v6 {
            IpAddr::from(net.to_be_bytes())
        } else {
            IpAddr::from(Ipv4Addr::from(net as u32))
        };
        prop_assert_eq!(ip_in(client, v6, net, prefix), naive::in_net(client, net_ip, prefix),
            "{:?} in {}/{}", client, net_ip, prefix);
    }

    #[test]
    fn request_views_and_keys_agree_with_the_raw_head(
        path in value_from(PATH_STEMS, PATH_TOKENS, 16),
        long in proptest::option::of(4000usize..4200),
        query in proptest::option::of(value_from(QUERIES, QUERY_TOKENS, 10)),
        host in proptest::option::of(value_from(HOSTS, HOST_TOKENS, 6)),
        cookies in proptest::collection::vec(value_from(VALUES, COOKIE_TOKENS, 8), 0..3),
        keys in proptest::collection::vec(value_from(VALUES, VALUE_TOKENS, 3), 0..3),
        client in client_ip(),
    ) {
        // Some paths are long enough that normalizing them is refused (414).
        let mut target = [&b"/"[..], &path].concat();
        if let Some(n) = long {
            target.extend(std::iter::repeat_n(b'x', n));
            target.extend_from_slice(b"/..");
        }
        if let Some(q) = &query {
            target.push(b'?');
            target.extend_from_slice(q);
        }
        let mut headers: Vec<(&'static str, Vec<u8>)> = Vec::new();
        headers.extend(host.map(|h| ("host", h)));
        headers.extend(cookies.into_iter().map(|c| ("cookie", c)));
        headers.extend(keys.into_iter().map(|k| ("x-key", k)));
        let head = build_head("GET", &target, &headers);
        prop_assume!(head.is_some(), "Pingora refuses these bytes");
        let Some(req) = head else { unreachable!("assumed above") };

        let raw_path = req.uri.path().as_bytes();
        let raw_query = req.uri.query().map(str::as_bytes);
        let lines = |name: &str| -> Vec<&[u8]> {
            req.headers.get_all(name).iter().map(|v| v.as_bytes()).collect()
        };
        let raw_host = req.headers.get("host").map_or(b"".as_slice(), |v| v.as_bytes());
        let want_host = naive::host(raw_host, MAX_HOST);
        let cookie_of = |name: &[u8]| lines("cookie").into_iter().find_map(|l| naive::cookie_value(l, name));
        let ip_bytes: Option<Vec<u8>> = client.map(|c| match c {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        });

        let seen = RequestView::with(&req, client, |v| {
            let mut ip_buf = [0u8; 16];
            let key = |k: Key, buf: &mut [u8; 16]| v.key(k, buf).map(<[u8]>::to_vec);
            (
                v.host.to_vec(),
                v.path.to_vec(),
                v.client,
                v.query("q").map(<[u8]>::to_vec),
                v.cookie("sid").map(<[u8]>::to_vec),
                v.header_values("x-key").map(<[u8]>::to_vec).collect::<Vec<_>>(),
                [
                    key(Key::Cookie("sid"), &mut ip_buf),
                    key(Key::Header("x-key"), &mut ip_buf),
                    key(Key::Query("q"), &mut ip_buf),
                    key(Key::Path, &mut ip_buf),
                    key(Key::Host, &mut ip_buf),
                    key(Key::ClientIp, &mut ip_buf),
                ],
            )
        });
        let (host, path, seen_client, q, sid, x_keys, key_values) = match seen {
            Ok(seen) => seen,
            Err(bad) => {
                prop_assert!((400..500).contains(&bad.status()), "{:?} is not a 4xx", bad);
                prop_assert!(!bad.reason().is_empty());
                return Ok(());
            }
        };
        // Accepted: everything routing sees is what the raw head says.
        let Some(want_host) = want_host else {
            return Err(TestCaseError::fail(format!(
                "Host {} must be refused, the view has {}", show(raw_host), show(&host))));
        };
        if let Some(want_host) = want_host {
            prop_assert_eq!(&host, &want_host, "Host {}", show(raw_host));
        }
        prop_assert_eq!(&path, &naive::normalize(raw_path), "path {}", show(raw_path));
        // What routing accepted means one thing: normalizing it again (as a backend that
        // decodes once more would) changes nothing.
        prop_assert_eq!(&naive::normalize(&path), &path, "path {}", show(raw_path));
        prop_assert!(raw_path.len() <= MAX_NORMALIZED_PATH || path_is_normal(raw_path),
            "a path of {} bytes that needs normalizing must be refused", raw_path.len());
        prop_assert_eq!(seen_client, client);
        let want_q = raw_query.and_then(|query| naive::query_value(query, b"q")).map(<[u8]>::to_vec);
        prop_assert_eq!(&q, &want_q, "query {:?}", raw_query.map(show));
        let want_sid = cookie_of(b"sid").map(<[u8]>::to_vec);
        prop_assert_eq!(&sid, &want_sid, "cookies {:?}", lines("cookie").into_iter().map(show).collect::<Vec<_>>());
        let want_x: Vec<Vec<u8>> = lines("x-key").into_iter().map(<[u8]>::to_vec).collect();
        prop_assert_eq!(&x_keys, &want_x);
        // A hashing key falls back to the client's address when the request lacks it.
        let or_ip = |v: Option<Vec<u8>>| v.or_else(|| ip_bytes.clone());
        let want_keys = [
            or_ip(want_sid),
            or_ip(want_x.first().cloned()),
            or_ip(want_q),
            Some(path.clone()),
            Some(host.clone()),
            ip_bytes.clone(),
        ];
        prop_assert_eq!(&key_values, &want_keys);
    }
}

// ---------------------------------------------------------------------------------------
// 2. `decide` on arbitrary heads, against a linear first-match interpreter.
// ---------------------------------------------------------------------------------------

/// Every kind of matcher and combinator, in an order where several rules can hold at once
/// (so the order matters) and none is shadowed (so `routes!` accepts the table).
mod table {
    proxy_runtime::routes! {
        proxy Fuzz;

        cluster a { backends: ["127.0.0.1:1"] }
        cluster b { backends: ["127.0.0.1:1"] }

        let mobile = header("user-agent").contains("Mobile") || header("user-agent").starts_with("Android");
        let beta = query("beta") == "true" || cookie("beta") == "1";

        route api:     host("api.example.com") && path_prefix("/v1")      => a;
        route wild:    host("*.example.org") && !path_prefix("/pub/")     => b;
        route exact:   path("/exact")                                     => a;
        route users:   path_regex("^/users/[0-9]+$")                      => b;
        route write:   path_prefix("/w") && method(PUT | DELETE | PATCH)  => a;
        route hdr_eq:  header("x-eq") == "yes" && !method(GET)            => b;
        route hdr_any: header("x-has").contains("%2F") || header("x-has").starts_with("a;b") => a;
        route hdr_pre: header("x-present") && !cookie("sid")              => b;
        route q_eq:    query("q") == "a b"                                => a;
        route q_has:   query("q").contains("%")                           => b;
        route q_pre:   query("q").starts_with("b")                        => a;
        route ck_eq:   cookie("sid") == "abc"                             => b;
        route ck_pre:  cookie("sid").starts_with("x y")                   => a;
        route paren:   (path_prefix("/p1") || path_prefix("/p2")) && header("x-p") => b;
        route both:    mobile && beta                                     => a;
        route beta:    beta                                               => b;
        route inside:  client_ip("10.0.0.0/8") && path_prefix("/in")      => a;
        route nets:    client_ip("2001:db8::/32") || client_ip("192.168.0.0/16") => b;
        route ne:      path_prefix("/ne") && query("v") != "no"           => a;
        route teapot:  path_prefix("/tea")                                => respond(418, "short and stout");
        route default: _                                                  => b;
    }
}
use table::{Fuzz, FuzzRoute};

/// What the reference interpreter reads: the view's host and path (whose derivation the
/// accessor properties check), the raw head for everything else.
struct Seen<'a> {
    host: &'a [u8],
    path: &'a [u8],
    req: &'a RequestHeader,
    client: Option<IpAddr>,
}

impl Seen<'_> {
    fn lines(&self, name: &str) -> Vec<&[u8]> {
        self.req
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect()
    }

    fn any_line(&self, name: &str, test: impl Fn(&[u8]) -> bool) -> bool {
        self.lines(name).into_iter().any(test)
    }

    /// Query parameter `name`, decoded.
    fn query(&self, name: &str) -> Option<Vec<u8>> {
        let q = self.req.uri.query()?.as_bytes();
        naive::query_value(q, name.as_bytes()).map(|v| naive::decode(v, true))
    }

    fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.lines("cookie")
            .into_iter()
            .find_map(|l| naive::cookie_value(l, name.as_bytes()))
    }

    fn under(&self, prefix: &str) -> bool {
        naive::under(self.path, prefix.as_bytes())
    }

    fn method_in(&self, methods: &[&str]) -> bool {
        methods.contains(&self.req.method.as_str())
    }

    fn in_net(&self, net: &str, bits: u8) -> bool {
        naive::in_net(self.client, net.parse().expect("literal network"), bits)
    }

    /// `^/users/[0-9]+$`, by hand.
    fn users_regex(&self) -> bool {
        self.path
            .strip_prefix(b"/users/")
            .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
    }

    /// The named predicates, then the index of the first rule that holds.
    fn first_match(&self) -> ((bool, bool), usize) {
        let q = |name: &str| self.query(name);
        let mobile = self.any_line("user-agent", |v| naive::contains(v, b"Mobile"))
            || self.any_line("user-agent", |v| v.starts_with(b"Android"));
        let beta = q("beta").as_deref() == Some(b"true") || self.cookie("beta") == Some(b"1");
        let wildcard =
            self.host.len() > b".example.org".len() && self.host.ends_with(b".example.org");
        let rules = [
            self.host == b"api.example.com" && self.under("/v1"),
            wildcard && !self.under("/pub/"),
            self.path == b"/exact",
            self.users_regex(),
            self.under("/w") && self.method_in(&["PUT", "DELETE", "PATCH"]),
            self.any_line("x-eq", |v| v == b"yes") && !self.method_in(&["GET"]),
            self.any_line("x-has", |v| naive::contains(v, b"%2F"))
                || self.any_line("x-has", |v| v.starts_with(b"a;b")),
            !self.lines("x-present").is_empty() && self.cookie("sid").is_none(),
            q("q").as_deref() == Some(b"a b"),
            q("q").is_some_and(|v| v.contains(&b'%')),
            q("q").is_some_and(|v| v.starts_with(b"b")),
            self.cookie("sid") == Some(b"abc"),
            self.cookie("sid").is_some_and(|v| v.starts_with(b"x y")),
            (self.under("/p1") || self.under("/p2")) && !self.lines("x-p").is_empty(),
            mobile && beta,
            beta,
            self.in_net("10.0.0.0", 8) && self.under("/in"),
            self.in_net("2001:db8::", 32) || self.in_net("192.168.0.0", 16),
            self.under("/ne") && q("v").as_deref() != Some(b"no"),
            self.under("/tea"),
            true,
        ];
        let first = rules.iter().position(|&hit| hit).unwrap_or(usize::MAX);
        ((mobile, beta), first)
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        // Many arbitrary heads are refused by Pingora before the runtime sees them.
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn decide_agrees_with_a_first_match_interpreter(
        method in select(METHODS),
        path in value_from(PATH_STEMS, PATH_TOKENS, 8),
        query in proptest::option::of(value_from(QUERIES, QUERY_TOKENS, 8)),
        headers in proptest::collection::vec((select(HEADER_NAMES), value_from(VALUES, VALUE_TOKENS, 4)), 0..6),
        host in proptest::option::of(value_from(HOSTS, HOST_TOKENS, 5)),
        client in client_ip(),
    ) {
        let mut target = [&b"/"[..], &path].concat();
        if let Some(q) = &query {
            target.push(b'?');
            target.extend_from_slice(q);
        }
        // A `host` first, when there is one, then the generated lines (which may add more).
        let mut lines: Vec<(&'static str, Vec<u8>)> = host.map(|h| ("host", h)).into_iter().collect();
        lines.extend(headers);
        let head = build_head(method, &target, &lines);
        prop_assume!(head.is_some(), "Pingora refuses these bytes");
        let Some(req) = head else { unreachable!("assumed above") };

        let decided = Fuzz::decide(&req, client);
        let viewed = RequestView::with(&req, client, |v| {
            let seen = Seen { host: v.host, path: v.path, req: &req, client: v.client };
            // `--explain`'s evaluator: the first rule it finds no reason against.
            let explained = <Fuzz as Table>::ROUTES.iter().position(|r| {
                proxy_runtime::inspect::why_not(r.check, v, <Fuzz as Table>::PREDICATES).is_none()
            });
            (Fuzz::decide_view(v), seen.first_match(), v.host.to_vec(), v.path.to_vec(), explained)
        });
        let (decision, ((mobile, beta), want), host, path, explained) = match viewed {
            Ok(v) => v,
            Err(bad) => {
                // Refused: `decide` refuses it the same way, with a 4xx.
                prop_assert_eq!(decided.map(|d| d.route), Err(bad));
                prop_assert!((400..500).contains(&bad.status()), "{:?} is not a 4xx", bad);
                return Ok(());
            }
        };
        let context = || format!("{method} {} lines {:?} from {client:?}; view host {} path {}",
            show(&target), lines.iter().map(|(n, v)| format!("{n}: {}", show(v))).collect::<Vec<_>>(),
            show(&host), show(&path));
        prop_assert_eq!(decided.ok(), Some(decision), "decide and decide_view differ: {}", context());
        let got = decision.route.map(Id::index).unwrap_or(usize::MAX);
        prop_assert_eq!(
            FuzzRoute::at(got).map(Id::name), FuzzRoute::at(want).map(Id::name),
            "{}", context()
        );
        prop_assert_eq!((decision.predicates.mobile, decision.predicates.beta), (mobile, beta),
            "predicates: {}", context());
        prop_assert_eq!(explained, decision.route.map(Id::index),
            "--explain's evaluator and decide differ: {}", context());
        // The one fixed answer is the teapot's; everything else goes to a cluster.
        let teapot = decision.route == Some(FuzzRoute::Teapot);
        prop_assert_eq!(decision.response().map(|r| r.status), teapot.then_some(418));
        prop_assert!(teapot || matches!(decision.target, Target::Cluster(_)), "{:?}", decision.target);
    }
}

/// The table's rule count, so the interpreter above cannot silently drift from it.
#[test]
fn the_interpreter_covers_every_rule() {
    assert_eq!(FuzzRoute::ALL.len(), 21);
    assert_eq!(<Fuzz as Table>::ROUTES.len(), 21);
    let mut req = RequestHeader::build("GET", b"/tea", None).expect("literal head");
    req.append_header("host", "x").expect("literal header");
    let d = Fuzz::decide(&req, None).expect("routable");
    assert_eq!(d.route, Some(FuzzRoute::Teapot));
}

// ---------------------------------------------------------------------------------------
// 3. Mutated raw requests against a running proxy.
// ---------------------------------------------------------------------------------------

mod wire {
    proxy_runtime::routes! {
        proxy Wire;

        cluster one { backends: ["127.0.0.1:1"] }
        cluster two { backends: ["127.0.0.1:1"] }

        route api:  path_prefix("/api")                            => one;
        route beta: cookie("beta") == "1" || query("beta") == "true" => two;
        route deny: path_prefix("/deny")                           => respond(403, "denied\n");
        route rest: _                                              => two;
    }
}

/// xorshift64: small, deterministic, good enough to pick mutations.
struct XorShift(u64);

impl XorShift {
    /// A generator for case `case` of a run seeded with `seed` (splitmix64 spreads the bits,
    /// and a zero state, which xorshift cannot leave, is avoided).
    fn for_case(seed: u64, case: u64) -> Self {
        let mut z = seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Valid requests the mutations start from. `Connection: close` lets a well-formed exchange
/// end as soon as it is answered.
const SEEDS: &[&[u8]] = &[
    b"GET /api/users?id=7&beta=true HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: fuzz/1.0\r\nCookie: a=1; beta=1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    b"POST /submit?x=%41 HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
    b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /deny/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /static/../api/%2e%2e/x HTTP/1.1\r\nHost: X.Example.COM:8080\r\nCookie: beta=1\r\nConnection: close\r\n\r\n",
    b"GET http://api.example.com/api/x HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n",
];

/// Bytes worth inserting: NUL, non-ASCII, whitespace, line ends and separators.
const ODD_BYTES: &[u8] = &[
    0, 0x80, 0xff, b' ', b'\t', b'\r', b'\n', b':', b'%', b'/', b'.', b';', 0x7f,
];

/// Header lines that fight the framing or the routing.
const EXTRA_LINES: &[&[u8]] = &[
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n",
    b"Host: evil.example\r\n",
    b"Host:\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n",
    b" folded: continuation\r\n",
    b"X-Bad\r\n",
    b": empty-name\r\n",
];

/// The lines of `req`, each with its `\n`.
fn lines_of(req: &[u8]) -> Vec<Vec<u8>> {
    req.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Apply one to four random mutations; returns their names, for the failure message.
fn mutate(rng: &mut XorShift, req: &mut Vec<u8>) -> Vec<&'static str> {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(req.len() + 1);
        let name = match rng.below(10) {
            0 if at < req.len() => {
                req[at] ^= 1 << rng.below(8);
                "flip-bit"
            }
            1 => {
                let b = *rng.pick(ODD_BYTES);
                req.insert(at, b);
                "insert-byte"
            }
            2 if at < req.len() => {
                req[at] = *rng.pick(ODD_BYTES);
                "replace-byte"
            }
            3 => {
                let end = (at + 1 + rng.below(8)).min(req.len());
                req.drain(at..end);
                "delete-bytes"
            }
            4 => {
                let mut lines = lines_of(req);
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    let line = lines[i].clone();
                    lines.insert(i, line);
                }
                *req = lines.concat();
                "duplicate-line"
            }
            5 => {
                let mut lines = lines_of(req);
                if !lines.is_empty() {
                    lines.remove(rng.below(lines.len()));
                }
                *req = lines.concat();
                "drop-line"
            }
            6 => {
                // Every CRLF, or one, becomes a bare LF.
                let crlfs: Vec<usize> = (0..req.len().saturating_sub(1))
                    .filter(|&i| req[i..].starts_with(b"\r\n"))
                    .collect();
                let gone: Vec<usize> = match (rng.below(2), crlfs.is_empty()) {
                    (_, true) => Vec::new(),
                    (0, false) => crlfs,
                    _ => vec![*rng.pick(&crlfs)],
                };
                for i in gone.into_iter().rev() {
                    req.remove(i);
                }
                "crlf-to-lf"
            }
            7 | 8 => {
                // After the request line, so it lands among the headers.
                let first = req
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(req.len(), |i| i + 1);
                let line: Vec<u8> = if rng.below(3) == 0 {
                    // A huge header value, up to 64 KiB, of one odd or plain byte.
                    let len = 1 + rng.below(64 * 1024);
                    let fill = if rng.below(2) == 0 {
                        b'a'
                    } else {
                        *rng.pick(ODD_BYTES)
                    };
                    [&b"X-Big: "[..], &vec![fill; len], b"\r\n"].concat()
                } else {
                    rng.pick(EXTRA_LINES).to_vec()
                };
                req.splice(first..first, line);
                "insert-header"
            }
            _ => {
                // Truncate: the request ends early.
                req.truncate(at);
                "truncate"
            }
        };
        done.push(name);
    }
    done
}

/// What came back on one connection.
struct Exchange {
    /// Bytes the proxy sent before closing, timing out or resetting.
    bytes: Vec<u8>,
    /// No byte came back before the read timeout.
    timed_out: bool,
}

/// Send `req` on a fresh connection and read the answer: up to 2 s for the first byte, then
/// until the proxy closes or stays quiet for 300 ms (a kept-alive connection).
fn exchange(proxy: std::net::SocketAddr, req: &[u8]) -> std::io::Result<Exchange> {
    use std::io::{ErrorKind, Read, Write};
    use std::time::Duration;
    let mut s = std::net::TcpStream::connect_timeout(&proxy, Duration::from_secs(2))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    // The proxy may answer and close before it has read everything (a refused head): a
    // failed write is part of the exchange, not an error of the test.
    let _ = s.write_all(req);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                s.set_read_timeout(Some(Duration::from_millis(300)))?;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(Exchange {
                    timed_out: bytes.is_empty(),
                    bytes,
                });
            }
            Err(_) => break,
        }
        if bytes.len() > 1 << 20 {
            break;
        }
    }
    Ok(Exchange {
        bytes,
        timed_out: false,
    })
}

/// The status codes of the response heads in `bytes` (a status line at the start or after
/// a line end), or the reason the first one is not an HTTP/1 response.
fn statuses(bytes: &[u8]) -> Result<Vec<u16>, String> {
    if !bytes.starts_with(b"HTTP/1.") {
        return Err("does not start with HTTP/1.".into());
    }
    let mut found = Vec::new();
    for at in 0..bytes.len() {
        if (at == 0 || bytes[at - 1] == b'\n') && bytes[at..].starts_with(b"HTTP/1.") {
            let code = bytes
                .get(at + 9..at + 12)
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| c.parse::<u16>().ok());
            match code {
                Some(code) if (100..600).contains(&code) => found.push(code),
                _ if at == 0 => return Err("the status line has no status".into()),
                // A later match may be a body line that happens to look like one.
                _ => {}
            }
        }
    }
    Ok(found)
}

#[test]
fn mutated_raw_requests_never_get_a_500_and_the_proxy_keeps_serving() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let cases: usize = match std::env::var("SWITCHYARD_FUZZ_CASES") {
        Ok(n) => n.parse().expect("SWITCHYARD_FUZZ_CASES is a count"),
        Err(_) => 300,
    };
    let seed: u64 = match std::env::var("SWITCHYARD_FUZZ_SEED") {
        Ok(s) => s.parse().expect("SWITCHYARD_FUZZ_SEED is a u64"),
        Err(_) => 0x5717_c4a2_d000_0001,
    };

    let backends = [spawn_backend("one"), spawn_backend("two")];
    let proxy = wire::Wire::builder()
        .listen("127.0.0.1:0")
        .backends("one", [backends[0].addr_string()])
        .backends("two", [backends[1].addr_string()])
        .threads(1)
        .start()
        .expect("proxy starts");
    let addr = proxy.addr();
    assert!(addr.ip().is_loopback(), "{addr}");

    // Each case is independent (its own generator, its own connection), so a few client
    // threads share them: most of the time goes to waiting on the proxy.
    let next = AtomicUsize::new(0);
    let per_status = Mutex::new(BTreeMap::<u16, usize>::new());
    // 5xx answers other than 500 (a backend unreachable or refusing what it was sent) are
    // allowed but worth a look: the first few are printed.
    let other_5xx = Mutex::new(Vec::<String>::new());
    // Requests that got nothing back within the timeout: usually ones the proxy is still
    // reading (a body shorter than its Content-Length, a head cut short).
    let silent = Mutex::new(Vec::<String>::new());
    let (closed, timed_out) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let failures = Mutex::new(Vec::<String>::new());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| loop {
                let case = next.fetch_add(1, Ordering::Relaxed);
                if case >= cases {
                    return;
                }
                let mut rng = XorShift::for_case(seed, case as u64);
                let base = rng.below(SEEDS.len());
                let mut req = SEEDS[base].to_vec();
                let applied = mutate(&mut rng, &mut req);
                let what = || {
                    format!(
                        "SWITCHYARD_FUZZ_SEED={seed} case {case} (seed request {base}, {applied:?}): {}",
                        show(&req)
                    )
                };
                let got = match exchange(addr, &req) {
                    Ok(got) => got,
                    Err(e) => {
                        failures.lock().expect("lock").push(format!("{}: connect: {e}", what()));
                        continue;
                    }
                };
                if got.bytes.is_empty() {
                    let counter = if got.timed_out { &timed_out } else { &closed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if got.timed_out {
                        silent.lock().expect("lock").push(what());
                    }
                    continue;
                }
                match statuses(&got.bytes) {
                    Ok(codes) => {
                        let mut counts = per_status.lock().expect("lock");
                        for code in &codes {
                            *counts.entry(*code).or_default() += 1;
                        }
                        if codes.iter().any(|&c| c > 500) {
                            other_5xx.lock().expect("lock").push(format!(
                                "{} got {codes:?}: {}",
                                what(),
                                show(&got.bytes[..got.bytes.len().min(300)])
                            ));
                        }
                        if codes.contains(&500) {
                            failures.lock().expect("lock").push(format!(
                                "{} got a 500: {}",
                                what(),
                                show(&got.bytes)
                            ));
                        }
                    }
                    Err(why) => failures.lock().expect("lock").push(format!(
                        "{}: the answer {why}: {}",
                        what(),
                        show(&got.bytes)
                    )),
                }
            });
        }
    });

    let per_status = per_status.into_inner().expect("lock");
    let mut per_class = BTreeMap::<String, usize>::new();
    for (code, n) in &per_status {
        *per_class.entry(format!("{}xx", code / 100)).or_default() += n;
    }
    let (closed, timed_out) = (closed.into_inner(), timed_out.into_inner());
    eprintln!(
        "fuzz: {cases} mutated requests sent (seed {seed}): responses per class {per_class:?}, \
         per status {per_status:?}; {closed} connections closed without an answer, \
         {timed_out} timed out without one"
    );
    let other_5xx = other_5xx.into_inner().expect("lock");
    for example in other_5xx.iter().take(3) {
        eprintln!("fuzz: a 5xx other than 500: {example}");
    }
    for example in silent.into_inner().expect("lock").iter().take(3) {
        eprintln!("fuzz: no answer within 2 s: {example}");
    }
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed; the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Whatever it was sent, the proxy still routes a plain request to a backend.
    let a = get(&client(), addr, "/", &[]);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(["one", "two"].contains(&a.backend.as_str()), "{a:?}");
    proxy.shutdown();
}
