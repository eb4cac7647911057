//! The command line: overrides, `--routes` and `--explain`, and their errors. (The
//! entry point run as a process: `lifecycle.rs`.)

use proxy_runtime::inspect::{describe, explain};
use proxy_runtime::{Error, Launch};

proxy_runtime::routes! {
    proxy Cli;
    cluster api { backends: ["127.0.0.1:9001" weight 3, "127.0.0.1:9002"] }
    cluster web { backends: ["[::1]:9003"] }
    route api: host("api.example.com") => api;
    route default: _ => web;
}

/// The launch description `--backend` arguments make.
fn parse_overrides(args: &[&str]) -> Result<Launch<Cli>, Error> {
    let mut launch = Launch::default();
    for a in args {
        launch.backend_arg(a)?;
    }
    Ok(launch)
}

#[test]
fn overrides_parse_addresses_and_weights() {
    let Ok(o) = parse_overrides(&["api=127.0.0.1:1@5, 127.0.0.1:2"]) else {
        panic!("valid overrides");
    };
    assert!(o.is_overridden(0), "api overridden");
    let api = o.entries(0);
    assert_eq!(
        api.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec!["127.0.0.1:1 weight 5", "127.0.0.1:2"]
    );
    assert!(!o.is_overridden(1), "web keeps its declared backends");
}

#[test]
fn overrides_reject_what_they_cannot_use() {
    let err = |a: &str| match parse_overrides(&[a]) {
        Err(e) => e,
        Ok(_) => panic!("`{a}` accepted"),
    };
    assert!(matches!(
        err("apii=127.0.0.1:1"),
        Error::UnknownCluster { .. }
    ));
    assert_eq!(
        err("apii=127.0.0.1:1").to_string(),
        "unknown cluster `apii`; the table declares: api, web"
    );
    // A name is a backend too; a malformed one, or one without a port, is not.
    assert!(parse_overrides(&["api=localhost:80,srv(_http._tcp.api.internal)"]).is_ok());
    assert!(matches!(err("api=local_host:80"), Error::BadArgument(_)));
    assert!(matches!(err("api=localhost"), Error::BadArgument(_)));
    assert!(matches!(
        err("api=srv(_http._udp.x)"),
        Error::BadArgument(_)
    ));
    assert!(matches!(err("api=127.0.0.1:1@0"), Error::BadArgument(_)));
    assert!(matches!(err("api="), Error::EmptyCluster("api")));
    assert!(matches!(err("api"), Error::BadArgument(_)));
    assert!(matches!(
        err("api=127.0.0.1:1,127.0.0.1:1"),
        Error::BadArgument(_)
    ));
}

#[test]
fn routes_and_explain_describe_the_table() {
    let text = describe(&Launch::<Cli>::default());
    assert!(
        text.contains("  api      host(\"api.example.com\")  =>  api\n"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:9001 weight 3"), "{text}");
    assert!(text.contains("[::1]:9003 weight 1"), "{text}");
    // The failure defaults are stated (no `retries`, `passive` or `health` declared).
    assert!(text.contains("ambiguous paths: Reject\n"), "{text}");
    assert!(
        text.contains(
            "retries=each-backend-once-on-connect-failure passive=1 failures -> 10s aside"
        ),
        "{text}"
    );
    let e = explain::<Cli>("GET http://API.example.com/x/../y?z=1", &[], None).expect("explains");
    assert!(
        e.contains("route: api")
            && e.contains("cluster `api`")
            && e.contains("normalized path: /y"),
        "{e}"
    );
    assert!(explain::<Cli>("nonsense", &[], None).is_err());
}

mod reasons {
    proxy_runtime::routes! {
        proxy Reasons;
        cluster api { backends: ["127.0.0.1:9001", "127.0.0.1:9002"] }
        cluster web { backends: ["127.0.0.1:9101"] }
        let is_beta = cookie("beta") == "true" || query("beta") == "1";
        route v2:   host("api.example.com") && path_prefix("/v2") => api;
        route beta: is_beta && method(GET) => api;
        route docs: path_prefix("/docs") => web;
        route rest: _ => web;
    }
}

#[test]
fn explain_says_why_each_earlier_rule_did_not_match() {
    use reasons::Reasons;
    let launch = Launch::<Reasons>::default();
    let e = proxy_runtime::inspect::explain_in(
        &launch,
        "POST http://www.example.com/docs/../docs/intro?beta=0",
        &["cookie: beta=false".to_owned()],
        None,
    )
    .expect("explains");
    let want = "rules before it that did not match:\n  \
        v2: host is `www.example.com`, not `api.example.com`\n  \
        beta: predicate `is_beta` is false (cookie `beta` is `false`, which is not `true`; and query parameter `beta` is `0`, which is not `1`)\n\
        route: docs\n\
        target: cluster `web`\n\
        normalized path: /docs/intro\n";
    assert!(e.starts_with(want), "{e}");
    assert!(
        e.ends_with("backend now: 127.0.0.1:9101 (cluster `web`)"),
        "{e}"
    );
    // The same request as a GET with the cookie right: the second rule, and the first
    // backend of `api` for a proxy started now.
    let e = proxy_runtime::inspect::explain_in(
        &launch,
        "GET http://www.example.com/x",
        &["cookie: beta=true".to_owned()],
        None,
    )
    .expect("explains");
    assert!(
        e.contains("  v2: host is `www.example.com`, not `api.example.com`\nroute: beta\n"),
        "{e}"
    );
    assert!(e.contains("backend now: 127.0.0.1:900"), "{e}");
}
