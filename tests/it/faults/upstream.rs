//! Upstream faults: a host that never answers (row 1), resets (row 3), a stalled body (row 4),
//! a malformed response (row 16), a keep-alive connection closed as it is reused (row 17).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use ringward_tests::client::{self, ClientError, request};
use ringward_tests::{Fleet, eventually, eventually_async};
use tokio::time::Instant;

use super::rawhost::{Action, RawHost, ok_response};
use super::{config, hosts_toml, metric, ms};
use crate::support::{mapping, routed_by_admin, start, state_of, worker_tasks};

/// Keys of `host` in `map`.
fn keys_of(map: &[(String, String)], host: &str) -> Vec<String> {
    map.iter()
        .filter(|(_, h)| h == host)
        .map(|(k, _)| k.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row01_a_host_that_never_answers_gives_504_at_the_timeout_and_is_ejected() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[("upstream", "response_header_timeout = \"300ms\"")],
    ))
    .await;
    let before = mapping(&router, 30).await;
    let sick = before[0].1.clone();
    let keys = keys_of(&before, &sick);
    assert!(keys.len() >= 3, "{keys:?}");
    fleet.by_name(&sick).expect("host").faults().hang(true);
    let t0 = Instant::now();
    let addr = router.listen_addr();

    // Waves of concurrent requests for its keys (a POST, which is never rescued, and GETs)
    // until the admin API says it is ejected; then one more wave.
    let mut results = Vec::new();
    let mut ejected_after = None;
    for _wave in 0..20 {
        let tasks: Vec<_> = keys
            .iter()
            .take(4)
            .enumerate()
            .map(|(i, k)| {
                let key = k.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let path = format!("/v/{key}/run");
                    let r = if i == 0 {
                        client::post(addr, &path, &[("x-val", &key)], "p").await
                    } else {
                        client::get_with(addr, &path, &[("x-val", &key)]).await
                    };
                    (i == 0, r.expect("an answer"), started.elapsed())
                })
            })
            .collect();
        for t in tasks {
            results.push(t.await.expect("task"));
        }
        if ejected_after.is_some() {
            break;
        }
        if state_of(&router, &sick).await == "ejected" {
            ejected_after = Some(t0.elapsed());
        }
    }
    let ejected_after = ejected_after.expect("the hanging host is ejected");
    let worst = results.iter().map(|r| r.2).max().expect("results");
    let n504 = results.iter().filter(|r| r.1.status == 504).count();
    for (post, reply, took) in &results {
        assert!(
            *took <= TIMEOUT + Duration::from_millis(100),
            "a request took {took:?} (post: {post}, status {})",
            reply.status
        );
        match reply.status.as_u16() {
            504 => {
                assert!(*took >= TIMEOUT, "504 before the timeout: {took:?}");
                assert_eq!(reply.json()["host"], sick.as_str());
            }
            200 => assert_ne!(reply.header("x-ringward-host"), Some(sick.as_str())),
            s => panic!("unexpected status {s}: {}", reply.text()),
        }
    }
    assert!(n504 >= 1);
    // After the ejection its keys are served elsewhere at once.
    let last = &results[results.len() - 4..];
    assert!(last.iter().all(|r| r.1.status == 200), "after ejection");
    println!(
        "FIGURE row 1: {} requests, {n504} x 504, slowest {:.0} ms (timeout 300 ms, bound 400 ms); ejected after {:.0} ms",
        results.len(),
        ms(worst),
        ms(ejected_after)
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn row03_a_reset_before_the_head_is_retried_for_get_and_a_post_is_never_replayed() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(&fleet.hosts_toml(), &[])).await;
    let before = mapping(&router, 30).await;
    let flaky = before[0].1.clone();
    let keys = keys_of(&before, &flaky);
    let host = fleet.by_name(&flaky).expect("host");
    host.faults().reset(true);
    let addr = router.listen_addr();
    let total = |f: &Fleet| f.val_requests().iter().sum::<u64>();
    let mut replays = 0;
    let mut get_errors = 0;
    let mut post_502 = 0;
    for i in 0..12 {
        let key = &keys[i % keys.len()];
        let path = format!("/v/{key}/run");
        let t = total(&fleet);
        let post = client::post(addr, &path, &[("x-val", key)], "once")
            .await
            .expect("answer");
        let delta = total(&fleet) - t;
        if delta != 1 {
            replays += 1;
        }
        match post.status.as_u16() {
            502 => post_502 += 1,
            // Once the host is ejected the POST goes straight to the next preference.
            200 => assert_ne!(post.header("x-ringward-host"), Some(flaky.as_str())),
            s => panic!("POST: {s} {}", post.text()),
        }
        let t = total(&fleet);
        let get = client::get_with(addr, &path, &[("x-val", key)])
            .await
            .expect("answer");
        assert!(total(&fleet) - t <= 2, "a GET was tried more than twice");
        if get.status != 200 {
            get_errors += 1;
        }
    }
    assert_eq!(replays, 0, "a POST reached the hosts more than once");
    assert_eq!(get_errors, 0, "a GET caught by a reset was not retried");
    assert!(post_502 >= 1);
    assert!(host.stats().resets >= 1);
    println!(
        "FIGURE row 3 (before the head): 12 POSTs, {post_502} x 502, replays = {replays}; 12 GETs, errors = {get_errors}"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn row03_a_reset_after_the_head_aborts_the_client_response_and_nothing_is_replayed() {
    let raw = RawHost::start(Arc::new(|_, _| {
        Action::ReplyThenReset(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial".to_vec())
    }))
    .await;
    let router = start(config(&hosts_toml(&[("raw".into(), raw.addr())]), &[])).await;
    let addr = router.listen_addr();
    let mut aborted = 0;
    for i in 0..6 {
        let path = format!("/v/k{i}/run");
        let r = if i % 2 == 0 {
            client::post(addr, &path, &[], "body").await
        } else {
            client::get(addr, &path).await
        };
        match r {
            Err(ClientError::Http(_)) => aborted += 1,
            other => panic!("expected an aborted response, got {other:?}"),
        }
        assert_eq!(
            raw.requests().len(),
            i + 1,
            "request {i} reached the host more than once"
        );
    }
    println!(
        "FIGURE row 3 (after the head): 6 requests (3 POST, 3 GET), {aborted} aborted, replays = 0"
    );
    router.shutdown().await;
    raw.stop();
}

/// ESTABLISHED IPv4 TCP connections whose remote port is `port` (the router's side of its
/// connections to a host), from /proc/net/tcp.
fn established_to(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "01"
                && f[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row04_a_stalled_body_is_cut_off_and_leaks_no_task_or_connection() {
    const IDLE: Duration = Duration::from_millis(300);
    const WORKERS: usize = 2;
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[
            ("upstream", "body_idle_timeout = \"300ms\""),
            ("listen", "workers = 2"),
        ],
    ))
    .await;
    let before = mapping(&router, 20).await;
    let sick = before[0].1.clone();
    let key = keys_of(&before, &sick)[0].clone();
    let host = fleet.by_name(&sick).expect("host");
    let port = host.addr().port();
    let runtime = tokio::runtime::Handle::current();
    // The router's tasks live on its workers' runtimes, the test's own on this one.
    let tasks = async || runtime.metrics().num_alive_tasks() as u64 + worker_tasks(&router).await;
    let tasks_before = tasks().await;
    let conns_before = established_to(port);
    let accepted_before = host.stats().connections;

    host.faults().stall_body(true);
    const N: usize = 4;
    let mut cut_after = Vec::new();
    for _ in 0..N {
        let req = request(Method::GET, &format!("/v/{key}/run"))
            .header("x-val", key.as_str())
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = client::send_head(router.listen_addr(), req)
            .await
            .expect("the head arrives");
        assert_eq!(resp.status(), 200);
        let started = Instant::now();
        let body = tokio::time::timeout(Duration::from_secs(3), resp.into_body().collect())
            .await
            .expect("the body idle timeout frees the client");
        assert!(
            body.is_err(),
            "a stalled body must end in an error, not a short body"
        );
        let took = started.elapsed();
        assert!(
            took >= IDLE - Duration::from_millis(20),
            "cut before the idle timeout: {took:?}"
        );
        cut_after.push(took);
    }
    host.faults().clear();
    // The stalled connections were not reused: each stalled exchange used a new one (the
    // first on each worker may have taken that worker's pooled connection).
    let accepted = host.stats().connections - accepted_before;
    assert!(
        accepted >= (N - WORKERS) as u64,
        "{accepted} new connections for {N} stalled requests"
    );
    // And none is left behind: connections and tasks return to where they were.
    eventually(
        Duration::from_secs(3),
        "router-side connections to the host closed",
        || established_to(port) <= conns_before,
    )
    .await;
    eventually_async(
        Duration::from_secs(3),
        "tasks back to the baseline",
        || async { tasks().await <= tasks_before },
    )
    .await;
    let tasks_after = tasks().await;
    let worst = cut_after.iter().max().copied().unwrap_or_default();
    println!(
        "FIGURE row 4: {N} stalled bodies cut after at most {:.0} ms (idle timeout 300 ms); {accepted} new upstream connections; connections to the host {conns_before} -> {}; tasks {tasks_before} -> {tasks_after}",
        ms(worst),
        established_to(port)
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn row16_a_malformed_response_is_502_and_its_connection_is_not_reused() {
    let malformed: [&[u8]; 4] = [
        b"HTTP/1.1 abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        b"garbage\r\n\r\n",
    ];
    let next = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&next);
    let raw = RawHost::start(Arc::new(move |_, _| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        Action::Reply(malformed[i % malformed.len()].to_vec())
    }))
    .await;
    let router = start(config(&hosts_toml(&[("raw".into(), raw.addr())]), &[])).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = client::get(router.listen_addr(), &format!("/v/k{i}/run"))
            .await
            .expect("an answer");
        statuses.push(r.status.as_u16());
        if r.status == 503 {
            // The host may be ejected for its failures (no other host: 503).
            continue;
        }
        assert_eq!(r.status, 502, "{}", r.text());
    }
    let seen = raw.requests();
    let mut conns: Vec<usize> = seen.iter().map(|s| s.conn).collect();
    conns.dedup();
    assert_eq!(
        conns.len(),
        seen.len(),
        "a connection that gave a malformed response was reused"
    );
    let n502 = statuses.iter().filter(|s| **s == 502).count();
    assert!(n502 >= 4, "{statuses:?}");
    println!(
        "FIGURE row 16: {} requests reached the host, {n502} x 502, on {} distinct connections (reused: 0)",
        seen.len(),
        conns.len()
    );
    router.shutdown().await;
    raw.stop();
}

#[tokio::test]
async fn row17_a_keep_alive_connection_closed_on_reuse_is_retried_transparently() {
    // The raw host answers the first request of each connection and closes the connection
    // when the next one arrives on it: the race of an upstream keep-alive timeout.
    let raw = RawHost::start(Arc::new(|i, _| {
        if i == 0 {
            Action::Reply(ok_response())
        } else {
            Action::Close
        }
    }))
    .await;
    let fleet = Fleet::start(2).await.expect("fleet");
    let mut hosts = fleet.named_addrs();
    hosts.push(("raw".into(), raw.addr()));
    let router = start(config(&hosts_toml(&hosts), &[])).await;
    let mut keys = Vec::new();
    for i in 0..200 {
        let k = format!("key-{i}");
        if routed_by_admin(&router, &k).await.as_deref() == Some("raw") {
            keys.push(k);
        }
        if keys.len() == 10 {
            break;
        }
    }
    assert!(keys.len() >= 5, "keys of the raw host: {keys:?}");
    let retries_before = metric(&router, "ringward_retries_total").await;
    const N: usize = 40;
    let mut errors = 0;
    for i in 0..N {
        let key = &keys[i % keys.len()];
        let r = client::get_with(
            router.listen_addr(),
            &format!("/v/{key}/run"),
            &[("x-val", key)],
        )
        .await
        .expect("answer");
        if r.status != 200 {
            errors += 1;
        }
    }
    let retries = metric(&router, "ringward_retries_total").await - retries_before;
    let closed = raw
        .requests()
        .iter()
        .fold(
            std::collections::BTreeMap::<usize, usize>::new(),
            |mut m, s| {
                *m.entry(s.conn).or_default() += 1;
                m
            },
        )
        .values()
        .filter(|n| **n > 1)
        .count();
    assert!(closed >= 1, "the close-on-reuse race never happened");
    assert_eq!(errors, 0, "{errors} of {N} GETs failed");
    assert!(retries <= N as u64, "{retries} retries for {N} requests");
    println!(
        "FIGURE row 17: {N} GETs, errors = {errors}, {closed} connections closed on reuse, {retries} retries (at most 1 per request)"
    );
    router.shutdown().await;
    fleet.shutdown().await;
    raw.stop();
}
