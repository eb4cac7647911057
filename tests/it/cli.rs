//! The command line: overrides, `--routes` and `--explain`, and their errors.

use proxy_runtime::inspect::{describe, explain};
use proxy_runtime::{Error, Launch};

proxy_runtime::routes! {
    proxy Cli;
    cluster api { backends: ["127.0.0.1:9001" weight 3, "127.0.0.1:9002"] }
    cluster web { backends: ["[::1]:9003"] }
    route api: host("api.example.com") => api;
    route default: _ => web;
}

/// The launch description `--backend` arguments make.
fn parse_overrides(args: &[&str]) -> Result<Launch<Cli>, Error> {
    let mut launch = Launch::default();
    for a in args {
        launch.backend_arg(a)?;
    }
    Ok(launch)
}

#[test]
fn overrides_parse_addresses_and_weights() {
    let Ok(o) = parse_overrides(&["api=127.0.0.1:1@5, 127.0.0.1:2"]) else {
        panic!("valid overrides");
    };
    assert!(o.is_overridden(0), "api overridden");
    let api = o.members(0);
    assert_eq!(
        api.iter()
            .map(|m| (m.addr.to_string(), m.weight))
            .collect::<Vec<_>>(),
        vec![("127.0.0.1:1".into(), 5), ("127.0.0.1:2".into(), 1)]
    );
    assert!(!o.is_overridden(1), "web keeps its declared backends");
}

#[test]
fn overrides_reject_what_they_cannot_use() {
    let err = |a: &str| match parse_overrides(&[a]) {
        Err(e) => e,
        Ok(_) => panic!("`{a}` accepted"),
    };
    assert!(matches!(
        err("apii=127.0.0.1:1"),
        Error::UnknownCluster { .. }
    ));
    assert_eq!(
        err("apii=127.0.0.1:1").to_string(),
        "unknown cluster `apii`; the table declares: api, web"
    );
    assert!(matches!(err("api=localhost:80"), Error::BadAddress { .. }));
    assert!(matches!(err("api=127.0.0.1:1@0"), Error::BadArgument(_)));
    assert!(matches!(err("api="), Error::EmptyCluster("api")));
    assert!(matches!(err("api"), Error::BadArgument(_)));
    assert!(matches!(
        err("api=127.0.0.1:1,127.0.0.1:1"),
        Error::BadArgument(_)
    ));
}

#[test]
fn routes_and_explain_describe_the_table() {
    let text = describe(&Launch::<Cli>::default());
    assert!(
        text.contains("  api      host(\"api.example.com\")  =>  api\n"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:9001 weight 3"), "{text}");
    assert!(text.contains("[::1]:9003 weight 1"), "{text}");
    // The failure defaults are stated (no `retries`, `passive` or `health` declared).
    assert!(text.contains("ambiguous paths: Reject\n"), "{text}");
    assert!(
        text.contains(
            "retries=each-backend-once-on-connect-failure passive=1 failures -> 10s aside"
        ),
        "{text}"
    );
    let e = explain::<Cli>("GET http://API.example.com/x/../y?z=1", &[], None).expect("explains");
    assert!(
        e.contains("route: api")
            && e.contains("cluster `api`")
            && e.contains("normalized path: /y"),
        "{e}"
    );
    assert!(explain::<Cli>("nonsense", &[], None).is_err());
}

/// Set in the environment of the child process `serve_runs_until_sigterm` starts.
const SERVE_CHILD: &str = "SWITCHYARD_TEST_SERVE_ARGS";

/// Not a test of its own: the child process of `serve_runs_until_sigterm`, which runs
/// `serve_from` (it exits the process) with the arguments it is given.
#[test]
#[ignore = "entry point of the child process of serve_runs_until_sigterm"]
fn serve_child() {
    if let Ok(args) = std::env::var(SERVE_CHILD) {
        proxy_runtime::serve_from::<Cli, _, _>(args.split(' '));
    }
}

// The production entry point — command line, Pingora's single-threaded schedulers (work
// stealing off by default), SIGTERM — in a process of its own, as a user runs it.
#[test]
fn serve_runs_until_sigterm() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let backend = crate::support::spawn_backend("b1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let args = format!(
        "switchyard --listen {addr} --threads 2 --backend web={} --backend api={}",
        backend.addr(),
        backend.addr()
    );
    /// Kills the child if the test fails before it has exited.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Reap(
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["cli::serve_child", "--exact", "--ignored", "--nocapture"])
            .env(SERVE_CHILD, &args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the child"),
    );
    let ready = switchyard::wait_for_port(addr, Duration::from_secs(20));
    assert!(ready.is_ok(), "serve did not listen on {addr}: {ready:?}");
    let client = crate::support::client();
    for _ in 0..20 {
        let a = crate::support::get(&client, addr, "/x", &[]);
        assert_eq!((a.status, a.backend.as_str()), (200, "b1"));
    }
    assert_eq!(backend.hits(), 20);

    // The shell's built-in `kill`: no `procps` needed.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.0.id())])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Pingora waits out the grace period (DEFAULT_GRACE_SECONDS) and exits.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "serve exited with {status}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after exit"
    );
}

