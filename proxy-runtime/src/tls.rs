//! TLS termination on the proxy's listeners: certificates chosen by SNI, reloaded while
//! serving, and optional client-certificate verification (mTLS).
//!
//! Every TLS listener serves one [`TlsConfig`]: a list of certificate/key pairs, the
//! first of which is the default for clients that send no SNI or a name no certificate
//! carries. A pair is chosen by the DNS names of its certificate (its subject alternative
//! names, or its common name when it has none): exact names first, then `*.example.com`
//! wildcards, which cover exactly one label. Files are read and checked when the server is
//! built — a missing file, a file without a certificate or key, a key that does not belong
//! to its certificate is a start-up error naming the file — so Pingora's
//! `TlsSettings::build`, which panics on unreadable files, is never reached with a path.
//!
//! [`Certificates::reload`] reads the files again and swaps the set atomically: handshakes
//! after it get the new certificates, connections already open keep theirs. The command
//! line reloads on SIGHUP; [`Handle::reload_tls`](crate::Handle::reload_tls) does it from
//! code. A reload that fails keeps the certificates being served and says why.

use crate::error::Error;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{TlsAccept, TlsAcceptCallbacks};
use pingora_core::protocols::tls::TlsRef;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
}

impl CertPair {
    /// `CERT,KEY` (`--cert` on the command line).
    pub fn parse(arg: &str) -> Result<CertPair, Error> {
        match arg.split_once(',') {
            Some((cert, key)) if !cert.trim().is_empty() && !key.trim().is_empty() => {
                Ok(CertPair {
                    cert: cert.trim().into(),
                    key: key.trim().into(),
                })
            }
            _ => Err(Error::BadArgument(format!(
                "--cert `{arg}`: expected CERT.pem,KEY.pem"
            ))),
        }
    }
}

/// Whether a TLS listener asks clients for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for (the default).
    #[default]
    Off,
    /// A certificate signed by the CA in this PEM file is required: a client without
    /// one, or with another, fails the handshake.
    Required(PathBuf),
    /// A certificate is asked for and, when given, must be signed by the CA in this
    /// file; clients without one are served too (hooks see no [`ClientCert`]).
    Optional(PathBuf),
}

/// What every TLS listener of a proxy serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificates; the first is the default.
    pub certs: Vec<CertPair>,
    /// Client-certificate verification.
    pub client_auth: ClientAuth,
    /// Offer HTTP/2 by ALPN (`h2`, then `http/1.1`); on by default.
    pub h2: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certs: Vec::new(),
            client_auth: ClientAuth::Off,
            h2: true,
        }
    }
}

/// The verified client certificate of a connection (mTLS), for hooks:
/// [`client_cert`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's distinguished name, `CN=alice, O=Example`.
    pub subject: String,
    /// The subject's common name, when it has one.
    pub common_name: Option<String>,
    /// The DNS names, e-mail addresses and URIs among its subject alternative names.
    pub alt_names: Vec<String>,
    /// Its serial number, hexadecimal.
    pub serial: String,
}

/// The verified client certificate of the connection `session` came in on; `None` on a
/// plain listener, or when the client sent none (`ClientAuth::Optional`).
pub fn client_cert(session: &pingora_proxy::Session) -> Option<&ClientCert> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<ClientCert>()
}

/// One certificate ready to serve, and the names it answers for.
struct Loaded {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
}

/// The certificate set being served: looked up by SNI on every handshake.
struct CertSet {
    /// In the order given; the first is the default.
    certs: Vec<Arc<CertifiedKey>>,
    /// Exact lowercase name → certificate index (the first certificate naming it wins).
    exact: HashMap<String, usize>,
    /// `*.example.com` as `example.com` → certificate index.
    wildcard: HashMap<String, usize>,
}

impl CertSet {
    fn new(loaded: Vec<Loaded>) -> CertSet {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (i, l) in loaded.iter().enumerate() {
            for name in &l.names {
                match name.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_owned()).or_insert(i),
                    None => exact.entry(name.clone()).or_insert(i),
                };
            }
        }
        CertSet {
            certs: loaded.into_iter().map(|l| l.key).collect(),
            exact,
            wildcard,
        }
    }

    /// The index of the certificate for `sni`: exact name, then wildcard, then the default.
    fn pick(&self, sni: Option<&str>) -> usize {
        let Some(name) = sni else { return 0 };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(&i) = self.exact.get(&name) {
            return i;
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent).copied())
            .unwrap_or(0)
    }
}

/// The certificates of the TLS listeners: a rustls resolver by SNI over a set that
/// [`reload`](Certificates::reload) swaps.
pub struct Certificates {
    files: Vec<CertPair>,
    current: RwLock<Arc<CertSet>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Read and check every pair.
    pub fn load(files: &[CertPair]) -> Result<Certificates, Error> {
        let set = load_set(files)?;
        Ok(Certificates {
            files: files.to_vec(),
            current: RwLock::new(Arc::new(set)),
        })
    }

