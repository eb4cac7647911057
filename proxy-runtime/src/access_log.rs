//! The access log: one line per request, JSON or logfmt, written by a thread of its own.
//!
//! A worker formats the line and hands it over a bounded channel without waiting; the
//! writer thread wakes every 50 ms, writes what has queued to stdout or a file and
//! flushes. A worker never blocks on the log: when the writer falls behind by
//! more than [`QUEUE`] lines, a line is dropped and counted
//! (`switchyard_access_log_dropped_total`). SIGUSR1 makes the writer reopen its file (log
//! rotation: move the file away, send the signal, the next lines go to a new file of the
//! old name), as nginx does.

use crate::error::Error;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lines that may wait for the writer.
pub const QUEUE: usize = 16_384;

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Destination {
    /// No access log (the default).
    #[default]
    Off,
    /// Standard output.
    Stdout,
    /// A file, appended to; reopened on SIGUSR1.
    File(PathBuf),
}

/// How a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line (the default).
    #[default]
    Json,
    /// `key=value` pairs, values quoted when they hold a space, `"` or `=`.
    Logfmt,
}

/// The access-log part of a launch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessLogConfig {
    /// Where lines go.
    pub destination: Destination,
    /// How they are written.
    pub format: Format,
}

impl AccessLogConfig {
    /// Parse `--access-log` (`off`, `-` for stdout, or a path).
    pub fn destination_arg(arg: &str) -> Destination {
        match arg {
            "off" => Destination::Off,
            "-" | "stdout" => Destination::Stdout,
            path => Destination::File(PathBuf::from(path)),
        }
    }
}

/// What one line says about a request.
pub struct Entry<'a> {
    pub client: Option<std::net::IpAddr>,
    pub method: &'a str,
    pub host: &'a str,
    /// Path and query as received.
    pub target: &'a str,
    /// 0 when nothing was answered.
    pub status: u16,
    pub route: &'static str,
    pub cluster: &'static str,
    /// The backend's address as text (its metric label).
    pub backend: Option<&'a str>,
    pub tries: u32,
    pub upstream: Option<Duration>,
    pub total: Duration,
    pub bytes_in: usize,
    pub bytes_out: usize,
}

/// A running access log: the sending end of the writer's channel.
pub struct AccessLog {
    tx: SyncSender<String>,
    format: Format,
}

/// Set by SIGUSR1: the writers reopen their files.
static REOPEN: LazyFlag = LazyFlag::new();

struct LazyFlag(std::sync::OnceLock<Arc<AtomicBool>>);

impl LazyFlag {
    const fn new() -> Self {
        LazyFlag(std::sync::OnceLock::new())
    }

    /// The flag, with the signal handler installed on first use.
    fn get(&self) -> &Arc<AtomicBool> {
        self.0.get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone())
            {
                log::warn!("access log: cannot watch SIGUSR1 for reopening: {e}");
            }
            flag
        })
    }
}

