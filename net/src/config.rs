//! Transport configuration.

use std::time::Duration;

use crate::error::Error;
use crate::frame::{DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_REQUEST_SIZE};

/// Limits, queue sizes and timers of the transport. [`NetConfig::default`] suits a production
/// validator; tests shorten the timers.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Largest frame accepted or sent, in bytes.
    pub max_frame_size: usize,
    /// Largest client request a validator reads, in bytes (its answers may be up to
    /// `max_frame_size`). A client has no business sending more than a transaction and a few
    /// bytes; a validator that read 4 MiB requests from anyone would hold megabytes per
    /// stream for whoever asked.
    pub max_request_size: usize,
    /// Streams a peer may have open at once on one connection (uni and bidi each).
    pub max_concurrent_streams: u32,
    /// Client connections served at once; a client past it is closed (`codes::BUSY`) after
    /// its handshake. Validators have their own budget (a few connections per member), so
    /// clients holding every slot never keep a validator from reconnecting.
    pub max_connections: usize,
    /// Handshakes in progress at once; further incoming connections are refused before any
    /// work is spent on them. A handshake that does not complete within `handshake_timeout`
    /// gives its slot back.
    pub max_handshakes: usize,
    /// Time an incoming connection has to complete its handshake.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once from one IP address. Once half of `max_handshakes` are
    /// in use, an address must also prove that it receives packets (QUIC Retry) before its
    /// handshake starts, so this limit holds against a flood from forged addresses too.
    pub max_handshakes_per_source: usize,
    /// Client connections served at once from one IP address, so one source cannot take
    /// every one of `max_connections` (a bank's clients behind one address share it).
    pub max_connections_per_source: usize,
    /// Capacity of the queue of received validator messages. When it is full, stream readers
    /// wait, which stops reading from QUIC and lets flow control push back on the sender.
    pub inbound_queue: usize,
    /// Capacity of the queue of client requests waiting for the application (same policy).
    pub request_queue: usize,
    /// Capacity of the per-peer queue of outgoing messages. When it is full, `send` drops the
    /// message and returns [`crate::Error::QueueFull`].
    pub send_queue: usize,
    /// Interval of QUIC keep-alive packets; must be below `idle_timeout`.
    pub keep_alive_interval: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// First delay before redialing a peer whose connection failed.
    pub reconnect_initial: Duration,
    /// Cap of the exponentially growing redial delay.
    pub reconnect_max: Duration,
    /// Time allowed to dial, to receive one whole frame on a stream, and to write one.
    pub stream_timeout: Duration,
    /// Time the application has to answer a client request. A submission is answered when its
    /// block commits, which a view change can delay well beyond one frame's time.
    pub answer_timeout: Duration,
    /// Client requests one connection may start per second, on average; a connection may run
    /// ahead by a burst of twice as many. A request past it is refused on its stream
    /// (`codes::RATE_LIMITED`) before the application sees it.
    pub client_requests_per_second: u32,
}

impl NetConfig {
    /// Checks the settings are consistent: keep-alive below the idle timeout, a maximum frame
    /// size that fits the `u32` length prefix, non-zero limits.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: &str| Err(Error::InvalidConfig(why.to_string()));
        if self.keep_alive_interval.is_zero() || self.keep_alive_interval >= self.idle_timeout {
            return bad("keep_alive_interval must be non-zero and below idle_timeout");
        }
        if u32::try_from(self.max_frame_size).is_err() {
            return bad("max_frame_size must fit in a u32");
        }
        if self.max_request_size == 0 || self.max_request_size > self.max_frame_size {
            return bad("max_request_size must be in 1..=max_frame_size");
        }
        if self.client_requests_per_second == 0 {
            return bad("client_requests_per_second must be non-zero");
        }
        if self.max_handshakes == 0 || self.handshake_timeout.is_zero() {
            return bad("max_handshakes and handshake_timeout must be non-zero");
        }
        if self.max_handshakes_per_source == 0 || self.max_connections_per_source == 0 {
            return bad("per-source limits must be non-zero");
        }
        if self.max_concurrent_streams == 0 || self.max_connections == 0 {
            return bad("stream and connection limits must be non-zero");
        }
        if self.inbound_queue == 0 || self.request_queue == 0 || self.send_queue == 0 {
            return bad("queue capacities must be non-zero");
        }
        if self.reconnect_initial.is_zero() || self.reconnect_initial > self.reconnect_max {
            return bad("reconnect_initial must be non-zero and at most reconnect_max");
        }
        if self.stream_timeout.is_zero() || self.answer_timeout.is_zero() {
            return bad("stream_timeout and answer_timeout must be non-zero");
        }
        Ok(())
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            max_concurrent_streams: 128,
            max_connections: 1024,
            max_handshakes: 256,
            handshake_timeout: Duration::from_secs(3),
            max_handshakes_per_source: 32,
            max_connections_per_source: 256,
            inbound_queue: 4096,
            request_queue: 1024,
            send_queue: 1024,
            keep_alive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            stream_timeout: Duration::from_secs(10),
            answer_timeout: Duration::from_secs(60),
            client_requests_per_second: 2_000,
        }
    }
}
