//! Basic identifiers, blocks, the validator set and the replica configuration.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::certificate::CheckpointCertificate;
use crate::error::Error;

/// A view number. The leader of view `v` is the `v mod n`-th member of the validator set.
pub type View = u64;

/// A block height. Heights are PBFT sequence numbers; the first block has height 1.
pub type Height = u64;

/// Identifier of a validator (replica).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct ReplicaId(pub u16);

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A 32-byte blake3 digest of a block's canonical encoding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct BlockHash(pub [u8; 32]);

impl BlockHash {
    /// The hash the first block (height 1) links to.
    pub const GENESIS: BlockHash = BlockHash([0u8; 32]);
}

/// A 32-byte blake3 digest of one transaction's bytes (used for de-duplication).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct TxHash(pub [u8; 32]);

impl TxHash {
    /// Hashes opaque transaction bytes.
    pub fn of(tx: &[u8]) -> TxHash {
        let mut h = blake3::Hasher::new();
        h.update(b"shoji.tx.v1");
        h.update(tx);
        TxHash(*h.finalize().as_bytes())
    }
}

/// The application state root reported by the host after executing a block.
pub type StateRoot = [u8; 32];

/// A block of opaque transactions at one height.
///
/// `view`, `proposer` and `time_ms` are those of the block's *first* proposal; a block
/// re-proposed by a later leader after a view change keeps them, so its hash (and any
/// signature over it) is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Height (PBFT sequence number) of this block.
    pub height: Height,
    /// Hash of the block at `height - 1` ([`BlockHash::GENESIS`] for height 1).
    pub prev_hash: BlockHash,
    /// View in which the block was first proposed.
    pub view: View,
    /// Replica that first proposed the block.
    pub proposer: ReplicaId,
    /// Wall-clock time chosen by the proposer, in Unix milliseconds (0 for a null block).
    ///
    /// Backups refuse a pre-prepare whose time is more than [`Config::max_clock_skew_ms`]
    /// ahead of their own clock; nothing else is checked here. The application derives a
    /// monotonic block time from it (`max` with the previous block's), so a time that goes
    /// backwards, or a null block's 0, takes the parent's time.
    pub time_ms: u64,
    /// Opaque transactions, in execution order.
    #[serde(with = "byte_strings")]
    pub transactions: Vec<Vec<u8>>,
}

impl Block {
    /// The block's hash: that of its [`BlockHeader`], so a header (or a [`BlockSummary`]) is
    /// enough to check a commit certificate.
    pub fn hash(&self) -> BlockHash {
        self.header().hash()
    }

    /// The block's fixed-size header: its fields and a digest of its transactions.
    pub fn header(&self) -> BlockHeader {
        BlockHeader::of(self, self.transactions.iter().map(|t| TxHash::of(t)))
    }

    /// The hash of each transaction, in order.
    pub fn tx_hashes(&self) -> Vec<TxHash> {
        self.transactions.iter().map(|t| TxHash::of(t)).collect()
    }

    /// The header and the hashes of the transactions, in order.
    pub fn summary(&self) -> BlockSummary {
        BlockSummary {
            height: self.height,
            prev_hash: self.prev_hash,
            view: self.view,
            proposer: self.proposer,
            time_ms: self.time_ms,
            tx_hashes: self.tx_hashes(),
        }
    }

    /// The empty ("null request") block a new leader proposes for a gap after a view change.
    ///
    /// Every replica recomputes null blocks from the VIEW-CHANGEs of a NEW-VIEW, so they must
    /// not depend on anyone's clock: their `time_ms` is 0, which the application reads as
    /// "the parent's time" (block time is the maximum of the proposed time and the parent's).
    pub fn null(height: Height, prev_hash: BlockHash, view: View, proposer: ReplicaId) -> Block {
        Block::empty(height, prev_hash, view, proposer, 0)
    }

