//! The validator's core: a PBFT [`Replica`], the [`Ledger`] state transition, the stateless
//! [`Verifier`] and the redb [`Store`], glued without I/O of its own beyond the store.
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
pub mod governance;
pub mod host;
pub mod wire;

use shoji_consensus::{
    Action, Config, PayloadCheck, PersistDelta, PersistedState, Replica, ReplicaId, TimerKind,
    ValidatorSet,
};
use shoji_ledger::{Ledger, LedgerConfig, Rejection, TxOutcome};
use shoji_primitives::encoding::EncodingError;
use shoji_primitives::governance::{GovernanceTx, MAX_GOVERNANCE_BYTES};
use shoji_primitives::tx::{Transaction, TxId, MAX_TX_BYTES};
use shoji_store::{CommittedBlock, Store, StoreError};
use shoji_verifier::{TxError, Verifier};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use wire::{PeerMessage, StateTransferAnswer};

/// What every validator agrees on before the first block.
#[derive(Clone, Debug)]
pub struct Genesis {
    /// The first epoch's validators.
    pub validators: ValidatorSet,
    /// Auditor, issuers, governance administrators and anchor window (its `network_id`,
    /// `validators`, `checkpoint_interval` and `window_size` are ignored:
    /// [`Genesis::ledger_config`] sets them from the rest of the genesis).
    pub ledger: LedgerConfig,
    /// Consensus parameters every validator must share.
    pub consensus: ConsensusParams,
    /// The transfer circuit's verifying key, pinned: blake3 of its compressed encoding
    /// ([`shoji_params::verifying_key_hash`]). Validators load no other.
    pub verifying_key_hash: [u8; 32],
    /// Marked insecure (development keys or parameters): the only kind of network that may
    /// pin the development verifying key, whose trapdoor is public.
    pub insecure: bool,
}

impl Genesis {
    /// A genesis with the default consensus parameters, on the development parameters and
    /// therefore marked insecure.
    pub fn new(validators: ValidatorSet, ledger: LedgerConfig) -> Genesis {
        Genesis {
            validators,
            ledger,
            consensus: ConsensusParams::default(),
            verifying_key_hash: shoji_params::dev_verifying_key_hash(),
            insecure: true,
        }
    }

    /// Refuses a genesis that pins the development verifying key without being marked
    /// insecure: anyone can forge proofs under that key.
    pub fn check_parameters(&self) -> Result<(), String> {
        if self.verifying_key_hash == shoji_params::dev_verifying_key_hash() && !self.insecure {
            return Err("this genesis pins the development verifying key, whose trapdoor anyone can recompute, and is not marked insecure: run a ceremony (shoji-ceremony) and create the network with `shoji-node init --params DIR`, or mark a test network `insecure`".into());
        }
        Ok(())
    }

    /// The ledger's configuration, identified by this genesis's hash (which governance
    /// approvals sign, so they are worthless on any other network).
    pub fn ledger_config(&self) -> LedgerConfig {
        LedgerConfig {
            network_id: self.hash(),
            validators: self
                .validators
                .members
                .iter()
                .map(|(id, key)| (id.0, key.to_bytes()))
                .collect(),
            checkpoint_interval: self.consensus.checkpoint_interval,
            window_size: self.consensus.window_size,
            ..self.ledger.clone()
        }
    }

    /// blake3 over a canonical encoding of everything validators must agree on (validator ids
    /// and keys, ledger configuration, governance administrators, consensus parameters; not
    /// the addresses, which may change). The store records it and refuses to open for another
    /// genesis; it is also the network's identifier.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"shoji.genesis.v3");
        h.update(&self.verifying_key_hash);
        h.update(&[u8::from(self.insecure)]);
        h.update(&self.validators.epoch.to_le_bytes());
        h.update(&(self.validators.members.len() as u64).to_le_bytes());
        for (id, key) in &self.validators.members {
            h.update(&id.0.to_le_bytes());
            h.update(key.as_bytes());
        }
        h.update(&(self.ledger.anchor_window_blocks as u64).to_le_bytes());
        h.update(&self.ledger.auditor.to_bytes());
        h.update(&(self.ledger.issuers.len() as u64).to_le_bytes());
        for (key, assets) in &self.ledger.issuers {
            h.update(key);
            h.update(&(assets.len() as u64).to_le_bytes());
            for a in assets {
                h.update(&a.0.to_le_bytes());
            }
        }
        let g = &self.ledger.governance;
        h.update(&(g.threshold as u64).to_le_bytes());
        h.update(&(g.admins.len() as u64).to_le_bytes());
        for a in &g.admins {
            h.update(a);
        }
        let c = &self.consensus;
        for v in [
            c.checkpoint_interval,
            c.window_size,
            c.max_batch_txs as u64,
            c.max_clock_skew_ms,
        ] {
            h.update(&v.to_le_bytes());
        }
        *h.finalize().as_bytes()
    }

    /// The replica configuration for this genesis with a validator's local `tuning`.
    pub fn consensus_config(&self, tuning: &Tuning) -> Config {
        let mut c = Config::new(self.validators.clone().on_network(self.hash()));
        c.checkpoint_interval = self.consensus.checkpoint_interval;
        c.window_size = self.consensus.window_size;
        c.max_batch_txs = self.consensus.max_batch_txs;
        c.max_clock_skew_ms = self.consensus.max_clock_skew_ms;
        c.view_timeout_ms = tuning.view_timeout_ms;
        c.view_timeout_ms_max = tuning.view_timeout_ms_max;
        c.retransmit_ms = tuning.retransmit_ms;
        c.state_transfer_timeout_ms = tuning.state_transfer_timeout_ms;
        c.max_blocks_in_flight = tuning.max_blocks_in_flight;
        c.pipeline_min_batch = tuning.pipeline_min_batch;
        c.max_state_transfer_blocks = c.max_state_transfer_blocks.min(wire::MAX_TRANSFER_BLOCKS);
        c.max_tx_bytes = MAX_PAYLOAD_BYTES;
        c.max_block_bytes = MAX_BLOCK_BYTES;
        // The consensus message travels in a peer frame behind a one-byte tag.
        c.max_message_bytes = wire::MAX_PEER_MESSAGE_BYTES - 1;
        c.payload_check = PayloadCheck(transaction_shape);
        c
    }
}

/// Consensus parameters that are part of the genesis (validators that disagree on them do not
/// agree on checkpoints or on which blocks are valid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A validator's local settings: they need not agree across validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        }
    }
}

