//! simhost over real HTTP on 127.0.0.1:0: the pool model and every fault.

mod support;

use std::time::Duration;

use ringward_simhost::{ServiceTime, SimConfig, SimHost};
use support::{BOUND, eventually, get, get_req, head, post, send, stays_pending};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn start(pool: u32) -> SimHost {
    start_with(SimConfig {
        pool_size: pool,
        service_time: ServiceTime::Fixed(ms(1)),
        seed: Some(1),
        ..SimConfig::named("sim-a")
    })
    .await
}

async fn start_with(config: SimConfig) -> SimHost {
    SimHost::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// Parses the ORCA TEXT header into (max, in_use, waiting, oldest_ms).
fn orca(value: &str) -> (u64, u64, u64, u64) {
    let rest = value.strip_prefix("TEXT ").expect("TEXT form");
    let mut fig = [None; 4];
    for pair in rest.split(", ") {
        let (k, v) = pair.split_once('=').expect("k=v");
        let i = match k {
            "named_metrics.db_pool_max" => 0,
            "named_metrics.db_pool_in_use" => 1,
            "named_metrics.db_pool_waiting" => 2,
            "named_metrics.db_pool_oldest_checkout_ms" => 3,
            other => panic!("unexpected metric {other}"),
        };
        fig[i] = Some(v.parse::<u64>().unwrap());
    }
    let f = fig.map(|v| v.expect("all four metrics"));
    (f[0], f[1], f[2], f[3])
}

#[tokio::test]
async fn val_requests_answer_with_host_key_and_load_report() {
    let host = start(4).await;
    let reply = get(host.addr(), "/v/alice-hello/run").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-simhost").expect("header"), "sim-a");
    assert_eq!(reply.json()["host"], "sim-a");
    assert_eq!(reply.json()["val"], "alice-hello");
    assert_eq!(
        orca(reply.header("endpoint-load-metrics").expect("header")),
        (4, 0, 0, 0)
    );

    let req = http::Request::get("/anything")
        .header("x-val", "bob")
        .body(Default::default())
        .unwrap();
    let reply = send(host.addr(), req).await.unwrap();
    assert_eq!(reply.json()["val"], "bob");

    let health = get(host.addr(), "/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.header("content-type").expect("header"),
        "application/health+json"
    );
    let body = health.json();
    assert_eq!(body["status"], "pass");
    assert_eq!(
        body["db_pool"],
        serde_json::json!({"max": 4, "in_use": 0, "waiting": 0, "oldest_checkout_ms": 0})
    );

    let stats = host.stats();
    assert_eq!((stats.val_requests, stats.health_requests), (2, 1));
    assert_eq!(stats.responses_with(200), 2);
    let handle = host.stats_handle();
    assert_eq!((handle.val_requests(), handle.health_requests()), (2, 1));
    host.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_queue_for_the_pool_and_all_complete() {
    let host = start_with(SimConfig {
        pool_size: 2,
        service_time: ServiceTime::Fixed(ms(300)),
        ..SimConfig::named("sim-q")
    })
    .await;
    let addr = host.addr();
    let reqs: Vec<_> = (0..4)
        .map(|i| tokio::spawn(async move { get(addr, &format!("/v/k{i}")).await }))
        .collect();
    eventually(BOUND, "2 in use, 2 waiting", || {
        let s = host.stats();
        (s.in_use, s.waiting) == (2, 2)
    })
    .await;
    for r in reqs {
        assert_eq!(r.await.unwrap().status, 200);
    }
    let s = host.stats();
    assert_eq!((s.in_use, s.waiting, s.val_requests), (0, 0, 4));
    host.shutdown().await;
}

#[tokio::test]
async fn deadlock_exhausts_the_pool_and_release_drains_the_waiters() {
    let host = start(4).await;
    let addr = host.addr();
    host.faults().deadlock(4);
    let s = host.stats();
    assert_eq!((s.in_use, s.waiting, s.deadlocked), (4, 0, 4));

    let waiting = tokio::spawn(async move { get(addr, "/v/stuck-val").await });
    eventually(BOUND, "the request waits for a connection", || {
        host.stats().waiting == 1
    })
    .await;
    eventually(BOUND, "oldest checkout passes 150ms", || {
        host.stats().oldest_checkout >= ms(150)
    })
    .await;

    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, 503);
    let body = health.json();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["db_pool"]["in_use"], 4);
    assert_eq!(body["db_pool"]["waiting"], 1);
    assert!(body["db_pool"]["oldest_checkout_ms"].as_u64().unwrap() >= 150);
    assert!(!waiting.is_finished(), "no connection, no answer");

    assert_eq!(host.faults().release(), 4);
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["val"], "stuck-val");
    let s = host.stats();
    assert_eq!((s.in_use, s.waiting, s.deadlocked), (0, 0, 0));
    assert_eq!(get(addr, "/healthz").await.json()["status"], "pass");
    host.shutdown().await;
}

