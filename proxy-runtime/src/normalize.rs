//! The normal form requests are routed in: the path (percent-encoded unreserved bytes
//! decoded, other escapes in uppercase, `//` merged, dot-segments removed), the host
//! (lowercase, port and trailing dot stripped) and the segment-aware prefix test; and the
//! paths that are ambiguous, because a backend may read them otherwise than routing does.
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
/// outside printable ASCII, a port that is not a number of 0–65535 (RFC 9112 §3.2: such a
/// `Host` gets a 400), or longer than [`MAX_HOST`] once stripped.
#[inline]
pub fn host_parts(raw: &[u8]) -> Option<(&[u8], bool)> {
    // Branch-free so the loop vectorizes: not printable ASCII, capitals, colons.
    let (mut bad, mut upper, mut colon) = (false, false, false);
    for &c in raw {
        bad |= c.wrapping_sub(0x21) > 0x7e - 0x21;
        upper |= c.wrapping_sub(b'A') < 26;
        colon |= c == b':';
    }
    if bad || (colon && !port_ok(raw)) {
        return None;
    }
    let host = if colon || raw.last() == Some(&b'.') {
        strip_host(raw)
    } else {
        raw
    };
    (host.len() <= MAX_HOST).then_some((host, upper))
}

/// What follows the host name in a `Host` value is nothing or a port: `h`, `h:`, `h:8080`,
/// `[::1]`, `[::1]:8080`; not `h:http`, `h:99999`, `::1` (unbracketed) or `[::1]x`.
fn port_ok(raw: &[u8]) -> bool {
    let after = if raw.first() == Some(&b'[') {
        match raw.iter().position(|&c| c == b']') {
            // A trailing dot is stripped from every host, bracketed ones included, before
            // a port as without one (`[::1].:8080` as `a.:8080`).
            Some(end) => {
                let after = &raw[end + 1..];
                match after {
                    [b'.', rest @ ..] => rest,
                    _ => after,
                }
            }
            None => return false,
        }
    } else {
        match raw.iter().position(|&c| c == b':') {
            Some(colon) => &raw[colon..],
            None => return true,
        }
    };
    match after {
        [] => true,
        [b':', port @ ..] => {
            port.len() <= 5
                && port.iter().all(u8::is_ascii_digit)
                && port.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
        }
        _ => false,
    }
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
    normal_form(p, false)
}

/// [`path_is_normal`], and without a `\`, `;` or non-ASCII byte either: a path that
/// routing uses as it is, with nothing for [`path_ambiguity`] to look at.
#[inline]
pub fn path_is_plain(p: &[u8]) -> bool {
    normal_form(p, true)
}

#[inline(always)]
fn normal_form(p: &[u8], plain: bool) -> bool {
    let Some(rest) = p.strip_prefix(b"/") else {
        return true;
    };
    // The common case: no escape, and no slash followed by a slash or a dot. Branch-free
    // over byte pairs, so the loop vectorizes (paths are short: a call to memchr costs
    // more than this).
    let mut odd = false;
    for (&a, &b) in p.iter().zip(rest) {
        odd |= (b == b'%')
            | ((a == b'/') & ((b == b'/') | (b == b'.')))
            | (plain & ((b == b'\\') | (b == b';') | (b >= 0x80)));
    }
    if !odd {
        return true;
    }
    if rest.contains(&b'%') || (plain && rest.iter().any(|&c| c == b'\\' || c == b';' || c >= 0x80))
    {
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

/// Why a path may mean one thing to routing and another to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// An encoded slash or backslash (`%2F`, `%5C`) or a raw `\`: `/admin%2f`,
    /// `/x/..%2fadmin`, `/x\..\admin`. Routing sees one segment; a backend that decodes
    /// it, or reads `\` as a separator (Windows, some Java containers), sees two.
    Separator,
    /// An encoded control byte, `%00`–`%1F` or `%7F`: `/admin%00` (a C backend stops
    /// at the NUL). Pingora percent-encodes raw control bytes, so they land here too.
    Control,
    /// `%25` followed by two hex digits: `/%252e/admin` is `/%2e/admin` to a backend that
    /// decodes twice.
    DoubleEncoding,
    /// `%` not followed by two hex digits: `/a%zz`, IIS's `%u002e`.
    BadEscape,
    /// Not UTF-8 once decoded, overlong forms included: `/x/%c0%ae%c0%ae/admin` is
    /// `/x/../admin` to a lenient decoder.
    NotUtf8,
    /// A `;` path parameter: `/x/..;/admin` is `/x/../admin` to Tomcat and Jetty, which
    /// strip `;…` from each segment.
    Parameter,
}

impl Ambiguity {
    /// A short explanation for the 400 answer and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Ambiguity::Separator => "ambiguous path: encoded slash or backslash",
            Ambiguity::Control => "ambiguous path: encoded control byte",
            Ambiguity::DoubleEncoding => "ambiguous path: double percent-encoding",
            Ambiguity::BadEscape => "ambiguous path: malformed percent-escape",
            Ambiguity::NotUtf8 => "ambiguous path: not UTF-8 once decoded",
            Ambiguity::Parameter => "ambiguous path: `;` path parameter",
        }
    }
}

