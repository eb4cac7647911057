proxy_runtime::routes! {
    proxy Gateway;

    cluster web {
        backends: ["127.0.0.1:9443"],
        tls: { sni: "web.internal", client_cert: "/etc/switchyard/client.pem" },
    }

    route default: _ => web;
}

fn main() {}
