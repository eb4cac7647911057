// cargo run -p switchyard-bench --profile production --bin dns_flipper -- \
//     --flip-ms 1000 --for 60 \
//     rr.sy.test=127.0.0.11,127.0.0.12,127.0.0.13/127.0.0.12,127.0.0.13,127.0.0.14 \
//     api.sy.test=127.0.0.11,127.0.0.12
//
// The DNS server of bench/swap.sh: a real authoritative server for one zone
// (switchyard::dns::DnsServer, hickory-server, UDP and TCP on an ephemeral port of
// 127.0.0.1). Prints its address on stdout, one line (`127.0.0.1:PORT`: the proxy's
// `--dns`), then keeps the A records of every name given two sets (`NAME=IPS/IPS`)
// alternating between them every FLIP_MS, the first set first; a name given one set
// (`NAME=IPS`) holds it. `--hold` holds the first set of every name (records steady).
// Each flip is one line on stderr (`flip N: set A|B`), so a script can count them.
// It exits by itself after `--for SECONDS` (default 60), and on SIGINT or SIGTERM.
//
// Arguments: [--zone ZONE] (default `sy.test.`) [--flip-ms MS] (or env FLIP_MS; default
// 1000) [--for SECONDS] [--ttl SECONDS] (of the records; default 1) [--hold]
// NAME=IP[,IP...][/IP[,IP...]]... Every address must be a loopback one (127.0.0.0/8 or
// ::1): the benchmarks stay on loopback.

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use switchyard::dns::DnsServer;

const USAGE: &str = "usage: dns_flipper [--zone ZONE] [--flip-ms MS] [--for SECONDS] [--ttl SECONDS] [--hold] NAME=IP[,IP...][/IP[,IP...]]...";

/// One name and its one or two address sets.
struct Record {
    name: String,
    sets: Vec<Vec<IpAddr>>,
}

fn fail(message: &str) -> ! {
    eprintln!("dns_flipper: {message}\n{USAGE}");
    std::process::exit(2);
}

fn number(flag: &str, value: Option<String>) -> u64 {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail(&format!("{flag} needs a whole number")))
}

fn parse_record(arg: &str) -> Record {
    let (name, sets) = arg
        .split_once('=')
        .unwrap_or_else(|| fail(&format!("`{arg}`: expected NAME=IPS[/IPS]")));
    let sets: Vec<Vec<IpAddr>> = sets
        .split('/')
        .map(|set| {
            set.split(',')
                .map(|ip| {
                    let ip: IpAddr = ip
                        .trim()
                        .parse()
                        .unwrap_or_else(|_| fail(&format!("`{arg}`: `{ip}` is not an IP")));
                    if !ip.is_loopback() {
                        fail(&format!("`{arg}`: {ip} is not a loopback address"));
                    }
                    ip
                })
                .collect()
        })
        .collect();
    if name.is_empty() || sets.len() > 2 {
        fail(&format!("`{arg}`: expected NAME=IPS or NAME=IPS/IPS"));
    }
    Record {
        name: name.to_owned(),
        sets,
    }
}

fn main() {
    let mut zone = "sy.test.".to_owned();
    let mut flip_ms: u64 = std::env::var("FLIP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (mut seconds, mut ttl, mut hold) = (60u64, 1u64, false);
    let mut records = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--zone" => zone = args.next().unwrap_or_else(|| fail("--zone needs a zone")),
            "--flip-ms" => flip_ms = number("--flip-ms", args.next()),
            "--for" => seconds = number("--for", args.next()),
            "--ttl" => ttl = number("--ttl", args.next()),
            "--hold" => hold = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ if arg.starts_with('-') => fail(&format!("unknown option {arg}")),
            _ => records.push(parse_record(&arg)),
        }
    }
    if records.is_empty() {
        fail("no NAME=IPS given");
    }
    if flip_ms == 0 {
        fail("--flip-ms must be above 0");
    }
    let ttl = u32::try_from(ttl).unwrap_or_else(|_| fail("--ttl is too large"));

    let dns = DnsServer::start(&zone).unwrap_or_else(|e| {
        eprintln!("dns_flipper: the DNS server did not start: {e}");
        std::process::exit(1);
    });
    let set = |which: usize| {
        for r in &records {
            dns.set_addrs(&r.name, &r.sets[which.min(r.sets.len() - 1)], ttl);
        }
    };
    set(0);
    // The records are in place before the address is printed: a proxy started with it
    // resolves the first set.
    println!("{}", dns.addr());
    std::io::stdout().flush().ok();

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let flips = !hold && records.iter().any(|r| r.sets.len() == 2);
    eprintln!(
        "dns_flipper: serving {zone} on {} for {seconds} s; {}",
        dns.addr(),
        if flips {
            format!("flipping every {flip_ms} ms")
        } else {
            "records held".to_owned()
        }
    );
    let period = Duration::from_millis(flip_ms);
    let mut n: u32 = 0;
    loop {
        // On a fixed schedule (start + n × period), so the flips do not drift.
        let next = started + period * (n + 1);
        if next >= until {
            break;
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        n += 1;
        if flips {
            let which = (n % 2) as usize;
            set(which);
            eprintln!(
                "dns_flipper: flip {n}: set {} at {:.3} s",
                ["A", "B"][which],
                started.elapsed().as_secs_f64()
            );
        }
    }
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    eprintln!("dns_flipper: {seconds} s are up, stopping");
}