    /// A block of these header fields without transactions.
    fn empty(
        height: Height,
        prev_hash: BlockHash,
        view: View,
        proposer: ReplicaId,
        time_ms: u64,
    ) -> Block {
        Block {
            height,
            prev_hash,
            view,
            proposer,
            time_ms,
            transactions: Vec::new(),
        }
    }
}

/// A block's header: its fields and a digest of its transactions. Its size does not depend on
/// the block's content, so the messages that carry headers instead of blocks (prepared
/// certificates, VIEW-CHANGE, NEW-VIEW) stay small under any load. The block hash is the
/// header's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// [`Block::height`].
    pub height: Height,
    /// [`Block::prev_hash`].
    pub prev_hash: BlockHash,
    /// [`Block::view`].
    pub view: View,
    /// [`Block::proposer`].
    pub proposer: ReplicaId,
    /// [`Block::time_ms`].
    pub time_ms: u64,
    /// Number of transactions.
    pub tx_count: u64,
    /// blake3 over a domain tag and the transactions' [`TxHash`]es, in order.
    pub txs_root: [u8; 32],
}

impl BlockHeader {
    /// Domain separation tag for block hashing.
    const HASH_DOMAIN: &'static [u8] = b"shoji.block.v4";
    /// Domain separation tag for the transactions' digest.
    const TXS_DOMAIN: &'static [u8] = b"shoji.block.txs.v1";

    /// The header of `block`'s fields (its transactions are ignored) with `tx_hashes`.
    pub(crate) fn of(
        block: &Block,
        tx_hashes: impl ExactSizeIterator<Item = TxHash>,
    ) -> BlockHeader {
        let tx_count = tx_hashes.len() as u64;
        let mut h = blake3::Hasher::new();
        h.update(Self::TXS_DOMAIN);
        for th in tx_hashes {
            h.update(&th.0);
        }
        BlockHeader {
            height: block.height,
            prev_hash: block.prev_hash,
            view: block.view,
            proposer: block.proposer,
            time_ms: block.time_ms,
            tx_count,
            txs_root: *h.finalize().as_bytes(),
        }
    }

    /// The block hash: blake3 over the domain tag and the fields, fixed-width little-endian.
    pub fn hash(&self) -> BlockHash {
        let mut h = blake3::Hasher::new();
        h.update(Self::HASH_DOMAIN);
        h.update(&self.height.to_le_bytes());
        h.update(&self.prev_hash.0);
        h.update(&self.view.to_le_bytes());
        h.update(&self.proposer.0.to_le_bytes());
        h.update(&self.time_ms.to_le_bytes());
        h.update(&self.tx_count.to_le_bytes());
        h.update(&self.txs_root);
        BlockHash(*h.finalize().as_bytes())
    }

    /// The block itself when it has no transactions (a null block, say): a header is then the
    /// whole block. `None` when it has transactions.
    pub fn empty_block(&self) -> Option<Block> {
        let block = Block::empty(
            self.height,
            self.prev_hash,
            self.view,
            self.proposer,
            self.time_ms,
        );
        (block.header() == *self).then_some(block)
    }
}

/// A block without its transactions' bytes: the header and each transaction's [`TxHash`], in
/// order. It has the block's hash, so it carries a commit certificate to a client, which then
/// checks that its own transaction is in the block, without downloading the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// [`Block::height`].
    pub height: Height,
    /// [`Block::prev_hash`].
    pub prev_hash: BlockHash,
    /// [`Block::view`].
    pub view: View,
    /// [`Block::proposer`].
    pub proposer: ReplicaId,
    /// [`Block::time_ms`].
    pub time_ms: u64,
    /// The hash of each of [`Block::transactions`], in order.
    pub tx_hashes: Vec<TxHash>,
}

impl BlockSummary {
    /// The hash of the block it summarizes (that of its [`BlockHeader`]).
    pub fn hash(&self) -> BlockHash {
        self.header().hash()
    }

    /// The header of the block it summarizes.
    pub fn header(&self) -> BlockHeader {
        let fields = Block::empty(
            self.height,
            self.prev_hash,
            self.view,
            self.proposer,
            self.time_ms,
        );
        BlockHeader::of(&fields, self.tx_hashes.iter().copied())
    }

