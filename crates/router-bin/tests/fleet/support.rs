//! The lab: a real etcd, simulated hosts (in this process, real HTTP on loopback), and three
//! `ringward` processes configured for fleet mode on one prefix.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use ringward_etcd::{Client, Options};
use ringward_testkit::client::{self, Connection};
use ringward_testkit::etcd::Etcd;
use ringward_testkit::eventually_async;
use simhost::{SimConfig, SimHost};

const BIN: &str = env!("CARGO_BIN_EXE_ringward");
const TOKEN: &str = "fleet-token";
const PREFIX: &str = "/test/";
/// Routers in the lab.
pub(crate) const ROUTERS: usize = 3;
/// How long convergence may take on a loaded 2-core machine (it takes well under a second).
const CONVERGE: Duration = Duration::from_secs(15);

/// One `ringward run` process.
struct RouterProc {
    child: Child,
    listen: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

impl Drop for RouterProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Lab {
    pub(crate) etcd: Etcd,
    sims: Vec<SimHost>,
    routers: Vec<RouterProc>,
    client: Client,
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

impl Lab {
    /// etcd, `hosts` simulated hosts (none registered yet) and three routers; `extra` adds
    /// TOML to router `i`'s file.
    pub(crate) async fn start(hosts: usize, extra: &[(usize, &str)]) -> Lab {
        Lab::start_with(hosts, extra, false).await
    }

    /// [`Lab::start`] with etcd stopped before the routers start (`etcd.resume()` brings it).
    pub(crate) async fn start_with_etcd_down(hosts: usize) -> Lab {
        Lab::start_with(hosts, &[], true).await
    }

