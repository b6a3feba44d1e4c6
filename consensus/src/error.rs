//! Error type. Errors caused by untrusted input are recorded by the replica (see
//! [`crate::Replica::rejected_count`]) and never abort processing.

use crate::types::{Height, ReplicaId, View};

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The signing key does not belong to any validator.
    #[error("signing key is not a member of the validator set")]
    NotAMember,
    /// Bytes could not be decoded as a message.
    #[error("malformed encoding: {0}")]
    Decode(String),
    /// A message exceeds `max_message_bytes`.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The sender is not a member of the validator set.
    #[error("unknown sender {0}")]
    UnknownSender(ReplicaId),
    /// A signature did not verify.
    #[error("invalid signature from {0}")]
    BadSignature(ReplicaId),
    /// A message refers to a view older than the current one.
    #[error("stale view {got} (current {current})")]
    StaleView {
        /// View in the message.
        got: View,
        /// Our view.
        current: View,
    },
    /// A normal-case message for a view we are not in.
    #[error("message for view {got} while in view {current}")]
    WrongView {
        /// View in the message.
        got: View,
        /// Our view.
        current: View,
    },
    /// A height outside the watermark window.
    #[error("height {height} outside window ({low}, {high}]")]
    OutsideWindow {
        /// Height in the message.
        height: Height,
        /// Low watermark.
        low: Height,
        /// High watermark.
        high: Height,
    },
    /// A message about state that is already settled (below the stable checkpoint,
    /// already committed, superseded).
    #[error("stale message: {0}")]
    Stale(&'static str),
    /// A message that was already processed.
    #[error("duplicate message")]
    Duplicate,
    /// A replica sent two different votes or proposals (of the named kind) for the same slot.
    #[error("equivocation by {0} ({1})")]
    Equivocation(ReplicaId, &'static str),
    /// A message is structurally invalid.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A message was sent by a replica not entitled to send it (e.g. not the leader).
    #[error("{0} is not entitled to send this message")]
    NotEntitled(ReplicaId),
    /// A vote for a block different from the one accepted for that slot.
    #[error("vote for unknown block at height {0}")]
    UnknownBlock(Height),
    /// A certificate failed verification.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A block does not extend the committed chain.
    #[error("block at height {0} does not extend the committed chain")]
    BadChain(Height),
    /// A proposed block's time is further ahead of our clock than the configured skew.
    #[error("block {height} has time {time_ms} ms, more than the allowed skew ahead of our clock ({now_ms} ms)")]
    FutureBlock {
        /// Height of the block.
        height: Height,
        /// The block's proposed time (Unix ms).
        time_ms: u64,
        /// Our clock (Unix ms).
        now_ms: u64,
    },
    /// A resource limit was hit.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// Internal consistency check failed (indicates a bug or more than f faults).
    #[error("internal invariant violated: {0}")]
    Invariant(String),
}
