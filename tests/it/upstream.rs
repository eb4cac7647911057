//! Upstream connections: real TLS (certificates made here with rcgen), mTLS, timeouts,
//! passive health and `start: unhealthy`.

use crate::support::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchyard::TlsBackend;

proxy_runtime::routes! {
    proxy Upstream;

    cluster tls_h1 {
        backends: ["127.0.0.1:1"],
        tls: { sni: "backend.test", ca: "target/tls-it/ca.pem", alpn: h1 },
    }
    cluster tls_h2 {
        backends: ["127.0.0.1:1"],
        tls: { sni: "backend.test", ca: "target/tls-it/ca.pem", alpn: h2 },
    }
    cluster mtls {
        backends: ["127.0.0.1:1"],
        tls: {
            sni: "backend.test", ca: "target/tls-it/ca.pem",
            client_cert: "target/tls-it/client.pem", client_key: "target/tls-it/client.key",
        },
    }
    cluster read_timeout { backends: ["127.0.0.1:1"], timeouts: { read: 500ms } }
    cluster connect_timeout { backends: ["127.0.0.1:1"], timeouts: { connect: 300ms } }
    cluster passive {
        backends: ["127.0.0.1:1", "127.0.0.1:2"],
        passive: { failures: 3, cooldown: 1s },
    }
    cluster bound { backends: ["127.0.0.1:1"], bind_to: "127.0.0.2", tcp_keepalive: 60s }
    // `passive: off`: the test counts requests the hanging backend receives, so it must
    // not be set aside after its first failure (the default).
    cluster flaky { backends: ["127.0.0.1:1", "127.0.0.1:2"], retries: 1, passive: off }
    cluster late {
        backends: ["127.0.0.1:1", "127.0.0.1:2"],
        health: tcp { every: 1s, start: unhealthy },
    }

    route tls_h1: path_prefix("/h1") => tls_h1;
    route tls_h2: path_prefix("/h2") => tls_h2;
    route mtls: path_prefix("/mtls") => mtls;
    route read_timeout: path_prefix("/read") => read_timeout;
    route connect_timeout: path_prefix("/connect") => connect_timeout;
    route passive: path_prefix("/passive") => passive;
    route bound: path_prefix("/bound") => bound;
    route flaky: path_prefix("/flaky") => flaky;
    route default: _ => late;
}

