//! Deterministic network simulator driving real `Replica`s on virtual time.
//!
//! Everything random comes from one seeded ChaCha RNG, and all state lives in ordered
//! maps, so a seed replays exactly. Safety invariants are checked as every commit is
//! delivered (i.e. after every step); liveness is checked at the end of the run.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shoji_consensus::ed25519_dalek::{Signature, SigningKey};
use shoji_consensus::{
    verify_commit_certificate, Action, Block, BlockHash, CommitCertificate, Config, Error, Height,
    Message, PersistedState, Replica, ReplicaId, SignedMessage, TimerKind, ValidatorSet, Vote,
};

/// Network and crash faults active before the heal.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Probability a message is dropped.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub dup: f64,
    /// Minimum one-way delay.
    pub delay_min_ms: u64,
    /// Maximum one-way delay (delays are uniform, so messages reorder).
    pub delay_max_ms: u64,
    /// Random partitions come and go.
    pub partitions: bool,
    /// Honest replicas crash and restart from their persisted state.
    pub crashes: bool,
    /// Probability that a replica crashes in the middle of executing one input's actions.
    pub mid_step_crash: f64,
}

impl Faults {
    /// A perfect network.
    pub fn none() -> Faults {
        Faults {
            loss: 0.0,
            dup: 0.0,
            delay_min_ms: 1,
            delay_max_ms: 10,
            partitions: false,
            crashes: false,
            mid_step_crash: 0.0,
        }
    }
}

/// Misbehaviour of a Byzantine replica (it runs the real code; its output is tampered with).
#[derive(Clone, Copy, Debug, Default)]
pub struct ByzProfile {
    /// Sends different pre-prepares to different replicas when leader.
    pub equivocate: bool,
    /// Sends messages with broken signatures or impersonated senders.
    pub forge: bool,
    /// Replays previously seen (old-view) messages.
    pub replay: bool,
    /// Votes for blocks that do not exist.
    pub unknown_votes: bool,
    /// Sends nothing at all.
    pub silent: bool,
    /// Sends random bytes.
    pub garbage: bool,
    /// Answers state transfer with tampered blocks.
    pub bad_transfer: bool,
    /// Stamps the blocks it proposes far ahead of the clock ([`FUTURE_MS`]).
    pub future_time: bool,
}

/// Wall-clock time (Unix ms) at virtual time 0: every replica's clock is this plus `now`.
pub const CLOCK_BASE_MS: u64 = 1_700_000_000_000;

/// How far ahead of the clock a [`ByzProfile::future_time`] leader stamps its blocks.
pub const FUTURE_MS: u64 = 3_600_000;

/// Everything that defines one simulation run.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Number of replicas.
    pub n: usize,
    /// RNG seed.
    pub seed: u64,
    /// Byzantine replicas and their behaviour.
    pub byzantine: Vec<(usize, ByzProfile)>,
    /// Faults before the heal.
    pub faults: Faults,
    /// Virtual time at which the network heals.
    pub chaos_ms: u64,
    /// Requests submitted before the heal.
    pub requests_chaos: usize,
    /// Requests submitted after the heal; each must commit (liveness).
    pub requests_after: usize,
    /// Time after the heal within which all post-heal requests must commit.
    pub liveness_bound_ms: u64,
    /// Resubmit a request to all replicas if it has not committed after this long.
    pub client_retry_ms: u64,
}

impl SimOptions {
    /// A fault-free run of `n` replicas.
    pub fn calm(n: usize, seed: u64) -> SimOptions {
        SimOptions {
            n,
            seed,
            byzantine: Vec::new(),
            faults: Faults::none(),
            chaos_ms: 0,
            requests_chaos: 0,
            requests_after: 0,
            liveness_bound_ms: 20_000,
            client_retry_ms: 2_000,
        }
    }

