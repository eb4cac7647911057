//! The production entry point in processes of their own, as a user runs it: `serve_from`
//! (command line, Pingora's single-threaded schedulers, signals) in a child process of
//! this test binary. SIGTERM stops it, draining requests in flight; a second process
//! started with `-u` takes over from the first on SIGQUIT.

use crate::cli::Cli;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the child processes: the command line they serve.
const SERVE_CHILD: &str = "SWITCHYARD_TEST_SERVE_ARGS";

/// Not a test of its own: the child process the tests below start, which runs
/// `serve_from` (it exits the process) with the arguments it is given.
#[test]
#[ignore = "entry point of the child processes of the lifecycle tests"]
fn serve_child() {
    if let Ok(args) = std::env::var(SERVE_CHILD) {
        proxy_runtime::serve_from::<Cli, _, _>(args.split(' '));
    }
}

/// A `serve_from` child process, killed if the test fails before it has exited.
struct Child(std::process::Child);

impl Child {
    /// Serve `args` (a command line, words split at spaces) in a child process.
    fn serve(args: &str) -> Child {
        Child(
            Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "lifecycle::serve_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env(SERVE_CHILD, args)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("start a child"),
        )
    }

    /// Send it `signal` (`TERM`, `QUIT`) with the shell's built-in `kill` (no `procps`).
    fn signal(&self, signal: &str) {
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", self.0.id())])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal}");
    }

    /// Wait for it to exit, failing past `within`.
    fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the child still runs after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A free loopback address, and the command line that serves the `Cli` table on it with
/// both clusters pointed at `backend`.
fn serve_args(backend: &switchyard::Backend) -> (SocketAddr, String) {
    let addr = free_addr();
    let args = format!(
        "switchyard --listen {addr} --threads 2 --backend web={} --backend api={}",
        backend.addr(),
        backend.addr()
    );
    (addr, args)
}

/// A loopback address no one listens on (a port taken and released).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

fn wait_ready(addr: SocketAddr) {
    let ready = switchyard::wait_for_port(addr, Duration::from_secs(20));
    assert!(ready.is_ok(), "serve did not listen on {addr}: {ready:?}");
}

#[test]
fn serve_runs_until_sigterm() {
    let backend = crate::support::spawn_backend("b1");
    let (addr, args) = serve_args(&backend);
    let mut child = Child::serve(&args);
    wait_ready(addr);
    let client = crate::support::client();
    for _ in 0..20 {
        let a = crate::support::get(&client, addr, "/x", &[]);
        assert_eq!((a.status, a.backend.as_str()), (200, "b1"));
    }
    assert_eq!(backend.hits(), 20);
    child.signal("TERM");
    // Pingora waits out the grace period (DEFAULT_GRACE_SECONDS) and exits.
    let status = child.exit_within(Duration::from_secs(20));
    assert!(status.success(), "serve exited with {status}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after exit"
    );
}

// SIGTERM drains: a request in flight when the signal comes is answered, with
// `Connection: close` on its kept-alive connection, no new connection is served, and the
// process exits once the grace period is over.
#[test]
fn sigterm_drains_requests_in_flight() {
    let backend = crate::support::spawn_backend("b1");
    let (addr, args) = serve_args(&backend);
    let mut child = Child::serve(&args);
    wait_ready(addr);
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
    child.signal("TERM");
    // It is answered, and the connection told to close.
    let mut answer = Vec::new();
    let _ = kept.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("x-path: /slow"), "{answer}");
    // No new connection is served while draining.
    let served = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map(|mut s| {
            let _ = s.write_all(ask);
            let mut b = [0u8; 16];
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            matches!(s.read(&mut b), Ok(n) if n > 0)
        })
        .unwrap_or(false);
    assert!(!served, "a new connection was served while draining");
    let status = child.exit_within(Duration::from_secs(20));
    assert!(status.success(), "serve exited with {status}");
}

// Pingora's zero-downtime upgrade, as the README's recipe runs it: a second process started
// with `-u` takes the listening sockets over when the first gets SIGQUIT, under a steady
// stream of requests on new connections and on kept-alive ones.
#[test]
fn an_upgrade_under_load_loses_no_new_connection() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let backend = crate::support::spawn_backend("b1");
    let (addr, args) = serve_args(&backend);
    let dir = std::env::temp_dir().join(format!(
        "switchyard-upgrade-{}-{}",
        std::process::id(),
        addr.port()
    ));
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
    let args = format!("{args} -c {}", conf.display());
    let mut old = Child::serve(&args);
    wait_ready(addr);

    let stop = Arc::new(AtomicBool::new(false));
    // new ok, new failed, kept ok, kept failed
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
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
    // The new process waits for the sockets; SIGQUIT makes the old one hand them over,
    // serve beside it for a while, drain and exit.
    let mut new = Child::serve(&format!("{args} -u"));
    std::thread::sleep(Duration::from_millis(500));
    old.signal("QUIT");
    let status = old.exit_within(Duration::from_secs(30));
    // The new one serves alone for a while.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    fresh.join().unwrap();
    kept.join().unwrap();
    let [new_ok, new_failed, kept_ok, kept_failed] =
        [0, 1, 2, 3].map(|i| counts[i].load(Ordering::Relaxed));
    assert!(status.success(), "the old process exited with {status}");
    assert!(new.running(), "the new process is still serving");
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
    eprintln!(
        "upgrade: {new_ok} new-connection requests ({new_failed} failed), {kept_ok} kept-alive ({kept_failed} failed)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// SIGHUP reads the TLS certificate files again: the next handshake gets the renewed
// certificate, and a connection opened before the signal keeps working.
#[test]
fn sighup_reloads_the_tls_certificates() {
    use crate::pki::{self, Ca, KeyKind};
    let backend = crate::support::spawn_backend("b1");
    let ca = Ca::new("sighup test CA");
    let dir = pki::dir("sighup");
    let old = ca.server(&["a.test"], KeyKind::Ecdsa);
    let (cert, key) = old.write(&dir, "a");
    let addr = free_addr();
    let args = format!(
        "switchyard --listen-tls {addr} --cert {},{} --threads 1 --backend web={b} --backend api={b}",
        cert.display(),
        key.display(),
        b = backend.addr()
    );
    let mut child = Child::serve(&args);
    wait_ready(addr);
    let tls13 = &rustls::version::TLS13;
    let (mut before, served) = pki::connect(addr, Some("a.test"), tls13);
    assert!(served == old.der());
    assert_eq!(pki::request(&mut before, "a.test", "/1").0, 200);

    let renewed = ca.server(&["a.test"], KeyKind::Rsa);
    renewed.write(&dir, "a");
    child.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pki::connect(addr, Some("a.test"), tls13).1 != renewed.der() {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        pki::request(&mut before, "a.test", "/2"),
        (200, "b1".to_owned()),
        "the connection opened before the reload keeps working"
    );
    assert!(child.running(), "SIGHUP does not stop the proxy");
    child.signal("TERM");
    assert!(child.exit_within(Duration::from_secs(20)).success());
}