mod reasons {
    proxy_runtime::routes! {
        proxy Reasons;
        cluster api { backends: ["127.0.0.1:9001", "127.0.0.1:9002"] }
        cluster web { backends: ["127.0.0.1:9101"] }
        let is_beta = cookie("beta") == "true" || query("beta") == "1";
        route v2:   host("api.example.com") && path_prefix("/v2") => api;
        route beta: is_beta && method(GET) => api;
        route docs: path_prefix("/docs") => web;
        route rest: _ => web;
    }
}

#[test]
fn explain_says_why_each_earlier_rule_did_not_match() {
    use reasons::Reasons;
    let launch = Launch::<Reasons>::default();
    let e = proxy_runtime::inspect::explain_in(
        &launch,
        "POST http://www.example.com/docs/../docs/intro?beta=0",
        &["cookie: beta=false".to_owned()],
        None,
    )
    .expect("explains");
    let want = "rules before it that did not match:\n  \
        v2: host is `www.example.com`, not `api.example.com`\n  \
        beta: predicate `is_beta` is false (cookie `beta` is `false`, which is not `true`; and query parameter `beta` is `0`, which is not `1`)\n\
        route: docs\n\
        target: cluster `web`\n\
        normalized path: /docs/intro\n";
    assert!(e.starts_with(want), "{e}");
    assert!(
        e.ends_with("backend now: 127.0.0.1:9101 (cluster `web`)"),
        "{e}"
    );
    // The same request as a GET with the cookie right: the second rule, and the first
    // backend of `api` for a proxy started now.
    let e = proxy_runtime::inspect::explain_in(
        &launch,
        "GET http://www.example.com/x",
        &["cookie: beta=true".to_owned()],
        None,
    )
    .expect("explains");
    assert!(
        e.contains("  v2: host is `www.example.com`, not `api.example.com`\nroute: beta\n"),
        "{e}"
    );
    assert!(e.contains("backend now: 127.0.0.1:900"), "{e}");
}

// SIGTERM drains: a request in flight when the signal comes is answered, with
// `Connection: close` on its kept-alive connection, no new connection is served, and the
// process exits once the grace period is over.
#[test]
fn sigterm_drains_requests_in_flight() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let backend = crate::support::spawn_backend("b1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let args = format!(
        "switchyard --listen {addr} --threads 2 --backend web={} --backend api={}",
        backend.addr(),
        backend.addr()
    );
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Reap(
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["cli::serve_child", "--exact", "--ignored", "--nocapture"])
            .env(SERVE_CHILD, &args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the child"),
    );
    assert!(switchyard::wait_for_port(addr, Duration::from_secs(20)).is_ok());
    // A kept-alive connection, used once before the signal.
    let mut kept = std::net::TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let ask = b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n";
    kept.write_all(ask).unwrap();
    let mut buf = [0u8; 4096];
    let n = kept.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A slow request on it, in flight when the signal comes.
    kept.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nx-delay-ms: 1500\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.0.id())])
        .status()
        .expect("kill");
    assert!(killed.success());
    // It is answered, and the connection told to close.
    let mut answer = Vec::new();
    let _ = kept.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("x-path: /slow"), "{answer}");
    // No new connection is accepted while draining.
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .map(|mut s| {
                let _ = s.write_all(ask);
                let mut b = [0u8; 16];
                s.set_read_timeout(Some(Duration::from_secs(2))).ok();
                matches!(s.read(&mut b), Ok(0) | Err(_))
            })
            .unwrap_or(true),
        "a new connection was served while draining"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "serve exited with {status}");
}

