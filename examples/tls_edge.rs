// cargo run --example tls_edge
// curl --cacert target/tls_edge/ca.pem --resolve www.example.test:6189:127.0.0.1 https://www.example.test:6189/
// curl --cacert target/tls_edge/ca.pem --resolve api.example.test:6189:127.0.0.1 --http2 -sv https://api.example.test:6189/v1 2>&1 | grep -E '^< HTTP|subject:'
// curl -i -H 'host: www.example.test' 127.0.0.1:6188/docs?x=1        # 308 to https://www.example.test:6189/docs?x=1
// curl --http2-prior-knowledge -H 'host: api.example.test' -si 127.0.0.1:6188/v1 | head -1   # h2c: HTTP/2 308
//
// The edge of a site: plain HTTP on 6188 is redirected to HTTPS on 6189, where one TLS
// listener serves two certificates chosen by the name the client asks for (SNI):
// `www.example.test` (the default, also for clients that send no name) and
// `api.example.test`. HTTP/2 is offered by ALPN, and h2c is accepted on the plain listener.
// `kill -HUP PID` reads the certificate files again without dropping a connection.
//
// Without `--cert`, the example makes a throwaway CA and both certificates in
// target/tls_edge/ (trust ca.pem, as the curl lines above do).

use std::path::Path;

proxy_runtime::routes! {
    /// A site behind one TLS listener with two certificates.
    proxy TlsEdge;

    cluster www { backends: ["127.0.0.1:9601"] }
    cluster api { backends: ["127.0.0.1:9602"] }

    // Requests that came in on the plain listener go to HTTPS, same host and URI.
    route to_https: !tls => redirect(308, "https://{host}:6189{uri}");
    route api: host("api.example.test") => api;
    route www: _ => www;
}

/// The certificates of the example, made once with a CA of its own.
fn make_certificates(dir: &Path) -> std::io::Result<()> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let err = |e: rcgen::Error| std::io::Error::other(e.to_string());
    std::fs::create_dir_all(dir)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Switchyard tls_edge example CA");
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca = ca.self_signed(&ca_key).map_err(err)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    for name in ["www.example.test", "api.example.test"] {
        let mut p = CertificateParams::new(vec![name.to_owned()]).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().map_err(err)?;
        let cert = p.signed_by(&key, &ca, &ca_key).map_err(err)?;
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem())?;
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())?;
    }
    Ok(())
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a.starts_with("--cert")) {
        let dir = Path::new("target/tls_edge");
        if let Err(e) = make_certificates(dir) {
            eprintln!(
                "error: cannot write the example's certificates in {}: {e}",
                dir.display()
            );
            std::process::exit(1);
        }
        for name in ["www.example.test", "api.example.test"] {
            let base = dir.join(name);
            args.push("--cert".into());
            args.push(format!("{}.pem,{}.key", base.display(), base.display()));
        }
        println!("certificates in {} (trust ca.pem)", dir.display());
    }
    if !args.iter().any(|a| a.starts_with("--listen")) {
        args.extend(
            [
                "--listen",
                "127.0.0.1:6188",
                "--listen-tls",
                "127.0.0.1:6189",
                "--h2c",
            ]
            .map(String::from),
        );
    }
    switchyard::run_example_from::<TlsEdge>(args, proxy_runtime::NoHooks);
}
