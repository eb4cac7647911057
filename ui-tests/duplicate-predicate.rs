proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9001"],
    }

    let is_beta = query("beta") == "true";
    let is_beta = cookie("beta") == "true";

    route beta: is_beta => web;
    route default: _ => web;
}

fn main() {}
