// Six different mistakes: all of them are reported by one build.
proxy_runtime::routes! {
    proxy Gateway;

    cluster api {
        backends: ["127.0.0.1:9001", "127.0.0.1:9001"],
    }
    cluster web {
        backends: ["127.0.0.1:9002" weight 0, "127.0.0.1:9003"],
    }

    route upload: method(post) => api;
    route user: path_regex("^/users/([0-9]+$") => api;
    route default: _ => webb { max_body: 1024 };
}

fn main() {}
