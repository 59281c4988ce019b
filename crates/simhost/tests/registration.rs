//! Registering in a real etcd (started on free loopback ports): the key and its lease while
//! the host runs, gone at once when it stops, written again when its lease is lost.

use std::net::SocketAddr;
use std::time::Duration;

use ringward_etcd::{Client, LeaseId, Options};
use ringward_simhost::{EtcdRegistration, SimConfig, SimHost};
use ringward_testkit::etcd::Etcd;
use ringward_testkit::eventually_async;

#[tokio::test]
async fn a_host_registers_on_a_lease_keeps_it_and_leaves_when_it_stops() {
    let etcd = Etcd::start();
    let client = Client::new(&[etcd.endpoint()], Options::default()).expect("client");
    let host = SimHost::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SimConfig::named("w-1"),
    )
    .await
    .expect("simhost");
    let registration = EtcdRegistration {
        endpoints: vec![etcd.endpoint()],
        prefix: "/fleet/".into(),
        ttl: Duration::from_secs(1),
        weight: 3,
    };
    let registered = registration
        .start(host.name(), host.addr())
        .await
        .expect("registered");
    let range = client.range_prefix("/fleet/hosts/").await.expect("range");
    assert_eq!(range.kvs.len(), 1);
    let kv = &range.kvs[0];
    assert_eq!(kv.key, "/fleet/hosts/w-1");
    let value: serde_json::Value = serde_json::from_slice(&kv.value).expect("json");
    assert_eq!(value["addr"], host.addr().to_string());
    assert_eq!(value["weight"], 3);
    assert_ne!(kv.lease, 0, "on a lease");

    // The lease is lost (as when etcd was away longer than the TTL): written again.
    client.revoke(LeaseId(kv.lease)).await.expect("revoke");
    eventually_async(Duration::from_secs(10), "registered again", || async {
        let range = client.range_prefix("/fleet/hosts/").await.expect("range");
        range.kvs.len() == 1 && range.kvs[0].lease != kv.lease
    })
    .await;

    // Kept alive past several TTLs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        client
            .range_prefix("/fleet/hosts/")
            .await
            .expect("range")
            .kvs
            .len(),
        1
    );

    registered.stop().await;
    assert!(
        client
            .range_prefix("/fleet/hosts/")
            .await
            .expect("range")
            .kvs
            .is_empty(),
        "gone at once when the host leaves"
    );
    host.shutdown().await;
}