    /// A randomized fault profile derived from `seed`.
    pub fn random(seed: u64) -> SimOptions {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_fa17);
        // Drawn from its own stream, so that adding it changed no other draw of a seed.
        let mut clock_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0c10_c4f0_7e57);
        let n = if rng.gen_bool(0.8) { 4 } else { 7 };
        let f = (n - 1) / 3;
        let nbyz = rng.gen_range(0..=f);
        let mut ids: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.gen_range(0..=i);
            ids.swap(i, j);
        }
        let byzantine = ids[..nbyz]
            .iter()
            .map(|&i| {
                let p = ByzProfile {
                    equivocate: rng.gen_bool(0.6),
                    forge: rng.gen_bool(0.5),
                    replay: rng.gen_bool(0.5),
                    unknown_votes: rng.gen_bool(0.5),
                    silent: rng.gen_bool(0.2),
                    garbage: rng.gen_bool(0.3),
                    bad_transfer: rng.gen_bool(0.5),
                    future_time: clock_rng.gen_bool(0.3),
                };
                (i, p)
            })
            .collect();
        let loss = [0.0, 0.02, 0.1, 0.3][rng.gen_range(0..4)];
        let delay_max_ms = [5, 30, 120][rng.gen_range(0..3)];
        let faults = Faults {
            loss,
            dup: [0.0, 0.05, 0.2][rng.gen_range(0..3)],
            delay_min_ms: 1,
            delay_max_ms,
            partitions: rng.gen_bool(0.4),
            crashes: rng.gen_bool(0.5),
            mid_step_crash: if rng.gen_bool(0.5) { 0.002 } else { 0.0 },
        };
        SimOptions {
            n,
            seed,
            byzantine,
            faults,
            chaos_ms: rng.gen_range(400..2_000),
            requests_chaos: rng.gen_range(0..12),
            requests_after: rng.gen_range(1..5),
            liveness_bound_ms: 40_000,
            client_retry_ms: 1_500,
        }
    }
}

/// Bytes of every simulated client transaction.
pub const SIM_TX_BYTES: usize = 1_000;

/// The simulator's frame limit, scaled down with its blocks: a full block (four transactions
/// of [`SIM_TX_BYTES`]) is about a tenth of it, as a full 1 MiB block is about a quarter of the
/// real transport's 4 MiB. A message above it is dropped, as the transport drops it, and an
/// honest replica that sends one fails the run.
pub const SIM_FRAME_BYTES: usize = 40 * 1024;

/// The transaction of request `req` in the run of `seed`, padded to [`SIM_TX_BYTES`].
pub fn sim_payload(seed: u64, req: usize) -> Vec<u8> {
    let mut payload = format!("tx-{seed}-{req}-").into_bytes();
    payload.resize(SIM_TX_BYTES, b'.');
    payload
}

/// The replica configuration used by the simulator: small windows so checkpoints,
/// garbage collection and watermarks are exercised in short runs.
pub fn sim_config(validators: ValidatorSet) -> Config {
    let mut c = Config::new(validators);
    c.checkpoint_interval = 4;
    c.window_size = 8;
    c.max_blocks_in_flight = 3;
    // Every waiting request is worth a pipelined block: the most blocks in flight.
    c.pipeline_min_batch = 1;
    c.max_batch_txs = 4;
    c.max_tx_bytes = SIM_TX_BYTES + 64;
    c.max_block_bytes = 4 * (SIM_TX_BYTES + 64);
    c.max_message_bytes = SIM_FRAME_BYTES;
    c.view_timeout_ms = 500;
    c.view_timeout_ms_max = 4_000;
    c.retransmit_ms = 200;
    c.state_transfer_timeout_ms = 500;
    c.max_state_transfer_blocks = 16;
    c
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
        kind: TimerKind,
        gen: u64,
    },
    Submit {
        req: usize,
        targets: Vec<usize>,
    },
    ClientRetry {
        req: usize,
    },
    TransferRequest {
        to: usize,
        from: usize,
        from_height: Height,
    },
    TransferReply {
        to: usize,
        from: usize,
        blocks: Vec<(Block, CommitCertificate)>,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Partition {
        side: Vec<bool>,
    },
    HealPartition,
    Heal,
}

/// One simulated machine: the replica (absent while crashed) and its durable storage.
pub struct Node {
    /// Signing key.
    pub key: SigningKey,
    /// The running replica, `None` while crashed.
    pub replica: Option<Replica>,
    /// Durable state, as written by `Persist` actions.
    pub persisted: PersistedState,
    /// Durable block store: committed blocks in height order.
    pub chain: Vec<(Block, CommitCertificate)>,
    /// Application state root after the last executed block.
    pub state_root: [u8; 32],
    timers: BTreeMap<TimerKind, u64>,
    byz: Option<ByzProfile>,
    seen_rejections: u64,
    committed_txs: BTreeMap<Vec<u8>, Height>,
}

/// Summary of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Virtual time at the end.
    pub end_ms: u64,
    /// Highest height committed by any honest replica.
    pub max_height: Height,
    /// Events processed.
    pub events: u64,
    /// Highest view reached by an honest replica.
    pub max_view: u64,
    /// Crashes performed.
    pub crashes: u64,
}