/// Certificates for every TLS test, made once per test run and written where the table
/// above reads them.
struct Pki {
    server: TlsBackend,
    wrong_name: TlsBackend,
    untrusted: TlsBackend,
    client_ca_pem: String,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        };
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = p.self_signed(&key).unwrap();
            (cert, key)
        };
        let leaf = |names: &[&str], usage, issuer: &(rcgen::Certificate, KeyPair)| {
            let mut p =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &issuer.0, &issuer.1).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_ca, client_ca, rogue_ca) =
            (ca("test server CA"), ca("test client CA"), ca("rogue CA"));
        let (server_pem, server_key) = leaf(
            &["backend.test"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &server_ca,
        );
        let (other_pem, other_key) = leaf(
            &["other.test"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &server_ca,
        );
        let (rogue_pem, rogue_key) = leaf(
            &["backend.test"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &rogue_ca,
        );
        let (client_pem, client_key) = leaf(
            &["client.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &client_ca,
        );
        std::fs::create_dir_all("target/tls-it").unwrap();
        std::fs::write("target/tls-it/ca.pem", server_ca.0.pem()).unwrap();
        std::fs::write("target/tls-it/client.pem", &client_pem).unwrap();
        std::fs::write("target/tls-it/client.key", &client_key).unwrap();
        let plain = |cert_pem: String, key_pem: String| TlsBackend {
            cert_pem,
            key_pem,
            client_ca_pem: None,
        };
        Pki {
            server: plain(server_pem, server_key),
            wrong_name: plain(other_pem, other_key),
            untrusted: plain(rogue_pem, rogue_key),
            client_ca_pem: client_ca.0.pem(),
        }
    })
}

/// A builder of the table above. The table names certificate files, so they are made
/// first, whichever test runs first.
fn upstream() -> proxy_runtime::Builder<Upstream> {
    pki();
    Upstream::builder()
}

fn tls_backend(name: &str, tls: &TlsBackend) -> Backend {
    Backend::spawn_tls(name, tls).expect("TLS backend starts")
}

fn answer(proxy: &proxy_runtime::Handle, path: &str) -> Answer {
    get(&client(), proxy.addr(), path, &[])
}

#[test]
fn tls_with_the_right_ca_and_sni_works_over_h1_and_h2() {
    let pki = pki();
    let b = tls_backend("secure", &pki.server);
    let proxy = upstream()
        .backends("tls_h1", [b.addr_string()])
        .backends("tls_h2", [b.addr_string()])
        .start()
        .expect("proxy starts");
    let h1 = answer(&proxy, "/h1");
    assert_eq!((h1.status, h1.backend.as_str()), (200, "secure"), "{h1:?}");
    let h2 = get(&client(), proxy.addr(), "/h2", &[]);
    assert_eq!((h2.status, h2.backend.as_str()), (200, "secure"), "{h2:?}");
    // The backend reports the version it served.
    let version = |path: &str| {
        client()
            .get(format!("http://{}{path}", proxy.addr()))
            .send()
            .unwrap()
            .headers()["x-version"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(version("/h1"), "HTTP/1.1");
    assert_eq!(version("/h2"), "HTTP/2.0");
}

#[test]
fn an_untrusted_or_misnamed_certificate_is_a_502() {
    let pki = pki();
    for (what, tls) in [
        ("untrusted", &pki.untrusted),
        ("wrong name", &pki.wrong_name),
    ] {
        let b = tls_backend("impostor", tls);
        let proxy = upstream()
            .backends("tls_h1", [b.addr_string()])
            .start()
            .expect("proxy starts");
        let a = answer(&proxy, "/h1");
        assert_eq!((a.status, a.backend.as_str()), (502, ""), "{what}: {a:?}");
        assert_eq!(b.hits(), 0, "{what}: no request reached the impostor");
    }
}

#[test]
fn mtls_presents_the_client_certificate_and_fails_without_it() {
    let pki = pki();
    let strict = TlsBackend {
        cert_pem: pki.server.cert_pem.clone(),
        key_pem: pki.server.key_pem.clone(),
        client_ca_pem: Some(pki.client_ca_pem.clone()),
    };
    let b = tls_backend("strict", &strict);
    let proxy = upstream()
        .backends("mtls", [b.addr_string()])
        .backends("tls_h1", [b.addr_string()])
        .start()
        .expect("proxy starts");
    let with_cert = client()
        .get(format!("http://{}/mtls", proxy.addr()))
        .send()
        .unwrap();
    assert_eq!(with_cert.status(), 200);
    assert_eq!(with_cert.headers()["x-client-cert"], "yes");
    // The same backend through a cluster without a client certificate: refused.
    let without = answer(&proxy, "/h1");
    assert_eq!(without.status, 502, "{without:?}");
}

#[test]
fn a_missing_certificate_file_stops_start_up_naming_it() {
    proxy_runtime::routes! {
        proxy Missing;
        cluster c { backends: ["127.0.0.1:1"], tls: { sni: "x.test", ca: "target/tls-it/does-not-exist.pem" } }
        route all: _ => c;
    }
    let err = Missing::builder()
        .start()
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(
        err.contains("cluster `c`") && err.contains("target/tls-it/does-not-exist.pem"),
        "{err}"
    );
}

#[test]
fn read_and_connect_timeouts_fire_within_their_bounds() {
    let stalling = Backend::spawn_stalling("stall").expect("stalling backend");
    let (hole, _fillers, _socket) = switchyard::black_hole().expect("black hole");
    let proxy = upstream()
        .backends("read_timeout", [stalling.addr_string()])
        .backends("connect_timeout", [hole.to_string()])
        .start()
        .expect("proxy starts");
    for (path, bound) in [
        ("/read", Duration::from_millis(500)),
        ("/connect", Duration::from_millis(300)),
    ] {
        let started = Instant::now();
        let a = answer(&proxy, path);
        let took = started.elapsed();
        assert_eq!(a.status, 504, "{path}: {a:?}");
        assert!(
            took >= bound && took < bound + Duration::from_secs(1),
            "{path}: answered after {took:?}, bound {bound:?}"
        );
    }
}

#[test]
fn passive_health_ejects_a_failing_backend_and_readmits_it_after_the_cooldown() {
    let (good, bad) = (spawn_backend("good"), spawn_backend("bad"));
    bad.set_status(500);
    let proxy = upstream()
        .backends("passive", [good.addr_string(), bad.addr_string()])
        .start()
        .expect("proxy starts");
    let c = client();
    // Round robin alternates: the third 500 from `bad` ejects it.
    let mut errors = 0;
    for _ in 0..6 {
        errors += usize::from(get(&c, proxy.addr(), "/passive", &[]).status == 500);
    }
    assert_eq!(errors, 3);
    let ejected_at = Instant::now();
    for _ in 0..20 {
        let a = get(&c, proxy.addr(), "/passive", &[]);
        assert_eq!(
            (a.status, a.backend.as_str()),
            (200, "good"),
            "bad is ejected"
        );
    }
    assert!(
        ejected_at.elapsed() < Duration::from_secs(1),
        "the check above outlived the cooldown"
    );
    // After the cooldown it gets traffic again (and, still failing, would be ejected again).
    bad.set_status(200);
    std::thread::sleep(
        Duration::from_millis(1100) - ejected_at.elapsed().min(Duration::from_millis(1100)),
    );
    let counts = spread(&c, proxy.addr(), "/passive", 20);
    assert_eq!(
        (counts.get("good"), counts.get("bad")),
        (Some(&10), Some(&10)),
        "{counts:?}"
    );
}

#[test]
fn start_unhealthy_keeps_backends_out_until_their_first_check_passes() {
    let alive = spawn_backend("alive");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let proxy = upstream()
        .backends("late", [alive.addr_string(), dead])
        .start()
        .expect("proxy starts");
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let a = get(&c, proxy.addr(), "/", &[]);
        // Before the first check: 503, never a failed connection to the dead backend.
        assert!(a.status == 200 || a.status == 503, "{a:?}");
        if a.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "alive never admitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let counts = spread(&c, proxy.addr(), "/", 100);
    assert_eq!(counts.get("alive"), Some(&100), "{counts:?}");
}

#[test]
fn bind_to_sets_the_local_address_of_upstream_connections() {
    let b = spawn_backend("seen");
    let proxy = upstream()
        .backends("bound", [b.addr_string()])
        .start()
        .expect("proxy starts");
    let resp = client()
        .get(format!("http://{}/bound", proxy.addr()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-peer-ip"],
        "127.0.0.2",
        "connected from the bind_to address"
    );
}

#[test]
fn a_failure_after_sending_is_retried_only_for_idempotent_requests() {
    let (hangup, good) = (
        Backend::spawn_hangup("hangup").expect("backend"),
        spawn_backend("good"),
    );
    let proxy = upstream()
        .backends("flaky", [hangup.addr_string(), good.addr_string()])
        .start()
        .expect("proxy starts");
    let c = client();
    // GET is idempotent: a request the first backend dropped is sent again to the other.
    for _ in 0..10 {
        let a = get(&c, proxy.addr(), "/flaky", &[]);
        assert_eq!((a.status, a.backend.as_str()), (200, "good"), "{a:?}");
    }
    assert!(
        hangup.hits() >= 5,
        "round robin sent GETs to the hanging backend too"
    );
    // POST is not: the requests that reached the hanging backend fail, none is repeated.
    let before = (hangup.hits(), good.hits());
    let statuses: Vec<u16> = (0..10)
        .map(|_| {
            c.post(format!("http://{}/flaky", proxy.addr()))
                .body("x")
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    let failed = statuses.iter().filter(|&&s| s == 502).count() as u64;
    assert_eq!(
        failed,
        hangup.hits() - before.0,
        "each POST the backend dropped failed: {statuses:?}"
    );
    assert_eq!(
        10 - failed,
        good.hits() - before.1,
        "no POST was sent twice: {statuses:?}"
    );
    assert!(failed > 0, "{statuses:?}");
}
