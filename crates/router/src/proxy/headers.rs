//! Header rules for a proxy: hop-by-hop headers (RFC 9110 section 7.6.1, including every
//! name listed in `Connection`) are removed in both directions; `X-Forwarded-For` and
//! `Forwarded` (RFC 7239) are appended on the way up.
//!
//! On the request path these run once per request: the forwarding values are formatted on
//! the stack and copied out once each, and the upstream map is built in one pass at its
//! final size, so a request costs one map and two header values (no regrowth, no `format!`).

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;

use crate::proxy::request_id::X_REQUEST_ID;

/// Headers that describe one connection, never the message (RFC 9110 7.6.1, plus the
/// legacy `Proxy-Connection` and the proxy authentication pair of RFC 2616 13.5.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// True for a fixed hop-by-hop header name.
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// True when a `Connection` header of `headers` lists `name` (hop-by-hop for this message).
pub(crate) fn listed_in_connection(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name))
}

/// Removes every hop-by-hop header, including those the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names listed in Connection are hop-by-hop for this message only; collect them first
    // because removing while iterating the Connection values would alias the map. Tokens
    // that are fixed hop-by-hop names (`keep-alive`, `close`, ...) need no name built.
    let mut listed: [Option<HeaderName>; 8] = Default::default();
    let mut extra: Vec<HeaderName> = Vec::new();
    let mut n = 0;
    for value in headers.get_all(header::CONNECTION) {
        let Ok(text) = value.to_str() else { continue };
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case("close")
                || HOP_BY_HOP.iter().any(|h| token.eq_ignore_ascii_case(h))
            {
                continue;
            }
            if let Ok(name) = HeaderName::try_from(token) {
                if n < listed.len() {
                    listed[n] = Some(name);
                    n += 1;
                } else {
                    extra.push(name);
                }
            }
        }
    }
    for name in listed.into_iter().flatten().chain(extra) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// What the router adds to a request on its way up, computed once per request (every
/// attempt reuses the values: a clone of a `HeaderValue` is a reference count).
#[derive(Debug, Clone, Default)]
pub(crate) struct Forwarding {
    host: Option<HeaderValue>,
    x_forwarded_for: Option<HeaderValue>,
    forwarded: Option<HeaderValue>,
    x_forwarded_proto: Option<HeaderValue>,
}

/// How the client reached the router: the `proto` of `Forwarded` and `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// The plaintext listener.
    Http,
    /// The TLS listener.
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl Forwarding {
    /// The values for a request with headers `src` (as the client sent them), target
    /// authority `authority` (HTTP/2's `:authority`, used when there is no Host), from client
    /// address `client` over `scheme`.
    pub(crate) fn new(
        src: &HeaderMap,
        authority: Option<&Authority>,
        client: SocketAddr,
        scheme: Scheme,
    ) -> Self {
        let host = src
            .get(header::HOST)
            .cloned()
            .or_else(|| authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
        // A previous hop's value counts only if it is not itself hop-by-hop here.
        let previous = |name: &HeaderName| {
            src.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && !listed_in_connection(src, name.as_str()))
        };
        let ip = client.ip();
        let x_forwarded_for = match previous(&X_FORWARDED_FOR) {
            Some(prev) => value(format_args!("{prev}, {ip}")),
            None => value(format_args!("{ip}")),
        };
        let element = Element {
            ip,
            scheme,
            host: host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"')),
        };
        let forwarded = match previous(&header::FORWARDED) {
            Some(prev) => value(format_args!("{prev}, {element}")),
            None => value(format_args!("{element}")),
        };
        Forwarding {
            host,
            x_forwarded_for,
            forwarded,
            // This hop's scheme, not a client's claim (as nginx's `$scheme`): a host that
            // redirects to https or sets secure cookies must not be told https by a client.
            x_forwarded_proto: Some(HeaderValue::from_static(scheme.as_str())),
        }
    }
}

/// The forwarding values of one client connection. Requests on a connection usually carry
/// the same Host and no earlier hop's `X-Forwarded-For` or `Forwarded`: their values are then
/// formatted once per connection and every request takes reference-counted clones.
#[derive(Debug)]
pub(crate) struct ForwardingCache {
    client: SocketAddr,
    scheme: Scheme,
    last: ArcSwapOption<Forwarding>,
}

impl ForwardingCache {
    /// The client's address.
    pub(crate) fn client(&self) -> SocketAddr {
        self.client
    }

    /// An empty cache for the connection from `client` over `scheme`.
    pub(crate) fn new(client: SocketAddr, scheme: Scheme) -> Self {
        ForwardingCache {
            client,
            scheme,
            last: ArcSwapOption::empty(),
        }
    }

