// cargo run --release --example loadgen -- --addr 127.0.0.1:6191 --scenario rr --rate 20000 --duration 10 --conns 32
//
// Open-loop (fixed-rate) HTTP/1.1 load generator for bench/e2e.sh, in the manner of wrk2:
// every proxy is offered the same request rate, and latency is free of coordinated omission.
// Request n (n = 0, 1, 2, ...) has the intended send time `start + n / rate` and goes to
// keep-alive connection `n % conns`, so connection k of C sends its i-th request at
// `start + (i*C + k) / rate`. A connection carries one request at a time (no pipelining):
// when the previous response is late, the next request leaves as soon as it arrives, and
// its latency still counts from its intended send time (the response's end minus the
// intended time), so a server stall shows up in the percentiles instead of silently
// lowering the offered rate. The service time (actual send to response end) is reported
// beside it. The first `--warmup` seconds run at the same rate and are not recorded;
// requests whose intended time falls in the next `--duration` seconds are. Only loopback
// addresses are accepted. One line of `key=value` results goes to stdout; details to stderr.
//
// The network I/O runs on a single-threaded tokio runtime, so the generator can be pinned
// to one CPU with taskset (`taskset -c 1 loadgen ...` pins both of its threads). Tokio's
// timer has a resolution of one millisecond, which would add up to a millisecond of the
// generator's own lateness to every latency and send requests in bursts on millisecond
// ticks; so a second, sleeping thread (the pacer) wakes each waiting connection at its
// intended time with a futex timeout, and the timer slack of both threads is set to 1 ns
// through /proc/self/timerslack_ns. The pacer does no I/O and never spins; it sleeps
// indefinitely while every connection is busy. Sends are typically 20-60 us after their
// intended time on an idle machine (`send_lag_mean_us`, measured on requests whose
// connection was idle when they fell due); when the server is late, the wait counts in
// the latency as it should.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{timeout_at, Instant};

const USAGE: &str = "usage: loadgen --addr IP:PORT --rate R [--scenario rr|path|host|hash] \
[--duration S (default 10, at most 120)] [--conns C (default 32)] [--warmup S (default 1)]
  IP must be a loopback address (127.0.0.0/8 or ::1).";

/// Bytes of the per-connection read buffer; a response line or header longer than this is
/// a protocol error.
const READ_BUF: usize = 16 * 1024;
/// Most header lines (or chunk trailer lines) accepted in one response.
const MAX_HEADER_LINES: usize = 256;
/// How long in-flight responses may take after the measured period ends.
const DRAIN: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound of latency samples pre-allocated (the vectors still grow when needed).
const MAX_PREALLOC: usize = 32 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Rr,
    Path,
    Host,
    Hash,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Rr => "rr",
            Scenario::Path => "path",
            Scenario::Host => "host",
            Scenario::Hash => "hash",
        }
    }
}

#[derive(Clone, Debug)]
struct Config {
    addr: SocketAddr,
    scenario: Scenario,
    rate: f64,
    duration: f64,
    conns: usize,
    warmup: f64,
}

enum ArgError {
    Help,
    Bad(String),
}

