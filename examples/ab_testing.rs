// cargo run --example ab_testing
// curl -i '127.0.0.1:6188/?beta=true'   (or: curl -i -b beta=true 127.0.0.1:6188/)
//
// A/B testing: beta testers (`beta=true` in the query string or in a cookie) reach the
// beta environment, everyone else production. Replaces the guide's "根据查询参数或 Cookie
// 选择上游服务器", which searched the raw strings (`query.contains("beta=true")`, so
// `notbeta=true` counted too); here the query and the cookies are parsed.

proxy_runtime::routes! {
    /// Beta testers to the beta environment, everyone else to production.
    proxy AbTesting;

    /// The beta environment.
    cluster beta { backends: ["127.0.0.1:9131"] }
    /// Production, taken in turn.
    cluster production { backends: ["127.0.0.1:9132", "127.0.0.1:9133"] }

    /// A beta tester: `?beta=true` or the cookie `beta=true` (not `notbeta=true`).
    let is_beta = query("beta") == "true" || cookie("beta") == "true";

    /// Beta testers.
    route beta: is_beta => beta;
    /// Everyone else.
    route default: _ => production;
}

fn main() {
    switchyard::run_example::<AbTesting>()
}
