//! The WebSocket echo: an `Upgrade: websocket` request on a Val path is answered `101` and
//! every text or binary message is sent back; a ping gets its pong, a close frame its close
//! frame, and the text message `close` makes the host close first.
//!
//! A WebSocket models a Val's socket handler, which does no database work: it takes no pool
//! connection, for the handshake or while open, so open sockets never make the host look
//! exhausted or stuck. It runs on its connection's task once hyper hands the socket over,
//! so shutdown drains it and a panic surfaces like any connection's.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY};
use http::header::{SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::body::SimBody;
use crate::shared::Shared;
use crate::stats::{Counters, LiveGuard};

/// The text message that makes the host send the close frame first.
pub(crate) const CLOSE_COMMAND: &str = "close";

/// How long the host waits for the peer's answer to a close frame it sent (a peer that
/// never answers must not hold a shutdown).
const CLOSE_BOUND: Duration = Duration::from_secs(1);

/// Where a handler leaves the WebSocket it accepted, for its connection's task to run once
/// hyper has written the `101` and hands over the socket.
#[derive(Debug, Default)]
pub(crate) struct Handoff(Mutex<Option<OnUpgrade>>);

impl Handoff {
    fn put(&self, upgrade: OnUpgrade) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(upgrade);
    }

    /// The accepted WebSocket, if a handler left one.
    pub(crate) fn take(&self) -> Option<OnUpgrade> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// True when `headers` ask to switch to WebSocket: `Upgrade` names `websocket` and
/// `Connection` lists `upgrade` (both case-insensitive).
pub(crate) fn requested(headers: &HeaderMap) -> bool {
    let lists = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    lists(UPGRADE, "websocket") && lists(CONNECTION, "upgrade")
}

/// Answers a WebSocket upgrade request: `101` with the `Sec-WebSocket-Accept` for its key,
/// leaving the socket-to-be in `handoff`; or `426` for a version other than 13, `400` for
/// a method other than GET or a missing key.
pub(crate) fn accept<B>(handoff: &Handoff, mut req: Request<B>) -> Response<SimBody> {
    let headers = req.headers();
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut resp = refuse(StatusCode::UPGRADE_REQUIRED, "websocket version 13 only");
        resp.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return resp;
    }
    let key = match headers.get(SEC_WEBSOCKET_KEY) {
        Some(key) if req.method() == Method::GET && !key.is_empty() => key,
        _ => return refuse(StatusCode::BAD_REQUEST, "websocket needs GET and a key"),
    };
    let accept = derive_accept_key(key.as_bytes());
    handoff.put(hyper::upgrade::on(&mut req));
    let mut resp = Response::new(SimBody::full(bytes::Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::try_from(accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

fn refuse(status: StatusCode, why: &'static str) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::full(why));
    *resp.status_mut() = status;
    resp
}

/// Echoes on the upgraded socket until either side closes, the socket fails, or the host
/// shuts down (then it sends close `1001`).
pub(crate) async fn echo(shared: &Shared, upgrade: OnUpgrade) {
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            return;
        }
    };
    Counters::bump(&shared.counters.websockets);
    let _open = LiveGuard::new(&shared.counters.websockets_open);
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    loop {
        let msg = tokio::select! {
            msg = ws.next() => msg,
            () = shared.shutdown.wait() => {
                close(&mut ws, CloseCode::Away, "simhost shutting down").await;
                return;
            }
        };
        let sent = match msg {
            Some(Ok(Message::Text(text))) if text.as_str() == CLOSE_COMMAND => {
                close(&mut ws, CloseCode::Normal, "closing as asked").await;
                return;
            }
            Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => ws.send(msg).await,
            // A ping's pong, and the answer to the peer's close frame, are queued by
            // tungstenite and go out with the next read; after a close that read ends the
            // stream, and dropping it closes the TCP connection (the server closes first).
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e),
            None => return,
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "websocket ended with an error");
            return;
        }
    }
}

/// Sends a close frame and reads until the peer's answer ends the stream, within
/// [`CLOSE_BOUND`].
async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &'static str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_BOUND, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn a_websocket_request_names_websocket_and_lists_upgrade() {
        assert!(requested(&headers(&[
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
        ])));
        assert!(!requested(&headers(&[("upgrade", "websocket")])));
        assert!(!requested(&headers(&[("connection", "upgrade")])));
        assert!(!requested(&headers(&[
            ("upgrade", "h2c"),
            ("connection", "upgrade"),
        ])));
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        let req = Request::get("/v/a/ws")
            .header(SEC_WEBSOCKET_VERSION, "13")
            .header(SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let handoff = Handoff::default();
        let resp = accept(&handoff, req);
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        // The example of RFC 6455 section 1.3.
        assert_eq!(
            resp.headers()[SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(handoff.take().is_some());
    }

    #[test]
    fn a_bad_handshake_is_refused_and_leaves_nothing() {
        let handoff = Handoff::default();
        let old = Request::get("/").header(SEC_WEBSOCKET_VERSION, "8");
        let resp = accept(&handoff, old.body(()).unwrap());
        assert_eq!(resp.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(resp.headers()[SEC_WEBSOCKET_VERSION], "13");
        let keyless = Request::get("/").header(SEC_WEBSOCKET_VERSION, "13");
        assert_eq!(
            accept(&handoff, keyless.body(()).unwrap()).status(),
            StatusCode::BAD_REQUEST
        );
        let post = Request::post("/")
            .header(SEC_WEBSOCKET_VERSION, "13")
            .header(SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            accept(&handoff, post.body(()).unwrap()).status(),
            StatusCode::BAD_REQUEST
        );
        assert!(handoff.take().is_none());
    }
}
