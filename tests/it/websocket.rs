//! Real WebSockets (tokio-tungstenite) through the real router to simhost's echo: messages
//! and pings both ways to the Val's host, a close from either side, a thousand sockets held
//! open for a minute with every host still healthy, and shutdown ending them after its grace.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _, stream};
use ringward::Router;
use ringward_tests::client::{self, Reply};
use ringward_tests::{Fleet, eventually_async};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{config_for, host_entry, host_of, metric, start, state_of};

type Ws = WebSocketStream<TcpStream>;

/// Bound on one step (a handshake, an echo, a close) on a loaded two-core machine.
const STEP: Duration = Duration::from_secs(10);

/// Opens a WebSocket to Val `key` (`/v/{key}/ws`, keyed by its path) through the router.
async fn open(router: &Router, key: &str) -> (Ws, Response) {
    let addr = router.listen_addr();
    let tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let req = format!("ws://{addr}/v/{key}/ws")
        .into_client_request()
        .expect("request");
    // tungstenite checks the 101 and its Sec-WebSocket-Accept.
    timeout(STEP, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("handshake in time")
        .unwrap_or_else(|e| panic!("handshake for {key}: {e}"))
}

fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} on the 101"))
}

/// What a WebSocket gave next.
#[derive(Debug, PartialEq)]
enum Next {
    Msg(Message),
    /// The close handshake completed and the TCP connection ended.
    Closed,
    /// The connection ended any other way (cut without a close frame, reset).
    Cut,
}

async fn next(ws: &mut Ws) -> Next {
    match timeout(STEP, ws.next()).await {
        Ok(Some(Ok(msg))) => Next::Msg(msg),
        Ok(None) => Next::Closed,
        Ok(Some(Err(_))) => Next::Cut,
        Err(_) => panic!("nothing from the WebSocket within {STEP:?}"),
    }
}

/// Sends `msg` and asserts it comes back.
async fn echo(ws: &mut Ws, msg: Message) {
    timeout(STEP, ws.send(msg.clone()))
        .await
        .expect("sent in time")
        .expect("send");
    assert_eq!(next(ws).await, Next::Msg(msg));
}