// Pingora's zero-downtime upgrade, as the README's recipe runs it: a second process started
// with `-u` takes the listening sockets over when the first gets SIGQUIT, under a steady
// stream of requests on new connections and on kept-alive ones.
#[test]
fn an_upgrade_under_load_loses_no_new_connection() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let backend = crate::support::spawn_backend("b1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let dir =
        std::env::temp_dir().join(format!("switchyard-upgrade-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("conf.yaml");
    std::fs::write(
        &conf,
        format!(
            "---\nversion: 1\nupgrade_sock: {}\npid_file: {}\ngrace_period_seconds: 1\ngraceful_shutdown_timeout_seconds: 2\n",
            dir.join("upgrade.sock").display(),
            dir.join("pid").display()
        ),
    )
    .unwrap();
    let args = format!(
        "switchyard -c {} --listen {addr} --threads 2 --backend web={} --backend api={}",
        conf.display(),
        backend.addr(),
        backend.addr()
    );
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let spawn = |args: String| {
        Reap(
            Command::new(std::env::current_exe().expect("test binary"))
                .args(["cli::serve_child", "--exact", "--ignored", "--nocapture"])
                .env(SERVE_CHILD, args)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("start a child"),
        )
    };
    let mut old = spawn(args.clone());
    assert!(switchyard::wait_for_port(addr, Duration::from_secs(20)).is_ok());

    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default()); // new ok/failed, kept ok/failed
    let fresh = {
        let (stop, counts) = (stop.clone(), counts.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let ok = (|| -> std::io::Result<bool> {
                    let mut s =
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                    s.set_read_timeout(Some(Duration::from_secs(5)))?;
                    s.write_all(b"GET /new HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
                    let mut out = Vec::new();
                    s.read_to_end(&mut out)?;
                    Ok(out.starts_with(b"HTTP/1.1 200"))
                })()
                .unwrap_or(false);
                counts[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let kept = {
        let (stop, counts) = (stop.clone(), counts.clone());
        std::thread::spawn(move || {
            let c = crate::support::client();
            while !stop.load(Ordering::Relaxed) {
                let ok = c
                    .get(format!("http://{addr}/kept"))
                    .send()
                    .is_ok_and(|r| r.status() == 200);
                counts[2 + usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // The new process waits for the sockets; SIGQUIT makes the old one hand them over.
    let mut new = spawn(format!("{args} -u"));
    std::thread::sleep(Duration::from_millis(500));
    let quit = Command::new("sh")
        .args(["-c", &format!("kill -QUIT {}", old.0.id())])
        .status()
        .expect("kill");
    assert!(quit.success());
    // The old process hands over, serves what it has for a while, and exits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = old.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the old process still runs 30 s after SIGQUIT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // And the new one serves alone for a while.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    fresh.join().unwrap();
    kept.join().unwrap();
    let [new_ok, new_failed, kept_ok, kept_failed] =
        [0, 1, 2, 3].map(|i| counts[i].load(Ordering::Relaxed));
    assert!(status.success(), "the old process exited with {status}");
    assert!(
        matches!(new.0.try_wait(), Ok(None)),
        "the new process is still serving"
    );
    assert_eq!(
        crate::support::get(&crate::support::client(), addr, "/after", &[]).status,
        200
    );
    assert!(
        new_ok > 200 && kept_ok > 200,
        "too little traffic: {new_ok} new, {kept_ok} kept"
    );
    assert_eq!(
        new_failed, 0,
        "requests on new connections failed ({new_ok} answered)"
    );
    // An idle kept-alive connection the old process closes can meet a request in flight;
    // nginx's reload loses about 3.5 such requests per reload under the same client.
    assert!(
        kept_failed <= 4,
        "{kept_failed} of {} kept-alive requests failed",
        kept_ok + kept_failed
    );
    eprintln!("upgrade: {new_ok} new-connection requests ({new_failed} failed), {kept_ok} kept-alive ({kept_failed} failed)");
    let _ = std::fs::remove_dir_all(&dir);
}
