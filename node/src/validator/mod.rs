//! [`NodeCore`]: one validator's state machine with its storage. Peer messages, timers and
//! client transactions come in; [`Output`]s go out, each after the store holds what it
//! depends on.

mod admission;
mod epoch;
mod execute;
mod state_transfer;

use crate::ed25519_dalek_key;
use crate::genesis::{Genesis, Tuning};
use crate::payload::{request_id, Payload, PayloadPolicy};
use crate::wire::{self, PeerMessage, StateTransferAnswer};
use epoch::{epoch_config, validator_set};
use shoji_consensus::{
    Action, Config, PersistDelta, PersistedState, Replica, ReplicaId, TimerKind, ValidatorSet,
};
use shoji_ledger::{Ledger, Rejection, TxOutcome};
use shoji_primitives::account::AccountTx;
use shoji_primitives::encoding::EncodingError;
use shoji_primitives::governance::GovernanceTx;
use shoji_primitives::tx::{Transaction, TxId};
use shoji_store::{CommittedBlock, Store, StoreError};
use shoji_verifier::{TxError, Verifier};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

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

impl SubmitError {
    /// A short machine name (`double_spend`), for metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            SubmitError::Malformed(_) => "malformed",
            SubmitError::Invalid(_) => "invalid",
            SubmitError::DoubleSpend => "double_spend",
            SubmitError::UnknownAnchor => "unknown_anchor",
            SubmitError::Stateful(r) => r.code().name(),
            SubmitError::Retired => "retired",
            SubmitError::Learning => "learning",
        }
    }
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
    /// Which payloads this node orders (see [`NodeCore::with_payloads`]).
    payloads: PayloadPolicy,
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
    /// What this validator counts for its operator ([`NodeCore::metrics`]).
    metrics: crate::metrics::Metrics,
    /// The view [`NodeCore::refresh_metrics`] last saw.
    metrics_view: Option<u64>,
    /// Take a view of the store for a snapshot after committing a multiple of this height
    /// (0: never); see [`NodeCore::set_snapshot_interval`].
    snapshot_every: u64,
    /// The view taken, until the host collects it.
    snapshot_view: Option<shoji_store::StateView>,
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
        // What the replica committed before the restart is still refused if replayed.
        let height = replica.last_committed().0;
        let window = replica.config().dedup_window_blocks;
        for h in height.saturating_sub(window).max(1)..=height {
            // Below the store's base (pruned, or before a snapshot) there is no block.
            if let Some((block, _)) = store.block(h)? {
                replica.remember_committed(&block);
            }
        }
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
            payloads: PayloadPolicy::Transactions,
            genesis: genesis.clone(),
            key,
            tuning: *tuning,
            retired: false,
            seen_view: (0, false),
            unsynced: Vec::new(),
            metrics: crate::metrics::Metrics::default(),
            metrics_view: None,
            snapshot_every: 0,
            snapshot_view: None,
        };
        node.seen_view = (node.replica.view(), node.replica.is_view_changing());
        let actions = node.replica.start();
        let out = node.process(actions)?;
        Ok((node, out))
    }

    /// This node ordering what `policy` allows, chosen as it is built: with
    /// [`PayloadPolicy::OrderingOnly`], client payloads that are not transactions are ordered
    /// like transactions and reported committed (as not applied: they change no state) when
    /// their block commits, for measuring consensus alone. Real transactions are handled as
    /// always.
    pub fn with_payloads(mut self, policy: PayloadPolicy) -> Self {
        self.payloads = policy;
        self.replica.set_payload_check(policy.shape_check());
        self
    }

    /// Which payloads this node orders.
    pub fn payloads(&self) -> PayloadPolicy {
        self.payloads
    }

    /// This validator's id.
    pub fn id(&self) -> ReplicaId {
        self.replica.id()
    }

    /// Takes a frozen view of the store ([`shoji_store::StateView`]) after committing each
    /// height that is a multiple of `blocks`, rounded up to a multiple of the checkpoint
    /// interval so that a checkpoint certificate will sign the viewed state; 0: never. The host
    /// collects it with [`NodeCore::take_snapshot_view`] and writes the snapshot off this task.
    pub fn set_snapshot_interval(&mut self, blocks: u64) {
        let k = self.replica.config().checkpoint_interval.max(1);
        self.snapshot_every = blocks.div_ceil(k).saturating_mul(k);
    }

    /// The view taken for a snapshot since the last call, if any.
    pub fn take_snapshot_view(&mut self) -> Option<shoji_store::StateView> {
        self.snapshot_view.take()
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

    /// This validator's metrics (shared handles: the host serves them, and counts client
    /// requests into them).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Sets the metrics' gauges to the replica's state now (the host calls it after each turn
    /// of its loop), and counts the views entered since the last call.
    pub fn refresh_metrics(&mut self) {
        let m = &self.metrics;
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let view = self.replica.view();
        if let Some(seen) = self.metrics_view {
            m.view_changes.inc_by(view.saturating_sub(seen));
        }
        self.metrics_view = Some(view);
        m.height.set(gauge(self.ledger.height()));
        m.view.set(gauge(view));
        m.view_changing
            .set(i64::from(self.replica.is_view_changing()));
        m.epoch.set(gauge(self.ledger.policy().epoch));
        m.validators
            .set(gauge(self.replica.config().validators.members.len() as u64));
        m.stable_checkpoint
            .set(gauge(self.replica.stable_checkpoint().height));
        m.pending_requests
            .set(gauge(self.replica.pending_len() as u64));
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
                self.metrics.peer_messages_refused.inc();
                tracing::debug!(from = from.0, error = %e, "peer message refused");
                Ok(Vec::new())
            }
        }
    }

    /// A timer fired.
    pub fn on_timer(&mut self, kind: TimerKind) -> Result<Vec<Output>, NodeError> {
        if self.retired {
            return Ok(Vec::new());
        }
        let actions = self.replica.on_timer(kind);
        self.process(actions)
    }

    /// Carries out the replica's actions; every delta they persist is durable when this
    /// returns (docs/protocol/consensus.md, "Rule P1: persisted before sent").
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
                    if let Some(id) = request_id(&payload, self.payloads) {
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
}
