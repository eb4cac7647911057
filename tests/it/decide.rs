//! The pure decision function: every matcher, combinator and precedence rule, without a
//! socket.

use pingora_http::RequestHeader;
use proxy_runtime::{Response, Target};
use std::net::IpAddr;

proxy_runtime::routes! {
    proxy Lang;

    cluster a { backends: ["127.0.0.1:1"] }
    cluster b { backends: ["127.0.0.1:1"] }

    let mobile = header("user-agent").contains("Mobile") || header("user-agent").contains("Android");
    let beta = query("beta") == "true" || cookie("beta") == "true";
    let mobile_beta = mobile && beta;

    route exact_host:  host("exact.example.com")                  => a;
    route wildcard:    host("*.wild.example.com")                 => a;
    route exact_path:  path("/exact")                             => a;
    route regex:       path_regex("^/users/[0-9]+$")              => a;
    route methods:     path_prefix("/m") && method(PUT | DELETE)  => a;
    route hdr_present: header("x-present")                        => a;
    route hdr_eq:      header("x-eq") == "yes"                    => a;
    route hdr_starts:  header("x-starts").starts_with("abc")      => a;
    route q_present:   query("qp")                                => a;
    route q_contains:  query("qc").contains("needle")             => a;
    route q_starts:    query("qs").starts_with("pre")             => a;
    route ck_eq:       cookie("ce") == "v"                        => a;
    route ck_contains: cookie("cc").contains("mid")               => a;
    route ck_starts:   cookie("cs").starts_with("st")             => a;
    route ck_present:  cookie("cp")                               => a;
    route net4:        client_ip("10.0.0.0/8")                    => a;
    route net6:        client_ip("2001:db8::/32")                 => a;
    route both:        mobile_beta                                => b;
    route mob:         mobile                                     => a;
    route bet:         beta                                       => b;
    // `&&` binds tighter than `||`: this is `/p1 || (/p2 && x-p)`.
    route prec:        path_prefix("/p1") || path_prefix("/p2") && header("x-p") => a;
    route paren:       (path_prefix("/q1") || path_prefix("/q2")) && header("x-q") => b;
    route negated:     path_prefix("/n") && !header("x-n")        => a;
    route teapot:      path_prefix("/tea")                        => respond(418, "short and stout");
    route not_equal:   path_prefix("/ne") && query("v") != "no"   => a;
    route default:     _                                          => b;
}

fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build(method, path.as_bytes(), None).expect("request head");
    for (k, v) in headers {
        r.append_header(k.to_string(), *v).expect("header");
    }
    r
}

fn route(method: &str, path: &str, headers: &[(&str, &str)], client: Option<&str>) -> &'static str {
    let client: Option<IpAddr> = client.map(|c| c.parse().expect("ip"));
    let d = Lang::decide(&req(method, path, headers), client).expect("routable");
    d.route.expect("the table has a fallback").name()
}

#[test]
fn every_matcher_matches_what_it_says_and_nothing_else() {
    // (method, path, headers, client, expected rule)
    let cases: &[(&str, &str, &[(&str, &str)], Option<&str>, &str)] = &[
        (
            "GET",
            "/",
            &[("host", "exact.example.com")],
            None,
            "exact_host",
        ),
        (
            "GET",
            "/",
            &[("host", "EXACT.example.com.:443")],
            None,
            "exact_host",
        ),
        (
            "GET",
            "/",
            &[("host", "x.exact.example.com")],
            None,
            "default",
        ),
        (
            "GET",
            "/",
            &[("host", "a.wild.example.com")],
            None,
            "wildcard",
        ),
        ("GET", "/", &[("host", "wild.example.com")], None, "default"),
        (
            "GET",
            "/",
            &[("host", "notwild.example.com")],
            None,
            "default",
        ),
        ("GET", "/exact", &[], None, "exact_path"),
        ("GET", "/exact/", &[], None, "default"),
        ("GET", "/x/../exact", &[], None, "exact_path"),
        ("GET", "/users/42", &[], None, "regex"),
        ("GET", "/users/42x", &[], None, "default"),
        ("PUT", "/m", &[], None, "methods"),
        ("DELETE", "/m/x", &[], None, "methods"),
        ("GET", "/m", &[], None, "default"),
        ("GET", "/", &[("x-present", "")], None, "hdr_present"),
        ("GET", "/", &[("x-eq", "yes")], None, "hdr_eq"),
        ("GET", "/", &[("x-eq", "yess")], None, "default"),
        (
            "GET",
            "/",
            &[("x-eq", "no"), ("x-eq", "yes")],
            None,
            "hdr_eq",
        ),
        ("GET", "/", &[("x-starts", "abcdef")], None, "hdr_starts"),
        ("GET", "/", &[("x-starts", "xabc")], None, "default"),
        ("GET", "/?qp", &[], None, "q_present"),
        ("GET", "/?x=1&qp=", &[], None, "q_present"),
        ("GET", "/?xqp=1", &[], None, "default"),
        ("GET", "/?qc=a%20needle%21", &[], None, "q_contains"),
        ("GET", "/?qc=need", &[], None, "default"),
        ("GET", "/?qs=prefix", &[], None, "q_starts"),
        ("GET", "/?qs=%70re", &[], None, "q_starts"),
        ("GET", "/", &[("cookie", "a=1; ce=v")], None, "ck_eq"),
        ("GET", "/", &[("cookie", "xce=v")], None, "default"),
        ("GET", "/", &[("cookie", "cc=amidb")], None, "ck_contains"),
        ("GET", "/", &[("cookie", "cs=start")], None, "ck_starts"),
        (
            "GET",
            "/",
            &[("cookie", "a=b"), ("cookie", "cp=1")],
            None,
            "ck_present",
        ),
        ("GET", "/", &[], Some("10.2.3.4"), "net4"),
        ("GET", "/", &[], Some("::ffff:10.2.3.4"), "net4"),
        ("GET", "/", &[], Some("11.2.3.4"), "default"),
        ("GET", "/", &[], Some("2001:db8::1"), "net6"),
        ("GET", "/", &[], Some("2001:db9::1"), "default"),
        (
            "GET",
            "/",
            &[("user-agent", "X Android"), ("cookie", "beta=true")],
            None,
            "both",
        ),
        ("GET", "/", &[("user-agent", "Mobile")], None, "mob"),
        ("GET", "/?beta=true", &[], None, "bet"),
        ("GET", "/?notbeta=true", &[], None, "default"),
        ("GET", "/", &[("cookie", "notbeta=true")], None, "default"),
        ("GET", "/p1", &[], None, "prec"),
        ("GET", "/p2", &[], None, "default"),
        ("GET", "/p2", &[("x-p", "1")], None, "prec"),
        ("GET", "/q1", &[], None, "default"),
        ("GET", "/q1", &[("x-q", "1")], None, "paren"),
        ("GET", "/q2", &[("x-q", "1")], None, "paren"),
        ("GET", "/n", &[], None, "negated"),
        ("GET", "/n", &[("x-n", "1")], None, "default"),
        ("GET", "/ne?v=yes", &[], None, "not_equal"),
        ("GET", "/ne", &[], None, "not_equal"),
        ("GET", "/ne?v=no", &[], None, "default"),
    ];
    for (method, path, headers, client, want) in cases {
        assert_eq!(
            route(method, path, headers, *client),
            *want,
            "{method} {path} {headers:?} from {client:?}"
        );
    }
}

