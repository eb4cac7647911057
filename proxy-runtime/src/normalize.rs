//! The normal form requests are routed in: the path (percent-encoded unreserved bytes
//! decoded, other escapes in uppercase, `//` merged, dot-segments removed), the host
//! (lowercase, port and trailing dot stripped) and the segment-aware prefix test.
//!
//! Pure byte functions on `core` alone: `proxy-macros` compiles this very file into its
//! tests (`#[path]`) and proves with a property test that the table's literals, which the
//! macro checks and normalizes at compile time, are normalized exactly as requests are here.

/// Longest path that can be normalized; a longer path that needs normalizing is refused
/// with 414 (nginx's default large-header buffer is 8 KiB; this is half of it).
pub const MAX_NORMALIZED_PATH: usize = 4096;
/// Longest host name (RFC 1035: 253 characters, plus room for an IPv6 literal).
pub const MAX_HOST: usize = 255;

/// A `Host` value as routing compares it, before lowercasing: port and one trailing dot
/// stripped, and whether it has capitals (so the common, lowercase host is used in place
/// and only a host with capitals is copied). `None` for a value the proxy refuses: a byte
/// outside printable ASCII, or longer than [`MAX_HOST`] once stripped.
#[inline]
pub fn host_parts(raw: &[u8]) -> Option<(&[u8], bool)> {
    // Branch-free so the loop vectorizes: not printable ASCII, capitals, colons.
    let (mut bad, mut upper, mut colon) = (false, false, false);
    for &c in raw {
        bad |= c.wrapping_sub(0x21) > 0x7e - 0x21;
        upper |= c.wrapping_sub(b'A') < 26;
        colon |= c == b':';
    }
    if bad {
        return None;
    }
    let host = if colon || raw.last() == Some(&b'.') {
        strip_host(raw)
    } else {
        raw
    };
    (host.len() <= MAX_HOST).then_some((host, upper))
}

/// Strip the port (`host:8080`, `[::1]:8080`) and one trailing dot.
pub fn strip_host(h: &[u8]) -> &[u8] {
    let h = if h.first() == Some(&b'[') {
        match h.iter().position(|&c| c == b']') {
            Some(end) => &h[..=end],
            None => h,
        }
    } else {
        match h.iter().rposition(|&c| c == b':') {
            Some(colon) => &h[..colon],
            None => h,
        }
    };
    h.strip_suffix(b".").unwrap_or(h)
}

/// True when the path is already in normal form: no `%`, no empty segment but a trailing
/// one, no `.`/`..` segment. A target that does not start with `/` (`*`) is left as it is.
#[inline]
pub fn path_is_normal(p: &[u8]) -> bool {
    let Some(rest) = p.strip_prefix(b"/") else {
        return true;
    };
    // The common case: no escape, and no slash followed by a slash or a dot. Branch-free
    // over byte pairs, so the loop vectorizes (paths are short: a call to memchr costs
    // more than this).
    let mut odd = false;
    for (&a, &b) in p.iter().zip(rest) {
        odd |= (b == b'%') | ((a == b'/') & ((b == b'/') | (b == b'.')));
    }
    if !odd {
        return true;
    }
    if rest.contains(&b'%') {
        return false;
    }
    let mut segments = rest.split(|&c| c == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if (seg.is_empty() && !last) || seg == b"." || seg == b".." {
            return false;
        }
    }
    true
}

/// Normalize `raw` into `out` (which must be at least as long) and return the length:
/// decode `%XX` of unreserved bytes, merge `//`, remove `.` and `..` segments (RFC 3986
/// §5.2.4; `..` above the root is dropped). A trailing slash is kept.
pub fn normalize_path_into(raw: &[u8], out: &mut [u8]) -> usize {
    if raw.first() != Some(&b'/') {
        let n = raw.len();
        out[..n].copy_from_slice(raw);
        return n;
    }
    // Pass 1: decode unreserved escapes into `out`.
    let mut n = 0;
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex_value(raw[i + 1]), hex_value(raw[i + 2])) {
                let d = h << 4 | l;
                if d.is_ascii_alphanumeric() || matches!(d, b'-' | b'.' | b'_' | b'~') {
                    out[n] = d;
                    n += 1;
                    i += 3;
                    continue;
                }
                // Keep other escapes, with uppercase hex so equal paths compare equal.
                out[n] = b'%';
                out[n + 1] = raw[i + 1].to_ascii_uppercase();
                out[n + 2] = raw[i + 2].to_ascii_uppercase();
                n += 3;
                i += 3;
                continue;
            }
        }
        out[n] = c;
        n += 1;
        i += 1;
    }
    // Pass 2: segments, in place (the write position never passes the read position).
    let mut w = 0;
    let mut r = 0;
    let mut trailing_slash = false;
    // Skip leading slashes: the output always starts with one.
    while r < n {
        while r < n && out[r] == b'/' {
            r += 1;
        }
        if r >= n {
            trailing_slash = true;
            break;
        }
        let start = r;
        while r < n && out[r] != b'/' {
            r += 1;
        }
        let last = r >= n;
        match &out[start..r] {
            b"." => trailing_slash = last,
            b".." => {
                w = out[..w].iter().rposition(|&c| c == b'/').unwrap_or(0);
                trailing_slash = last;
            }
            _ => {
                out[w] = b'/';
                out.copy_within(start..r, w + 1);
                w += 1 + (r - start);
                trailing_slash = false;
            }
        }
    }
    if w == 0 || trailing_slash {
        out[w] = b'/';
        w += 1;
    }
    w
}

