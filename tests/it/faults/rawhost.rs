//! A raw TCP "host" for faults no well-behaved HTTP server produces: malformed responses,
//! resets after the head, a keep-alive connection closed just as it is reused. It answers
//! `/healthz` with a healthy 200 so the prober keeps it in, and counts everything else.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the host does with one (non-probe) request.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Write these bytes and keep the connection for the next request.
    Reply(Vec<u8>),
    /// Write these bytes, then reset the connection (RST).
    ReplyThenReset(Vec<u8>),
    /// Close the connection (FIN) without answering.
    Close,
}

/// Decides the action from the 0-based index of the request on its connection and its head.
pub(crate) type Behaviour = Arc<dyn Fn(usize, &str) -> Action + Send + Sync>;

/// A well-formed small 200 (keep-alive).
pub(crate) fn ok_response() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok".to_vec()
}

/// One request as the host saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// Which accepted connection (0-based) carried it.
    pub(crate) conn: usize,
    /// The request head.
    pub(crate) head: String,
    /// The body bytes read (by Content-Length or chunked framing).
    pub(crate) body: Vec<u8>,
}

#[derive(Default)]
struct Log {
    connections: usize,
    requests: Vec<Seen>,
    probes: Vec<Instant>,
}

/// A running raw host.
pub(crate) struct RawHost {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl RawHost {
    /// Binds `127.0.0.1:0` and serves with `behaviour`.
    pub(crate) async fn start(behaviour: Behaviour) -> RawHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Log::default()));
        let l = Arc::clone(&log);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let conn = {
                    let mut g = l.lock().expect("log");
                    g.connections += 1;
                    g.connections - 1
                };
                tokio::spawn(serve(stream, conn, Arc::clone(&behaviour), Arc::clone(&l)));
            }
        });
        RawHost { addr, log, task }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Non-probe requests received so far.
    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.log.lock().expect("log").requests.clone()
    }

    /// Arrival times of the probes.
    pub(crate) fn probes(&self) -> Vec<Instant> {
        self.log.lock().expect("log").probes.clone()
    }

    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, conn: usize, behaviour: Behaviour, log: Arc<Mutex<Log>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut index = 0;
    loop {
        let Some((head, body)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        if head.starts_with("GET /healthz ") {
            log.lock().expect("log").probes.push(Instant::now());
            let resp = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 18\r\n\r\n{\"status\":\"pass\"}\n";
            if stream.write_all(resp).await.is_err() {
                return;
            }
            continue;
        }
        let action = behaviour(index, &head);
        log.lock()
            .expect("log")
            .requests
            .push(Seen { conn, head, body });
        index += 1;
        match action {
            Action::Reply(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Action::ReplyThenReset(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.flush().await;
                let _ = stream.set_zero_linger();
                return;
            }
            Action::Close => return,
        }
    }
}

/// Reads one request (head and body). None at EOF or on a framing the host cannot follow.
pub(crate) async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, Vec<u8>)> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("\r\ntransfer-encoding: chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(stream, buf).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                while find(buf, b"\r\n").is_none() {
                    fill(stream, buf).await?;
                }
                let i = find(buf, b"\r\n")?;
                buf.drain(..i + 2);
                break;
            }
            while buf.len() < size + 2 {
                fill(stream, buf).await?;
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(len) = lower
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while buf.len() < len {
            fill(stream, buf).await?;
        }
        body = buf.drain(..len).collect();
    }
    Some((head, body))
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