fn close_frame(next: Next) -> CloseFrame {
    match next {
        Next::Msg(Message::Close(Some(frame))) => frame,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Open WebSockets on each simhost of `fleet`, in start order.
fn open_on_hosts(fleet: &Fleet) -> Vec<u64> {
    fleet
        .hosts()
        .iter()
        .map(|h| h.stats().websockets_open)
        .collect()
}

async fn metrics(router: &Router) -> Reply {
    client::get(router.admin_addr(), "/metrics")
        .await
        .expect("metrics")
}

/// Ejections of any host for any reason since the router started.
async fn ejections(router: &Router) -> u64 {
    let text = metrics(router).await.text();
    let samples: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("ringward_ejections_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        !samples.is_empty(),
        "no ringward_ejections_total in /metrics"
    );
    samples.iter().sum::<f64>() as u64
}

#[tokio::test]
async fn messages_cross_both_ways_to_the_vals_host() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let key = "alice-chat";
    let host = host_of(&router, key).await;
    let (mut ws, resp) = open(&router, key).await;
    assert_eq!(resp.status(), 101);
    assert_eq!(
        header(&resp, "x-ringward-host"),
        host,
        "the router names it"
    );
    assert_eq!(header(&resp, "x-simhost"), host, "the Val's host answered");
    for msg in [
        Message::text("hello through the edge"),
        Message::binary(vec![0u8, 1, 2, 0xfe, 0xff]),
        // Many TCP segments each way.
        Message::binary((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>()),
        Message::text("é🦀".repeat(1000)),
    ] {
        echo(&mut ws, msg).await;
    }
    ws.send(Message::Ping("are you there".into()))
        .await
        .expect("ping");
    assert_eq!(
        next(&mut ws).await,
        Next::Msg(Message::Pong("are you there".into()))
    );
    let expected: Vec<u64> = fleet
        .hosts()
        .iter()
        .map(|h| u64::from(h.name() == host))
        .collect();
    assert_eq!(
        open_on_hosts(&fleet),
        expected,
        "open on the Val's host only"
    );
    assert_eq!(metric(&router, "ringward_tunnels_open").await, 1);
    assert_eq!(host_entry(&router, &host).await["in_flight"], 0);
    drop(ws);
    eventually_async(STEP, "the dropped socket is gone", || async {
        metric(&router, "ringward_tunnels_open").await == 0 && open_on_hosts(&fleet) == [0, 0, 0]
    })
    .await;
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_close_from_the_client_is_echoed_and_the_connection_ends() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let (mut ws, _) = open(&router, "bob-chat").await;
    echo(&mut ws, Message::text("before the close")).await;
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.close(Some(bye.clone())).await.expect("close");
    assert_eq!(close_frame(next(&mut ws).await), bye, "echoed by the host");
    // The host closes TCP after the handshake, and the router passes the end on.
    assert_eq!(next(&mut ws).await, Next::Closed);
    ends_on_both_sides(&fleet, &router, ws).await;
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_close_from_the_host_reaches_the_client() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let (mut ws, _) = open(&router, "carol-chat").await;
    echo(&mut ws, Message::text("before the close")).await;
    // simhost's echo closes first when sent the text `close`.
    ws.send(Message::text("close")).await.expect("send");
    let frame = close_frame(next(&mut ws).await);
    assert_eq!(frame.code, CloseCode::Normal);
    assert_eq!(frame.reason.as_str(), "closing as asked");
    // The client's answer goes out on this read; the host then ends the connection.
    assert_eq!(next(&mut ws).await, Next::Closed);
    ends_on_both_sides(&fleet, &router, ws).await;
    router.shutdown().await;
    fleet.shutdown().await;
}

/// After a close: the host's end of the socket closes, and once the client (which has seen
/// the end) drops its own, the tunnel does too. (The router passes a half-close on, so the
/// client's end stays open until the client closes it.)
async fn ends_on_both_sides<S>(fleet: &Fleet, router: &Router, ws: S) {
    eventually_async(STEP, "the host's end closed", || async {
        open_on_hosts(fleet) == [0, 0, 0]
    })
    .await;
    drop(ws);
    eventually_async(STEP, "the tunnel closed", || async {
        metric(router, "ringward_tunnels_open").await == 0
    })
    .await;
}

/// WebSockets held open at once in the long test (`limits.max_tunnels` is 10 000 by default).
const SOCKETS: usize = 1000;
/// How long they are held.
const HOLD: Duration = Duration::from_secs(60);
/// A message on every socket this often during the hold.
const ROUND_EVERY: Duration = Duration::from_secs(10);
/// Handshakes, and echoes in a round, at once: bounded so a loaded machine keeps up.
const AT_ONCE: usize = 32;

/// One message on every socket, each echoed.
async fn echo_all(sockets: &mut [(String, Ws)], round: u32) {
    stream::iter(sockets.iter_mut())
        .for_each_concurrent(AT_ONCE, |(key, ws)| async move {
            echo(ws, Message::text(format!("round {round} for {key}"))).await;
        })
        .await;
}

/// The fleet as the router sees it while the sockets are held: every tunnel open, every
/// host healthy with no request in flight, nobody ever ejected.
async fn assert_steady(router: &Router, fleet: &Fleet, round: u32) {
    let tunnels = metric(router, "ringward_tunnels_open").await;
    assert_eq!(tunnels, SOCKETS as u64, "round {round}: tunnels open");
    for host in fleet.hosts() {
        let entry = host_entry(router, host.name()).await;
        assert_eq!(entry["state"], "healthy", "round {round}: {entry}");
        assert_eq!(entry["in_flight"], 0, "round {round}: {entry}");
        let in_flight = format!("ringward_host_in_flight{{host=\"{}\"}}", host.name());
        assert_eq!(metric(router, &in_flight).await, 0, "round {round}");
        assert_eq!(
            host.stats().in_use,
            0,
            "round {round}: no pool connection held"
        );
    }
    assert_eq!(ejections(router).await, 0, "round {round}: no host ejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_websockets_stay_open_for_a_minute_and_no_host_is_judged_hung() {
    let began = Instant::now();
    let fleet = Fleet::start(3).await.expect("fleet");
    // The default health settings: a request in flight for 500 ms would count as hung.
    let running = start(config_for(&fleet)).await;
    let router = &running;
    let mut sockets: Vec<(String, Ws)> = stream::iter(0..SOCKETS)
        .map(|i| async move {
            let key = format!("ws-{i}");
            let (ws, resp) = open(router, &key).await;
            assert_eq!(resp.status(), 101);
            (key, ws)
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let opened = began.elapsed();
    // A host counts its socket once its side of the upgrade has run, just after the 101 left.
    eventually_async(STEP, "every socket open on a host", || async {
        open_on_hosts(&fleet).iter().sum::<u64>() == SOCKETS as u64
    })
    .await;
    let per_host = open_on_hosts(&fleet);
    assert!(
        per_host.iter().all(|&n| n > 0),
        "spread over the Vals: {per_host:?}"
    );

    let hold = Instant::now();
    let mut round = 0;
    loop {
        round += 1;
        echo_all(&mut sockets, round).await;
        assert_steady(router, &fleet, round).await;
        let left = HOLD.saturating_sub(hold.elapsed());
        if left.is_zero() {
            break;
        }
        // The deliberate hold between rounds, not a wait for state.
        tokio::time::sleep(left.min(ROUND_EVERY)).await;
    }
    let held = hold.elapsed();
    assert!(held >= HOLD && round >= 7, "{round} rounds in {held:?}");
    for host in fleet.hosts() {
        assert_eq!(state_of(router, host.name()).await, "healthy");
    }

    drop(sockets);
    eventually_async(STEP * 3, "every tunnel and socket closed", || async {
        metric(router, "ringward_tunnels_open").await == 0
            && open_on_hosts(&fleet).iter().sum::<u64>() == 0
    })
    .await;
    eprintln!(
        "{SOCKETS} WebSockets: opened in {opened:?}, held {held:?} over {round} rounds, {:?} in all",
        began.elapsed()
    );
    running.shutdown().await;
    fleet.shutdown().await;
}

/// `listen.shutdown_grace` in the shutdown test.
const GRACE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn shutdown_closes_open_websockets_after_the_grace_period() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let mut config = config_for(&fleet);
    config.listen.shutdown_grace = GRACE;
    let router = start(config).await;
    let mut sockets = Vec::new();
    for i in 0..12 {
        sockets.push(open(&router, &format!("ws-{i}")).await.0);
    }
    let started = Instant::now();
    let shutdown = tokio::spawn(router.shutdown());
    // The grace is theirs: every socket still echoes during it.
    stream::iter(sockets.iter_mut())
        .for_each_concurrent(None, |ws| echo(ws, Message::text("during the grace")))
        .await;
    let echoed = started.elapsed();
    assert!(echoed < GRACE, "the echoes took {echoed:?}, past the grace");
    // Then the router cuts them: no close frame from the router, the connection ends.
    // Watched all at once, so each end is timed as it happens.
    let ended = futures_util::future::join_all(sockets.iter_mut().map(|ws| async move {
        assert_eq!(next(ws).await, Next::Cut, "cut by the router");
        started.elapsed()
    }))
    .await;
    for at in &ended {
        assert!(
            *at >= GRACE && *at < GRACE + Duration::from_secs(5),
            "ended {at:?} after shutdown began, grace {GRACE:?}"
        );
    }
    timeout(STEP, shutdown)
        .await
        .expect("shutdown completes")
        .expect("no panic");
    eventually_async(STEP, "the hosts' ends closed too", || async {
        open_on_hosts(&fleet).iter().sum::<u64>() == 0
    })
    .await;
    fleet.shutdown().await;
}
