//! The WebSocket echo over real TCP with a real client (tokio-tungstenite): the handshake,
//! messages both ways, pings, close from either side, the counters, and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use ringward_simhost::{SimConfig, SimHost};
use ringward_testkit::{client, eventually};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws = WebSocketStream<TcpStream>;

/// Bound on any single step.
const BOUND: Duration = Duration::from_secs(5);

async fn get(addr: SocketAddr, path: &str) -> client::Reply {
    client::get(addr, path).await.expect("answered")
}

async fn start() -> SimHost {
    SimHost::start("127.0.0.1:0".parse().unwrap(), SimConfig::named("sim-a"))
        .await
        .unwrap()
}

/// Opens a WebSocket on `path`; returns it with the `101`'s `x-simhost`.
async fn open(addr: SocketAddr, path: &str) -> (Ws, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let req = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    let (ws, resp) = tokio::time::timeout(BOUND, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let name = resp.headers()["x-simhost"].to_str().unwrap().to_owned();
    (ws, name)
}

/// The next message, within [`BOUND`]; `None` when the stream ended.
async fn next(ws: &mut Ws) -> Option<Message> {
    match tokio::time::timeout(BOUND, ws.next()).await {
        Ok(Some(Ok(msg))) => Some(msg),
        Ok(Some(Err(_)) | None) => None,
        Err(_) => panic!("nothing within {BOUND:?}"),
    }
}

fn frame(msg: Option<Message>) -> CloseFrame {
    match msg {
        Some(Message::Close(Some(frame))) => frame,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn echoes_text_and_binary_answers_pings_and_takes_no_pool_connection() {
    let host = start().await;
    let (mut ws, name) = open(host.addr(), "/v/alice-chat/ws").await;
    assert_eq!(name, "sim-a");
    for msg in [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(vec![7u8; 100_000]),
    ] {
        ws.send(msg.clone()).await.expect("send");
        assert_eq!(next(&mut ws).await, Some(msg));
    }
    ws.send(Message::Ping("are you there".into()))
        .await
        .expect("ping");
    assert_eq!(
        next(&mut ws).await,
        Some(Message::Pong("are you there".into()))
    );

    let stats = host.stats();
    assert_eq!((stats.websockets, stats.websockets_open), (1, 1));
    assert_eq!(stats.val_requests, 1, "the handshake is a Val request");
    assert_eq!(stats.responses_with(101), 1);
    assert_eq!(
        stats.in_use, 0,
        "an open WebSocket holds no pool connection"
    );
    let doc = get(host.addr(), "/_sim/stats").await.json();
    assert_eq!(doc["websockets_open"], 1);
    assert_eq!(get(host.addr(), "/healthz").await.status, 200);
    drop(ws);
    eventually(BOUND, "the dropped socket is closed", || {
        host.stats().websockets_open == 0
    })
    .await;
    host.shutdown().await;
}

#[tokio::test]
async fn a_client_close_is_answered_and_the_host_ends_the_connection() {
    let host = start().await;
    let (mut ws, _) = open(host.addr(), "/v/bob/ws").await;
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.close(Some(bye.clone())).await.expect("close");
    assert_eq!(frame(next(&mut ws).await), bye, "the close is echoed");
    // The server closes TCP after the handshake: the stream ends, it does not idle.
    assert_eq!(next(&mut ws).await, None);
    eventually(BOUND, "no socket open", || {
        host.stats().websockets_open == 0
    })
    .await;
    host.shutdown().await;
}

#[tokio::test]
async fn the_close_message_makes_the_host_close_first() {
    let host = start().await;
    let (mut ws, _) = open(host.addr(), "/ws").await;
    ws.send(Message::text("close")).await.expect("send");
    let got = frame(next(&mut ws).await);
    assert_eq!(got.code, CloseCode::Normal);
    assert_eq!(got.reason.as_str(), "closing as asked");
    // tungstenite answers the close on the next read; then the host drops the connection.
    assert_eq!(next(&mut ws).await, None);
    eventually(BOUND, "no socket open", || {
        host.stats().websockets_open == 0
    })
    .await;
    host.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_open_websockets_with_going_away() {
    let host = start().await;
    let (mut a, _) = open(host.addr(), "/v/a/ws").await;
    let (mut b, _) = open(host.addr(), "/v/b/ws").await;
    eventually(BOUND, "both open", || host.stats().websockets_open == 2).await;
    let stopping = tokio::spawn(host.shutdown());
    for ws in [&mut a, &mut b] {
        assert_eq!(frame(next(ws).await).code, CloseCode::Away);
        assert_eq!(next(ws).await, None);
    }
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown finishes")
        .expect("no panic");
}
