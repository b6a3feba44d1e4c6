//! Error types.

use std::io;

/// Errors of the frame codec ([`crate::frame`]).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame's length exceeds the configured maximum (announced by the peer, or asked to be
    /// written by us).
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The announced or requested length.
        len: u64,
        /// The maximum frame size in force.
        max: usize,
    },
    /// The stream ended inside a frame (in its length prefix or its body).
    #[error("stream ended inside a frame")]
    Truncated,
    /// The underlying stream failed.
    #[error("stream error: {0}")]
    Io(#[from] io::Error),
}

/// Errors of the transport.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The identity's key could not be turned into a certificate or TLS configuration.
    #[error("tls setup: {0}")]
    Tls(String),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Our own key is not a member of the validator set.
    #[error("our key is not in the validator set")]
    NotInValidatorSet,
    /// Two replicas of the validator set share one key.
    #[error("validator set has a duplicate key (replicas {0} and {1})")]
    DuplicateKey(crate::ReplicaId, crate::ReplicaId),
    /// The replica is not in the validator set, or has no known address.
    #[error("unknown replica {0}")]
    UnknownPeer(crate::ReplicaId),
    /// The send queue toward this replica is full; the message was dropped.
    #[error("send queue toward replica {0} is full; message dropped")]
    QueueFull(crate::ReplicaId),
    /// The message is larger than the maximum frame size.
    #[error("message of {len} bytes exceeds the maximum frame size of {max} bytes")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The maximum frame size in force.
        max: usize,
    },
    /// The endpoint has been shut down.
    #[error("endpoint closed")]
    Closed,
    /// Binding the UDP socket failed.
    #[error("bind: {0}")]
    Bind(#[source] io::Error),
    /// Starting a connection failed (bad address, no client configuration, ...).
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was refused (handshake failure, closed by the peer, ...).
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing a stream failed.
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Finishing a stream failed.
    #[error("stream closed: {0}")]
    ClosedStream(#[from] quinn::ClosedStream),
    /// Framing failed (oversized, truncated, or a stream error).
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// The server closed the request stream without answering.
    #[error("no response")]
    NoResponse,
    /// An operation did not complete in time.
    #[error("timed out")]
    Timeout,
}
