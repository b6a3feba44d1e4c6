//! The PBFT replica state machine.
//!
//! Section references (§) are to Castro and Liskov, "Practical Byzantine Fault Tolerance
//! and Proactive Recovery", ACM TOCS 20(4), 2002; see
//! `docs/protocol/consensus.md` ("Handlers and the paper") for the mapping.

mod checkpoint;
mod dispatch;
mod normal;
mod retransmit;
mod state_transfer;
mod view_change;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ed25519_dalek::{Signature, SigningKey};

use crate::certificate::{
    verify_commit_certificate, CheckpointCertificate, CommitCertificate, PreparedCertificate,
};
use crate::error::Error;
use crate::message::{
    CheckpointVote, Message, NewView, Proposal, SignedMessage, SignedProposal, SignedViewChange,
    ViewChange, Vote,
};
use crate::persist::{AcceptedProposal, PersistDelta, PersistedState};
use crate::types::{
    Block, BlockHash, BlockHeader, Config, Height, ReplicaId, StateRoot, TxHash, ValidatorSet, View,
};

/// Number of recent rejection reasons kept for diagnostics.
const RECENT_ERRORS_MAX: usize = 64;

/// Help replies allowed per peer per retransmission period.
const HELP_BUDGET: u32 = 4;

/// Views above this are rejected, so `view + 1` can never overflow.
const VIEW_MAX: View = u64::MAX / 4;
/// Most transactions one relay message ([`Message::Requests`]) carries.
pub const MAX_RELAY_BATCH: usize = 256;
/// A relay message is closed once its transactions reach this many bytes.
const RELAY_BYTES: usize = 1 << 20;

/// The timers a replica asks its host to run. At most one timer of each kind exists;
/// [`Action::SetTimer`] replaces a running timer of the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// View-change timer (§4.4): runs while client requests are pending, while the chain is
    /// short of a checkpoint it has started (so the blocks below it get ordered), and while a
    /// view change has gathered a quorum but no NEW-VIEW has been installed.
    ViewChange,
    /// Periodic re-sending of own messages that have not yet taken effect.
    Retransmit,
    /// State transfer: debounce before asking, and timeout of an outstanding request.
    StateTransfer,
    /// Leader: the oldest waiting request has waited [`Config::pipeline_max_wait_ms`] for
    /// the block in flight; propose it beside that block.
    Pipeline,
}

/// An effect the host must carry out. Actions are returned in order and must be executed
/// in that order; in particular every [`Action::Persist`] must be durable before any
/// later `Send`/`Broadcast` of the same batch is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `msg` to one validator.
    Send {
        /// Recipient.
        to: ReplicaId,
        /// Message to send.
        msg: SignedMessage,
    },
    /// Send `msg` to every other validator.
    Broadcast {
        /// Message to send.
        msg: SignedMessage,
    },
    /// Start (or restart) the timer `kind` to fire after `after_ms`; then call
    /// [`Replica::on_timer`].
    SetTimer {
        /// Which timer.
        kind: TimerKind,
        /// Delay in milliseconds.
        after_ms: u64,
    },
    /// Stop the timer `kind` if it is running.
    CancelTimer {
        /// Which timer.
        kind: TimerKind,
    },
    /// Durably apply `delta` to the persisted state (see [`PersistedState::apply`]).
    Persist(PersistDelta),
    /// Deliver a committed block. Emitted exactly once per height, in height order. The
    /// host stores block and certificate durably (calling [`PersistedState::record_commit`]
    /// in the same step), executes it, and then calls [`Replica::on_block_executed`].
    Commit {
        /// The committed block.
        block: Block,
        /// Its commit certificate.
        certificate: CommitCertificate,
    },
    /// A client request the host handed in will not be ordered by this replica: the queue
    /// refused it, or it waited longer than [`Config::pending_ttl_ms`]. The host tells the
    /// client (another replica it was relayed to may still order it).
    Dropped {
        /// The request's bytes, as handed in.
        payload: Vec<u8>,
        /// Why.
        reason: String,
    },
    /// Ask validator `from` for committed blocks (with certificates) starting at
    /// `from_height`; hand the answer to [`Replica::on_state_transfer`].
    RequestStateTransfer {
        /// Peer to ask.
        from: ReplicaId,
        /// First height wanted.
        from_height: Height,
    },
    /// The checkpoint at `activation_height` closing the current epoch is stable, and this
    /// replica orders nothing above it: a host may start a replica for `next_validators` with
    /// [`Config::start_checkpoint`] set to `checkpoint`. Shoji's node does not need it: its
    /// ledger reports the same boundary when it executes the epoch's last block, and the node
    /// switches then.
    EpochChange {
        /// Last height of the current epoch.
        activation_height: Height,
        /// Stable checkpoint at `activation_height`.
        checkpoint: CheckpointCertificate,
        /// Validators of the next epoch.
        next_validators: ValidatorSet,
    },
}

