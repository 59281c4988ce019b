//! Val key extraction (docs/contracts.md: the command line and config): `header:NAME`, `host_label:DOMAIN`,
//! `path_segment:I`, `query:NAME`, tried in the configured order.
//!
//! Extraction borrows from the request: no allocation except when a host label must be
//! lower-cased (DNS names are case-insensitive, so `Alice.web.example.com` and
//! `alice.web.example.com` are the same Val).

use std::borrow::Cow;
use std::fmt;

use http::{HeaderMap, HeaderName, Request, Uri};

/// Where a Val key may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `header:NAME`: the header's value.
    Header(HeaderName),
    /// `host_label:DOMAIN`: the DNS label just left of DOMAIN in the Host (lower-cased).
    HostLabel(String),
    /// `path_segment:I`: the I-th path segment, counting from 0.
    PathSegment(usize),
    /// `query:NAME`: the query parameter's raw (not percent-decoded) value.
    Query(String),
}

impl KeySource {
    /// Parses `kind:argument`.
    ///
    /// # Errors
    /// A message saying what is wrong with `text`.
    pub fn parse(text: &str) -> Result<KeySource, String> {
        let Some((kind, arg)) = text.split_once(':') else {
            return Err(format!(
                "`{text}` is not a key source (write header:NAME, host_label:DOMAIN, path_segment:I or query:NAME)"
            ));
        };
        let arg = arg.trim();
        if arg.is_empty() {
            return Err(format!("`{text}`: {kind} needs an argument after ':'"));
        }
        match kind.trim() {
            "header" => HeaderName::try_from(arg)
                .map(KeySource::Header)
                .map_err(|_| format!("`{arg}` is not a valid header name")),
            "host_label" => {
                let domain = arg.trim_matches('.').to_ascii_lowercase();
                if domain.is_empty()
                    || domain.split('.').any(|l| {
                        l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
                {
                    Err(format!("`{arg}` is not a domain name"))
                } else {
                    Ok(KeySource::HostLabel(domain))
                }
            }
            "path_segment" => arg
                .parse::<usize>()
                .map(KeySource::PathSegment)
                .map_err(|_| format!("`{arg}` is not a segment index (0, 1, 2, ...)")),
            "query" => Ok(KeySource::Query(arg.to_owned())),
            other => Err(format!(
                "unknown key source `{other}` (use header, host_label, path_segment or query)"
            )),
        }
    }

    /// Extracts this source's key from a request; None when it gives nothing (or an empty value).
    pub fn extract<'r, B>(&self, req: &'r Request<B>) -> Option<Cow<'r, str>> {
        self.extract_from(req.uri(), req.headers())
    }

    /// [`KeySource::extract`] from a request's target and headers (the proxy splits the
    /// request first, so the key can borrow from its head for the whole exchange).
    pub fn extract_from<'r>(&self, uri: &'r Uri, headers: &'r HeaderMap) -> Option<Cow<'r, str>> {
        let value: Cow<'r, str> = match self {
            KeySource::Header(name) => Cow::Borrowed(headers.get(name)?.to_str().ok()?.trim()),
            KeySource::HostLabel(domain) => host_label(request_host(uri, headers)?, domain)?,
            KeySource::PathSegment(i) => Cow::Borrowed(path_segment(uri.path(), *i)?),
            KeySource::Query(name) => Cow::Borrowed(query_value(uri.query()?, name)?),
        };
        (!value.is_empty()).then_some(value)
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Header(h) => write!(f, "header:{h}"),
            KeySource::HostLabel(d) => write!(f, "host_label:{d}"),
            KeySource::PathSegment(i) => write!(f, "path_segment:{i}"),
            KeySource::Query(q) => write!(f, "query:{q}"),
        }
    }
}

/// Tries each source in order; the first non-empty key wins.
pub fn extract_key<'r, B>(sources: &[KeySource], req: &'r Request<B>) -> Option<Cow<'r, str>> {
    sources.iter().find_map(|s| s.extract(req))
}

/// [`extract_key`] from a request's target and headers.
pub(crate) fn extract_key_from<'r>(
    sources: &[KeySource],
    uri: &'r Uri,
    headers: &'r HeaderMap,
) -> Option<Cow<'r, str>> {
    sources.iter().find_map(|s| s.extract_from(uri, headers))
}

/// The request's host: the Host header (HTTP/1.1) or the URI authority (HTTP/2 `:authority`).
fn request_host<'r>(uri: &'r Uri, headers: &'r HeaderMap) -> Option<&'r str> {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// The label just left of `domain` in `host` (port ignored), lower-cased.
fn host_label<'h>(host: &'h str, domain: &str) -> Option<Cow<'h, str>> {
    // Strip a port; an IPv6 literal never matches a DNS domain anyway.
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() <= domain.len() + 1 {
        return None;
    }
    let split = host.len() - domain.len();
    if !host.is_char_boundary(split) || !host[split..].eq_ignore_ascii_case(domain) {
        return None;
    }
    let rest = host[..split].strip_suffix('.')?;
    let label = rest.rsplit('.').next()?;
    if label.is_empty() {
        return None;
    }
    if label.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(label.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(label))
    }
}

