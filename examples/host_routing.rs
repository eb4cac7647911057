// cargo run --example host_routing
// curl -i -H 'Host: api.example.com' 127.0.0.1:6188/
//
// Routing on the `Host` header, with a default for unknown hosts. Replaces the guide's
// "根据 Host 头部选择上游服务器" (`match host_header { "api.example.com" => .. }`); here the
// comparison ignores case, the port and a trailing dot, so `API.Example.com:6188` is
// still `api.example.com`.

proxy_runtime::routes! {
    /// Host-based routing: one cluster per site, and a default.
    proxy HostRouting;

    /// The servers of `api.example.com`.
    cluster api { backends: ["127.0.0.1:9111"] }
    /// The servers of `blog.example.com`.
    cluster blog { backends: ["127.0.0.1:9112"] }
    /// The servers of `secure.example.com` (plain HTTP here; see `upstream_options` for TLS).
    cluster secure { backends: ["127.0.0.1:9113"] }
    /// Every other host.
    cluster fallback { backends: ["127.0.0.1:9114"] }

    /// `Host: api.example.com`, in any case, with or without a port.
    route api: host("api.example.com") => api;
    /// `Host: blog.example.com`.
    route blog: host("blog.example.com") => blog;
    /// `Host: secure.example.com`.
    route secure: host("secure.example.com") => secure;
    /// An unknown or missing host.
    route default: _ => fallback;
}

fn main() {
    switchyard::run_example::<HostRouting>()
}
