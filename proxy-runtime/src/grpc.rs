//! gRPC requests that the proxy answers itself — no backend, a timeout, a `respond` rule,
//! a rate limit — get a gRPC error, not an HTML or text page a gRPC client cannot read: a
//! "trailers-only" answer (HTTP 200, `content-type: application/grpc`, `grpc-status` and
//! `grpc-message` in the head, no body), as the gRPC HTTP/2 protocol defines it.
//!
//! | the proxy's answer | `grpc-status` |
//! | --- | --- |
//! | 400, 413, 414, 417, 431, 501 (a malformed request) | 13 `INTERNAL` |
//! | 401 | 16 `UNAUTHENTICATED` |
//! | 403 | 7 `PERMISSION_DENIED` |
//! | 404 (a `respond(404, ..)` rule) | 5 `NOT_FOUND` |
//! | 405 | 12 `UNIMPLEMENTED` |
//! | 429 (a rule's `limit`) | 8 `RESOURCE_EXHAUSTED` |
//! | 502, 503 (no healthy backend, every backend failed) | 14 `UNAVAILABLE` |
//! | 504 (a connect or read timeout) | 4 `DEADLINE_EXCEEDED` |
//! | any other | 2 `UNKNOWN` |
//!
//! A request is gRPC when its `content-type` is `application/grpc` or starts with
//! `application/grpc+` / `application/grpc;`. Answers from backends pass unchanged.

use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// The request is a gRPC call.
pub fn is_grpc(req: &RequestHeader) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.len() >= 16
                && v[..16].eq_ignore_ascii_case(b"application/grpc")
                && matches!(v.get(16), None | Some(b'+' | b';'))
        })
}

/// The `grpc-status` for an answer the proxy would give with HTTP status `status`.
pub fn status_for(status: u16) -> u8 {
    match status {
        400 | 413 | 414 | 417 | 431 | 501 => 13,
        401 => 16,
        403 => 7,
        404 => 5,
        405 => 12,
        429 => 8,
        502 | 503 => 14,
        504 => 4,
        _ => 2,
    }
}

