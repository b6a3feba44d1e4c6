//! What every client of a Shoji network shares.
//!
//! - [`api`]: the messages of the client API (one request and one response per QUIC stream).
//! - [`network`]: the network file a client is given — validator addresses and keys (the set of
//!   the file's epoch; later sets are learned from checkpoints that set signed), the designated
//!   auditor, the issuers, the names of assets and the hashes of the proof parameters.
//! - [`Client`]: a blocking connection to one validator that fails over to the next, submits
//!   transactions and returns only once a commit certificate for them has been checked.
//! - [`snapshot`]: fetching a state snapshot from several validators, each chunk checked on
//!   arrival and the whole against a checkpoint certificate, for a validator that joins.
//! - [`sealed`]: passphrase-sealed files (Argon2id + XChaCha20-Poly1305) written atomically, for
//!   wallet and auditor keys.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod archive;
mod connection;
pub mod events;
pub mod network;
pub mod passphrase;
pub mod sealed;
pub mod snapshot;

pub use connection::{
    check_policy, ArchiveCheck, CertifiedBlock, CertifiedBlocks, CertifiedPolicy, Client,
    ClientError, Finality, TreeState, TxStatus, CERTIFY_PATIENCE,
};
pub use network::{Network, NetworkError, ParameterPins};
