// cargo run --example path_routing
// curl -i 127.0.0.1:6188/api/users
//
// Routing on the path: `/api/..` goes to the API servers, `/static/..` to the static file
// servers, everything else to the default site. Replaces the guide's "根据路径选择上游服务器"
// (`path.starts_with("/api/")` in `upstream_peer`); prefixes here are segment-aware, so
// `/apiary` is not under `/api`, and matching runs on the normalized path.

proxy_runtime::routes! {
    /// Path-based routing: API, static files, and a default site.
    proxy PathRouting;

    /// The API servers, taken in turn.
    cluster api { backends: ["127.0.0.1:9101", "127.0.0.1:9102"] }
    /// The static file servers (`static` is a Rust keyword, hence `static_files`).
    cluster static_files { backends: ["127.0.0.1:9103"] }
    /// The default site, for every other path.
    cluster www { backends: ["127.0.0.1:9104"] }

    /// `/api` and everything under it (not `/apiary`).
    route api: path_prefix("/api") => api;
    /// `/static` and everything under it.
    route static_files: path_prefix("/static") => static_files;
    /// Anything else.
    route default: _ => www;
}

fn main() {
    switchyard::run_example::<PathRouting>()
}
