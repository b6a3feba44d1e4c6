//! The client API: what wallets and auditors ask a validator, over a `shoji-client/7` QUIC
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
        #[serde(with = "serde_bytes")]
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
    /// Where the validator stands: height, last block, state root, view and leader.
    Status,
    /// The highest stable checkpoint at or below `at_or_below` (`u64::MAX`: the latest), with
    /// the opening of its state root: what a client checks compact blocks against.
    Certified {
        /// Highest height wanted.
        at_or_below: u64,
    },
    /// The first validator-set change whose epoch ends at or after `height`, with a checkpoint
    /// of the ending epoch that certifies it: how a client that trusts the set ordering
    /// `height` learns the next set.
    EpochChange {
        /// A height of the epoch whose end is wanted.
        height: u64,
    },
    /// The public events after `after` whose kinds are in `kinds`
    /// ([`crate::events::KindMask`]), at most `max` (and at most [`MAX_EVENTS`]). When there
    /// are none yet, the validator waits up to `wait_ms` (at most [`MAX_EVENT_WAIT_MS`]) for
    /// the next block before it answers.
    Events {
        /// The last event the client has.
        after: crate::events::Cursor,
        /// The kinds wanted.
        kinds: crate::events::KindMask,
        /// How many at most.
        max: u32,
        /// How long to wait for a new block when there is nothing yet, in milliseconds.
        wait_ms: u32,
    },
    /// The summary and commit certificate of the block committed at `height`.
    Block {
        /// The height.
        height: u64,
    },
    /// Where the transaction with this id ([`shoji_primitives::tx::Transaction::id`]) was
    /// committed, and its outcome there.
    Transaction {
        /// The id.
        txid: [u8; 32],
    },
    /// The newest state snapshot the validator serves whose height has a stable checkpoint:
    /// what a joining validator starts from (`shoji_ledger::snapshot`).
    Snapshot,
    /// Chunk `index` of the snapshot of `height`.
    SnapshotChunk {
        /// The snapshot's height.
        height: u64,
        /// The chunk, as the manifest numbers it.
        index: u32,
    },
    /// The policy (auditor, issuers, validators, participant registry) at the validator's
    /// latest stable checkpoint, with the checkpoint and its opening: the opening's `policy`
    /// hash certifies it.
    Policy,
}

/// Most events in one response.
pub const MAX_EVENTS: u32 = 10_000;

/// Longest a validator holds an events request open waiting for a block.
pub const MAX_EVENT_WAIT_MS: u32 = 30_000;

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
        /// The block's header and transaction hashes, postcard-encoded
        /// [`shoji_consensus::BlockSummary`]: it has the block's hash, and holds the
        /// transaction's [`shoji_consensus::TxHash`].
        #[serde(with = "serde_bytes")]
        summary: Vec<u8>,
        /// Its commit certificate, postcard-encoded [`shoji_consensus::CommitCertificate`];
        /// check it with [`shoji_consensus::verify_commit_certificate_for`] against the
        /// validator set of the block's epoch.
        #[serde(with = "serde_bytes")]
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
    CompactBlocks(#[serde(with = "shoji_consensus::byte_strings")] Vec<Vec<u8>>),
    /// The request could not be served.
    Error(String),
    /// The answer to [`Request::Status`].
    Status(Status),
    /// The validator admitted the transaction but will not order it (its queue was full, or
    /// the transaction waited too long). Another validator it was relayed to may still order
    /// it until its expiry height: it is neither final nor refused.
    Dropped(String),
    /// The answer to [`Request::Certified`].
    Certified {
        /// Postcard-encoded [`shoji_consensus::CheckpointCertificate`]: a quorum's signatures on
        /// (height, block hash, state root).
        #[serde(with = "serde_bytes")]
        checkpoint: Vec<u8>,
        /// [`shoji_ledger::StateOpening::to_bytes`] of the state root at that height (empty at
        /// height 0, whose state is the genesis state).
        #[serde(with = "serde_bytes")]
        opening: Vec<u8>,
    },
    /// The answer to [`Request::EpochChange`]; `checkpoint` is empty when no change is known
    /// to end at or after the height asked.
    EpochChange {
        /// Postcard-encoded [`shoji_consensus::CheckpointCertificate`] of the ending epoch, at
        /// or after the block that decided the change and before the epoch's last block.
        #[serde(with = "serde_bytes")]
        checkpoint: Vec<u8>,
        /// [`shoji_ledger::StateOpening::to_bytes`] at the checkpoint: its `validators`
        /// commits to the ending epoch's members, `last` and `validators` below
        /// ([`shoji_ledger::validator_sets_hash`]).
        #[serde(with = "serde_bytes")]
        opening: Vec<u8>,
        /// The last height the ending epoch's set orders.
        last: u64,
        /// The next epoch's members: replica id and Ed25519 key.
        validators: Vec<(u16, [u8; 32])>,
    },
    /// The answer to [`Request::Events`]: events in stream order, and the cursor to ask after
    /// next (the last event looked at, which a filter may have left out).
    Events {
        /// The events.
        events: Vec<crate::events::Event>,
        /// Where to resume.
        next: crate::events::Cursor,
    },
    /// The answer to [`Request::Events`] when the events after the cursor are no longer kept:
    /// they are kept from `first` on. Resume from there (and accept the gap), or from a
    /// validator that keeps more.
    EventsPruned {
        /// The first height whose events are kept.
        first: u64,
    },
    /// The answer to [`Request::Block`]; both empty when no block is committed at that height.
    Block {
        /// Postcard-encoded [`shoji_consensus::BlockSummary`].
        #[serde(with = "serde_bytes")]
        summary: Vec<u8>,
        /// Postcard-encoded [`shoji_consensus::CommitCertificate`] of the block.
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
    },
    /// The answer to [`Request::Transaction`]: `None` when this validator has committed no
    /// transaction with that id. The outcome is the validator's word until a client checks
    /// it against the certified compact block of `height` (which lists the applied
    /// transactions' ids and the rejected ones' codes).
    Transaction(Option<TxRecord>),
    /// The answer to [`Request::Snapshot`]; both empty when the validator serves none.
    Snapshot {
        /// Postcard-encoded [`shoji_consensus::CheckpointCertificate`] of the snapshot's
        /// height: its state root is what the manifest's opening must hash to.
        #[serde(with = "serde_bytes")]
        checkpoint: Vec<u8>,
        /// [`shoji_ledger::snapshot::SnapshotManifest::to_bytes`].
        #[serde(with = "serde_bytes")]
        manifest: Vec<u8>,
    },
    /// The answer to [`Request::SnapshotChunk`]: the chunk's bytes, empty when the validator
    /// no longer has that snapshot.
    SnapshotChunk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The answer to a read of heights this validator no longer keeps (it started from a
    /// state snapshot, or pruned them): it keeps them from `first` on. Read older ones from
    /// another validator or the network's archive.
    NotKept {
        /// The first height kept.
        first: u64,
    },
    /// The answer to [`Request::Policy`].
    Policy {
        /// Postcard-encoded [`shoji_consensus::CheckpointCertificate`].
        #[serde(with = "serde_bytes")]
        checkpoint: Vec<u8>,
        /// [`shoji_ledger::StateOpening::to_bytes`] at the checkpoint (empty at height 0).
        #[serde(with = "serde_bytes")]
        opening: Vec<u8>,
        /// [`shoji_ledger::Policy::to_bytes`] in force at the checkpoint; empty while it is the
        /// genesis policy (the opening's `policy` is then zero).
        #[serde(with = "serde_bytes")]
        policy: Vec<u8>,
    },
}

/// Where a transaction was committed, and what happened to it ([`Response::Transaction`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// The block's height.
    pub height: u64,
    /// Its index among the block's transactions.
    pub index: u32,
    /// Applied, or rejected with the ledger's reason in words.
    pub rejected: Option<String>,
    /// The transaction as ordered ([`shoji_primitives::tx::Transaction::to_bytes`]): the
    /// client checks its id, and finds it in the certified compact block by its id (applied)
    /// or by the hash of these bytes (rejected).
    #[serde(with = "serde_bytes")]
    pub tx: Vec<u8>,
}