    /// [`Forwarding::new`] for this connection, reusing the last values when they apply.
    pub(crate) fn get(&self, src: &HeaderMap, authority: Option<&Authority>) -> Forwarding {
        let host = src.get(header::HOST);
        let plain = host.is_some()
            && !src.contains_key(&X_FORWARDED_FOR)
            && !src.contains_key(header::FORWARDED);
        if !plain {
            return Forwarding::new(src, authority, self.client, self.scheme);
        }
        if let Some(last) = &*self.last.load() {
            if last.host.as_ref() == host {
                return Forwarding::clone(last);
            }
        }
        let mut fresh = Forwarding::new(src, authority, self.client, self.scheme);
        // The cache keeps its own copy of the Host value: holding a slice of the request
        // would pin the connection's read buffer.
        fresh.host = host.and_then(|h| HeaderValue::from_bytes(h.as_bytes()).ok());
        self.last.store(Some(Arc::new(fresh.clone())));
        fresh
    }
}

/// The headers to send upstream: `src` minus every hop-by-hop header, with `X-Forwarded-For`,
/// `Forwarded`, `X-Forwarded-Proto` and `Host` from `forwarding` and the request's
/// `X-Request-Id`. One pass into a
/// map sized for the result.
pub(crate) fn upstream_headers(
    src: &HeaderMap,
    forwarding: &Forwarding,
    request_id: &HeaderValue,
) -> HeaderMap {
    let has_connection = src.contains_key(header::CONNECTION);
    let mut out = HeaderMap::with_capacity(src.keys_len() + 5);
    for (name, v) in src {
        if is_hop_by_hop(name)
            || (has_connection && listed_in_connection(src, name.as_str()))
            || *name == X_FORWARDED_FOR
            || name == header::FORWARDED
            || *name == X_FORWARDED_PROTO
            || *name == X_REQUEST_ID
        {
            continue;
        }
        out.append(name.clone(), v.clone());
    }
    for (name, v) in [
        (&header::HOST, &forwarding.host),
        (&X_FORWARDED_FOR, &forwarding.x_forwarded_for),
        (&header::FORWARDED, &forwarding.forwarded),
        (&X_FORWARDED_PROTO, &forwarding.x_forwarded_proto),
    ] {
        if let Some(v) = v {
            out.insert(name.clone(), v.clone());
        }
    }
    // The client's own ID if it was sane, the router's otherwise: the host logs the same one.
    out.insert(X_REQUEST_ID.clone(), request_id.clone());
    out
}

/// One `Forwarded` element: `for=NODE;proto=http|https[;host="HOST"]`.
struct Element<'a> {
    ip: IpAddr,
    scheme: Scheme,
    host: Option<&'a str>,
}

impl fmt::Display for Element<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(v4) => write!(f, "for={v4}")?,
            // RFC 7239 section 6: IPv6 nodes are bracketed and the value quoted.
            IpAddr::V6(v6) => write!(f, "for=\"[{v6}]\"")?,
        }
        write!(f, ";proto={}", self.scheme.as_str())?;
        if let Some(h) = self.host {
            write!(f, ";host=\"{h}\"")?;
        }
        Ok(())
    }
}

/// Formats a header value on the stack and copies it out once (one allocation); a value too
/// long for the stack buffer is formatted on the heap instead.
fn value(args: fmt::Arguments<'_>) -> Option<HeaderValue> {
    let mut buf = StackBuf {
        bytes: [0; 256],
        len: 0,
    };
    if buf.write_fmt(args).is_ok() {
        HeaderValue::from_bytes(&buf.bytes[..buf.len]).ok()
    } else {
        HeaderValue::try_from(fmt::format(args)).ok()
    }
}

/// A fixed buffer that refuses (rather than grows) when full.
struct StackBuf {
    bytes: [u8; 256],
    len: usize,
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `x-forwarded-for`
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

#[cfg(test)]
mod tests {
    use super::*;

    /// The upstream headers with a fixed request ID.
    fn up_headers(src: &HeaderMap, forwarding: &Forwarding) -> HeaderMap {
        upstream_headers(src, forwarding, &HeaderValue::from_static("req-1"))
    }

    #[test]
    fn strips_fixed_and_connection_listed_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Secret, close"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert("x-val", HeaderValue::from_static("alice"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let mut up = h.clone();
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-val", "content-type"]);

        // The one-pass upstream copy drops the same headers (and adds the request's ID).
        up = up_headers(&up, &Forwarding::default());
        let left: Vec<&str> = up.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-val", "content-type", "x-request-id"]);
    }

    #[test]
    fn appends_forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("host", HeaderValue::from_static("a.example.com"));
        let up = up_headers(
            &h,
            &Forwarding::new(&h, None, "127.0.0.2:5000".parse().unwrap(), Scheme::Http),
        );
        assert_eq!(up["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        assert_eq!(
            up["forwarded"],
            "for=127.0.0.2;proto=http;host=\"a.example.com\""
        );

        let h = HeaderMap::new();
        let up = up_headers(
            &h,
            &Forwarding::new(&h, None, "[::1]:5000".parse().unwrap(), Scheme::Http),
        );
        assert_eq!(up["x-forwarded-for"], "::1");
        assert_eq!(up["forwarded"], "for=\"[::1]\";proto=http");
        assert!(up.get("host").is_none());
    }