#[tokio::test]
async fn partial_deadlock_shows_in_the_load_report_and_as_stuck_slots() {
    let host = start_with(SimConfig {
        pool_size: 4,
        service_time: ServiceTime::Fixed(ms(1)),
        stuck_after: ms(100),
        ..SimConfig::named("sim-w")
    })
    .await;
    let addr = host.addr();
    host.faults().deadlock(2);
    let reply = get(addr, "/v/x").await;
    assert_eq!(reply.status, 200);
    let (max, in_use, waiting, _) = orca(reply.header("endpoint-load-metrics").expect("header"));
    assert_eq!((max, in_use, waiting), (4, 2, 0));

    eventually(BOUND, "stuck slots past stuck_after", || {
        host.stats().oldest_checkout >= ms(100)
    })
    .await;
    let health = get(addr, "/healthz").await;
    assert_eq!(
        (health.status.as_u16(), health.json()["status"].clone()),
        (200, "warn".into())
    );

    // Full of stuck connections with nobody waiting still fails.
    host.faults().deadlock(4);
    eventually(BOUND, "all slots stuck", || {
        host.health_status() == ringward_simhost::HealthStatus::Fail
    })
    .await;
    assert_eq!(get(addr, "/healthz").await.status, 503);
    host.shutdown().await;
}

#[tokio::test]
async fn acquire_timeout_turns_a_long_wait_into_503() {
    let host = start_with(SimConfig {
        pool_size: 2,
        acquire_timeout: Some(ms(100)),
        ..SimConfig::named("sim-t")
    })
    .await;
    host.faults().deadlock(2);
    let reply = get(host.addr(), "/v/x").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after").expect("header"), "1");
    assert_eq!(
        orca(reply.header("endpoint-load-metrics").expect("header")).2,
        0,
        "the waiter left the queue"
    );
    assert_eq!(host.stats().waiting, 0);
    assert_eq!(host.stats().responses_with(503), 1);
    host.shutdown().await;
}

#[tokio::test]
async fn error_rate_gives_5xx() {
    let host = start(4).await;
    let addr = host.addr();
    host.faults().error_rate(1.0);
    for _ in 0..5 {
        let reply = get(addr, "/v/x").await;
        assert_eq!(reply.status, 500);
        assert!(reply.headers.contains_key("endpoint-load-metrics"));
    }
    // Half: both answers appear over 40 seeded draws.
    host.faults().error_rate(0.5);
    for _ in 0..40 {
        get(addr, "/v/x").await;
    }
    let s = host.stats();
    assert!(
        s.responses_with(500) > 5 && s.responses_with(200) > 0,
        "{:?}",
        s.responses
    );
    host.faults().clear();
    assert_eq!(get(addr, "/v/x").await.status, 200);
    host.shutdown().await;
}

#[tokio::test]
async fn slow_holds_the_connection_longer() {
    let host = start(4).await;
    let addr = host.addr();
    host.faults().slow(Some(ms(400)));
    let started = tokio::time::Instant::now();
    let req = tokio::spawn(async move { get(addr, "/v/x").await });
    eventually(BOUND, "the slow request holds a connection", || {
        let s = host.stats();
        s.in_use == 1 && s.oldest_checkout >= ms(100)
    })
    .await;
    assert_eq!(req.await.unwrap().status, 200);
    assert!(started.elapsed() >= ms(400));
    host.shutdown().await;
}

