//! TLS termination through real sockets: certificates chosen by SNI with a default, RSA
//! and ECDSA keys, TLS 1.2 and 1.3, HTTP/2 by ALPN, h2c on a plain listener, mTLS with the
//! verified subject in a hook, certificate reload with a connection opened before it,
//! and start-up errors naming the file.

use crate::pki::{self, Ca, KeyKind};
use crate::support::*;
use proxy_runtime::hooks::{Hooks, ResponseHeader, Result, Session};
use proxy_runtime::tls::ClientAuth;
use reqwest::Version;

proxy_runtime::routes! {
    proxy Edge(ShowClient);
    cluster web { backends: ["127.0.0.1:1"] }
    route default: _ => web;
}

/// Puts the verified client certificate's common name in `x-client-cn`.
#[derive(Default)]
pub struct ShowClient;

impl Hooks<Edge> for ShowClient {
    async fn response(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        _ctx: &mut EdgeCtx,
    ) -> Result<()> {
        let cn = proxy_runtime::tls::client_cert(session)
            .and_then(|c| c.common_name.clone())
            .unwrap_or_else(|| "-".into());
        response.insert_header("x-client-cn", cn)?;
        Ok(())
    }
}

/// Two certificates by one CA: `a.test` (ECDSA, the default) and `*.b.test` (RSA).
struct Site {
    ca: Ca,
    a: pki::Leaf,
    b: pki::Leaf,
    dir: std::path::PathBuf,
}

fn site(test: &str) -> Site {
    let ca = Ca::new("edge test CA");
    let a = ca.server(&["a.test"], KeyKind::Ecdsa);
    let b = ca.server(&["*.b.test", "b.test"], KeyKind::Rsa);
    let dir = pki::dir(test);
    a.write(&dir, "a");
    b.write(&dir, "b");
    Site { ca, a, b, dir }
}

fn edge(site: &Site, backend: &Backend) -> proxy_runtime::Builder<Edge> {
    Edge::builder()
        .backends("web", [backend.addr_string()])
        .listen_tls("127.0.0.1:0")
        .cert(site.dir.join("a.pem"), site.dir.join("a.key"))
        .cert(site.dir.join("b.pem"), site.dir.join("b.key"))
}

#[test]
fn sni_picks_the_certificate_and_the_first_is_the_default() {
    let web = spawn_backend("web-1");
    let s = site("sni");
    let proxy = edge(&s, &web).start().expect("proxy starts");
    let addr = proxy.addr();
    // (SNI sent, certificate expected)
    let cases: &[(Option<&str>, &pki::Leaf)] = &[
        (Some("a.test"), &s.a),
        (Some("A.TEST"), &s.a),       // names are case-insensitive
        (Some("www.b.test"), &s.b),   // the wildcard, RSA key
        (Some("b.test"), &s.b),       // its exact name
        (Some("x.www.b.test"), &s.a), // a wildcard covers one label only: default
        (Some("unknown.test"), &s.a), // no certificate names it: the default
        (None, &s.a),                 // no SNI: the default
    ];
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        for (sni, expected) in cases {
            let (mut conn, served) = pki::connect(addr, *sni, version);
            assert!(
                served == expected.der(),
                "SNI {sni:?} over {version:?}: wrong certificate served"
            );
            let (status, backend) = pki::request(&mut conn, sni.unwrap_or("a.test"), "/x");
            assert_eq!((status, backend.as_str()), (200, "web-1"), "{sni:?}");
        }
    }
}

#[test]
fn h2_by_alpn_and_http1_on_the_same_tls_listener() {
    let web = spawn_backend("web-1");
    let s = site("alpn");
    let proxy = edge(&s, &web).start().expect("proxy starts");
    let port = proxy.addr().port();
    for (http1_only, version) in [(false, Version::HTTP_2), (true, Version::HTTP_11)] {
        let c = pki::https_client(
            &s.ca.pem(),
            proxy.addr(),
            &["a.test", "www.b.test"],
            None,
            http1_only,
        );
        for host in ["a.test", "www.b.test"] {
            let r = c
                .get(format!("https://{host}:{port}/p?q=1"))
                .send()
                .expect("HTTPS request verified against the CA");
            assert_eq!(r.version(), version, "{host}");
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["x-backend"], "web-1");
            assert_eq!(r.headers()["x-path"], "/p?q=1");
            assert_eq!(r.headers()["x-req-x-forwarded-proto"], "https");
            assert_eq!(
                r.headers()["x-client-cn"],
                "-",
                "no client certificate asked for"
            );
        }
    }
    // Without h2 the listener offers HTTP/1.1 only.
    let proxy = edge(&s, &web).h2(false).start().expect("proxy starts");
    let c = pki::https_client(&s.ca.pem(), proxy.addr(), &["a.test"], None, false);
    let r = c
        .get(format!("https://a.test:{}/", proxy.addr().port()))
        .send()
        .unwrap();
    assert_eq!(r.version(), Version::HTTP_11);
}