    /// Whether the block holds the transaction with these bytes.
    pub fn contains(&self, tx: &[u8]) -> bool {
        self.tx_hashes.contains(&TxHash::of(tx))
    }
}

/// The set of validators of one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSet {
    /// The network these validators order for (its genesis hash); part of every signed
    /// message, so a vote or a certificate of one network means nothing on another that shares
    /// validator keys. All zeros until [`ValidatorSet::on_network`] sets it.
    pub network: [u8; 32],
    /// Epoch number; part of every signed message, so signatures never cross epochs.
    pub epoch: u64,
    /// Members and their Ed25519 verifying keys. Iteration order (by id) defines leader order.
    pub members: BTreeMap<ReplicaId, VerifyingKey>,
}

impl ValidatorSet {
    /// Creates a validator set, rejecting an empty one and weak keys: a key of small order
    /// (the identity point, say) would let anyone forge that member's votes under a lax
    /// verification rule, and is no one's real key.
    pub fn new(epoch: u64, members: BTreeMap<ReplicaId, VerifyingKey>) -> Result<Self, Error> {
        if members.is_empty() {
            return Err(Error::InvalidConfig("validator set is empty".into()));
        }
        if let Some((id, _)) = members.iter().find(|(_, k)| k.is_weak()) {
            return Err(Error::InvalidConfig(format!(
                "validator {} has a weak (small-order) Ed25519 key",
                id.0
            )));
        }
        Ok(ValidatorSet {
            network: [0; 32],
            epoch,
            members,
        })
    }

    /// The same set, signing for `network` (the genesis hash of the network it orders for).
    pub fn on_network(mut self, network: [u8; 32]) -> Self {
        self.network = network;
        self
    }

    /// Number of validators `n`.
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// Maximum number of Byzantine validators tolerated: `f = floor((n - 1) / 3)`.
    pub fn f(&self) -> usize {
        self.n().saturating_sub(1) / 3
    }

    /// Size of a quorum certificate: `n - f`, which is `2f + 1` when `n = 3f + 1`.
    /// Any two quorums intersect in at least `f + 1` validators, i.e. in an honest one.
    pub fn quorum(&self) -> usize {
        self.n() - self.f()
    }

    /// `f + 1`: any set this large contains at least one honest validator.
    pub fn weak_quorum(&self) -> usize {
        self.f() + 1
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: ReplicaId) -> bool {
        self.members.contains_key(&id)
    }

    /// Verifying key of a member.
    pub fn key(&self, id: ReplicaId) -> Option<&VerifyingKey> {
        self.members.get(&id)
    }

    /// Leader of `view`: the `(view mod n)`-th member in id order.
    pub fn leader(&self, view: View) -> ReplicaId {
        let n = self.n().max(1) as u64;
        let idx = (view % n) as usize;
        self.members.keys().nth(idx).copied().unwrap_or_default()
    }

    /// Member whose verifying key equals `key`, if any.
    pub fn id_of(&self, key: &VerifyingKey) -> Option<ReplicaId> {
        self.members
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(id, _)| *id)
    }
}

/// Which payloads may be ordered: a pure function of the bytes, so that every replica
/// judges a block's payloads alike. The consensus core does not know what a transaction is;
/// the host supplies the rule (for Shoji: a payload must have the exact shape of a
/// transaction kind).
#[derive(Clone, Copy)]
pub struct PayloadCheck(pub fn(&[u8]) -> Result<(), &'static str>);

impl PayloadCheck {
    /// Accepts every payload.
    pub const ANY: PayloadCheck = PayloadCheck(|_| Ok(()));

    /// Applies the rule.
    pub fn check(&self, payload: &[u8]) -> Result<(), &'static str> {
        (self.0)(payload)
    }
}

impl std::fmt::Debug for PayloadCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadCheck")
    }
}

