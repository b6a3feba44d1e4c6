//! What the transport counts for an operator: connections and the traffic it refused, by
//! reason. The counters are shared handles (cloning one shares its value), for the node to
//! register in its metrics registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Why the transport refused a connection, a stream or a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// An address already at its limit of handshakes in progress.
    HandshakesPerSource,
    /// Every handshake slot in use.
    Handshakes,
    /// Every client slot in use.
    Clients,
    /// An address already at its limit of client connections.
    ClientsPerSource,
    /// Every validator-connection slot in use.
    Validators,
    /// A peer connection whose certificate is not a validator's.
    NotAValidator,
    /// A connection with an unknown protocol (ALPN).
    UnknownProtocol,
    /// A client over its request rate.
    RateLimited,
    /// A frame too large, truncated or unreadable (from a validator).
    BadPeerFrame,
    /// A request frame too large, truncated or unreadable (from a client).
    BadRequestFrame,
}

impl Refusal {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::HandshakesPerSource => "handshakes_per_source",
            Refusal::Handshakes => "handshakes",
            Refusal::Clients => "clients",
            Refusal::ClientsPerSource => "clients_per_source",
            Refusal::Validators => "validators",
            Refusal::NotAValidator => "not_a_validator",
            Refusal::UnknownProtocol => "unknown_protocol",
            Refusal::RateLimited => "rate_limited",
            Refusal::BadPeerFrame => "bad_peer_frame",
            Refusal::BadRequestFrame => "bad_request_frame",
        }
    }
}

/// The label of [`NetMetrics::refused`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    /// [`Refusal::name`].
    pub reason: &'static str,
}

/// The transport's metrics.
#[derive(Clone, Debug, Default)]
pub struct NetMetrics {
    /// Validators connected to this one (their connections being served).
    pub validators_connected: Gauge,
    /// Client connections being served.
    pub clients_connected: Gauge,
    /// Connections, streams and frames refused, by reason.
    pub refused: Family<ReasonLabel, Counter>,
}

impl NetMetrics {
    /// Counts one refusal.
    pub fn refuse(&self, why: Refusal) {
        self.refused
            .get_or_create(&ReasonLabel { reason: why.name() })
            .inc();
    }
}

/// Decrements a gauge when dropped: a connection being served.
pub(crate) struct Connected(pub(crate) Gauge);

impl Connected {
    pub(crate) fn new(gauge: &Gauge) -> Connected {
        gauge.inc();
        Connected(gauge.clone())
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}