/// The head of a trailers-only gRPC error for HTTP status `status`, saying `message`.
pub fn error_head(status: u16, message: &str) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(200, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/grpc")?;
    resp.insert_header("grpc-status", status_for(status).to_string())?;
    resp.insert_header("grpc-message", percent_encode(message.trim_end()))?;
    Ok(resp)
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The standard gRPC health check (`grpc.health.v1.Health/Check`) as an active health
/// check of a cluster: a backend passes when it answers `SERVING` with `grpc-status: 0`.
/// It speaks HTTP/2 over the cluster's own connection settings (h2c, or TLS with `h2`).
pub struct HealthCheck {
    connector: pingora_core::connectors::http::Connector,
    peer: pingora_core::upstreams::peer::HttpPeer,
    /// The request's body: the gRPC frame of a `HealthCheckRequest { service }`.
    body: bytes::Bytes,
    /// `:authority` of the check.
    authority: String,
    fall: usize,
    rise: usize,
}

impl HealthCheck {
    /// A check asking about `service` through peers like `template`, with `timeout` for
    /// connecting and for the answer, `fall`/`rise` consecutive results to change health.
    pub fn new(
        template: pingora_core::upstreams::peer::HttpPeer,
        service: &str,
        authority: &str,
        timeout: std::time::Duration,
        fall: u32,
        rise: u32,
    ) -> HealthCheck {
        let mut peer = template;
        peer.options.alpn = pingora_core::protocols::ALPN::H2;
        peer.options.connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        HealthCheck {
            connector: pingora_core::connectors::http::Connector::new(None),
            peer,
            body: health_request(service),
            authority: authority.to_owned(),
            fall: fall as usize,
            rise: rise as usize,
        }
    }
}

/// The gRPC frame (uncompressed, length-prefixed) of `HealthCheckRequest { service }`:
/// protobuf field 1, a string.
fn health_request(service: &str) -> bytes::Bytes {
    let mut message = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        message.push(0x0a);
        let mut len = service.len();
        while len >= 0x80 {
            message.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        message.push(len as u8);
        message.extend_from_slice(service.as_bytes());
    }
    let mut frame = Vec::with_capacity(message.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    frame.into()
}

/// The `status` of a `HealthCheckResponse` frame (field 1, an enum; 1 is `SERVING`);
/// absent means 0, `UNKNOWN`.
fn health_status(frame: &[u8]) -> Option<u64> {
    let len = u32::from_be_bytes(frame.get(1..5)?.try_into().ok()?) as usize;
    let mut msg = frame.get(5..5 + len)?;
    let mut status = 0;
    let varint = |msg: &mut &[u8]| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = msg.split_first()?;
            *msg = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    };
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        match key & 7 {
            0 => {
                let v = varint(&mut msg)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let n = varint(&mut msg)? as usize;
                msg = msg.get(n..)?;
            }
            1 => msg = msg.get(8..)?,
            5 => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn unhealthy(why: String) -> Box<pingora_core::Error> {
    pingora_core::Error::explain(
        pingora_core::ErrorType::Custom("gRPC health check failed"),
        why,
    )
}

#[async_trait::async_trait]
impl pingora_load_balancing::health_check::HealthCheck for HealthCheck {
    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.rise
        } else {
            self.fall
        }
    }

    async fn check(&self, target: &pingora_load_balancing::Backend) -> Result<()> {
        use pingora_core::protocols::http::client::HttpSession;
        let mut peer = self.peer.clone();
        peer._address = target.addr.clone();
        let (session, _) = self.connector.get_http_session(&peer).await?;
        let HttpSession::H2(mut h2) = session else {
            return Err(unhealthy("the backend does not speak HTTP/2".into()));
        };
        let mut req = RequestHeader::build("POST", b"/grpc.health.v1.Health/Check", None)?;
        req.insert_header(http::header::HOST, self.authority.as_str())?;
        req.insert_header(http::header::CONTENT_TYPE, "application/grpc")?;
        req.insert_header(http::header::TE, "trailers")?;
        h2.write_request_header(Box::new(req), false)?;
        h2.write_request_body(self.body.clone(), true).await?;
        h2.read_response_header().await?;
        let head = h2
            .response_header()
            .ok_or_else(|| unhealthy("no answer".into()))?;
        if head.status != 200 {
            return Err(unhealthy(format!("HTTP status {}", head.status)));
        }
        let head_status = head
            .headers
            .get("grpc-status")
            .map(|v| v.as_bytes().to_vec());
        let mut body = Vec::new();
        while let Some(chunk) = h2.read_response_body().await? {
            body.extend_from_slice(&chunk);
            if body.len() > 64 * 1024 {
                return Err(unhealthy("answer over 64 KiB".into()));
            }
        }
        let grpc_status = match head_status {
            Some(s) => Some(s),
            None => h2
                .read_trailers()
                .await?
                .and_then(|t| t.get("grpc-status").map(|v| v.as_bytes().to_vec())),
        };
        match grpc_status.as_deref() {
            Some(b"0") => {}
            Some(s) => {
                return Err(unhealthy(format!(
                    "grpc-status {}",
                    String::from_utf8_lossy(s)
                )))
            }
            None => return Err(unhealthy("no grpc-status".into())),
        }
        match health_status(&body) {
            Some(1) => Ok(()),
            Some(s) => Err(unhealthy(format!("serving status {s}, not SERVING (1)"))),
            None => Err(unhealthy("malformed HealthCheckResponse".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types() {
        // (content-type, is gRPC)
        let cases = [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("Application/GRPC;charset=utf-8", true),
            ("application/grpc-web", false),
            ("application/grpcx", false),
            ("application/json", false),
        ];
        for (ct, grpc) in cases {
            let mut req = RequestHeader::build("POST", b"/pkg.Svc/Call", None).unwrap();
            req.insert_header("content-type", ct).unwrap();
            assert_eq!(is_grpc(&req), grpc, "{ct}");
        }
        let req = RequestHeader::build("POST", b"/", None).unwrap();
        assert!(!is_grpc(&req));
    }

    #[test]
    fn health_messages() {
        // HealthCheckRequest { service: "a.B" }, framed.
        assert_eq!(&health_request("a.B")[..], b"\0\0\0\0\x05\x0a\x03a.B");
        assert_eq!(&health_request("")[..], b"\0\0\0\0\0");
        let long = "s".repeat(200);
        assert_eq!(&health_request(&long)[5..8], b"\x0a\xc8\x01");
        // HealthCheckResponse { status }.
        assert_eq!(health_status(b"\0\0\0\0\x02\x08\x01"), Some(1));
        assert_eq!(health_status(b"\0\0\0\0\x02\x08\x02"), Some(2));
        assert_eq!(health_status(b"\0\0\0\0\0"), Some(0), "absent: UNKNOWN");
        // An unknown field before it is skipped.
        assert_eq!(health_status(b"\0\0\0\0\x05\x12\x01x\x08\x01"), Some(1));
        assert_eq!(health_status(b"\0\0\0\0\x09\x08"), None, "cut short");
        assert_eq!(health_status(b"\0\0"), None);
    }

    #[test]
    fn trailers_only_errors() {
        let head = error_head(503, "no healthy backend in cluster `api` 100%\n").unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["grpc-status"], "14");
        assert_eq!(
            head.headers["grpc-message"],
            "no healthy backend in cluster `api` 100%25"
        );
        assert_eq!(status_for(504), 4);
        assert_eq!(status_for(404), 5);
        assert_eq!(status_for(418), 2);
    }
}