impl PartialEq for PayloadCheck {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for PayloadCheck {}

/// Consensus parameters every validator of a network must share (they are part of the node's
/// genesis): validators that disagree on them do not agree on checkpoints or on which blocks
/// are valid. The one definition of these settings and their defaults: [`Config::new`] starts
/// from it, and the node's genesis file is its serde form (`[consensus]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusParams {
    /// Checkpoint interval `K` (see [`Config::checkpoint_interval`]).
    pub checkpoint_interval: u64,
    /// Log window `L`, a multiple of `K` (see [`Config::window_size`]).
    pub window_size: u64,
    /// Most transactions in one block.
    pub max_batch_txs: usize,
    /// How far ahead of a backup's clock a proposed block's time may be, in milliseconds.
    pub max_clock_skew_ms: u64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        ConsensusParams {
            checkpoint_interval: 8,
            window_size: 16,
            max_batch_txs: 256,
            max_clock_skew_ms: 30_000,
        }
    }
}

/// A replica's local timers and pipelining: they need not agree across validators. The one
/// definition of these settings and their defaults ([`Config::new`] starts from it; the node's
/// validator configuration embeds it in `[tuning]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tuning {
    /// First view-change timeout (doubles while views fail, up to the maximum).
    pub view_timeout_ms: u64,
    /// Cap of the view-change timeout.
    pub view_timeout_ms_max: u64,
    /// Re-sending of own messages that have not taken effect.
    pub retransmit_ms: u64,
    /// How long to wait for a state-transfer answer before asking another validator.
    pub state_transfer_timeout_ms: u64,
    /// Blocks a leader keeps proposed but not committed.
    pub max_blocks_in_flight: u64,
    /// Fewest waiting transactions for which a leader proposes while a block is in flight.
    pub pipeline_min_batch: usize,
    /// Longest a request waits for a block in flight before the leader proposes it beside
    /// that block in a block smaller than `pipeline_min_batch` (0: it waits for the block).
    pub pipeline_max_wait_ms: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            view_timeout_ms: 1_000,
            view_timeout_ms_max: 16_000,
            retransmit_ms: 400,
            state_transfer_timeout_ms: 1_000,
            max_blocks_in_flight: 4,
            pipeline_min_batch: 32,
            pipeline_max_wait_ms: 5,
        }
    }
}

