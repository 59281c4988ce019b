//! The inputs that drive the state machine, other than pool reports.

use std::time::Duration;

use crate::report::HealthReport;

/// What happened to one proxied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The host answered with a non-5xx status.
    Success {
        /// Time to the response head.
        latency: Duration,
    },
    /// The host answered 5xx: counted by the failure rate, not as a gateway failure.
    ServerError {
        /// Time to the response head.
        latency: Duration,
    },
    /// Connection-level failure: the host never produced a usable response.
    GatewayFailure(GatewayFailure),
    /// The router's own timeout fired before the host answered.
    Timeout {
        /// How long the request had been waiting.
        elapsed: Duration,
    },
}

impl Outcome {
    /// The host answered at all (success or 5xx): proof it is not hung.
    pub(crate) fn is_completion(self) -> bool {
        matches!(self, Outcome::Success { .. } | Outcome::ServerError { .. })
    }

    /// Counted by the consecutive-gateway-failure detector (timeouts included, as Envoy
    /// counts 504 as a gateway error).
    pub(crate) fn is_gateway_failure(self) -> bool {
        matches!(self, Outcome::GatewayFailure(_) | Outcome::Timeout { .. })
    }

    /// Counted as a failure by the failure-rate window.
    pub(crate) fn is_failure(self) -> bool {
        !matches!(self, Outcome::Success { .. })
    }
}

/// The kinds of connection-level failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayFailure {
    /// The connection was refused.
    ConnectRefused,
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The host spoke broken HTTP.
    Protocol,
}

/// The result of one active probe (`GET /healthz`, dialled straight to the host).
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeResult {
    /// 2xx with `status: pass` (or no status).
    Pass(HealthReport),
    /// 2xx with `status: warn`: not a failure; the figures are still judged.
    Warn(HealthReport),
    /// 503 or any other non-2xx status, or 2xx with `status: fail`.
    Fail(HealthReport),
    /// No answer within the probe timeout.
    Timeout,
    /// The connection was refused or broken.
    Refused,
}

/// An operator's command from the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorCommand {
    /// Take no traffic until restored.
    Drain,
    /// Eject now, for `ejection_max`, then probation as usual; ignores the ejected-share cap.
    Eject,
    /// Healthy now, whatever the state.
    Restore,
}