/// A validator's view of the network, for the status API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// This validator's id.
    pub id: ReplicaId,
    /// Last committed (and executed) height.
    pub height: u64,
    /// Hash of the block at `height` (the genesis hash at 0).
    pub last_block_hash: [u8; 32],
    /// The ledger's state root after `height`.
    pub state_root: [u8; 32],
    /// The ledger's block time (Unix ms).
    pub time_ms: u64,
    /// Current view (the view being changed to while a view change runs).
    pub view: u64,
    /// Whether a view change is in progress.
    pub view_changing: bool,
    /// The leader of `view`.
    pub leader: ReplicaId,
    /// Height of the last stable checkpoint.
    pub stable_checkpoint: u64,
    /// Client transactions waiting to be ordered.
    pub pending: usize,
    /// Validator-set epoch.
    pub epoch: u64,
    /// The validators' ids.
    pub validators: Vec<ReplicaId>,
    /// Governance transactions enacted (the next must carry this sequence number).
    pub governance_seq: u64,
    /// Proof verification since the validator started.
    pub verification: VerificationStats,
}

/// Counts of this validator's proof verification since it started: how well verification is
/// batched, for an operator and for the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerificationStats {
    /// Batches verified (a batch with a bad proof is split, and still counts once).
    pub batches: u64,
    /// Transactions verified (each one counts once per verification).
    pub proofs: u64,
    /// Of `proofs`, those verified ahead of need: carried by a peer's message (relayed or
    /// proposed) and verified in a batch that ran for other transactions.
    pub ahead: u64,
}

/// Something the host must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to one validator.
    Send {
        /// Recipient.
        to: ReplicaId,
        /// An encoded peer message ([`wire`]).
        bytes: Vec<u8>,
    },
    /// Send these bytes to every other validator.
    Broadcast {
        /// An encoded peer message ([`wire`]).
        bytes: Vec<u8>,
    },
    /// Call [`NodeCore::on_timer`] with `kind` after `after_ms` (replacing a running one).
    SetTimer {
        /// Which timer.
        kind: TimerKind,
        /// Delay.
        after_ms: u64,
    },
    /// Stop the timer `kind`.
    CancelTimer {
        /// Which timer.
        kind: TimerKind,
    },
    /// A new validator-set epoch began: broadcast to these validators from now on.
    EpochChanged {
        /// The epoch.
        epoch: u64,
        /// Its validators.
        validators: Vec<ReplicaId>,
    },
    /// Governance decided the next epoch's validators (it begins at a later checkpoint
    /// boundary): the transport should accept and reach them from now on, so that a joining
    /// validator can catch up before its epoch.
    ValidatorsDecided {
        /// The next epoch's validators and their keys.
        validators: BTreeMap<ReplicaId, [u8; 32]>,
        /// Addresses of validators added by governance (the others' are in the genesis).
        addresses: BTreeMap<ReplicaId, String>,
    },
    /// A client's admitted transaction will not be ordered by this validator (its queue refused
    /// it, or it waited too long): tell whoever waits for `id`.
    Dropped {
        /// The transaction's id.
        id: TxId,
        /// Why.
        reason: String,
    },
    /// A block was committed, applied and stored.
    Committed {
        /// Its height.
        height: u64,
        /// The ledger's state root after it.
        state_root: [u8; 32],
        /// What happened to each decodable transaction, in block order, under the id its
        /// client waits on ([`request_id`]).
        outcomes: Vec<(TxId, TxOutcome)>,
    },
}

/// Failures of the node itself (not of the input it was given).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Governance removed this validator: it is not in the current validator set.
    #[error(
        "this validator is not a member of validator-set epoch {epoch} (governance removed it)"
    )]
    Retired {
        /// The current epoch.
        epoch: u64,
    },
    /// Storage failed; the node must stop rather than vote without persisting.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The consensus configuration or key is invalid.
    #[error("consensus: {0}")]
    Consensus(#[from] shoji_consensus::Error),
    /// The stored ledger could not be restored.
    #[error("restoring the ledger: {0}")]
    Restore(String),
}

/// Why a submitted transaction was refused before ordering.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] EncodingError),
    /// Stateless validation failed.
    #[error("invalid transaction: {0}")]
    Invalid(#[from] TxError),
    /// A nullifier is already spent.
    #[error("double spend: a nullifier of this transaction is already spent")]
    DoubleSpend,
    /// The anchor is not a recent root.
    #[error("unknown or expired anchor: sync and rebuild the transaction")]
    UnknownAnchor,
    /// Another stateful check of block execution would fail (issuer, auditor, expiry).
    #[error("{0}")]
    Stateful(Rejection),
    /// This validator was removed from the validator set: submit to another.
    #[error("this validator no longer orders transactions (removed from the validator set)")]
    Retired,
    /// This validator is catching up to join the validator set: submit to another.
    #[error("this validator does not order transactions yet (it is catching up to join the validator set)")]
    Learning,
}

/// Bound on the cache of stateless results.
const VERIFIED_CACHE_MAX: usize = 100_000;

/// Most transactions held for verification ahead of need (see [`NodeCore::verify_now`]).
const AHEAD_MAX: usize = 1_024;

/// Most decoded transactions kept for their block (see [`NodeCore::decoded`]).
const DECODED_MAX: usize = 4_096;

/// Size up to which a verification that must happen now is filled with transactions held
/// ahead. Per proof, a batch of 64 costs about a fifth less than one of 16 (BENCHMARKS.md,
/// "verification by batch size"); larger batches gain little more and hold the caller longer.
const AHEAD_BATCH: usize = 64;

/// State-transfer answers served to one peer per second, at most.
const TRANSFER_ANSWERS_PER_SECOND: u32 = 8;

/// One validator's state machine with its storage.
pub struct NodeCore {
    replica: Replica,
    ledger: Ledger,
    verifier: Arc<Verifier>,
    store: Store,
    /// Stateless results by transaction id, so a transaction verified at admission is not
    /// verified again when its block commits.
    verified: BTreeMap<TxId, Result<(), TxError>>,
    /// Transactions seen in peer messages (relayed or proposed) and not verified yet, oldest
    /// first, with their ids as a set: they will be needed when their block commits, and are
    /// verified before that in the batches that must run anyway (see [`NodeCore::verify_now`]).
    ahead: VecDeque<(TxId, Transaction)>,
    ahead_ids: BTreeSet<TxId>,
    /// Transactions decoded at admission or from a peer's message, by id, until their block
    /// executes: decoding a transaction's Jubjub points (square roots) costs more than the
    /// rest of its handling outside the proof.
    decoded: BTreeMap<TxId, Transaction>,
    verification: VerificationStats,
    /// State-transfer answers served per peer: (start of the current second, answers in it).
    served: BTreeMap<ReplicaId, (u64, u32)>,
    /// Rotation over the other validators for [`NodeCore::sync_probe`].
    probe_next: usize,
    /// Peer messages that did not decode.
    rejected_peer_messages: u64,
    /// Benchmark mode: order opaque payloads (see [`NodeCore::set_ordering_only`]).
    ordering_only: bool,
    /// What a new epoch's replica is built from.
    genesis: Genesis,
    key: ed25519_dalek_key::SigningKey,
    tuning: Tuning,
    /// Set once governance removed this validator (see [`NodeCore::is_retired`]).
    retired: bool,
    /// The replica's (view, view change running) when last looked at, to log transitions.
    seen_view: (u64, bool),
    /// Persist deltas not written yet: [`NodeCore::sync`] writes them, in one transaction,
    /// before any output they justify leaves this type.
    unsynced: Vec<PersistDelta>,
}

