//! A request-head guard below hyper: refuses a request that carries both `Transfer-Encoding`
//! and `Content-Length` (RFC 9112 section 6.3, request smuggling), which hyper accepts and
//! normalises by dropping the `Content-Length` before the router can see it.
//!
//! The guard follows the client's byte stream on HTTP/1.x connections: it finds each request
//! head, reads its framing headers, and follows the body's framing (a `Content-Length`, or
//! chunk sizes and trailers) to the next head, so it checks every request on a keep-alive
//! connection. It holds back only the line it is reading, and decides before hyper can see
//! the blank line that completes a head. A head with both headers never reaches hyper: when
//! it is the connection's first request, a raw 400 (the error body of docs/contracts.md, `Connection:
//! close`) is written; a later one on a keep-alive connection ends the connection after the
//! earlier responses (hyper may still be writing one, so nothing is written raw). Anything
//! the guard does not follow (HTTP/2, `CONNECT`, `Upgrade`, an unreadable length or chunk
//! size, which hyper refuses anyway, or a line longer than hyper's buffer) switches it to
//! pass-through for the rest of the connection.

use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ProxyError;

/// Longest line the guard holds back; beyond it (hyper refuses such heads) it steps aside.
const MAX_LINE: usize = 512 * 1024;

/// The raw answer to a head with both framing headers.
static REJECT: LazyLock<Vec<u8>> = LazyLock::new(|| {
    // The answer `ProxyError::BadFraming` gives above hyper, written here as raw bytes.
    let resp = ProxyError::BadFraming {
        reason: crate::proxy::framing::TE_WITH_CL,
    }
    .response(None, None, Duration::ZERO);
    let body = resp.body();
    let mut raw = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
});

/// Where the guard is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head (request line, then header lines, up to the blank line).
    Head,
    /// A body of known length: this many bytes left.
    Length(u64),
    /// A chunk-size line.
    ChunkSize,
    /// Chunk data: this many bytes left.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines after the last chunk, up to the blank line.
    Trailers,
    /// Not followed any more: every byte goes through.
    PassThrough,
    /// A head with both framing headers: nothing more goes through.
    Rejected,
}

/// What one request head said about framing.
#[derive(Debug, Default)]
struct HeadFacts {
    request_line: bool,
    transfer_encoding: u32,
    chunked: bool,
    content_length: Option<u64>,
    content_length_count: u32,
    /// Unreadable, or two different values.
    content_length_bad: bool,
    opaque: bool,
}

/// An IO that refuses request heads with both `Transfer-Encoding` and `Content-Length`.
#[derive(Debug)]
pub(crate) struct HeadGuard<T> {
    inner: T,
    state: State,
    head: HeadFacts,
    /// Bytes read from `inner` not yet handed on; `pending[..safe]` may be handed on.
    pending: Vec<u8>,
    safe: usize,
    /// Complete request heads handed on so far.
    requests: u64,
    /// Bytes of `REJECT` written (when it is to be written at all).
    reject_written: Option<usize>,
    eof: bool,
}

impl<T> HeadGuard<T> {
    /// Wraps a freshly accepted client connection.
    pub(crate) fn new(inner: T) -> Self {
        HeadGuard {
            inner,
            state: State::Head,
            head: HeadFacts::default(),
            pending: Vec::new(),
            safe: 0,
            requests: 0,
            reject_written: None,
            eof: false,
        }
    }