fn parse_number(key: &str, value: &str) -> Result<f64, ArgError> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ArgError::Bad(format!("{key}: `{value}` is not a number"))),
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, ArgError> {
    let mut args = args.into_iter();
    let mut addr = None;
    let mut scenario = Scenario::Rr;
    let mut rate = None;
    let mut duration = 10.0;
    let mut conns = 32usize;
    let mut warmup = 1.0;
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(ArgError::Help);
        }
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), v.to_string()),
            _ => {
                let v = args
                    .next()
                    .ok_or_else(|| ArgError::Bad(format!("{arg} needs a value")))?;
                (arg, v)
            }
        };
        match key.as_str() {
            "--addr" => {
                let a: SocketAddr = value.trim().parse().map_err(|_| {
                    ArgError::Bad(format!(
                        "--addr: `{value}` is not IP:PORT (e.g. 127.0.0.1:6191 or [::1]:6191)"
                    ))
                })?;
                addr = Some(a);
            }
            "--scenario" => {
                scenario = match value.as_str() {
                    "rr" => Scenario::Rr,
                    "path" => Scenario::Path,
                    "host" => Scenario::Host,
                    "hash" => Scenario::Hash,
                    _ => {
                        return Err(ArgError::Bad(format!(
                            "--scenario: `{value}` is not one of rr, path, host, hash"
                        )))
                    }
                }
            }
            "--rate" => {
                let r = parse_number(&key, &value)?;
                // At least one request in 1,000 s: far smaller rates would overflow the
                // schedule's `Duration`s.
                if !(0.001..=100_000_000.0).contains(&r) {
                    return Err(ArgError::Bad(format!(
                        "--rate: {value} is not in [0.001, 100000000]"
                    )));
                }
                rate = Some(r);
            }
            "--duration" => {
                duration = parse_number(&key, &value)?;
                if !(duration > 0.0 && duration <= 120.0) {
                    return Err(ArgError::Bad(format!(
                        "--duration: {value} is not in (0, 120] seconds"
                    )));
                }
            }
            "--warmup" => {
                warmup = parse_number(&key, &value)?;
                if !(0.0..=60.0).contains(&warmup) {
                    return Err(ArgError::Bad(format!(
                        "--warmup: {value} is not in [0, 60] seconds"
                    )));
                }
            }
            "--conns" => {
                conns = match value.trim().parse::<usize>() {
                    Ok(c) if (1..=10_000).contains(&c) => c,
                    _ => {
                        return Err(ArgError::Bad(format!(
                            "--conns: `{value}` is not an integer in [1, 10000]"
                        )))
                    }
                }
            }
            _ => return Err(ArgError::Bad(format!("unknown argument `{key}`"))),
        }
    }
    let addr = addr.ok_or_else(|| ArgError::Bad("--addr is required".into()))?;
    // Never send load anywhere but this machine.
    if !addr.ip().is_loopback() {
        return Err(ArgError::Bad(format!(
            "refusing to target {addr}: loadgen only sends to loopback addresses \
             (127.0.0.0/8 or ::1)"
        )));
    }
    if addr.port() == 0 {
        return Err(ArgError::Bad(
            "--addr: port 0 is not a port to send to".into(),
        ));
    }
    let rate = rate.ok_or_else(|| ArgError::Bad("--rate is required".into()))?;
    Ok(Config {
        addr,
        scenario,
        rate,
        duration,
        conns,
        warmup,
    })
}

// --- requests ----------------------------------------------------------------------------

// The requests of bench/e2e.sh's wrk scripts (rr.lua, path.lua, host.lua, hash.lua).
const RR: &[u8] = b"GET / HTTP/1.1\r\nHost: rr.test\r\n\r\n";
const PATHS: [&[u8]; 3] = [
    b"GET /api/users HTTP/1.1\r\nHost: path.test\r\n\r\n",
    b"GET /static/app.js HTTP/1.1\r\nHost: path.test\r\n\r\n",
    b"GET /index.html HTTP/1.1\r\nHost: path.test\r\n\r\n",
];
const HOSTS: [&[u8]; 2] = [
    b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n",
];
const HASH_PREFIX: &[u8] = b"GET / HTTP/1.1\r\nHost: hash.test\r\nCookie: session_id=";

/// Builds one connection's requests. The rotating scenarios start connection k at offset k,
/// so every connection and the stream as a whole alternate through the list.
struct RequestGen {
    scenario: Scenario,
    counter: u64,
    rng: u64,
    buf: Vec<u8>,
}

impl RequestGen {
    fn new(scenario: Scenario, k: u64) -> Self {
        // xorshift64 state must not be zero; spread the connection index (splitmix64 step).
        let mut z = k.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        RequestGen {
            scenario,
            counter: k,
            rng: z | 1,
            buf: Vec::with_capacity(HASH_PREFIX.len() + 16),
        }
    }

    fn next(&mut self) -> &[u8] {
        let c = self.counter;
        self.counter = self.counter.wrapping_add(1);
        match self.scenario {
            Scenario::Rr => RR,
            Scenario::Path => PATHS[(c % 3) as usize],
            Scenario::Host => HOSTS[(c % 2) as usize],
            Scenario::Hash => {
                // xorshift64
                let mut x = self.rng;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.rng = x;
                let id = x % 100_000 + 1; // 1..=100000, like math.random(1, 100000)
                self.buf.clear();
                self.buf.extend_from_slice(HASH_PREFIX);
                push_decimal(&mut self.buf, id);
                self.buf.extend_from_slice(b"\r\n\r\n");
                &self.buf
            }
        }
    }
}

fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

// --- responses ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fail {
    /// Read or write error.
    Io,
    /// The server closed the connection before the response was complete.
    Eof,
    /// Not a well-formed HTTP/1.x response (or bytes nobody asked for).
    Protocol,
}

/// A connection's reusable read buffer: `buf[pos..end]` holds bytes not yet consumed.
struct Reader {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

struct Response {
    status: u16,
    /// The server will close the connection after this response.
    close: bool,
}

impl Reader {
    fn new() -> Self {
        Reader {
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.end = 0;
    }

    /// Reads at least one more byte, compacting the buffer when its end is reached.
    async fn fill(&mut self, s: &mut TcpStream) -> Result<(), Fail> {
        if self.pos == self.end {
            self.reset();
        } else if self.end == self.buf.len() {
            if self.pos == 0 {
                return Err(Fail::Protocol); // one line longer than the buffer
            }
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        match s.read(&mut self.buf[self.end..]).await {
            Ok(0) => Err(Fail::Eof),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(_) => Err(Fail::Io),
        }
    }

    /// Consumes one line and returns its range in `buf` without the line ending; valid
    /// until the next read.
    async fn line(&mut self, s: &mut TcpStream) -> Result<(usize, usize), Fail> {
        let mut scanned = 0; // bytes after `pos` known to hold no '\n'
        loop {
            let from = self.pos + scanned;
            if let Some(off) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let nl = from + off;
                let start = self.pos;
                let mut stop = nl;
                if stop > start && self.buf[stop - 1] == b'\r' {
                    stop -= 1;
                }
                self.pos = nl + 1;
                return Ok((start, stop));
            }
            scanned = self.end - self.pos;
            self.fill(s).await?;
        }
    }

    /// Consumes and discards `n` bytes.
    async fn skip(&mut self, s: &mut TcpStream, mut n: u64) -> Result<(), Fail> {
        loop {
            let avail = (self.end - self.pos) as u64;
            if avail >= n {
                self.pos += n as usize;
                return Ok(());
            }
            n -= avail;
            self.pos = self.end;
            self.fill(s).await?;
        }
    }

    /// Reads one complete response: status line, headers, and a body delimited by
    /// Content-Length, chunked transfer coding, or the end of the connection.
    async fn response(&mut self, s: &mut TcpStream) -> Result<Response, Fail> {
        loop {
            let (a, b) = self.line(s).await?;
            let line = &self.buf[a..b];
            // "HTTP/1.1 200 OK"
            if line.len() < 12
                || &line[..7] != b"HTTP/1."
                || line[8] != b' '
                || !line[9..12].iter().all(u8::is_ascii_digit)
                || line.get(12).is_some_and(|&c| c != b' ')
            {
                return Err(Fail::Protocol);
            }
            let http10 = line[7] == b'0';
            let status = line[9..12]
                .iter()
                .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
            let mut close = http10;
            let mut length: Option<u64> = None;
            let mut chunked = false;
            let mut ended = false;
            for _ in 0..MAX_HEADER_LINES {
                let (a, b) = self.line(s).await?;
                if a == b {
                    ended = true;
                    break;
                }
                let header = &self.buf[a..b];
                let colon = header
                    .iter()
                    .position(|&c| c == b':')
                    .ok_or(Fail::Protocol)?;
                let name = &header[..colon];
                let value = header[colon + 1..].trim_ascii();
                if name.eq_ignore_ascii_case(b"content-length") {
                    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit)
                    {
                        return Err(Fail::Protocol);
                    }
                    let n = value
                        .iter()
                        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
                    if length.is_some_and(|l| l != n) {
                        return Err(Fail::Protocol);
                    }
                    length = Some(n);
                } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    // The last transfer coding decides; only "chunked" is expected.
                    let last = value.rsplit(|&c| c == b',').next().unwrap_or(b"");
                    chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
                } else if name.eq_ignore_ascii_case(b"connection") {
                    for token in value.split(|&c| c == b',') {
                        let token = token.trim_ascii();
                        if token.eq_ignore_ascii_case(b"close") {
                            close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                            close = false;
                        }
                    }
                }
            }
            if !ended {
                return Err(Fail::Protocol);
            }
            if (100..200).contains(&status) {
                if status == 101 {
                    return Err(Fail::Protocol); // no upgrade was asked for
                }
                continue; // interim response; the final one follows
            }
            if status == 204 || status == 304 {
                // no body
            } else if chunked {
                self.chunked_body(s).await?;
            } else if let Some(n) = length {
                self.skip(s, n).await?;
            } else {
                // Body delimited by the end of the connection.
                loop {
                    self.pos = self.end;
                    match self.fill(s).await {
                        Ok(()) => {}
                        Err(Fail::Eof) => break,
                        Err(e) => return Err(e),
                    }
                }
                self.reset();
                return Ok(Response {
                    status,
                    close: true,
                });
            }
            if self.pos != self.end {
                return Err(Fail::Protocol); // bytes beyond the response: nothing was pipelined
            }
            return Ok(Response { status, close });
        }
    }

