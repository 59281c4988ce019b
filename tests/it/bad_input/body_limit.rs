//! Request bodies over `limits.max_request_body` (1 KiB here): a declared Content-Length over
//! it is answered 413 before any host is contacted; a chunked body is cut when it passes the
//! limit (413, the host never receives a complete request), over HTTP/2 too; a body at the
//! limit passes whole; and none of it is counted against the host.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::framing::exchange;
use crate::faults::rawhost::{Action, RawHost, ok_response};
use crate::faults::{config, hosts_toml};
use crate::support::{routed_by_admin, start, state_of};

const LIMIT: usize = 1024;

/// A chunked body of `chunks` chunks of `size` bytes, terminated.
fn chunked(chunks: usize, size: usize) -> String {
    let mut body = String::new();
    for _ in 0..chunks {
        body.push_str(&format!("{size:x}\r\n{}\r\n", "c".repeat(size)));
    }
    body.push_str("0\r\n\r\n");
    body
}

/// The JSON body of a raw response.
fn json_body(text: &str) -> serde_json::Value {
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_and_never_count_against_the_host() {
    let a = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let b = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let router = start(config(
        &hosts_toml(&[("raw-a".into(), a.addr()), ("raw-b".into(), b.addr())]),
        &[("limits", "max_request_body = \"1KiB\"")],
    ))
    .await;
    let addr = router.listen_addr();
    let mut key = None;
    for i in 0..100 {
        let k = format!("k{i}");
        if routed_by_admin(&router, &k).await.as_deref() == Some("raw-a") {
            key = Some(k);
            break;
        }
    }
    let key = key.expect("a key of raw-a");
    let bound = Duration::from_secs(3);

    // At the limit: passes whole, both framings.
    let at_limit = "a".repeat(LIMIT);
    let req = format!(
        "POST /v/{key}/run HTTP/1.1\r\nHost: x\r\nContent-Length: {LIMIT}\r\nConnection: close\r\n\r\n{at_limit}"
    );
    let r = exchange(addr, req.as_bytes(), bound).await;
    assert_eq!(r.statuses, vec![200], "{}", r.text);
    let req = format!(
        "POST /v/{key}/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}",
        chunked(4, LIMIT / 4)
    );
    let r = exchange(addr, req.as_bytes(), bound).await;
    assert_eq!(r.statuses, vec![200], "{}", r.text);
    let seen = a.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.body.len() == LIMIT));

    // Declared over the limit: 413 from the router, nothing reaches any host. Only the head
    // is sent: the router answers without waiting for the body.
    let mut declared = Vec::new();
    for cl in [LIMIT + 1, 10 << 20, usize::MAX >> 1] {
        let req = format!("POST /v/{key}/run HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\n");
        let started = tokio::time::Instant::now();
        let r = exchange(addr, req.as_bytes(), bound).await;
        declared.push(started.elapsed());
        assert_eq!(r.statuses, vec![413], "Content-Length {cl}: {}", r.text);
        assert!(r.closed, "Content-Length {cl}: connection left open");
        let body = json_body(&r.text);
        assert_eq!(
            body["error"], "the request body is larger than 1024 bytes",
            "{body}"
        );
        assert_eq!(body["key"], key.as_str());
        assert!(body["host"].is_null(), "no host was contacted: {body}");
    }
    assert_eq!(
        a.requests().len() + b.requests().len(),
        2,
        "a 413 reached a host"
    );

    // Chunked over the limit, 8 times (more than the 5 consecutive failures that would
    // eject raw-a if they counted): 413, and the host never gets a complete request.
    let mut streamed = Vec::new();
    for _ in 0..8 {
        let req = format!(
            "POST /v/{key}/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            chunked(3, 600)
        );
        let r = exchange(addr, req.as_bytes(), bound).await;
        assert!(r.closed, "connection left open: {}", r.text);
        streamed.push(r.statuses.first().copied().unwrap_or(0));
        if r.statuses == [413] {
            assert_eq!(
                json_body(&r.text)["error"],
                "the request body is larger than 1024 bytes"
            );
        }
    }
    assert!(
        streamed.iter().all(|s| *s == 413),
        "chunked over the limit: {streamed:?}"
    );
    assert_eq!(
        a.requests().len() + b.requests().len(),
        2,
        "a body over the limit reached a host complete"
    );
    let state = state_of(&router, "raw-a").await;
    assert_eq!(
        state, "healthy",
        "the host was blamed for the client's bodies"
    );
    println!(
        "FIGURE bad input (body limit 1 KiB): at the limit 200 x 2 (Content-Length, chunked), delivered whole; declared over it 413 x 3 in at most {:.1} ms, closed, no host contacted; chunked 3 x 600 B: {streamed:?}, no complete request reached the host; raw-a {state}",
        declared
            .iter()
            .max()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    router.shutdown().await;
    a.stop();
    b.stop();
}

