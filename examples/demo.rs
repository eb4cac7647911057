// cargo run --example demo
// curl -i 127.0.0.1:6188/api/users
//
// The self-contained demo: four local backends on loopback (each answers with its own
// name) and a Switchyard proxy in front of them on 127.0.0.1:6188. Ctrl-C stops it.

use switchyard::Backend;

proxy_runtime::routes! {
    /// The demo gateway.
    proxy Demo;

    /// The API servers, checked every second.
    cluster api {
        backends: ["127.0.0.1:9001", "127.0.0.1:9002"],
        health: tcp { every: 1s, fall: 2, rise: 1 },
        retries: 1,
    }
    /// The web servers; web-a takes three requests for every one of web-b.
    cluster web {
        backends: ["127.0.0.1:9003" weight 3, "127.0.0.1:9004"],
    }
    /// Session-sticky servers: one `session_id` always lands on one backend.
    cluster sessions {
        backends: ["127.0.0.1:9001", "127.0.0.1:9003"],
        balance: consistent(cookie("session_id")),
    }

    /// Beta testers, by query or by cookie.
    let is_beta = query("beta") == "true" || cookie("beta") == "true";

    route api:      path_prefix("/api")                          => api;
    route session:  path_prefix("/app") && cookie("session_id")  => sessions;
    route beta:     is_beta                                      => split { api: 1, web: 1 };
    route admin:    path_prefix("/admin")                        => respond(403, "admin is closed in the demo\n");
    route default:  _                                            => web;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| {
        matches!(
            a.as_str(),
            "--routes" | "--explain" | "--help" | "-h" | "-t" | "--test"
        )
    }) {
        // Inspecting the table needs no backends.
        return Demo::serve();
    }
    let names = [
        ("api-1", 9001),
        ("api-2", 9002),
        ("web-a", 9003),
        ("web-b", 9004),
    ];
    let mut backends = Vec::new();
    for (name, port) in names {
        match Backend::spawn_on(name, ([127, 0, 0, 1], port).into()) {
            Ok(b) => backends.push(b),
            Err(e) => {
                eprintln!("error: cannot start backend {name} on 127.0.0.1:{port}: {e}");
                std::process::exit(1);
            }
        }
    }
    let listen = args
        .into_iter()
        .skip_while(|a| a != "--listen")
        .nth(1)
        .unwrap_or_else(|| proxy_runtime::server::DEFAULT_LISTEN.to_string());
    println!("Switchyard demo: backends api-1, api-2, web-a, web-b on 127.0.0.1:9001-9004");
    println!("proxy listening on http://{listen}  (Ctrl-C to stop)\n");
    println!("try:");
    println!("  curl -s {listen}/api/users                  # api-1 / api-2, round robin");
    println!("  curl -s {listen}/                           # web-a three times as often as web-b");
    println!("  curl -s -b session_id=42 {listen}/app       # the same backend every time");
    println!("  curl -s '{listen}/?beta=true'               # split between api and web");
    println!("  curl -si --path-as-is {listen}/static/../admin  # 403: paths are normalized first");
    println!("  cargo run --example demo -- --routes        # print the table\n");
    Demo::serve();
    drop(backends);
}
