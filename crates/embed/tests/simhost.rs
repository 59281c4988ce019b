//! The tower layer over hyper-util's client against real simulated hosts on loopback: a
//! Val sticks to its host, and moves (alone) when that host fails.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ringward_embed::router_core::{Admission, SkipReason};
use ringward_embed::{Balancer, DriverHandle, Host, Route, RouteLayer, ValKey};
use simhost::{SimConfig, SimHost};
use tower::{Layer, ServiceExt};

type Proxy = Route<Client<HttpConnector, Empty<Bytes>>, ValKey>;

/// How long a test waits for something that should take a second at most.
const PATIENCE: Duration = Duration::from_secs(10);

struct Fleet {
    hosts: Vec<SimHost>,
    balancer: Balancer,
    proxy: Proxy,
    _driver: DriverHandle,
}

impl Fleet {
    async fn start(n: usize) -> Fleet {
        let mut hosts = Vec::new();
        for i in 0..n {
            let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
            hosts.push(
                SimHost::start(addr, SimConfig::named(format!("host-{i}")))
                    .await
                    .unwrap(),
            );
        }
        let (balancer, driver) =
            Balancer::builder(hosts.iter().map(|h| Host::new(h.name(), h.addr())))
                .start()
                .unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let proxy = RouteLayer::new(balancer.clone(), ValKey::header("x-val")).layer(client);
        Fleet {
            hosts,
            balancer,
            proxy,
            _driver: driver,
        }
    }

    fn sim(&self, name: &str) -> &SimHost {
        self.hosts.iter().find(|h| h.name() == name).unwrap()
    }

    fn request(key: &str) -> Request<Empty<Bytes>> {
        Request::get("/run")
            .header("x-val", key)
            .body(Empty::new())
            .unwrap()
    }

    /// Which host served a request for `key` (it must answer 200).
    async fn served_by(&self, key: &str) -> String {
        let resp = self
            .proxy
            .clone()
            .oneshot(Fleet::request(key))
            .await
            .expect("an answer");
        assert_eq!(resp.status(), StatusCode::OK, "{key}");
        let host = resp.headers()["x-simhost"].to_str().unwrap().to_owned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(format!(r#"{{"host":"{host}""#).as_bytes()));
        host
    }

    /// The host of every key, checked three times each.
    async fn homes(&self, keys: &[String]) -> HashMap<String, String> {
        let mut homes = HashMap::new();
        for key in keys {
            let home = self.served_by(key).await;
            for _ in 0..2 {
                assert_eq!(self.served_by(key).await, home, "{key} sticks");
            }
            homes.insert(key.clone(), home);
        }
        homes
    }

    /// Waits until host `name` is ejected (by the publication of a snapshot, with a deadline).
    async fn ejected(&self, name: &str) {
        let id = self.balancer.host_id(name).unwrap();
        let mut changes = self.balancer.changes();
        tokio::time::timeout(PATIENCE, async {
            while self.balancer.admission(id) != Admission::Closed(SkipReason::Ejected) {
                changes.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name} not ejected within {PATIENCE:?}"));
    }

    /// After `victim` is out: its keys moved, every other key stayed.
    async fn only_the_victims_keys_moved(&self, homes: &HashMap<String, String>, victim: &str) {
        let mut moved = 0;
        for (key, home) in homes {
            let now = self.served_by(key).await;
            if home == victim {
                assert_ne!(now, victim, "{key} left {victim}");
                moved += 1;
            } else {
                assert_eq!(&now, home, "{key} stayed on its host");
            }
        }
        assert!(
            moved > 0 && moved < homes.len(),
            "{moved} of {}",
            homes.len()
        );
    }

    async fn shutdown(self) {
        drop(self.proxy);
        for host in self.hosts {
            host.shutdown().await;
        }
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("val-{i}")).collect()
}

#[tokio::test]
async fn a_val_sticks_to_its_host_and_moves_alone_when_the_host_resets() {
    let fleet = Fleet::start(3).await;
    let keys = keys(24);
    let homes = fleet.homes(&keys).await;
    let victim = homes["val-0"].clone();

    fleet.sim(&victim).faults().reset(true);
    // Five gateway failures in a row (the default) eject the host.
    for _ in 0..5 {
        let err = fleet
            .proxy
            .clone()
            .oneshot(Fleet::request("val-0"))
            .await
            .expect_err("the connection is reset");
        assert!(!err.is_connect(), "{err}");
    }
    fleet.ejected(&victim).await;
    assert_ne!(fleet.served_by("val-0").await, victim);
    fleet.only_the_victims_keys_moved(&homes, &victim).await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_stopped_host_is_ejected_by_refused_connections() {
    let mut fleet = Fleet::start(3).await;
    let keys = keys(24);
    let homes = fleet.homes(&keys).await;
    let victim = homes["val-1"].clone();
    let i = fleet.hosts.iter().position(|h| h.name() == victim).unwrap();
    fleet.hosts.remove(i).shutdown().await;
    for _ in 0..5 {
        let result = fleet.proxy.clone().oneshot(Fleet::request("val-1")).await;
        assert!(result.is_err(), "nobody answers");
    }
    fleet.ejected(&victim).await;
    let view = fleet.balancer.health();
    let id = fleet.balancer.host_id(&victim).unwrap();
    assert_eq!(
        view.hosts[id.index()].reason,
        Some(ringward_embed::health::Reason::ConsecutiveGatewayFailures)
    );
    fleet.only_the_victims_keys_moved(&homes, &victim).await;
    fleet.shutdown().await;
}

/// The incident: the host's DB pool fills with deadlocked connections and its requests hang.
/// Requests stuck in flight eject it within about a second, and the Val moves.
#[tokio::test]
async fn a_deadlocked_pool_ejects_its_host_and_the_val_moves() {
    let fleet = Fleet::start(3).await;
    let keys = keys(24);
    let homes = fleet.homes(&keys).await;
    let victim = homes["val-2"].clone();

    fleet.sim(&victim).faults().deadlock(10);
    let started = tokio::time::Instant::now();
    let stuck: Vec<_> = (0..3)
        .map(|_| {
            let proxy = fleet.proxy.clone();
            tokio::spawn(async move { proxy.oneshot(Fleet::request("val-2")).await })
        })
        .collect();
    fleet.ejected(&victim).await;
    let took = started.elapsed();
    eprintln!("ejected {took:?} after the deadlock");
    assert!(
        took >= Duration::from_millis(500),
        "not before hung_after: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "about a second: {took:?}");
    assert_ne!(fleet.served_by("val-2").await, victim);
    fleet.only_the_victims_keys_moved(&homes, &victim).await;

    // The pool is released: the stuck requests are answered after all.
    assert_eq!(fleet.sim(&victim).faults().release(), 10);
    for request in stuck {
        let resp = tokio::time::timeout(PATIENCE, request)
            .await
            .expect("answered once released")
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    fleet.shutdown().await;
}
