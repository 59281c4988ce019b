//! The client: a pooled HTTP/1.1 connection per endpoint, each call tried on the endpoints in
//! turn (starting with the one that answered last) until one answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::Error;
use crate::types::{
    KeepAliveMessage, LeaseGrantResponse, LeaseId, Range, RangeResponse, WriteResponse, b64, int,
    prefix_end,
};
use crate::watch::Watch;

/// Timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Time allowed to open a TCP connection to one endpoint.
    pub connect_timeout: Duration,
    /// Time allowed for one request's answer (not a watch, which is open-ended).
    pub request_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(3),
        }
    }
}

/// An etcd v3 client over the JSON gateway. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    /// `http://host:port`, without a trailing slash.
    endpoints: std::sync::Arc<[String]>,
    /// The endpoint that answered last: tried first next time.
    preferred: std::sync::Arc<AtomicUsize>,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    options: Options,
}

impl Client {
    /// A client for `endpoints` (`host:port` or `http://host:port`; etcd's client URLs).
    /// Connects lazily.
    ///
    /// # Errors
    /// An endpoint cannot be read, or none is given.
    pub fn new(endpoints: &[String], options: Options) -> Result<Client, Error> {
        if endpoints.is_empty() {
            return Err(Error::Endpoint(String::new()));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| parse_endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(options.connect_timeout));
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            endpoints: endpoints.into(),
            preferred: std::sync::Arc::default(),
            http,
            options,
        })
    }

    /// The keys starting with `prefix`, with the store's revision.
    ///
    /// # Errors
    /// etcd is unreachable or refuses.
    pub async fn range_prefix(&self, prefix: &str) -> Result<Range, Error> {
        const PATH: &str = "/v3/kv/range";
        let body = json!({"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix))});
        let resp: RangeResponse = self.call(PATH, &body).await?;
        let kvs = resp
            .kvs
            .into_iter()
            .map(|kv| kv.decode())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| Error::Protocol {
                path: PATH,
                message,
            })?;
        Ok(Range {
            revision: int(&resp.header.and_then(|h| h.revision)),
            kvs,
        })
    }

    /// Sets `key` to `value`, attached to `lease` if given; returns the new revision.
    ///
    /// # Errors
    /// etcd is unreachable or refuses (a lease that has expired, say).
    pub async fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<i64, Error> {
        let mut body = json!({"key": b64(key.as_bytes()), "value": b64(value)});
        if let Some(LeaseId(id)) = lease {
            body["lease"] = json!(id.to_string());
        }
        let resp: WriteResponse = self.call("/v3/kv/put", &body).await?;
        Ok(int(&resp.header.and_then(|h| h.revision)))
    }

    /// Deletes `key`; returns the new revision.
    ///
    /// # Errors
    /// etcd is unreachable or refuses.
    pub async fn delete(&self, key: &str) -> Result<i64, Error> {
        let body = json!({"key": b64(key.as_bytes())});
        let resp: WriteResponse = self.call("/v3/kv/deleterange", &body).await?;
        Ok(int(&resp.header.and_then(|h| h.revision)))
    }

    /// A new lease of `ttl` (whole seconds, at least 1).
    ///
    /// # Errors
    /// etcd is unreachable or refuses.
    pub async fn grant(&self, ttl: Duration) -> Result<LeaseId, Error> {
        const PATH: &str = "/v3/lease/grant";
        let body = json!({"TTL": ttl.as_secs().max(1).to_string()});
        let resp: LeaseGrantResponse = self.call(PATH, &body).await?;
        match (int(&resp.id), resp.error) {
            (id, None) if id != 0 => Ok(LeaseId(id)),
            (_, error) => Err(Error::Protocol {
                path: PATH,
                message: error.unwrap_or_else(|| "no lease ID".into()),
            }),
        }
    }

    /// Renews `lease` once; its remaining TTL, or `None` when it no longer exists (expired
    /// or revoked: its keys are gone).
    ///
    /// # Errors
    /// etcd is unreachable or refuses.
    pub async fn keep_alive(&self, lease: LeaseId) -> Result<Option<Duration>, Error> {
        let body = json!({"ID": lease.0.to_string()});
        let resp: KeepAliveMessage = self.call("/v3/lease/keepalive", &body).await?;
        let ttl = int(&resp.result.and_then(|r| r.ttl));
        Ok(u64::try_from(ttl)
            .ok()
            .filter(|t| *t > 0)
            .map(Duration::from_secs))
    }

    /// Revokes `lease`, deleting its keys at once.
    ///
    /// # Errors
    /// etcd is unreachable or refuses.
    pub async fn revoke(&self, lease: LeaseId) -> Result<(), Error> {
        let body = json!({"ID": lease.0.to_string()});
        let _: serde_json::Value = self.call("/v3/lease/revoke", &body).await?;
        Ok(())
    }

    /// Watches every key starting with `prefix` from `start_revision` on.
    ///
    /// # Errors
    /// etcd is unreachable or refuses to start the watch.
    pub async fn watch_prefix(&self, prefix: &str, start_revision: i64) -> Result<Watch, Error> {
        const PATH: &str = "/v3/watch";
        let body = json!({"create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
            // etcd then says now and then how far the watch has come, even when nothing
            // under the prefix changes.
            "progress_notify": true,
        }});
        let resp = self.send(PATH, &body).await?;
        Ok(Watch::new(resp.into_body()))
    }

    /// One unary call, its answer read as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &'static str,
        body: &serde_json::Value,
    ) -> Result<T, Error> {
        let resp = self.send(path, body).await?;
        let read = tokio::time::timeout(self.options.request_timeout, resp.into_body().collect());
        let bytes = match read.await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) => return Err(self.unreachable(e.to_string())),
            Err(_) => return Err(self.unreachable("timed out reading the answer".into())),
        };
        // A streaming endpoint (keepalive) answers one JSON object per line: the first is it.
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
        serde_json::from_slice(first).map_err(|e| Error::Protocol {
            path,
            message: format!("{e}: {}", String::from_utf8_lossy(first)),
        })
    }

    /// Sends `body` to `path` on the first endpoint that answers; the response when its
    /// status is 200.
    async fn send(
        &self,
        path: &'static str,
        body: &serde_json::Value,
    ) -> Result<http::Response<hyper::body::Incoming>, Error> {
        let payload = Bytes::from(body.to_string());
        let n = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let mut last = String::new();
        for i in (0..n).map(|k| (first + k) % n) {
            let uri = format!("{}{path}", self.endpoints[i]);
            let req = Request::post(uri)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(payload.clone()))
                .map_err(|e| Error::Endpoint(e.to_string()))?;
            match tokio::time::timeout(self.options.request_timeout, self.http.request(req)).await {
                Ok(Ok(resp)) if resp.status() == StatusCode::OK => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(resp);
                }
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let text = resp
                        .into_body()
                        .collect()
                        .await
                        .map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned())
                        .unwrap_or_default();
                    return Err(Error::Refused {
                        path,
                        status,
                        message: text.trim().to_owned(),
                    });
                }
                Ok(Err(e)) => last = format!("{}: {e}", self.endpoints[i]),
                Err(_) => last = format!("{}: timed out", self.endpoints[i]),
            }
        }
        Err(self.unreachable(last))
    }

    fn unreachable(&self, last: String) -> Error {
        Error::Unreachable {
            endpoints: self.endpoints.join(", "),
            last,
        }
    }
}

/// An endpoint as written in a config (`host:port` or `http://host:port`), as the base
/// (`http://host:port`) request paths go after.
///
/// # Errors
/// It is not one of those forms (https, a path, no port).
pub fn parse_endpoint(text: &str) -> Result<String, Error> {
    let trimmed = text.trim().trim_end_matches('/');
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|_| Error::Endpoint(text.to_owned()))?;
    match (uri.scheme_str(), uri.authority(), uri.path()) {
        (Some("http"), Some(a), "/" | "") if a.port_u16().is_some() => Ok(format!("http://{a}")),
        _ => Err(Error::Endpoint(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_host_port_or_http_urls() {
        for ok in [
            "127.0.0.1:2379",
            "http://127.0.0.1:2379",
            "http://etcd-1:2379/",
            "[::1]:2379",
        ] {
            assert!(parse_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "https://etcd:2379",
            "etcd:2379/v3",
            "",
            "ftp://a:1",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