    /// Read the files again and serve them from the next handshake on. On an error the
    /// certificates being served stay, and the error says which file failed.
    pub fn reload(&self) -> Result<(), Error> {
        let set = Arc::new(load_set(&self.files)?);
        match self.current.write() {
            Ok(mut current) => *current = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    fn set(&self) -> Arc<CertSet> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The certificate chain (DER, leaf first) served for `sni`: for `--routes` and tests.
    pub fn chain_for(&self, sni: Option<&str>) -> Vec<CertificateDer<'static>> {
        let set = self.set();
        set.certs
            .get(set.pick(sni))
            .map(|k| k.cert.clone())
            .unwrap_or_default()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.set();
        set.certs.get(set.pick(hello.server_name())).cloned()
    }
}

fn load_set(files: &[CertPair]) -> Result<CertSet, Error> {
    if files.is_empty() {
        return Err(Error::Startup {
            what: "a TLS listener needs at least one certificate (--cert CERT.pem,KEY.pem)".into(),
        });
    }
    let loaded = files.iter().map(load_pair).collect::<Result<Vec<_>, _>>()?;
    Ok(CertSet::new(loaded))
}

fn bad(file: &Path, why: impl fmt::Display) -> Error {
    Error::Startup {
        what: format!("TLS certificate `{}`: {why}", file.display()),
    }
}

fn load_pair(pair: &CertPair) -> Result<Loaded, Error> {
    let chain = crate::peer::read_certs(&pair.cert).map_err(|why| bad(&pair.cert, why))?;
    let key = crate::peer::read_key(&pair.key).map_err(|why| bad(&pair.key, why))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        bad(
            &pair.key,
            format!("unsupported private key ({e}); RSA, ECDSA P-256/P-384 and Ed25519 are"),
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        bad(
            &pair.key,
            format!("is not the key of `{}` ({e})", pair.cert.display()),
        )
    })?;
    let names = cert_names(&certified.cert[0]).map_err(|why| bad(&pair.cert, why))?;
    Ok(Loaded {
        key: Arc::new(certified),
        names,
    })
}

/// The DNS names a leaf certificate serves: its SAN DNS names, else its common name;
/// lowercase, without a trailing dot.
fn cert_names(der: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("malformed certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                names.push(n.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(|cn| cn.trim_end_matches('.').to_ascii_lowercase()),
        );
    }
    Ok(names)
}

/// Reads the verified client certificate after the handshake, for [`client_cert`].
struct IdentifyClient;

#[async_trait::async_trait]
impl TlsAccept for IdentifyClient {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        let der = tls.peer_certificate_der()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut alt_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            use x509_parser::extensions::GeneralName;
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) | GeneralName::RFC822Name(n) | GeneralName::URI(n) => {
                        alt_names.push((*n).to_owned())
                    }
                    _ => {}
                }
            }
        }
        let identity = ClientCert {
            subject: cert.subject().to_string(),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned),
            alt_names,
            serial: cert.raw_serial_as_string().replace(':', ""),
        };
        Some(Arc::new(identity))
    }
}

/// Pingora's settings for a TLS listener serving `certs` as `config` says.
pub(crate) fn settings(config: &TlsConfig, certs: Arc<Certificates>) -> Result<TlsSettings, Error> {
    let mut settings = match &config.client_auth {
        ClientAuth::Off => TlsSettings::intermediate("", ""),
        ClientAuth::Required(_) | ClientAuth::Optional(_) => {
            let callbacks: TlsAcceptCallbacks = Box::new(IdentifyClient);
            TlsSettings::with_callbacks(callbacks)
        }
    }
    .map_err(|e| Error::Startup {
        what: format!("TLS listener: {e}"),
    })?;
    settings.set_cert_resolver(certs);
    if let ClientAuth::Required(ca) | ClientAuth::Optional(ca) = &config.client_auth {
        let mut roots = rustls::RootCertStore::empty();
        for cert in crate::peer::read_certs(ca).map_err(|why| bad(ca, why))? {
            roots
                .add(cert)
                .map_err(|e| bad(ca, format!("not a usable CA certificate: {e}")))?;
        }
        let builder = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        );
        let builder = match config.client_auth {
            ClientAuth::Optional(_) => builder.allow_unauthenticated(),
            _ => builder,
        };
        let verifier = builder.build().map_err(|e| {
            bad(
                ca,
                format!("cannot verify client certificates with it: {e}"),
            )
        })?;
        settings.set_client_cert_verifier(verifier);
    }
    if config.h2 {
        settings.enable_h2();
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_pair_arguments() {
        assert_eq!(
            CertPair::parse("a.pem, a.key").unwrap(),
            CertPair {
                cert: "a.pem".into(),
                key: "a.key".into()
            }
        );
        for bad in ["a.pem", ",a.key", "a.pem,", ""] {
            assert!(CertPair::parse(bad).is_err(), "{bad}");
        }
    }
}