/// A host that answers as soon as it has read the request head, with a 200 head promising
/// 10 bytes and 5 of them, then keeps reading the request body until the router gives up.
async fn eager_host() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                let mut answered = false;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    let text = String::from_utf8_lossy(&seen);
                    if !answered && text.contains("\r\n\r\n") {
                        if text.starts_with("GET /healthz ") {
                            let _ = s
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 18\r\n\r\n{\"status\":\"pass\"}\n")
                                .await;
                            seen.clear();
                            continue;
                        }
                        answered = true;
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
                            .await;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_body_passing_the_limit_after_the_response_started_aborts_the_response() {
    let (host, task) = eager_host().await;
    let router = start(config(
        &hosts_toml(&[("eager".into(), host)]),
        &[("limits", "max_request_body = \"1KiB\"")],
    ))
    .await;
    let mut s = TcpStream::connect(router.listen_addr())
        .await
        .expect("connect");
    s.write_all(b"POST /v/k/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .expect("head");
    // Wait for the response head (the host answered before the body).
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(3), async {
        while !String::from_utf8_lossy(&got).contains("hello") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before the response started");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the response started");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    // Now the body passes the limit.
    let _ = s.write_all(chunked(3, 600).as_bytes()).await;
    let ended = crate::support::read_until_closed(&mut s, &mut got, Duration::from_secs(3)).await;
    assert!(ended, "the connection stayed open");
    let text = String::from_utf8_lossy(&got);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(
        body.len() < 10,
        "the response was completed ({body:?}) although the request body passed the limit"
    );
    println!(
        "FIGURE bad input (body limit after the response started): response aborted after {} of 10 body bytes",
        body.len()
    );
    router.shutdown().await;
    task.abort();
}

/// A body of `left` chunks of `size` bytes with no declared length.
struct Chunks {
    left: usize,
    size: usize,
}

impl hyper::body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        let data = bytes::Bytes::from(vec![b'c'; self.size]);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }
}

#[tokio::test]
async fn over_http2_a_body_without_a_length_is_cut_with_413() {
    use http_body_util::BodyExt as _;

    let host = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let router = start(config(
        &hosts_toml(&[("raw".into(), host.addr())]),
        &[("limits", "max_request_body = \"1KiB\"")],
    ))
    .await;
    let stream = TcpStream::connect(router.listen_addr())
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    let conn = tokio::spawn(conn);
    let mut statuses = Vec::new();
    for chunks in [2, 3] {
        // 2 x 500 bytes fit in 1 KiB; 3 x 500 do not. HTTP/2 sends no length for them.
        let req = http::Request::post("http://x/v/k/run")
            .body(Chunks {
                left: chunks,
                size: 500,
            })
            .expect("request");
        let resp = send.send_request(req).await.expect("a response");
        statuses.push(resp.status().as_u16());
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        if chunks == 3 {
            let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(json["error"], "the request body is larger than 1024 bytes");
        }
    }
    assert_eq!(statuses, vec![200, 413]);
    let seen = host.requests();
    assert_eq!(
        seen.len(),
        1,
        "the body over the limit reached the host complete"
    );
    assert_eq!(seen[0].body.len(), 1000);
    println!(
        "FIGURE bad input (body limit over HTTP/2, no declared length): 2 x 500 B -> 200 (delivered whole), 3 x 500 B -> 413; the host saw 1 request"
    );
    conn.abort();
    router.shutdown().await;
    host.stop();
}
