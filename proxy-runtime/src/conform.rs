//! What a request must look like to be routed: the rules of RFC 9110/9112 that Pingora
//! leaves to the application, checked on the parsed head before routing.
//!
//! Pingora 0.9 has already answered 400 for several `Host` lines, userinfo in `Host` or the
//! target, a `Host` that differs from an absolute-form target's authority, `Content-Length`
//! values that differ or do not parse, a final transfer coding other than `chunked`, and
//! `Transfer-Encoding` on HTTP/1.0; it answers `CONNECT` with 405. When a request carries
//! both `Transfer-Encoding` and `Content-Length`, Pingora drops the latter and closes the
//! connection after the response (RFC 9112 §6.1). What is left is checked here, in one pass
//! over the header lines.

use crate::request::BadRequest;
use http::header::{CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING};
use pingora_http::RequestHeader;

/// What [`check_head`] found that the proxy must act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    /// `Expect: 100-continue`: answer `100 Continue` once the request is routed to a
    /// cluster, and do not forward the header (as nginx does), so the client sends its
    /// body without waiting.
    pub expects_continue: bool,
    /// Several `Content-Length` lines, or a comma list, all of one value (Pingora accepts
    /// these, RFC 9110 §8.6): forward a single line with that value.
    pub collapse_length: bool,
}

/// Check a request head: a `Host` on HTTP/1.1 and the request-target form (RFC 9112
/// §3.2), `Expect`, and framing headers Pingora lets through. The `Host` value itself is
/// checked while routing reads it ([`RequestView::with`](crate::request::RequestView::with)).
pub fn check_head(req: &RequestHeader) -> Result<Head, BadRequest> {
    check_target(req)?;
    let mut head = Head::default();
    let (mut host, mut lengths, mut codings) = (false, 0, 0);
    for (name, value) in req.headers.iter() {
        if name == HOST {
            host = true;
        } else if name == CONTENT_LENGTH {
            lengths += 1;
            head.collapse_length |= lengths > 1 || value.as_bytes().contains(&b',');
        } else if name == TRANSFER_ENCODING {
            // Only `chunked`, once: a coding we do not decode, or `chunked` applied twice,
            // could be framed differently by the backend (request smuggling). nginx
            // answers 501 too.
            for coding in value.as_bytes().split(|&c| c == b',') {
                codings += 1;
                if codings > 1 || !coding.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Err(BadRequest::UnsupportedTransferCoding);
                }
            }
        } else if name == EXPECT && req.version != http::Version::HTTP_10 {
            // An HTTP/1.0 client's expectation is ignored (RFC 9110 §10.1.1).
            if !value
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue")
            {
                return Err(BadRequest::UnknownExpectation);
            }
            head.expects_continue = true;
        }
    }
    if !host && req.version == http::Version::HTTP_11 {
        return Err(BadRequest::MissingHost);
    }
    // With `Transfer-Encoding`, Pingora has already removed `Content-Length`.
    head.collapse_length &= codings == 0;
    Ok(head)
}

/// The request target is in a form its method allows: origin-form (`/path`) or
/// absolute-form (`http://host/path`) for every method, `*` for `OPTIONS` only.
/// `GET admin`, `GET ./admin`, `GET ?x` and authority-form (`host:80`) are refused: Pingora
/// would forward them as `/`.
fn check_target(req: &RequestHeader) -> Result<(), BadRequest> {
    let target = req.raw_path();
    let ok = match target.first() {
        Some(b'/') => true,
        Some(b'*') => target.len() == 1 && req.method == http::Method::OPTIONS,
        _ => {
            let scheme = |s: &[u8]| {
                target
                    .get(..s.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(s))
            };
            scheme(b"http://") || scheme(b"https://")
        }
    };
    if ok {
        Ok(())
    } else {
        Err(BadRequest::BadTarget)
    }
}

/// The value of a single `Content-Length` for a head [`Head::collapse_length`] flagged.
pub fn single_length(req: &RequestHeader) -> Option<&[u8]> {
    let first = req.headers.get(CONTENT_LENGTH)?.as_bytes();
    first.split(|&c| c == b',').map(<[u8]>::trim_ascii).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> Result<Head, BadRequest> {
        let mut req = RequestHeader::build(method, target.as_bytes(), None).unwrap();
        req.append_header("host", "a.test").unwrap();
        for (k, v) in headers {
            req.append_header(k.to_string(), *v).unwrap();
        }
        check_head(&req)
    }

    #[test]
    fn checks_request_targets() {
        // (method, target, accepted)
        let cases = [
            ("GET", "/", true),
            ("GET", "/a?b=c", true),
            ("GET", "http://a.test/x", true),
            ("GET", "HTTPS://a.test/x", true),
            ("OPTIONS", "*", true),
            ("GET", "*", false),
            ("GET", "admin", false),
            ("GET", "./admin", false),
            ("GET", "?x", false),
            ("GET", "a.test:80", false),
            ("GET", "ftp://a.test/x", false),
        ];
        for (method, target, ok) in cases {
            let got = head(method, target, &[]);
            assert_eq!(got.is_ok(), ok, "{method} {target}: {got:?}");
            if !ok {
                assert_eq!(got, Err(BadRequest::BadTarget));
            }
        }
    }

    #[test]
    fn wants_a_host_on_http_1_1() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        assert_eq!(check_head(&req), Err(BadRequest::MissingHost));
        req.set_version(http::Version::HTTP_10);
        assert_eq!(check_head(&req), Ok(Head::default()));
    }

    #[test]
    fn checks_framing_and_expect() {
        let collapse = |h: &[(&str, &str)]| head("POST", "/", h).map(|h| h.collapse_length);
        assert_eq!(collapse(&[("content-length", "5")]), Ok(false));
        assert_eq!(
            collapse(&[("content-length", "5"), ("content-length", "5")]),
            Ok(true)
        );
        assert_eq!(collapse(&[("content-length", "5, 5")]), Ok(true));
        let te = |v: &str| head("POST", "/", &[("transfer-encoding", v)]);
        assert!(te("chunked").is_ok());
        assert!(te(" Chunked ").is_ok());
        for bad in ["gzip, chunked", "chunked, chunked", "identity"] {
            assert_eq!(te(bad), Err(BadRequest::UnsupportedTransferCoding), "{bad}");
        }
        let twice = head(
            "POST",
            "/",
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
        );
        assert_eq!(twice, Err(BadRequest::UnsupportedTransferCoding));
        let expect = |v: &str| head("POST", "/", &[("expect", v)]).map(|h| h.expects_continue);
        assert_eq!(expect("100-continue"), Ok(true));
        assert_eq!(expect("100-Continue"), Ok(true));
        assert_eq!(expect("200-ok"), Err(BadRequest::UnknownExpectation));
        let mut old = RequestHeader::build("POST", b"/", None).unwrap();
        old.set_version(http::Version::HTTP_10);
        old.append_header("expect", "100-continue").unwrap();
        assert_eq!(check_head(&old), Ok(Head::default()), "HTTP/1.0: ignored");
    }
}
