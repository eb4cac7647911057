// A table with one mistake, used as a working table is: the build shows that one error,
// not follow-on errors about the items the table generates (`builder`, `decide`, the
// enums, the predicates, the context).
use pingora_http::RequestHeader;

proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    let is_beta = cookie("beta") == "true";

    route beta: is_beta => webb;
    route default: _ => web;
}

fn describe(ctx: &GatewayCtx) -> String {
    format!(
        "{:?} {:?} beta={}",
        ctx.route, ctx.cluster, ctx.predicates.is_beta
    )
}

fn main() {
    let _builder = Gateway::builder();
    let req = RequestHeader::build("GET", b"/", None).unwrap();
    let d = Gateway::decide(&req, None).unwrap();
    assert_eq!(d.route, Some(GatewayRoute::Beta));
    for r in GatewayRoute::ALL {
        println!("{}", r.name());
    }
    assert_eq!(GatewayCluster::Web.name(), "web");
    println!("{}", describe(&GatewayCtx::default()));
}
