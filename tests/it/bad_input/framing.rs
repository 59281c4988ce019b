//! Request framing and smuggling over raw TCP: each malformed or ambiguous request gets 400
//! (or 431) and a closed connection, and the host behind the router receives nothing of it
//! (or exactly one well-framed request). A hidden second request never reaches the host.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::faults::rawhost::{Action, RawHost, ok_response};
use crate::faults::{config, hosts_toml};
use crate::support::start;

/// What came back on one connection.
#[derive(Debug)]
pub(super) struct Answer {
    /// Status codes of the responses, in order.
    pub(super) statuses: Vec<u16>,
    /// True when the router closed the connection (EOF) before the bound.
    pub(super) closed: bool,
    /// Everything the router sent.
    pub(super) text: String,
}

/// Writes `bytes` on a fresh connection, then reads until EOF or `bound`.
pub(super) async fn exchange(addr: SocketAddr, bytes: &[u8], bound: Duration) -> Answer {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // The router may close while we still write (it has its answer): not a failure.
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let closed = crate::support::read_until_closed(&mut s, &mut got, bound).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let statuses = text
        .match_indices("HTTP/1.")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect();
    Answer {
        statuses,
        closed,
        text,
    }
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// Acceptable statuses for the (only) response.
    status: &'static [u16],
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, status: &'static [u16]) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        status,
    }
}

/// The hidden request appended to smuggling attempts; it must never reach the host.
const SMUGGLED: &str = "GET /v/smuggled/run HTTP/1.1\r\nHost: x\r\n\r\n";

