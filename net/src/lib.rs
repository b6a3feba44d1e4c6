//! QUIC transport for Shoji validators and clients.
//!
//! Every node is identified by the Ed25519 key pinned in the genesis validator set. The TLS
//! certificate a node presents is self-signed and its subject public key *is* that Ed25519 key;
//! there is no certificate authority. Both sides authenticate the other by comparing the
//! certificate's key with the key they expect and by checking the TLS 1.3 handshake signature
//! with it:
//!
//! - a dialer always knows whom it dials, so the server verifier accepts exactly one key;
//! - a validator accepting another validator (mutual TLS, ALPN [`ALPN_PEER`]) accepts only keys
//!   of the validator set and learns from the key which replica connected;
//! - wallets and auditors connect without a client certificate (ALPN [`ALPN_CLIENT`]) and pin
//!   the node's key from genesis.
//!
//! On top of QUIC streams, messages are length-prefixed frames (see [`frame`]).
//! [`ValidatorEndpoint`] carries validator-to-validator messages and serves client requests;
//! [`ClientConnection`] is the client side of a request/response exchange.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod config;
mod error;
pub mod frame;
mod metrics;
pub mod relay;
mod tls;
mod validator;

pub use client::ClientConnection;
pub use config::NetConfig;
pub use ed25519_dalek::VerifyingKey;
pub use error::{Error, FrameError};
pub use metrics::{NetMetrics, ReasonLabel, Refusal};
/// The QUIC implementation, re-exported for [`ClientConnection::connection`].
pub use quinn;
pub use tls::Identity;
pub use validator::{ClientRequest, PeerSender, ReplicaId, ValidatorEndpoint};

/// ALPN protocol of validator-to-validator connections (mutual TLS).
pub const ALPN_PEER: &[u8] = b"shoji-peer/8";

/// ALPN protocol of client (wallet, auditor) connections (server-authenticated only).
pub const ALPN_CLIENT: &[u8] = b"shoji-client/7";

/// QUIC application error codes used when this crate closes a stream or a connection.
pub mod codes {
    /// A connection or endpoint closed on purpose (shutdown).
    pub const SHUTDOWN: u32 = 0;
    /// A frame announced a length above the maximum frame size; the stream is stopped.
    pub const FRAME_TOO_LARGE: u32 = 1;
    /// A stream ended in the middle of a frame, or failed while being read.
    pub const MALFORMED_FRAME: u32 = 2;
    /// A stream did not deliver its frame (or the application its reply) in time.
    pub const TIMEOUT: u32 = 3;
    /// The application dropped a client request without replying.
    pub const NO_REPLY: u32 = 4;
    /// A connection asked for the validator protocol without a validator certificate.
    pub const NOT_A_VALIDATOR: u32 = 0x10;
    /// A connection asked for an unknown application protocol.
    pub const UNKNOWN_PROTOCOL: u32 = 0x11;
    /// Every client slot is taken: try again later, or another validator.
    pub const BUSY: u32 = 0x12;
    /// The connection started requests faster than its rate allows: slow down.
    pub const RATE_LIMITED: u32 = 0x13;
}