    async fn start_with(hosts: usize, extra: &[(usize, &str)], etcd_down: bool) -> Lab {
        let mut etcd = Etcd::start();
        if etcd_down {
            etcd.stop();
        }
        let client = Client::new(&[etcd.endpoint()], Options::default()).expect("client");
        let mut sims = Vec::new();
        for i in 0..hosts {
            let config = SimConfig {
                service_time: simhost::ServiceTime::Fixed(Duration::from_millis(1)),
                seed: Some(i as u64),
                ..SimConfig::named(format!("host-{i}"))
            };
            sims.push(
                SimHost::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
                    .await
                    .expect("simhost"),
            );
        }
        let dir = std::env::temp_dir().join(format!(
            "ringward-fleet-{}-{}",
            std::process::id(),
            etcd.endpoint().replace([':', '.'], "-")
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut routers = Vec::new();
        for r in 0..ROUTERS {
            let (listen, admin) = (free_port(), free_port());
            let health = extra.iter().find(|(i, _)| *i == r).map_or(
                "[health.active]\ninterval = \"200ms\"\ntimeout = \"150ms\"\n",
                |(_, t)| t,
            );
            let text = format!(
                "[listen]\naddr = \"{listen}\"\nworkers = 1\nshutdown_grace = \"1s\"\n\
                 [admin]\naddr = \"{admin}\"\ntoken = \"{TOKEN}\"\n\
                 [discovery.etcd]\nendpoints = [\"{}\"]\nprefix = \"{PREFIX}\"\nname = \"router-{r}\"\n\
                 remove_delay = \"1s\"\nrequest_timeout = \"1s\"\n{health}",
                etcd.endpoint()
            );
            let config = dir.join(format!("router-{r}.toml"));
            std::fs::write(&config, text).expect("config");
            let log = dir.join(format!("router-{r}.log"));
            let child = Command::new(BIN)
                .args(["run", "--config"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log"))
                .spawn()
                .expect("start ringward");
            routers.push(RouterProc {
                child,
                listen,
                admin,
                log,
            });
        }
        let lab = Lab {
            etcd,
            sims,
            routers,
            client,
        };
        for r in 0..ROUTERS {
            eventually_async(CONVERGE, "the router's admin API answers", || async {
                client::get(lab.admin(r), "/readyz").await.is_ok()
            })
            .await;
        }
        lab
    }

    pub(crate) fn admin(&self, r: usize) -> SocketAddr {
        self.routers[r].admin
    }

    pub(crate) fn sim(&self, i: usize) -> &SimHost {
        &self.sims[i]
    }

    pub(crate) fn log(&self, r: usize) -> String {
        std::fs::read_to_string(&self.routers[r].log).unwrap_or_default()
    }

    /// Registers simulated host `i` as a worker would: `{prefix}hosts/host-i`.
    pub(crate) async fn register(&self, i: usize) {
        let value = format!("{{\"addr\": \"{}\", \"weight\": 1}}", self.sims[i].addr());
        self.client
            .put(&format!("{PREFIX}hosts/host-{i}"), value.as_bytes(), None)
            .await
            .expect("register");
    }

    pub(crate) async fn deregister(&self, i: usize) {
        self.client
            .delete(&format!("{PREFIX}hosts/host-{i}"))
            .await
            .expect("deregister");
    }

    pub(crate) async fn hosts_json(&self, r: usize) -> serde_json::Value {
        client::get(self.admin(r), "/admin/hosts")
            .await
            .expect("/admin/hosts")
            .json()
    }

    pub(crate) async fn readyz(&self, r: usize) -> String {
        client::get(self.admin(r), "/readyz")
            .await
            .map(|reply| reply.text())
            .unwrap_or_default()
    }

    /// Waits until every router routes over exactly `names`.
    pub(crate) async fn wait_hosts(&self, names: &[&str]) {
        let mut want: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        want.sort();
        for r in 0..ROUTERS {
            eventually_async(
                CONVERGE,
                &format!("router {r} routes over {want:?}"),
                || async {
                    let mut have: Vec<String> =
                        host_states(&self.hosts_json(r).await).into_keys().collect();
                    have.sort();
                    have == want
                },
            )
            .await;
        }
    }

    /// Waits until every router shows `host` in `state`.
    pub(crate) async fn wait_state(&self, host: &str, state: &str) {
        for r in 0..ROUTERS {
            eventually_async(CONVERGE, &format!("router {r}: {host} {state}"), || async {
                host_states(&self.hosts_json(r).await)
                    .get(host)
                    .is_some_and(|(s, _)| s == state)
            })
            .await;
        }
    }

    /// Where every router sends each key (`/admin/route`), checked to be the same on all.
    pub(crate) async fn agreed_routes(&self, keys: &[String]) -> HashMap<String, String> {
        let first = route_all(self.admin(0), keys).await;
        for r in 1..ROUTERS {
            let other = route_all(self.admin(r), keys).await;
            let differ = keys
                .iter()
                .filter(|k| first.get(*k) != other.get(*k))
                .count();
            assert_eq!(
                differ,
                0,
                "router {r} routes {differ} of {} keys elsewhere than router 0",
                keys.len()
            );
        }
        first
    }

    /// `POST /admin/hosts/{host}/{command}` on router `r`; the status.
    pub(crate) async fn operator(&self, r: usize, host: &str, command: &str) -> u16 {
        self.post_admin(r, &format!("/admin/hosts/{host}/{command}"))
            .await
    }

    /// `POST /admin/vals/{key}/{command}` on router `r`; the status.
    pub(crate) async fn val_command(&self, r: usize, key: &str, command: &str) -> u16 {
        self.post_admin(r, &format!("/admin/vals/{key}/{command}"))
            .await
    }

    /// An authorised `POST path` on router `r`'s admin API; the status.
    async fn post_admin(&self, r: usize, path: &str) -> u16 {
        let req = client::request(Method::POST, path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        client::send(self.admin(r), req)
            .await
            .expect("admin answers")
            .status
            .as_u16()
    }

    /// Waits until every router's guard has Val `key` in `state`.
    pub(crate) async fn wait_val(&self, key: &str, state: &str) {
        for r in 0..ROUTERS {
            eventually_async(
                CONVERGE,
                &format!("router {r}: Val {key} {state}"),
                || async {
                    client::get(self.admin(r), &format!("/admin/vals/{key}"))
                        .await
                        .is_ok_and(|reply| reply.json()["state"] == state)
                },
            )
            .await;
        }
    }

    /// A series' value on router `r`'s `/metrics`.
    pub(crate) async fn metric(&self, r: usize, series: &str) -> u64 {
        let text = client::get(self.admin(r), "/metrics")
            .await
            .expect("metrics")
            .text();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .map_or(0, |v| v as u64)
    }

    /// One request per key through every router (a keep-alive connection each): the
    /// requests that did not get a 200, and the median latency.
    pub(crate) async fn traffic(&self, keys: &[String]) -> (usize, Duration) {
        let mut failed = 0;
        let mut latencies = Vec::new();
        for router in &self.routers {
            let mut conn = Connection::open(router.listen).await.expect("connect");
            for key in keys {
                let req = client::request(Method::GET, &format!("/v/{key}/run"))
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                let start = Instant::now();
                match conn.send(req).await {
                    Ok(reply) if reply.status == 200 => latencies.push(start.elapsed()),
                    _ => {
                        failed += 1;
                        conn = Connection::open(router.listen).await.expect("reconnect");
                    }
                }
            }
        }
        latencies.sort();
        (
            failed,
            latencies
                .get(latencies.len() / 2)
                .copied()
                .unwrap_or_default(),
        )
    }

    pub(crate) async fn stop(self) {
        drop(self.routers);
        for sim in self.sims {
            sim.shutdown().await;
        }
    }
}

/// `/admin/route?key=K` for every key on one keep-alive connection: key to host.
pub(crate) async fn route_all(admin: SocketAddr, keys: &[String]) -> HashMap<String, String> {
    let mut conn = Connection::open(admin).await.expect("admin");
    let mut out = HashMap::with_capacity(keys.len());
    for key in keys {
        let req = client::request(Method::GET, &format!("/admin/route?key={key}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let reply = conn.send(req).await.expect("route");
        let host = reply.json()["host"].as_str().unwrap_or("-").to_owned();
        out.insert(key.clone(), host);
    }
    out
}

/// `/admin/hosts` as name to (state, reason).
pub(crate) fn host_states(json: &serde_json::Value) -> HashMap<String, (String, Option<String>)> {
    json["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("?").to_owned(),
                (
                    h["state"].as_str().unwrap_or("?").to_owned(),
                    h["reason"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}
