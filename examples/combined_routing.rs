// cargo run --example combined_routing
// curl -i -H 'Host: www.example.com' -A 'Mozilla/5.0 (Linux; Android 14) Mobile' 127.0.0.1:6188/
//
// Host, path and User-Agent together: `api.example.com` splits into API v2 (`/v2`) and
// v1, `www.example.com` into the shop (`/shop`), the mobile site and the desktop site, and
// any other host gets the default. Replaces the guide's "组合多种条件选择上游服务器" (nested
// `if host == .. { if path.starts_with(..) .. }` and `ctx.is_mobile_client`): the named
// predicate `is_mobile` becomes a typed `bool` field of the decision's and of the
// request context's `predicates` (`CombinedRoutingCtx`), set for every request.

proxy_runtime::routes! {
    /// Routing on host, path and device together.
    proxy CombinedRouting;

    /// API version 1 (`api.example.com`, any path but `/v2`).
    cluster api_v1 { backends: ["127.0.0.1:9121"] }
    /// API version 2 (`api.example.com/v2/..`).
    cluster api_v2 { backends: ["127.0.0.1:9122"] }
    /// The shop (`www.example.com/shop/..`).
    cluster shop { backends: ["127.0.0.1:9123"] }
    /// The mobile site.
    cluster mobile { backends: ["127.0.0.1:9124"] }
    /// The desktop site.
    cluster desktop { backends: ["127.0.0.1:9125"] }
    /// Every other host.
    cluster fallback { backends: ["127.0.0.1:9126"] }

    /// A phone or tablet browser; recorded in the context as `is_mobile`.
    let is_mobile = header("user-agent").contains("Mobile") || header("user-agent").contains("Android");

    /// API v2: its host and the `/v2` prefix.
    route api_v2: host("api.example.com") && path_prefix("/v2") => api_v2;
    /// API v1: the rest of the API host.
    route api_v1: host("api.example.com") => api_v1;
    /// The shop, for every device.
    route shop: host("www.example.com") && path_prefix("/shop") => shop;
    /// The site, on a mobile device.
    route mobile: host("www.example.com") && is_mobile => mobile;
    /// The site, on a desktop.
    route desktop: host("www.example.com") => desktop;
    /// Any other host.
    route default: _ => fallback;
}

fn main() {
    switchyard::run_example::<CombinedRouting>()
}