/// The first reason (in path order) `p` is ambiguous, or `None`. With
/// `separators_decoded`, encoded slashes and backslashes are not ambiguous: the caller
/// routes on them as separators ([`decode_separators_into`]) and forwards what it routed on.
pub fn path_ambiguity(p: &[u8], separators_decoded: bool) -> Option<Ambiguity> {
    let mut utf8 = Utf8::default();
    let mut i = 0;
    while i < p.len() {
        let mut c = p[i];
        i += 1;
        match c {
            b'\\' if !separators_decoded => return Some(Ambiguity::Separator),
            b';' => return Some(Ambiguity::Parameter),
            b'%' => {
                let hex = |j: usize| p.get(j).copied().and_then(hex_value);
                let (Some(h), Some(l)) = (hex(i), hex(i + 1)) else {
                    return Some(Ambiguity::BadEscape);
                };
                c = h << 4 | l;
                i += 2;
                match c {
                    b'/' | b'\\' if !separators_decoded => return Some(Ambiguity::Separator),
                    0x00..=0x1f | 0x7f => return Some(Ambiguity::Control),
                    b'%' if hex(i).is_some() && hex(i + 1).is_some() => {
                        return Some(Ambiguity::DoubleEncoding)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        if !utf8.push(c) {
            return Some(Ambiguity::NotUtf8);
        }
    }
    (!utf8.complete()).then_some(Ambiguity::NotUtf8)
}

/// Copy `raw` into `out` (at least as long) with every separator [`Ambiguity::Separator`]
/// names — `\`, `%2F`, `%5C` — written as `/`; returns the length.
pub fn decode_separators_into(raw: &[u8], out: &mut [u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        let escaped = matches!(
            raw.get(i..i + 3),
            Some([b'%', b'2', b'f' | b'F']) | Some([b'%', b'5', b'c' | b'C'])
        );
        out[n] = if escaped || raw[i] == b'\\' {
            b'/'
        } else {
            raw[i]
        };
        n += 1;
        i += if escaped { 3 } else { 1 };
    }
    n
}

/// A streaming UTF-8 validator (Unicode's table of well-formed byte sequences: no
/// overlong forms, no surrogates, nothing past U+10FFFF), so a path is checked while it
/// is decoded, without a buffer.
#[derive(Default)]
struct Utf8 {
    /// Continuation bytes still expected.
    need: u8,
    /// Bounds of the next continuation byte (they narrow after E0, ED, F0 and F4).
    lo: u8,
    hi: u8,
}

impl Utf8 {
    fn push(&mut self, b: u8) -> bool {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                return false;
            }
            self.need -= 1;
            (self.lo, self.hi) = (0x80, 0xbf);
            return true;
        }
        let (need, lo, hi) = match b {
            0x00..=0x7f => return true,
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return false,
        };
        (self.need, self.lo, self.hi) = (need, lo, hi);
        true
    }

    fn complete(&self) -> bool {
        self.need == 0
    }
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
        let cases: [Case; 14] = [
            (b"api.example.com", Some((b"api.example.com", false))),
            (b"API.Example.com:8080", Some((b"API.Example.com", true))),
            (b"[::1]:8080", Some((b"[::1]", false))),
            (b"[::1]", Some((b"[::1]", false))),
            (b"a.test:", Some((b"a.test", false))),
            (b"a.test:65535", Some((b"a.test", false))),
            (b"a b", None),
            (b"caf\xc3\xa9", None),
            // Ports that are not a number of 0-65535 (RFC 9112 3.2: 400).
            (b"a.test:65536", None),
            (b"a.test:http", None),
            (b"a.test:080800", None),
            (b"::1", None),
            (b"[::1]x", None),
            (b"[::1", None),
        ];
        for (raw, want) in cases {
            assert_eq!(host_parts(raw), want, "{raw:?}");
        }
        assert_eq!(host_parts(&[b'a'; MAX_HOST + 1]), None);
    }

    #[test]
    fn finds_ambiguous_paths() {
        use Ambiguity::*;
        // (path, what rejects it, what rejects it once separators are decoded)
        let cases: [(&str, Option<Ambiguity>, Option<Ambiguity>); 22] = [
            ("/admin", None, None),
            ("/a%20b/%C3%A9t%c3%a9", None, None),
            ("/100%25", None, None),
            ("/%25zz", None, None),
            ("/admin%2f", Some(Separator), None),
            ("/%2Fadmin", Some(Separator), None),
            ("/x/..%2fadmin", Some(Separator), None),
            ("/x\\..\\admin", Some(Separator), None),
            ("/x/%5c../admin", Some(Separator), None),
            ("/admin%00", Some(Control), Some(Control)),
            ("/a%09b", Some(Control), Some(Control)),
            ("/a%7F", Some(Control), Some(Control)),
            ("/%252e/admin", Some(DoubleEncoding), Some(DoubleEncoding)),
            ("/%252F", Some(DoubleEncoding), Some(DoubleEncoding)),
            ("/x/%c0%ae%c0%ae/admin", Some(NotUtf8), Some(NotUtf8)),
            ("/%e9t%e9", Some(NotUtf8), Some(NotUtf8)),
            ("/%ed%a0%80", Some(NotUtf8), Some(NotUtf8)),
            ("/%c3", Some(NotUtf8), Some(NotUtf8)),
            ("/x/..;/admin", Some(Parameter), Some(Parameter)),
            ("/a%zz", Some(BadEscape), Some(BadEscape)),
            ("/%u002e", Some(BadEscape), Some(BadEscape)),
            ("/a%4", Some(BadEscape), Some(BadEscape)),
        ];
        for (path, strict, decoded) in cases {
            assert_eq!(path_ambiguity(path.as_bytes(), false), strict, "{path}");
            assert_eq!(
                path_ambiguity(path.as_bytes(), true),
                decoded,
                "{path} (decode)"
            );
            // Only the plain fast path skips the check: never for an ambiguous path.
            assert!(
                strict.is_none() || !path_is_plain(path.as_bytes()),
                "{path}"
            );
        }
        let mut out = [0u8; 64];
        let n = decode_separators_into(b"/x\\..%2fadmin%5C%2F%2e", &mut out);
        assert_eq!(&out[..n], b"/x/../admin//%2e");
    }

    #[test]
    fn validates_utf8_as_core_does() {
        // Every sequence of up to three bytes from a set that covers each boundary of the
        // well-formedness table.
        let bytes = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
            0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
        ];
        let check = |seq: &[u8]| {
            let mut v = Utf8::default();
            let ours = seq.iter().all(|&b| v.push(b)) && v.complete();
            assert_eq!(ours, core::str::from_utf8(seq).is_ok(), "{seq:x?}");
        };
        for &a in &bytes {
            check(&[a]);
            for &b in &bytes {
                check(&[a, b]);
                for &c in &bytes {
                    check(&[a, b, c]);
                    check(&[a, b, c, 0x80]);
                    check(&[a, b, c, 0xbf]);
                }
            }
        }
    }

    #[test]
    fn matches_segments() {
        assert!(path_prefix_segment(b"/api", b"/api"));
        assert!(path_prefix_segment(b"/api/x", b"/api"));
        assert!(!path_prefix_segment(b"/apiary", b"/api"));
        assert!(path_prefix_segment(b"/api/x", b"/api/"));
    }
}
