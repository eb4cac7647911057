// cargo run -p switchyard-bench --profile production --bin idle_clients -- 127.0.0.1:6191 9000 [SECONDS]
//
// The client of bench/idle_rss.sh: opens N keep-alive connections to a proxy on loopback,
// one after another, sends ONE request on each (`GET / HTTP/1.1`, `Host: rr.test`), reads
// its whole response, and keeps the connection open and idle. Prints `idle N` on stdout
// once all N are, then waits until stdin closes or SECONDS pass (default 120; a signal
// ends it too), says how many connections the server has closed meanwhile, and exits.
// Every connect, read and write has a timeout: it never hangs.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: rr.test\r\n\r\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: idle_clients 127.0.0.1:PORT N [SECONDS]";
    let addr: SocketAddr = args.first().and_then(|a| a.parse().ok()).expect(usage);
    assert!(
        addr.ip().is_loopback(),
        "idle_clients: loopback only, not {addr}"
    );
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let secs: u64 = args.get(2).map_or(120, |a| a.parse().expect(usage));

    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        match open(addr) {
            Ok(stream) => conns.push(stream),
            Err(e) => {
                eprintln!("idle_clients: connection {} of {n}: {e}", i + 1);
                std::process::exit(1);
            }
        }
    }
    println!("idle {n}");
    io::stdout().flush().ok();

    // Wait for stdin to close (or for anything on it), or for the duration to pass.
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = io::stdin().read(&mut [0; 1]);
        let _ = done.send(());
    });
    let _ = wait.recv_timeout(Duration::from_secs(secs));

    let closed = conns.iter().filter(|c| !still_open(c)).count();
    eprintln!("idle_clients: {closed} of {n} connections closed by the server while idle");
}

/// One connection that has sent one request and read its whole response, and is kept alive.
fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(REQUEST)?;
    read_response(&mut stream)?;
    Ok(stream)
}

/// Reads a `200` response with a `Content-Length` body; fails on anything else, or when
/// the server says it will close the connection.
fn read_response(stream: &mut TcpStream) -> io::Result<()> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk)? {
            0 => return Err(bad("connection closed before the response head".into())),
            k => buf.extend_from_slice(&chunk[..k]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(bad(format!(
            "not a 200: {}",
            head.lines().next().unwrap_or("")
        )));
    }
    if head.contains("\r\nconnection: close") {
        return Err(bad("the server closes the connection".into()));
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad("no content-length".into()))?;
    while buf.len() < head_end + length {
        match stream.read(&mut chunk)? {
            0 => return Err(bad("connection closed in the body".into())),
            k => buf.extend_from_slice(&chunk[..k]),
        }
    }
    Ok(())
}

/// True while the server has neither closed the connection nor sent anything more.
fn still_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    matches!(stream.peek(&mut [0; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}