#[tokio::test]
async fn hang_never_answers_until_cleared() {
    let host = start(4).await;
    let addr = host.addr();
    host.faults().hang(true);
    let req = tokio::spawn(async move { send(addr, get_req("/v/x")).await });
    eventually(BOUND, "the request is hung", || host.stats().hung == 1).await;
    assert_eq!(host.stats().in_use, 0, "hung before the pool");
    // It does not answer within a bound...
    let mut req = req;
    stays_pending(ms(300), "hung request", &mut req).await;
    // ...and proceeds once the fault is cleared.
    host.faults().clear();
    let reply = tokio::time::timeout(BOUND, req)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(host.stats().hung, 0);
    host.shutdown().await;
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let host = start(4).await;
    host.faults().reset(true);
    let result = tokio::time::timeout(BOUND, send(host.addr(), get_req("/v/x")))
        .await
        .expect("a reset is immediate, not a hang");
    let err = result.expect_err("no response on a reset connection");
    assert!(!err.is_timeout(), "{err}");
    let s = host.stats();
    assert_eq!((s.resets, s.val_requests, s.abandoned), (1, 1, 0));
    assert!(s.responses.is_empty(), "{:?}", s.responses);
    // Health and control are not affected.
    assert_eq!(get(host.addr(), "/healthz").await.status, 200);
    host.faults().reset(false);
    assert_eq!(get(host.addr(), "/v/x").await.status, 200);
    host.shutdown().await;
}

#[tokio::test]
async fn stall_body_sends_headers_then_nothing() {
    let host = start(4).await;
    host.faults().stall_body(true);
    let resp = tokio::time::timeout(BOUND, head(host.addr(), get_req("/v/x")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("endpoint-load-metrics"));
    let len: u64 = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(len > 0);
    assert_eq!(
        host.stats().in_use,
        0,
        "the connection was returned before the stall"
    );
    use http_body_util::BodyExt;
    let mut body = resp.into_body();
    stays_pending(ms(300), "stalled body", body.frame()).await;
    // Shutdown abandons the stall instead of waiting on it.
    tokio::time::timeout(BOUND, host.shutdown())
        .await
        .expect("shutdown is not blocked");
}

#[tokio::test]
async fn health_lies_shallow_and_hangs() {
    let host = start(2).await;
    let addr = host.addr();
    host.faults().deadlock(2);
    let waiter = tokio::spawn(async move { get(addr, "/v/x").await });
    eventually(BOUND, "a waiter", || host.stats().waiting == 1).await;
    assert_eq!(get(addr, "/healthz").await.status, 503);

    host.faults().health_lies(true);
    let lie = get(addr, "/healthz").await;
    assert_eq!(lie.status, 200);
    assert_eq!(lie.json()["status"], "pass");
    assert_eq!(lie.json()["db_pool"]["in_use"], 2, "the figures stay true");
    assert_eq!(lie.json()["db_pool"]["waiting"], 1);

    host.faults().health_shallow(true);
    let shallow = get(addr, "/healthz").await;
    assert_eq!(shallow.json(), serde_json::json!({"status": "pass"}));

    host.faults().health_hangs(true);
    let probe = tokio::spawn(async move { send(addr, get_req("/healthz")).await });
    eventually(BOUND, "the probe is hung", || host.stats().hung == 1).await;
    let mut probe = probe;
    stays_pending(ms(300), "hung health check", &mut probe).await;

    host.faults().clear();
    let after = tokio::time::timeout(BOUND, probe)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        after.status, 200,
        "cleared: pass, the deadlock released too"
    );
    assert_eq!(waiter.await.unwrap().status, 200);
    assert_eq!(host.stats().health_requests, 4, "503, lie, shallow, hung");
    host.shutdown().await;
}