/// Static configuration of a replica. All limits are enforced on untrusted input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Validators of the current epoch.
    pub validators: ValidatorSet,
    /// Trusted checkpoint the epoch starts from: [`CheckpointCertificate::genesis`] for the
    /// first epoch; otherwise the checkpoint at the previous epoch's last height, which the
    /// host derives from its own executed chain (the node passes it unsigned: replicas only
    /// compare an epoch's start with each other's, never verify it).
    pub start_checkpoint: CheckpointCertificate,
    /// Checkpoint interval `K`: a checkpoint is taken at every height divisible by it.
    pub checkpoint_interval: u64,
    /// Log window `L` (high watermark = low watermark + L); must be a multiple of `K`.
    pub window_size: u64,
    /// Maximum number of blocks a leader keeps proposed but not yet committed.
    pub max_blocks_in_flight: u64,
    /// Fewest waiting requests for which a leader proposes a block while another is still in
    /// flight (with none in flight it proposes whatever waits). 1 pipelines every request.
    pub pipeline_min_batch: usize,
    /// Longest the oldest waiting request is held back by `pipeline_min_batch` while a block
    /// is in flight, in milliseconds; then the leader proposes what waits. Without it, under
    /// light load and a long round trip every request waits for the block before it to
    /// commit. 0 disables it (and so does a host that gives no clock).
    pub pipeline_max_wait_ms: u64,
    /// Maximum number of transactions in one block.
    pub max_batch_txs: usize,
    /// Maximum size of one transaction in bytes.
    pub max_tx_bytes: usize,
    /// Maximum total size of one block's transactions in bytes. A leader closes a block at
    /// this budget and backups refuse a block above it, so a pre-prepare (and anything that
    /// carries one) stays well under the transport's frame limit.
    pub max_block_bytes: usize,
    /// The shape rule every ordered payload must pass: checked when a request enters the
    /// queue (from a client or relayed by a peer) and, deterministically, by every backup on
    /// every transaction of a proposed block. A block carrying a payload that fails it is
    /// refused. The default accepts every payload.
    pub payload_check: PayloadCheck,
    /// How long a request may wait to be ordered, in milliseconds of the host's clock
    /// ([`crate::Replica::set_now_ms`]); older ones are dropped (and the host told, for its
    /// own clients' requests, by [`crate::Action::Dropped`]).
    pub pending_ttl_ms: u64,
    /// Maximum number of client transactions waiting to be ordered.
    pub max_pending_requests: usize,
    /// Number of recent heights whose transactions are remembered to reject duplicates.
    pub dedup_window_blocks: u64,
    /// Initial view-change timeout.
    pub view_timeout_ms: u64,
    /// Cap for the doubling view-change timeout.
    pub view_timeout_ms_max: u64,
    /// Interval at which unacknowledged own messages are re-sent.
    pub retransmit_ms: u64,
    /// How long to wait for a state-transfer reply before asking another peer.
    pub state_transfer_timeout_ms: u64,
    /// Maximum encoded size of one [`crate::SignedMessage`]: the transport's frame limit (less
    /// its envelope). Messages above it are refused on receipt, and
    /// [`Config::validate`] checks that no message an honest replica sends can exceed it: a
    /// full block, and the worst-case VIEW-CHANGE and NEW-VIEW
    /// ([`crate::worst_case_view_change_bytes`]). Default: 4 MiB less 1 KiB.
    pub max_message_bytes: usize,
    /// Maximum number of blocks accepted in one state-transfer batch.
    pub max_state_transfer_blocks: usize,
    /// How far ahead of its own clock (see [`crate::Replica::set_now_ms`]) a backup accepts
    /// a proposed block's `time_ms`, in milliseconds.
    pub max_clock_skew_ms: u64,
}

impl Config {
    /// A configuration for `validators` with the default [`ConsensusParams`] and [`Tuning`].
    pub fn new(validators: ValidatorSet) -> Config {
        Config {
            validators,
            start_checkpoint: CheckpointCertificate::genesis(),
            checkpoint_interval: 0,
            window_size: 0,
            max_blocks_in_flight: 0,
            pipeline_min_batch: 0,
            pipeline_max_wait_ms: 0,
            max_batch_txs: 0,
            max_tx_bytes: 64 * 1024,
            max_block_bytes: 1 << 20,
            payload_check: PayloadCheck::ANY,
            pending_ttl_ms: 60_000,
            max_pending_requests: 10_000,
            dedup_window_blocks: 1024,
            view_timeout_ms: 0,
            view_timeout_ms_max: 0,
            retransmit_ms: 0,
            state_transfer_timeout_ms: 0,
            max_message_bytes: (4 << 20) - 1024,
            max_state_transfer_blocks: 64,
            max_clock_skew_ms: 0,
        }
        .with_params(&ConsensusParams::default())
        .with_tuning(&Tuning::default())
    }

    /// This configuration with the network's shared `params`.
    pub fn with_params(mut self, params: &ConsensusParams) -> Config {
        let ConsensusParams {
            checkpoint_interval,
            window_size,
            max_batch_txs,
            max_clock_skew_ms,
        } = *params;
        self.checkpoint_interval = checkpoint_interval;
        self.window_size = window_size;
        self.max_batch_txs = max_batch_txs;
        self.max_clock_skew_ms = max_clock_skew_ms;
        self
    }