/// The `index`-th segment of `path` (segments count from 0; `/v/x/run` has `v`, `x`, `run`).
fn path_segment(path: &str, index: usize) -> Option<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').nth(index)
}

/// The raw value of the first `name=` parameter in `query` (also `?key=` of the admin API).
pub(crate) fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("valid request")
    }

    fn src(s: &str) -> KeySource {
        KeySource::parse(s).expect("valid source")
    }

    #[test]
    fn parses_every_kind_and_refuses_bad_ones() {
        assert_eq!(
            src("header:X-Val"),
            KeySource::Header(HeaderName::from_static("x-val"))
        );
        assert_eq!(
            src("host_label:Web.Example.com"),
            KeySource::HostLabel("web.example.com".into())
        );
        assert_eq!(src("path_segment:1"), KeySource::PathSegment(1));
        assert_eq!(src("query:val"), KeySource::Query("val".into()));
        assert!(
            KeySource::parse("cookie:x")
                .unwrap_err()
                .contains("unknown key source")
        );
        assert!(KeySource::parse("path_segment:-1").is_err());
        assert!(KeySource::parse("header:").is_err());
        assert!(KeySource::parse("header:bad header").is_err());
        assert!(KeySource::parse("x-val").is_err());
        assert!(KeySource::parse("host_label:bad_domain..com").is_err());
        assert_eq!(src("path_segment:3").to_string(), "path_segment:3");
    }

    #[test]
    fn header_source() {
        let r = req("/", &[("x-val", "alice")]);
        assert_eq!(src("header:x-val").extract(&r).as_deref(), Some("alice"));
        let empty = req("/", &[("x-val", "")]);
        assert_eq!(src("header:x-val").extract(&empty), None);
    }

    #[test]
    fn host_label_source_takes_the_label_left_of_the_domain() {
        let s = src("host_label:web.example.com");
        let r = req("/", &[("host", "alice-hello.web.example.com")]);
        assert_eq!(s.extract(&r).as_deref(), Some("alice-hello"));
        let r = req("/", &[("host", "Alice-Hello.WEB.example.com:8080")]);
        assert_eq!(s.extract(&r).as_deref(), Some("alice-hello"));
        let r = req("/", &[("host", "x.alice.web.example.com")]);
        assert_eq!(s.extract(&r).as_deref(), Some("alice"));
        for outside in [
            "web.example.com",
            "alice.other.com",
            "aliceweb.example.com",
            "example.com",
        ] {
            let r = req("/", &[("host", outside)]);
            assert_eq!(s.extract(&r), None, "{outside}");
        }
        // HTTP/2 carries the authority in the URI.
        let r = req("http://bob.web.example.com/x", &[]);
        assert_eq!(s.extract(&r).as_deref(), Some("bob"));
    }

    #[test]
    fn path_segment_counts_from_zero() {
        let r = req("/v/alice/run", &[]);
        assert_eq!(src("path_segment:0").extract(&r).as_deref(), Some("v"));
        assert_eq!(src("path_segment:1").extract(&r).as_deref(), Some("alice"));
        assert_eq!(src("path_segment:2").extract(&r).as_deref(), Some("run"));
        assert_eq!(src("path_segment:3").extract(&r), None);
        assert_eq!(src("path_segment:1").extract(&req("/v//run", &[])), None);
    }

    #[test]
    fn query_source() {
        let r = req("/x?a=1&val=bob&val=carol", &[]);
        assert_eq!(src("query:val").extract(&r).as_deref(), Some("bob"));
        assert_eq!(src("query:b").extract(&r), None);
        assert_eq!(src("query:a").extract(&req("/x?a=", &[])), None);
    }

    #[test]
    fn sources_are_tried_in_order() {
        let sources = [src("header:x-val"), src("path_segment:1")];
        let r = req("/v/from-path", &[("x-val", "from-header")]);
        assert_eq!(extract_key(&sources, &r).as_deref(), Some("from-header"));
        let r = req("/v/from-path", &[]);
        assert_eq!(extract_key(&sources, &r).as_deref(), Some("from-path"));
        assert_eq!(extract_key(&sources, &req("/", &[])), None);
        let (parts, ()) = req("/v/from-path", &[("x-val", "from-header")]).into_parts();
        let key = extract_key_from(&sources, &parts.uri, &parts.headers);
        assert!(
            matches!(key, Some(Cow::Borrowed("from-header"))),
            "borrowed"
        );
    }
}