#[test]
fn decisions_carry_targets_and_predicates() {
    let d = Lang::decide(&req("GET", "/tea", &[]), None).unwrap();
    assert_eq!(
        d.response(),
        Some(Response {
            status: 418,
            body: "short and stout"
        })
    );
    // --explain names the fixed answer the same way.
    let e =
        proxy_runtime::inspect::explain::<Lang>("GET http://x/tea", &[], None).expect("explains");
    assert!(
        e.contains(r#"target: respond(418, "short and stout")"#),
        "{e}"
    );
    let d = Lang::decide(&req("GET", "/", &[("user-agent", "Mobile")]), None).unwrap();
    assert_eq!(d.target, Target::Cluster(LangCluster::A));
    assert_eq!(
        (
            d.predicates.mobile,
            d.predicates.beta,
            d.predicates.mobile_beta
        ),
        (true, false, false)
    );
    assert_eq!(LangRoute::ALL.len(), 26);
    assert_eq!(LangCluster::B.name(), "b");
}

/// A naive first-match interpreter of a small rule language, to check that the compiled
/// tree (host dispatch, prefix trie, grouping) picks exactly the rule a linear scan would.
mod model {
    proxy_runtime::routes! {
        proxy Gen;
        cluster c { backends: ["127.0.0.1:1"] }
        route r0: host("a.test") && path_prefix("/x") => c;
        route r1: path_prefix("/y") => c;
        route r2: host("b.test") => c;
        route r3: host("a.test") && header("h") => c;
        route r4: host("c.test") || path_prefix("/z") => c;
        route r5: !host("a.test") && path_prefix("/x") => c;
        route r6: path_prefix("/x/y") && header("h") => c;
        route r7: path_prefix("/x/") && !header("h") => c;
        route r8: path_prefix("/xy") => c;
        route r9: header("h") && path_prefix("/w") => c;
        route r10: host("a.test") => c;
        route r11: path_prefix("/") && header("h") => c;
        route r12: _ => c;
    }

    pub fn linear(host: &str, path: &str, h: bool) -> usize {
        let seg = |p: &str| {
            if p.ends_with('/') {
                path.starts_with(p)
            } else {
                path == p || path.starts_with(&format!("{p}/"))
            }
        };
        let rules = [
            host == "a.test" && seg("/x"),
            seg("/y"),
            host == "b.test",
            host == "a.test" && h,
            host == "c.test" || seg("/z"),
            host != "a.test" && seg("/x"),
            seg("/x/y") && h,
            seg("/x/") && !h,
            seg("/xy"),
            h && seg("/w"),
            host == "a.test",
            seg("/") && h,
            true,
        ];
        rules.iter().position(|&m| m).unwrap_or(usize::MAX)
    }

    pub fn compiled(host: &str, path: &str, h: bool) -> usize {
        let mut r = pingora_http::RequestHeader::build("GET", path.as_bytes(), None).unwrap();
        r.insert_header("host", host).unwrap();
        if h {
            r.insert_header("h", "1").unwrap();
        }
        let d = Gen::decide(&r, None).unwrap();
        GenRoute::ALL
            .iter()
            .position(|x| Some(*x) == d.route)
            .unwrap_or(usize::MAX)
    }
}

proptest::proptest! {
    #[test]
    fn compiled_tree_agrees_with_a_linear_scan(
        host in proptest::sample::select(vec!["a.test", "b.test", "c.test", "d.test", "A.TEST"]),
        path in proptest::sample::select(vec![
            "/", "/x", "/x/", "/x/1", "/x/y", "/x/yz", "/x/y/1", "/xy", "/xyz", "/xy/1",
            "/y", "/y/2", "/z", "/zz", "/w", "/w/q", "/wq", "/q",
        ]),
        h: bool,
    ) {
        proptest::prop_assert_eq!(model::compiled(host, path, h), model::linear(&host.to_ascii_lowercase(), path, h));
    }
}
