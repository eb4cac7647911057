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
