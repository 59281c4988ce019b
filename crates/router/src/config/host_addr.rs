//! `[[hosts]].addr`: an IP address and port, used as is, or a DNS name and port, which the
//! router resolves at start and again every `upstream.resolve_interval`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where a host listens, as configured.
///
/// ```
/// use ringward::config::HostAddr;
///
/// let ip: HostAddr = "10.0.0.11:9001".parse().unwrap();
/// assert_eq!(ip.socket_addr(), Some("10.0.0.11:9001".parse().unwrap()));
/// let name: HostAddr = "Worker-1.internal:9001".parse().unwrap();
/// assert_eq!(name.to_string(), "worker-1.internal:9001");
/// assert_eq!(name.socket_addr(), None);
/// assert!("localhost".parse::<HostAddr>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostAddr {
    /// An IP address and port (`10.0.0.11:9001`, `[fd00::12]:9001`).
    Socket(SocketAddr),
    /// A DNS name and port (`worker-1.internal:9001`, `localhost:9001`); the name is kept in
    /// lower case (DNS names are case-insensitive, so two spellings are one host).
    Name {
        /// The host name, without the port.
        name: String,
        /// The port.
        port: u16,
    },
}

impl HostAddr {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            HostAddr::Socket(addr) => addr.port(),
            HostAddr::Name { port, .. } => *port,
        }
    }

    /// The address itself when it is an IP address; `None` for a name (it must be resolved).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            HostAddr::Socket(addr) => Some(*addr),
            HostAddr::Name { .. } => None,
        }
    }
}

impl From<SocketAddr> for HostAddr {
    fn from(addr: SocketAddr) -> Self {
        HostAddr::Socket(addr)
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Socket(addr) => addr.fmt(f),
            HostAddr::Name { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

impl FromStr for HostAddr {
    type Err = String;

    /// `ip:port`, `[ipv6]:port` or `name:port`; the error says what is wrong, without the
    /// key path (the config reader adds it).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(HostAddr::Socket(addr));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("`{text}` has no port ({WRITE})"));
        };
        if host.contains(':') || host.starts_with('[') {
            return Err(format!(
                "`{text}` is not a valid address (an IPv6 address goes in brackets: [::1]:9001)"
            ));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{text}`: `{port}` is not a port number (1-65535)"))?;
        check_name(host).map_err(|why| format!("`{text}`: {why} ({WRITE})"))?;
        Ok(HostAddr::Name {
            name: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// The forms, for error messages.
const WRITE: &str = "write ip:port or name:port, e.g. 127.0.0.1:9001 or worker-1.internal:9001";

/// A DNS host name (RFC 1123 labels, underscores allowed as container platforms use them, an
/// optional final dot); a name whose last label is all digits is refused, as the system
/// resolver would read `10.1.2` as an IPv4 address.
fn check_name(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("the host name is empty".to_owned());
    }
    if bare.len() > 253 {
        return Err("the host name is longer than 253 characters".to_owned());
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "`{name}` is not a host name (each dot-separated label has 1 to 63 characters)"
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if !label.chars().all(allowed) || label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{name}` is not a host name (letters, digits, '-' and '_', no '-' at either end of a label)"
            ));
        }
    }
    if bare
        .rsplit('.')
        .next()
        .is_some_and(|last| last.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("`{name}` is neither an IP address nor a host name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostAddr, String> {
        text.parse()
    }

    #[test]
    fn ip_addresses_are_socket_addresses() {
        assert_eq!(
            parse("10.0.0.11:9001"),
            Ok(HostAddr::Socket("10.0.0.11:9001".parse().unwrap()))
        );
        let v6 = parse("[::1]:9001").unwrap();
        assert_eq!(v6.socket_addr(), Some("[::1]:9001".parse().unwrap()));
        assert_eq!(v6.to_string(), "[::1]:9001");
        assert_eq!(v6.port(), 9001);
    }

    #[test]
    fn names_with_a_port_are_names_in_lower_case() {
        for (text, name, port) in [
            ("worker-1.internal:9001", "worker-1.internal", 9001),
            ("localhost:8080", "localhost", 8080),
            ("Worker-1.Internal:9001", "worker-1.internal", 9001),
            (
                "api_v2.svc.cluster.local.:80",
                "api_v2.svc.cluster.local.",
                80,
            ),
            ("x:0", "x", 0),
        ] {
            let addr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                addr,
                HostAddr::Name {
                    name: name.to_owned(),
                    port
                }
            );
            assert_eq!(addr.socket_addr(), None);
            assert_eq!(addr.port(), port);
            assert_eq!(parse(&addr.to_string()), Ok(addr), "round trip of {text}");
        }
    }

    #[test]
    fn what_is_wrong_is_named() {
        for (text, says) in [
            ("localhost", "`localhost` has no port"),
            ("worker-1.internal", "has no port"),
            ("::1:9001", "IPv6 address goes in brackets"),
            ("[::1]", "IPv6 address goes in brackets"),
            ("worker:http", "`http` is not a port number"),
            ("worker:70000", "`70000` is not a port number"),
            (":9001", "the host name is empty"),
            ("-worker:9001", "is not a host name"),
            ("work er:9001", "is not a host name"),
            ("worker..internal:9001", "is not a host name"),
            ("10.1.2:9001", "neither an IP address nor a host name"),
            ("300.1.2.3:9001", "neither an IP address nor a host name"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: `{e}` does not say `{says}`");
        }
        let long = format!("{}.example:80", "a".repeat(250));
        assert!(parse(&long).unwrap_err().contains("longer than 253"));
        let label = format!("{}.example:80", "a".repeat(64));
        assert!(parse(&label).unwrap_err().contains("1 to 63"));
    }
}