/// The value of a hex digit.
#[inline]
pub fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Segment-aware prefix: `/api` matches `/api`, `/api/` and `/api/x`, not `/apiary`. A
/// prefix ending in `/` is a plain prefix.
#[inline(always)]
pub fn path_prefix_segment(path: &[u8], prefix: &[u8]) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with(b"/") || path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// `host` is `suffix` or ends with `.suffix` (`*.example.com` matches `a.example.com`,
/// not `example.com`, not `badexample.com`). `dot_suffix` is `".example.com"`.
#[inline(always)]
pub fn host_wildcard(host: &[u8], dot_suffix: &[u8]) -> bool {
    host.len() > dot_suffix.len() && host.ends_with(dot_suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> String {
        let mut buf = [0u8; 256];
        let n = normalize_path_into(p.as_bytes(), &mut buf);
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn normalizes_paths() {
        // (input, normalized) — the cases an `admin` rule must not be bypassed by.
        let cases = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//a//b", "/a/b"),
            ("/static/../admin", "/admin"),
            ("/static/%2e%2e/admin", "/admin"),
            ("/static/%2E%2E/admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/a/./b", "/a/b"),
            ("/a/.", "/a/"),
            ("/a/..", "/"),
            ("/..", "/"),
            ("/../../x", "/x"),
            ("/a/%2f/b", "/a/%2F/b"),
            ("/a/..b", "/a/..b"),
            ("/.well-known/x", "/.well-known/x"),
            ("/a%zz", "/a%zz"),
            ("/a%2", "/a%2"),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), want, "normalizing {input}");
            // The fast path must agree that normal paths need no work, and only those.
            assert_eq!(
                path_is_normal(input.as_bytes()),
                input == want && !input.contains('%'),
                "path_is_normal({input})"
            );
        }
    }

    #[test]
    fn strips_host_ports_and_dots() {
        assert_eq!(strip_host(b"a.example.com:8080"), b"a.example.com");
        assert_eq!(strip_host(b"a.example.com."), b"a.example.com");
        assert_eq!(strip_host(b"[::1]:80"), b"[::1]");
        assert!(host_wildcard(b"a.example.com", b".example.com"));
        assert!(!host_wildcard(b"example.com", b".example.com"));
        assert!(!host_wildcard(b"badexample.com", b".example.com"));
    }

    #[test]
    fn classifies_hosts() {
        // (Host value, host before lowercasing and whether it has capitals, or refused)
        type Case<'a> = (&'a [u8], Option<(&'a [u8], bool)>);
        let cases: [Case; 5] = [
            (b"api.example.com", Some((b"api.example.com", false))),
            (b"API.Example.com:8080", Some((b"API.Example.com", true))),
            (b"[::1]:8080", Some((b"[::1]", false))),
            (b"a b", None),
            (b"caf\xc3\xa9", None),
        ];
        for (raw, want) in cases {
            assert_eq!(host_parts(raw), want, "{raw:?}");
        }
        assert_eq!(host_parts(&[b'a'; MAX_HOST + 1]), None);
    }

    #[test]
    fn matches_segments() {
        assert!(path_prefix_segment(b"/api", b"/api"));
        assert!(path_prefix_segment(b"/api/x", b"/api"));
        assert!(!path_prefix_segment(b"/apiary", b"/api"));
        assert!(path_prefix_segment(b"/api/x", b"/api/"));
    }
}