impl AccessLog {
    /// Open the destination (an unwritable file is an error naming it) and start the
    /// writer thread. `None` when the log is off.
    pub fn start(config: &AccessLogConfig, name: &'static str) -> Result<Option<Self>, Error> {
        let sink: Box<dyn FnMut() -> std::io::Result<Box<dyn Write + Send>> + Send> =
            match &config.destination {
                Destination::Off => return Ok(None),
                Destination::Stdout => Box::new(|| Ok(Box::new(std::io::stdout()))),
                Destination::File(path) => {
                    let path = path.clone();
                    let open = move || -> std::io::Result<Box<dyn Write + Send>> {
                        let f = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)?;
                        Ok(Box::new(f))
                    };
                    Box::new(open)
                }
            };
        let mut sink = sink;
        let first = sink().map_err(|e| Error::Startup {
            what: format!("access log {:?}: {e}", config.destination),
        })?;
        let reopen = REOPEN.get().clone();
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name(format!("{name}-access-log"))
            .spawn(move || write_lines(rx, first, sink, &reopen))
            .map_err(|e| Error::Startup {
                what: format!("access log thread: {e}"),
            })?;
        Ok(Some(AccessLog {
            tx,
            format: config.format,
        }))
    }

    /// Queue the line of one request; `false` when it was dropped (the writer is behind).
    pub fn record(&self, entry: &Entry<'_>) -> bool {
        let line = match self.format {
            Format::Json => json_line(entry),
            Format::Logfmt => logfmt_line(entry),
        };
        match self.tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// How often the writer wakes to write what has queued. Workers never wake it: a wake-up
/// per line would cost each request two context switches.
const EVERY: Duration = Duration::from_millis(50);

/// The writer thread: every [`EVERY`], the queued lines into a buffer and out; the file
/// reopened when SIGUSR1 was received. Ends when every sender is gone.
fn write_lines(
    rx: Receiver<String>,
    first: Box<dyn Write + Send>,
    mut open: Box<dyn FnMut() -> std::io::Result<Box<dyn Write + Send>> + Send>,
    reopen: &AtomicBool,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, first);
    loop {
        std::thread::sleep(EVERY);
        let mut gone = false;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    if let Err(e) = out.write_all(line.as_bytes()) {
                        log::warn!("access log: {e}");
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    gone = true;
                    break;
                }
            }
        }
        let _ = out.flush();
        if gone {
            return;
        }
        if reopen.swap(false, Ordering::Relaxed) {
            match open() {
                Ok(new) => {
                    out = std::io::BufWriter::with_capacity(64 * 1024, new);
                    log::info!("access log reopened");
                }
                Err(e) => log::warn!("access log: cannot reopen: {e}"),
            }
        }
    }
}

/// `2026-12-01T17:20:00.123Z` for now. The part up to the second is made once a second per
/// thread: the access log writes a line per request.
fn now_rfc3339(out: &mut String) {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const {
            std::cell::RefCell::new((u64::MAX, String::new()))
        };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            civil_second(secs, &mut cached.1);
            cached.0 = secs;
        }
        out.push_str(&cached.1);
    });
    out.push('.');
    push_padded(out, u64::from(now.subsec_millis()), 3);
    out.push('Z');
}

/// `2026-12-01T17:20:00` for `secs` since 1970 (UTC; Howard Hinnant's civil-from-days).
fn civil_second(secs: u64, out: &mut String) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// `n` in decimal, at least `width` digits (zero-padded), without the formatting machinery.
fn push_padded(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    for &digit in &buf[start..] {
        out.push(char::from(digit));
    }
}

fn push_uint(out: &mut String, n: u64) {
    push_padded(out, n, 1);
}

/// A duration in milliseconds with three decimals: `1.234`.
fn push_ms(out: &mut String, d: Duration) {
    let us = d.as_micros() as u64;
    push_uint(out, us / 1000);
    out.push('.');
    push_padded(out, us % 1000, 3);
}

/// `s` as a JSON string, quotes included.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    if !s
        .bytes()
        .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
    {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

fn json_line(e: &Entry<'_>) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"time\":\"");
    now_rfc3339(&mut s);
    s.push_str("\",\"client\":");
    match e.client {
        Some(ip) => {
            let _ = write!(s, "\"{ip}\"");
        }
        None => s.push_str("null"),
    }
    s.push_str(",\"method\":");
    json_str(&mut s, e.method);
    s.push_str(",\"host\":");
    json_str(&mut s, e.host);
    s.push_str(",\"path\":");
    json_str(&mut s, e.target);
    s.push_str(",\"status\":");
    push_uint(&mut s, u64::from(e.status));
    s.push_str(",\"route\":");
    json_str(&mut s, e.route);
    s.push_str(",\"cluster\":");
    json_str(&mut s, e.cluster);
    s.push_str(",\"backend\":");
    match e.backend {
        Some(b) => json_str(&mut s, b),
        None => s.push_str("null"),
    }
    s.push_str(",\"tries\":");
    push_uint(&mut s, u64::from(e.tries));
    s.push_str(",\"upstream_ms\":");
    match e.upstream {
        Some(d) => push_ms(&mut s, d),
        None => s.push_str("null"),
    }
    s.push_str(",\"total_ms\":");
    push_ms(&mut s, e.total);
    s.push_str(",\"bytes_in\":");
    push_uint(&mut s, e.bytes_in as u64);
    s.push_str(",\"bytes_out\":");
    push_uint(&mut s, e.bytes_out as u64);
    s.push_str("}\n");
    s
}

/// A logfmt value: bare when it needs no quoting, else quoted with `"` and `\` escaped.
fn logfmt_value(out: &mut String, v: &str) {
    if !v.is_empty()
        && !v
            .bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == 0x7f)
    {
        out.push_str(v);
    } else {
        json_str(out, v);
    }
}

