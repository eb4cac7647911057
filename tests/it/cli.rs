//! The command line: overrides, `--routes` and `--explain`, and their errors.

use proxy_runtime::server::{describe, explain, parse_overrides};
use proxy_runtime::Error;

proxy_runtime::routes! {
    proxy Cli;
    cluster api { backends: ["127.0.0.1:9001" weight 3, "127.0.0.1:9002"] }
    cluster web { backends: ["[::1]:9003"] }
    route api: host("api.example.com") => api;
    route default: _ => web;
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn overrides_parse_addresses_and_weights() {
    let o = parse_overrides::<Cli>(&args(&["api=127.0.0.1:1@5, 127.0.0.1:2"])).expect("valid");
    let api = o[0].as_ref().expect("api overridden");
    assert_eq!(
        api.iter()
            .map(|m| (m.addr.to_string(), m.weight))
            .collect::<Vec<_>>(),
        vec![("127.0.0.1:1".into(), 5), ("127.0.0.1:2".into(), 1)]
    );
    assert!(o[1].is_none(), "web keeps its declared backends");
}

#[test]
fn overrides_reject_what_they_cannot_use() {
    let err = |a: &str| parse_overrides::<Cli>(&args(&[a])).unwrap_err();
    assert!(matches!(
        err("apii=127.0.0.1:1"),
        Error::UnknownCluster { .. }
    ));
    assert_eq!(
        err("apii=127.0.0.1:1").to_string(),
        "unknown cluster `apii`; the table declares: api, web"
    );
    assert!(matches!(err("api=localhost:80"), Error::BadAddress { .. }));
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
    let text = describe::<Cli>(&[None, None]);
    assert!(
        text.contains("  api      host(\"api.example.com\")  =>  api\n"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:9001 weight 3"), "{text}");
    assert!(text.contains("[::1]:9003 weight 1"), "{text}");
    let e = explain::<Cli>("GET http://API.example.com/x/../y?z=1", &[], None).expect("explains");
    assert!(
        e.contains("route: api")
            && e.contains("cluster `api`")
            && e.contains("normalized path: /y"),
        "{e}"
    );
    assert!(explain::<Cli>("nonsense", &[], None).is_err());
}
