//! How the router looks up the hosts given by name (`[[hosts]].addr = "name:port"`): the
//! [`Resolve`] trait, and [`SystemResolver`], the system's resolver, used unless an embedder
//! or a test passes another to [`Router::start_with_resolver`](crate::Router::start_with_resolver).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

/// What a lookup gives: the name's addresses (with the port), or why it failed.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Looks up a host name. The router calls it at start, then every
/// `upstream.resolve_interval`, from a background task (never on the request path), with
/// each lookup bounded by a timeout; an error or an empty list is a failed lookup, and the
/// host keeps its last good address.
///
/// ```
/// use std::net::SocketAddr;
/// use ringward::{Resolve, ResolveFuture};
///
/// /// Every name is at one fixed address.
/// struct Fixed(SocketAddr);
///
/// impl Resolve for Fixed {
///     fn resolve(&self, _name: &str, _port: u16) -> ResolveFuture {
///         let addr = self.0;
///         Box::pin(async move { Ok(vec![addr]) })
///     }
/// }
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `name` (a DNS name, never an IP address) at `port`.
    fn resolve(&self, name: &str, port: u16) -> ResolveFuture;
}

/// The system's resolver (`getaddrinfo`, so `/etc/hosts` and `nsswitch.conf` apply), run on
/// tokio's blocking pool by `tokio::net::lookup_host`, never on a runtime thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: &str, port: u16) -> ResolveFuture {
        let name = name.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), port)).await?;
            Ok(addrs.collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_system_resolver_finds_localhost_and_fails_for_invalid_names() {
        let addrs = SystemResolver
            .resolve("localhost", 9001)
            .await
            .expect("localhost resolves");
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 9001),
            "{addrs:?}"
        );
        assert!(!addrs.is_empty());
        // `.invalid` never resolves (RFC 6761).
        let failed = SystemResolver.resolve("worker-9.invalid", 9001).await;
        assert!(failed.is_err() || failed.is_ok_and(|a| a.is_empty()));
    }
}
