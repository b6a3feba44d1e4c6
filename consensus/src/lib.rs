//! A sans-IO PBFT consensus core for the Shoji permissioned payments ledger.
//!
//! The [`Replica`] implements Castro–Liskov Practical Byzantine Fault Tolerance for
//! `n = 3f + 1` validators as a pure state machine: it performs no I/O, reads no clock,
//! spawns no threads and draws no randomness. The host feeds it inputs
//! ([`Replica::on_message`], [`Replica::on_timer`], [`Replica::on_client_request`],
//! [`Replica::on_block_executed`], [`Replica::on_state_transfer`]) and carries out the
//! returned [`Action`]s in order: persisting state, sending messages, arming timers,
//! delivering committed blocks. The wall-clock time is an input too
//! ([`Replica::set_now_ms`]): the leader stamps it on its blocks ([`Block::time_ms`]) and
//! backups refuse blocks too far ahead of their own.
//!
//! Committed blocks carry a [`CommitCertificate`] that anyone holding the
//! [`ValidatorSet`] can check with [`verify_commit_certificate`].
//!
//! See `docs/protocol/consensus.md` for the message flow, the persistence rules and the
//! invariants.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod certificate;
mod error;
mod message;
mod persist;
mod replica;
mod types;

pub use certificate::{
    verify_commit_certificate, verify_commit_certificate_for, CheckpointCertificate,
    CommitCertificate, PreparedCertificate,
};
pub use error::Error;
pub use message::worst_case_view_change_bytes;
pub use message::{
    CheckpointVote, Message, NewView, PrePrepare, Proposal, SignedMessage, SignedProposal,
    SignedViewChange, ViewChange, Vote, SIGNING_DOMAIN,
};
pub use persist::{AcceptedProposal, PersistDelta, PersistedState};
pub use replica::{Action, Replica, TimerKind, MAX_RELAY_BATCH};
pub use types::byte_strings;
pub use types::{
    Block, BlockHash, BlockHeader, BlockSummary, Config, ConsensusParams, Height, PayloadCheck,
    ReplicaId, StateRoot, Tuning, TxHash, ValidatorSet, View,
};

/// Re-export of the signature crate used for keys, so hosts use the same version.
pub use ed25519_dalek;
