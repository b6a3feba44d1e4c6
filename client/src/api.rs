//! The client API: what wallets and auditors ask a validator, over a `shoji-client/1` QUIC
//! stream, one postcard-encoded [`Request`] and one [`Response`] per stream.

use serde::{Deserialize, Serialize};

/// Largest request or response we decode.
pub const MAX_API_MESSAGE_BYTES: usize = 4 << 20;

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Submit an encoded transaction and wait until it is committed (or refused).
    Submit {
        /// [`shoji_primitives::tx::Transaction::to_bytes`].
        tx: Vec<u8>,
    },
    /// The current height, anchor and tree size.
    TreeState,
    /// Compact blocks from `from_height`, at most `max` of them (and at most
    /// [`MAX_COMPACT_BLOCKS`]).
    CompactBlocks {
        /// First height.
        from_height: u64,
        /// How many at most.
        max: u32,
    },
}

/// Most compact blocks in one response.
pub const MAX_COMPACT_BLOCKS: u32 = 1000;

/// A validator's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The transaction is in a committed block.
    Committed {
        /// Height of the block.
        height: u64,
        /// Whether the ledger applied it (`false`: the block marks it invalid, see `reason`).
        applied: bool,
        /// Why it was not applied, if it was not.
        reason: Option<String>,
        /// The block, postcard-encoded [`shoji_consensus::Block`].
        block: Vec<u8>,
        /// Its commit certificate, postcard-encoded [`shoji_consensus::CommitCertificate`];
        /// check it with [`shoji_consensus::verify_commit_certificate`] against the genesis set.
        certificate: Vec<u8>,
    },
    /// Refused before ordering, with the reason.
    Refused(String),
    /// The tree's state.
    TreeState {
        /// Last committed height.
        height: u64,
        /// Current root (the anchor to use), 32 bytes.
        anchor: [u8; 32],
        /// Number of commitments.
        size: u64,
    },
    /// Encoded [`shoji_ledger::CompactBlock`]s, in height order (empty when there are none yet).
    CompactBlocks(Vec<Vec<u8>>),
    /// The request could not be served.
    Error(String),
}

impl Request {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes, refusing oversized input.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_API_MESSAGE_BYTES {
            return Err("request too large".into());
        }
        postcard::from_bytes(bytes).map_err(|e| format!("malformed request: {e}"))
    }
}

impl Response {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes, refusing oversized input.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_API_MESSAGE_BYTES {
            return Err("response too large".into());
        }
        postcard::from_bytes(bytes).map_err(|e| format!("malformed response: {e}"))
    }
}
