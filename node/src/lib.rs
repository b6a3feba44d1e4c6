//! The validator's core: a PBFT [`Replica`](shoji_consensus::Replica), the
//! [`Ledger`](shoji_ledger::Ledger) state transition, the stateless
//! [`Verifier`](shoji_verifier::Verifier) and the redb [`Store`](shoji_store::Store), glued without I/O of its own beyond the store.
//!
//! The host (network and clock adapters) feeds [`NodeCore`] peer messages, timer expiries and
//! client transactions, tells it the wall-clock time before each ([`NodeCore::set_now_ms`]), and
//! carries out the returned [`Output`]s. Inside, every consensus action is handled in the order
//! the replica emitted it: persistence is written to the store before any message that follows
//! it is returned for sending (the replica emits `Persist` before the vote it covers), and each
//! committed block is verified, applied and stored in one store write transaction before the
//! replica is told its state root.
//!
//! Peer messages travel in the envelope of [`wire`]: consensus messages, and the state-transfer
//! requests and answers this core serves and consumes itself. Blocks that arrive by state
//! transfer go through the replica (which checks that they extend the committed chain and carry
//! valid commit certificates) and then through the same execution path as blocks committed by
//! consensus.
//!
//! [`config`] reads and writes the files of a network (genesis, validator configuration, keys)
//! that `shoji-node init` creates and `shoji-node run` starts from.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use shoji_client::api;
pub mod config;
pub mod devnet;
mod events;
pub mod governance;
pub mod host;
pub mod metrics;
pub mod operations;
pub mod snapshots;
pub mod wire;

mod genesis;
mod payload;
mod validator;

pub use genesis::{ConsensusParams, Genesis, Tuning};
pub use payload::{
    request_id, transaction_or_opaque_shape, transaction_shape, Payload, PayloadPolicy,
    MAX_BLOCK_BYTES, MAX_OPAQUE_BYTES, MAX_PAYLOAD_BYTES,
};
pub use validator::{NodeCore, NodeError, NodeStatus, Output, SubmitError, VerificationStats};

/// The signing-key type validators use (re-exported from the consensus crate).
pub mod ed25519_dalek_key {
    pub use shoji_consensus::ed25519_dalek::SigningKey;
}