/// The validator set of `epoch` (counted from genesis's) with these members.
fn validator_set(
    genesis: &Genesis,
    epoch: u64,
    members: &shoji_ledger::Validators,
) -> Result<ValidatorSet, NodeError> {
    let members = members
        .iter()
        .map(|(id, key)| {
            shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(key)
                .map(|k| (ReplicaId(*id), k))
                .map_err(|e| NodeError::Restore(format!("validator {id} key: {e}")))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(ValidatorSet::new(genesis.validators.epoch + epoch, members)?.on_network(genesis.hash()))
}

/// The replica configuration of the ledger's current epoch: genesis's, or the validators
/// governance installed, starting from the checkpoint at the last block of the previous
/// epoch. That checkpoint carries no signatures: every validator derives it alike from its
/// own executed chain (height, block hash, state root), and a replica only compares its
/// epoch's start with others', never verifies it.
fn epoch_config(
    genesis: &Genesis,
    tuning: &Tuning,
    ledger: &Ledger,
    store: &Store,
) -> Result<Config, NodeError> {
    let mut config = genesis.consensus_config(tuning);
    let p = ledger.policy();
    if p.epoch == 0 {
        return Ok(config);
    }
    let h = p.epoch_start;
    let (block, _) = store.block(h)?.ok_or_else(|| {
        NodeError::Restore(format!(
            "block {h}, where epoch {} began, is missing",
            p.epoch
        ))
    })?;
    let state_root = store
        .state_root(h)?
        .ok_or_else(|| NodeError::Restore(format!("the state root of block {h} is missing")))?;
    config.validators = validator_set(genesis, p.epoch, &p.validators)?;
    config.start_checkpoint = shoji_consensus::CheckpointCertificate {
        height: h,
        block_hash: block.hash(),
        state_root,
        signatures: Vec::new(),
    };
    Ok(config)
}

/// Largest opaque payload an ordering-only node accepts.
pub const MAX_OPAQUE_BYTES: usize = 1024;

/// Largest payload a validator orders: the largest transaction kind (a governance transaction
/// with every approval), nothing larger.
pub const MAX_PAYLOAD_BYTES: usize = if MAX_TX_BYTES > MAX_GOVERNANCE_BYTES {
    MAX_TX_BYTES
} else {
    MAX_GOVERNANCE_BYTES
};

/// Most transaction bytes in one block: a quarter of the transport's 4 MiB frame, so a
/// pre-prepare, and a NEW-VIEW that re-proposes it, always travel.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// The payload rule of a validator ([`Config::payload_check`]): the exact shape of a shielded
/// transaction kind ([`Transaction::check_layout`]), or a governance transaction that decodes.
/// Every validator applies it to every proposed block alike; a block carrying anything else
/// is refused.
pub fn transaction_shape(bytes: &[u8]) -> Result<(), &'static str> {
    if GovernanceTx::is_governance(bytes) {
        GovernanceTx::from_bytes(bytes)
            .map(|_| ())
            .map_err(|_| "malformed governance transaction")
    } else {
        Transaction::check_layout(bytes)
            .map(|_| ())
            .map_err(|_| "not a transaction of a known kind and length")
    }
}

/// The payload rule in ordering-only mode ([`NodeCore::set_ordering_only`]): a transaction,
/// or an opaque payload of at most [`MAX_OPAQUE_BYTES`].
pub fn transaction_or_opaque_shape(bytes: &[u8]) -> Result<(), &'static str> {
    match bytes.len() <= MAX_OPAQUE_BYTES {
        true => Ok(()),
        false => transaction_shape(bytes),
    }
}

/// The id a client waits on for `bytes`: the [`Transaction::auth_id`] of a shielded
/// transaction (its exact bytes: a rerandomized twin is another request), the id of a governance
/// transaction, blake3 of the bytes for an opaque payload (ordering-only mode), `None` if
/// the bytes are not a transaction.
pub fn request_id(bytes: &[u8], ordering_only: bool) -> Option<TxId> {
    if GovernanceTx::is_governance(bytes) {
        GovernanceTx::from_bytes(bytes).ok().map(|g| g.id())
    } else if let Ok(tx) = Transaction::from_bytes(bytes) {
        Some(tx.auth_id())
    } else if ordering_only && bytes.len() <= MAX_OPAQUE_BYTES {
        Some(TxId(*blake3::hash(bytes).as_bytes()))
    } else {
        None
    }
}

impl NodeCore {
    /// Opens the node on `store` (fresh or after a restart) with the default [`Tuning`] and
    /// returns the actions of [`Replica::start`].
    pub fn open(
        store: Store,
        genesis: &Genesis,
        key: ed25519_dalek_key::SigningKey,
        verifier: Arc<Verifier>,
    ) -> Result<(Self, Vec<Output>), NodeError> {
        Self::open_with(store, genesis, key, verifier, &Tuning::default())
    }

    /// Opens the node on `store` with a validator's local `tuning`. The store is tied to
    /// `genesis` on first use and refused for any other ([`Store::check_genesis`]).
    pub fn open_with(
        store: Store,
        genesis: &Genesis,
        key: ed25519_dalek_key::SigningKey,
        verifier: Arc<Verifier>,
        tuning: &Tuning,
    ) -> Result<(Self, Vec<Output>), NodeError> {
        Self::open_inner(store, genesis, key, None, verifier, tuning)
    }

    /// Opens a validator that governance adds (or has added) as replica `id`: while its key is
    /// not in the ledger's current validator set it runs as a learner
    /// ([`Replica::new_learner`]), catching up by state transfer and refusing client
    /// transactions, and it becomes a member at the boundary of the epoch that holds it. A
    /// key of the genesis set is never a learner: one no longer in the set was removed and is
    /// refused as by [`NodeCore::open_with`].
    pub fn open_joining(
        store: Store,
        genesis: &Genesis,
        key: ed25519_dalek_key::SigningKey,
        id: ReplicaId,
        verifier: Arc<Verifier>,
        tuning: &Tuning,
    ) -> Result<(Self, Vec<Output>), NodeError> {
        Self::open_inner(store, genesis, key, Some(id), verifier, tuning)
    }