#[tokio::test]
async fn control_api_merges_reads_releases_and_clears() {
    let host = start(4).await;
    let addr = host.addr();
    let set = post(
        addr,
        "/_sim/fault",
        r#"{"deadlock": 3, "slow": "50ms", "health_lies": true}"#,
    )
    .await;
    assert_eq!(set.status, 200);
    let f = get(addr, "/_sim/fault").await.json();
    assert_eq!(
        (
            f["deadlock"].clone(),
            f["slow"].clone(),
            f["health_lies"].clone()
        ),
        (3.into(), "50ms".into(), true.into())
    );
    assert_eq!(host.stats().in_use, 3);
    // Merging keeps the rest.
    post(addr, "/_sim/fault", r#"{"error_rate": 0.25}"#).await;
    let f = get(addr, "/_sim/fault").await.json();
    assert_eq!(
        (f["deadlock"].clone(), f["error_rate"].clone()),
        (3.into(), 0.25.into())
    );
    assert_eq!(host.faults().get().error_rate, 0.25);

    assert_eq!(
        post(addr, "/_sim/fault", r#"{"error_rate": 2}"#)
            .await
            .status,
        400
    );
    assert_eq!(
        post(addr, "/_sim/fault", r#"{"nope": 1}"#).await.status,
        400
    );
    assert_eq!(post(addr, "/_sim/fault", "not json").await.status, 400);
    assert_eq!(get(addr, "/_sim/clear").await.status, 405);
    assert_eq!(get(addr, "/_sim/nothing").await.status, 404);

    assert_eq!(post(addr, "/_sim/release", "").await.json()["released"], 3);
    assert_eq!(host.stats().in_use, 0);
    let cleared = post(addr, "/_sim/clear", "").await.json();
    assert_eq!(
        cleared,
        serde_json::to_value(ringward_simhost::Faults::default()).unwrap()
    );

    let stats = get(addr, "/_sim/stats").await.json();
    assert_eq!(stats["val_requests"], 0);
    assert_eq!(stats["db_pool"]["max"], 4);
    assert!(stats["control_requests"].as_u64().unwrap() >= 9);
    host.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_pending_requests() {
    let host = start(1).await;
    let addr = host.addr();
    host.faults().deadlock(1);
    let waiting = tokio::spawn(async move { get(addr, "/v/x").await });
    eventually(BOUND, "a waiter", || host.stats().waiting == 1).await;
    tokio::time::timeout(BOUND, host.shutdown())
        .await
        .expect("shutdown completes");
    assert_eq!(waiting.await.unwrap().status, 503);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn reset_is_a_tcp_rst_on_the_wire() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = start(4).await;
    host.faults().reset(true);
    let mut stream = tokio::net::TcpStream::connect(host.addr()).await.unwrap();
    stream
        .write_all(b"GET /v/x HTTP/1.1\r\nhost: sim\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(BOUND, stream.read(&mut buf))
        .await
        .expect("the reset arrives at once");
    let err = read.expect_err("a reset, not a response or a clean close");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    host.shutdown().await;
}

/// Sends a request on a raw connection, waits until it queues for the pool, hangs up.
async fn queue_then_hang_up(host: &SimHost) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(host.addr()).await.unwrap();
    stream
        .write_all(b"GET /v/x HTTP/1.1\r\nhost: sim\r\n\r\n")
        .await
        .unwrap();
    eventually(BOUND, "the request queues", || host.stats().waiting == 1).await;
    drop(stream);
}

#[tokio::test]
async fn abandoned_requests_keep_their_place_in_the_queue_by_default() {
    let host = start(2).await;
    host.faults().deadlock(2);
    queue_then_hang_up(&host).await;
    eventually(BOUND, "the server sees the hang-up", || {
        host.stats().abandoned == 1
    })
    .await;
    assert_eq!(host.stats().waiting, 1, "the abandoned work still waits");
    let addr = host.addr();
    let second = tokio::spawn(async move { get(addr, "/v/y").await });
    eventually(BOUND, "the second request queues too", || {
        host.stats().waiting == 2
    })
    .await;
    host.faults().release();
    assert_eq!(second.await.unwrap().status, 200);
    eventually(BOUND, "the queue drains", || host.stats().waiting == 0).await;
    host.shutdown().await;
}

#[tokio::test]
async fn cancel_on_disconnect_drops_the_abandoned_waiter() {
    let host = start_with(SimConfig {
        pool_size: 2,
        cancel_on_disconnect: true,
        ..SimConfig::named("sim-c")
    })
    .await;
    host.faults().deadlock(2);
    queue_then_hang_up(&host).await;
    eventually(BOUND, "the waiter leaves with its client", || {
        host.stats().waiting == 0
    })
    .await;
    assert_eq!(host.stats().in_use, 2);
    host.shutdown().await;
}

// The `poison` fault: parallel requests for one Val deadlock the pool.

const POISONED: &str = "/v/edit-me/save";

/// Sends a request for `path` on a raw connection (to hang up on it later by dropping it).
async fn raw_request(host: &SimHost, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(host.addr()).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: sim\r\n\r\n").as_bytes())
        .await
        .unwrap();
    stream
}

/// Triggers the poison with two parallel requests: the first is held in flight by `slow`
/// until the second arrives. `slow` is off again afterwards.
async fn trigger_with_two<T>(host: &SimHost, send_one: impl AsyncFn(&SimHost) -> T) -> (T, T) {
    let triggered = host.stats().poison_triggered;
    host.faults().slow(Some(Duration::from_secs(60)));
    let first = send_one(host).await;
    eventually(
        BOUND,
        "the first poisoned request holds a connection",
        || host.stats().in_use == 1,
    )
    .await;
    let s = host.stats();
    assert_eq!(
        (s.poisoned, s.poison_triggered),
        (0, triggered),
        "one alone does not trigger"
    );
    let second = send_one(host).await;
    eventually(BOUND, "both requests' connections are poisoned", || {
        let s = host.stats();
        (s.poisoned, s.poison_triggered) == (2, triggered + 1)
    })
    .await;
    host.faults().slow(None);
    (first, second)
}

#[tokio::test]
async fn poison_serves_a_lone_request_normally() {
    let host = start(2).await;
    let addr = host.addr();
    host.faults().poison(Some("edit-me"), 2);
    for _ in 0..3 {
        let reply = get(addr, POISONED).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["val"], "edit-me");
    }
    let s = host.stats();
    assert_eq!((s.in_use, s.poisoned, s.poison_triggered), (0, 0, 0));
    assert_eq!(host.stats_handle().poison_triggered(), 0);
    host.shutdown().await;
}

#[tokio::test]
async fn poison_two_in_flight_deadlock_exhaust_the_host_and_release_recovers_it() {
    let host = start(3).await;
    let addr = host.addr();
    host.faults().poison(Some("edit-me"), 2);
    let spawn_poisoned = async |_: &SimHost| tokio::spawn(send(addr, get_req(POISONED)));
    let (mut r1, mut r2) = trigger_with_two(&host, spawn_poisoned).await;
    stays_pending(ms(300), "poisoned requests", async {
        tokio::join!(&mut r1, &mut r2)
    })
    .await;
    let s = host.stats();
    assert_eq!(
        (s.in_use, s.waiting, s.poisoned, s.deadlocked),
        (2, 0, 2, 0)
    );
    assert!(s.oldest_checkout >= ms(300), "{:?}", s.oldest_checkout);

    // Another Val finds the third connection, and its load report tells the truth.
    let other = get(addr, "/v/other-val").await;
    assert_eq!(other.status, 200);
    let (max, in_use, waiting, oldest) =
        orca(other.header("endpoint-load-metrics").expect("header"));
    assert_eq!((max, in_use, waiting), (3, 2, 0));
    assert!(oldest >= 300, "{oldest}");

    // A third poisoned request takes the last connection; the next other Val waits.
    let mut r3 = tokio::spawn(send(addr, get_req(POISONED)));
    eventually(BOUND, "the third is poisoned", || {
        host.stats().poisoned == 3
    })
    .await;
    let waiter = tokio::spawn(async move { get(addr, "/v/other-val").await });
    eventually(BOUND, "the other Val waits", || host.stats().waiting == 1).await;
    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, 503);
    let body = health.json();
    assert_eq!(body["status"], "fail");
    assert_eq!(
        (
            body["db_pool"]["in_use"].clone(),
            body["db_pool"]["waiting"].clone()
        ),
        (3.into(), 1.into())
    );
    assert_eq!(host.health_status(), ringward_simhost::HealthStatus::Fail);
    stays_pending(ms(100), "the third poisoned request", &mut r3).await;
    assert!(!waiter.is_finished());
    assert_eq!(host.stats().poison_triggered, 1, "triggered once");

    // Release: the connections come back, the hung requests answer, the host recovers.
    assert_eq!(host.faults().release(), 3);
    for r in [r1, r2, r3] {
        let reply = tokio::time::timeout(BOUND, r)
            .await
            .expect("answered after the release")
            .unwrap()
            .unwrap();
        assert_eq!(reply.status, 500);
        assert_eq!(reply.json()["error"], "deadlock released");
        assert_eq!(reply.json()["val"], "edit-me");
    }
    assert_eq!(waiter.await.unwrap().status, 200);
    let s = host.stats();
    assert_eq!((s.in_use, s.waiting, s.poisoned), (0, 0, 0));
    assert_eq!(get(addr, "/healthz").await.json()["status"], "pass");
    // Still set, so re-armed: a lone request is served, two at once trigger again.
    assert_eq!(get(addr, POISONED).await.status, 200);
    assert_eq!(host.stats().poison_triggered, 1);
    let _hung = trigger_with_two(&host, spawn_poisoned).await;
    assert_eq!(host.stats().poison_triggered, 2);
    host.faults().clear();
    eventually(BOUND, "clear releases them", || host.stats().in_use == 0).await;
    host.shutdown().await;
}

async fn poison_survives_clients_hanging_up(cancel_on_disconnect: bool) {
    let host = start_with(SimConfig {
        pool_size: 2,
        service_time: ServiceTime::Fixed(ms(1)),
        cancel_on_disconnect,
        ..SimConfig::named("sim-p")
    })
    .await;
    host.faults().poison(Some("edit-me"), 2);
    let streams = trigger_with_two(&host, async |h: &SimHost| raw_request(h, POISONED).await).await;
    drop(streams);
    eventually(BOUND, "the server sees both hang-ups", || {
        host.stats().abandoned == 2
    })
    .await;
    // The deadlocked queries did not notice: the connections stay out, and keep ageing.
    let at = host.stats().oldest_checkout;
    eventually(BOUND, "the stuck checkouts age", || {
        host.stats().oldest_checkout >= at + ms(100)
    })
    .await;
    let s = host.stats();
    assert_eq!((s.in_use, s.poisoned), (2, 2), "{s:?}");
    let addr = host.addr();
    let waiter = tokio::spawn(async move { get(addr, "/v/other-val").await });
    eventually(BOUND, "another Val waits", || host.stats().waiting == 1).await;
    assert_eq!(get(addr, "/healthz").await.status, 503);

    // `"deadlock": 0` releases them too.
    post(addr, "/_sim/fault", r#"{"deadlock": 0}"#).await;
    assert_eq!(waiter.await.unwrap().status, 200);
    let s = host.stats();
    assert_eq!((s.in_use, s.poisoned), (0, 0));
    assert_eq!(get(addr, "/healthz").await.status, 200);
    host.shutdown().await;
}

#[tokio::test]
async fn poisoned_connections_stay_held_when_the_clients_hang_up() {
    poison_survives_clients_hanging_up(false).await;
}

#[tokio::test]
async fn poisoned_connections_stay_held_even_when_hang_ups_cancel_the_work() {
    poison_survives_clients_hanging_up(true).await;
}

#[tokio::test]
async fn poison_control_api_round_trips_validates_and_releases() {
    let host = start(2).await;
    let addr = host.addr();
    let set = post(addr, "/_sim/fault", r#"{"poison": {"val": "edit-me"}}"#).await;
    assert_eq!(set.status, 200);
    assert_eq!(
        set.json()["poison"],
        serde_json::json!({"val": "edit-me", "concurrency": 2})
    );
    // Absent leaves it; a bad value or an unknown field is refused and changes nothing.
    post(addr, "/_sim/fault", r#"{"hang": false}"#).await;
    for bad in [
        r#"{"poison": {"val": "x", "concurrency": 0}}"#,
        r#"{"poison": {"val": "x", "concurency": 3}}"#,
        r#"{"poison": {"val": ""}}"#,
        r#"{"poison": "x"}"#,
    ] {
        let reply = post(addr, "/_sim/fault", bad).await;
        assert_eq!(reply.status, 400, "{bad}");
    }
    let refused = post(
        addr,
        "/_sim/fault",
        r#"{"poison": {"val": "x", "concurrency": 0}}"#,
    )
    .await;
    let msg = refused.json()["error"].as_str().unwrap().to_owned();
    assert!(msg.contains("poison.concurrency"), "{msg}");
    assert_eq!(
        get(addr, "/_sim/fault").await.json()["poison"],
        serde_json::json!({"val": "edit-me", "concurrency": 2})
    );
    let cleared = post(addr, "/_sim/fault", r#"{"poison": null}"#).await;
    assert_eq!(cleared.json()["poison"], serde_json::Value::Null);
    assert_eq!(host.faults().get().poison, None);

    // Concurrency 1: the first request deadlocks; the stats show it; release answers it.
    post(
        addr,
        "/_sim/fault",
        r#"{"poison": {"val": "edit-me", "concurrency": 1}}"#,
    )
    .await;
    let hung = tokio::spawn(send(addr, get_req(POISONED)));
    eventually(BOUND, "poisoned", || host.stats().poisoned == 1).await;
    let stats = get(addr, "/_sim/stats").await.json();
    assert_eq!(stats["poison_triggered"], 1);
    assert_eq!(stats["db_pool"]["poisoned"], 1);
    assert_eq!(stats["db_pool"]["in_use"], 1);
    assert_eq!(post(addr, "/_sim/release", "").await.json()["released"], 1);
    let reply = tokio::time::timeout(BOUND, hung)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 500);

    // Clear disarms and releases.
    let hung = tokio::spawn(send(addr, get_req(POISONED)));
    eventually(BOUND, "poisoned again", || host.stats().poisoned == 1).await;
    let cleared = post(addr, "/_sim/clear", "").await.json();
    assert_eq!(cleared["poison"], serde_json::Value::Null);
    assert_eq!(
        tokio::time::timeout(BOUND, hung)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .status,
        500
    );
    assert_eq!(get(addr, POISONED).await.status, 200);
    assert_eq!(host.stats().poison_triggered, 2);
    host.shutdown().await;
}

#[tokio::test]
async fn poison_leaves_every_val_alone_below_its_concurrency() {
    let host = start(4).await;
    let addr = host.addr();
    host.faults().poison(Some("edit-me"), 3);
    // Two poisoned requests and two others in flight together, all holding a connection.
    host.faults().slow(Some(ms(1000)));
    let reqs: Vec<_> = [POISONED, POISONED, "/v/a", "/v/b"]
        .into_iter()
        .map(|path| tokio::spawn(async move { get(addr, path).await }))
        .collect();
    eventually(BOUND, "all four in flight", || host.stats().in_use == 4).await;
    for r in reqs {
        assert_eq!(r.await.unwrap().status, 200);
    }
    // One after another, never two at once.
    host.faults().slow(None);
    host.faults().poison(Some("edit-me"), 2);
    for path in [POISONED, "/v/a", POISONED, POISONED, "/v/b"] {
        assert_eq!(get(addr, path).await.status, 200, "{path}");
    }
    let s = host.stats();
    assert_eq!((s.in_use, s.poisoned, s.poison_triggered), (0, 0, 0));
    assert_eq!(s.responses_with(200), 9);
    host.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_poisoned_requests() {
    let host = start(2).await;
    let addr = host.addr();
    host.faults().poison(Some("edit-me"), 1);
    let hung = tokio::spawn(send(addr, get_req(POISONED)));
    eventually(BOUND, "poisoned", || host.stats().poisoned == 1).await;
    tokio::time::timeout(BOUND, host.shutdown())
        .await
        .expect("shutdown is not blocked by a poisoned request");
    assert_eq!(hung.await.unwrap().unwrap().status, 503);
}