    async fn chunked_body(&mut self, s: &mut TcpStream) -> Result<(), Fail> {
        loop {
            let (a, b) = self.line(s).await?;
            let line = &self.buf[a..b];
            let digits = line
                .iter()
                .position(|&c| c == b';' || c == b' ' || c == b'\t')
                .map_or(line, |end| &line[..end]);
            if digits.is_empty() || digits.len() > 15 {
                return Err(Fail::Protocol);
            }
            let mut size = 0u64;
            for &c in digits {
                let d = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => return Err(Fail::Protocol),
                };
                size = size * 16 + u64::from(d);
            }
            if size == 0 {
                // Trailer fields, then the empty line.
                for _ in 0..MAX_HEADER_LINES {
                    let (a, b) = self.line(s).await?;
                    if a == b {
                        return Ok(());
                    }
                }
                return Err(Fail::Protocol);
            }
            self.skip(s, size).await?;
            let (a, b) = self.line(s).await?;
            if a != b {
                return Err(Fail::Protocol); // chunk data not followed by CRLF
            }
        }
    }
}

// --- the schedule ------------------------------------------------------------------------

struct Plan {
    addr: SocketAddr,
    scenario: Scenario,
    rate: f64,
    conns: u64,
    start: Instant,
    /// Requests intended at or after this are measured.
    measure_from: Instant,
    /// The first request intended at or after `measure_from`.
    first_measured: u64,
    /// No request is intended at or after this, and none is sent after it when late.
    end: Instant,
    /// In-flight responses are abandoned at this time.
    drain: Instant,
    pacer: Pacer,
}

impl Plan {
    /// Intended send time of request n.
    fn at(&self, n: u64) -> Instant {
        self.start + Duration::from_secs_f64(n as f64 / self.rate)
    }

    /// Connection k's first request index i (request i*conns + k) that is measured.
    fn first_measured_index(&self, k: u64) -> u64 {
        self.first_measured.saturating_sub(k).div_ceil(self.conns)
    }
}

/// Precise wake-ups for the connection tasks. Tokio's timer has a resolution of one
/// millisecond; this thread sleeps (`park_timeout`, i.e. a futex wait with a timeout) until
/// the earliest time a waiting connection asked for, and wakes it through its `Notify`.
/// A connection that is busy when its request falls due asks for nothing, so an overloaded
/// server costs the pacer nothing.
struct Pacer {
    /// Per connection: the time (ns after `Plan::start`) it waits for, or `IDLE`.
    wait_until: Vec<AtomicU64>,
    wake: Vec<Notify>,
    /// The time the pacer sleeps until (`IDLE`: indefinitely, or it is rescanning).
    sleeping_until: AtomicU64,
    thread: OnceLock<std::thread::Thread>,
    stop: AtomicBool,
}

const IDLE: u64 = u64::MAX;

