//! What a request must look like: raw requests over a real socket, each asserting the
//! status and, for those forwarded, what the backend received. Malformed heads get a 4xx
//! (never forwarded), ambiguous paths follow the table's policy, pipelined requests are
//! all answered in order, and `Expect: 100-continue` gets its interim answer.

use crate::support::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

proxy_runtime::routes! {
    proxy Strict;
    cluster web { backends: ["127.0.0.1:1"] }
    cluster tracer { backends: ["127.0.0.1:1"] }
    route trace:   path_prefix("/trace") && method(TRACE) => tracer;
    route admin:   path_prefix("/admin") => respond(403, "admin\n");
    route default: _ => web;
}

mod decoding {
    proxy_runtime::routes! {
        proxy Decoding;
        ambiguous_paths: decode;
        cluster web { backends: ["127.0.0.1:1"] }
        route admin:   path_prefix("/admin") => respond(403, "admin\n");
        route default: _ => web;
    }
}

mod forwarding {
    proxy_runtime::routes! {
        proxy Forwarding;
        ambiguous_paths: forward;
        cluster web { backends: ["127.0.0.1:1"] }
        route admin:   path_prefix("/admin") => respond(403, "admin\n");
        route default: _ => web;
    }
}

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A connection that reads responses one by one: status line, headers, and a body framed
/// by `Content-Length` (what Pingora and the test backends send) or chunked.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(proxy: SocketAddr) -> Conn {
        let stream = TcpStream::connect(proxy).expect("connect to the proxy");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write the request");
    }

    /// Read until `buf` holds `n` bytes; false at end of stream or timeout.
    fn fill(&mut self, n: usize) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        while self.buf.len() < n {
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        true
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Some(line);
            }
            let want = self.buf.len() + 1;
            if !self.fill(want) {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        self.fill(n).then(|| self.buf.drain(..n).collect())
    }

    /// The next response (interim ones included); `None` when the connection closed first.
    fn reply(&mut self) -> Option<Reply> {
        let status_line = self.line()?;
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = HashMap::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':')?;
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
        let mut body = Vec::new();
        if (100..200).contains(&status) {
        } else if let Some(len) = headers.get("content-length") {
            body = self.take(len.parse().ok()?)?;
        } else if headers
            .get("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size = usize::from_str_radix(self.line()?.trim(), 16).ok()?;
                body.extend(self.take(size)?);
                self.line()?;
                if size == 0 {
                    break;
                }
            }
        }
        Some(Reply {
            status,
            headers,
            body,
        })
    }
}

/// Send `request` on a new connection and read one response.
fn exchange(proxy: SocketAddr, request: &[u8]) -> Reply {
    let mut conn = Conn::open(proxy);
    conn.send(request);
    conn.reply().unwrap_or_else(|| {
        panic!(
            "no answer to {:?}",
            String::from_utf8_lossy(request).escape_debug().to_string()
        )
    })
}

fn start<T: proxy_runtime::Table<Hooks = proxy_runtime::NoHooks>>(
    web: &Backend,
) -> proxy_runtime::Handle {
    let mut b = proxy_runtime::Builder::<T>::default().backends("web", [web.addr_string()]);
    if T::CLUSTERS.iter().any(|c| c.name == "tracer") {
        b = b.backends("tracer", [web.addr_string()]);
    }
    b.start().expect("proxy starts")
}

/// `GET {target}` with a `Host`, as raw bytes.
fn get_raw(target: &[u8]) -> Vec<u8> {
    [b"GET ", target, b" HTTP/1.1\r\nHost: a.test\r\n\r\n"].concat()
}