/// A request waiting to be ordered.
#[derive(Clone, Debug)]
struct PendingRequest {
    /// Arrival order (key of `Replica::pending_order`).
    seq: u64,
    payload: Vec<u8>,
    /// The peer that relayed it; `None` for the host's own clients.
    origin: Option<ReplicaId>,
    /// Whether the other replicas were sent it: by its origin, or by this replica. A leader
    /// does not relay its own clients' requests; if it is deposed before proposing them, it
    /// relays them then ([`Replica::relay_held_requests`]).
    relayed: bool,
    /// The host's clock when it arrived (0 when the host gives no clock).
    arrived_ms: u64,
}

/// Per-height consensus state.
#[derive(Clone, Debug, Default)]
struct Slot {
    /// Accepted pre-prepare (its view may be older than the current view). Written only
    /// through [`Slot::set_pre_prepare`] and [`Slot::clear_pre_prepare`], which keep the two
    /// fields below and `bodies` in step with it.
    pre_prepare: Option<SignedProposal>,
    /// The hash of `pre_prepare`'s block (every vote on the slot is compared with it).
    pre_prepare_hash: BlockHash,
    /// The hashes of `pre_prepare`'s transactions (a leader skips them when proposing); empty
    /// while the block is not known.
    pre_prepare_txs: Vec<TxHash>,
    /// Blocks held for this height, by hash: the accepted pre-prepare's (unless it came by
    /// header only, in a NEW-VIEW, for a block never received) and the prepared
    /// certificate's. At most two.
    bodies: Vec<(BlockHash, Block)>,
    /// PREPARE votes by (view, sender).
    prepares: BTreeMap<(View, ReplicaId), (BlockHash, Signature)>,
    /// COMMIT votes by (view, sender).
    commits: BTreeMap<(View, ReplicaId), (BlockHash, Signature)>,
    /// Own latest PREPARE.
    own_prepare: Option<SignedMessage>,
    /// Own latest COMMIT.
    own_commit: Option<SignedMessage>,
    /// Latest prepared certificate (P-set entry).
    prepared: Option<PreparedCertificate>,
    /// Committed-local: block hash and certificate (the block itself may still be missing,
    /// to be fetched by state transfer).
    committed: Option<(BlockHash, CommitCertificate)>,
}

/// A block's header and its transactions' hashes, each transaction hashed once.
fn block_header(block: &Block) -> (BlockHeader, Vec<TxHash>) {
    let txs = block.tx_hashes();
    (BlockHeader::of(block, txs.iter().copied()), txs)
}

impl Slot {
    fn accepted_in(&self, view: View) -> Option<&SignedProposal> {
        self.pre_prepare
            .as_ref()
            .filter(|pp| pp.proposal.view == view)
    }

    /// The block hash of the pre-prepare accepted in `view`.
    fn accepted_hash_in(&self, view: View) -> Option<BlockHash> {
        self.accepted_in(view).map(|_| self.pre_prepare_hash)
    }

    /// Accepts `spp` (whose block hash is `hash`) with its block and transaction hashes when
    /// known. Only the blocks of the new proposal and of the prepared certificate are kept.
    fn set_pre_prepare(
        &mut self,
        spp: SignedProposal,
        hash: BlockHash,
        body: Option<(Block, Vec<TxHash>)>,
    ) {
        let prepared = self.prepared.as_ref().map(|c| c.header().hash());
        self.bodies
            .retain(|(h, _)| *h == hash || Some(*h) == prepared);
        let held = self.bodies.iter().any(|(h, _)| *h == hash);
        match body {
            Some((block, txs)) => {
                if !held {
                    self.bodies.push((hash, block));
                }
                self.pre_prepare_txs = txs;
            }
            None => {
                if !held {
                    if let Some(empty) = spp.proposal.header.empty_block() {
                        self.bodies.push((hash, empty));
                    }
                }
                self.pre_prepare_txs = self.tx_hashes_of(&hash);
            }
        }
        self.pre_prepare_hash = hash;
        self.pre_prepare = Some(spp);
    }

    /// The accepted pre-prepare and the blocks held, as persisted (see
    /// [`Slot::accepted_record`]).
    fn restore(&mut self, record: &AcceptedProposal) {
        self.bodies = record
            .bodies
            .iter()
            .take(2)
            .map(|b| (b.hash(), b.clone()))
            .collect();
        let hash = record.proposal.proposal.header.hash();
        self.pre_prepare_txs = self.tx_hashes_of(&hash);
        self.pre_prepare_hash = hash;
        self.pre_prepare = Some(record.proposal);
    }