    fn open_inner(
        store: Store,
        genesis: &Genesis,
        key: ed25519_dalek_key::SigningKey,
        joining: Option<ReplicaId>,
        verifier: Arc<Verifier>,
        tuning: &Tuning,
    ) -> Result<(Self, Vec<Output>), NodeError> {
        store.check_genesis(&genesis.hash())?;
        let (ledger, persisted) = match store.load()? {
            Some(rec) => (
                Ledger::restore(genesis.ledger_config(), rec.ledger)
                    .map_err(|e| NodeError::Restore(e.to_string()))?,
                Some(rec.consensus),
            ),
            None => (Ledger::genesis(genesis.ledger_config()), None),
        };
        let config = epoch_config(genesis, tuning, &ledger, &store)?;
        let member = config.validators.id_of(&key.verifying_key()).is_some();
        let founder = genesis.validators.id_of(&key.verifying_key()).is_some();
        let learner = match (member, joining) {
            (true, _) => None,
            (false, Some(id)) if !founder => Some(id),
            (false, _) => {
                return Err(NodeError::Retired {
                    epoch: config.validators.epoch,
                })
            }
        };
        // A consensus state from before the epoch began (a crash between the epoch's first
        // block and the switch) belongs to the old validator set: start the epoch afresh.
        let start = &config.start_checkpoint;
        let persisted = persisted.filter(|ps| {
            ps.stable_checkpoint.height > start.height || ps.stable_checkpoint == *start
        });
        let mut replica = match learner {
            None => Replica::new(config, key.clone(), persisted)?,
            Some(id) => {
                tracing::info!(
                    id = id.0,
                    height = ledger.height(),
                    "not in the validator set yet: following the chain as a learner"
                );
                Replica::new_learner(config, key.clone(), id, persisted)?
            }
        };
        // A change decided before a restart still closes this epoch at its boundary.
        if let Some((last, next)) = &ledger.policy().next_validators {
            replica.schedule_epoch_change(
                *last,
                validator_set(genesis, ledger.policy().epoch + 1, next)?,
            );
        }
        let mut node = Self {
            replica,
            ledger,
            verifier,
            store,
            verified: BTreeMap::new(),
            ahead: VecDeque::new(),
            ahead_ids: BTreeSet::new(),
            decoded: BTreeMap::new(),
            verification: VerificationStats::default(),
            served: BTreeMap::new(),
            probe_next: 0,
            rejected_peer_messages: 0,
            ordering_only: false,
            genesis: genesis.clone(),
            key,
            tuning: *tuning,
            retired: false,
            seen_view: (0, false),
            unsynced: Vec::new(),
        };
        node.seen_view = (node.replica.view(), node.replica.is_view_changing());
        let actions = node.replica.start();
        let out = node.process(actions)?;
        Ok((node, out))
    }

    /// Addresses of the validators governance added (replica id → `IP:port`).
    pub fn added_validator_addresses(&self) -> BTreeMap<ReplicaId, String> {
        self.ledger
            .policy()
            .addresses
            .iter()
            .map(|(id, a)| (ReplicaId(*id), a.clone()))
            .collect()
    }

    /// The validators the transport should know: the current epoch's and, when a change is
    /// decided, the next one's (replica id → key).
    pub fn known_validators(&self) -> BTreeMap<ReplicaId, [u8; 32]> {
        let p = self.ledger.policy();
        let mut all: BTreeMap<ReplicaId, [u8; 32]> = p
            .validators
            .iter()
            .map(|(id, k)| (ReplicaId(*id), *k))
            .collect();
        if let Some((_, next)) = &p.next_validators {
            all.extend(next.iter().map(|(id, k)| (ReplicaId(*id), *k)));
        }
        all
    }

    /// Whether this validator is still catching up to the epoch that adds it (see
    /// [`NodeCore::open_joining`]).
    pub fn is_learner(&self) -> bool {
        self.replica.is_learner()
    }

    /// Whether this validator left the validator set (by governance) while running: it keeps
    /// serving reads and committed blocks but no longer orders.
    pub fn is_retired(&self) -> bool {
        self.retired
    }

    /// Starts the epoch the last executed block opened: a new replica for its validators
    /// from the checkpoint at that block, with the transactions still waiting to be ordered;
    /// or, if this validator is not among them, retires.
    fn switch_epoch(&mut self) -> Result<(Vec<Output>, Vec<Action>), NodeError> {
        let mut config = epoch_config(&self.genesis, &self.tuning, &self.ledger, &self.store)?;
        config.payload_check = self.payload_check();
        let epoch = config.validators.epoch;
        let members: Vec<ReplicaId> = config.validators.members.keys().copied().collect();
        let start = config.start_checkpoint.clone();
        let fresh = PersistedState {
            stable_checkpoint: start.clone(),
            last_committed: start.height,
            last_committed_hash: start.block_hash,
            ..PersistedState::genesis()
        };
        self.store.store_consensus_state(&fresh)?;
        let announce = Output::EpochChanged {
            epoch,
            validators: members.clone(),
        };
        let member = config.validators.id_of(&self.key.verifying_key()).is_some();
        if !member && self.replica.is_learner() {
            // Still catching up to the epoch that adds it.
            let id = self.replica.id();
            self.replica = Replica::new_learner(config, self.key.clone(), id, None)?;
            return Ok((vec![announce], self.replica.start()));
        }
        if !member {
            tracing::warn!(
                epoch,
                height = start.height,
                "this validator is not in the new validator set: it stops ordering"
            );
            self.retired = true;
            return Ok((vec![announce], Vec::new()));
        }
        if self.replica.is_learner() {
            tracing::info!(epoch, height = start.height, "joined the validator set");
        }
        let waiting = self.replica.pending_requests();
        self.replica = Replica::new(config, self.key.clone(), None)?;
        self.seen_view = (self.replica.view(), self.replica.is_view_changing());
        tracing::info!(
            epoch,
            height = start.height,
            validators = ?members.iter().map(|r| r.0).collect::<Vec<_>>(),
            "new validator-set epoch"
        );
        let mut actions = self.replica.start();
        if !waiting.is_empty() {
            actions.extend(self.replica.on_client_requests(waiting));
        }
        Ok((vec![announce], actions))
    }

