//! Where a request's routing key (its Val's key) comes from.

use http::HeaderName;
use http::request::Parts;

/// Finds a request's routing key in its head. The key is borrowed from the request: nothing
/// is allocated per request.
///
/// Implemented by [`ValKey`] (headers and path segments, tried in order) and by
/// [`key_fn`] for a closure.
pub trait ExtractKey {
    /// The key, or `None` when the request has none.
    fn extract<'a>(&self, head: &'a Parts) -> Option<&'a [u8]>;
}

/// One place a key may be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A request header's value (the first, if repeated).
    Header(HeaderName),
    /// A segment of the URI path, counted from 0: in `/v/alice-hello/run`, segment 0 is `v`
    /// and segment 1 is `alice-hello`.
    PathSegment(usize),
}

impl KeySource {
    fn extract<'a>(&self, head: &'a Parts) -> Option<&'a [u8]> {
        let key = match self {
            KeySource::Header(name) => head.headers.get(name)?.as_bytes(),
            KeySource::PathSegment(i) => head
                .uri
                .path()
                .strip_prefix('/')?
                .split('/')
                .nth(*i)?
                .as_bytes(),
        };
        (!key.is_empty()).then_some(key)
    }
}

/// Key sources tried in order: the first that gives a non-empty value is the key.
///
/// ```
/// use ringward_embed::{ExtractKey, ValKey};
///
/// let key = ValKey::header("x-val").or_path_segment(0);
/// let (head, ()) = http::Request::get("/alice-hello/run").body(()).unwrap().into_parts();
/// assert_eq!(key.extract(&head), Some(&b"alice-hello"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValKey {
    sources: Vec<KeySource>,
}

impl ValKey {
    /// The key is this header's value.
    ///
    /// # Panics
    /// If `name` is not a valid header name.
    pub fn header(name: &str) -> ValKey {
        ValKey {
            sources: Vec::new(),
        }
        .or_header(name)
    }

    /// The key is this path segment (counted from 0).
    pub fn path_segment(index: usize) -> ValKey {
        ValKey {
            sources: vec![KeySource::PathSegment(index)],
        }
    }

    /// Else this header's value.
    ///
    /// # Panics
    /// If `name` is not a valid header name.
    #[must_use]
    pub fn or_header(mut self, name: &str) -> ValKey {
        let name = HeaderName::try_from(name).expect("a valid header name");
        self.sources.push(KeySource::Header(name));
        self
    }

    /// Else this path segment (counted from 0).
    #[must_use]
    pub fn or_path_segment(mut self, index: usize) -> ValKey {
        self.sources.push(KeySource::PathSegment(index));
        self
    }

    /// The sources, in the order they are tried.
    pub fn sources(&self) -> &[KeySource] {
        &self.sources
    }
}

impl From<Vec<KeySource>> for ValKey {
    fn from(sources: Vec<KeySource>) -> ValKey {
        ValKey { sources }
    }
}

impl ExtractKey for ValKey {
    fn extract<'a>(&self, head: &'a Parts) -> Option<&'a [u8]> {
        self.sources.iter().find_map(|s| s.extract(head))
    }
}

/// A key extractor made of a closure; see [`key_fn`].
#[derive(Debug, Clone, Copy)]
pub struct KeyFn<F>(F);

/// A key extractor from a closure over the request head.
///
/// ```
/// use ringward_embed::{ExtractKey, key_fn};
///
/// // The key is the query string's `val=` parameter.
/// let key = key_fn(|head| {
///     let query = head.uri.query()?;
///     query.split('&').find_map(|p| p.strip_prefix("val=")).map(str::as_bytes)
/// });
/// let (head, ()) = http::Request::get("/run?val=alice-hello").body(()).unwrap().into_parts();
/// assert_eq!(key.extract(&head), Some(&b"alice-hello"[..]));
/// ```
pub fn key_fn<F>(f: F) -> KeyFn<F>
where
    F: for<'a> Fn(&'a Parts) -> Option<&'a [u8]>,
{
    KeyFn(f)
}

impl<F> ExtractKey for KeyFn<F>
where
    F: for<'a> Fn(&'a Parts) -> Option<&'a [u8]>,
{
    fn extract<'a>(&self, head: &'a Parts) -> Option<&'a [u8]> {
        (self.0)(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, val: Option<&str>) -> Parts {
        let mut req = http::Request::get(uri);
        if let Some(val) = val {
            req = req.header("x-val", val);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_header_comes_first_then_the_path() {
        let key = ValKey::header("x-val").or_path_segment(0);
        assert_eq!(
            key.extract(&head("/bob/run", Some("alice"))),
            Some(&b"alice"[..])
        );
        assert_eq!(key.extract(&head("/bob/run", None)), Some(&b"bob"[..]));
        assert_eq!(
            key.extract(&head("/bob/run", Some(""))),
            Some(&b"bob"[..]),
            "an empty header is no key"
        );
        assert_eq!(
            key.extract(&head("/", None)),
            None,
            "an empty segment is no key"
        );
        assert_eq!(key.sources().len(), 2);
    }

    #[test]
    fn path_segments_count_from_zero_after_the_leading_slash() {
        let uri = "http://example.com/v/alice-hello/run?x=1";
        assert_eq!(
            ValKey::path_segment(1).extract(&head(uri, None)),
            Some(&b"alice-hello"[..])
        );
        assert_eq!(
            ValKey::path_segment(0).extract(&head(uri, None)),
            Some(&b"v"[..])
        );
        assert_eq!(
            ValKey::path_segment(2).extract(&head(uri, None)),
            Some(&b"run"[..]),
            "the query is not part of the path"
        );
        assert_eq!(ValKey::path_segment(3).extract(&head(uri, None)), None);
        assert_eq!(
            ValKey::path_segment(0)
                .or_header("x-val")
                .extract(&head("/", Some("v"))),
            Some(&b"v"[..])
        );
        assert_eq!(
            ValKey::from(vec![KeySource::PathSegment(1)]).extract(&head("/a//c", None)),
            None,
            "an empty segment is no key"
        );
    }

    #[test]
    fn a_closure_is_an_extractor() {
        let key = key_fn(|head| head.headers.get("x-tenant").map(|v| v.as_bytes()));
        let (head, ()) = http::Request::get("/")
            .header("x-tenant", "t1")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(key.extract(&head), Some(&b"t1"[..]));
    }
}
