//! The PBFT replica state machine.
//!
//! Section references (§) are to Castro and Liskov, "Practical Byzantine Fault Tolerance
//! and Proactive Recovery", ACM TOCS 20(4), 2002; see `DESIGN.md` for the mapping.

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
    /// View-change timer (§4.4): runs while client requests are pending, and while a view
    /// change has gathered a quorum but no NEW-VIEW has been installed.
    ViewChange,
    /// Periodic re-sending of own messages that have not yet taken effect.
    Retransmit,
    /// State transfer: debounce before asking, and timeout of an outstanding request.
    StateTransfer,
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
    /// The checkpoint at `activation_height` closing the current epoch is stable: the host
    /// should start a replica for `next_validators` with
    /// [`Config::start_checkpoint`] set to `checkpoint`.
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
            match self.add_pending(payload.clone(), None) {
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
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        for payload in fresh {
            bytes += payload.len();
            batch.push(payload);
            if batch.len() == MAX_RELAY_BATCH || bytes >= RELAY_BYTES {
                self.relay(std::mem::take(&mut batch));
                bytes = 0;
            }
        }
        self.relay(batch);
        self.finish()
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
    /// otherwise). `Ok(false)`: already queued or recently ordered.
    fn add_pending(&mut self, payload: Vec<u8>, origin: Option<ReplicaId>) -> Result<bool, Error> {
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

    // ------------------------------------------------------------------ dispatch

    fn handle_message(&mut self, peer: ReplicaId, sm: SignedMessage) -> Result<(), Error> {
        let vs = &self.cfg.validators;
        if !vs.contains(peer) {
            return Err(Error::UnknownSender(peer));
        }
        if !vs.contains(sm.from) {
            return Err(Error::UnknownSender(sm.from));
        }
        if sm.from == self.id {
            return Err(Error::Duplicate);
        }
        // A learner only learns which checkpoints are stable (to know how far behind it is).
        if self.learner && !matches!(sm.message, Message::Checkpoint(_)) {
            return Err(Error::NotAMember);
        }
        match &sm.message {
            Message::Request(tx) => {
                if tx.len() > self.cfg.max_tx_bytes {
                    return Err(Error::Limit("forwarded transaction too large".into()));
                }
                let th = TxHash::of(tx);
                if self.pending.contains_key(&th) || self.recent_txs.contains_key(&th) {
                    return Err(Error::Duplicate);
                }
                sm.verify(&self.cfg.validators)?;
                if let Message::Request(tx) = sm.message {
                    self.add_pending(tx, Some(sm.from))?;
                }
                Ok(())
            }
            Message::Requests(txs) => {
                if txs.is_empty() || txs.len() > MAX_RELAY_BATCH {
                    return Err(Error::Limit(format!(
                        "a relay of {} transactions (1 to {MAX_RELAY_BATCH})",
                        txs.len()
                    )));
                }
                if txs.iter().any(|tx| tx.len() > self.cfg.max_tx_bytes) {
                    return Err(Error::Limit("forwarded transaction too large".into()));
                }
                // An honest member relays only what its host admitted: one payload that is
                // not a transaction condemns the whole message.
                if let Some(e) = txs
                    .iter()
                    .find_map(|tx| self.cfg.payload_check.check(tx).err())
                {
                    return Err(Error::Malformed(format!("relayed payload: {e}")));
                }
                let known = |tx: &Vec<u8>| {
                    let th = TxHash::of(tx);
                    self.pending.contains_key(&th) || self.recent_txs.contains_key(&th)
                };
                if txs.iter().all(known) {
                    return Err(Error::Duplicate);
                }
                sm.verify(&self.cfg.validators)?;
                if let Message::Requests(txs) = sm.message {
                    for tx in txs {
                        self.add_pending(tx, Some(sm.from))?;
                    }
                }
                Ok(())
            }
            Message::PrePrepare(_) => self.on_pre_prepare(sm),
            Message::Prepare(_) | Message::Commit(_) => self.on_vote(sm),
            Message::Checkpoint(_) => self.on_checkpoint(sm),
            Message::ViewChange(_) => self.on_view_change(sm),
            Message::NewView(_) => self.on_new_view(sm),
        }
    }

    fn check_view(&self, view: View) -> Result<(), Error> {
        if view < self.view {
            return Err(Error::StaleView {
                got: view,
                current: self.view,
            });
        }
        if view != self.view || self.view_changing {
            return Err(Error::WrongView {
                got: view,
                current: self.view,
            });
        }
        Ok(())
    }

    /// `tx_hashes` are the hashes of `block`'s transactions, in order.
    fn validate_block_content(&self, block: &Block, tx_hashes: &[TxHash]) -> Result<(), Error> {
        // A block from the future: the leader's clock (or the leader) is wrong. Times in the
        // past are not refused: a block may be accepted long after it was proposed, and the
        // application clamps block time to be monotonic.
        if self.now_ms > 0 && block.time_ms > self.now_ms.saturating_add(self.cfg.max_clock_skew_ms)
        {
            return Err(Error::FutureBlock {
                height: block.height,
                time_ms: block.time_ms,
                now_ms: self.now_ms,
            });
        }
        if block.transactions.len() > self.cfg.max_batch_txs {
            return Err(Error::Malformed("too many transactions in block".into()));
        }
        let bytes: usize = block.transactions.iter().map(Vec::len).sum();
        if bytes > self.cfg.max_block_bytes {
            return Err(Error::Malformed(format!(
                "block of {bytes} transaction bytes exceeds {}",
                self.cfg.max_block_bytes
            )));
        }
        let mut seen = BTreeSet::new();
        for (tx, th) in block.transactions.iter().zip(tx_hashes) {
            if tx.len() > self.cfg.max_tx_bytes {
                return Err(Error::Malformed("transaction too large".into()));
            }
            if let Err(e) = self.cfg.payload_check.check(tx) {
                return Err(Error::Malformed(format!("block payload: {e}")));
            }
            let th = *th;
            if !seen.insert(th) {
                return Err(Error::Malformed("duplicate transaction in block".into()));
            }
            if self.recent_txs.contains_key(&th) {
                return Err(Error::Malformed("transaction already committed".into()));
            }
        }
        // No transaction may already be in flight at another height of this view.
        for (h, slot) in self.slots.range(self.last_delivered + 1..) {
            if *h == block.height {
                continue;
            }
            if slot.accepted_in(self.view).is_some() {
                for th in &slot.pre_prepare_txs {
                    if seen.contains(th) {
                        return Err(Error::Malformed(
                            "transaction already proposed at another height".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ normal case

    /// §4.2: a backup accepts a pre-prepare if it is in view `v`, the signature is the
    /// leader's, it has not accepted a different one for (v, n) and n is in the window.
    fn on_pre_prepare(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::PrePrepare(pp) = &sm.message else {
            return Err(Error::Malformed("not a pre-prepare".into()));
        };
        self.check_view(pp.view)?;
        if sm.from != self.cfg.validators.leader(pp.view) {
            return Err(Error::NotEntitled(sm.from));
        }
        let n = pp.block.height;
        if n <= self.last_delivered && self.slots.get(&n).is_none_or(|s| s.committed.is_some()) {
            return Err(Error::Stale("pre-prepare for a delivered height"));
        }
        self.in_window(n)?;
        if pp.block.view != pp.view || pp.block.proposer != sm.from {
            return Err(Error::Malformed(
                "fresh block must carry the current view and its proposer".into(),
            ));
        }
        let (header, tx_hashes) = block_header(&pp.block);
        let hash = header.hash();
        let spp = SignedProposal {
            proposal: Proposal {
                view: pp.view,
                header,
            },
            signature: sm.signature,
        };
        if let Some(existing) = self.slots.get(&n).and_then(|s| s.accepted_hash_in(pp.view)) {
            return if existing == hash {
                Err(Error::Duplicate)
            } else {
                spp.verify(&self.cfg.validators)
                    .and(Err(Error::Equivocation(sm.from, "PRE-PREPARE")))
            };
        }
        if let Some(h) = self.delivered_hashes.get(&n) {
            if *h != hash {
                return Err(Error::BadChain(n));
            }
        }
        self.validate_block_content(&pp.block, &tx_hashes)?;
        spp.verify(&self.cfg.validators)?;
        let Message::PrePrepare(pp) = sm.message else {
            return Err(Error::Malformed("not a pre-prepare".into()));
        };
        self.accept_pre_prepare(spp, hash, Some((pp.block, tx_hashes)));
        Ok(())
    }

    /// Records an accepted pre-prepare (persisted first) and, as a backup, sends PREPARE.
    /// `hash` is its block's hash; `body` the block and its transactions' hashes when known
    /// (a NEW-VIEW re-proposes blocks by header only).
    fn accept_pre_prepare(
        &mut self,
        spp: SignedProposal,
        hash: BlockHash,
        body: Option<(Block, Vec<TxHash>)>,
    ) {
        let view = spp.proposal.view;
        let n = spp.height();
        let slot = self.slots.entry(n).or_default();
        slot.set_pre_prepare(spp, hash, body);
        if let Some(record) = slot.accepted_record() {
            self.out
                .push(Action::Persist(PersistDelta::PrePrepare(record)));
        }
        if self.cfg.validators.leader(view) != self.id {
            let sm = self.sign(Message::Prepare(Vote {
                view,
                height: n,
                block_hash: hash,
            }));
            let slot = self.slots.entry(n).or_default();
            slot.prepares.insert((view, self.id), (hash, sm.signature));
            slot.own_prepare = Some(sm.clone());
            self.out
                .push(Action::Persist(PersistDelta::Vote(sm.clone())));
            self.out.push(Action::Broadcast { msg: sm });
        }
        self.check_prepared(n);
        self.check_committed(n);
    }

    /// §4.2: PREPARE and COMMIT votes are accepted in the current view, inside the window.
    fn on_vote(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let (vote, is_commit) = match &sm.message {
            Message::Prepare(v) => (*v, false),
            Message::Commit(v) => (*v, true),
            _ => return Err(Error::Malformed("not a vote".into())),
        };
        self.check_view(vote.view)?;
        let n = vote.height;
        let from = sm.from;
        if !is_commit && from == self.cfg.validators.leader(vote.view) {
            return Err(Error::NotEntitled(from));
        }
        if n <= self.stable.height {
            return Err(Error::Stale("vote below the stable checkpoint"));
        }
        if is_commit && n > self.high_watermark() {
            // A COMMIT beyond our window: its sender committed n - 1. If f+1 replicas
            // are that far ahead, we are behind and fetch the blocks.
            self.note_ahead(&sm, n)?;
        }
        self.in_window(n)?;
        let key = (vote.view, from);
        let existing = self.slots.get(&n).and_then(|s| {
            if is_commit {
                s.commits.get(&key).copied()
            } else {
                s.prepares.get(&key).copied()
            }
        });
        if let Some((h, sig)) = existing {
            if h != vote.block_hash {
                let kind = if is_commit { "COMMIT" } else { "PREPARE" };
                sm.verify(&self.cfg.validators)?;
                return Err(Error::Equivocation(from, kind));
            }
            if sig == sm.signature && !is_commit {
                // A retransmitted PREPARE: the sender has not seen this slot commit. If we
                // have committed it, help the sender by re-sending our COMMIT. (Only
                // PREPAREs trigger this, so two helpers never answer each other forever.)
                self.help_lagging(from, n);
            }
            return Err(Error::Duplicate);
        }
        if let Some(pp_hash) = self
            .slots
            .get(&n)
            .and_then(|s| s.accepted_hash_in(vote.view))
        {
            if pp_hash != vote.block_hash {
                // The sender voted for a block the leader did not propose to us; keep the
                // vote (it occupies the sender's slot) but count the anomaly.
                sm.verify(&self.cfg.validators)?;
                self.record_vote(n, key, vote.block_hash, sm.signature, is_commit);
                return Err(Error::UnknownBlock(n));
            }
        }
        sm.verify(&self.cfg.validators)?;
        self.record_vote(n, key, vote.block_hash, sm.signature, is_commit);
        if is_commit {
            self.check_committed(n);
        } else {
            self.check_prepared(n);
        }
        Ok(())
    }

    fn record_vote(
        &mut self,
        n: Height,
        key: (View, ReplicaId),
        hash: BlockHash,
        sig: Signature,
        is_commit: bool,
    ) {
        let slot = self.slots.entry(n).or_default();
        if is_commit {
            slot.commits.insert(key, (hash, sig));
        } else {
            slot.prepares.insert(key, (hash, sig));
        }
    }

    /// Replies that help a lagging peer are limited to [`HELP_BUDGET`] per peer per
    /// retransmission period.
    fn may_help(&mut self, peer: ReplicaId) -> bool {
        let used = self.help_used.entry(peer).or_insert(0);
        if *used >= HELP_BUDGET {
            return false;
        }
        *used += 1;
        true
    }

    fn help_lagging(&mut self, to: ReplicaId, n: Height) {
        let settled = self
            .slots
            .get(&n)
            .is_some_and(|s| s.committed.is_some() || n <= self.last_delivered);
        if !settled || !self.may_help(to) {
            return;
        }
        let Some(slot) = self.slots.get(&n) else {
            return;
        };
        let view = self.view;
        if let Some(pp) = slot.accepted_in(view) {
            if self.cfg.validators.leader(view) == self.id {
                if let Some(block) = slot.block_with_hash(&slot.pre_prepare_hash) {
                    let msg = pp.message(self.id, block.clone());
                    self.out.push(Action::Send { to, msg });
                }
            }
        }
        if let Some(c) = &slot.own_commit {
            if matches!(&c.message, Message::Commit(v) if v.view == view) {
                self.out.push(Action::Send { to, msg: c.clone() });
            }
        }
    }

    /// §4.2 prepared(m, v, n, i): the pre-prepare plus 2f matching PREPAREs from backups.
    fn check_prepared(&mut self, n: Height) {
        let view = self.view;
        if self.view_changing {
            return;
        }
        let leader = self.cfg.validators.leader(view);
        let need = self.quorum().saturating_sub(1);
        let Some(slot) = self.slots.get(&n) else {
            return;
        };
        let Some(pp) = slot.accepted_in(view) else {
            return;
        };
        if slot.prepared.as_ref().is_some_and(|c| c.view() == view) {
            return;
        }
        let hash = slot.pre_prepare_hash;
        let prepares: Vec<(ReplicaId, Signature)> = slot
            .prepares
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
            .filter(|((_, r), (h, _))| *r != leader && *h == hash)
            .map(|((_, r), (_, s))| (*r, *s))
            .take(need)
            .collect();
        if prepares.len() < need {
            return;
        }
        let cert = PreparedCertificate {
            proposal: *pp,
            prepares,
        };
        self.out
            .push(Action::Persist(PersistDelta::Prepared(cert.clone())));
        if let Some(slot) = self.slots.get_mut(&n) {
            slot.prepared = Some(cert);
        }
        self.try_send_commit(n);
    }

    /// Sends COMMIT once prepared — and, to keep the chain linked across view changes,
    /// only once the parent block is committed with the hash this block links to.
    fn try_send_commit(&mut self, n: Height) {
        let view = self.view;
        if self.view_changing {
            return;
        }
        let Some(slot) = self.slots.get(&n) else {
            return;
        };
        let Some(pc) = slot.prepared.as_ref().filter(|c| c.view() == view) else {
            return;
        };
        if slot
            .own_commit
            .as_ref()
            .is_some_and(|c| matches!(&c.message, Message::Commit(v) if v.view == view))
        {
            return;
        }
        let prev = pc.header().prev_hash;
        let hash = pc.header().hash();
        match self.committed_hash(n - 1) {
            None => return,
            Some(p) if p != prev => {
                self.reject(Error::BadChain(n));
                return;
            }
            Some(_) => {}
        }
        let sm = self.sign(Message::Commit(Vote {
            view,
            height: n,
            block_hash: hash,
        }));
        if let Some(slot) = self.slots.get_mut(&n) {
            slot.commits.insert((view, self.id), (hash, sm.signature));
            slot.own_commit = Some(sm.clone());
        }
        self.out
            .push(Action::Persist(PersistDelta::Vote(sm.clone())));
        self.out.push(Action::Broadcast { msg: sm });
        self.check_committed(n);
    }

    /// §4.2 committed-local: 2f+1 matching COMMITs in the current view for a known block.
    fn check_committed(&mut self, n: Height) {
        let view = self.view;
        let quorum = self.quorum();
        let Some(slot) = self.slots.get(&n) else {
            return;
        };
        if slot.committed.is_some() {
            return;
        }
        let mut by_hash: BTreeMap<BlockHash, Vec<(ReplicaId, Signature)>> = BTreeMap::new();
        for ((_, r), (h, s)) in slot
            .commits
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
        {
            by_hash.entry(*h).or_default().push((*r, *s));
        }
        let Some((hash, sigs)) = by_hash.into_iter().find(|(_, s)| s.len() >= quorum) else {
            return;
        };
        let signers: Vec<ReplicaId> = sigs.iter().map(|(r, _)| *r).collect();
        let cert = CommitCertificate {
            view,
            signatures: sigs.into_iter().take(quorum).collect(),
        };
        let block = slot.block_with_hash(&hash).cloned();
        if let Some(slot) = self.slots.get_mut(&n) {
            slot.committed = Some((hash, cert.clone()));
        }
        if n > self.last_delivered {
            match block {
                Some(block) => {
                    self.deliverable.insert(n, (block, cert));
                    if n > self.last_delivered + 1 {
                        self.note_behind(n, signers);
                    }
                    self.try_deliver();
                }
                // Committed by a quorum, but we hold only its header (or nothing): fetch the
                // block from the signers. Its hash is known, so later heights can commit.
                None => self.note_behind(n, signers),
            }
        } else if self.delivered_hashes.get(&n).is_some_and(|h| *h != hash) {
            self.reject(Error::Invariant(format!(
                "height {n} committed twice with different blocks"
            )));
        }
        self.try_send_commit(n + 1);
    }

    fn try_deliver(&mut self) {
        while let Some((block, cert)) = self.deliverable.remove(&(self.last_delivered + 1)) {
            if block.prev_hash != self.last_delivered_hash {
                self.reject(Error::Invariant(format!(
                    "committed block {} does not link to the delivered chain",
                    block.height
                )));
                return;
            }
            self.deliver(block, cert);
        }
    }

    fn deliver(&mut self, block: Block, certificate: CommitCertificate) {
        let h = block.height;
        let hash = block.hash();
        for tx in &block.transactions {
            let th = TxHash::of(tx);
            self.remove_pending(&th);
            self.recent_txs.insert(th, h);
            self.recent_by_height.entry(h).or_default().push(th);
        }
        let keep_from = h.saturating_sub(self.cfg.dedup_window_blocks);
        while let Some(entry) = self.recent_by_height.first_entry() {
            if *entry.key() >= keep_from {
                break;
            }
            for th in entry.remove() {
                self.recent_txs.remove(&th);
            }
        }
        self.last_delivered = h;
        self.last_delivered_hash = hash;
        self.delivered_hashes.insert(h, hash);
        self.progressed = true;
        self.view_timeout_cur_ms = self.cfg.view_timeout_ms;
        self.out.push(Action::Commit { block, certificate });
        self.try_send_commit(h + 1);
    }

    /// Whether the last delivered block is above the stable-checkpoint heights: until the
    /// next checkpoint height is reached and becomes stable, clients cannot check what they
    /// read of those blocks.
    fn tail_open(&self) -> bool {
        !self.learner
            && !self
                .last_delivered
                .is_multiple_of(self.cfg.checkpoint_interval)
    }

    /// An idle leader closes the checkpoint: with nothing to order and nothing in flight, it
    /// proposes an empty block at the next height, one at a time, until the chain reaches a
    /// checkpoint height. Every committed block is thus soon under a stable checkpoint, whose
    /// certified state root is what clients check compact blocks against.
    fn close_checkpoint(&mut self) {
        let n = self.next_propose;
        if !self.pending.is_empty()
            || !self.tail_open()
            || n != self.last_delivered + 1
            || n > self.high_watermark()
        {
            return;
        }
        self.propose(n, self.last_delivered_hash, Vec::new());
    }

    /// Leader: proposes a block of `transactions` at height `n` on `prev_hash`, stamped with
    /// its clock; accepts it (persisted first) and broadcasts the PRE-PREPARE.
    fn propose(&mut self, n: Height, prev_hash: BlockHash, transactions: Vec<Vec<u8>>) {
        let block = Block {
            height: n,
            prev_hash,
            view: self.view,
            proposer: self.id,
            time_ms: self.now_ms,
            transactions,
        };
        let (header, tx_hashes) = block_header(&block);
        let spp = SignedProposal::sign(
            &self.cfg.validators,
            self.id,
            Proposal {
                view: self.view,
                header,
            },
            &self.key,
        );
        let msg = spp.message(self.id, block.clone());
        self.next_propose = n + 1;
        self.accept_pre_prepare(spp, header.hash(), Some((block, tx_hashes)));
        self.out.push(Action::Broadcast { msg });
    }

    /// §4.3 leader: assign pending requests to the next heights, within the window.
    fn try_propose(&mut self) {
        if self.view_changing || self.leader() != self.id {
            return;
        }
        self.close_checkpoint();
        while !self.pending.is_empty() {
            let n = self.next_propose;
            if n > self.high_watermark()
                || (n - 1).saturating_sub(self.last_delivered) >= self.cfg.max_blocks_in_flight
            {
                return;
            }
            let prev = match self
                .slots
                .get(&(n - 1))
                .and_then(|s| s.accepted_hash_in(self.view))
            {
                Some(h) => h,
                None => match self.committed_hash(n - 1) {
                    Some(h) => h,
                    None => return,
                },
            };
            // The pipelining rule below, tested first on the waiting requests (a bound on what
            // the block can take) before hashing every transaction in flight.
            let worth = self.cfg.pipeline_min_batch.min(self.cfg.max_batch_txs);
            if n - 1 > self.last_delivered && self.pending.len() < worth {
                return;
            }
            let mut in_flight = BTreeSet::new();
            for slot in self.slots.range(self.last_delivered + 1..).map(|(_, s)| s) {
                if slot.pre_prepare.is_some() {
                    if slot.accepted_in(self.view).is_some() && !slot.body_known() {
                        // Re-proposed by header in the NEW-VIEW and never received: its
                        // transactions are unknown, so anything proposed now might repeat
                        // one. Wait until it commits and arrives by state transfer.
                        return;
                    }
                    in_flight.extend(slot.pre_prepare_txs.iter().copied());
                }
            }
            for (b, _) in self.deliverable.values() {
                in_flight.extend(b.transactions.iter().map(|t| TxHash::of(t)));
            }
            let mut txs = Vec::new();
            let mut bytes = 0usize;
            for th in self.pending_order.values() {
                if txs.len() >= self.cfg.max_batch_txs {
                    break;
                }
                if in_flight.contains(th) || self.recent_txs.contains_key(th) {
                    continue;
                }
                if let Some(p) = self.pending.get(th) {
                    // The block's byte budget: what does not fit waits for the next block.
                    if bytes + p.payload.len() > self.cfg.max_block_bytes {
                        break;
                    }
                    bytes += p.payload.len();
                    txs.push(p.payload.clone());
                }
            }
            if txs.is_empty() {
                return;
            }
            // With a block already in flight, wait for enough requests to make the next one
            // worth its round of votes: under load the blocks grow (fewer votes, fsyncs and
            // batch verifications per transaction); when idle the first block goes at once.
            if n - 1 > self.last_delivered && txs.len() < worth {
                return;
            }
            self.propose(n, prev, txs);
        }
    }

    // ------------------------------------------------------------------ checkpoints

    fn handle_executed(
        &mut self,
        height: Height,
        state_root: StateRoot,
        next_validators: Option<ValidatorSet>,
    ) -> Result<(), Error> {
        if height > self.last_delivered {
            return Err(Error::Invariant(format!(
                "host executed height {height} beyond the last commit {}",
                self.last_delivered
            )));
        }
        if let Some(next) = next_validators {
            if next.epoch <= self.cfg.validators.epoch {
                return Err(Error::InvalidConfig("next epoch must be higher".into()));
            }
            if self.scheduled_epoch.is_none() {
                let k = self.cfg.checkpoint_interval;
                let activation = height.div_ceil(k) * k + self.cfg.window_size;
                self.scheduled_epoch = Some((activation, next));
            }
        }
        if !height.is_multiple_of(self.cfg.checkpoint_interval) || height <= self.stable.height {
            return Ok(());
        }
        if self.learner {
            // It has no vote; its checkpoints become stable by the members' votes.
            return Ok(());
        }
        let Some(hash) = self.delivered_hashes.get(&height).copied() else {
            return Ok(());
        };
        let sm = self.sign(Message::Checkpoint(CheckpointVote {
            height,
            block_hash: hash,
            state_root,
        }));
        self.checkpoint_votes
            .entry(height)
            .or_default()
            .insert(self.id, (hash, state_root, sm.signature));
        self.own_checkpoints.insert(height, sm.clone());
        self.out
            .push(Action::Persist(PersistDelta::Vote(sm.clone())));
        self.out.push(Action::Broadcast { msg: sm });
        self.check_checkpoint(height);
        Ok(())
    }

    /// §4.3 checkpoints: 2f+1 matching CHECKPOINTs make a checkpoint stable.
    fn on_checkpoint(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::Checkpoint(cv) = &sm.message else {
            return Err(Error::Malformed("not a checkpoint".into()));
        };
        let cv = *cv;
        if cv.height <= self.stable.height {
            return Err(Error::Stale("checkpoint at or below the stable one"));
        }
        if !cv.height.is_multiple_of(self.cfg.checkpoint_interval) {
            return Err(Error::Malformed(
                "checkpoint height not a multiple of K".into(),
            ));
        }
        if let Some((h, r, _)) = self
            .checkpoint_votes
            .get(&cv.height)
            .and_then(|m| m.get(&sm.from))
        {
            return if *h == cv.block_hash && *r == cv.state_root {
                Err(Error::Duplicate)
            } else {
                sm.verify(&self.cfg.validators)
                    .and(Err(Error::Equivocation(sm.from, "CHECKPOINT")))
            };
        }
        sm.verify(&self.cfg.validators)?;
        // Bound the votes kept per sender: drop its lowest when over the cap.
        let cap = (self.cfg.window_size / self.cfg.checkpoint_interval) as usize + 2;
        let mine: Vec<Height> = self
            .checkpoint_votes
            .iter()
            .filter(|(_, m)| m.contains_key(&sm.from))
            .map(|(h, _)| *h)
            .collect();
        if mine.len() >= cap {
            if let Some(lowest) = mine.first() {
                if *lowest > cv.height {
                    return Err(Error::Limit("too many checkpoint votes from sender".into()));
                }
                if let Some(m) = self.checkpoint_votes.get_mut(lowest) {
                    m.remove(&sm.from);
                }
            }
        }
        self.checkpoint_votes
            .entry(cv.height)
            .or_default()
            .insert(sm.from, (cv.block_hash, cv.state_root, sm.signature));
        self.check_checkpoint(cv.height);
        Ok(())
    }

    fn check_checkpoint(&mut self, h: Height) {
        if h <= self.stable.height {
            return;
        }
        let Some(votes) = self.checkpoint_votes.get(&h) else {
            return;
        };
        let mut groups: BTreeMap<(BlockHash, StateRoot), Vec<(ReplicaId, Signature)>> =
            BTreeMap::new();
        for (r, (hash, root, sig)) in votes {
            groups.entry((*hash, *root)).or_default().push((*r, *sig));
        }
        let quorum = self.quorum();
        let weak = self.cfg.validators.weak_quorum();
        for ((hash, root), sigs) in groups {
            if sigs.len() >= quorum {
                let cert = CheckpointCertificate {
                    height: h,
                    block_hash: hash,
                    state_root: root,
                    signatures: sigs.into_iter().take(quorum).collect(),
                };
                self.adopt_stable(cert);
                return;
            }
            if sigs.len() >= weak && h > self.last_delivered {
                // At least one honest replica executed up to h: we are behind.
                self.note_behind(h, sigs.iter().map(|(r, _)| *r).collect());
            }
        }
    }

    /// Makes `cert` the stable checkpoint and garbage-collects the log below it.
    fn adopt_stable(&mut self, cert: CheckpointCertificate) {
        let h = cert.height;
        if h <= self.stable.height {
            return;
        }
        if let Some(known) = self.committed_hash(h) {
            if known != cert.block_hash {
                self.reject(Error::Invariant(format!(
                    "stable checkpoint {h} conflicts with our committed block"
                )));
                return;
            }
        }
        self.out
            .push(Action::Persist(PersistDelta::StableCheckpoint(
                cert.clone(),
            )));
        let signers: Vec<ReplicaId> = cert.signatures.iter().map(|(r, _)| *r).collect();
        self.stable = cert;
        self.slots.retain(|k, _| *k > h);
        self.checkpoint_votes.retain(|k, _| *k > h);
        self.own_checkpoints.retain(|k, _| *k > h);
        self.delivered_hashes.retain(|k, _| *k >= h);
        self.delivered_hashes.insert(h, self.stable.block_hash);
        if self.next_propose <= h {
            self.next_propose = h + 1;
        }
        if h > self.last_delivered {
            self.note_behind(h, signers);
        }
        // Slots waiting on their parent may now be able to commit.
        self.try_send_commit(h + 1);
    }

    fn check_epoch_change(&mut self) {
        if self.epoch_change_announced {
            return;
        }
        let Some((activation, next)) = &self.scheduled_epoch else {
            return;
        };
        if self.stable.height >= *activation && self.last_delivered >= *activation {
            self.epoch_change_announced = true;
            self.out.push(Action::EpochChange {
                activation_height: *activation,
                checkpoint: self.stable.clone(),
                next_validators: next.clone(),
            });
        }
    }

    // ------------------------------------------------------------------ view change

    fn on_view_timer(&mut self) {
        self.vc_timer_armed = false;
        if !self.view_changing {
            // §4.4: the timer expired while waiting for requests to commit.
            self.start_view_change(self.view + 1);
        } else if self.view_change_count(self.view) >= self.quorum() {
            // The new leader failed to install the view in time: move on, waiting longer.
            self.view_timeout_cur_ms =
                (self.view_timeout_cur_ms * 2).min(self.cfg.view_timeout_ms_max);
            self.start_view_change(self.view + 1);
        }
    }

    fn view_change_count(&self, view: View) -> usize {
        self.view_changes
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
            .count()
    }

    fn update_view_timer(&mut self) {
        if self.view_changing {
            return;
        }
        // Requests wait, or the chain waits for its checkpoint to close: a leader that does
        // neither is replaced.
        let want = !self.pending.is_empty() || self.tail_open();
        if want && (!self.vc_timer_armed || self.progressed) {
            self.vc_timer_armed = true;
            self.out.push(Action::SetTimer {
                kind: TimerKind::ViewChange,
                after_ms: self.view_timeout_cur_ms,
            });
        } else if !want && self.vc_timer_armed {
            self.vc_timer_armed = false;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::ViewChange,
            });
        }
    }

    fn check_view_change_quorum(&mut self) {
        if self.view_changing
            && !self.vc_timer_armed
            && self.view_change_count(self.view) >= self.quorum()
        {
            self.vc_timer_armed = true;
            self.out.push(Action::SetTimer {
                kind: TimerKind::ViewChange,
                after_ms: self.view_timeout_cur_ms,
            });
        }
    }

    /// §4.4: move to `new_view`, multicasting VIEW-CHANGE with the checkpoint proof and
    /// the P-set.
    fn start_view_change(&mut self, new_view: View) {
        if new_view <= self.view || new_view > VIEW_MAX {
            return;
        }
        self.view = new_view;
        self.view_changing = true;
        if self.vc_timer_armed {
            self.vc_timer_armed = false;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::ViewChange,
            });
        }
        // Votes of older views are useless from now on.
        for slot in self.slots.values_mut() {
            slot.prepares.retain(|(v, _), _| *v >= new_view);
            slot.commits.retain(|(v, _), _| *v >= new_view);
        }
        self.out.push(Action::Persist(PersistDelta::View {
            view: new_view,
            view_changing: true,
        }));
        self.send_view_change();
        self.check_view_change_quorum();
        self.try_new_view();
    }

    fn send_view_change(&mut self) {
        let prepared: Vec<PreparedCertificate> = self
            .slots
            .range(self.stable.height + 1..)
            .filter_map(|(_, s)| s.prepared.clone())
            .collect();
        let vc = ViewChange {
            new_view: self.view,
            checkpoint: self.stable.clone(),
            prepared,
        };
        let sm = self.sign(Message::ViewChange(vc.clone()));
        self.view_changes.insert(
            (self.view, self.id),
            SignedViewChange {
                from: self.id,
                view_change: vc,
                signature: sm.signature,
            },
        );
        self.own_view_changes.insert(self.view, sm.clone());
        while self.own_view_changes.len() > PersistedState::OWN_VIEW_CHANGES_KEPT {
            self.own_view_changes.pop_first();
        }
        self.out
            .push(Action::Persist(PersistDelta::ViewChange(sm.clone())));
        self.out.push(Action::Broadcast { msg: sm });
    }

    /// Checks a VIEW-CHANGE's content (§4.4): valid checkpoint proof, and prepared
    /// certificates for distinct ascending heights inside the sender's window, from
    /// earlier views.
    fn validate_view_change(&self, vc: &ViewChange) -> Result<(), Error> {
        let vs = &self.cfg.validators;
        if vc.new_view > VIEW_MAX {
            return Err(Error::Malformed("view number too large".into()));
        }
        if !vc
            .checkpoint
            .height
            .is_multiple_of(self.cfg.checkpoint_interval)
        {
            return Err(Error::Malformed(
                "checkpoint height not a multiple of K".into(),
            ));
        }
        if vc.prepared.len() as u64 > self.cfg.window_size {
            return Err(Error::Malformed("too many prepared certificates".into()));
        }
        // The checkpoint is not verified yet: its height is the sender's word.
        let low = vc.checkpoint.height;
        let high = low
            .checked_add(self.cfg.window_size)
            .ok_or_else(|| Error::Malformed("checkpoint height too large".into()))?;
        let mut last = low;
        for pc in &vc.prepared {
            let h = pc.height();
            if h <= last || h > high {
                return Err(Error::Malformed(
                    "prepared certificates not ascending inside the window".into(),
                ));
            }
            last = h;
            if pc.view() >= vc.new_view {
                return Err(Error::Malformed(
                    "prepared in a view not below the new one".into(),
                ));
            }
            if pc.header().tx_count > self.cfg.max_batch_txs as u64 {
                return Err(Error::Malformed("prepared block too large".into()));
            }
        }
        vc.checkpoint.verify(vs, &self.cfg.start_checkpoint)?;
        for pc in &vc.prepared {
            pc.verify(vs)?;
        }
        Ok(())
    }

    fn on_view_change(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::ViewChange(vc) = &sm.message else {
            return Err(Error::Malformed("not a view change".into()));
        };
        let from = sm.from;
        let target = vc.new_view;
        if target < self.view || (target == self.view && !self.view_changing) {
            // The sender is behind. Help it catch up (rate-limited per peer, so that two
            // replicas can never keep answering each other): our VIEW-CHANGE for the view
            // it is collecting, our current one, or the NEW-VIEW that installed our view.
            if self.may_help(from) {
                if self.view_changing {
                    for v in [target, self.view] {
                        if let Some(own) = self.own_view_changes.get(&v).cloned() {
                            self.out.push(Action::Send { to: from, msg: own });
                        }
                    }
                } else if let Some(nv) = self.new_view_msg.clone() {
                    if matches!(&nv.message, Message::NewView(n) if n.view == self.view) {
                        self.out.push(Action::Send { to: from, msg: nv });
                    }
                }
            }
            return Err(Error::StaleView {
                got: target,
                current: self.view,
            });
        }
        if target > VIEW_MAX {
            return Err(Error::Malformed("view number too large".into()));
        }
        if let Some(existing) = self.view_changes.get(&(target, from)) {
            return if existing.signature == sm.signature && existing.view_change == *vc {
                Err(Error::Duplicate)
            } else {
                sm.verify(&self.cfg.validators)
                    .and(Err(Error::Equivocation(from, "VIEW-CHANGE")))
            };
        }
        // Keep a few views per sender: drop its lowest when over the cap.
        let held: Vec<View> = self
            .view_changes
            .keys()
            .filter(|(_, r)| *r == from)
            .map(|(v, _)| *v)
            .collect();
        if held.len() >= PersistedState::OWN_VIEW_CHANGES_KEPT
            && held.first().is_some_and(|lowest| *lowest > target)
        {
            return Err(Error::Stale(
                "older than every view change held from sender",
            ));
        }
        sm.verify(&self.cfg.validators)?;
        self.validate_view_change(vc)?;
        let Message::ViewChange(vc) = sm.message else {
            return Err(Error::Malformed("not a view change".into()));
        };
        if held.len() >= PersistedState::OWN_VIEW_CHANGES_KEPT {
            if let Some(lowest) = held.first() {
                self.view_changes.remove(&(*lowest, from));
            }
        }
        self.view_changes.insert(
            (target, from),
            SignedViewChange {
                from,
                view_change: vc,
                signature: sm.signature,
            },
        );
        // §4.5.2 liveness: join once f+1 replicas want a higher view, moving to the
        // smallest such view.
        let mut lowest_higher: BTreeMap<ReplicaId, View> = BTreeMap::new();
        for (v, r) in self.view_changes.keys() {
            if *r != self.id && *v > self.view {
                let e = lowest_higher.entry(*r).or_insert(*v);
                *e = (*e).min(*v);
            }
        }
        if lowest_higher.len() >= self.cfg.validators.weak_quorum() {
            if let Some(min) = lowest_higher.values().min().copied() {
                self.start_view_change(min);
            }
        }
        self.check_view_change_quorum();
        self.try_new_view();
        Ok(())
    }

    /// Computes the checkpoint and O-set of a NEW-VIEW from its VIEW-CHANGEs (§4.4):
    /// `min-s` is the highest checkpoint, `max-s` the highest prepared height; each height
    /// between gets the block prepared in the highest view, or a null block. A block that
    /// does not link to the block chosen below it cannot have committed (a COMMIT is only
    /// sent once the parent is committed) and is replaced by a null block too.
    fn compute_o_set(
        &self,
        view: View,
        vcs: &[SignedViewChange],
    ) -> Result<(CheckpointCertificate, Vec<BlockHeader>), Error> {
        let cp = vcs
            .iter()
            .map(|v| &v.view_change.checkpoint)
            .fold(None::<&CheckpointCertificate>, |best, c| match best {
                Some(b) if b.height >= c.height => Some(b),
                _ => Some(c),
            })
            .ok_or_else(|| Error::Malformed("no view changes".into()))?
            .clone();
        let mut best: BTreeMap<Height, &PreparedCertificate> = BTreeMap::new();
        for v in vcs {
            for pc in &v.view_change.prepared {
                if pc.height() <= cp.height {
                    continue;
                }
                match best.get(&pc.height()) {
                    Some(b) if b.view() >= pc.view() => {}
                    _ => {
                        best.insert(pc.height(), pc);
                    }
                }
            }
        }
        let max_s = best.keys().next_back().copied().unwrap_or(cp.height);
        if max_s > cp.height.saturating_add(self.cfg.window_size) {
            return Err(Error::Malformed("O-set larger than the window".into()));
        }
        let leader = self.cfg.validators.leader(view);
        let mut prev = cp.block_hash;
        let mut headers = Vec::new();
        for n in cp.height + 1..=max_s {
            let header = match best.get(&n) {
                Some(pc) if pc.header().prev_hash == prev => *pc.header(),
                _ => Block::null(n, prev, view, leader).header(),
            };
            prev = header.hash();
            headers.push(header);
        }
        Ok((cp, headers))
    }

    /// New leader: once a quorum of VIEW-CHANGEs for the current view is held, multicast
    /// NEW-VIEW and install it.
    fn try_new_view(&mut self) {
        if !self.view_changing || self.leader() != self.id {
            return;
        }
        let view = self.view;
        let vcs: Vec<SignedViewChange> = self
            .view_changes
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
            .map(|(_, v)| v)
            .take(self.quorum())
            .cloned()
            .collect();
        if vcs.len() < self.quorum() {
            return;
        }
        let (cp, headers) = match self.compute_o_set(view, &vcs) {
            Ok(x) => x,
            Err(e) => {
                self.reject(e);
                return;
            }
        };
        let vs = &self.cfg.validators;
        let proposals: Vec<SignedProposal> = headers
            .into_iter()
            .map(|header| SignedProposal::sign(vs, self.id, Proposal { view, header }, &self.key))
            .collect();
        let nv = NewView {
            view,
            view_changes: vcs,
            proposals: proposals.clone(),
        };
        let sm = self.sign(Message::NewView(nv));
        self.install_new_view(cp, proposals, sm, true);
    }

    fn on_new_view(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::NewView(nv) = &sm.message else {
            return Err(Error::Malformed("not a new view".into()));
        };
        let view = nv.view;
        if view > VIEW_MAX {
            return Err(Error::Malformed("view number too large".into()));
        }
        if view < self.view || (view == self.view && !self.view_changing) {
            return Err(Error::StaleView {
                got: view,
                current: self.view,
            });
        }
        let vs = &self.cfg.validators;
        if sm.from != vs.leader(view) {
            return Err(Error::NotEntitled(sm.from));
        }
        if nv.view_changes.len() < self.quorum() || nv.view_changes.len() > vs.n() {
            return Err(Error::Malformed(
                "NEW-VIEW needs a quorum of view changes".into(),
            ));
        }
        for w in nv.view_changes.windows(2) {
            if w[0].from >= w[1].from {
                return Err(Error::Malformed(
                    "view changes not ascending by sender".into(),
                ));
            }
        }
        if nv.proposals.len() as u64 > self.cfg.window_size {
            return Err(Error::Malformed("O-set larger than the window".into()));
        }
        sm.verify(vs)?;
        for svc in &nv.view_changes {
            if svc.view_change.new_view != view {
                return Err(Error::Malformed("view change for another view".into()));
            }
            if self.view_changes.get(&(view, svc.from)) == Some(svc) {
                continue; // already verified
            }
            svc.verify_signature(vs)?;
            self.validate_view_change(&svc.view_change)?;
        }
        let (cp, headers) = self.compute_o_set(view, &nv.view_changes)?;
        if headers.len() != nv.proposals.len() {
            return Err(Error::Malformed(
                "O-set does not match the view changes".into(),
            ));
        }
        for (h, pp) in headers.iter().zip(&nv.proposals) {
            if pp.proposal.view != view || pp.proposal.header != *h {
                return Err(Error::Malformed(
                    "O-set does not match the view changes".into(),
                ));
            }
            pp.verify(vs)?;
        }
        let proposals = nv.proposals.clone();
        self.install_new_view(cp, proposals, sm, false);
        Ok(())
    }

    /// Enters the view of `nv` (§4.4): adopt its checkpoint, accept the O-set
    /// proposals (sending PREPAREs as a backup) and resume normal operation. The O-set names
    /// blocks by header: each one's transactions come from the blocks this replica holds for
    /// the height, or, once the block commits, from state transfer.
    fn install_new_view(
        &mut self,
        cp: CheckpointCertificate,
        proposals: Vec<SignedProposal>,
        nv: SignedMessage,
        broadcast: bool,
    ) {
        let view = match &nv.message {
            Message::NewView(n) => n.view,
            _ => return,
        };
        self.out
            .push(Action::Persist(PersistDelta::NewView(nv.clone())));
        self.out.push(Action::Persist(PersistDelta::View {
            view,
            view_changing: false,
        }));
        if broadcast {
            self.out.push(Action::Broadcast { msg: nv.clone() });
        }
        self.view = view;
        self.view_changing = false;
        self.new_view_msg = Some(nv);
        self.view_changes
            .retain(|_, v| v.view_change.new_view > view);
        if self.vc_timer_armed {
            self.vc_timer_armed = false;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::ViewChange,
            });
        }
        if cp.height > self.stable.height {
            self.adopt_stable(cp.clone());
        }
        for slot in self.slots.values_mut() {
            if slot
                .pre_prepare
                .as_ref()
                .is_some_and(|pp| pp.proposal.view < view)
            {
                slot.clear_pre_prepare();
            }
            slot.prepares.retain(|(v, _), _| *v >= view);
            slot.commits.retain(|(v, _), _| *v >= view);
        }
        let mut last = cp.height.max(self.stable.height);
        for spp in proposals {
            let n = spp.height();
            last = last.max(n);
            if n <= self.stable.height {
                continue;
            }
            let hash = spp.proposal.header.hash();
            if let Some(h) = self.delivered_hashes.get(&n) {
                if *h != hash {
                    self.reject(Error::Invariant(format!(
                        "new view re-proposes a different block at committed height {n}"
                    )));
                }
            }
            let held = self
                .slots
                .get(&n)
                .and_then(|s| s.block_with_hash(&hash))
                .or_else(|| {
                    self.deliverable
                        .get(&n)
                        .map(|(b, _)| b)
                        .filter(|b| b.hash() == hash)
                })
                .cloned();
            let body = held.map(|b| {
                let txs = b.tx_hashes();
                (b, txs)
            });
            self.accept_pre_prepare(spp, hash, body);
        }
        self.next_propose = last + 1;
        let heights: Vec<Height> = self.slots.keys().copied().collect();
        for n in heights {
            self.check_prepared(n);
            self.check_committed(n);
        }
    }

    // ------------------------------------------------------------------ retransmission

    fn outstanding(&self) -> bool {
        if self.view_changing || !self.own_checkpoints.is_empty() || !self.help_used.is_empty() {
            return true;
        }
        self.slots
            .range(self.last_delivered + 1..)
            .any(|(_, s)| s.committed.is_none() && s.accepted_in(self.view).is_some())
    }

    fn ensure_retransmit(&mut self) {
        if !self.retransmit_armed && self.outstanding() {
            self.retransmit_armed = true;
            self.out.push(Action::SetTimer {
                kind: TimerKind::Retransmit,
                after_ms: self.cfg.retransmit_ms,
            });
        }
    }

    /// Re-sends own messages that have not yet taken effect (messages may be lost).
    fn retransmit(&mut self) {
        if self.view_changing {
            if let Some(sm) = self.own_view_changes.get(&self.view).cloned() {
                self.out.push(Action::Broadcast { msg: sm });
            }
        } else {
            let view = self.view;
            let is_leader = self.leader() == self.id;
            let mut msgs = Vec::new();
            for slot in self.slots.range(self.last_delivered + 1..).map(|(_, s)| s) {
                if slot.committed.is_some() {
                    continue;
                }
                if is_leader {
                    if let Some(pp) = slot.accepted_in(view) {
                        if let Some(block) = slot.block_with_hash(&slot.pre_prepare_hash) {
                            msgs.push(pp.message(self.id, block.clone()));
                        }
                    }
                }
                for own in [&slot.own_prepare, &slot.own_commit].into_iter().flatten() {
                    let v = match &own.message {
                        Message::Prepare(v) | Message::Commit(v) => v.view,
                        _ => continue,
                    };
                    if v == view {
                        msgs.push(own.clone());
                    }
                }
            }
            for msg in msgs {
                self.out.push(Action::Broadcast { msg });
            }
        }
        if let Some((_, sm)) = self.own_checkpoints.iter().next_back() {
            let sm = sm.clone();
            self.out.push(Action::Broadcast { msg: sm });
        }
    }

    // ------------------------------------------------------------------ state transfer

    fn note_ahead(&mut self, sm: &SignedMessage, n: Height) -> Result<(), Error> {
        if self.ahead.get(&sm.from).is_some_and(|h| *h >= n) {
            return Ok(());
        }
        sm.verify(&self.cfg.validators)?;
        self.ahead.insert(sm.from, n);
        let high = self.high_watermark();
        let mut far: Vec<(Height, ReplicaId)> = self
            .ahead
            .iter()
            .filter(|(_, h)| **h > high)
            .map(|(r, h)| (*h, *r))
            .collect();
        let weak = self.cfg.validators.weak_quorum();
        if far.len() >= weak {
            far.sort_unstable_by(|a, b| b.cmp(a));
            // The f+1-th highest: at least one honest replica committed up to it.
            let target = far[weak - 1].0 - 1;
            self.note_behind(target, far.iter().map(|(_, r)| *r).collect());
        }
        Ok(())
    }

    fn note_behind(&mut self, target: Height, peers: Vec<ReplicaId>) {
        if target > self.transfer_target {
            self.transfer_target = target;
            self.transfer_peers.clear();
        }
        if target == self.transfer_target {
            self.transfer_peers
                .extend(peers.into_iter().filter(|p| *p != self.id));
        }
    }

    fn behind(&self) -> bool {
        self.transfer_target > self.last_delivered
            && !self.deliverable.contains_key(&(self.last_delivered + 1))
    }

    fn maybe_request_transfer(&mut self) {
        if !self.behind() {
            if self.transfer != Transfer::Idle {
                self.transfer = Transfer::Idle;
                self.out.push(Action::CancelTimer {
                    kind: TimerKind::StateTransfer,
                });
            }
            return;
        }
        if self.transfer == Transfer::Idle {
            // Debounce: the missing block may still arrive through normal operation.
            self.transfer = Transfer::Waiting;
            self.out.push(Action::SetTimer {
                kind: TimerKind::StateTransfer,
                after_ms: self.cfg.retransmit_ms,
            });
        }
    }

    fn request_transfer(&mut self, peer: Option<ReplicaId>) {
        let peer = match peer {
            Some(p) => p,
            None => {
                let mut candidates: Vec<ReplicaId> = self.transfer_peers.iter().copied().collect();
                if candidates.is_empty() {
                    candidates = self
                        .cfg
                        .validators
                        .members
                        .keys()
                        .copied()
                        .filter(|r| *r != self.id)
                        .collect();
                }
                if candidates.is_empty() {
                    return;
                }
                let idx = (self.transfer_attempt % candidates.len() as u64) as usize;
                self.transfer_attempt += 1;
                candidates[idx]
            }
        };
        self.transfer = Transfer::InFlight(peer);
        self.out.push(Action::RequestStateTransfer {
            from: peer,
            from_height: self.last_delivered + 1,
        });
        self.out.push(Action::SetTimer {
            kind: TimerKind::StateTransfer,
            after_ms: self.cfg.state_transfer_timeout_ms,
        });
    }

    fn on_transfer_timer(&mut self) {
        if !self.behind() {
            self.transfer = Transfer::Idle;
            return;
        }
        self.request_transfer(None);
    }

    fn handle_state_transfer(
        &mut self,
        from: ReplicaId,
        blocks: Vec<(Block, CommitCertificate)>,
    ) -> Result<(), Error> {
        if !self.cfg.validators.contains(from) {
            return Err(Error::UnknownSender(from));
        }
        if blocks.len() > self.cfg.max_state_transfer_blocks {
            return Err(Error::Limit("state transfer batch too large".into()));
        }
        let mut progress = false;
        let mut result = Ok(());
        for (block, cert) in blocks {
            let h = block.height;
            if h <= self.last_delivered {
                continue;
            }
            if h != self.last_delivered + 1 {
                result = Err(Error::Malformed("gap in state transfer".into()));
                break;
            }
            if block.prev_hash != self.last_delivered_hash {
                result = Err(Error::BadChain(h));
                break;
            }
            if let Err(e) = verify_commit_certificate(&self.cfg.validators, &block, &cert) {
                result = Err(e);
                break;
            }
            if let Some(known) = self.committed_hash(h) {
                if known != block.hash() {
                    result = Err(Error::Invariant(format!(
                        "transferred block {h} conflicts with a committed one"
                    )));
                    break;
                }
            }
            self.deliverable.remove(&h);
            self.deliver(block, cert);
            progress = true;
            self.try_deliver();
        }
        if progress {
            let peer = match self.transfer {
                Transfer::InFlight(p) => Some(p),
                _ => Some(from),
            };
            self.transfer = Transfer::Idle;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::StateTransfer,
            });
            if self.behind() {
                self.request_transfer(peer);
            }
        }
        result
    }
}