    fn clear_pre_prepare(&mut self) {
        self.pre_prepare = None;
        self.pre_prepare_txs = Vec::new();
    }

    /// Whether the accepted pre-prepare's block is held (not only its header).
    fn body_known(&self) -> bool {
        self.block_with_hash(&self.pre_prepare_hash).is_some()
    }

    /// The transaction hashes of the block with hash `hash` (none if the slot does not hold it).
    fn tx_hashes_of(&self, hash: &BlockHash) -> Vec<TxHash> {
        self.block_with_hash(hash)
            .map(Block::tx_hashes)
            .unwrap_or_default()
    }

    /// The block with hash `hash`, if this slot holds it.
    fn block_with_hash(&self, hash: &BlockHash) -> Option<&Block> {
        self.bodies.iter().find(|(h, _)| h == hash).map(|(_, b)| b)
    }

    /// What is persisted for the accepted pre-prepare.
    fn accepted_record(&self) -> Option<AcceptedProposal> {
        Some(AcceptedProposal {
            proposal: self.pre_prepare?,
            bodies: self.bodies.iter().map(|(_, b)| b.clone()).collect(),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transfer {
    Idle,
    Waiting,
    InFlight(ReplicaId),
}

/// A PBFT replica: a deterministic state machine without I/O, clock or randomness.
///
/// Feed it inputs (`on_*` methods); each returns the [`Action`]s the host must perform.
/// The host tells it the wall-clock time with [`Replica::set_now_ms`] before each input; the
/// replica only uses it to stamp the blocks it proposes and to bound the time of the blocks
/// it accepts.
/// Inputs caused by untrusted peers never panic: invalid input is counted
/// ([`Replica::rejected_count`]) and logged ([`Replica::recent_errors`]).
pub struct Replica {
    cfg: Config,
    id: ReplicaId,
    key: SigningKey,
    /// Not a member: follows the committed chain by state transfer only (see
    /// [`Replica::new_learner`]).
    learner: bool,

    view: View,
    view_changing: bool,
    slots: BTreeMap<Height, Slot>,
    stable: CheckpointCertificate,
    checkpoint_votes: BTreeMap<Height, BTreeMap<ReplicaId, (BlockHash, StateRoot, Signature)>>,
    own_checkpoints: BTreeMap<Height, SignedMessage>,

    last_delivered: Height,
    last_delivered_hash: BlockHash,
    delivered_hashes: BTreeMap<Height, BlockHash>,
    deliverable: BTreeMap<Height, (Block, CommitCertificate)>,

    pending: BTreeMap<TxHash, PendingRequest>,
    pending_order: BTreeMap<u64, TxHash>,
    next_arrival: u64,
    /// Requests in `pending` by the peer that relayed them (own clients' are not counted).
    relayed_by: BTreeMap<ReplicaId, usize>,
    recent_txs: BTreeMap<TxHash, Height>,
    recent_by_height: BTreeMap<Height, Vec<TxHash>>,

    next_propose: Height,

    /// Valid VIEW-CHANGEs by (target view, sender), a few views per sender.
    view_changes: BTreeMap<(View, ReplicaId), SignedViewChange>,
    /// Own VIEW-CHANGEs by target view (the latest few).
    own_view_changes: BTreeMap<View, SignedMessage>,
    new_view_msg: Option<SignedMessage>,
    view_timeout_cur_ms: u64,
    vc_timer_armed: bool,
    retransmit_armed: bool,
    progressed: bool,
    help_used: BTreeMap<ReplicaId, u32>,
    /// Highest COMMIT height seen beyond our window, per sender (lag detection).
    ahead: BTreeMap<ReplicaId, Height>,

    transfer: Transfer,
    transfer_target: Height,
    transfer_peers: BTreeSet<ReplicaId>,
    transfer_attempt: u64,

    scheduled_epoch: Option<(Height, ValidatorSet)>,
    epoch_change_announced: bool,

    /// The host's wall-clock time (Unix ms) as last set; 0 while unknown.
    now_ms: u64,

    rejected: u64,
    recent_errors: VecDeque<Error>,
    out: Vec<Action>,
}

impl Replica {
    /// Creates a replica. `persisted` is `None` for a fresh start and the host's durable
    /// state after a restart. Call [`Replica::start`] next and execute its actions.
    ///
    /// Fails if the configuration is invalid or `key` is not a validator's key.
    pub fn new(
        config: Config,
        key: SigningKey,
        persisted: Option<PersistedState>,
    ) -> Result<Replica, Error> {
        config.validate()?;
        let id = config
            .validators
            .id_of(&key.verifying_key())
            .ok_or(Error::NotAMember)?;
        Self::build(config, key, id, false, persisted)
    }

    /// Creates a learner: a replica that is not a member of `config`'s validator set (a
    /// validator that governance is adding, catching up before its epoch begins). It takes
    /// committed blocks only from state transfer, each checked against the set's commit
    /// certificates, and CHECKPOINT votes; it never votes, proposes, relays, starts a view
    /// change or sends any consensus message. `id` is the replica id it will have as a member.
    ///
    /// Fails if the configuration is invalid, or `key` or `id` belongs to a member.
    pub fn new_learner(
        config: Config,
        key: SigningKey,
        id: ReplicaId,
        persisted: Option<PersistedState>,
    ) -> Result<Replica, Error> {
        config.validate()?;
        if config.validators.contains(id) || config.validators.id_of(&key.verifying_key()).is_some()
        {
            return Err(Error::InvalidConfig(
                "a learner's key and id must not be a member's".into(),
            ));
        }
        Self::build(config, key, id, true, persisted)
    }

    /// Whether this replica is a learner ([`Replica::new_learner`]).
    pub fn is_learner(&self) -> bool {
        self.learner
    }

    fn build(
        config: Config,
        key: SigningKey,
        id: ReplicaId,
        learner: bool,
        persisted: Option<PersistedState>,
    ) -> Result<Replica, Error> {
        let start = config.start_checkpoint.clone();
        let mut r = Replica {
            id,
            key,
            learner,
            view: 0,
            view_changing: false,
            slots: BTreeMap::new(),
            stable: start.clone(),
            checkpoint_votes: BTreeMap::new(),
            own_checkpoints: BTreeMap::new(),
            last_delivered: start.height,
            last_delivered_hash: start.block_hash,
            delivered_hashes: BTreeMap::new(),
            deliverable: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_order: BTreeMap::new(),
            next_arrival: 0,
            relayed_by: BTreeMap::new(),
            recent_txs: BTreeMap::new(),
            recent_by_height: BTreeMap::new(),
            next_propose: start.height + 1,
            view_changes: BTreeMap::new(),
            own_view_changes: BTreeMap::new(),
            new_view_msg: None,
            view_timeout_cur_ms: config.view_timeout_ms,
            vc_timer_armed: false,
            retransmit_armed: false,
            progressed: false,
            help_used: BTreeMap::new(),
            ahead: BTreeMap::new(),
            transfer: Transfer::Idle,
            transfer_target: 0,
            transfer_peers: BTreeSet::new(),
            transfer_attempt: 0,
            scheduled_epoch: None,
            epoch_change_announced: false,
            now_ms: 0,
            rejected: 0,
            recent_errors: VecDeque::new(),
            out: Vec::new(),
            cfg: config,
        };
        r.delivered_hashes.insert(start.height, start.block_hash);
        if let Some(ps) = persisted {
            r.restore(ps)?;
        }
        Ok(r)
    }

    fn restore(&mut self, ps: PersistedState) -> Result<(), Error> {
        let vs = &self.cfg.validators;
        ps.stable_checkpoint
            .verify(vs, &self.cfg.start_checkpoint)
            .map_err(|e| Error::InvalidConfig(format!("persisted checkpoint: {e}")))?;
        self.view = ps.view.min(VIEW_MAX);
        self.view_changing = ps.view_changing;
        if ps.stable_checkpoint.height > self.stable.height {
            self.stable = ps.stable_checkpoint.clone();
        }
        self.delivered_hashes
            .insert(self.stable.height, self.stable.block_hash);
        if ps.last_committed >= self.last_delivered {
            self.last_delivered = ps.last_committed;
            self.last_delivered_hash = ps.last_committed_hash;
            self.delivered_hashes
                .insert(ps.last_committed, ps.last_committed_hash);
        }
        let low = self.stable.height;
        for (h, pp) in ps.pre_prepares.range(low + 1..) {
            self.slots.entry(*h).or_default().restore(pp);
        }
        for (h, sm) in ps.prepares.range(low + 1..) {
            if let Message::Prepare(v) = &sm.message {
                let slot = self.slots.entry(*h).or_default();
                slot.prepares
                    .insert((v.view, self.id), (v.block_hash, sm.signature));
                slot.own_prepare = Some(sm.clone());
            }
        }
        for (h, sm) in ps.commits.range(low + 1..) {
            if let Message::Commit(v) = &sm.message {
                let slot = self.slots.entry(*h).or_default();
                slot.commits
                    .insert((v.view, self.id), (v.block_hash, sm.signature));
                slot.own_commit = Some(sm.clone());
            }
        }
        for (h, pc) in ps.prepared.range(low + 1..) {
            self.slots.entry(*h).or_default().prepared = Some(pc.clone());
        }
        for (h, sm) in ps.checkpoints.range(low + 1..) {
            if let Message::Checkpoint(c) = &sm.message {
                self.checkpoint_votes
                    .entry(*h)
                    .or_default()
                    .insert(self.id, (c.block_hash, c.state_root, sm.signature));
                self.own_checkpoints.insert(*h, sm.clone());
            }
        }
        for (v, sm) in &ps.view_changes {
            if let Message::ViewChange(vc) = &sm.message {
                self.view_changes.insert(
                    (*v, self.id),
                    SignedViewChange {
                        from: self.id,
                        view_change: vc.clone(),
                        signature: sm.signature,
                    },
                );
                self.own_view_changes.insert(*v, sm.clone());
            }
        }
        self.new_view_msg = ps.new_view.clone();
        self.restore_new_view_proposals();
        let max_own = self
            .slots
            .iter()
            .filter(|(_, s)| s.accepted_in(self.view).is_some())
            .map(|(h, _)| *h)
            .max()
            .unwrap_or(0);
        self.next_propose = max_own.max(self.stable.height).max(self.last_delivered) + 1;
        Ok(())
    }

    /// Re-accepts the O-set of the NEW-VIEW that installed the current view, where the
    /// persisted state lacks it. Installing a view persists the NEW-VIEW before the proposals
    /// it accepts, so a crash in between left a restarted leader with the view but without its
    /// O-set: it then proposed other blocks at those heights, and the backups holding the
    /// NEW-VIEW reported it for equivocation (simulator seed 35697).
    fn restore_new_view_proposals(&mut self) {
        if self.view_changing {
            return;
        }
        let Some(Message::NewView(nv)) = self.new_view_msg.as_ref().map(|sm| &sm.message) else {
            return;
        };
        if nv.view != self.view {
            return;
        }
        let (view, low) = (self.view, self.stable.height);
        let missing: Vec<SignedProposal> = nv
            .proposals
            .iter()
            .filter(|spp| spp.height() > low)
            .filter(|spp| {
                self.slots
                    .get(&spp.height())
                    .is_none_or(|s| s.accepted_in(view).is_none())
            })
            .cloned()
            .collect();
        // Accepted as installing the view would have: persisted (and, as a backup, PREPAREd);
        // the actions go out with the first ones `start` returns.
        for spp in missing {
            let hash = spp.proposal.header.hash();
            let body = self
                .slots
                .get(&spp.height())
                .and_then(|s| s.block_with_hash(&hash))
                .cloned()
                .map(|b| {
                    let txs = b.tx_hashes();
                    (b, txs)
                });
            self.accept_pre_prepare(spp, hash, body);
        }
    }

    // ------------------------------------------------------------------ accessors

    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// Current view (the view being changed to, while a view change is in progress).
    pub fn view(&self) -> View {
        self.view
    }

    /// Whether a view change is in progress.
    pub fn is_view_changing(&self) -> bool {
        self.view_changing
    }

    /// Leader of the current view.
    pub fn leader(&self) -> ReplicaId {
        self.cfg.validators.leader(self.view)
    }

    /// Height and hash of the last block delivered with [`Action::Commit`].
    pub fn last_committed(&self) -> (Height, BlockHash) {
        (self.last_delivered, self.last_delivered_hash)
    }

    /// The last stable checkpoint (low watermark).
    pub fn stable_checkpoint(&self) -> &CheckpointCertificate {
        &self.stable
    }

    /// Number of client transactions waiting to be committed.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Number of heights with consensus state held in the log.
    pub fn log_len(&self) -> usize {
        self.slots.len()
    }

    /// The client transactions waiting to be ordered, oldest first.
    pub fn pending_requests(&self) -> Vec<Vec<u8>> {
        self.pending_order
            .values()
            .filter_map(|th| self.pending.get(th).map(|p| p.payload.clone()))
            .collect()
    }

    /// Replaces the payload rule ([`Config::payload_check`]), for a host whose mode changes
    /// what it orders. Requests already waiting are kept.
    pub fn set_payload_check(&mut self, check: crate::types::PayloadCheck) {
        self.cfg.payload_check = check;
    }

    /// Schedules a validator-set change the host already knows was decided (after a restart
    /// between the block that decided it and its activation): no block above `last_height` is
    /// proposed or accepted in this epoch. Ignored if a change is already scheduled or the
    /// next set's epoch is not higher.
    pub fn schedule_epoch_change(&mut self, last_height: Height, next: ValidatorSet) {
        if self.scheduled_epoch.is_none() && next.epoch > self.cfg.validators.epoch {
            self.scheduled_epoch = Some((last_height, next));
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Total number of rejected inputs since start.
    pub fn rejected_count(&self) -> u64 {
        self.rejected
    }

    /// The most recent rejection reasons, oldest first.
    pub fn recent_errors(&self) -> impl Iterator<Item = &Error> {
        self.recent_errors.iter()
    }

    /// The validator-set change scheduled by the host, with its activation height.
    pub fn scheduled_epoch_change(&self) -> Option<(Height, &ValidatorSet)> {
        self.scheduled_epoch.as_ref().map(|(h, v)| (*h, v))
    }

    /// The wall-clock time last given with [`Replica::set_now_ms`] (0 if never).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    // ------------------------------------------------------------------ inputs

    /// Tells the replica the current wall-clock time in Unix milliseconds. The host calls it
    /// before feeding each input; the replica reads no clock of its own.
    ///
    /// As leader it stamps this time on the blocks it proposes ([`Block::time_ms`]); as a
    /// backup it refuses a pre-prepare whose time is more than
    /// [`Config::max_clock_skew_ms`] ahead of it. While the time is 0 (never set) the bound
    /// is not checked and proposed blocks carry time 0.
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Remembers a block the host committed before a restart, so that its transactions are
    /// refused again (queued, proposed or accepted at another height) until it leaves the
    /// de-duplication window of `dedup_window_blocks` heights, as they were before the
    /// restart. [`PersistedState`] does not carry that set: the host's stored blocks do. Call
    /// it between [`Replica::new`] and [`Replica::start`] for the host's last
    /// `dedup_window_blocks` blocks; a block above the last committed height, below the window
    /// or already remembered changes nothing. Without it, replicas restarted together forgot
    /// what they had committed, and a replayed request committed twice (simulator seed 68657).
    pub fn remember_committed(&mut self, block: &Block) {
        let h = block.height;
        if !self.dedup_window().contains(&h) || self.recent_by_height.contains_key(&h) {
            return;
        }
        self.remember_txs(h, block.tx_hashes());
    }

    /// Takes over what `previous` remembers of committed transactions, for the replica that
    /// replaces it at a validator-set epoch switch (same effect as [`Self::remember_committed`]
    /// for each block in `previous`'s de-duplication window, without the blocks).
    pub fn inherit_committed(&mut self, previous: &Replica) {
        for (h, txs) in previous.recent_by_height.range(self.dedup_window()) {
            if !self.recent_by_height.contains_key(h) {
                self.remember_txs(*h, txs.clone());
            }
        }
    }

    /// Actions to perform once after construction (re-arming timers, re-sending the own
    /// VIEW-CHANGE or votes after a restart).
    pub fn start(&mut self) -> Vec<Action> {
        if self.view_changing {
            match self.own_view_changes.get(&self.view).cloned() {
                Some(sm) => self.out.push(Action::Broadcast { msg: sm }),
                // Crashed between persisting the view and the VIEW-CHANGE: send it now.
                None => self.send_view_change(),
            }
            self.try_new_view();
            self.check_view_change_quorum();
        } else {
            self.retransmit();
        }
        self.finish()
    }

    /// A message from peer `from` (the transport-level sender; authenticity comes from
    /// the signature of `msg.from`).
    pub fn on_message(&mut self, from: ReplicaId, msg: SignedMessage) -> Vec<Action> {
        if let Err(e) = self.handle_message(from, msg) {
            self.reject(e);
        }
        self.finish()
    }

    /// Decodes `bytes` and handles the message; malformed input is counted and dropped.
    pub fn on_message_bytes(&mut self, from: ReplicaId, bytes: &[u8]) -> Vec<Action> {
        match SignedMessage::decode(bytes, self.cfg.max_message_bytes) {
            Ok(msg) => self.on_message(from, msg),
            Err(e) => {
                self.reject(e);
                self.finish()
            }
        }
    }

    /// A timer set with [`Action::SetTimer`] fired.
    pub fn on_timer(&mut self, kind: TimerKind) -> Vec<Action> {
        if self.learner && kind != TimerKind::StateTransfer {
            return self.finish();
        }
        match kind {
            TimerKind::ViewChange => self.on_view_timer(),
            TimerKind::Retransmit => {
                self.retransmit_armed = false;
                self.help_used.clear();
                self.retransmit();
            }
            TimerKind::StateTransfer => self.on_transfer_timer(),
            TimerKind::Pipeline => self.try_propose(),
        }
        self.finish()
    }

    /// A client transaction submitted to this replica. Unless this replica is the leader of
    /// an installed view, it relays the transaction to every other replica: the leader
    /// proposes it, and every backup holds it pending and so runs its view-change timer. A
    /// client that reaches a single backup of a crashed leader therefore still causes a view
    /// change (PBFT's client multicast, done by the first replica on the client's behalf), and
    /// a transaction submitted during a view change reaches the next leader.
    pub fn on_client_request(&mut self, payload: Vec<u8>) -> Vec<Action> {
        self.on_client_requests(vec![payload])
    }

    /// Several client transactions at once ([`Replica::on_client_request`] for each): the
    /// ones to relay travel in one signed message, so a busy backup signs (and every other
    /// replica verifies) once per batch rather than once per transaction.
    pub fn on_client_requests(&mut self, payloads: Vec<Vec<u8>>) -> Vec<Action> {
        if self.learner {
            for _ in &payloads {
                self.reject(Error::NotAMember);
            }
            return self.finish();
        }
        let relay = self.leader() != self.id || self.view_changing;
        let mut fresh = Vec::new();
        for payload in payloads {
            match self.add_pending(payload.clone(), None, relay) {
                Ok(true) if relay => fresh.push(payload),
                Ok(_) => {}
                Err(e) => {
                    // The host admitted it and its client waits: say it will not be ordered.
                    self.out.push(Action::Dropped {
                        payload,
                        reason: e.to_string(),
                    });
                    self.reject(e);
                }
            }
        }
        self.relay_all(fresh);
        self.finish()
    }

    /// Relays `payloads` to every other replica, in signed messages of at most
    /// [`MAX_RELAY_BATCH`] transactions and about [`RELAY_BYTES`] bytes.
    fn relay_all(&mut self, payloads: Vec<Vec<u8>>) {
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        for payload in payloads {
            bytes += payload.len();
            batch.push(payload);
            if batch.len() == MAX_RELAY_BATCH || bytes >= RELAY_BYTES {
                self.relay(std::mem::take(&mut batch));
                bytes = 0;
            }
        }
        self.relay(batch);
    }

    /// Relays the host's own clients' requests this replica held without relaying (as the
    /// leader, it was to propose them): once another replica leads, only it could. Called when
    /// a view this replica does not lead is installed.
    pub(super) fn relay_held_requests(&mut self) {
        let mut held = Vec::new();
        for th in self.pending_order.values() {
            if let Some(p) = self.pending.get_mut(th) {
                if !p.relayed {
                    p.relayed = true;
                    held.push(p.payload.clone());
                }
            }
        }
        self.relay_all(held);
    }

    fn relay(&mut self, mut batch: Vec<Vec<u8>>) {
        let message = match batch.len() {
            0 => return,
            1 => Message::Request(batch.remove(0)),
            _ => Message::Requests(batch),
        };
        let sm = self.sign(message);
        self.out.push(Action::Broadcast { msg: sm });
    }

    /// The host executed the committed block at `height` and obtained `state_root`.
    ///
    /// `next_validators` schedules a validator-set change decided by that block: it takes
    /// effect after the checkpoint at `activation = round_up(height, K) + window`; no block
    /// above it is proposed or accepted in this epoch, and once that checkpoint is stable
    /// the replica emits [`Action::EpochChange`].
    pub fn on_block_executed(
        &mut self,
        height: Height,
        state_root: StateRoot,
        next_validators: Option<ValidatorSet>,
    ) -> Vec<Action> {
        if let Err(e) = self.handle_executed(height, state_root, next_validators) {
            self.reject(e);
        }
        self.finish()
    }

    /// Blocks with commit certificates received from `from` in answer to
    /// [`Action::RequestStateTransfer`]. Each block is checked to extend the committed
    /// chain and to carry a valid certificate before it is committed.
    pub fn on_state_transfer(
        &mut self,
        from: ReplicaId,
        blocks: Vec<(Block, CommitCertificate)>,
    ) -> Vec<Action> {
        if let Err(e) = self.handle_state_transfer(from, blocks) {
            self.reject(e);
        }
        self.finish()
    }

    // ------------------------------------------------------------------ helpers

    fn reject(&mut self, e: Error) {
        self.rejected += 1;
        if self.recent_errors.len() >= RECENT_ERRORS_MAX {
            self.recent_errors.pop_front();
        }
        self.recent_errors.push_back(e);
    }

    fn sign(&self, message: Message) -> SignedMessage {
        SignedMessage::sign(&self.cfg.validators, self.id, message, &self.key)
    }

    fn quorum(&self) -> usize {
        self.cfg.validators.quorum()
    }

    fn high_watermark(&self) -> Height {
        let high = self.stable.height + self.cfg.window_size;
        match &self.scheduled_epoch {
            Some((activation, _)) => high.min(*activation),
            None => high,
        }
    }

    fn in_window(&self, h: Height) -> Result<(), Error> {
        let (low, high) = (self.stable.height, self.high_watermark());
        if h <= low || h > high {
            return Err(Error::OutsideWindow {
                height: h,
                low,
                high,
            });
        }
        Ok(())
    }

    /// Hash of the block committed at `h`, if known.
    fn committed_hash(&self, h: Height) -> Option<BlockHash> {
        if h == self.stable.height {
            return Some(self.stable.block_hash);
        }
        if let Some(x) = self.delivered_hashes.get(&h) {
            return Some(*x);
        }
        if let Some(slot) = self.slots.get(&h) {
            if let Some((hash, _)) = &slot.committed {
                return Some(*hash);
            }
        }
        self.deliverable.get(&h).map(|(b, _)| b.hash())
    }

    /// Common tail of every input: propose, (re)arm timers, state transfer.
    fn finish(&mut self) -> Vec<Action> {
        if self.learner {
            self.maybe_request_transfer();
            self.check_epoch_change();
            self.progressed = false;
            // Nothing a learner signs may leave it: it is not a member.
            let mut out = std::mem::take(&mut self.out);
            out.retain(|a| !matches!(a, Action::Send { .. } | Action::Broadcast { .. }));
            return out;
        }
        self.expire_pending();
        self.try_propose();
        self.update_view_timer();
        self.ensure_retransmit();
        self.maybe_request_transfer();
        self.check_epoch_change();
        self.progressed = false;
        std::mem::take(&mut self.out)
    }

    /// Most requests relayed by one peer that may wait here at once: a faulty member can
    /// fill its own share of the queue, never the others'.
    fn relay_quota(&self) -> usize {
        (self.cfg.max_pending_requests / self.cfg.validators.n().max(1)).max(1)
    }

    /// Queues `payload` (from the host's client when `origin` is `None`, relayed by `origin`
    /// otherwise; `relaying`: this replica relays it to the others). `Ok(false)`: already
    /// queued or recently ordered.
    fn add_pending(
        &mut self,
        payload: Vec<u8>,
        origin: Option<ReplicaId>,
        relaying: bool,
    ) -> Result<bool, Error> {
        if payload.len() > self.cfg.max_tx_bytes {
            return Err(Error::Limit(format!(
                "transaction of {} bytes exceeds {}",
                payload.len(),
                self.cfg.max_tx_bytes
            )));
        }
        self.cfg
            .payload_check
            .check(&payload)
            .map_err(|e| Error::Malformed(format!("not a transaction: {e}")))?;
        let th = TxHash::of(&payload);
        if self.recent_txs.contains_key(&th) || self.pending.contains_key(&th) {
            return Ok(false);
        }
        if self.pending.len() >= self.cfg.max_pending_requests {
            return Err(Error::Limit("pending request queue full".into()));
        }
        if let Some(peer) = origin {
            let relayed = self.relayed_by.get(&peer).copied().unwrap_or(0);
            if relayed >= self.relay_quota() {
                return Err(Error::Limit(format!(
                    "validator {} already has {relayed} relayed requests waiting",
                    peer.0
                )));
            }
            self.relayed_by.insert(peer, relayed + 1);
        }
        let seq = self.next_arrival;
        self.next_arrival += 1;
        self.pending.insert(
            th,
            PendingRequest {
                seq,
                payload,
                origin,
                relayed: origin.is_some() || relaying,
                arrived_ms: self.now_ms,
            },
        );
        self.pending_order.insert(seq, th);
        Ok(true)
    }

    /// Removes a request from the queue (ordered, or expired).
    fn remove_pending(&mut self, th: &TxHash) -> Option<PendingRequest> {
        let p = self.pending.remove(th)?;
        self.pending_order.remove(&p.seq);
        if let Some(peer) = p.origin {
            if let Some(n) = self.relayed_by.get_mut(&peer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.relayed_by.remove(&peer);
                }
            }
        }
        debug_assert_eq!(self.pending.len(), self.pending_order.len());
        Some(p)
    }

    /// Drops the requests that waited longer than [`Config::pending_ttl_ms`], telling the
    /// host about its own clients' ones. Arrival order is time order, so only the oldest
    /// entries are looked at.
    fn expire_pending(&mut self) {
        if self.now_ms == 0 {
            return;
        }
        while let Some((_, th)) = self.pending_order.first_key_value() {
            let th = *th;
            let Some(p) = self.pending.get(&th) else {
                break;
            };
            if p.arrived_ms.saturating_add(self.cfg.pending_ttl_ms) > self.now_ms {
                break;
            }
            if let Some(p) = self.remove_pending(&th) {
                if p.origin.is_none() {
                    self.out.push(Action::Dropped {
                        payload: p.payload,
                        reason: format!("not ordered within {} s", self.cfg.pending_ttl_ms / 1000),
                    });
                }
            }
        }
    }
}