#[test]
fn malformed_heads_get_a_4xx_and_never_reach_the_backend() {
    let web = spawn_backend("web");
    let proxy = start::<Strict>(&web);
    // (what is wrong, the raw request, the status)
    let cases: [(&str, &[u8], u16); 22] = [
        ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n", 400),
        (
            "two Host lines",
            b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            400,
        ),
        ("port out of range", b"GET / HTTP/1.1\r\nHost: a.test:99999\r\n\r\n", 400),
        ("port not a number", b"GET / HTTP/1.1\r\nHost: a.test:http\r\n\r\n", 400),
        ("space in Host", b"GET / HTTP/1.1\r\nHost: a b.test\r\n\r\n", 400),
        ("bare IPv6 Host", b"GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 400),
        ("relative target", b"GET admin HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("dot target", b"GET ./admin HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("* with GET", b"GET * HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("query-only target", b"GET ?x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("tab in the target", b"GET /a\tb HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("NUL in the target", b"GET /a\0b HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        ("control byte in the target", b"GET /a\x01b HTTP/1.1\r\nHost: a.test\r\n\r\n", 400),
        (
            "Content-Length values that differ",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
        ),
        (
            "Content-Length not a number",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3x\r\n\r\nabc",
            400,
        ),
        (
            "a transfer coding other than chunked",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            "chunked twice",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        ("TRACE", b"TRACE / HTTP/1.1\r\nHost: a.test\r\n\r\n", 405),
        ("CONNECT", b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", 405),
        (
            "an unknown expectation",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n",
            417,
        ),
        (
            "Host differs from the absolute-form authority",
            b"GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
            400,
        ),
        ("userinfo in Host", b"GET / HTTP/1.1\r\nHost: u@a.test\r\n\r\n", 400),
    ];
    for (what, request, status) in cases {
        let r = exchange(proxy.addr(), request);
        assert_eq!(r.status, status, "{what}: {r:?}");
        assert_eq!(r.header("x-backend"), "", "{what}: forwarded");
        // Our 405 lists what is allowed (Pingora's own for CONNECT does not).
        if what == "TRACE" {
            assert!(r.header("allow").contains("GET"), "{what}: {r:?}");
        }
    }
    assert_eq!(web.hits(), 0, "no malformed request reached the backend");
}

#[test]
fn well_formed_requests_are_forwarded_as_the_backend_should_read_them() {
    let web = spawn_backend("web");
    let proxy = start::<Strict>(&web);
    // (what, raw request, path the backend received, Content-Length lines it received,
    // body bytes it received)
    let cases: [(&str, &[u8], &str, &str, &str); 9] = [
        ("plain", b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n", "/a", "", "0"),
        ("HTTP/1.0 needs no Host", b"GET /a HTTP/1.0\r\n\r\n", "/a", "", "0"),
        ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n", "*", "", "0"),
        (
            "absolute form",
            b"GET http://a.test/abs?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "/abs?q=1",
            "",
            "0",
        ),
        (
            // Pingora percent-encodes a raw space before routing sees it: the backend
            // reads the path the client meant, in its proper form.
            "a raw space, re-encoded",
            b"GET /a b HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "/a%20b",
            "",
            "0",
        ),
        (
            "identical Content-Length lines collapse to one",
            b"POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            "/p",
            "3",
            "3",
        ),
        (
            "a Content-Length list of one value collapses",
            b"POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3, 3\r\n\r\nabc",
            "/p",
            "3",
            "3",
        ),
        (
            // RFC 9112 6.1: Transfer-Encoding wins; Content-Length is not forwarded.
            "chunked beside Content-Length",
            b"POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "/p",
            "",
            "3",
        ),
        (
            "a rule that names TRACE lets it through",
            b"TRACE /trace HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "/trace",
            "",
            "0",
        ),
    ];
    for (what, request, path, lengths, body) in cases {
        let r = exchange(proxy.addr(), request);
        assert_eq!(
            (r.status, r.header("x-backend")),
            (200, "web"),
            "{what}: {r:?}"
        );
        assert_eq!(r.header("x-path"), path, "{what}");
        assert_eq!(r.header("x-content-length"), lengths, "{what}");
        assert_eq!(r.header("x-body-len"), body, "{what}");
    }
}

/// Paths a backend may read as `/admin` (or otherwise than routing does).
const AMBIGUOUS: [&str; 11] = [
    "/admin%2f",
    "/%2Fadmin",
    "/x/..%2fadmin",
    "/x\\..\\admin",
    "/x/%5c../admin",
    "/admin%00",
    "/%252e/admin",
    "/x/%c0%ae%c0%ae/admin",
    "/x/..;/admin",
    "/admin;jsessionid=1",
    "/%u002e/admin",
];

#[test]
fn ambiguous_paths_are_refused_by_default() {
    let web = spawn_backend("web");
    let proxy = start::<Strict>(&web);
    for path in AMBIGUOUS {
        let r = exchange(proxy.addr(), &get_raw(path.as_bytes()));
        assert_eq!(r.status, 400, "{path}: {r:?}");
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.starts_with("ambiguous path"), "{path}: {body}");
    }
    assert_eq!(web.hits(), 0);
    // What is not ambiguous still passes: escapes of other bytes, UTF-8, `%25` alone.
    for path in ["/a%20b", "/caf%C3%A9", "/100%25", "/x/../a"] {
        let r = exchange(proxy.addr(), &get_raw(path.as_bytes()));
        assert_eq!((r.status, r.header("x-path")), (200, path), "{path}");
    }
}

#[test]
fn ambiguous_paths_policy_forward_sends_them_unchanged() {
    let web = spawn_backend("web");
    let proxy = start::<forwarding::Forwarding>(&web);
    for path in AMBIGUOUS {
        let r = exchange(proxy.addr(), &get_raw(path.as_bytes()));
        // Routing reads none of them as `/admin`, and the backend gets the bytes sent.
        assert_eq!(
            (r.status, r.header("x-backend")),
            (200, "web"),
            "{path}: {r:?}"
        );
        assert_eq!(r.header("x-path"), path, "{path}");
    }
}

#[test]
fn ambiguous_paths_policy_decode_routes_and_forwards_separators_as_slashes() {
    let web = spawn_backend("web");
    let proxy = start::<decoding::Decoding>(&web);
    // Encoded separators become separators: these are `/admin`.
    for path in [
        "/admin%2f",
        "/%2Fadmin",
        "/x/..%2fadmin",
        "/x\\..\\admin",
        "/x/%5c../admin",
    ] {
        let r = exchange(proxy.addr(), &get_raw(path.as_bytes()));
        assert_eq!(r.status, 403, "{path}: {r:?}");
    }
    // The backend gets the path routing used.
    let r = exchange(proxy.addr(), &get_raw(b"/static%2Fa%5cb.css?v=1"));
    assert_eq!(
        (r.status, r.header("x-path")),
        (200, "/static/a/b.css?v=1"),
        "{r:?}"
    );
    // The other ambiguities cannot be decoded into one meaning: still 400.
    for path in [
        "/admin%00",
        "/%252e/admin",
        "/x/%c0%ae%c0%ae/admin",
        "/x/..;/admin",
    ] {
        let r = exchange(proxy.addr(), &get_raw(path.as_bytes()));
        assert_eq!(r.status, 400, "{path}: {r:?}");
    }
}

/// `n` requests `GET /{dir}/{i}` back to back, to be sent in one write (pipelined).
fn burst(dir: &str, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("GET /{dir}/{i} HTTP/1.1\r\nHost: a.test\r\n\r\n").into_bytes())
        .collect()
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let web = spawn_backend("web");
    let proxy = start::<Strict>(&web);
    let mut conn = Conn::open(proxy.addr());
    conn.send(&burst("p", 100));
    for i in 0..100 {
        let r = conn
            .reply()
            .unwrap_or_else(|| panic!("answer {i} of 100 missing"));
        assert_eq!(
            (r.status, r.header("x-path")),
            (200, format!("/p/{i}").as_str())
        );
    }
    // A body, then a request behind it in the same segment: both answered.
    conn.send(
        b"POST /with-body HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello\
          GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n",
    );
    let first = conn.reply().expect("the POST is answered");
    assert_eq!(
        (
            first.status,
            first.header("x-path"),
            first.header("x-body-len")
        ),
        (200, "/with-body", "5")
    );
    let second = conn.reply().expect("the GET behind it is answered");
    assert_eq!((second.status, second.header("x-path")), (200, "/after"));
    // Fixed answers and refusals keep the order too.
    conn.send(
        b"GET /admin HTTP/1.1\r\nHost: a.test\r\n\r\nGET /last HTTP/1.1\r\nHost: a.test\r\n\r\n",
    );
    assert_eq!(conn.reply().expect("403").status, 403);
    assert_eq!(conn.reply().expect("last").header("x-path"), "/last");
}

#[test]
fn a_connection_serves_at_most_1000_requests() {
    // nginx's `keepalive_requests` default: what one client holds is bounded, pipelined
    // or not. After the 1,000th answer the connection closes; the 1,001st request is not
    // answered on it (the client sends it again on a new one).
    let web = spawn_backend("web");
    let proxy = start::<Strict>(&web);
    let mut conn = Conn::open(proxy.addr());
    conn.send(&burst("k", 1001));
    for i in 0..1000 {
        let r = conn.reply().unwrap_or_else(|| panic!("answer {i} missing"));
        assert_eq!(r.header("x-path"), format!("/k/{i}"));
    }
    assert!(conn.reply().is_none(), "a 1,001st answer");
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let web = spawn_backend("web");
    let proxy = start::<Strict>(&web);
    let mut conn = Conn::open(proxy.addr());
    conn.send(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    // The client waits for the interim answer before it sends the body.
    let interim = conn.reply().expect("100 Continue before the body");
    assert_eq!(interim.status, 100, "{interim:?}");
    conn.send(b"hello");
    let r = conn.reply().expect("the final answer");
    assert_eq!(
        (r.status, r.header("x-body-len"), r.header("x-expect")),
        (200, "5", ""),
        "the body arrived and `Expect` was not forwarded: {r:?}"
    );
}
