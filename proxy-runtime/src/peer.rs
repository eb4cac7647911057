//! Peer construction: the `HttpPeer` (address, TLS, SNI, ALPN, CA, client certificate,
//! timeouts, bind address, keep-alive) for one backend, built once at start-up from an
//! already-parsed address, so nothing here can fail or resolve names on the request path.
//! Certificate and key files are read and parsed here, once; a missing or malformed file
//! stops start-up with a message naming it.

use crate::error::Error;
use crate::spec::{Alpn, ClusterSpec};
use pingora_core::connectors::l4::BindTo;
use pingora_core::protocols::l4::ext::TcpKeepalive;
use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::utils::tls::{CertKey, WrappedX509};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// TLS material of a cluster, loaded once and shared by its peers.
#[derive(Clone, Default)]
pub struct TlsFiles {
    ca: Option<Arc<[WrappedX509]>>,
    client: Option<Arc<CertKey>>,
}

/// Read the CA and client certificate files a cluster names.
pub fn load_tls(spec: &ClusterSpec) -> Result<TlsFiles, Error> {
    let Some(tls) = &spec.tls else {
        return Ok(TlsFiles::default());
    };
    let bad = |file: &str, why: String| Error::Startup {
        what: format!("cluster `{}`: {file}: {why}", spec.name),
    };
    let ca = match tls.ca {
        Some(file) => {
            let certs = read_certs(Path::new(file)).map_err(|why| bad(file, why))?;
            let wrapped: Vec<WrappedX509> = certs
                .into_iter()
                .map(|der| WrappedX509::new(der.to_vec(), pingora_core::utils::tls::parse_x509))
                .collect();
            Some(Arc::from(wrapped))
        }
        None => None,
    };
    let client = match (tls.client_cert, tls.client_key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(Path::new(cert)).map_err(|why| bad(cert, why))?;
            let key_der = read_key(Path::new(key)).map_err(|why| bad(key, why))?;
            let certs = certs.into_iter().map(|c| c.to_vec()).collect();
            Some(Arc::new(CertKey::new(certs, key_der.secret_der().to_vec())))
        }
        (None, None) => None,
        _ => {
            return Err(bad(
                "tls",
                "`client_cert` and `client_key` go together".into(),
            ))
        }
    };
    Ok(TlsFiles { ca, client })
}

/// Every certificate of a PEM file, as DER, each checked to parse as X.509 (Pingora's own
/// parser would panic on a malformed one later). Upstream CAs and client certificates, and
/// the TLS listeners' certificates (tls.rs), are read here.
pub(crate) fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let mut certs = Vec::new();
    for item in rustls_pemfile::certs(&mut pem.as_slice()) {
        let der = item.map_err(|e| format!("not a PEM certificate file: {e}"))?;
        x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| format!("malformed certificate: {e}"))?;
        certs.push(der);
    }
    if certs.is_empty() {
        return Err("no certificate in the file (expected `-----BEGIN CERTIFICATE-----`)".into());
    }
    Ok(certs)
}

/// The private key of a PEM file, as DER.
pub(crate) fn read_key(file: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err("no private key in the file (expected PKCS#8, PKCS#1 or SEC1 PEM)".into()),
        Err(e) => Err(format!("malformed private key: {e}")),
    }
}

/// The peer template for backend `addr` of cluster `spec`.
pub fn build(spec: &ClusterSpec, files: &TlsFiles, addr: SocketAddr) -> Result<HttpPeer, Error> {
    let sni = spec.tls.map(|t| t.sni.to_owned()).unwrap_or_default();
    let mut peer = HttpPeer::new(addr, spec.tls.is_some(), sni);
    peer.client_cert_key = files.client.clone();
    let o = &mut peer.options;
    let t = &spec.timeouts;
    o.connection_timeout = t.connect;
    o.total_connection_timeout = t.total_connect;
    o.read_timeout = t.read;
    o.write_timeout = t.write;
    o.idle_timeout = t.idle;
    if let Some(ip) = spec.bind_to {
        let mut bind = BindTo::default();
        bind.addr = Some(SocketAddr::new(ip, 0));
        o.bind_to = Some(bind);
    }
    if let Some(idle) = spec.tcp_keepalive {
        o.tcp_keepalive = Some(TcpKeepalive {
            idle,
            interval: Duration::from_secs(10),
            count: 5,
            #[cfg(target_os = "linux")]
            user_timeout: Duration::ZERO,
        });
    }
    if spec.h2c {
        // HTTP/2 only, over plaintext: Pingora then speaks h2 with prior knowledge.
        o.alpn = ALPN::H2;
    }
    if let Some(tls) = &spec.tls {
        o.verify_cert = tls.verify;
        o.verify_hostname = tls.verify_hostname;
        o.alternative_cn = tls.alternative_cn.map(str::to_owned);
        o.alpn = match tls.alpn {
            Alpn::H1 => ALPN::H1,
            Alpn::H2 => ALPN::H2,
            Alpn::H2H1 => ALPN::H2H1,
        };
        o.ca = files.ca.clone();
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Balance, Timeouts};

    #[test]
    fn cluster_options_reach_the_peer() {
        static SPEC: ClusterSpec = ClusterSpec {
            name: "c",
            backends: &[],
            balance: Balance::RoundRobin,
            health: None,
            retries: None,
            backup: None,
            tls: None,
            timeouts: Timeouts {
                connect: Some(Duration::from_millis(300)),
                total_connect: None,
                read: Some(Duration::from_secs(5)),
                write: None,
                idle: Some(Duration::from_secs(60)),
                websocket: None,
            },
            passive: None,
            bind_to: Some(crate::spec::ip_v4([127, 0, 0, 2])),
            tcp_keepalive: Some(Duration::from_secs(30)),
            h2c: true,
            resolve: crate::spec::Refresh::Ttl,
        };
        let peer = build(&SPEC, &TlsFiles::default(), "127.0.0.1:9".parse().unwrap()).unwrap();
        let o = &peer.options;
        assert_eq!(o.connection_timeout, Some(Duration::from_millis(300)));
        assert_eq!(o.read_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(
            o.bind_to.as_ref().and_then(|b| b.addr),
            Some("127.0.0.2:0".parse().unwrap())
        );
        assert_eq!(
            o.tcp_keepalive.as_ref().map(|k| k.idle),
            Some(Duration::from_secs(30))
        );
        assert_eq!(o.alpn, ALPN::H2, "h2c: HTTP/2 only, no TLS");
        assert!(!peer.is_tls());
    }
}
