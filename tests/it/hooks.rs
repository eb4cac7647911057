//! Hooks through real sockets: every phase, user state, answers from hooks, and the API-key
//! example as `cargo run --example api_key` serves it.

use crate::support::*;
use proxy_runtime::hooks::{
    Answer, Error, ErrorType, Flow, Hooks, RequestHeader, ResponseHeader, Result, Session,
};
use reqwest::blocking::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../examples/api_key.rs"]
#[allow(dead_code)]
mod api_key;

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("text header").to_owned())
}

fn send(proxy: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = client().get(format!("http://{proxy}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().expect("request through the proxy")
}

#[test]
fn api_key_example_refuses_without_a_key_and_tags_the_tenant_with_one() {
    let api = spawn_backend("api-1");
    let proxy = api_key::KeyedApi::builder()
        .backends("api", [api.addr_string()])
        .start()
        .expect("proxy starts");
    for headers in [&[][..], &[("x-api-key", "wrong")][..]] {
        let r = send(proxy.addr(), "/orders", headers);
        assert_eq!(r.status(), 401, "{headers:?}");
        assert_eq!(header(&r, "www-authenticate").as_deref(), Some("ApiKey"));
        assert!(r.text().unwrap().contains("x-api-key"));
    }
    assert_eq!(api.hits(), 0, "refused requests never reach the backend");
    let r = send(proxy.addr(), "/orders", &[("x-api-key", "key-globex")]);
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-backend").as_deref(), Some("api-1"));
    assert_eq!(
        header(&r, "x-req-x-tenant").as_deref(),
        Some("globex"),
        "upstream_request added it"
    );
    assert_eq!(
        header(&r, "x-req-x-api-key"),
        None,
        "the key is not forwarded"
    );
    assert_eq!(
        header(&r, "x-tenant").as_deref(),
        Some("globex"),
        "response added it"
    );
    // The public route needs no key.
    assert_eq!(send(proxy.addr(), "/public/doc", &[]).status(), 200);
    // A hooks value with its own state.
    let proxy = api_key::KeyedApi::builder_with(api_key::ApiKeys::new([("k2", "initech")]))
        .backends("api", [api.addr_string()])
        .start()
        .expect("proxy starts");
    assert_eq!(
        send(proxy.addr(), "/orders", &[("x-api-key", "key-globex")]).status(),
        401
    );
    let r = send(proxy.addr(), "/orders", &[("x-api-key", "k2")]);
    assert_eq!(header(&r, "x-tenant").as_deref(), Some("initech"));
}

proxy_runtime::routes! {
    proxy Phases(Recorder);
    cluster v1 { backends: ["127.0.0.1:1"] }
    cluster v2 { backends: ["127.0.0.1:1"] }
    let wants_v2 = header("x-api-version") == "2";
    route v2: wants_v2 => v2;
    route fixed: path("/fixed") => respond(200, "fixed\n");
    route v1: _ => v1;
}

/// What the hooks saw, shared with the test.
#[derive(Default)]
pub struct Seen {
    logged: AtomicU64,
    /// `(route, status, error?)` per logged request.
    log: Mutex<Vec<(String, u16, bool)>>,
}

pub struct Recorder(Arc<Seen>);

impl Hooks<Phases> for Recorder {
    async fn request(&self, session: &mut Session, _ctx: &mut PhasesCtx) -> Result<Flow> {
        // Before routing: a legacy header becomes the one the rules read.
        if session.req_header().headers.contains_key("x-legacy-v2") {
            session
                .req_header_mut()
                .insert_header("x-api-version", "2")?;
        }
        if session.req_header().uri.path() == "/early" {
            return Ok(Flow::Answer(Answer::new(418).body("early\n")));
        }
        Ok(Flow::Continue)
    }

    async fn routed(&self, session: &mut Session, ctx: &mut PhasesCtx) -> Result<Flow> {
        if session.req_header().uri.path() == "/forbidden" {
            return Err(Error::explain(
                ErrorType::HTTPStatus(403),
                "forbidden by a hook",
            ));
        }
        if session.req_header().uri.path() == "/bad-answer" {
            return Ok(Flow::Answer(Answer::new(200).header("bad name", "x")));
        }
        ctx.extensions
            .insert(format!("predicate wants_v2={}", ctx.predicates.wants_v2));
        Ok(Flow::Continue)
    }

    async fn upstream_request(
        &self,
        _session: &mut Session,
        request: &mut RequestHeader,
        ctx: &mut PhasesCtx,
    ) -> Result<()> {
        request.insert_header("x-hook-route", ctx.route_name())?;
        request.insert_header("x-hook-try", ctx.tries.to_string())?;
        Ok(())
    }

    async fn response(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut PhasesCtx,
    ) -> Result<()> {
        response.insert_header("x-hook-cluster", ctx.cluster_name())?;
        if let Some(note) = ctx.extensions.get::<String>() {
            response.insert_header("x-hook-note", note.as_str())?;
        }
        Ok(())
    }

    async fn log(&self, session: &mut Session, error: Option<&Error>, ctx: &mut PhasesCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        self.0
            .log
            .lock()
            .unwrap()
            .push((ctx.route_name().to_owned(), status, error.is_some()));
        self.0.logged.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn every_phase_runs_with_the_typed_context() {
    let (v1, v2) = (spawn_backend("v1"), spawn_backend("v2"));
    let seen = Arc::new(Seen::default());
    let proxy = Phases::builder_with(Recorder(seen.clone()))
        .backends("v1", [v1.addr_string()])
        .backends("v2", [v2.addr_string()])
        .start()
        .expect("proxy starts");

    // `request` changed the head before routing: the v2 rule matched.
    let r = send(proxy.addr(), "/a", &[("x-legacy-v2", "1")]);
    assert_eq!(header(&r, "x-backend").as_deref(), Some("v2"));
    assert_eq!(header(&r, "x-req-x-hook-route").as_deref(), Some("v2"));
    assert_eq!(header(&r, "x-req-x-hook-try").as_deref(), Some("1"));
    assert_eq!(header(&r, "x-hook-cluster").as_deref(), Some("v2"));
    assert_eq!(
        header(&r, "x-hook-note").as_deref(),
        Some("predicate wants_v2=true")
    );

    let r = send(proxy.addr(), "/a", &[]);
    assert_eq!(header(&r, "x-backend").as_deref(), Some("v1"));
    assert_eq!(
        header(&r, "x-hook-note").as_deref(),
        Some("predicate wants_v2=false")
    );

    // The response hook also sees the rule's own answers.
    let r = send(proxy.addr(), "/fixed", &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-hook-cluster").as_deref(), Some("-"));

    // Answers and errors from hooks; none reaches a backend.
    let hits = v1.hits() + v2.hits();
    let r = send(proxy.addr(), "/early", &[]);
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap().as_str()),
        (418, "early\n")
    );
    assert_eq!(send(proxy.addr(), "/forbidden", &[]).status(), 403);
    assert_eq!(send(proxy.addr(), "/bad-answer", &[]).status(), 500);
    assert_eq!(v1.hits() + v2.hits(), hits);

    // `log` ran once per request, with the route and status.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.logged.load(Ordering::SeqCst) < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = seen.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            ("v2".to_owned(), 200, false),
            ("v1".to_owned(), 200, false),
            ("fixed".to_owned(), 200, false),
            ("-".to_owned(), 418, false),
            ("v1".to_owned(), 403, true),
            ("v1".to_owned(), 500, true),
        ]
    );
}