    /// This configuration with a validator's local `tuning`.
    pub fn with_tuning(mut self, tuning: &Tuning) -> Config {
        let Tuning {
            view_timeout_ms,
            view_timeout_ms_max,
            retransmit_ms,
            state_transfer_timeout_ms,
            max_blocks_in_flight,
            pipeline_min_batch,
            pipeline_max_wait_ms,
        } = *tuning;
        self.view_timeout_ms = view_timeout_ms;
        self.view_timeout_ms_max = view_timeout_ms_max;
        self.retransmit_ms = retransmit_ms;
        self.state_transfer_timeout_ms = state_transfer_timeout_ms;
        self.max_blocks_in_flight = max_blocks_in_flight;
        self.pipeline_min_batch = pipeline_min_batch;
        self.pipeline_max_wait_ms = pipeline_max_wait_ms;
        self
    }

    /// Checks internal consistency of the configuration.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::InvalidConfig(m.into()));
        if self.validators.n() == 0 {
            return bad("validator set is empty");
        }
        if self.validators.n() > u16::MAX as usize {
            return bad("too many validators");
        }
        if self.checkpoint_interval == 0 {
            return bad("checkpoint_interval must be positive");
        }
        if self.window_size < self.checkpoint_interval
            || !self.window_size.is_multiple_of(self.checkpoint_interval)
        {
            return bad("window_size must be a positive multiple of checkpoint_interval");
        }
        if self.max_blocks_in_flight == 0 || self.max_blocks_in_flight > self.window_size {
            return bad("max_blocks_in_flight must be in 1..=window_size");
        }
        if self.pipeline_min_batch == 0 {
            return bad("pipeline_min_batch must be positive");
        }
        if self.max_batch_txs == 0 || self.max_tx_bytes == 0 || self.max_pending_requests == 0 {
            return bad("batch, transaction and pending limits must be positive");
        }
        if self.max_block_bytes < self.max_tx_bytes {
            return bad("max_block_bytes must hold at least one transaction of max_tx_bytes");
        }
        if self.pending_ttl_ms == 0 {
            return bad("pending_ttl_ms must be positive");
        }
        if self.view_timeout_ms == 0 || self.view_timeout_ms_max < self.view_timeout_ms {
            return bad("view_timeout_ms must be positive and at most view_timeout_ms_max");
        }
        if self.retransmit_ms == 0 || self.state_transfer_timeout_ms == 0 {
            return bad("timer intervals must be positive");
        }
        if !self
            .start_checkpoint
            .height
            .is_multiple_of(self.checkpoint_interval)
        {
            return bad("start_checkpoint must be at a checkpoint height");
        }
        if self.max_state_transfer_blocks == 0 {
            return bad("max_state_transfer_blocks must be positive");
        }
        // Every message an honest replica sends must fit, whatever the load: a full block in
        // a PRE-PREPARE (each transaction with a length prefix of at most 10 bytes, and room
        // for the header and the signature), and the largest VIEW-CHANGE and NEW-VIEW.
        let full_block = self
            .max_block_bytes
            .saturating_add(self.max_batch_txs.saturating_mul(10))
            .saturating_add(512);
        if full_block > self.max_message_bytes {
            return Err(Error::InvalidConfig(format!(
                "a full block ({full_block} bytes encoded) does not fit in max_message_bytes ({})",
                self.max_message_bytes
            )));
        }
        let (vc, nv) =
            crate::message::worst_case_view_change_bytes(self.validators.n(), self.window_size);
        if vc.max(nv) > self.max_message_bytes {
            return Err(Error::InvalidConfig(format!(
                "with {} validators and a window of {}, a NEW-VIEW can take {} bytes, more than \
                 max_message_bytes ({}): use a smaller window",
                self.validators.n(),
                self.window_size,
                vc.max(nv),
                self.max_message_bytes
            )));
        }
        Ok(())
    }
}

/// `Vec<Vec<u8>>` as a sequence of byte strings. In postcard a byte string and a sequence of
/// `u8` have the same encoding (length, then the bytes), so this changes no byte on the wire or
/// in a hash; it only spares (de)serializing a transaction one byte at a time.
pub mod byte_strings {
    use serde::de::Deserializer;
    use serde::ser::{SerializeSeq, Serializer};
    use serde::Deserialize;