    #[test]
    fn the_tls_listener_says_https_and_a_client_cannot_claim_it() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a.example.com"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let client = "127.0.0.2:5000".parse().unwrap();
        let up = up_headers(&h, &Forwarding::new(&h, None, client, Scheme::Https));
        assert_eq!(up["x-forwarded-proto"], "https");
        assert_eq!(
            up["forwarded"],
            "for=127.0.0.2;proto=https;host=\"a.example.com\""
        );
        let up = up_headers(&h, &Forwarding::new(&h, None, client, Scheme::Http));
        assert_eq!(up["x-forwarded-proto"], "http");
        assert_eq!(up.get_all("x-forwarded-proto").iter().count(), 1);
    }

    #[test]
    fn upstream_headers_carry_forwarding_host_and_multiple_values() {
        let mut src = HeaderMap::new();
        src.insert("host", HeaderValue::from_static("a.example.com"));
        src.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        src.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        src.append("accept", HeaderValue::from_static("text/plain"));
        src.append("accept", HeaderValue::from_static("text/html"));
        let fwd = Forwarding::new(&src, None, "127.0.0.2:5000".parse().unwrap(), Scheme::Http);
        let up = up_headers(&src, &fwd);
        assert_eq!(up["host"], "a.example.com");
        assert_eq!(up["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        assert_eq!(
            up["forwarded"],
            "for=10.0.0.1, for=127.0.0.2;proto=http;host=\"a.example.com\""
        );
        let accept: Vec<_> = up.get_all("accept").iter().collect();
        assert_eq!(accept, ["text/plain", "text/html"]);
        assert_eq!(up.get_all("x-forwarded-for").iter().count(), 1);

        // HTTP/2: no Host header, the authority stands in; a Connection-listed
        // X-Forwarded-For is the previous hop's business and is not extended.
        let mut src = HeaderMap::new();
        src.insert("connection", HeaderValue::from_static("x-forwarded-for"));
        src.insert("x-forwarded-for", HeaderValue::from_static("10.9.9.9"));
        let authority: Authority = "b.example.com:8080".parse().unwrap();
        let fwd = Forwarding::new(
            &src,
            Some(&authority),
            "127.0.0.3:1".parse().unwrap(),
            Scheme::Http,
        );
        let up = up_headers(&src, &fwd);
        assert_eq!(up["host"], "b.example.com:8080");
        assert_eq!(up["x-forwarded-for"], "127.0.0.3");
        assert!(up.get("connection").is_none());
    }

    #[test]
    fn the_connection_cache_reuses_values_only_when_they_apply() {
        let cache = ForwardingCache::new("127.0.0.2:5000".parse().unwrap(), Scheme::Http);
        let mut a = HeaderMap::new();
        a.insert("host", HeaderValue::from_static("a.example.com"));
        let first = cache.get(&a, None);
        let again = cache.get(&a, None);
        assert_eq!(again.forwarded, first.forwarded);
        assert_eq!(
            again.forwarded.as_ref().map(|v| v.as_bytes().as_ptr()),
            first.forwarded.as_ref().map(|v| v.as_bytes().as_ptr()),
            "the same bytes, shared"
        );
        // Another Host: fresh values.
        let mut b = HeaderMap::new();
        b.insert("host", HeaderValue::from_static("b.example.com"));
        let up = up_headers(&b, &cache.get(&b, None));
        assert_eq!(up["host"], "b.example.com");
        assert_eq!(
            up["forwarded"],
            "for=127.0.0.2;proto=http;host=\"b.example.com\""
        );
        // An earlier hop's X-Forwarded-For is extended, never served from the cache.
        b.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let up = up_headers(&b, &cache.get(&b, None));
        assert_eq!(up["x-forwarded-for"], "10.0.0.1, 127.0.0.2");
        b.remove("x-forwarded-for");
        let up = up_headers(&b, &cache.get(&b, None));
        assert_eq!(up["x-forwarded-for"], "127.0.0.2");
    }

    #[test]
    fn long_values_fall_back_to_the_heap() {
        let long = "10.0.0.1, ".repeat(40);
        let mut src = HeaderMap::new();
        src.insert("x-forwarded-for", HeaderValue::from_str(&long).unwrap());
        let fwd = Forwarding::new(&src, None, "127.0.0.2:5000".parse().unwrap(), Scheme::Http);
        let up = up_headers(&src, &fwd);
        let got = up["x-forwarded-for"].to_str().unwrap();
        assert!(got.len() > 256, "{}", got.len());
        assert!(got.ends_with(", 127.0.0.2"), "{got}");
    }

    #[test]
    fn the_request_id_goes_upstream_once() {
        let mut src = HeaderMap::new();
        src.append(&X_REQUEST_ID, HeaderValue::from_static("client-sent"));
        src.append(&X_REQUEST_ID, HeaderValue::from_static("second"));
        let up = up_headers(&src, &Forwarding::default());
        let ids: Vec<_> = up.get_all(&X_REQUEST_ID).iter().collect();
        assert_eq!(ids, ["req-1"], "the request's chosen ID, and only it");
    }
}