#[test]
fn h2c_with_prior_knowledge_beside_http1_on_a_plain_listener() {
    let web = spawn_backend("web-1");
    let proxy = Edge::builder()
        .backends("web", [web.addr_string()])
        .h2c(true)
        .start()
        .expect("proxy starts");
    let h2c = reqwest::blocking::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2c
        .get(format!("http://{}/h2c", proxy.addr()))
        .send()
        .expect("h2c request");
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.headers()["x-backend"], "web-1");
    assert_eq!(r.headers()["x-path"], "/h2c");
    let a = get(&client(), proxy.addr(), "/h1", &[]);
    assert_eq!(
        (a.status, a.backend.as_str()),
        (200, "web-1"),
        "HTTP/1.1 still served"
    );

    // Off (the default), prior knowledge fails and HTTP/1.1 works.
    let proxy = Edge::builder()
        .backends("web", [web.addr_string()])
        .start()
        .expect("proxy starts");
    assert!(h2c.get(format!("http://{}/", proxy.addr())).send().is_err());
    assert_eq!(get(&client(), proxy.addr(), "/", &[]).status, 200);
}

#[test]
fn mtls_accepts_the_cas_clients_and_refuses_others() {
    let web = spawn_backend("web-1");
    let s = site("mtls");
    let clients = Ca::new("client CA");
    std::fs::write(s.dir.join("clients.pem"), clients.pem()).unwrap();
    let alice = clients.client("alice");
    let mallory = Ca::new("rogue CA").client("mallory");
    let proxy = edge(&s, &web)
        .client_auth(ClientAuth::Required(s.dir.join("clients.pem")))
        .start()
        .expect("proxy starts");
    let url = format!("https://a.test:{}/", proxy.addr().port());
    let with = |id| pki::https_client(&s.ca.pem(), proxy.addr(), &["a.test"], id, false);
    let r = with(Some(&alice))
        .get(&url)
        .send()
        .expect("alice is let in");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-backend"], "web-1");
    assert_eq!(
        r.headers()["x-client-cn"],
        "alice",
        "the hook sees the verified subject"
    );
    assert!(
        with(Some(&mallory)).get(&url).send().is_err(),
        "another CA's client"
    );
    assert!(
        with(None).get(&url).send().is_err(),
        "no client certificate"
    );
    assert_eq!(web.hits(), 1, "refused clients never reach the backend");

    // Optional: served without a certificate, still refused with a bad one.
    let proxy = edge(&s, &web)
        .client_auth(ClientAuth::Optional(s.dir.join("clients.pem")))
        .start()
        .expect("proxy starts");
    let url = format!("https://a.test:{}/", proxy.addr().port());
    let with = |id| pki::https_client(&s.ca.pem(), proxy.addr(), &["a.test"], id, false);
    let r = with(None)
        .get(&url)
        .send()
        .expect("served without a certificate");
    assert_eq!(r.headers()["x-client-cn"], "-");
    let r = with(Some(&alice)).get(&url).send().unwrap();
    assert_eq!(r.headers()["x-client-cn"], "alice");
    assert!(with(Some(&mallory)).get(&url).send().is_err());
}

#[test]
fn reload_swaps_the_certificate_and_keeps_open_connections() {
    let web = spawn_backend("web-1");
    let s = site("reload");
    let proxy = edge(&s, &web).start().expect("proxy starts");
    let tls13 = &rustls::version::TLS13;
    let (mut before, served) = pki::connect(proxy.addr(), Some("a.test"), tls13);
    assert!(served == s.a.der());
    assert_eq!(pki::request(&mut before, "a.test", "/1").0, 200);

    // A renewed certificate for a.test, written over the old files.
    let renewed = s.ca.server(&["a.test", "new.a.test"], KeyKind::Rsa);
    renewed.write(&s.dir, "a");
    proxy.reload_tls().expect("reload");
    let (mut after, served) = pki::connect(proxy.addr(), Some("a.test"), tls13);
    assert!(
        served == renewed.der(),
        "a handshake after the reload gets the new one"
    );
    assert_eq!(pki::request(&mut after, "a.test", "/2").0, 200);
    assert_eq!(
        pki::request(&mut before, "a.test", "/3"),
        (200, "web-1".to_owned()),
        "the connection opened before the reload keeps working"
    );

    // A reload that fails keeps serving what it served.
    std::fs::write(s.dir.join("a.key"), "not a key").unwrap();
    let err = proxy
        .reload_tls()
        .expect_err("a broken key is refused")
        .to_string();
    assert!(err.contains("a.key"), "{err}");
    let (_, served) = pki::connect(proxy.addr(), Some("a.test"), tls13);
    assert!(served == renewed.der());
}

