// cargo run --example discovery
// curl -s 127.0.0.1:6188/                                  # app-11, app-12 .. then app-12, app-13
// curl -s -b sid=alice 127.0.0.1:6188/session              # the same sessions backend every time
//
// Backends found by DNS name and followed while the proxy runs. Cluster `app` is the
// name `app.discovery.test` (every address it has, on port 9701), re-resolved every 2 s;
// cluster `sessions` is the SRV name `_http._tcp.sessions.discovery.test`, whose records
// give ports and weights. Without `--dns`, the example runs its own DNS server on
// loopback and backends on 127.0.0.11-13 and 127.0.0.21-22, and every 10 s moves
// `app.discovery.test` to another pair of addresses (the log says `backends now ...`):
// the curl loop above follows it without a failed request.
//
// Against a real DNS server instead: `cargo run --example discovery -- --dns 10.0.0.2:53`,
// or without `--dns` inside a network whose resolver knows the names (/etc/resolv.conf).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use switchyard::dns::{DnsServer, SrvRecord};
use switchyard::Backend;

proxy_runtime::routes! {
    /// A service found by its DNS name, and a sessions service found by SRV.
    proxy Discovery;

    cluster app {
        backends: ["app.discovery.test:9701"],
        resolve: { every: 2s },
    }
    cluster sessions {
        backends: [srv("_http._tcp.sessions.discovery.test")],
        resolve: { every: 2s },
        balance: consistent(cookie("sid")),
    }

    route sessions: path_prefix("/session") => sessions;
    route default: _ => app;
}

/// 127.0.0.`last`.
fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The example's own DNS server and backends; they run while the returned values live.
fn local_world() -> std::io::Result<(DnsServer, Vec<Backend>)> {
    let dns = DnsServer::start("discovery.test.")?;
    let mut backends = Vec::new();
    for last in [11, 12, 13] {
        let addr = SocketAddr::new(loopback(last), 9701);
        backends.push(Backend::spawn_on(&format!("app-{last}"), addr)?);
    }
    let mut records = Vec::new();
    for (last, weight) in [(21u8, 3u16), (22, 1)] {
        let name = format!("sessions-{last}");
        backends.push(Backend::spawn_on(
            &name,
            SocketAddr::new(loopback(last), 9702),
        )?);
        dns.set_addrs(&format!("{name}.discovery.test"), &[loopback(last)], 5);
        records.push(SrvRecord {
            priority: 10,
            weight,
            port: 9702,
            target: format!("{name}.discovery.test"),
        });
    }
    dns.set_srv("_http._tcp.sessions.discovery.test", &records, 5);
    dns.set_addrs("app.discovery.test", &[loopback(11), loopback(12)], 2);
    Ok((dns, backends))
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a.starts_with("--dns")) {
        proxy_runtime::serve_from::<Discovery, _, _>(args);
        return;
    }
    let (dns, _backends) = match local_world() {
        Ok(world) => world,
        Err(e) => {
            eprintln!("error: cannot start the example's DNS server and backends: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "DNS server on {} (try: dig @{} -p {} app.discovery.test)",
        dns.addr(),
        dns.addr().ip(),
        dns.addr().port()
    );
    let dns_addr = dns.addr();
    std::thread::spawn(move || {
        // Every 10 s one address leaves `app.discovery.test` and another joins.
        let pairs = [[11, 12], [12, 13], [13, 11]];
        for step in 1.. {
            std::thread::sleep(Duration::from_secs(10));
            let pair = pairs[step % pairs.len()];
            dns.set_addrs("app.discovery.test", &pair.map(loopback), 2);
            println!(
                "app.discovery.test is now 127.0.0.{} and 127.0.0.{}",
                pair[0], pair[1]
            );
        }
    });
    if !args.iter().any(|a| a.starts_with("--listen")) {
        args.extend(["--listen".to_owned(), "127.0.0.1:6188".to_owned()]);
    }
    args.extend(["--dns".to_owned(), dns_addr.to_string()]);
    proxy_runtime::serve_from::<Discovery, _, _>(args);
}
