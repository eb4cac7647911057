//! Peer construction: the `HttpPeer` (address, TLS, SNI, ALPN, timeouts) for one backend,
//! built once at start-up from an already-parsed address, so nothing here can fail or
//! resolve names on the request path.

use crate::error::Error;
use crate::spec::{Alpn, ClusterSpec};
use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use std::net::SocketAddr;

/// The peer template for backend `addr` of cluster `spec`.
pub fn build(spec: &ClusterSpec, addr: SocketAddr) -> Result<HttpPeer, Error> {
    let sni = spec.tls.map(|t| t.sni.to_owned()).unwrap_or_default();
    let mut peer = HttpPeer::new(addr, spec.tls.is_some(), sni);
    let o = &mut peer.options;
    let t = &spec.timeouts;
    o.connection_timeout = t.connect;
    o.total_connection_timeout = t.total_connect;
    o.read_timeout = t.read;
    o.write_timeout = t.write;
    o.idle_timeout = t.idle;
    if let Some(tls) = &spec.tls {
        o.verify_cert = tls.verify;
        o.verify_hostname = tls.verify_hostname;
        o.alternative_cn = tls.alternative_cn.map(str::to_owned);
        o.alpn = match tls.alpn {
            Alpn::H1 => ALPN::H1,
            Alpn::H2 => ALPN::H2,
            Alpn::H2H1 => ALPN::H2H1,
        };
        if tls.ca.is_some() || tls.client_cert.is_some() {
            return Err(Error::Startup {
                what: format!(
                    "cluster `{}`: `ca`, `client_cert` and `client_key` are not supported by \
                     this version of proxy-runtime",
                    spec.name
                ),
            });
        }
    }
    Ok(peer)
}
