//! gRPC through the proxy with real tonic peers: the standard health service
//! (`grpc.health.v1`, unary `Check` and server-streaming `Watch`) on a tonic server that
//! speaks h2c, reached by a tonic client over h2c and over TLS; the backend's own gRPC
//! errors pass through, and the proxy's failures are gRPC errors (`UNAVAILABLE`,
//! `NOT_FOUND`), not pages.

use crate::pki::{self, Ca, KeyKind};
use crate::support::*;
use std::net::SocketAddr;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::HealthReporter;

proxy_runtime::routes! {
    proxy Grpc;
    // h2c to a plaintext gRPC server.
    cluster health { backends: ["127.0.0.1:1"], alpn: h2 }
    cluster slow { backends: ["127.0.0.1:1"], alpn: h2, timeouts: { read: 300ms } }
    route gone: header("x-gone") => respond(404, "no such service here");
    route slow: header("x-slow") => slow;
    // The standard gRPC health check decides which backends take calls.
    cluster checked {
        backends: ["127.0.0.1:1"],
        alpn: h2,
        health: grpc { service: "switchyard.test.Echo", every: 200ms },
    }
    route checked: header("x-checked") => checked;
    route default: _ => health;
}

const SERVICE: &str = "switchyard.test.Echo";

/// A tonic server with the health service on an ephemeral loopback port (h2c).
struct GrpcServer {
    addr: SocketAddr,
    reporter: HealthReporter,
    rt: tokio::runtime::Runtime,
}

fn grpc_server() -> GrpcServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (reporter, service) = tonic_health::server::health_reporter();
    rt.block_on(reporter.set_service_status(SERVICE, tonic_health::ServingStatus::Serving));
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    GrpcServer { addr, reporter, rt }
}

/// A tonic channel to `addr` over h2c.
async fn h2c_channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("h2c to the proxy")
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

/// Unary and server-streaming calls on `channel`, through the proxy to `server`.
async fn calls(channel: Channel, server: &GrpcServer) {
    let mut client = HealthClient::new(channel);
    let r = client.check(check(SERVICE)).await.expect("unary call");
    assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
    // The backend's own error (in its trailers-only answer) reaches the client.
    let e = client.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    let mut watch = client
        .watch(check(SERVICE))
        .await
        .expect("streaming call")
        .into_inner();
    let first = watch.message().await.unwrap().expect("first message");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    server
        .reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::NotServing)
        .await;
    let second = watch.message().await.unwrap().expect("second message");
    assert_eq!(second.status, ServingStatus::NotServing as i32);
    server
        .reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let third = watch.message().await.unwrap().expect("third message");
    assert_eq!(third.status, ServingStatus::Serving as i32);
}

#[test]
fn unary_and_streaming_calls_over_h2c_and_tls() {
    let server = grpc_server();
    let ca = Ca::new("grpc test CA");
    let dir = pki::dir("grpc");
    let (cert, key) = ca
        .server(&["grpc.test"], KeyKind::Ecdsa)
        .write(&dir, "grpc");
    let proxy = Grpc::builder()
        .backends("health", [server.addr.to_string()])
        .h2c(true)
        .listen("127.0.0.1:0")
        .listen_tls("127.0.0.1:0")
        .cert(cert, key)
        .start()
        .expect("proxy starts");
    let (plain, tls) = (proxy.addrs()[0], proxy.addrs()[1]);
    server.rt.block_on(async {
        calls(h2c_channel(plain).await, &server).await;
        let tls_config = ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca.pem()))
            .domain_name("grpc.test");
        let over_tls = Endpoint::from_shared(format!("https://{tls}"))
            .unwrap()
            .tls_config(tls_config)
            .unwrap()
            .connect()
            .await
            .expect("h2 over TLS to the proxy");
        calls(over_tls, &server).await;
    });
}

#[test]
fn the_proxys_own_failures_are_grpc_errors() {
    let server = grpc_server();
    // Nothing listens on a port taken and released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let stalling = Backend::spawn_stalling("stalling").unwrap();
    let proxy = Grpc::builder()
        .backends("health", [closed.to_string()])
        .backends("slow", [stalling.addr_string()])
        .h2c(true)
        .start()
        .expect("proxy starts");
    server.rt.block_on(async {
        let mut client = HealthClient::new(h2c_channel(proxy.addr()).await);
        let e = client.check(check(SERVICE)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");
        assert!(e.message().contains("cluster `health`"), "{e:?}");

        // A `respond(404, ..)` rule answers a gRPC call with NOT_FOUND and its text.
        let mut call = tonic::Request::new(check(SERVICE));
        call.metadata_mut().insert("x-gone", "1".parse().unwrap());
        let e = client.check(call).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
        assert_eq!(e.message(), "no such service here");

        // A backend that does not answer within `read`: DEADLINE_EXCEEDED.
        let mut call = tonic::Request::new(check(SERVICE));
        call.metadata_mut().insert("x-slow", "1".parse().unwrap());
        let e = client.check(call).await.unwrap_err();
        assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    });
    // A plain HTTP client still gets the page.
    let a = get(&client(), proxy.addr(), "/", &[]);
    assert_eq!(a.status, 502);
    assert!(a.body.contains("cluster `health`"), "{}", a.body);
}

#[test]
fn a_grpc_health_check_takes_a_not_serving_backend_out_and_back() {
    let server = grpc_server();
    let proxy = Grpc::builder()
        .backends("health", [server.addr.to_string()])
        .backends("checked", [server.addr.to_string()])
        .h2c(true)
        .start()
        .expect("proxy starts");
    server.rt.block_on(async {
        let mut client = HealthClient::new(h2c_channel(proxy.addr()).await);
        let call = || {
            let mut call = tonic::Request::new(check(SERVICE));
            call.metadata_mut()
                .insert("x-checked", "1".parse().unwrap());
            call
        };
        let r = client.check(call()).await.expect("healthy backend answers");
        assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);

        // NOT_SERVING: within a few checks the proxy stops sending calls there.
        server
            .reporter
            .set_service_status(SERVICE, tonic_health::ServingStatus::NotServing)
            .await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let e = loop {
            match client.check(call()).await {
                Err(e) => break e,
                Ok(r) => assert_eq!(r.into_inner().status, ServingStatus::NotServing as i32),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still routed after 5 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");
        assert!(
            e.message()
                .contains("no healthy backend in cluster `checked`"),
            "{e:?}"
        );

        // SERVING again: back in.
        server
            .reporter
            .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
            .await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Ok(r) = client.check(call()).await {
                assert_eq!(r.into_inner().status, ServingStatus::Serving as i32);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not back after 5 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
}