fn logfmt_line(e: &Entry<'_>) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("time=");
    now_rfc3339(&mut s);
    s.push_str(" client=");
    match e.client {
        Some(ip) => {
            let _ = write!(s, "{ip}");
        }
        None => s.push('-'),
    }
    s.push_str(" method=");
    logfmt_value(&mut s, e.method);
    s.push_str(" host=");
    logfmt_value(&mut s, e.host);
    s.push_str(" path=");
    logfmt_value(&mut s, e.target);
    s.push_str(" status=");
    push_uint(&mut s, u64::from(e.status));
    s.push_str(" route=");
    s.push_str(e.route);
    s.push_str(" cluster=");
    s.push_str(e.cluster);
    s.push_str(" backend=");
    s.push_str(e.backend.unwrap_or("-"));
    s.push_str(" tries=");
    push_uint(&mut s, u64::from(e.tries));
    s.push_str(" upstream_ms=");
    match e.upstream {
        Some(d) => push_ms(&mut s, d),
        None => s.push('-'),
    }
    s.push_str(" total_ms=");
    push_ms(&mut s, e.total);
    s.push_str(" bytes_in=");
    push_uint(&mut s, e.bytes_in as u64);
    s.push_str(" bytes_out=");
    push_uint(&mut s, e.bytes_out as u64);
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            client: Some("127.0.0.1".parse().unwrap()),
            method: "GET",
            host: "a.example.com",
            target: "/x?q=\"1\" 2",
            status: 200,
            route: "api",
            cluster: "api",
            backend: Some("127.0.0.1:9001"),
            tries: 1,
            upstream: Some(Duration::from_micros(1234)),
            total: Duration::from_micros(2500),
            bytes_in: 3,
            bytes_out: 12,
        }
    }

    #[test]
    fn json_lines_escape_and_carry_every_field() {
        let line = json_line(&entry());
        assert!(line.ends_with("}\n"));
        let rest = line.split_once("\",\"client\"").unwrap().1;
        assert_eq!(
            rest,
            ":\"127.0.0.1\",\"method\":\"GET\",\"host\":\"a.example.com\",\"path\":\"/x?q=\\\"1\\\" 2\",\"status\":200,\"route\":\"api\",\"cluster\":\"api\",\"backend\":\"127.0.0.1:9001\",\"tries\":1,\"upstream_ms\":1.234,\"total_ms\":2.500,\"bytes_in\":3,\"bytes_out\":12}\n"
        );
    }

    #[test]
    fn logfmt_lines_quote_what_needs_it() {
        let line = logfmt_line(&entry());
        let rest = line.split_once(" client=").unwrap().1;
        assert_eq!(
            rest,
            "127.0.0.1 method=GET host=a.example.com path=\"/x?q=\\\"1\\\" 2\" status=200 route=api cluster=api backend=127.0.0.1:9001 tries=1 upstream_ms=1.234 total_ms=2.500 bytes_in=3 bytes_out=12\n"
        );
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let mut s = String::new();
        now_rfc3339(&mut s);
        assert_eq!(s.len(), 24, "{s}");
        assert!(
            s.starts_with("20") && s.ends_with('Z') && &s[10..11] == "T",
            "{s}"
        );
    }
}