    /// Follows the framing over `bytes`, which come right after what was handed on so far:
    /// how many of them may be handed on now. The rest is an unfinished line, or a refused
    /// head and whatever follows it.
    fn advance(&mut self, bytes: &[u8]) -> usize {
        let mut safe = 0;
        loop {
            let rest = bytes.len() - safe;
            match self.state {
                State::PassThrough => return bytes.len(),
                State::Rejected => return safe,
                State::Length(n) | State::ChunkData(n) => {
                    if rest == 0 {
                        return safe;
                    }
                    let take = n.min(rest as u64);
                    safe += take as usize;
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Head,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::Head | State::ChunkSize | State::ChunkEnd | State::Trailers => {
                    let Some(nl) = bytes[safe..].iter().position(|&b| b == b'\n') else {
                        if rest > MAX_LINE {
                            self.state = State::PassThrough;
                            continue;
                        }
                        return safe;
                    };
                    let mut line = &bytes[safe..safe + nl];
                    if let Some(stripped) = line.strip_suffix(b"\r") {
                        line = stripped;
                    }
                    if !self.on_line(line) {
                        return safe;
                    }
                    safe += nl + 1;
                }
            }
        }
    }

    /// Adds `bytes` to the held-back line and advances over what is held.
    fn hold(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        // Taken out while it is read, so the line is not copied (`advance` never touches it).
        let pending = std::mem::take(&mut self.pending);
        self.safe = self.advance(&pending);
        self.pending = pending;
    }

    /// Handles one complete line; false when it must not be handed on (a rejected head).
    fn on_line(&mut self, line: &[u8]) -> bool {
        match self.state {
            State::Head => self.on_head_line(line),
            State::ChunkSize => {
                let size = line.split(|&b| b == b';').next().unwrap_or(b"");
                let size = std::str::from_utf8(size)
                    .ok()
                    .map(|s| s.trim_matches(|c| c == ' ' || c == '\t'))
                    .and_then(|s| u64::from_str_radix(s, 16).ok());
                self.state = match size {
                    Some(0) => State::Trailers,
                    Some(n) => State::ChunkData(n),
                    // hyper refuses it and closes the connection.
                    None => State::PassThrough,
                };
                true
            }
            State::ChunkEnd => {
                self.state = if line.is_empty() {
                    State::ChunkSize
                } else {
                    State::PassThrough
                };
                true
            }
            State::Trailers => {
                if line.is_empty() {
                    self.state = State::Head;
                }
                true
            }
            _ => true,
        }
    }

    fn on_head_line(&mut self, line: &[u8]) -> bool {
        let facts = &mut self.head;
        if !facts.request_line {
            if line.is_empty() {
                // Blank lines before a request line are skipped (RFC 9112 section 2.2).
                return true;
            }
            facts.request_line = true;
            if line.starts_with(b"PRI * HTTP/2") || line.starts_with(b"CONNECT ") {
                self.state = State::PassThrough;
            }
            return true;
        }
        if !line.is_empty() {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return true;
            };
            let name = &line[..colon];
            let value = std::str::from_utf8(&line[colon + 1..])
                .unwrap_or("\u{0}")
                .trim_matches(|c| c == ' ' || c == '\t');
            if name.eq_ignore_ascii_case(b"transfer-encoding") {
                facts.transfer_encoding += 1;
                facts.chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case(b"content-length") {
                facts.content_length_count += 1;
                match value.parse::<u64>() {
                    // Repeated with the same value is one length; differing values are refused.
                    Ok(n)
                        if value.bytes().all(|b| b.is_ascii_digit())
                            && facts.content_length.is_none_or(|m| m == n) =>
                    {
                        facts.content_length = Some(n);
                    }
                    _ => facts.content_length_bad = true,
                }
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                facts.opaque = true;
            }
            return true;
        }
        // The blank line: the head is complete.
        let facts = std::mem::take(&mut self.head);
        if facts.transfer_encoding > 0 && facts.content_length_count > 0 {
            self.state = State::Rejected;
            self.reject_written = (self.requests == 0).then_some(0);
            return false;
        }
        self.requests += 1;
        self.state = if facts.opaque || facts.content_length_bad {
            // Framing the router refuses (and closes) or a protocol switch: step aside.
            State::PassThrough
        } else if facts.transfer_encoding > 0 {
            if facts.transfer_encoding == 1 && facts.chunked {
                State::ChunkSize
            } else {
                State::PassThrough
            }
        } else {
            match facts.content_length {
                Some(n) if n > 0 => State::Length(n),
                _ => State::Head,
            }
        };
        true
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> HeadGuard<T> {
    /// Writes the rest of the raw 400, if there is one to write.
    fn poll_reject(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(done) = self.reject_written {
            if done >= REJECT.len() {
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &REJECT[done..]) {
                Poll::Ready(Ok(n)) if n > 0 => self.reject_written = Some(done + n),
                // The client is gone or will not read: nothing more to say.
                Poll::Ready(_) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        self.reject_written = None;
        Poll::Ready(())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.safe > 0 {
                let n = this.safe.min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.drain(..n);
                this.safe -= n;
                return Poll::Ready(Ok(()));
            }
            if this.state == State::Rejected {
                // The refused head stays unfinished for hyper; the connection ends here.
                if this.poll_reject(cx).is_pending() {
                    return Poll::Pending;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // An unfinished line at EOF: hand it on (hyper reports the incomplete message).
                this.state = State::PassThrough;
                this.safe = this.pending.len();
                if this.safe == 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // Read into hyper's own buffer: what can be handed on at once (a whole head, body
            // bytes) stays where it is, uncopied.
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let got = &buf.filled()[before..];
            if got.is_empty() {
                this.eof = true;
                continue;
            }
            if !this.pending.is_empty() {
                // An unfinished line is held: the new bytes join it.
                this.hold(got);
                buf.set_filled(before);
                continue;
            }
            let n = this.advance(got);
            if n < got.len() {
                this.pending.extend_from_slice(&got[n..]);
                buf.set_filled(before + n);
                if n == 0 {
                    // Nothing to hand on yet (an empty read would look like EOF to hyper).
                    continue;
                }
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_head_with_both_framing_headers_never_reaches_hyper_and_gets_a_raw_400() {
        let (client, server) = tokio::io::duplex(4096);
        let mut guarded = HeadGuard::new(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        guarded.read_to_end(&mut seen).await.unwrap();
        assert!(
            !seen.ends_with(b"\r\n\r\n"),
            "the head was never completed for hyper"
        );
        drop(guarded);
        let mut answer = String::new();
        client_read.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }

    /// Feeds `input` in pieces of `step` bytes; returns what the guard hands on and what it
    /// wrote back to the client.
    async fn run(input: &[u8], step: usize) -> (Vec<u8>, Vec<u8>) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let input = input.to_vec();
        let writer = tokio::spawn(async move {
            for piece in input.chunks(step.max(1)) {
                client_write.write_all(piece).await.expect("write");
            }
            client_write.shutdown().await.expect("shutdown");
            client_write
        });
        let mut guard = HeadGuard::new(server);
        let mut seen = Vec::new();
        guard.read_to_end(&mut seen).await.expect("read");
        drop(guard);
        let _keep = writer.await.expect("writer");
        let mut answer = Vec::new();
        client_read.read_to_end(&mut answer).await.expect("answer");
        (seen, answer)
    }

    const TE_CL: &[u8] =
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n";

    #[tokio::test]
    async fn honest_keep_alive_streams_pass_byte_for_byte() {
        // The bodies hold lines that would be refused as a head: the guard must follow the
        // framing to pass them.
        let stream: &[u8] = b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 52\r\n\r\nX\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n\
POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
34;ext=1\r\nX\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n\r\n0\r\nTrailer-A: 1\r\n\r\n\
GET /d HTTP/1.1\nHost: x\n\n";
        for step in [1, 3, 7, 64, 4096] {
            let (seen, answer) = run(stream, step).await;
            assert_eq!(seen, stream, "step {step}");
            assert!(answer.is_empty());
        }
    }

    #[tokio::test]
    async fn a_first_head_with_both_headers_gets_a_raw_400_and_never_completes() {
        for step in [1, 5, 4096] {
            let (seen, answer) = run(TE_CL, step).await;
            let head_end = TE_CL
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("head");
            assert_eq!(seen, &TE_CL[..head_end + 2], "step {step}");
            let answer = String::from_utf8(answer).expect("utf8");
            assert!(
                answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{answer}"
            );
            let body = answer.split_once("\r\n\r\n").expect("body").1;
            assert_eq!(body.len(), 97, "content-length matches the body");
            let json: serde_json::Value = serde_json::from_str(body).expect("json");
            assert_eq!(
                json["error"],
                "bad request framing: both Transfer-Encoding and Content-Length"
            );
        }
        // Both orders, any case.
        let other = b"POST /a HTTP/1.1\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\nHost: x\r\n\r\n";
        let (seen, answer) = run(other, 4096).await;
        assert!(!seen.ends_with(b"\r\n\r\n"));
        assert!(answer.starts_with(b"HTTP/1.1 400"));
    }

    #[tokio::test]
    async fn long_bodies_are_followed_to_the_next_head() {
        let body = "x".repeat(100_000);
        let mut stream = format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        stream.extend_from_slice(
            format!(
                "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let honest = stream.clone();
        stream.extend_from_slice(TE_CL);
        for step in [1000, 8192, 70_000] {
            let (seen, answer) = run(&honest, step).await;
            assert_eq!(seen, honest, "step {step}");
            assert!(answer.is_empty());
            let (seen, _) = run(&stream, step).await;
            assert!(seen.starts_with(&honest), "step {step}");
            // Everything but the refused head's blank line and body (7 bytes) went through.
            assert_eq!(seen.len(), stream.len() - 7, "step {step}");
        }
        // The same length twice is one length: the guard follows it to the next head.
        let twice = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab";
        let mut then = twice.to_vec();
        then.extend_from_slice(TE_CL);
        let (seen, _) = run(&then, 4096).await;
        assert_eq!(seen.len(), then.len() - 7, "not followed past the body");
    }

    #[tokio::test]
    async fn a_later_head_with_both_headers_ends_the_connection_without_a_raw_answer() {
        let first = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
        let mut stream = first.to_vec();
        stream.extend_from_slice(TE_CL);
        let (seen, answer) = run(&stream, 4096).await;
        assert!(seen.starts_with(first));
        assert!(
            !seen.ends_with(b"\r\n\r\n"),
            "the second head never completes"
        );
        assert!(seen.len() < stream.len());
        assert!(answer.is_empty(), "hyper may still be answering the first");
    }

    #[tokio::test]
    async fn what_it_does_not_follow_passes_through() {
        // HTTP/2 prior knowledge, then anything.
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(run(h2, 4096).await.0, h2);
        // An unreadable chunk size: hyper refuses it; the guard steps aside.
        let bad = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(run(bad, 2).await.0, bad);
        // An unfinished line at EOF is handed on.
        let cut = b"GET /a HTTP/1.1\r\nHost: x";
        assert_eq!(run(cut, 4096).await.0, cut);
    }
}
