//! A real etcd for tests: started on free loopback ports with a data dir of its own, stopped
//! (killed) and started again on the same ports and data, removed on drop. Needs Debian's
//! `etcd-server` package (`.ci/run` installs it).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running (or stopped) etcd.
#[derive(Debug)]
pub struct Etcd {
    client: SocketAddr,
    peer: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

impl Etcd {
    /// Starts etcd and waits until it answers (at most 20 s).
    ///
    /// # Panics
    /// etcd is not installed or does not come up.
    pub fn start() -> Etcd {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringward-etcd-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd dir");
        let mut etcd = Etcd {
            client: free_port(),
            peer: free_port(),
            dir,
            child: None,
        };
        etcd.resume();
        etcd
    }

    /// The client endpoint, `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.client.to_string()
    }

    /// Kills etcd (as a crash or a partition would look to its clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data, and waits until it answers.
    ///
    /// # Panics
    /// It does not come up within 20 s.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let client = format!("http://{}", self.client);
        let peer = format!("http://{}", self.peer);
        let log = std::fs::File::create(self.dir.join("etcd.log")).expect("etcd log");
        let child = Command::new("etcd")
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--log-level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start etcd ({e}): apt-get install etcd-server (.ci/run does)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "etcd did not come up on {client}: {}",
                std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether etcd answers its health endpoint now.
    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) =
            std::net::TcpStream::connect_timeout(&self.client, Duration::from_millis(200))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let req = "GET /health HTTP/1.1\r\nhost: etcd\r\nconnection: close\r\n\r\n";
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.starts_with("HTTP/1.1 200") && text.contains("\"health\":\"true\"")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