    /// Benchmark mode, for measuring consensus capacity alone: client payloads that are not
    /// transactions (up to [`MAX_OPAQUE_BYTES`]) are ordered like transactions, and reported
    /// committed (as not applied: they change no state) when their block commits. Real
    /// transactions are handled as always. Never for a network that carries value: it lets any
    /// client fill blocks.
    pub fn set_ordering_only(&mut self, on: bool) {
        self.ordering_only = on;
        self.replica.set_payload_check(self.payload_check());
    }

    /// The payload rule of this node's mode.
    fn payload_check(&self) -> PayloadCheck {
        match self.ordering_only {
            true => PayloadCheck(transaction_or_opaque_shape),
            false => PayloadCheck(transaction_shape),
        }
    }

    /// Whether [`NodeCore::set_ordering_only`] is on.
    pub fn ordering_only(&self) -> bool {
        self.ordering_only
    }

    /// This validator's id.
    pub fn id(&self) -> ReplicaId {
        self.replica.id()
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The store (for serving reads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current wall-clock time in Unix milliseconds; the host calls it before each input.
    /// The replica stamps it on the blocks it proposes and refuses proposed blocks too far
    /// ahead of it (see [`Replica::set_now_ms`]).
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.replica.set_now_ms(now_ms);
    }

    /// The replica (read-only: view, leader, checkpoints, rejection counters).
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// Peer messages refused by the envelope decoder since start (consensus messages that
    /// decode badly are counted by the replica, [`Replica::rejected_count`]).
    pub fn rejected_peer_messages(&self) -> u64 {
        self.rejected_peer_messages
    }

    /// Where this validator stands.
    pub fn status(&self) -> NodeStatus {
        let (height, hash) = self.replica.last_committed();
        let validators = &self.replica.config().validators;
        NodeStatus {
            id: self.id(),
            height,
            last_block_hash: hash.0,
            state_root: self.ledger.state_root(),
            time_ms: self.ledger.time_ms(),
            view: self.replica.view(),
            view_changing: self.replica.is_view_changing(),
            leader: self.replica.leader(),
            stable_checkpoint: self.replica.stable_checkpoint().height,
            pending: self.replica.pending_len(),
            epoch: validators.epoch,
            validators: validators.members.keys().copied().collect(),
            governance_seq: self.ledger.policy().seq,
            verification: self.verification,
        }
    }

    /// A message from validator `from` (the transport's authenticated sender), in the
    /// [`wire`] envelope. Malformed or invalid messages are counted and otherwise ignored.
    pub fn on_peer_bytes(
        &mut self,
        from: ReplicaId,
        bytes: &[u8],
    ) -> Result<Vec<Output>, NodeError> {
        let out = self.on_peer_bytes_unsynced(from, bytes)?;
        self.sync()?;
        Ok(out)
    }

    /// Several peer messages, each as by [`NodeCore::on_peer_bytes`], with one durable write
    /// for all the consensus state they change (group commit: one fsync rather than one per
    /// message). The outputs are returned only once that write is done.
    pub fn on_peer_messages(
        &mut self,
        messages: Vec<(ReplicaId, Vec<u8>)>,
    ) -> Result<Vec<Output>, NodeError> {
        let mut out = Vec::new();
        for (from, bytes) in messages {
            out.extend(self.on_peer_bytes_unsynced(from, &bytes)?);
        }
        self.sync()?;
        Ok(out)
    }

    fn on_peer_bytes_unsynced(
        &mut self,
        from: ReplicaId,
        bytes: &[u8],
    ) -> Result<Vec<Output>, NodeError> {
        match wire::decode(bytes) {
            Ok(PeerMessage::Consensus(_)) if self.retired => Ok(Vec::new()),
            Ok(PeerMessage::Consensus(msg)) => {
                self.hold_for_verification(msg);
                let actions = self.replica.on_message_bytes(from, msg);
                self.process_unsynced(actions)
            }
            Ok(PeerMessage::TransferRequest { from_height }) => {
                Ok(self.serve_transfer(from, from_height))
            }
            Ok(PeerMessage::TransferAnswer(answer)) => self.on_transfer_answer(from, answer),
            Err(e) => {
                self.rejected_peer_messages += 1;
                tracing::debug!(from = from.0, error = %e, "peer message refused");
                Ok(Vec::new())
            }
        }
    }

    /// Asks the next validator in rotation for the committed blocks above our height. The host
    /// calls it at start and periodically: it is how a validator that restarts after missing
    /// blocks, while the others are idle or have garbage-collected the consensus log that would
    /// tell it so, learns of them. An answer with blocks leads to further requests until the
    /// answering validator's height is reached.
    pub fn sync_probe(&mut self) -> Vec<Output> {
        if self.retired {
            return Vec::new();
        }
        let me = self.id();
        let others: Vec<ReplicaId> = self
            .replica
            .config()
            .validators
            .members
            .keys()
            .copied()
            .filter(|r| *r != me)
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let to = others[self.probe_next % others.len()];
        self.probe_next = self.probe_next.wrapping_add(1);
        vec![Output::Send {
            to,
            bytes: wire::transfer_request(self.ledger.height() + 1),
        }]
    }

    /// Answers a state-transfer request with committed blocks from the store: at most
    /// [`wire::MAX_TRANSFER_BLOCKS`] and [`wire::TRANSFER_BYTE_BUDGET`] bytes of them, and at
    /// most [`TRANSFER_ANSWERS_PER_SECOND`] answers per peer.
    fn serve_transfer(&mut self, to: ReplicaId, from_height: u64) -> Vec<Output> {
        if to == self.id() || !self.replica.config().validators.contains(to) {
            return Vec::new();
        }
        let now = self.replica.now_ms();
        let (start, count) = self.served.entry(to).or_insert((now, 0));
        if now.saturating_sub(*start) >= 1_000 || now < *start {
            *start = now;
            *count = 0;
        }
        if *count >= TRANSFER_ANSWERS_PER_SECOND {
            tracing::debug!(to = to.0, "state-transfer request over the rate limit");
            return Vec::new();
        }
        *count += 1;
        let tip = self.ledger.height();
        let max = wire::MAX_TRANSFER_BLOCKS.min(self.replica.config().max_state_transfer_blocks);
        let mut blocks = Vec::new();
        let mut size = 0usize;
        let mut h = from_height.max(1);
        while h <= tip && blocks.len() < max {
            match self.store.block(h) {
                Ok(Some(entry)) => {
                    let len = postcard::to_allocvec(&entry).map_or(usize::MAX, |b| b.len());
                    if !blocks.is_empty() && size.saturating_add(len) > wire::TRANSFER_BYTE_BUDGET {
                        break;
                    }
                    size = size.saturating_add(len);
                    blocks.push(entry);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(height = h, error = %e, "cannot read a block to serve");
                    break;
                }
            }
            h += 1;
        }
        if !blocks.is_empty() {
            tracing::debug!(
                to = to.0,
                from_height,
                blocks = blocks.len(),
                "serving state transfer"
            );
        }
        let stable = self.replica.stable_checkpoint();
        let stable = (stable.height > 0 && !stable.signatures.is_empty()).then(|| stable.clone());
        vec![Output::Send {
            to,
            bytes: wire::transfer_answer(&StateTransferAnswer {
                tip,
                blocks,
                stable,
            }),
        }]
    }

    /// Blocks from a state-transfer answer: the replica checks each (chain, certificate) and
    /// commits it, and they are executed like any committed block. While the answer made
    /// progress and the sender is further ahead, ask it for more.
    fn on_transfer_answer(
        &mut self,
        from: ReplicaId,
        answer: StateTransferAnswer,
    ) -> Result<Vec<Output>, NodeError> {
        let before = self.ledger.height();
        let count = answer.blocks.len();
        let actions = self.replica.on_state_transfer(from, answer.blocks);
        let mut out = self.process(actions)?;
        // The sender's stable checkpoint, as the CHECKPOINT votes it is made of: the replica
        // checks each signature and adopts it like any quorum of votes.
        if let Some(cert) = answer.stable {
            let vote = shoji_consensus::CheckpointVote {
                height: cert.height,
                block_hash: cert.block_hash,
                state_root: cert.state_root,
            };
            for (signer, signature) in cert.signatures {
                let sm = shoji_consensus::SignedMessage {
                    from: signer,
                    message: shoji_consensus::Message::Checkpoint(vote),
                    signature,
                };
                let actions = self.replica.on_message(from, sm);
                out.extend(self.process(actions)?);
            }
        }
        let after = self.ledger.height();
        if after > before {
            tracing::info!(
                from = from.0,
                blocks = after - before,
                height = after,
                tip = answer.tip,
                "caught up by state transfer"
            );
        } else if count > 0 {
            tracing::debug!(
                from = from.0,
                count,
                "state-transfer answer made no progress"
            );
        }
        let asking = out.iter().any(|o| match o {
            Output::Send { bytes, .. } => wire::is_transfer_request(bytes),
            _ => false,
        });
        if after > before && after < answer.tip && !asking {
            out.push(Output::Send {
                to: from,
                bytes: wire::transfer_request(after + 1),
            });
        }
        Ok(out)
    }

    /// A timer fired.
    pub fn on_timer(&mut self, kind: TimerKind) -> Result<Vec<Output>, NodeError> {
        if self.retired {
            return Ok(Vec::new());
        }
        let actions = self.replica.on_timer(kind);
        self.process(actions)
    }

    /// A client's transaction: decoded, checked statelessly and against the current state, then
    /// handed to consensus. A governance transaction is checked for its sequence number and
    /// approvals.
    pub fn submit(
        &mut self,
        bytes: Vec<u8>,
    ) -> Result<Result<Vec<Output>, SubmitError>, NodeError> {
        let (out, mut results) = self.submit_batch(vec![bytes])?;
        match results.pop() {
            Some(Err(e)) => Ok(Err(e)),
            _ => Ok(Ok(out)),
        }
    }

    /// Several clients' transactions at once, each admitted as by [`NodeCore::submit`]: the
    /// proofs not verified before are verified together in one batch (on every core), and the
    /// admitted transactions go to consensus together (relayed in one signed message). Returns
    /// the outputs and each transaction's admission, in order: the id its commit will be
    /// reported under ([`Output::Committed`]), or why it was refused.
    #[allow(clippy::type_complexity)]
    pub fn submit_batch(
        &mut self,
        batch: Vec<Vec<u8>>,
    ) -> Result<(Vec<Output>, Vec<Result<TxId, SubmitError>>), NodeError> {
        enum Entry {
            Shielded(Box<Transaction>, TxId),
            Other(TxId),
        }
        if self.retired || self.replica.is_learner() {
            let e = match self.retired {
                true => SubmitError::Retired,
                false => SubmitError::Learning,
            };
            return Ok((Vec::new(), batch.iter().map(|_| Err(e.clone())).collect()));
        }
        let mut results: Vec<Result<TxId, SubmitError>> = Vec::with_capacity(batch.len());
        let mut entries = Vec::with_capacity(batch.len());
        for bytes in &batch {
            let entry = if GovernanceTx::is_governance(bytes) {
                match GovernanceTx::from_bytes(bytes) {
                    Ok(g) => self
                        .ledger
                        .admissible_governance(&g)
                        .map(|()| Entry::Other(g.id()))
                        .map_err(SubmitError::Stateful),
                    Err(e) => Err(e.into()),
                }
            } else {
                // The epk subgroup check is left to the proof (ARCHITECTURE departure 21); a
                // refused proof is explained below by strict decoding.
                match Transaction::from_bytes_proof_bound(bytes) {
                    Ok(tx) => {
                        let id = tx.auth_id();
                        self.keep_decoded(id, tx);
                        Ok(Entry::Shielded(Box::new(tx), id))
                    }
                    Err(_) if self.ordering_only && bytes.len() <= MAX_OPAQUE_BYTES => {
                        Ok(Entry::Other(TxId(*blake3::hash(bytes).as_bytes())))
                    }
                    Err(e) => Err(e.into()),
                }
            };
            match entry {
                Ok(e) => {
                    results.push(Ok(match &e {
                        Entry::Shielded(_, id) | Entry::Other(id) => *id,
                    }));
                    entries.push(Some(e));
                }
                Err(e) => {
                    entries.push(None);
                    results.push(Err(e));
                }
            }
        }
        // Stateless checks of the shielded transactions not seen before, as one batch.
        let (unseen_ids, unseen): (Vec<TxId>, Vec<Transaction>) = entries
            .iter()
            .filter_map(|e| match e {
                Some(Entry::Shielded(tx, id)) if !self.verified.contains_key(id) => {
                    Some((*id, **tx))
                }
                _ => None,
            })
            .unzip();
        if !unseen.is_empty() {
            tracing::debug!(proofs = unseen.len(), "verifying admissions");
        }
        let verdicts = self.verify_now(&unseen_ids, &unseen);
        for (id, r) in unseen_ids.into_iter().zip(verdicts) {
            self.remember(id, r);
        }
        let mut admitted = Vec::new();
        for ((bytes, entry), result) in batch.into_iter().zip(entries).zip(results.iter_mut()) {
            match entry {
                None => continue,
                Some(Entry::Other(_)) => admitted.push(bytes),
                Some(Entry::Shielded(tx, id)) => {
                    let stateless = self
                        .verified
                        .get(&id)
                        .cloned()
                        .unwrap_or(Err(TxError::Proof(
                            shoji_verifier::VerificationError::InvalidProof,
                        )));
                    // A refused proof over an `epk` outside the subgroup: say so.
                    let stateless = match stateless {
                        Err(e) => Err(match Transaction::from_bytes(&bytes) {
                            Err(strict) => SubmitError::from(strict),
                            Ok(_) => SubmitError::from(e),
                        }),
                        Ok(()) => Ok(()),
                    };
                    let admission = stateless.and_then(|()| {
                        self.ledger.admissible(&tx).map_err(|r| match r {
                            Rejection::DoubleSpend => SubmitError::DoubleSpend,
                            Rejection::UnknownAnchor => SubmitError::UnknownAnchor,
                            r => SubmitError::Stateful(r),
                        })
                    });
                    match admission {
                        Ok(()) => admitted.push(bytes),
                        Err(e) => *result = Err(e),
                    }
                }
            }
        }
        let out = if admitted.is_empty() {
            Vec::new()
        } else {
            let actions = self.replica.on_client_requests(admitted);
            self.process(actions)?
        };
        Ok((out, results))
    }

    /// Keeps the shielded transactions a peer's message carries (relayed to us or proposed)
    /// that were not verified yet, for [`NodeCore::verify_now`]. The message is decoded again
    /// by the replica, which alone judges it: nothing here acts on it but verification, which
    /// the transactions get anyway when their block commits.
    fn hold_for_verification(&mut self, msg: &[u8]) {
        use shoji_consensus::{Message, SignedMessage};
        if self.ordering_only || self.ahead.len() >= AHEAD_MAX {
            return;
        }
        let Ok(signed) = SignedMessage::decode(msg, self.replica.config().max_message_bytes) else {
            return;
        };
        let txs: Vec<Vec<u8>> = match signed.message {
            Message::Request(tx) => vec![tx],
            Message::Requests(txs) => txs,
            Message::PrePrepare(pp) => pp.block.transactions,
            _ => return,
        };
        for bytes in txs {
            if self.ahead.len() >= AHEAD_MAX {
                break;
            }
            // A transaction's auth id hashes its encoding: skip the ones verified or held
            // already before paying for decoding (a wrong skip only leaves the transaction to
            // be verified when its block commits).
            let likely_id = TxId(*blake3::hash(&bytes).as_bytes());
            if self.verified.contains_key(&likely_id) || self.ahead_ids.contains(&likely_id) {
                continue;
            }
            let Ok(tx) = Transaction::from_bytes_proof_bound(&bytes) else {
                continue;
            };
            let id = tx.auth_id();
            self.keep_decoded(id, tx);
            if !self.verified.contains_key(&id) && self.ahead_ids.insert(id) {
                self.ahead.push_back((id, tx));
            }
        }
    }

    /// Stateless verdicts for `txs`, which must be verified now (in order), verified in one
    /// batch filled up to [`AHEAD_BATCH`] with transactions held ahead: one batch of 64 costs
    /// less than four of 16, and the held ones would otherwise be verified in smaller batches
    /// of their own when their block commits. The held ones' verdicts are remembered. Nothing
    /// needed, nothing verified.
    fn verify_now(&mut self, ids: &[TxId], txs: &[Transaction]) -> Vec<Result<(), TxError>> {
        if txs.is_empty() {
            return Vec::new();
        }
        let mut extra: Vec<(TxId, Transaction)> = Vec::new();
        let needed: BTreeSet<&TxId> = ids.iter().collect();
        while txs.len() + extra.len() < AHEAD_BATCH {
            let Some((id, tx)) = self.ahead.pop_front() else {
                break;
            };
            self.ahead_ids.remove(&id);
            if !self.verified.contains_key(&id) && !needed.contains(&id) {
                extra.push((id, tx));
            }
        }
        let batch: Vec<Transaction> = txs
            .iter()
            .copied()
            .chain(extra.iter().map(|(_, t)| *t))
            .collect();
        tracing::debug!(needed = txs.len(), ahead = extra.len(), "verifying a batch");
        self.verification.batches += 1;
        self.verification.proofs += batch.len() as u64;
        self.verification.ahead += extra.len() as u64;
        let mut verdicts = self.verifier.verify_transactions(&batch);
        for ((id, _), r) in extra.iter().zip(verdicts.split_off(txs.len())) {
            self.remember(*id, r);
        }
        verdicts
    }

    fn keep_decoded(&mut self, id: TxId, tx: Transaction) {
        if self.decoded.len() >= DECODED_MAX {
            self.decoded.clear();
        }
        self.decoded.insert(id, tx);
    }

    /// `bytes` decoded as a shielded transaction (without the `epk` subgroup check, see
    /// [`Transaction::from_bytes_proof_bound`]), taken from [`NodeCore::decoded`] when it was
    /// decoded before. The auth id is the hash of the canonical encoding, so a kept transaction
    /// whose id is the hash of `bytes` is what decoding `bytes` would give.
    fn decode_for_block(&mut self, bytes: &[u8]) -> Option<Transaction> {
        if !self.decoded.is_empty() {
            let id = TxId(*blake3::hash(bytes).as_bytes());
            if let Some(tx) = self.decoded.remove(&id) {
                return Some(tx);
            }
        }
        Transaction::from_bytes_proof_bound(bytes).ok()
    }

    fn remember(&mut self, id: TxId, r: Result<(), TxError>) {
        if self.verified.len() >= VERIFIED_CACHE_MAX {
            self.verified.clear();
        }
        self.verified.insert(id, r);
    }

    /// Carries out the replica's actions; every delta they persist is durable when this
    /// returns (MUST rule of DESIGN §5: persisted before sent).
    fn process(&mut self, actions: Vec<Action>) -> Result<Vec<Output>, NodeError> {
        let out = self.process_unsynced(actions)?;
        self.sync()?;
        Ok(out)
    }

    /// Writes the collected persist deltas in one transaction.
    fn sync(&mut self) -> Result<(), NodeError> {
        if !self.unsynced.is_empty() {
            let deltas = std::mem::take(&mut self.unsynced);
            self.store.persist_consensus(&deltas)?;
        }
        Ok(())
    }

    /// [`NodeCore::process`] without the final [`NodeCore::sync`]: the caller must sync
    /// before any returned output leaves.
    fn process_unsynced(&mut self, actions: Vec<Action>) -> Result<Vec<Output>, NodeError> {
        let mut queue: VecDeque<Action> = actions.into();
        let mut out = Vec::new();
        while let Some(action) = queue.pop_front() {
            match action {
                // Collected, and written before the outputs leave (see `process`).
                Action::Persist(delta) => self.unsynced.push(delta),
                Action::Send { to, msg } => out.push(Output::Send {
                    to,
                    bytes: wire::consensus(&msg.encode()),
                }),
                Action::Broadcast { msg } => out.push(Output::Broadcast {
                    bytes: wire::consensus(&msg.encode()),
                }),
                Action::SetTimer { kind, after_ms } => {
                    out.push(Output::SetTimer { kind, after_ms })
                }
                Action::CancelTimer { kind } => out.push(Output::CancelTimer { kind }),
                Action::RequestStateTransfer { from, from_height } => {
                    tracing::debug!(from = from.0, from_height, "requesting state transfer");
                    out.push(Output::Send {
                        to: from,
                        bytes: wire::transfer_request(from_height),
                    })
                }
                Action::Commit { block, certificate } => {
                    // The block's own write transaction comes after the deltas before it.
                    self.sync()?;
                    let (outputs, more, switched) = self.execute(&block, &certificate)?;
                    out.extend(outputs);
                    if switched {
                        // What the old epoch's replica still had to do is void.
                        queue.clear();
                    }
                    queue.extend(more);
                }
                // The ledger decides when an epoch starts (`BlockOutcome::epoch_started`, seen
                // in `execute`); the replica's announcement of the same boundary adds nothing.
                Action::EpochChange { .. } => {}
                Action::Dropped { payload, reason } => {
                    if let Some(id) = request_id(&payload, self.ordering_only) {
                        tracing::info!(txid = %id, %reason, "a client's transaction was dropped");
                        out.push(Output::Dropped { id, reason });
                    }
                }
            }
        }
        self.log_view_transition();
        Ok(out)
    }

    /// Logs the start and the end of a view change: what an operator looks for first when
    /// commits stall.
    fn log_view_transition(&mut self) {
        let now = (self.replica.view(), self.replica.is_view_changing());
        if now == self.seen_view {
            return;
        }
        let leader = self.replica.leader().0;
        match now.1 {
            true => tracing::warn!(
                view = now.0,
                from_view = self.seen_view.0,
                next_leader = leader,
                "view change started"
            ),
            false => tracing::info!(view = now.0, leader, "view change completed"),
        }
        self.seen_view = now;
    }

    /// Verifies (stateless, batched, cached), applies and stores one committed block.
    fn execute(
        &mut self,
        block: &shoji_consensus::Block,
        certificate: &shoji_consensus::CommitCertificate,
    ) -> Result<(Vec<Output>, Vec<Action>, bool), NodeError> {
        let mut txs: Vec<Transaction> = Vec::new();
        let mut governance: Vec<GovernanceTx> = Vec::new();
        let mut opaque: Vec<(TxId, TxOutcome)> = Vec::new();
        for b in &block.transactions {
            if GovernanceTx::is_governance(b) {
                governance.extend(GovernanceTx::from_bytes(b).ok());
            } else if let Some(tx) = self.decode_for_block(b) {
                // Applied only if its proof verifies (cached or checked below), which implies
                // the subgroup check this decoding leaves out.
                txs.push(tx);
            } else if self.ordering_only {
                if let Some(id) = request_id(b, true) {
                    let why = Rejection::Stateless("an opaque payload: ordered only".into());
                    opaque.push((id, TxOutcome::Rejected(why)));
                }
            }
        }
        let ids: Vec<TxId> = txs.iter().map(Transaction::auth_id).collect();
        let cached: Vec<Option<Result<(), TxError>>> = ids
            .iter()
            .map(|id| self.verified.get(id).cloned())
            .collect();
        let (missing_ids, missing): (Vec<TxId>, Vec<Transaction>) = ids
            .iter()
            .zip(&txs)
            .zip(&cached)
            .filter(|(_, c)| c.is_none())
            .map(|((id, t), _)| (*id, *t))
            .unzip();
        if !missing.is_empty() {
            tracing::debug!(
                height = block.height,
                proofs = missing.len(),
                "verifying a block's unseen proofs"
            );
        }
        let mut fresh = self.verify_now(&missing_ids, &missing).into_iter();
        let mut stateless = Vec::with_capacity(txs.len());
        for (id, c) in ids.iter().zip(cached) {
            let r = match c {
                Some(r) => r,
                None => {
                    let r = fresh.next().unwrap_or(Err(TxError::Proof(
                        shoji_verifier::VerificationError::InvalidProof,
                    )));
                    self.remember(*id, r.clone());
                    r
                }
            };
            stateless.push(r);
        }
        let outcome =
            self.ledger
                .apply_block_with_governance(block.time_ms, &txs, &stateless, &governance);
        for (id, o) in &outcome.governance {
            match o {
                TxOutcome::Enacted => tracing::info!(
                    height = outcome.height,
                    txid = %id,
                    policy_seq = self.ledger.policy().seq,
                    "governance transaction enacted"
                ),
                TxOutcome::Rejected(r) => tracing::warn!(
                    height = outcome.height,
                    txid = %id,
                    reason = %r,
                    "governance transaction refused"
                ),
                TxOutcome::Applied { .. } => {}
            }
        }
        let head = self.ledger.head();
        self.store.commit_block(&CommittedBlock {
            block,
            certificate,
            transactions: &txs,
            outcome: &outcome,
            ledger: &head,
        })?;
        let committed = Output::Committed {
            height: outcome.height,
            state_root: outcome.state_root,
            outcomes: ids
                .into_iter()
                .zip(outcome.outcomes.iter().cloned())
                .chain(outcome.governance.iter().cloned())
                .chain(opaque)
                .collect(),
        };
        let mut outputs = vec![committed];
        let next = match &outcome.validators_decided {
            Some((_, v)) => {
                outputs.push(Output::ValidatorsDecided {
                    validators: v.iter().map(|(id, k)| (ReplicaId(*id), *k)).collect(),
                    addresses: self.added_validator_addresses(),
                });
                Some(validator_set(
                    &self.genesis,
                    self.ledger.policy().epoch + 1,
                    v,
                )?)
            }
            None => None,
        };
        let more = self
            .replica
            .on_block_executed(block.height, outcome.state_root, next);
        if outcome.epoch_started.is_some() {
            let (switched, actions) = self.switch_epoch()?;
            outputs.extend(switched);
            return Ok((outputs, actions, true));
        }
        Ok((outputs, more, false))
    }
}

/// The signing-key type validators use (re-exported from the consensus crate).
pub mod ed25519_dalek_key {
    pub use shoji_consensus::ed25519_dalek::SigningKey;
}
