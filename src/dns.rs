//! A real authoritative DNS server on loopback, whose records a test or an example changes
//! while a proxy resolves them: hickory-server with one in-memory zone, over UDP and TCP on
//! an ephemeral port of 127.0.0.1.

use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running DNS server authoritative for one zone.
pub struct DnsServer {
    addr: SocketAddr,
    origin: Name,
    zone: Arc<InMemoryZoneHandler>,
    serial: AtomicU32,
    runtime: tokio::runtime::Runtime,
}

/// One SRV record: `priority weight port target`.
#[derive(Debug, Clone)]
pub struct SrvRecord {
    /// Lower is preferred.
    pub priority: u16,
    /// Relative weight among records of one priority.
    pub weight: u16,
    /// The port of the target.
    pub port: u16,
    /// The target host name (resolved to addresses by A/AAAA records).
    pub target: String,
}

impl DnsServer {
    /// Start a server for `zone` (e.g. `"sy.test."`) on 127.0.0.1, UDP and TCP on one
    /// ephemeral port. The zone starts with its SOA record alone: every other name is
    /// NXDOMAIN until a record is set.
    pub fn start(zone: &str) -> io::Result<DnsServer> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let origin = Name::from_str(zone).map_err(|e| invalid(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dns-server")
            .enable_all()
            .build()?;
        let mut handler =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(
            Name::from_str(&format!("ns.{zone}")).map_err(|e| invalid(e.to_string()))?,
            Name::from_str(&format!("admin.{zone}")).map_err(|e| invalid(e.to_string()))?,
            1,
            60,
            60,
            600,
            0,
        );
        handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        let zone = Arc::new(handler);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![zone.clone()]);
        // One port for both transports: UDP first, then TCP on the same number (retried on
        // the rare clash with another process's TCP port).
        let (udp, tcp) = (0..16)
            .find_map(|_| {
                let udp = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = std::net::TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::AddrInUse, "no port free for UDP and TCP")
            })?;
        let addr = udp.local_addr()?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        {
            let _guard = runtime.enter();
            let udp = tokio::net::UdpSocket::from_std(udp)?;
            let tcp = tokio::net::TcpListener::from_std(tcp)?;
            let mut server = hickory_server::Server::new(catalog);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 65_535);
            runtime.spawn(async move {
                let _ = server.block_until_done().await;
            });
        }
        Ok(DnsServer {
            addr,
            origin,
            zone,
            serial: AtomicU32::new(2),
            runtime,
        })
    }

    /// Where it listens (UDP and TCP): give it to the proxy as `--dns`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `label` inside the zone as a full name: `api` → `api.sy.test.`.
    pub fn name(&self, label: &str) -> String {
        format!("{label}.{}", self.origin)
    }

    /// Make `name`'s A and AAAA records `ips` (replacing what it had) with `ttl` seconds.
    /// An empty list removes them.
    pub fn set_addrs(&self, name: &str, ips: &[IpAddr], ttl: u32) {
        let name = full_name(name);
        let records = ips
            .iter()
            .map(|ip| {
                let data = match ip {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                Record::from_rdata(name.clone(), ttl, data)
            })
            .collect();
        self.replace(&name, &[RecordType::A, RecordType::AAAA], records);
    }

    /// Make `name`'s SRV records `records` (replacing what it had) with `ttl` seconds.
    pub fn set_srv(&self, name: &str, records: &[SrvRecord], ttl: u32) {
        let name = full_name(name);
        let records = records
            .iter()
            .map(|r| {
                let srv = SRV::new(r.priority, r.weight, r.port, full_name(&r.target));
                Record::from_rdata(name.clone(), ttl, RData::SRV(srv))
            })
            .collect();
        self.replace(&name, &[RecordType::SRV], records);
    }

    /// Remove every record of `name`: it answers NXDOMAIN.
    pub fn remove(&self, name: &str) {
        let name = full_name(name);
        self.replace(
            &name,
            &[RecordType::A, RecordType::AAAA, RecordType::SRV],
            Vec::new(),
        );
    }

    /// Drop `types` of `name` and insert `records`, on the server's runtime; returns when
    /// done, so the next query sees the change.
    fn replace(&self, name: &Name, types: &[RecordType], records: Vec<Record>) {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let (zone, name, types) = (self.zone.clone(), LowerName::new(name), types.to_vec());
        let (done, wait) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            {
                let mut map = zone.records_mut().await;
                for t in types {
                    map.remove(&RrKey::new(name.clone(), t));
                }
            }
            for r in records {
                zone.upsert(r, serial).await;
            }
            let _ = done.send(());
        });
        let _ = wait.recv_timeout(Duration::from_secs(5));
    }
}

/// `name` as an absolute DNS name (a trailing dot added when missing).
fn full_name(name: &str) -> Name {
    let absolute = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    Name::from_str(&absolute).unwrap_or_else(|_| Name::root())
}
