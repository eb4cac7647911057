// cargo run --example api_key
// curl -i 127.0.0.1:6188/orders                              # 401, no backend reached
// curl -i -H 'x-api-key: key-acme' 127.0.0.1:6188/orders    # 200, x-tenant: acme
//
// User code beside the table: a hooks type checks an API key after routing (the public
// route needs none), tells the backend which tenant the key belongs to, adds a response
// header and logs each request with its typed context. Hooks hold state (here the key
// table, behind an `Arc` shared by every worker) and are `async`.

use proxy_runtime::hooks::{
    Answer, Error, Flow, Hooks, RequestHeader, ResponseHeader, Result, Session,
};
use std::collections::HashMap;
use std::sync::Arc;

proxy_runtime::routes! {
    /// An API whose callers present a key.
    proxy KeyedApi(ApiKeys);

    cluster api { backends: ["127.0.0.1:9531"] }

    route public: path_prefix("/public") => api;
    route orders: _ => api;
}

/// The tenant a key belongs to, found in `routed` and used by the later phases.
#[derive(Clone)]
struct Tenant(Arc<str>);

/// API keys and their tenants.
#[derive(Clone)]
pub struct ApiKeys {
    tenants: Arc<HashMap<String, Arc<str>>>,
}

impl ApiKeys {
    /// Keys given as `(key, tenant)` pairs.
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let tenants = keys
            .into_iter()
            .map(|(k, t)| (k.to_owned(), Arc::from(t)))
            .collect();
        ApiKeys {
            tenants: Arc::new(tenants),
        }
    }
}

impl Default for ApiKeys {
    fn default() -> Self {
        ApiKeys::new([("key-acme", "acme"), ("key-globex", "globex")])
    }
}

impl Hooks<KeyedApi> for ApiKeys {
    async fn routed(&self, session: &mut Session, ctx: &mut KeyedApiCtx) -> Result<Flow> {
        if ctx.route == Some(KeyedApiRoute::Public) {
            return Ok(Flow::Continue);
        }
        let key = session.req_header().headers.get("x-api-key");
        match key
            .and_then(|k| k.to_str().ok())
            .and_then(|k| self.tenants.get(k))
        {
            Some(tenant) => {
                ctx.extensions.insert(Tenant(tenant.clone()));
                Ok(Flow::Continue)
            }
            None => Ok(Flow::Answer(
                Answer::new(401)
                    .header("www-authenticate", "ApiKey")
                    .header("content-type", "text/plain")
                    .body("401 an x-api-key header with a valid key is required\n"),
            )),
        }
    }

    async fn upstream_request(
        &self,
        _session: &mut Session,
        request: &mut RequestHeader,
        ctx: &mut KeyedApiCtx,
    ) -> Result<()> {
        // The backend trusts the proxy, not the client: the key stays here.
        request.remove_header("x-api-key");
        if let Some(Tenant(t)) = ctx.extensions.get::<Tenant>() {
            request.insert_header("x-tenant", t.as_ref())?;
        }
        Ok(())
    }

    async fn response(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut KeyedApiCtx,
    ) -> Result<()> {
        if let Some(Tenant(t)) = ctx.extensions.get::<Tenant>() {
            response.insert_header("x-tenant", t.as_ref())?;
        }
        Ok(())
    }

    async fn log(&self, session: &mut Session, error: Option<&Error>, ctx: &mut KeyedApiCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let tenant = ctx.extensions.get::<Tenant>().map_or("-", |t| &t.0);
        log::info!(
            "route={} cluster={} backend={:?} tenant={tenant} status={status} tries={} took={:?}{}",
            ctx.route_name(),
            ctx.cluster_name(),
            ctx.backend,
            ctx.tries,
            ctx.elapsed(),
            error.map(|e| format!(" error={e}")).unwrap_or_default(),
        );
    }
}

fn main() {
    switchyard::run_example::<KeyedApi>();
}