impl Pacer {
    fn new(conns: usize) -> Self {
        Pacer {
            wait_until: (0..conns).map(|_| AtomicU64::new(IDLE)).collect(),
            wake: (0..conns).map(|_| Notify::new()).collect(),
            sleeping_until: AtomicU64::new(IDLE),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
        }
    }

    /// Connection k: returns at `at` or within some microseconds after.
    async fn sleep_until(&self, k: usize, start: Instant, at: Instant) {
        let ns = u64::try_from((at - start).as_nanos()).unwrap_or(IDLE - 1);
        loop {
            // Publish the deadline, then read the pacer's (both SeqCst): either the pacer's
            // next scan sees the deadline, or this sees that the pacer must be woken to
            // rescan.
            self.wait_until[k].store(ns, Ordering::SeqCst);
            if ns < self.sleeping_until.load(Ordering::SeqCst) {
                if let Some(t) = self.thread.get() {
                    t.unpark();
                }
            }
            self.wake[k].notified().await;
            if Instant::now() >= at {
                return;
            }
        }
    }

    fn run(&self, start: Instant) {
        while !self.stop.load(Ordering::SeqCst) {
            self.sleeping_until.store(IDLE, Ordering::SeqCst);
            let now = Instant::now();
            let now_ns =
                u64::try_from(now.saturating_duration_since(start).as_nanos()).unwrap_or(IDLE - 1);
            let mut next = IDLE;
            for (k, slot) in self.wait_until.iter().enumerate() {
                let t = slot.load(Ordering::SeqCst);
                if t <= now_ns {
                    if slot
                        .compare_exchange(t, IDLE, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        self.wake[k].notify_one();
                    }
                } else {
                    next = next.min(t);
                }
            }
            self.sleeping_until.store(next, Ordering::SeqCst);
            if next == IDLE {
                std::thread::park();
            } else {
                std::thread::park_timeout(Duration::from_nanos(next - now_ns));
            }
        }
    }
}

#[derive(Default)]
struct ConnStats {
    /// Measured requests written.
    sent: u64,
    /// Measured requests answered with a 2xx status.
    completed: u64,
    /// Measured requests that failed (non-2xx, connection failure, timeout at drain).
    errors: u64,
    non_2xx: u64,
    conn_failures: u64,
    connect_failures: u64,
    timeouts: u64,
    /// Errors of warm-up requests (not in `errors`).
    warmup_errors: u64,
    /// Measured requests sent later than intended on an idle connection: the generator's
    /// own lateness, in microseconds (sum and max).
    lag_sum_us: u64,
    lag_max_us: u64,
    lag_count: u64,
    latency_us: Vec<u32>,
    service_us: Vec<u32>,
}

fn micros(d: Duration) -> u32 {
    u32::try_from((d.as_nanos() + 500) / 1000).unwrap_or(u32::MAX)
}

async fn connect(addr: SocketAddr, deadline: Instant) -> Option<TcpStream> {
    match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Some(s)
        }
        _ => None,
    }
}

