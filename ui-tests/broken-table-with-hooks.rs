// A table with one mistake and a hooks type written against its context: the build shows
// that one error, not follow-on errors about `GatewayCtx`, `GatewayRoute` or the hooks.
use proxy_runtime::hooks::{Flow, Hooks, Result, Session};

proxy_runtime::routes! {
    proxy Gateway(Auth);

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    route admin: path_prefix("/admin") => web { strip_prefix: "/v1" };
    route default: _ => web;
}

#[derive(Default)]
struct Auth;

impl Hooks<Gateway> for Auth {
    async fn routed(&self, _session: &mut Session, ctx: &mut GatewayCtx) -> Result<Flow> {
        let _admin = ctx.route == Some(GatewayRoute::Admin);
        Ok(Flow::Continue)
    }
}

fn main() {
    let _builder = Gateway::builder();
    let _with = Gateway::builder_with(Auth);
}
