//! A watch: the gateway's streamed answer to `POST /v3/watch`, one JSON message per line,
//! read as batches of events.

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::Error;
use crate::types::{Event, EventKind, WatchMessage, int};

const PATH: &str = "/v3/watch";

/// What one watch message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBatch {
    /// The store's revision as of this message.
    pub revision: i64,
    /// The changes, in revision order (none for a progress notification or the created
    /// confirmation).
    pub events: Vec<Event>,
    /// Set when etcd cancelled the watch because its start revision was compacted away:
    /// read the prefix again and watch from there.
    pub compacted: Option<i64>,
}

/// An open watch. Dropping it closes the stream.
#[derive(Debug)]
pub struct Watch {
    body: Incoming,
    buf: BytesMut,
}

impl Watch {
    pub(crate) fn new(body: Incoming) -> Watch {
        Watch {
            body,
            buf: BytesMut::new(),
        }
    }

    /// The next message, or `None` when etcd closed the stream.
    ///
    /// # Errors
    /// The connection broke (etcd went away), or a message cannot be read.
    pub async fn next(&mut self) -> Result<Option<WatchBatch>, Error> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(end + 1);
                let line = &line[..end];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return parse(line).map(Some);
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(Error::Unreachable {
                        endpoints: "watch".into(),
                        last: e.to_string(),
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
            }
        }
    }
}

fn parse(line: &[u8]) -> Result<WatchBatch, Error> {
    let protocol = |message: String| Error::Protocol {
        path: PATH,
        message,
    };
    let msg: WatchMessage = serde_json::from_slice(line)
        .map_err(|e| protocol(format!("{e}: {}", String::from_utf8_lossy(line))))?;
    if let Some(error) = msg.error {
        return Err(protocol(error.to_string()));
    }
    let result = msg
        .result
        .ok_or_else(|| protocol("a message without a result".into()))?;
    let compact = int(&result.compact_revision);
    if result.canceled && compact == 0 {
        return Err(protocol(format!(
            "watch cancelled: {}",
            result.cancel_reason.unwrap_or_default()
        )));
    }
    let mut events = Vec::with_capacity(result.events.len());
    for raw in result.events {
        let kind = match raw.kind.as_deref() {
            None | Some("PUT") => EventKind::Put,
            Some("DELETE") => EventKind::Delete,
            Some(other) => return Err(protocol(format!("unknown event type {other}"))),
        };
        let kv = raw
            .kv
            .ok_or_else(|| protocol("an event without a key".into()))?
            .decode()
            .map_err(protocol)?;
        events.push(Event {
            kind,
            key: kv.key,
            value: kv.value,
            mod_revision: kv.mod_revision,
        });
    }
    Ok(WatchBatch {
        revision: int(&result.header.and_then(|h| h.revision)),
        events,
        compacted: (compact > 0).then_some(compact),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_message_reads_as_a_batch_of_puts_and_deletes() {
        let line = br#"{"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"L2EvYg==","value":"eA==","mod_revision":"6"}},{"type":"DELETE","kv":{"key":"L2EvYw==","mod_revision":"7"}}]}}"#;
        let batch = parse(line).expect("parse");
        assert_eq!(batch.revision, 7);
        assert_eq!(batch.compacted, None);
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[0].kind, EventKind::Put);
        assert_eq!(batch.events[0].key, "/a/b");
        assert_eq!(batch.events[0].value, b"x".to_vec());
        assert_eq!(batch.events[1].kind, EventKind::Delete);
        assert_eq!(batch.events[1].key, "/a/c");
    }

    #[test]
    fn a_compacted_start_is_reported_not_an_error() {
        let line =
            br#"{"result":{"header":{"revision":"90"},"canceled":true,"compact_revision":"50"}}"#;
        assert_eq!(parse(line).expect("parse").compacted, Some(50));
        let cancelled = br#"{"result":{"canceled":true,"cancel_reason":"no reason"}}"#;
        assert!(parse(cancelled).is_err());
    }
}