/// The simulator.
pub struct Sim {
    /// Options of this run.
    pub opts: SimOptions,
    rng: ChaCha8Rng,
    /// Current virtual time.
    pub now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Ev>,
    /// The machines.
    pub nodes: Vec<Node>,
    pub validators: ValidatorSet,
    faults_active: bool,
    side: Option<Vec<bool>>,
    /// Canonical block hash per height, from the first honest commit.
    pub agreed: BTreeMap<Height, BlockHash>,
    requests: Vec<Vec<u8>>,
    req_index: BTreeMap<Vec<u8>, usize>,
    post_heal: BTreeSet<usize>,
    committed_by: BTreeMap<usize, BTreeSet<usize>>,
    replay_buf: Vec<Vec<u8>>,
    healed: bool,
    /// Statistics.
    pub report: Report,
    /// Delivered message count by (receiver, kind), when `trace` is on.
    pub kinds: BTreeMap<(usize, String), u64>,
    /// Collect `kinds`.
    pub trace: bool,
    /// Non-empty state-transfer replies delivered, per receiving node.
    pub transfers: BTreeMap<usize, u64>,
    /// The replicas' `max_clock_skew_ms`.
    skew_ms: u64,
}

fn ids(n: usize) -> impl Iterator<Item = ReplicaId> {
    (0..n).map(|i| ReplicaId(i as u16))
}

