//! What an inner service's error says about the host it was sent to.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::io;

use health::GatewayFailure;

/// What a failed exchange with a host counts as for the host's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// A connection-level failure: refused, connect timeout, reset, broken HTTP.
    Gateway(GatewayFailure),
    /// The host did not answer in time.
    Timeout,
    /// Not the host's doing (e.g. the client's own request body broke off, or the request
    /// could not be sent as it was): nothing is recorded against the host.
    NotTheHost,
}

/// Classifies the inner service's error for [`Route`](crate::Route).
///
/// Implemented for hyper-util's legacy client error, `hyper::Error`, `std::io::Error`,
/// tower's `BoxError` (`Box<dyn Error + Send + Sync>`) and `Infallible`, all by
/// [`classify_error_chain`]. Implement it for your client's error type. (tower's own
/// `timeout::error::Elapsed` is not recognised, and counts as a reset: prefer the layer's
/// [`response_timeout`](crate::RouteLayer::response_timeout).)
pub trait ClassifyError {
    /// What this error says about the host.
    fn classify(&self) -> Failure;
}

/// Walks an error and its sources: a connect error (hyper-util's) is a refused connection,
/// or a connect timeout when an I/O `TimedOut` is among its sources; a hyper user error is
/// [`Failure::NotTheHost`]; a parse error is a protocol failure; hyper's or tokio's timeout,
/// or an I/O `TimedOut`, is a [`Failure::Timeout`]; an I/O `ConnectionRefused` is a refused
/// connection; anything else is a reset.
pub fn classify_error_chain(err: &(dyn StdError + 'static)) -> Failure {
    let mut connect = false;
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            connect |= e.is_connect();
        } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_user() {
                return Failure::NotTheHost;
            }
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return Failure::Gateway(GatewayFailure::Protocol);
            }
            if h.is_timeout() {
                return Failure::Timeout;
            }
        } else if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::TimedOut if connect => {
                    return Failure::Gateway(GatewayFailure::ConnectTimeout);
                }
                io::ErrorKind::TimedOut => return Failure::Timeout,
                io::ErrorKind::ConnectionRefused => {
                    return Failure::Gateway(GatewayFailure::ConnectRefused);
                }
                _ => {}
            }
        } else if e.is::<tokio::time::error::Elapsed>() {
            return if connect {
                Failure::Gateway(GatewayFailure::ConnectTimeout)
            } else {
                Failure::Timeout
            };
        }
        source = e.source();
    }
    if connect {
        Failure::Gateway(GatewayFailure::ConnectRefused)
    } else {
        Failure::Gateway(GatewayFailure::Reset)
    }
}

impl ClassifyError for hyper_util::client::legacy::Error {
    fn classify(&self) -> Failure {
        classify_error_chain(self)
    }
}

impl ClassifyError for hyper::Error {
    fn classify(&self) -> Failure {
        classify_error_chain(self)
    }
}

impl ClassifyError for io::Error {
    fn classify(&self) -> Failure {
        classify_error_chain(self)
    }
}

impl ClassifyError for Box<dyn StdError + Send + Sync> {
    fn classify(&self) -> Failure {
        classify_error_chain(&**self)
    }
}

impl ClassifyError for Infallible {
    fn classify(&self) -> Failure {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn io_errors_by_kind_anywhere_in_the_chain() {
        let refused: Box<dyn StdError + Send + Sync> =
            Box::new(Wrapper(io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(
            refused.classify(),
            Failure::Gateway(GatewayFailure::ConnectRefused)
        );
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(timed_out.classify(), Failure::Timeout);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(reset.classify(), Failure::Gateway(GatewayFailure::Reset));
    }

    #[tokio::test(start_paused = true)]
    async fn a_tokio_timeout_is_a_timeout() {
        let elapsed = tokio::time::timeout(
            std::time::Duration::from_millis(1),
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err();
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(elapsed);
        assert_eq!(boxed.classify(), Failure::Timeout);
    }

    #[tokio::test]
    async fn a_refused_connection_through_the_legacy_client() {
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::TokioExecutor;
        // A port nobody listens on: bind, read the port, close.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = Client::builder(TokioExecutor::new())
            .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let err = client
            .get(format!("http://{addr}/").parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.is_connect());
        assert_eq!(
            err.classify(),
            Failure::Gateway(GatewayFailure::ConnectRefused)
        );
    }
}