async fn run_conn(
    plan: Arc<Plan>,
    k: u64,
    mut stream: Option<TcpStream>,
    capacity: usize,
) -> ConnStats {
    let mut st = ConnStats {
        latency_us: Vec::with_capacity(capacity),
        service_us: Vec::with_capacity(capacity),
        ..ConnStats::default()
    };
    let mut reader = Reader::new();
    let mut requests = RequestGen::new(plan.scenario, k);
    let mut i = 0u64;
    // When the previous response ended (or the connection became usable).
    let mut idle_since = Instant::now();
    loop {
        let intended = plan.at(i * plan.conns + k);
        if intended >= plan.end {
            break;
        }
        i += 1;
        let now = Instant::now();
        if now < intended {
            plan.pacer
                .sleep_until(k as usize, plan.start, intended)
                .await;
        } else if now >= plan.end {
            break; // late at the end of the run: stop sending
        } else if intended < plan.measure_from && now >= plan.measure_from {
            // Still behind on warm-up requests when the measured period begins: drop them,
            // so that the measured schedule starts on time.
            i = plan.first_measured_index(k);
            continue;
        }
        let measured = intended >= plan.measure_from;
        let fail = |st: &mut ConnStats| {
            if measured {
                st.errors += 1;
            } else {
                st.warmup_errors += 1;
            }
        };
        let s = match stream.as_mut() {
            Some(s) => s,
            None => {
                let deadline = (Instant::now() + CONNECT_TIMEOUT).min(plan.drain);
                match connect(plan.addr, deadline).await {
                    Some(s) => {
                        idle_since = Instant::now();
                        stream.insert(s)
                    }
                    None => {
                        fail(&mut st);
                        if measured {
                            st.connect_failures += 1;
                        }
                        if Instant::now() >= plan.drain {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        let request = requests.next();
        let sent_at = Instant::now();
        if measured {
            st.sent += 1;
            if idle_since <= intended {
                let lag = sent_at.saturating_duration_since(intended);
                let lag_us = u64::from(micros(lag));
                st.lag_sum_us += lag_us;
                st.lag_max_us = st.lag_max_us.max(lag_us);
                st.lag_count += 1;
            }
        }
        let outcome = timeout_at(plan.drain, async {
            s.write_all(request).await.map_err(|_| Fail::Io)?;
            reader.response(s).await
        })
        .await;
        let done = Instant::now();
        idle_since = done;
        match outcome {
            Err(_elapsed) => {
                fail(&mut st);
                if measured {
                    st.timeouts += 1;
                }
                break; // past the drain deadline: nothing more to send or wait for
            }
            Ok(Err(_)) => {
                fail(&mut st);
                if measured {
                    st.conn_failures += 1;
                }
                stream = None;
                reader.reset();
            }
            Ok(Ok(response)) => {
                if (200..300).contains(&response.status) {
                    if measured {
                        st.completed += 1;
                        st.latency_us.push(micros(done - intended));
                        st.service_us.push(micros(done - sent_at));
                    }
                } else {
                    fail(&mut st);
                    if measured {
                        st.non_2xx += 1;
                    }
                }
                if response.close {
                    stream = None;
                    reader.reset();
                }
            }
        }
    }
    st
}

/// Nearest-rank percentile of sorted samples, `per_mille` in thousandths (999 = p99.9);
/// 0 when there are no samples. Integer arithmetic: 0.999 * 1000 is not 999 in floats.
fn percentile(sorted: &[u32], per_mille: usize) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(cfg: Config) -> String {
    let conns = cfg.conns;
    // Open the connections first, so that connecting is not part of the first latencies.
    let connect_deadline = Instant::now() + CONNECT_TIMEOUT;
    let handles: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(connect(cfg.addr, connect_deadline)))
        .collect();
    let mut streams = Vec::with_capacity(conns);
    for h in handles {
        streams.push(h.await.ok().flatten());
    }
    let connected = streams.iter().filter(|s| s.is_some()).count();
    eprintln!(
        "loadgen: {connected}/{conns} connections to {} open; {} s warm-up, then {} s at {} req/s ({})",
        cfg.addr,
        cfg.warmup,
        cfg.duration,
        cfg.rate,
        cfg.scenario.name()
    );

    let start = Instant::now() + Duration::from_millis(2);
    let measure_from = start + Duration::from_secs_f64(cfg.warmup);
    let end = measure_from + Duration::from_secs_f64(cfg.duration);
    let mut plan = Plan {
        addr: cfg.addr,
        scenario: cfg.scenario,
        rate: cfg.rate,
        conns: conns as u64,
        start,
        measure_from,
        first_measured: 0,
        end,
        drain: end + DRAIN,
        pacer: Pacer::new(conns),
    };
    // The first n with at(n) >= measure_from, computed with `at` itself.
    let mut n = (cfg.warmup * cfg.rate).floor() as u64;
    while n > 0 && plan.at(n - 1) >= measure_from {
        n -= 1;
    }
    while plan.at(n) < measure_from {
        n += 1;
    }
    plan.first_measured = n;
    let plan = Arc::new(plan);
    let pacer_thread = {
        let plan = plan.clone();
        std::thread::Builder::new()
            .name("loadgen-pacer".into())
            .spawn(move || plan.pacer.run(plan.start))
            .expect("spawning the pacer thread")
    };
    let _ = plan.pacer.thread.set(pacer_thread.thread().clone());

    let expected = (cfg.rate * cfg.duration).ceil().min(MAX_PREALLOC as f64) as usize;
    let capacity = expected / conns + 16;
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(k, s)| tokio::spawn(run_conn(plan.clone(), k as u64, s, capacity)))
        .collect();
    let mut all = Vec::with_capacity(conns);
    for t in tasks {
        match t.await {
            Ok(st) => all.push(st),
            Err(e) => eprintln!("loadgen: a connection task failed: {e}"),
        }
    }
    plan.pacer.stop.store(true, Ordering::SeqCst);
    pacer_thread.thread().unpark();
    let _ = pacer_thread.join();

    let mut total = ConnStats::default();
    let samples: usize = all.iter().map(|s| s.latency_us.len()).sum();
    let mut latency = Vec::with_capacity(samples);
    let mut service = Vec::with_capacity(samples);
    for st in &mut all {
        total.sent += st.sent;
        total.completed += st.completed;
        total.errors += st.errors;
        total.non_2xx += st.non_2xx;
        total.conn_failures += st.conn_failures;
        total.connect_failures += st.connect_failures;
        total.timeouts += st.timeouts;
        total.warmup_errors += st.warmup_errors;
        total.lag_sum_us += st.lag_sum_us;
        total.lag_max_us = total.lag_max_us.max(st.lag_max_us);
        total.lag_count += st.lag_count;
        latency.append(&mut st.latency_us);
        service.append(&mut st.service_us);
    }
    latency.sort_unstable();
    service.sort_unstable();

    let lag_mean = if total.lag_count > 0 {
        total.lag_sum_us as f64 / total.lag_count as f64
    } else {
        0.0
    };
    // Requests intended in the measured period (up to rounding at its edges), and those of
    // them neither sent nor failed to connect: still queued behind late responses at the end.
    let scheduled = ((cfg.warmup + cfg.duration) * cfg.rate).ceil() as u64
        - (cfg.warmup * cfg.rate).ceil() as u64;
    let unsent = scheduled.saturating_sub(total.sent + total.connect_failures);
    eprintln!(
        "loadgen: scheduled~{scheduled} sent={} unsent~{unsent} completed={} errors={} (non-2xx {}, connection {}, connect {}, timeout {}) warmup_errors={} send_lag_mean_us={lag_mean:.1} send_lag_max_us={}",
        total.sent,
        total.completed,
        total.errors,
        total.non_2xx,
        total.conn_failures,
        total.connect_failures,
        total.timeouts,
        total.warmup_errors,
        total.lag_max_us,
    );
    format!(
        "scenario={} rate={} duration={} conns={} sent={} completed={} errors={} achieved_rps={:.1} \
         p50_us={} p90_us={} p99_us={} p999_us={} max_us={} svc_p50_us={} svc_p99_us={} svc_max_us={} send_lag_mean_us={lag_mean:.1}",
        cfg.scenario.name(),
        cfg.rate,
        cfg.duration,
        cfg.conns,
        total.sent,
        total.completed,
        total.errors,
        total.completed as f64 / cfg.duration,
        percentile(&latency, 500),
        percentile(&latency, 900),
        percentile(&latency, 990),
        percentile(&latency, 999),
        latency.last().copied().unwrap_or(0),
        percentile(&service, 500),
        percentile(&service, 990),
        service.last().copied().unwrap_or(0),
    )
}

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args().skip(1)) {
        Ok(cfg) => cfg,
        Err(ArgError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ArgError::Bad(msg)) => {
            eprintln!("loadgen: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Linux lets a sleeping thread oversleep by its timer slack, 50 us by default; ask for
    // 1 ns on this (the main) thread, which the pacer thread inherits. Best effort: without
    // it sends are later than intended by some tens of microseconds more (see send_lag).
    if std::fs::write("/proc/self/timerslack_ns", "1").is_err() {
        eprintln!(
            "loadgen: could not set the timer slack (/proc/self/timerslack_ns); pacing is coarser"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let line = runtime.block_on(run(cfg));
    println!("{line}");
    ExitCode::SUCCESS
}

// `cargo test --release --example loadgen`
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn args(line: &str) -> Result<Config, ArgError> {
        parse_args(line.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments() {
        let c = args("--addr 127.0.0.1:6191 --rate 20000").ok().unwrap();
        assert_eq!(
            (c.scenario, c.duration, c.conns, c.warmup),
            (Scenario::Rr, 10.0, 32, 1.0)
        );
        let c = args("--addr=[::1]:80 --rate=5 --scenario=hash --conns 4")
            .ok()
            .unwrap();
        assert_eq!((c.scenario, c.conns), (Scenario::Hash, 4));
        assert!(args("--addr 127.9.9.9:1 --rate 1").is_ok());
        for bad in [
            "--addr 10.0.0.1:80 --rate 1",
            "--addr 0.0.0.0:80 --rate 1",
            "--addr [::ffff:127.0.0.1]:80 --rate 1",
            "--addr localhost:80 --rate 1",
            "--addr 127.0.0.1:80",
            "--addr 127.0.0.1:80 --rate 0",
            "--addr 127.0.0.1:80 --rate 1e-300",
            "--addr 127.0.0.1:80 --rate 1 --duration 121",
            "--addr 127.0.0.1:80 --rate 1 --scenario x",
        ] {
            assert!(matches!(args(bad), Err(ArgError::Bad(_))), "{bad}");
        }
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 500), 500);
        assert_eq!(percentile(&v, 999), 999);
        assert_eq!(percentile(&v, 1000), 1000);
        assert_eq!(percentile(&[7], 999), 7);
        assert_eq!(percentile(&[], 500), 0);
    }

    #[test]
    fn requests() {
        let text = |g: &mut RequestGen| String::from_utf8(g.next().to_vec()).unwrap();
        let mut g = RequestGen::new(Scenario::Host, 0);
        assert_eq!(text(&mut g), "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
        assert_eq!(text(&mut g), "GET / HTTP/1.1\r\nHost: b.test\r\n\r\n");
        let mut g = RequestGen::new(Scenario::Path, 1);
        assert!(text(&mut g).starts_with("GET /static/app.js HTTP/1.1\r\nHost: path.test\r\n"));
        let mut g = RequestGen::new(Scenario::Hash, 3);
        for _ in 0..10_000 {
            let t = text(&mut g);
            let id: u64 = t
                .strip_prefix("GET / HTTP/1.1\r\nHost: hash.test\r\nCookie: session_id=")
                .and_then(|r| r.strip_suffix("\r\n\r\n"))
                .and_then(|n| n.parse().ok())
                .unwrap();
            assert!((1..=100_000).contains(&id));
        }
    }

    /// Serves `wire` in pieces of `step` bytes to one connection and parses responses.
    async fn parse(wire: &'static [u8], step: usize, responses: usize) -> Vec<Result<u16, Fail>> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for piece in wire.chunks(step) {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut r = Reader::new();
        let mut out = Vec::new();
        for _ in 0..responses {
            out.push(r.response(&mut s).await.map(|resp| resp.status));
        }
        server.await.unwrap();
        out
    }

    #[test]
    fn responses() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
                        HTTP/1.1 503 No\r\ncontent-length: 0\r\n\r\n";
            // (Two responses back to back only to exercise the framing; loadgen never
            // pipelines, so it rejects bytes beyond a response when they are already there.)
            assert_eq!(parse(two, 1, 2).await, vec![Ok(200), Ok(503)]);
            let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                            5;x=y\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: 1\r\n\r\n";
            assert_eq!(parse(chunked, 3, 1).await, vec![Ok(200)]);
            let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
            assert_eq!(parse(interim, 7, 1).await, vec![Ok(204)]);
            let to_close = b"HTTP/1.0 200 OK\r\n\r\nbody until the end";
            assert_eq!(parse(to_close, 5, 1).await, vec![Ok(200)]);
            let extra = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
            assert_eq!(parse(extra, 100, 1).await, vec![Err(Fail::Protocol)]);
            let garbage = b"FOO/1.1 200 OK\r\n\r\n";
            assert_eq!(parse(garbage, 100, 1).await, vec![Err(Fail::Protocol)]);
            let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok";
            assert_eq!(parse(short, 100, 1).await, vec![Err(Fail::Eof)]);
            let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
            assert_eq!(parse(bad_chunk, 100, 1).await, vec![Err(Fail::Protocol)]);
        });
    }
}
