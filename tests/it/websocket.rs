//! WebSocket through the proxy with real tokio-tungstenite peers: the upgrade is passed
//! through, messages flow both ways, and a quiet WebSocket outlives the cluster's HTTP
//! `read` timeout (it has its own idle timeout, `timeouts: { websocket }`).

// tungstenite's handshake callback returns its large `ErrorResponse` by value.
#![allow(clippy::result_large_err)]

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

proxy_runtime::routes! {
    proxy Sockets;
    // `read` is short: an HTTP request that waits longer is a 504; a WebSocket is not.
    cluster chat { backends: ["127.0.0.1:1"], timeouts: { read: 400ms, websocket: 5s } }
    route default: _ => chat;
}

/// A WebSocket server on loopback that answers each text message with `echo: TEXT`, and
/// the path it was opened on first.
fn echo_server(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut path = String::new();
                let callback =
                    |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                        path = req.uri().to_string();
                        Ok(resp)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let _ = ws.send(Message::text(format!("opened {path}"))).await;
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        if ws.send(Message::text(format!("echo: {t}"))).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn messages_pass_both_ways_and_a_quiet_socket_outlives_read() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let backend = echo_server(&rt);
    let proxy = Sockets::builder()
        .backends("chat", [backend.to_string()])
        .start()
        .expect("proxy starts");
    rt.block_on(async {
        let url = format!("ws://{}/chat/room1?u=7", proxy.addr());
        let (mut ws, resp) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .expect("handshake in time")
        .expect("upgrade through the proxy");
        assert_eq!(resp.status(), 101);
        let opened = tokio::time::timeout(Duration::from_secs(5), ws_next(&mut ws))
            .await
            .unwrap();
        assert_eq!(
            opened, "opened /chat/room1?u=7",
            "the path reached the backend"
        );
        for i in 0..3 {
            ws.send(Message::text(format!("m{i}"))).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), ws_next(&mut ws))
                .await
                .unwrap();
            assert_eq!(got, format!("echo: m{i}"));
        }
        // Quiet for three times the cluster's `read` timeout, then talk again.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        ws.send(Message::text("after the quiet")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), ws_next(&mut ws))
            .await
            .unwrap();
        assert_eq!(got, "echo: after the quiet");
        ws.close(None).await.unwrap();
    });
}

async fn ws_next<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}
