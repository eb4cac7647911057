proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    let mobile_beta = is_mobile && query("beta") == "true";
    let is_mobile = header("user-agent").contains("Mobile");

    route beta: mobile_beta => web;
    route default: _ => web;
}

fn main() {}
