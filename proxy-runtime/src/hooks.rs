//! User code beside the table: one trait, a default method per phase of a request.
//!
//! A table names its hooks type (`proxy Gateway(Auth);`); `Gateway::serve()` then builds it
//! with `Default`, and `Gateway::serve_with(Auth::new(..))` or
//! `Gateway::builder_with(..)` take a value, which may hold state (`Arc<..>`, a client
//! pool). Each method is `async` and receives the runtime's [`Ctx`] of the request — the
//! route and cluster enums, the backend, the tries, the timings and the named predicates
//! as typed fields — beside Pingora's session. A table without hooks gets [`NoHooks`],
//! whose methods are the defaults: they do nothing, are inlined, and cost nothing.
//!
//! ```no_run
//! use proxy_runtime::hooks::{Answer, Flow, Hooks, Result, Session};
//!
//! proxy_runtime::routes! {
//!     proxy Gateway(ApiKey);
//!     cluster api { backends: ["127.0.0.1:9001"] }
//!     route api: _ => api;
//! }
//!
//! // As public as the table's types, which name it.
//! #[derive(Default)]
//! pub struct ApiKey;
//!
//! impl Hooks<Gateway> for ApiKey {
//!     async fn routed(&self, session: &mut Session, ctx: &mut GatewayCtx) -> Result<Flow> {
//!         let ok = session.req_header().headers.get("x-api-key")
//!             .is_some_and(|k| k.as_bytes() == b"secret");
//!         Ok(if ok { Flow::Continue } else {
//!             Flow::Answer(Answer::new(401).header("www-authenticate", "ApiKey").body("no key\n"))
//!         })
//!     }
//! }
//!
//! fn main() {
//!     Gateway::serve();
//! }
//! ```

use crate::context::Ctx;
use crate::table::Table;
use bytes::Bytes;
use std::future::Future;

pub use pingora_core::{Error, ErrorType, Result};
pub use pingora_http::{RequestHeader, ResponseHeader};
pub use pingora_proxy::Session;

/// What a request hook decides.
#[derive(Debug)]
pub enum Flow {
    /// Go on to the next phase.
    Continue,
    /// Answer the client with this and stop: nothing is sent upstream.
    Answer(Answer),
}

/// An answer a hook gives instead of the backend's.
#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: Bytes,
    /// The first header that was not valid, reported when the answer is written.
    invalid: Option<String>,
}

impl Answer {
    /// An answer with `status` and no body.
    pub fn new(status: u16) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            invalid: None,
        }
    }

    /// Add a header line. An invalid name or value is not sent: the client gets a 500
    /// instead and the log says which header was wrong.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<http::HeaderName>,
        V: TryInto<http::HeaderValue>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(n), Ok(v)) => self.headers.push((n, v)),
            _ if self.invalid.is_none() => {
                self.invalid = Some(format!(
                    "header #{} of a hook's answer",
                    self.headers.len() + 1
                ))
            }
            _ => {}
        }
        self
    }

    /// The body (`Content-Length` is set from it).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header, body, and what was wrong with it if anything was.
    pub(crate) fn into_parts(
        self,
    ) -> (
        u16,
        Vec<(http::HeaderName, http::HeaderValue)>,
        Bytes,
        Option<String>,
    ) {
        (self.status, self.headers, self.body, self.invalid)
    }
}

/// User code run at each phase of a request of table `T`. Every method has a default that
/// does nothing; implement the ones you need, as `async fn`.
///
/// The phases, in order: [`request`](Hooks::request) (before routing: the request as it
/// came, which the hook may change — routing sees the change), [`routed`](Hooks::routed)
/// (after routing: `ctx.route`, `ctx.cluster` and `ctx.predicates` are set), then, for a
/// request sent upstream, [`upstream_request`](Hooks::upstream_request) (once per
/// attempt, after the rule's header actions), [`response`](Hooks::response) (the
/// answer's head, after the rule's response-header actions; also for the rule's own
/// `respond`/`redirect` answers), and [`log`](Hooks::log) (at the end of every request,
/// answered or failed).
///
/// A hook that returns `Err` ends the request: the client gets the error's status
/// (`Error::explain(ErrorType::HTTPStatus(403), "..")`), or 500.
pub trait Hooks<T: Table>: Send + Sync + 'static {
    /// Before routing. Answer (`Flow::Answer`) to stop the request here.
    fn request(
        &self,
        session: &mut Session,
        ctx: &mut Ctx<T>,
    ) -> impl Future<Output = Result<Flow>> + Send {
        let _ = (session, ctx);
        async { Ok(Flow::Continue) }
    }

    /// After routing, before anything is sent upstream or answered by the rule. Answer
    /// (`Flow::Answer`) to stop the request here: an authentication check goes here.
    fn routed(
        &self,
        session: &mut Session,
        ctx: &mut Ctx<T>,
    ) -> impl Future<Output = Result<Flow>> + Send {
        let _ = (session, ctx);
        async { Ok(Flow::Continue) }
    }

    /// The request about to be sent to `ctx.backend` (once per attempt): add, change or
    /// remove headers, or change the path.
    fn upstream_request(
        &self,
        session: &mut Session,
        request: &mut RequestHeader,
        ctx: &mut Ctx<T>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (session, request, ctx);
        async { Ok(()) }
    }

    /// The head of the answer about to be sent to the client.
    fn response(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut Ctx<T>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (session, response, ctx);
        async { Ok(()) }
    }

    /// The request is over: answered (`error` is `None`) or failed.
    fn log(
        &self,
        session: &mut Session,
        error: Option<&Error>,
        ctx: &mut Ctx<T>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (session, error, ctx);
        async {}
    }
}

/// The hooks of a table that names none: every phase does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl<T: Table> Hooks<T> for NoHooks {}