impl Sim {
    /// Builds the network and starts every replica.
    pub fn new(opts: SimOptions) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let keys: Vec<SigningKey> = (0..opts.n)
            .map(|_| SigningKey::generate(&mut rng))
            .collect();
        let members = ids(opts.n)
            .zip(keys.iter().map(|k| k.verifying_key()))
            .collect();
        let validators = ValidatorSet::new(0, members).expect("validator set");
        let byz: BTreeMap<usize, ByzProfile> = opts.byzantine.iter().copied().collect();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                key,
                replica: None,
                persisted: PersistedState::genesis(),
                chain: Vec::new(),
                state_root: [0; 32],
                timers: BTreeMap::new(),
                byz: byz.get(&i).copied(),
                seen_rejections: 0,
                committed_txs: BTreeMap::new(),
            })
            .collect();
        let mut sim = Sim {
            faults_active: opts.chaos_ms > 0,
            opts,
            rng,
            now: 0,
            seq: 0,
            events: BTreeMap::new(),
            nodes,
            validators,
            side: None,
            agreed: BTreeMap::new(),
            requests: Vec::new(),
            req_index: BTreeMap::new(),
            post_heal: BTreeSet::new(),
            committed_by: BTreeMap::new(),
            replay_buf: Vec::new(),
            healed: false,
            report: Report::default(),
            kinds: BTreeMap::new(),
            trace: false,
            transfers: BTreeMap::new(),
            skew_ms: 0,
        };
        sim.skew_ms = sim_config(sim.validators.clone()).max_clock_skew_ms;
        for i in 0..sim.opts.n {
            sim.boot(i).expect("boot");
        }
        sim
    }

    /// The validator set.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// Whether node `i` is honest.
    pub fn honest(&self, i: usize) -> bool {
        self.nodes[i].byz.is_none()
    }

    /// Every replica's wall clock (Unix ms): [`CLOCK_BASE_MS`] plus the virtual time.
    pub fn clock_ms(&self) -> u64 {
        CLOCK_BASE_MS + self.now
    }

    /// Maximum faults tolerated.
    pub fn f(&self) -> usize {
        (self.opts.n - 1) / 3
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((at, self.seq), ev);
    }

    fn boot(&mut self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        let persisted = if node.persisted == PersistedState::genesis() {
            None
        } else {
            Some(node.persisted.clone())
        };
        let mut r = Replica::new(
            sim_config(self.validators.clone()),
            node.key.clone(),
            persisted,
        )
        .map_err(|e| format!("replica {i} failed to start: {e}"))?;
        if r.last_committed().0 != node.chain.len() as u64 {
            return Err(format!(
                "replica {i} restarted at height {} but its host stored {} blocks",
                r.last_committed().0,
                node.chain.len()
            ));
        }
        // As a host does: the stored blocks of the de-duplication window.
        let window = r.config().dedup_window_blocks as usize;
        for (block, _) in node.chain.iter().rev().take(window) {
            r.remember_committed(block);
        }
        r.set_now_ms(self.clock_ms());
        let actions = r.start();
        self.nodes[i].replica = Some(r);
        self.nodes[i].seen_rejections = 0;
        self.apply(i, actions, None)
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].replica = None;
        self.nodes[i].timers.clear();
        self.report.crashes += 1;
    }

    fn can_crash(&self, i: usize) -> bool {
        let down = self.nodes.iter().filter(|n| n.replica.is_none()).count();
        self.honest(i) && self.nodes[i].replica.is_some() && down < self.f().max(1)
    }

    /// Submits a new client request to `targets`; returns its index.
    pub fn submit(&mut self, targets: Vec<usize>) -> usize {
        let req = self.requests.len();
        let payload = sim_payload(self.opts.seed, req);
        self.req_index.insert(payload.clone(), req);
        self.requests.push(payload);
        self.push(self.now, Ev::Submit { req, targets });
        self.push(
            self.now + self.opts.client_retry_ms,
            Ev::ClientRetry { req },
        );
        req
    }

    /// Schedules a crash of node `i` at `at` (scenario tests).
    pub fn schedule_crash(&mut self, at: u64, i: usize) {
        self.push(at, Ev::Crash { node: i });
    }

    /// Schedules a restart of node `i` at `at` (scenario tests).
    pub fn schedule_restart(&mut self, at: u64, i: usize) {
        self.push(at, Ev::Restart { node: i });
    }

    /// Number of honest replicas that committed request `req`.
    pub fn commit_count(&self, req: usize) -> usize {
        self.committed_by.get(&req).map_or(0, |s| s.len())
    }

    // ------------------------------------------------------------------ network

    fn partitioned(&self, a: usize, b: usize) -> bool {
        match &self.side {
            Some(side) => side[a] != side[b],
            None => false,
        }
    }

    fn delay(&mut self) -> u64 {
        let f = &self.opts.faults;
        if self.faults_active {
            self.rng.gen_range(f.delay_min_ms..=f.delay_max_ms)
        } else {
            self.rng.gen_range(1..=10)
        }
    }

    fn transmit(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if from == to || self.partitioned(from, to) || bytes.len() > SIM_FRAME_BYTES {
            return;
        }
        if self.faults_active && self.rng.gen_bool(self.opts.faults.loss) {
            return;
        }
        let d = self.delay();
        if self.faults_active && self.rng.gen_bool(self.opts.faults.dup) {
            let d2 = self.delay();
            self.push(
                self.now + d2,
                Ev::Deliver {
                    to,
                    from,
                    bytes: bytes.clone(),
                },
            );
        }
        self.push(self.now + d, Ev::Deliver { to, from, bytes });
    }

    fn send(&mut self, from: usize, to: usize, msg: &SignedMessage, bytes: &[u8]) {
        if let Some(p) = self.nodes[from].byz {
            for b in self.byz_out(from, to, p, msg, bytes) {
                self.transmit(from, to, b);
            }
        } else {
            if self.rng.gen_bool(0.05) {
                if self.replay_buf.len() < 256 {
                    self.replay_buf.push(bytes.to_vec());
                } else {
                    let k = self.rng.gen_range(0..256);
                    self.replay_buf[k] = bytes.to_vec();
                }
            }
            self.transmit(from, to, bytes.to_vec());
        }
    }

    fn byz_out(
        &mut self,
        i: usize,
        _to: usize,
        p: ByzProfile,
        msg: &SignedMessage,
        bytes: &[u8],
    ) -> Vec<Vec<u8>> {
        if p.silent {
            return Vec::new();
        }
        let me = ReplicaId(i as u16);
        let mut out = Vec::new();
        match &msg.message {
            Message::PrePrepare(pp) => {
                let equivocate = p.equivocate && self.rng.gen_bool(0.5);
                if equivocate || p.future_time {
                    let mut pp = pp.clone();
                    if equivocate {
                        pp.block
                            .transactions
                            .push(format!("byz-{}", self.rng.gen::<u32>()).into_bytes());
                    }
                    if p.future_time {
                        pp.block.time_ms = self.clock_ms() + FUTURE_MS;
                    }
                    let m = SignedMessage::sign(
                        &self.validators,
                        me,
                        Message::PrePrepare(pp),
                        &self.nodes[i].key,
                    );
                    out.push(m.encode());
                } else {
                    out.push(bytes.to_vec());
                }
            }
            _ => out.push(bytes.to_vec()),
        }
        if p.forge && self.rng.gen_bool(0.2) {
            let mut m = msg.clone();
            if self.rng.gen_bool(0.5) {
                let mut sig = m.signature.to_bytes();
                let k = self.rng.gen_range(0..64);
                sig[k] ^= 1 << self.rng.gen_range(0..8);
                m.signature = Signature::from_bytes(&sig);
            } else {
                m.from = ReplicaId(self.rng.gen_range(0..self.opts.n) as u16);
            }
            out.push(m.encode());
        }
        if p.replay && self.rng.gen_bool(0.3) && !self.replay_buf.is_empty() {
            let k = self.rng.gen_range(0..self.replay_buf.len());
            out.push(self.replay_buf[k].clone());
        }
        if p.unknown_votes && self.rng.gen_bool(0.2) {
            if let Some(r) = &self.nodes[i].replica {
                let vote = Vote {
                    view: r.view(),
                    height: r.last_committed().0 + self.rng.gen_range(1..4),
                    block_hash: BlockHash(self.rng.gen()),
                };
                let m = if self.rng.gen_bool(0.5) {
                    Message::Prepare(vote)
                } else {
                    Message::Commit(vote)
                };
                out.push(SignedMessage::sign(&self.validators, me, m, &self.nodes[i].key).encode());
            }
        }
        if p.garbage && self.rng.gen_bool(0.1) {
            let len = self.rng.gen_range(0..200);
            out.push((0..len).map(|_| self.rng.gen()).collect());
        }
        out
    }

    // ------------------------------------------------------------------ host

    /// Executes actions of node `i` in order. With `crash_after = Some(k)` the node
    /// crashes after executing `k` of them (everything later is lost).
    fn apply(
        &mut self,
        i: usize,
        actions: Vec<Action>,
        crash_after: Option<usize>,
    ) -> Result<(), String> {
        let mut queue: VecDeque<Action> = actions.into();
        let mut done = 0usize;
        while let Some(a) = queue.pop_front() {
            if crash_after == Some(done) {
                self.crash(i);
                return Ok(());
            }
            done += 1;
            match a {
                Action::Persist(d) => self.nodes[i].persisted.apply(&d),
                Action::Send { to, msg } => {
                    self.check_persisted(i, &msg)?;
                    let bytes = msg.encode();
                    self.check_frame(i, &msg, &bytes)?;
                    self.send(i, to.0 as usize, &msg, &bytes);
                }
                Action::Broadcast { msg } => {
                    self.check_persisted(i, &msg)?;
                    let bytes = msg.encode();
                    self.check_frame(i, &msg, &bytes)?;
                    for j in 0..self.opts.n {
                        if j != i {
                            self.send(i, j, &msg, &bytes);
                        }
                    }
                }
                Action::SetTimer { kind, after_ms } => {
                    self.seq += 1;
                    let gen = self.seq;
                    self.nodes[i].timers.insert(kind, gen);
                    self.push(self.now + after_ms, Ev::Timer { node: i, kind, gen });
                }
                Action::CancelTimer { kind } => {
                    self.nodes[i].timers.remove(&kind);
                }
                Action::Commit { block, certificate } => {
                    self.on_commit(i, &block, &certificate)?;
                    let node = &mut self.nodes[i];
                    node.persisted.record_commit(&block);
                    let mut h = blake3::Hasher::new();
                    h.update(&node.state_root);
                    h.update(&block.hash().0);
                    node.state_root = *h.finalize().as_bytes();
                    let height = block.height;
                    let root = node.state_root;
                    node.chain.push((block, certificate));
                    if let Some(r) = node.replica.as_mut() {
                        queue.extend(r.on_block_executed(height, root, None));
                    }
                }
                Action::RequestStateTransfer { from, from_height } => {
                    let to = from.0 as usize;
                    if !self.partitioned(i, to) {
                        let d = self.delay();
                        self.push(
                            self.now + d,
                            Ev::TransferRequest {
                                to,
                                from: i,
                                from_height,
                            },
                        );
                    }
                }
                Action::EpochChange { .. } | Action::Dropped { .. } => {}
            }
        }
        if crash_after.is_some_and(|k| k >= done) {
            self.crash(i);
        }
        self.check_rejections(i)
    }

    /// No message an honest replica sends may be too large for the transport: it would never
    /// arrive (and a view change that cannot arrive halts the network).
    fn check_frame(&self, i: usize, msg: &SignedMessage, bytes: &[u8]) -> Result<(), String> {
        if self.honest(i) && bytes.len() > SIM_FRAME_BYTES {
            return Err(format!(
                "replica {i} sent a {} of {} bytes, over the frame limit of {SIM_FRAME_BYTES}",
                msg.message.kind(),
                bytes.len()
            ));
        }
        Ok(())
    }

    /// Every vote or acceptance a replica sends must already be in its persisted state.
    fn check_persisted(&self, i: usize, msg: &SignedMessage) -> Result<(), String> {
        if !self.honest(i) || msg.from.0 as usize != i {
            return Ok(());
        }
        let ps = &self.nodes[i].persisted;
        let low = ps.stable_checkpoint.height;
        let ok = match &msg.message {
            Message::Request(_) | Message::Requests(_) => true,
            Message::PrePrepare(pp) => {
                pp.block.height <= low
                    || ps.pre_prepares.get(&pp.block.height).is_some_and(|x| {
                        x.proposal.proposal == pp.proposal()
                            && x.proposal.signature == msg.signature
                            && x.bodies.contains(&pp.block)
                    })
            }
            Message::Prepare(v) => v.height <= low || ps.prepares.get(&v.height) == Some(msg),
            Message::Commit(v) => v.height <= low || ps.commits.get(&v.height) == Some(msg),
            Message::Checkpoint(c) => c.height <= low || ps.checkpoints.get(&c.height) == Some(msg),
            Message::ViewChange(vc) => ps.view_changes.get(&vc.new_view) == Some(msg),
            Message::NewView(_) => ps.new_view.as_ref() == Some(msg),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "replica {i} sent a {} that was not persisted first",
                msg.message.kind()
            ))
        }
    }

    /// Safety checks, run on every delivered commit.
    fn on_commit(
        &mut self,
        i: usize,
        block: &Block,
        cert: &CommitCertificate,
    ) -> Result<(), String> {
        if !self.honest(i) {
            return Ok(());
        }
        // Some honest backup accepted the block, so its time is within the skew bound of
        // that backup's clock then (every replica runs on the same clock here).
        let bound = self.clock_ms() + self.skew_ms;
        if block.time_ms > bound {
            return Err(format!(
                "replica {i} committed block {} with time {} beyond the clock bound {bound}",
                block.height, block.time_ms
            ));
        }
        let node = &mut self.nodes[i];
        let expect = node.chain.len() as u64 + 1;
        if block.height != expect {
            return Err(format!(
                "replica {i} committed height {} but expected {expect} (lost or repeated commit)",
                block.height
            ));
        }
        let prev = node
            .chain
            .last()
            .map_or(BlockHash::GENESIS, |(b, _)| b.hash());
        if block.prev_hash != prev {
            return Err(format!(
                "replica {i} committed a block not linked to its chain"
            ));
        }
        let hash = block.hash();
        match self.agreed.get(&block.height) {
            Some(h) if *h != hash => {
                return Err(format!(
                    "SAFETY: replica {i} committed a different block at height {}",
                    block.height
                ))
            }
            Some(_) => {}
            None => {
                verify_commit_certificate(&self.validators, block, cert)
                    .map_err(|e| format!("replica {i} produced an invalid certificate: {e}"))?;
                self.agreed.insert(block.height, hash);
            }
        }
        for tx in &block.transactions {
            if let Some(first) = node.committed_txs.insert(tx.clone(), block.height) {
                return Err(format!(
                    "replica {i} committed transaction {:?} twice, at heights {first} and {}",
                    String::from_utf8_lossy(&tx[..tx.len().min(16)]),
                    block.height
                ));
            }
            if let Some(req) = self.req_index.get(tx) {
                self.committed_by.entry(*req).or_default().insert(i);
            }
        }
        self.report.max_height = self.report.max_height.max(block.height);
        Ok(())
    }

    fn check_rejections(&mut self, i: usize) -> Result<(), String> {
        if !self.honest(i) {
            return Ok(());
        }
        let Some(r) = self.nodes[i].replica.as_ref() else {
            return Ok(());
        };
        let count = r.rejected_count();
        let new = (count - self.nodes[i].seen_rejections) as usize;
        if new > 0 {
            let errs: Vec<&Error> = r.recent_errors().collect();
            for e in errs.iter().rev().take(new) {
                let honest_equivocated =
                    matches!(e, Error::Equivocation(r, _) if self.honest(r.0 as usize));
                if matches!(e, Error::Invariant(_)) || honest_equivocated {
                    return Err(format!("replica {i} reported: {e}"));
                }
            }
            self.nodes[i].seen_rejections = count;
        }
        Ok(())
    }

    fn input<F>(&mut self, i: usize, f: F) -> Result<(), String>
    where
        F: FnOnce(&mut Replica) -> Vec<Action>,
    {
        let clock = self.clock_ms();
        let Some(r) = self.nodes[i].replica.as_mut() else {
            return Ok(());
        };
        r.set_now_ms(clock);
        let actions = f(r);
        let crash_after = if self.faults_active
            && self.opts.faults.crashes
            && self.opts.faults.mid_step_crash > 0.0
            && self.rng.gen_bool(self.opts.faults.mid_step_crash)
            && self.can_crash(i)
        {
            let k = self.rng.gen_range(0..=actions.len());
            let at = self.now + self.rng.gen_range(50..800);
            self.push(at, Ev::Restart { node: i });
            Some(k)
        } else {
            None
        };
        self.apply(i, actions, crash_after)
    }

    // ------------------------------------------------------------------ run

    /// Schedules the randomized requests, partitions, crashes and the heal.
    pub fn schedule_faults(&mut self) {
        let chaos = self.opts.chaos_ms;
        for _ in 0..self.opts.requests_chaos {
            let at = self.rng.gen_range(0..chaos.max(1));
            let targets = self.random_targets();
            let req = self.requests.len();
            let payload = sim_payload(self.opts.seed, req);
            self.req_index.insert(payload.clone(), req);
            self.requests.push(payload);
            self.push(at, Ev::Submit { req, targets });
            self.push(at + self.opts.client_retry_ms, Ev::ClientRetry { req });
        }
        if self.opts.faults.partitions {
            let mut t = self.rng.gen_range(0..chaos.max(1));
            while t < chaos {
                let side: Vec<bool> = (0..self.opts.n).map(|_| self.rng.gen_bool(0.5)).collect();
                self.push(t, Ev::Partition { side });
                let dur = self.rng.gen_range(100..1_500);
                self.push((t + dur).min(chaos), Ev::HealPartition);
                t += dur + self.rng.gen_range(100..2_000);
            }
        }
        if self.opts.faults.crashes {
            let count = self.rng.gen_range(1..4);
            for _ in 0..count {
                let at = self.rng.gen_range(0..chaos.max(1));
                let node = self.rng.gen_range(0..self.opts.n);
                self.push(at, Ev::Crash { node });
                let back = (at + self.rng.gen_range(50..1_500)).min(chaos);
                self.push(back, Ev::Restart { node });
            }
        }
        self.push(chaos, Ev::Heal);
    }

    fn random_targets(&mut self) -> Vec<usize> {
        if self.rng.gen_bool(0.5) {
            (0..self.opts.n).collect()
        } else {
            vec![self.rng.gen_range(0..self.opts.n)]
        }
    }

    fn handle(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Deliver { to, from, bytes } => {
                if self.trace {
                    let k = match SignedMessage::decode(&bytes, usize::MAX) {
                        Ok(m) => m.message.kind().to_string(),
                        Err(_) => "garbage".to_string(),
                    };
                    *self.kinds.entry((to, k)).or_default() += 1;
                }
                let from = ReplicaId(from as u16);
                self.input(to, |r| r.on_message_bytes(from, &bytes))
            }
            Ev::Timer { node, kind, gen } => {
                if self.nodes[node].timers.get(&kind) != Some(&gen) {
                    return Ok(());
                }
                self.nodes[node].timers.remove(&kind);
                self.input(node, |r| r.on_timer(kind))
            }
            Ev::Submit { req, targets } => {
                let payload = self.requests[req].clone();
                for t in targets {
                    let p = payload.clone();
                    self.input(t, |r| r.on_client_request(p))?;
                }
                Ok(())
            }
            Ev::ClientRetry { req } => {
                if self.commit_count(req) == 0 {
                    let targets = (0..self.opts.n).collect();
                    self.push(self.now, Ev::Submit { req, targets });
                    self.push(
                        self.now + self.opts.client_retry_ms,
                        Ev::ClientRetry { req },
                    );
                }
                Ok(())
            }
            Ev::TransferRequest {
                to,
                from,
                from_height,
            } => {
                if self.nodes[to].replica.is_none() || self.partitioned(to, from) {
                    return Ok(());
                }
                let start = from_height.saturating_sub(1) as usize;
                let mut blocks: Vec<(Block, CommitCertificate)> = self.nodes[to]
                    .chain
                    .iter()
                    .skip(start)
                    .take(16)
                    .cloned()
                    .collect();
                if self.nodes[to].byz.is_some_and(|p| p.bad_transfer) && !blocks.is_empty() {
                    let k = self.rng.gen_range(0..blocks.len());
                    let b = &mut blocks[k].0;
                    b.transactions.push(b"forged".to_vec());
                }
                let d = self.delay();
                self.push(
                    self.now + d,
                    Ev::TransferReply {
                        to: from,
                        from: to,
                        blocks,
                    },
                );
                Ok(())
            }
            Ev::TransferReply { to, from, blocks } => {
                if !blocks.is_empty() && self.nodes[to].replica.is_some() {
                    *self.transfers.entry(to).or_default() += 1;
                }
                let peer = ReplicaId(from as u16);
                self.input(to, |r| r.on_state_transfer(peer, blocks))
            }
            Ev::Crash { node } => {
                let allowed = if self.faults_active {
                    self.can_crash(node)
                } else {
                    self.nodes[node].replica.is_some()
                };
                if allowed {
                    self.crash(node);
                }
                Ok(())
            }
            Ev::Restart { node } => {
                if self.nodes[node].replica.is_none() {
                    self.boot(node)?;
                }
                Ok(())
            }
            Ev::Partition { side } => {
                if self.faults_active {
                    self.side = Some(side);
                }
                Ok(())
            }
            Ev::HealPartition => {
                self.side = None;
                Ok(())
            }
            Ev::Heal => {
                self.faults_active = false;
                self.healed = true;
                self.side = None;
                for i in 0..self.opts.n {
                    if self.nodes[i].replica.is_none() {
                        self.boot(i)?;
                    }
                }
                for _ in 0..self.opts.requests_after {
                    let targets = self.random_targets();
                    let req = self.submit(targets);
                    self.post_heal.insert(req);
                }
                Ok(())
            }
        }
    }

    fn live(&self) -> bool {
        let need = self.f() + 1;
        self.post_heal.iter().all(|r| self.commit_count(*r) >= need)
    }

    /// Processes events until `until` (virtual ms) or until `stop` holds.
    pub fn run_until<F: Fn(&Sim) -> bool>(&mut self, until: u64, stop: F) -> Result<(), String> {
        while let Some(entry) = self.events.first_entry() {
            let (at, _) = *entry.key();
            if at > until {
                break;
            }
            let ev = entry.remove();
            self.now = at;
            self.report.events += 1;
            if self.report.events > 3_000_000 || self.events.len() > 1_000_000 {
                return Err(format!(
                    "event storm: {} events processed, {} queued at {} ms",
                    self.report.events,
                    self.events.len(),
                    self.now
                ));
            }
            self.handle(ev)?;
            if stop(self) {
                break;
            }
        }
        self.now = self.now.max(self.now.min(until));
        Ok(())
    }

    /// Runs the whole randomized scenario: chaos, heal, then the liveness check.
    pub fn run(&mut self) -> Result<Report, String> {
        self.schedule_faults();
        self.run_until(self.opts.chaos_ms, |_| false)?;
        if !self.healed {
            self.handle(Ev::Heal)?;
        }
        let deadline = self.opts.chaos_ms + self.opts.liveness_bound_ms;
        self.run_until(deadline, |s| s.live())?;
        if !self.live() {
            let status: Vec<String> = self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| match &n.replica {
                    Some(r) => format!(
                        "r{i}{}: view {}{} height {} stable {} pending {}",
                        if n.byz.is_some() { "(byz)" } else { "" },
                        r.view(),
                        if r.is_view_changing() { "(vc)" } else { "" },
                        r.last_committed().0,
                        r.stable_checkpoint().height,
                        r.pending_len()
                    ),
                    None => format!("r{i}: down"),
                })
                .collect();
            return Err(format!(
                "LIVENESS: post-heal requests not committed by f+1 honest replicas within {} ms; {}",
                self.opts.liveness_bound_ms,
                status.join("; ")
            ));
        }
        self.report.end_ms = self.now;
        self.report.max_view = self
            .nodes
            .iter()
            .filter(|n| n.byz.is_none())
            .filter_map(|n| n.replica.as_ref().map(|r| r.view()))
            .max()
            .unwrap_or(0);
        Ok(self.report.clone())
    }
}

/// Runs one randomized seed.
pub fn run_seed(seed: u64) -> Result<Report, String> {
    let opts = SimOptions::random(seed);
    let mut sim = Sim::new(opts);
    sim.run()
}
