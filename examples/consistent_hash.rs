// cargo run --example consistent_hash
// curl -s -b session_id=42 127.0.0.1:6188/   (the same backend every time)
//
// Session affinity: the `session_id` cookie picks the backend by consistent (ketama)
// hashing, so one session always lands on one server, and removing a server moves only
// that server's sessions. A request without the cookie is hashed on its client IP.
// Replaces the guide's "基于请求特征的一致性哈希" (a hand-written cookie parser,
// `unwrap_or("default")` for every session-less request, and `select(id, 256)`).

proxy_runtime::routes! {
    /// Sticky sessions by the `session_id` cookie.
    proxy ConsistentHash;

    /// Four session servers; a `session_id` always maps to the same one.
    cluster sessions {
        backends: ["127.0.0.1:9161", "127.0.0.1:9162", "127.0.0.1:9163", "127.0.0.1:9164"],
        balance: consistent(cookie("session_id")),
    }

    /// Every request.
    route default: _ => sessions;
}

fn main() {
    switchyard::run_example::<ConsistentHash>()
}
