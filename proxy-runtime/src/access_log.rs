//! The access log: one line per request, JSON or logfmt, written by a thread of its own.
//!
//! A worker formats the line and hands it over a bounded channel without waiting; the
//! writer thread buffers lines and writes them to stdout or a file, flushing when the
//! channel is idle. A worker never blocks on the log: when the writer falls behind by
//! more than [`QUEUE`] lines, a line is dropped and counted
//! (`switchyard_access_log_dropped_total`). SIGUSR1 makes the writer reopen its file (log
//! rotation: move the file away, send the signal, the next lines go to a new file of the
//! old name), as nginx does.

use crate::error::Error;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
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
    pub backend: Option<std::net::SocketAddr>,
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

/// The writer thread: lines into a buffer, flushed when the queue is idle; the file
/// reopened when SIGUSR1 was received. Ends when every sender is gone.
fn write_lines(
    rx: Receiver<String>,
    first: Box<dyn Write + Send>,
    mut open: Box<dyn FnMut() -> std::io::Result<Box<dyn Write + Send>> + Send>,
    reopen: &AtomicBool,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, first);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Err(e) = out.write_all(line.as_bytes()) {
                    log::warn!("access log: {e}");
                }
                // Drain what else is queued before flushing.
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
        let _ = out.flush();
        if reopen.swap(false, Ordering::Relaxed) {
            match open() {
                Ok(new) => {
                    let _ = out.flush();
                    out = std::io::BufWriter::with_capacity(64 * 1024, new);
                    log::info!("access log reopened");
                }
                Err(e) => log::warn!("access log: cannot reopen: {e}"),
            }
        }
    }
}

/// `2026-12-01T17:20:00.123Z` for now.
fn now_rfc3339(out: &mut String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    );
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `s` as a JSON string, quotes included.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
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
    let _ = write!(s, ",\"status\":{},\"route\":", e.status);
    json_str(&mut s, e.route);
    s.push_str(",\"cluster\":");
    json_str(&mut s, e.cluster);
    s.push_str(",\"backend\":");
    match e.backend {
        Some(b) => {
            let _ = write!(s, "\"{b}\"");
        }
        None => s.push_str("null"),
    }
    let _ = write!(s, ",\"tries\":{},\"upstream_ms\":", e.tries);
    match e.upstream {
        Some(d) => {
            let _ = write!(s, "{}", ms(d));
        }
        None => s.push_str("null"),
    }
    let _ = writeln!(
        s,
        ",\"total_ms\":{},\"bytes_in\":{},\"bytes_out\":{}}}",
        ms(e.total),
        e.bytes_in,
        e.bytes_out
    );
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
    let _ = write!(
        s,
        " status={} route={} cluster={} backend=",
        e.status, e.route, e.cluster
    );
    match e.backend {
        Some(b) => {
            let _ = write!(s, "{b}");
        }
        None => s.push('-'),
    }
    let _ = write!(s, " tries={} upstream_ms=", e.tries);
    match e.upstream {
        Some(d) => {
            let _ = write!(s, "{}", ms(d));
        }
        None => s.push('-'),
    }
    let _ = writeln!(
        s,
        " total_ms={} bytes_in={} bytes_out={}",
        ms(e.total),
        e.bytes_in,
        e.bytes_out
    );
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
            backend: Some("127.0.0.1:9001".parse().unwrap()),
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
            ":\"127.0.0.1\",\"method\":\"GET\",\"host\":\"a.example.com\",\"path\":\"/x?q=\\\"1\\\" 2\",\"status\":200,\"route\":\"api\",\"cluster\":\"api\",\"backend\":\"127.0.0.1:9001\",\"tries\":1,\"upstream_ms\":1.234,\"total_ms\":2.5,\"bytes_in\":3,\"bytes_out\":12}\n"
        );
    }

    #[test]
    fn logfmt_lines_quote_what_needs_it() {
        let line = logfmt_line(&entry());
        let rest = line.split_once(" client=").unwrap().1;
        assert_eq!(
            rest,
            "127.0.0.1 method=GET host=a.example.com path=\"/x?q=\\\"1\\\" 2\" status=200 route=api cluster=api backend=127.0.0.1:9001 tries=1 upstream_ms=1.234 total_ms=2.5 bytes_in=3 bytes_out=12\n"
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