#[test]
fn bad_certificate_files_stop_start_up_naming_the_file() {
    let web = spawn_backend("web-1");
    let s = site("files");
    let other = s.ca.server(&["c.test"], KeyKind::Ecdsa);
    other.write(&s.dir, "c");
    std::fs::write(s.dir.join("empty.pem"), "").unwrap();
    let d = |f: &str| s.dir.join(f);
    // (certificate, key, the file the error names, what it says)
    let cases = [
        (d("missing.pem"), d("a.key"), "missing.pem`", "cannot read"),
        (
            d("empty.pem"),
            d("a.key"),
            "empty.pem`",
            "no certificate in the file",
        ),
        (
            d("a.pem"),
            d("a.pem"),
            "a.pem`",
            "no private key in the file",
        ),
        (d("a.pem"), d("c.key"), "c.key`", "is not the key of"),
    ];
    for (cert, key, file, expected) in cases {
        let err = Edge::builder()
            .backends("web", [web.addr_string()])
            .listen_tls("127.0.0.1:0")
            .cert(&cert, &key)
            .start()
            .err()
            .expect("start-up fails")
            .to_string();
        assert!(
            err.contains(file) && err.contains(expected),
            "{file} {expected}: {err}"
        );
    }
    let err = Edge::builder()
        .backends("web", [web.addr_string()])
        .listen_tls("127.0.0.1:0")
        .start()
        .err()
        .expect("no certificate")
        .to_string();
    assert!(err.contains("at least one certificate"), "{err}");
}

mod listener_rules {
    use super::*;
    use proxy_runtime::{Arrival, Table, Target};

    proxy_runtime::routes! {
        proxy Secure;
        cluster web { backends: ["127.0.0.1:1"] }
        cluster admin { backends: ["127.0.0.1:1"] }
        // Plain HTTP is sent to HTTPS, on the same host and URI.
        route plain: !tls => redirect(308, "https://{host}{uri}");
        route admin: port(8443) && path_prefix("/admin") => admin;
        route default: _ => web;
    }

    #[test]
    fn plain_requests_are_redirected_and_tls_ones_served() {
        let web = spawn_backend("web-1");
        let s = site("redirect");
        let proxy = Secure::builder()
            .backends("web", [web.addr_string()])
            .listen("127.0.0.1:0")
            .listen_tls("127.0.0.1:0")
            .cert(s.dir.join("a.pem"), s.dir.join("a.key"))
            .start()
            .expect("proxy starts");
        let (plain, tls) = (proxy.addrs()[0], proxy.addrs()[1]);
        let r = no_redirects()
            .get(format!("http://{plain}/docs/x?y=1"))
            .header("host", "A.test:80")
            .send()
            .unwrap();
        assert_eq!(r.status(), 308);
        assert_eq!(r.headers()["location"], "https://a.test/docs/x?y=1");
        assert_eq!(web.hits(), 0);
        let c = pki::https_client(&s.ca.pem(), tls, &["a.test"], None, false);
        let r = c
            .get(format!("https://a.test:{}/docs/x?y=1", tls.port()))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-backend"], "web-1");
    }

    #[test]
    fn decide_at_sees_the_listener() {
        let req = |path: &str| {
            let mut r = pingora_http::RequestHeader::build("GET", path.as_bytes(), None).unwrap();
            r.insert_header("host", "a.test").unwrap();
            r
        };
        let at = |tls, port| Arrival { tls, port };
        // (path, listener, expected route)
        let cases = [
            ("/admin", at(false, 8443), SecureRoute::Plain),
            ("/admin", at(true, 8443), SecureRoute::Admin),
            ("/admin/x", at(true, 8443), SecureRoute::Admin),
            ("/admin", at(true, 443), SecureRoute::Default),
            ("/other", at(true, 8443), SecureRoute::Default),
        ];
        for (path, arrival, expected) in cases {
            let d = Secure::decide_at(&req(path), None, arrival).unwrap();
            assert_eq!(d.route, Some(expected), "{path} {arrival:?}");
        }
        // `decide` knows no listener: a plain one.
        let d = Secure::decide(&req("/admin"), None).unwrap();
        assert_eq!(d.route, Some(SecureRoute::Plain));
        assert!(matches!(d.target, Target::Redirect(_)));
        const { assert!(<Secure as Table>::LISTENER_PORT) };
        const { assert!(!<Edge as Table>::LISTENER_PORT) };
    }
}