/// A validator's view of the network ([`Request::Status`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The answering validator's id.
    pub node: u16,
    /// Last committed height.
    pub height: u64,
    /// Hash of the block at `height` (all zeros at height 0).
    pub last_block_hash: [u8; 32],
    /// The ledger's state root after `height`.
    pub state_root: [u8; 32],
    /// Block time of `height` (Unix ms; 0 at height 0).
    pub time_ms: u64,
    /// Current view (the view being changed to while a view change runs).
    pub view: u64,
    /// Whether a view change is in progress.
    pub view_changing: bool,
    /// The leader of `view`; `None` while the view change to it runs.
    pub leader: Option<u16>,
    /// Height of the last stable checkpoint.
    pub stable_checkpoint: u64,
    /// Client transactions waiting to be ordered at this validator.
    pub pending: u64,
    /// Validator-set epoch.
    pub epoch: u64,
    /// The validators' ids.
    pub validators: Vec<u16>,
    /// Governance transactions enacted (the next must carry this sequence number).
    pub governance_seq: u64,
}

impl Request {
    /// A short machine name of the request's kind (`compact_blocks`), for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Submit { .. } => "submit",
            Request::TreeState => "tree_state",
            Request::CompactBlocks { .. } => "compact_blocks",
            Request::Status => "status",
            Request::Certified { .. } => "certified",
            Request::EpochChange { .. } => "epoch_change",
            Request::Events { .. } => "events",
            Request::Block { .. } => "block",
            Request::Transaction { .. } => "transaction",
            Request::Snapshot => "snapshot",
            Request::SnapshotChunk { .. } => "snapshot_chunk",
            Request::Policy => "policy",
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_earlier_variants_keep_their_encoding() {
        assert_eq!(
            Request::decode(&Request::Status.encode()),
            Ok(Request::Status)
        );
        // Variants are appended, so older clients and validators still agree on the rest.
        assert_eq!(Request::TreeState.encode(), vec![1]);
        assert_eq!(Request::Status.encode(), vec![3]);
        let s = Response::Status(Status {
            node: 2,
            height: 7,
            last_block_hash: [1; 32],
            state_root: [2; 32],
            time_ms: 1_700_000_000_000,
            view: 1,
            view_changing: false,
            leader: Some(1),
            stable_checkpoint: 0,
            pending: 3,
            epoch: 0,
            validators: vec![0, 1, 2, 3],
            governance_seq: 2,
        });
        assert_eq!(Response::decode(&s.encode()), Ok(s));
        let dropped = Response::Dropped("not ordered within 60 s".into());
        assert_eq!(dropped.encode()[0], 6);
        assert_eq!(Response::decode(&dropped.encode()), Ok(dropped));
        assert!(Response::decode(&[8, 1, 2]).is_err());
        let certified = Response::Certified {
            checkpoint: vec![1, 2],
            opening: vec![3],
        };
        assert_eq!(certified.encode()[0], 7);
        assert_eq!(Response::decode(&certified.encode()), Ok(certified));
        assert_eq!(Request::Certified { at_or_below: 9 }.encode(), vec![4, 9]);
    }
}
