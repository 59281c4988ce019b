//! The client against a real etcd (started on free loopback ports): every call it offers,
//! a watch that sees puts, deletes and lease expiry, and a watch from a compacted revision.

use std::time::Duration;

use ringward_etcd::{Client, EventKind, Options};
use ringward_testkit::etcd::Etcd;

fn client(etcd: &Etcd) -> Client {
    Client::new(&[etcd.endpoint()], Options::default()).expect("client")
}

#[tokio::test]
async fn puts_ranges_and_deletes_under_a_prefix() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    c.put("/rw/hosts/a", b"1", None).await.expect("put a");
    c.put("/rw/hosts/b", b"2", None).await.expect("put b");
    c.put("/rwx/other", b"3", None)
        .await
        .expect("put outside the prefix");
    let range = c.range_prefix("/rw/").await.expect("range");
    let keys: Vec<&str> = range.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/rw/hosts/a", "/rw/hosts/b"]);
    assert_eq!(range.kvs[1].value, b"2".to_vec());
    let after = c.delete("/rw/hosts/a").await.expect("delete");
    assert!(after > range.revision);
    let range = c.range_prefix("/rw/").await.expect("range");
    assert_eq!(range.kvs.len(), 1);
}

#[tokio::test]
async fn a_watch_sees_puts_deletes_and_an_expired_lease_in_order() {
    let etcd = Etcd::start();
    let c = client(&etcd);
    let start = c.range_prefix("/rw/").await.expect("range").revision;
    let mut watch = c.watch_prefix("/rw/", start + 1).await.expect("watch");
    let lease = c.grant(Duration::from_secs(1)).await.expect("grant");
    assert!(c.keep_alive(lease).await.expect("keepalive").is_some());
    c.put("/rw/hosts/a", b"x", Some(lease)).await.expect("put");
    c.put("/rw/hosts/b", b"y", None).await.expect("put");
    c.delete("/rw/hosts/b").await.expect("delete");
    // The lease is not renewed again: etcd deletes its key within a few seconds.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while seen.len() < 4 {
        let batch = tokio::time::timeout_at(deadline, watch.next())
            .await
            .unwrap_or_else(|_| panic!("only {seen:?} within 15 s"))
            .expect("watch message")
            .expect("stream open");
        seen.extend(batch.events.into_iter().map(|e| (e.kind, e.key)));
    }
    assert_eq!(
        seen,
        [
            (EventKind::Put, "/rw/hosts/a".to_owned()),
            (EventKind::Put, "/rw/hosts/b".to_owned()),
            (EventKind::Delete, "/rw/hosts/b".to_owned()),
            (EventKind::Delete, "/rw/hosts/a".to_owned()),
        ]
    );
    assert_eq!(
        c.keep_alive(lease).await.expect("keepalive"),
        None,
        "expired"
    );
}

#[tokio::test]
async fn revoking_a_lease_deletes_its_keys_and_a_stopped_etcd_is_unreachable() {
    let mut etcd = Etcd::start();
    let c = client(&etcd);
    let lease = c.grant(Duration::from_secs(60)).await.expect("grant");
    c.put("/rw/hosts/a", b"x", Some(lease)).await.expect("put");
    c.revoke(lease).await.expect("revoke");
    assert!(c.range_prefix("/rw/").await.expect("range").kvs.is_empty());
    etcd.stop();
    match c.range_prefix("/rw/").await {
        Err(ringward_etcd::Error::Unreachable { .. }) => {}
        other => panic!("{other:?}"),
    }
    etcd.resume();
    assert!(
        c.range_prefix("/rw/").await.is_ok(),
        "answers again after a restart"
    );
}
