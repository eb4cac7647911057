//! The compile-time twin of the runtime's `proxy_runtime::normalize`: a table's path and
//! host literals are checked against the normal form requests are routed in. The runtime
//! is the behaviour users see; the tests below include its file and prove the two agree.

/// The normal form requests are matched in (the runtime's `normalize_path_into`):
/// unreserved `%XX` decoded, other escapes in uppercase, `//` merged, `.` and `..` removed.
/// `p` starts with `/`. Works on bytes, as the runtime does: a multi-byte character is
/// copied as it is.
pub fn normalize_path(p: &str) -> String {
    let b = p.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_value(b[i + 1]), hex_value(b[i + 2])) {
                let c = h << 4 | l;
                if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                    decoded.push(c);
                } else {
                    decoded.extend([
                        b'%',
                        b[i + 1].to_ascii_uppercase(),
                        b[i + 2].to_ascii_uppercase(),
                    ]);
                }
                i += 3;
                continue;
            }
        }
        decoded.push(b[i]);
        i += 1;
    }
    let rest = decoded.strip_prefix(b"/").unwrap_or(&decoded);
    let parts: Vec<&[u8]> = rest.split(|&c| c == b'/').collect();
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing = false;
    for (k, seg) in parts.iter().enumerate() {
        let last = k + 1 == parts.len();
        match *seg {
            b"" | b"." => trailing = last,
            b".." => {
                segments.pop();
                trailing = last;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = b"/".to_vec();
    out.extend(segments.join(&b'/'));
    if trailing && !segments.is_empty() {
        out.push(b'/');
    }
    // Escapes decode to ASCII and segments split at `/`, so UTF-8 stays UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Segment-aware prefix, as `path_prefix` matches: `/api` covers `/api`, `/api/` and
/// `/api/x`, not `/apiary`; a prefix ending in `/` is a plain prefix.
pub fn segment_prefix(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes()[prefix.len()] == b'/')
}

/// Longest host the runtime routes on (its `MAX_HOST`).
pub const MAX_HOST: usize = 255;

/// A `host(..)` literal in the form requests are compared in.
#[derive(Debug, PartialEq, Eq)]
pub enum HostLiteral {
    /// Lowercase, no port, no trailing dot.
    Exact(String),
    /// `".example.com"` for `*.example.com`.
    Suffix(String),
}

/// Why a `host(..)` literal could never match.
#[derive(Debug, PartialEq, Eq)]
pub enum HostError {
    Empty,
    /// It has a port; the literal without it.
    Port(String),
    /// `*` not followed by `.` and a domain.
    BadWildcard,
    /// A `*` inside, a `/`, or a byte a `Host` header cannot hold (the runtime answers 400).
    NotAHost,
    /// Longer than [`MAX_HOST`].
    TooLong,
}

/// Normalize a `host(..)` literal as the runtime normalizes a `Host` header: one trailing
/// dot dropped, lowercase. A port, a malformed wildcard, or a byte outside printable ASCII
/// is an error, since a request could never match it.
pub fn host_literal(raw: &str) -> Result<HostLiteral, HostError> {
    let h = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    if h.is_empty() {
        return Err(HostError::Empty);
    }
    if let Some(inner) = h.strip_prefix('[') {
        // `[::1]:8080`: the runtime keeps up to the `]`.
        let Some(close) = inner.find(']') else {
            return Err(HostError::NotAHost);
        };
        let (ip, after) = h.split_at(close + 2);
        if after.starts_with(':') {
            return Err(HostError::Port(ip.to_owned()));
        }
        if !after.is_empty() || ip[1..].contains('[') {
            return Err(HostError::NotAHost);
        }
    } else if h.contains(['[', ']']) {
        return Err(HostError::NotAHost);
    } else if h.contains(':') {
        return Err(HostError::Port(
            h.split(':').next().unwrap_or("").to_owned(),
        ));
    }
    if h.bytes().any(|c| !(0x21..=0x7e).contains(&c)) {
        return Err(HostError::NotAHost);
    }
    if h.len() > MAX_HOST {
        return Err(HostError::TooLong);
    }
    if let Some(rest) = h.strip_prefix("*.") {
        if rest.contains('*') || rest.is_empty() {
            return Err(HostError::BadWildcard);
        }
        return Ok(HostLiteral::Suffix(format!(".{rest}")));
    }
    if h.contains('*') || h.contains('/') {
        return Err(HostError::NotAHost);
    }
    Ok(HostLiteral::Exact(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_path_literals_like_the_runtime() {
        let cases = [
            ("/", "/"),
            ("/a/b/", "/a/b/"),
            ("/a//b", "/a/b"),
            ("/a/../b", "/b"),
            ("/%61dmin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/a/.", "/a/"),
            ("/..", "/"),
            // Found by the property test: bytes were pushed as `char`s, so a multi-byte
            // character came out as two Latin-1 characters (`/é` as `/Ã©`).
            ("/é", "/é"),
            ("/caf%C3%A9/%2e%2E/é/", "/é/"),
        ];
        for (p, want) in cases {
            assert_eq!(normalize_path(p), want, "{p}");
        }
    }

    #[test]
    fn normalizes_host_literals_like_the_runtime() {
        use HostLiteral::*;
        // (literal, normal form or why it can never match)
        let cases = [
            ("API.Example.com.", Ok(Exact("api.example.com".into()))),
            ("*.Example.com", Ok(Suffix(".example.com".into()))),
            ("[::1]", Ok(Exact("[::1]".into()))),
            ("", Err(HostError::Empty)),
            (
                "a.example.com:8080",
                Err(HostError::Port("a.example.com".into())),
            ),
            // Found by the property test: the runtime strips the port of a bracketed
            // address too, so `[::1]:8080` could never match.
            ("[::1]:8080", Err(HostError::Port("[::1]".into()))),
            ("[::1]x", Err(HostError::NotAHost)),
            ("[::1", Err(HostError::NotAHost)),
            ("a]b", Err(HostError::NotAHost)),
            ("*.", Err(HostError::NotAHost)),
            ("*.a.*.com", Err(HostError::BadWildcard)),
            ("a*.example.com", Err(HostError::NotAHost)),
            ("a b.example.com", Err(HostError::NotAHost)),
            // The runtime refuses a Host header outside printable ASCII (400).
            ("café.example.com", Err(HostError::NotAHost)),
        ];
        for (lit, want) in cases {
            assert_eq!(host_literal(lit), want, "{lit:?}");
        }
        assert_eq!(
            host_literal(&"a".repeat(MAX_HOST + 1)),
            Err(HostError::TooLong)
        );
    }
}

/// The runtime's own file, compiled into these tests: the functions requests are routed
/// with. It depends on `core` alone for this.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../proxy-runtime/src/normalize.rs"]
mod runtime_normalize;

/// Random paths and hosts: the macro's normalization of a literal is the runtime's
/// normalization of the same bytes in a request.
#[cfg(test)]
mod agrees_with_the_runtime {
    use super::runtime_normalize as rt;
    use super::*;
    use proptest::prelude::*;

    /// The runtime's path as routing sees it: in place when already normal, else rewritten.
    fn runtime_path(p: &str) -> String {
        if rt::path_is_normal(p.as_bytes()) {
            return p.to_owned();
        }
        let mut buf = vec![0u8; p.len() + 1];
        let n = rt::normalize_path_into(p.as_bytes(), &mut buf);
        String::from_utf8(buf[..n].to_vec()).expect("normalizing keeps UTF-8")
    }

    /// The runtime's host as routing sees it; `None` when it answers 400.
    fn runtime_host(h: &str) -> Option<String> {
        let (host, _upper) = rt::host_parts(h.as_bytes())?;
        Some(String::from_utf8(host.to_ascii_lowercase()).expect("printable ASCII"))
    }

    /// An escape normalizing would rewrite: of an unreserved byte, or in lowercase.
    fn has_escape_to_rewrite(p: &str) -> bool {
        p.as_bytes()
            .windows(3)
            .any(|w| match (w[0], hex_value(w[1]), hex_value(w[2])) {
                (b'%', Some(h), Some(l)) => {
                    let d = h << 4 | l;
                    d.is_ascii_alphanumeric()
                        || b"-._~".contains(&d)
                        || w[1..].iter().any(u8::is_ascii_lowercase)
                }
                _ => false,
            })
    }

    /// Pieces paths are made of, biased towards what normalization treats specially.
    fn path_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec![
                "/", "/", "/", ".", "..", "%", "a", "b", "f", "x", "0", "9", "A", "F", "~",
                ";", "\\", "-", "_", "?", "é", "\u{1F600}",
            ])
            .prop_map(str::to_owned),
            // Escapes: unreserved, reserved, lowercase, malformed.
            2 => prop::sample::select(vec![
                "%2e", "%2E", "%2f", "%2F", "%41", "%61", "%7e", "%7E", "%5f", "%2d", "%3b",
                "%25", "%zz", "%4", "%c3%a9", "%C3%A9", "%00", "%ff",
            ])
            .prop_map(str::to_owned),
            1 => ("[0-9a-fA-F]", "[0-9a-fA-Fxg]").prop_map(|(a, b)| format!("%{a}{b}")),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(path_piece(), 0..12).prop_map(|ps| format!("/{}", ps.concat()))
    }

    fn host_piece() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a", "b", "Z", "API", "example", "com", ".", ".", "-", "*", "*.", ":", ":8080", "[",
            "]", "::1", "/", " ", "é", "~", "%",
        ])
        .prop_map(str::to_owned)
    }

    fn host() -> impl Strategy<Value = String> {
        prop::collection::vec(host_piece(), 0..8).prop_map(|ps| ps.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// What the macro suggests for a path literal is what a request with that path is
        /// routed on, and a literal the macro accepts as normal is left alone at run time.
        #[test]
        fn paths_normalize_identically(p in path()) {
            // `check` refuses a literal with `?` before normalizing it.
            prop_assume!(!p.contains('?'));
            let macro_form = normalize_path(&p);
            prop_assert_eq!(&macro_form, &runtime_path(&p), "path {:?}", p);
            // The suggestion is itself accepted (normalizing is idempotent), unless one
            // decoding pass made a new escape (`/%4%41` → `/%4A`, `/%a%41` → `/%aA`), which
            // both sides leave as it is: they decode once, as nginx does.
            if !has_escape_to_rewrite(&macro_form) {
                prop_assert_eq!(&normalize_path(&macro_form), &macro_form);
            }
            if macro_form == p {
                prop_assert_eq!(runtime_path(&p), p.clone(), "accepted literal {:?}", p);
            }
            // The runtime's fast path never skips a path that needs work.
            if rt::path_is_normal(p.as_bytes()) {
                let mut buf = vec![0u8; p.len() + 1];
                let n = rt::normalize_path_into(p.as_bytes(), &mut buf);
                prop_assert_eq!(&buf[..n], p.as_bytes());
            }
        }

        /// A host literal the macro accepts is what the runtime makes of a `Host` header
        /// with the same text, in any case, with a port or a trailing dot.
        #[test]
        fn hosts_normalize_identically(h in host(), port in prop::option::of(1u16..)) {
            match host_literal(&h) {
                Ok(HostLiteral::Exact(x)) => {
                    prop_assert_eq!(runtime_host(&h), Some(x.clone()), "literal {:?}", h);
                    let variants = [
                        h.to_ascii_uppercase(),
                        format!("{x}."),
                        format!("{h}:{}", port.unwrap_or(80)),
                    ];
                    for v in variants {
                        prop_assert_eq!(runtime_host(&v), Some(x.clone()), "Host {:?}", v);
                    }
                }
                Ok(HostLiteral::Suffix(s)) => {
                    for sub in ["a", "Www.B"] {
                        // The runtime drops one trailing dot; the literal's was dropped.
                        let v = format!("{sub}{s}.");
                        let got = runtime_host(&v);
                        prop_assert!(got.is_some(), "Host {:?}", v);
                        let got = got.unwrap_or_default();
                        prop_assert!(rt::host_wildcard(got.as_bytes(), s.as_bytes()), "{:?} under {:?}", v, s);
                    }
                    // The bare domain is not under its wildcard.
                    let bare = runtime_host(&format!("{}.", &s[1..])).unwrap_or_default();
                    prop_assert!(!rt::host_wildcard(bare.as_bytes(), s.as_bytes()));
                }
                Err(_) => {}
            }
        }

        /// `path_prefix` means the same to the macro (rule implication), to the generated
        /// prefix trie and to the runtime's `path_prefix_segment`.
        #[test]
        fn segment_prefixes_agree(
            prefixes in prop::collection::vec(path(), 1..6),
            paths in prop::collection::vec(path(), 1..8),
        ) {
            let prefixes: Vec<String> = prefixes.iter().map(|p| normalize_path(p)).collect();
            let mut distinct = prefixes.clone();
            distinct.sort();
            distinct.dedup();
            let trie = crate::lower::PrefixTrie::new(&distinct);
            // Requests under the prefixes too, not only random paths.
            let extra = distinct.iter().flat_map(|q| {
                [q.clone(), format!("{q}/x"), format!("{q}x"), format!("{q}/")]
            });
            for p in paths.iter().map(|p| normalize_path(p)).chain(extra) {
                for q in &distinct {
                    prop_assert_eq!(
                        segment_prefix(&p, q),
                        rt::path_prefix_segment(p.as_bytes(), q.as_bytes()),
                        "path {:?} prefix {:?}", p, q
                    );
                }
                let longest = distinct
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| rt::path_prefix_segment(p.as_bytes(), q.as_bytes()))
                    .max_by_key(|(_, q)| q.len())
                    .map(|(k, _)| k);
                prop_assert_eq!(trie.longest(p.as_bytes()), longest, "path {:?} in {:?}", p, distinct);
            }
        }
    }

    #[test]
    fn segment_prefix_cases() {
        // (path, prefix, under it)
        let cases = [
            ("/api", "/api", true),
            ("/api/x", "/api", true),
            ("/api/", "/api", true),
            ("/apiary", "/api", false),
            ("/api/x", "/api/", true),
            ("/api", "/api/", false),
            ("/", "/", true),
        ];
        for (p, q, want) in cases {
            assert_eq!(segment_prefix(p, q), want, "{p} under {q}");
            assert_eq!(rt::path_prefix_segment(p.as_bytes(), q.as_bytes()), want);
            let trie = crate::lower::PrefixTrie::new(&[q.to_owned()]);
            assert_eq!(
                trie.longest(p.as_bytes()),
                want.then_some(0),
                "trie: {p} under {q}"
            );
        }
    }
}
