//! Shared helpers: backends, proxies and a real HTTP client, all on loopback.

pub use switchyard::{spawn_backend, Backend};

use std::time::Duration;

/// A blocking HTTP client that ignores proxy environment variables.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build HTTP client")
}

/// A client like [`client`] that reports redirects instead of following them.
pub fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build HTTP client")
}

/// The answer to one request, reduced to what tests assert on.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `x-backend`: which backend answered ("" when the proxy answered itself).
    pub backend: String,
    /// `x-path`: the path and query the backend received.
    pub path: String,
    pub body: String,
}

/// Send `GET http://{proxy}{path}` with the given headers.
pub fn get(
    client: &reqwest::blocking::Client,
    proxy: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = client.get(format!("http://{proxy}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().expect("request through the proxy");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (status, backend, path) = (
        resp.status().as_u16(),
        header("x-backend"),
        header("x-path"),
    );
    Answer {
        status,
        backend,
        path,
        body: resp.text().unwrap_or_default(),
    }
}

/// Send a raw HTTP/1.1 request (for request targets a client library would normalize).
pub fn raw(proxy: std::net::SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(proxy).expect("connect to proxy");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(request.as_bytes()).expect("write request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Count how many of `n` requests each backend answered.
pub fn spread(
    client: &reqwest::blocking::Client,
    proxy: std::net::SocketAddr,
    path: &str,
    n: usize,
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..n {
        let a = get(client, proxy, path, &[]);
        assert_eq!(a.status, 200, "request to {path}: {a:?}");
        *counts.entry(a.backend).or_insert(0) += 1;
    }
    counts
}

/// Send requests until backend `name` answers one; every answer meanwhile must be a 200.
/// Fails past `bound`.
pub fn wait_for_backend(
    c: &reqwest::blocking::Client,
    proxy: std::net::SocketAddr,
    path: &str,
    name: &str,
    bound: Duration,
) {
    let started = std::time::Instant::now();
    loop {
        let a = get(c, proxy, path, &[]);
        assert_eq!(a.status, 200, "{a:?}");
        if a.backend == name {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "{name} did not answer within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