fn cases() -> Vec<Case> {
    const BAD: &[u16] = &[400];
    let post = |headers: &str, body: &str| {
        format!("POST /v/k/run HTTP/1.1\r\nHost: x\r\n{headers}\r\n{body}{SMUGGLED}")
    };
    let big_value = "a".repeat(1 << 20);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    vec![
        // Content-Length and Transfer-Encoding together, both orders: hyper would drop the
        // Content-Length and read the body as chunked; the head guard below hyper refuses
        // the head before hyper completes it.
        case(
            "TE then CL",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                "0\r\n\r\n",
            ),
            BAD,
        ),
        case(
            "CL then TE",
            post(
                "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            BAD,
        ),
        // Content-Length values.
        case("CL +3", post("Content-Length: +3\r\n", "abc"), BAD),
        case("CL -1", post("Content-Length: -1\r\n", ""), BAD),
        case("CL 1,2", post("Content-Length: 1,2\r\n", "ab"), BAD),
        case(
            "CL overflow",
            post("Content-Length: 99999999999999999999999\r\n", ""),
            BAD,
        ),
        case(
            "CL twice, differing",
            post("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
            BAD,
        ),
        case("CL hex", post("Content-Length: 0x3\r\n", "abc"), BAD),
        case("CL empty", post("Content-Length: \r\n", ""), BAD),
        // Transfer-Encoding other than a single final chunked.
        case(
            "TE chunked, chunked",
            post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE gzip, chunked",
            post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE two headers",
            post(
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            BAD,
        ),
        case(
            "TE chunked twice as headers",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            BAD,
        ),
        case(
            "TE identity",
            post("Transfer-Encoding: identity\r\n", ""),
            BAD,
        ),
        case(
            "TE xchunked",
            post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE chunked, gzip",
            post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE with space before colon",
            post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE vertical tab",
            post("Transfer-Encoding:\x0bchunked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE on HTTP/1.0",
            format!(
                "POST /v/k/run HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
            ),
            BAD,
        ),
        // Bad chunks.
        case(
            "chunk size not hex",
            post("Transfer-Encoding: chunked\r\n", "zz\r\nabc\r\n0\r\n\r\n"),
            BAD,
        ),
        case(
            "chunk size negative",
            post("Transfer-Encoding: chunked\r\n", "-1\r\nabc\r\n0\r\n\r\n"),
            BAD,
        ),
        case(
            "chunk size overflow",
            post(
                "Transfer-Encoding: chunked\r\n",
                "ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
            ),
            BAD,
        ),
        case(
            "chunk longer than its size",
            post("Transfer-Encoding: chunked\r\n", "3\r\nabcdef\r\n0\r\n\r\n"),
            BAD,
        ),
        // Header syntax.
        case(
            "obs-fold",
            "GET /v/k/run HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
            BAD,
        ),
        case(
            "control char in a name",
            "GET /v/k/run HTTP/1.1\r\nHost: x\r\nX-\x01A: a\r\n\r\n",
            BAD,
        ),
        case(
            "NUL in a value",
            "GET /v/k/run HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
            BAD,
        ),
        case(
            "DEL in a value",
            "GET /v/k/run HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
            BAD,
        ),
        case(
            "bare CR in a value",
            "GET /v/k/run HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            BAD,
        ),
        case(
            "space in a name",
            "GET /v/k/run HTTP/1.1\r\nHost: x\r\nX A: a\r\n\r\n",
            BAD,
        ),
        // Host.
        case("missing Host", "GET /v/k/run HTTP/1.1\r\n\r\n", BAD),
        case(
            "duplicate Host",
            "GET /v/k/run HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            BAD,
        ),
        case(
            "absolute-form with another host",
            "GET http://other.example/v/k/run HTTP/1.1\r\nHost: x\r\n\r\n",
            BAD,
        ),
        // Size.
        case(
            "a 1 MiB header",
            format!("GET /v/k/run HTTP/1.1\r\nHost: x\r\nX-Big: {big_value}\r\n\r\n"),
            &[431, 400],
        ),
        case(
            "200 headers",
            format!("GET /v/k/run HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
            &[431, 400],
        ),
        // Request line.
        case(
            "garbage request line",
            "GET\x00/ HTTP/1.1\r\nHost: x\r\n\r\n",
            BAD,
        ),
        case(
            "HTTP/1.2",
            "GET /v/k/run HTTP/1.2\r\nHost: x\r\n\r\n",
            &[400, 505],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_attacks_get_400_and_a_closed_connection_and_reach_nothing() {
    let host = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let router = start(config(&hosts_toml(&[("raw".into(), host.addr())]), &[])).await;
    let addr = router.listen_addr();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for c in cases() {
        let seen_before = host.requests().len();
        let answer = exchange(addr, &c.bytes, Duration::from_secs(2)).await;
        let reached = host.requests().len() - seen_before;
        let ok_status = answer.statuses.len() == 1 && c.status.contains(&answer.statuses[0]);
        let ok_reach = reached == 0;
        table.push(format!(
            "{:<32} {:?} closed={} reached_host={reached}",
            c.name, answer.statuses, answer.closed
        ));
        if !(ok_status && answer.closed && ok_reach) {
            failures.push(format!(
                "{}: {answer:?}, reached the host: {reached}",
                c.name
            ));
        }
    }
    let smuggled = host
        .requests()
        .iter()
        .filter(|s| s.head.contains("smuggled"))
        .count();
    println!("FIGURE bad input (framing):\n  {}", table.join("\n  "));
    assert_eq!(smuggled, 0, "a hidden request reached the host");
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    router.shutdown().await;
    host.stop();
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_400() {
    let host = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let router = start(config(&hosts_toml(&[("raw".into(), host.addr())]), &[])).await;
    for headers in [
        "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let req = format!("POST /v/k/run HTTP/1.1\r\nHost: x\r\n{headers}\r\n0\r\n\r\n");
        let a = exchange(router.listen_addr(), req.as_bytes(), Duration::from_secs(2)).await;
        assert_eq!(a.statuses, vec![400], "{headers}");
        assert!(a.closed);
        assert!(
            a.text.contains("both Transfer-Encoding and Content-Length"),
            "{}",
            a.text
        );
    }
    assert!(host.requests().is_empty());
    // Later on a keep-alive connection (after a Content-Length body and a chunked one): the
    // earlier requests are answered, the refused one never reaches the host, and the
    // connection ends.
    let req = format!(
        "POST /v/k/run HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
POST /v/k/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
POST /v/k/run HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
    );
    let a = exchange(router.listen_addr(), req.as_bytes(), Duration::from_secs(2)).await;
    assert_eq!(a.statuses, vec![200, 200], "{}", a.text);
    assert!(a.closed, "the connection stayed open");
    let seen = host.requests();
    assert_eq!(
        seen.len(),
        2,
        "the refused request or the hidden one reached the host"
    );
    assert_eq!(seen[0].body, b"abc");
    assert_eq!(seen[1].body, b"hi");
    println!(
        "FIGURE bad input (TE with CL): first on a connection 400 x 2 (both orders), closed, nothing reached the host; after two keep-alive requests: [200, 200], then closed, the refused and hidden requests never reached the host"
    );
    router.shutdown().await;
    host.stop();
}

#[tokio::test]
async fn well_framed_requests_reach_the_host_exactly_as_framed() {
    let host = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let router = start(config(&hosts_toml(&[("raw".into(), host.addr())]), &[])).await;
    let addr = router.listen_addr();
    // A body that looks like a request is just a body: one request reaches the host.
    let body = SMUGGLED;
    let req = format!(
        "POST /v/k/run HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let a = exchange(addr, req.as_bytes(), Duration::from_secs(2)).await;
    assert_eq!(a.statuses, vec![200]);
    let seen = host.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body.as_bytes());
    // A chunked body is de-chunked and re-framed; the host gets exactly its bytes.
    let req = "POST /v/k/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let a = exchange(addr, req.as_bytes(), Duration::from_secs(2)).await;
    assert_eq!(a.statuses, vec![200]);
    let seen = host.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body, b"abcde");
    // Two honest pipelined requests: two answers, two requests upstream.
    let req = "GET /v/a/run HTTP/1.1\r\nHost: x\r\n\r\nGET /v/b/run HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let a = exchange(addr, req.as_bytes(), Duration::from_secs(2)).await;
    assert_eq!(a.statuses, vec![200, 200]);
    assert!(a.closed);
    assert_eq!(host.requests().len(), 4);
    router.shutdown().await;
    host.stop();
}

#[tokio::test]
async fn a_clients_broken_or_stalled_body_is_its_own_fault_not_the_hosts() {
    let a = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let b = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let router = start(config(
        &hosts_toml(&[("raw-a".into(), a.addr()), ("raw-b".into(), b.addr())]),
        &[("upstream", "body_idle_timeout = \"200ms\"")],
    ))
    .await;
    let addr = router.listen_addr();
    let mut key = None;
    for i in 0..100 {
        let k = format!("k{i}");
        if crate::support::routed_by_admin(&router, &k)
            .await
            .as_deref()
            == Some("raw-a")
        {
            key = Some(k);
            break;
        }
    }
    let key = key.expect("a key of raw-a");
    let mut statuses = Vec::new();
    for i in 0..8 {
        let req = if i % 2 == 0 {
            // A chunk size that is not hex, after a good chunk.
            format!(
                "POST /v/{key}/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"
            )
        } else {
            // A body that stops short and stalls.
            format!("POST /v/{key}/run HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        };
        let answer = exchange(addr, req.as_bytes(), Duration::from_secs(2)).await;
        statuses.push(answer.statuses.first().copied().unwrap_or(0));
    }
    let state = crate::support::state_of(&router, "raw-a").await;
    println!("FIGURE bad input (client bodies): statuses {statuses:?}; raw-a is {state}");
    assert_eq!(
        state, "healthy",
        "the host was blamed for the client's bodies"
    );
    for (i, s) in statuses.iter().enumerate() {
        let want = if i % 2 == 0 { 400 } else { 408 };
        assert_eq!(*s, want, "request {i}: {statuses:?}");
    }
    router.shutdown().await;
    a.stop();
    b.stop();
}