    /// Serializes each element as a byte string.
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for t in v {
            seq.serialize_element(serde_bytes::Bytes::new(t))?;
        }
        seq.end()
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<serde_bytes::ByteBuf> = Deserialize::deserialize(d)?;
        Ok(v.into_iter().map(serde_bytes::ByteBuf::into_vec).collect())
    }
}

#[cfg(test)]
mod byte_string_tests {
    use super::*;

    /// The same fields with the default `Vec<Vec<u8>>` encoding.
    #[derive(Serialize)]
    struct PlainBlock {
        height: Height,
        prev_hash: BlockHash,
        view: View,
        proposer: ReplicaId,
        time_ms: u64,
        transactions: Vec<Vec<u8>>,
    }

    #[test]
    fn byte_strings_encode_exactly_like_sequences_of_bytes() {
        let txs = vec![vec![1u8, 2, 3], vec![], (0..=255u8).collect::<Vec<u8>>()];
        let block = Block {
            height: 7,
            prev_hash: BlockHash([9; 32]),
            view: 2,
            proposer: ReplicaId(3),
            time_ms: 1_700_000_000_000,
            transactions: txs.clone(),
        };
        let plain = PlainBlock {
            height: 7,
            prev_hash: BlockHash([9; 32]),
            view: 2,
            proposer: ReplicaId(3),
            time_ms: 1_700_000_000_000,
            transactions: txs,
        };
        let a = postcard::to_allocvec(&block).expect("encode");
        assert_eq!(a, postcard::to_allocvec(&plain).expect("encode"));
        assert_eq!(postcard::from_bytes::<Block>(&a).expect("decode"), block);
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    fn block() -> Block {
        Block {
            height: 7,
            prev_hash: BlockHash([9; 32]),
            view: 2,
            proposer: ReplicaId(3),
            time_ms: 1_700_000_000_000,
            transactions: vec![vec![1, 2, 3], vec![], vec![4; 100]],
        }
    }

    #[test]
    fn a_summary_has_its_blocks_hash_and_holds_its_transactions() {
        let b = block();
        let s = b.summary();
        assert_eq!(s.hash(), b.hash());
        assert!(s.contains(&[1, 2, 3]) && s.contains(&[]) && s.contains(&[4; 100]));
        assert!(!s.contains(&[1, 2]));
        // Round trip through the client API's encoding.
        let bytes = postcard::to_allocvec(&s).expect("encode");
        assert_eq!(
            postcard::from_bytes::<BlockSummary>(&bytes).expect("decode"),
            s
        );
    }

    #[test]
    fn every_field_and_every_transaction_moves_the_hash() {
        let b = block();
        let h = b.hash();
        let mut changed: Vec<Block> = Vec::new();
        let mut c = b.clone();
        c.height += 1;
        changed.push(c);
        let mut c = b.clone();
        c.prev_hash.0[31] ^= 1;
        changed.push(c);
        let mut c = b.clone();
        c.view += 1;
        changed.push(c);
        let mut c = b.clone();
        c.proposer = ReplicaId(4);
        changed.push(c);
        let mut c = b.clone();
        c.time_ms += 1;
        changed.push(c);
        let mut c = b.clone();
        c.transactions[2][50] ^= 1;
        changed.push(c);
        let mut c = b.clone();
        c.transactions.swap(0, 2);
        changed.push(c);
        let mut c = b.clone();
        c.transactions.pop();
        changed.push(c);
        let mut c = b.clone();
        c.transactions.push(Vec::new());
        changed.push(c);
        for (i, c) in changed.iter().enumerate() {
            assert_ne!(c.hash(), h, "change {i}");
            assert_eq!(c.summary().hash(), c.hash(), "change {i}");
        }
        // A summary with a transaction hash replaced is another block.
        let mut s = b.summary();
        s.tx_hashes[0] = TxHash::of(&[1, 2, 4]);
        assert_ne!(s.hash(), h);
    }
}
