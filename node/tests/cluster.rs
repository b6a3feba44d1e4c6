//! Four validators in one process, messages passed in memory on a virtual clock (the messages
//! waiting for a validator handed over together, as its host does): real
//! transactions are proved, submitted, ordered, verified, applied and stored; a validator
//! restarted from its store resumes where it was; a validator that was down while the others
//! committed (and garbage-collected their consensus logs) catches up by state transfer.

use shoji_consensus::{Message, ReplicaId, SignedMessage, TimerKind, ValidatorSet};
use shoji_ledger::{LedgerConfig, Rejection, TxOutcome};
use shoji_node::{ed25519_dalek_key::SigningKey, Genesis, NodeCore, Output, SubmitError};
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
use shoji_primitives::governance::{GovernanceAction, GovernanceRules, GovernanceTx};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::Transaction;
use shoji_prover::{Prover, TransferBuilder};
use shoji_store::Store;
use shoji_verifier::Verifier;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

const USD: AssetId = AssetId(840);

/// Wall-clock time (Unix ms) at virtual time 0.
const CLOCK_BASE_MS: u64 = 1_700_000_000_000;

struct Cluster {
    nodes: BTreeMap<ReplicaId, NodeCore>,
    keys: BTreeMap<ReplicaId, SigningKey>,
    dirs: BTreeMap<ReplicaId, tempfile::TempDir>,
    genesis: Genesis,
    verifier: Arc<Verifier>,
    queue: VecDeque<(ReplicaId, ReplicaId, Vec<u8>)>,
    timers: BTreeMap<(ReplicaId, u8), (u64, TimerKind)>,
    now_ms: u64,
    committed: BTreeMap<ReplicaId, Vec<CommittedBlock>>,
    /// Each validator's last `Output::ValidatorsDecided`: the keys and added addresses.
    decided: BTreeMap<ReplicaId, Decided>,
}

/// The keys and added addresses of a decided validator-set change.
type Decided = (BTreeMap<ReplicaId, [u8; 32]>, BTreeMap<ReplicaId, String>);

/// Height, state root and transaction outcomes of one committed block.
type CommittedBlock = (u64, [u8; 32], Vec<TxOutcome>);

fn timer_slot(kind: TimerKind) -> u8 {
    match kind {
        TimerKind::ViewChange => 0,
        TimerKind::Retransmit => 1,
        TimerKind::StateTransfer => 2,
        TimerKind::Pipeline => 3,
    }
}

/// A ledger configuration with this auditor and these issuers, governed by `admins` (two must
/// approve; none: no governance).
fn ledger_config(
    auditor: shoji_primitives::audit::AuditPublicKey,
    issuers: BTreeMap<[u8; 32], BTreeSet<AssetId>>,
    admins: &[SigningKey],
) -> LedgerConfig {
    LedgerConfig {
        anchor_window_blocks: 100,
        auditor,
        issuers,
        governance: GovernanceRules {
            admins: admins
                .iter()
                .map(|k| k.verifying_key().to_bytes())
                .collect(),
            threshold: if admins.is_empty() { 0 } else { 2 },
        },
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: None,
    }
}

/// Validator keys `0..n` (deterministic).
fn validator_keys(n: u16) -> BTreeMap<ReplicaId, SigningKey> {
    (0..n)
        .map(|i| (ReplicaId(i), SigningKey::from_bytes(&[i as u8 + 1; 32])))
        .collect()
}

/// The epoch-0 validator set of these keys.
fn validator_set(keys: &BTreeMap<ReplicaId, SigningKey>) -> ValidatorSet {
    ValidatorSet::new(
        0,
        keys.iter()
            .map(|(id, k)| (*id, k.verifying_key()))
            .collect(),
    )
    .expect("set")
}

/// A mint of `amount` USD from a fixed wallet to a fixed recipient, proved under `anchor` and
/// signed by `issuer`, with its audit record for `auditor`.
fn mint_usd(
    prover: &Prover,
    auditor: &AuditSecretKey,
    issuer: &shoji_consensus::ed25519_dalek::SigningKey,
    amount: u64,
    anchor: shoji_primitives::Fr,
    network: [u8; 32],
) -> Transaction {
    let mut rng = rand_core::OsRng;
    let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
    let alice = SpendingKeys::from_seed(&WalletSeed([10; 32])).address();
    let mut b = TransferBuilder::mint(
        &wallet,
        USD,
        Amount(amount),
        anchor,
        auditor.public_key(),
        issuer.verifying_key().to_bytes(),
    );
    b.pay(alice, Amount(amount), Memo::empty()).expect("pay");
    b.network(network);
    b.build(&mut rng)
        .expect("build")
        .prove(prover, &mut rng)
        .expect("prove")
        .sign_mint(issuer)
        .expect("sign")
}

impl Cluster {
    /// A cluster of the validators with these keys, none started yet.
    fn new(
        keys: BTreeMap<ReplicaId, SigningKey>,
        genesis: Genesis,
        verifier: Arc<Verifier>,
    ) -> Self {
        Cluster {
            nodes: BTreeMap::new(),
            dirs: keys
                .keys()
                .map(|id| (*id, tempfile::tempdir().expect("tempdir")))
                .collect(),
            keys,
            genesis,
            verifier,
            queue: VecDeque::new(),
            timers: BTreeMap::new(),
            now_ms: 0,
            committed: BTreeMap::new(),
            decided: BTreeMap::new(),
        }
    }

    fn handle(&mut self, id: ReplicaId, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send { to, bytes } => self.queue.push_back((id, to, bytes)),
                Output::Broadcast { bytes } => {
                    for &to in self.keys.keys() {
                        if to != id {
                            self.queue.push_back((id, to, bytes.clone()));
                        }
                    }
                }
                Output::SetTimer { kind, after_ms } => {
                    self.timers
                        .insert((id, timer_slot(kind)), (self.now_ms + after_ms, kind));
                }
                Output::CancelTimer { kind } => {
                    self.timers.remove(&(id, timer_slot(kind)));
                }
                Output::EpochChanged { .. } | Output::Dropped { .. } => {}
                Output::ValidatorsDecided {
                    validators,
                    addresses,
                } => {
                    self.decided.insert(id, (validators, addresses));
                }
                Output::Committed {
                    height,
                    state_root,
                    outcomes,
                } => {
                    self.committed.entry(id).or_default().push((
                        height,
                        state_root,
                        outcomes.into_iter().map(|(_, o)| o).collect(),
                    ));
                }
            }
        }
    }

    /// Delivers messages (and fires timers when idle) until `done` holds or `max_ms` of virtual
    /// time pass.
    fn run_until(&mut self, max_ms: u64, done: impl Fn(&Cluster) -> bool) {
        let deadline = self.now_ms + max_ms;
        while !done(self) && self.now_ms <= deadline {
            if let Some((from, to, bytes)) = self.queue.pop_front() {
                // Everything else already queued for the same validator goes with it, as the
                // host hands over the messages waiting in its inbox (one durable write for all).
                let mut batch = vec![(from, bytes)];
                let mut rest = VecDeque::new();
                for (f, t, b) in self.queue.drain(..) {
                    match t == to {
                        true => batch.push((f, b)),
                        false => rest.push_back((f, t, b)),
                    }
                }
                self.queue = rest;
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.set_now_ms(CLOCK_BASE_MS + self.now_ms);
                    let out = match batch.len() {
                        1 => node.on_peer_bytes(batch[0].0, &batch[0].1),
                        _ => node.on_peer_messages(batch),
                    }
                    .expect("node");
                    self.handle(to, out);
                }
                continue;
            }
            let Some((&(id, slot), &(at, kind))) =
                self.timers.iter().min_by_key(|(_, (at, _))| *at)
            else {
                break;
            };
            self.timers.remove(&(id, slot));
            self.now_ms = self.now_ms.max(at);
            if let Some(node) = self.nodes.get_mut(&id) {
                node.set_now_ms(CLOCK_BASE_MS + self.now_ms);
                let out = node.on_timer(kind).expect("node");
                self.handle(id, out);
            }
        }
    }

    fn start(&mut self, id: ReplicaId) {
        let store = Store::open(self.dirs[&id].path().join("node.redb")).expect("store");
        let (node, out) = NodeCore::open(
            store,
            &self.genesis,
            self.keys[&id].clone(),
            self.verifier.clone(),
        )
        .expect("open");
        self.nodes.insert(id, node);
        self.handle(id, out);
        // As the host does at start: ask a peer for the blocks above our height.
        let probe = self.nodes.get_mut(&id).expect("node").sync_probe();
        self.handle(id, probe);
    }

    /// Starts validator `id` as one governance is adding ([`NodeCore::open_joining`]).
    fn start_joining(&mut self, id: ReplicaId) {
        let store = Store::open(self.dirs[&id].path().join("node.redb")).expect("store");
        let (node, out) = NodeCore::open_joining(
            store,
            &self.genesis,
            self.keys[&id].clone(),
            id,
            self.verifier.clone(),
            &shoji_node::Tuning::default(),
        )
        .expect("open joining");
        self.nodes.insert(id, node);
        self.handle(id, out);
        let probe = self.nodes.get_mut(&id).expect("node").sync_probe();
        self.handle(id, probe);
    }

    fn stop(&mut self, id: ReplicaId) {
        self.nodes.remove(&id);
        self.timers.retain(|(i, _), _| *i != id);
        self.queue.retain(|(_, to, _)| *to != id);
    }

    fn submit(&mut self, to: ReplicaId, tx: &Transaction) -> Result<(), SubmitError> {
        self.submit_bytes(to, tx.to_bytes())
    }

    fn submit_bytes(&mut self, to: ReplicaId, bytes: Vec<u8>) -> Result<(), SubmitError> {
        let node = self.nodes.get_mut(&to).expect("node");
        node.set_now_ms(CLOCK_BASE_MS + self.now_ms);
        let out = node.submit(bytes).expect("node")?;
        self.handle(to, out);
        Ok(())
    }

    fn heights(&self) -> Vec<u64> {
        self.nodes.values().map(|n| n.ledger().height()).collect()
    }

    /// Runs until `nodes` agree on a height at a checkpoint (an idle leader closes the
    /// checkpoint with empty blocks), and returns it.
    fn settle(&mut self, nodes: &[ReplicaId]) -> u64 {
        let k = self.genesis.consensus.checkpoint_interval;
        let agreed = |c: &Cluster| {
            let h: Vec<u64> = nodes.iter().map(|r| c.nodes[r].ledger().height()).collect();
            h.iter().all(|&x| x == h[0]) && h[0].is_multiple_of(k)
        };
        self.run_until(60_000, agreed);
        assert!(agreed(self), "the validators did not settle");
        self.nodes[&nodes[0]].ledger().height()
    }
}

#[test]
fn four_validators_commit_verify_store_and_restart() {
    let mut rng = rand_core::OsRng;
    let prover = Prover::dev().expect("parameters");
    let verifier = Arc::new(Verifier::new(&prover.proving_key().vk));
    let auditor = AuditSecretKey::random(&mut rng);
    let issuer = shoji_consensus::ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let admins: Vec<SigningKey> = (0..3u8)
        .map(|i| SigningKey::from_bytes(&[100 + i; 32]))
        .collect();
    let keys = validator_keys(4);
    let validators = validator_set(&keys);
    let genesis = Genesis::new(
        validators,
        ledger_config(
            auditor.public_key(),
            BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([USD]))]),
            &admins,
        ),
    );
    let mut c = Cluster::new(keys, genesis, verifier);
    for i in 0..4u16 {
        c.start(ReplicaId(i));
    }

    let network = c.genesis.hash();
    let mint = |amount: u64, anchor| mint_usd(&prover, &auditor, &issuer, amount, anchor, network);
    let genesis_root = c.nodes[&ReplicaId(0)].ledger().frontier().root();
    let m1 = mint(1000, genesis_root);

    // Garbage is refused at admission, and a forged peer message changes nothing.
    assert!(matches!(
        c.nodes
            .get_mut(&ReplicaId(1))
            .unwrap()
            .submit(vec![1, 2, 3])
            .unwrap(),
        Err(SubmitError::Malformed(_))
    ));
    // An audit key `epk` with a torsion component: admission decodes it unchecked, and the
    // refusal still names the bad point (not just a failed proof or signature).
    {
        use ark_ed_on_bls12_381::{EdwardsAffine, Fq};
        let bytes = m1.to_bytes();
        // epk follows version, kind, anchor, two nullifiers, two commitments, three u64s and
        // the auditor key.
        let at = 2 + 32 * 5 + 24 + 32;
        let two_torsion = EdwardsAffine::new_unchecked(Fq::from(0u64), -Fq::from(1u64));
        let off = EdwardsAffine::from(m1.bundle().audit.epk + two_torsion);
        let mut tampered = bytes.clone();
        tampered[at..at + 32].copy_from_slice(&shoji_primitives::encoding::point_to_bytes(&off));
        assert_ne!(tampered, bytes);
        assert!(Transaction::from_bytes_proof_bound(&tampered).is_ok());
        let refused = c
            .nodes
            .get_mut(&ReplicaId(1))
            .unwrap()
            .submit(tampered)
            .unwrap();
        assert!(
            matches!(
                refused,
                Err(SubmitError::Malformed(
                    shoji_primitives::encoding::EncodingError::InvalidPoint(_)
                ))
            ),
            "{refused:?}"
        );
    }
    let out = c
        .nodes
        .get_mut(&ReplicaId(1))
        .unwrap()
        .on_peer_bytes(ReplicaId(2), &[0xff; 64])
        .unwrap();
    assert!(out.is_empty());

    c.submit(ReplicaId(1), &m1).expect("admitted");
    c.run_until(60_000, |c| {
        c.heights().iter().all(|&h| h >= 1)
            && c.committed
                .values()
                .all(|v| v.iter().any(|(_, _, o)| !o.is_empty()))
    });
    let roots: BTreeSet<[u8; 32]> = c.nodes.values().map(|n| n.ledger().state_root()).collect();
    assert_eq!(roots.len(), 1, "every validator has the same state");
    assert_eq!(c.committed.len(), 4, "every validator committed");
    for v in c.committed.values() {
        let applied: Vec<&TxOutcome> = v.iter().flat_map(|(_, _, o)| o).collect();
        assert_eq!(applied, vec![&TxOutcome::Applied { first_leaf: 0 }]);
    }
    // Every validator stored the leader's clock as the block time.
    for n in c.nodes.values() {
        let b = n.store().compact_block(1).expect("read").expect("block 1");
        assert!(
            (CLOCK_BASE_MS..=CLOCK_BASE_MS + c.now_ms).contains(&b.time_ms),
            "block time {}",
            b.time_ms
        );
        assert_eq!(n.ledger().time_ms(), b.time_ms);
    }
    // The same mint again: its nullifiers are spent.
    assert_eq!(c.submit(ReplicaId(2), &m1), Err(SubmitError::DoubleSpend));

    // Restart validator 3 from its store: same height and state.
    let before = c.nodes[&ReplicaId(3)].ledger().state_root();
    let height = c.nodes[&ReplicaId(3)].ledger().height();
    c.nodes.remove(&ReplicaId(3));
    c.timers.retain(|(id, _), _| *id != ReplicaId(3));
    c.start(ReplicaId(3));
    assert_eq!(c.nodes[&ReplicaId(3)].ledger().state_root(), before);
    assert_eq!(c.nodes[&ReplicaId(3)].ledger().height(), height);

    // Commits continue with the restarted validator.
    let root = c.nodes[&ReplicaId(0)].ledger().frontier().root();
    let m2 = mint(500, root);
    c.submit(ReplicaId(0), &m2).expect("admitted");
    c.run_until(60_000, |c| {
        c.nodes.values().all(|n| n.ledger().frontier().size() == 4)
    });
    let roots: BTreeSet<[u8; 32]> = c.nodes.values().map(|n| n.ledger().state_root()).collect();
    assert_eq!(roots.len(), 1);
    assert_eq!(c.nodes[&ReplicaId(3)].ledger().frontier().size(), 4);
    let tx = c.nodes[&ReplicaId(3)]
        .store()
        .transaction(&m2.id())
        .expect("read")
        .expect("stored");
    assert_eq!(tx.tx, shoji_store::CommittedTx::Shielded(m2));
    // Block times never decrease, and the validators agree on them.
    for n in c.nodes.values() {
        let top = n.ledger().height();
        let times: Vec<u64> = (1..=top)
            .map(|h| {
                n.store()
                    .compact_block(h)
                    .expect("read")
                    .expect("block")
                    .time_ms
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(n.ledger().time_ms(), times[times.len() - 1]);
    }

    // Governance revokes the issuer: two of three administrators approve, for this network.
    let network_id = c.genesis.hash();
    let revoke = |seq: u64, by: &[usize]| {
        let mut g = GovernanceTx::new(
            seq,
            GovernanceAction::SetIssuer {
                issuer: issuer.verifying_key().to_bytes(),
                assets: BTreeSet::new(),
            },
        );
        for i in by {
            g.approve(&admins[*i], &network_id);
        }
        g
    };
    assert!(matches!(
        c.submit_bytes(ReplicaId(1), revoke(0, &[2]).to_bytes()),
        Err(SubmitError::Stateful(Rejection::Unapproved(_)))
    ));
    let g = revoke(0, &[0, 2]);
    c.submit_bytes(ReplicaId(1), g.to_bytes())
        .expect("admitted");
    c.run_until(60_000, |c| {
        c.nodes.values().all(|n| n.ledger().policy().seq == 1)
    });
    let roots: BTreeSet<[u8; 32]> = c.nodes.values().map(|n| n.ledger().state_root()).collect();
    assert_eq!(roots.len(), 1, "the validators agree on the new policy");
    for v in c.committed.values() {
        assert!(v
            .iter()
            .flat_map(|(_, _, o)| o)
            .any(|o| o == &TxOutcome::Enacted));
    }
    // The same approvals again are a replay.
    assert!(matches!(
        c.submit_bytes(ReplicaId(2), g.to_bytes()),
        Err(SubmitError::Stateful(Rejection::GovernanceSequence {
            expected: 1,
            got: 0
        }))
    ));
    // Mints by the revoked issuer are refused, also by a validator restarted from its store.
    c.nodes.remove(&ReplicaId(2));
    c.timers.retain(|(id, _), _| *id != ReplicaId(2));
    c.start(ReplicaId(2));
    assert_eq!(c.nodes[&ReplicaId(2)].ledger().policy().seq, 1);
    let root = c.nodes[&ReplicaId(2)].ledger().frontier().root();
    let m3 = mint(7, root);
    assert_eq!(
        c.submit(ReplicaId(2), &m3),
        Err(SubmitError::Stateful(Rejection::UnauthorizedIssuer(USD.0)))
    );
}

/// A transaction a peer's message carries (relayed or proposed) is verified ahead of its
/// block, in the batch of a later admission, and its verdict stands when the block commits:
/// a bad proof relayed by a faulty validator is rejected by every validator, the good
/// transaction beside it is applied, and no validator verifies any proof twice.
#[test]
fn proofs_carried_by_peers_are_verified_ahead_and_judged_the_same() {
    let mut rng = rand_core::OsRng;
    let prover = Prover::dev().expect("parameters");
    let verifier = Arc::new(Verifier::new(&prover.proving_key().vk));
    let auditor = AuditSecretKey::random(&mut rng);
    let issuer = shoji_consensus::ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let keys = validator_keys(4);
    let genesis = Genesis::new(
        validator_set(&keys),
        ledger_config(
            auditor.public_key(),
            BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([USD]))]),
            &[],
        ),
    );
    let mut c = Cluster::new(keys, genesis, verifier.clone());
    for i in 0..4u16 {
        c.start(ReplicaId(i));
    }
    let anchor = c.nodes[&ReplicaId(0)].ledger().frontier().root();
    let network = c.genesis.hash();
    let mint = |amount: u64| mint_usd(&prover, &auditor, &issuer, amount, anchor, network);
    let good = mint(1000);
    // A proof for other public values: one statement field changed, re-signed by the issuer,
    // so only the proof is wrong.
    let mut bad = mint(500);
    if let Transaction::Mint { bundle, .. } = &mut bad {
        bundle.expiry_height ^= 1;
    }
    let sig = shoji_consensus::ed25519_dalek::Signer::sign(&issuer, &bad.sighash()).to_bytes();
    if let Transaction::Mint { auth, .. } = &mut bad {
        auth.signature = sig;
    }
    let verdict = verifier.verify_transaction(&bad);
    assert!(
        matches!(verdict, Err(shoji_verifier::TxError::Proof(_))),
        "{verdict:?}"
    );

    // Validator 1, faulty, relays the bad transaction to the others.
    let relay = SignedMessage::sign(
        &c.nodes[&ReplicaId(1)].replica().config().validators.clone(),
        ReplicaId(1),
        Message::Requests(vec![bad.to_bytes()]),
        &c.keys[&ReplicaId(1)],
    );
    let relay = shoji_node::wire::consensus(&relay.encode());
    let v2 = c.nodes.get_mut(&ReplicaId(2)).expect("validator 2");
    let out = v2.on_peer_bytes(ReplicaId(1), &relay).expect("node");
    assert_eq!(v2.status().verification.proofs, 0, "held, not verified yet");
    c.handle(ReplicaId(2), out);
    for to in [0, 3] {
        c.queue
            .push_back((ReplicaId(1), ReplicaId(to), relay.clone()));
    }
    // Validator 2 admits the good transaction: the held one is verified in the same batch.
    c.submit(ReplicaId(2), &good).expect("admitted");
    let stats = c.nodes[&ReplicaId(2)].status().verification;
    assert_eq!((stats.batches, stats.proofs, stats.ahead), (1, 2, 1));

    c.run_until(60_000, |c| {
        c.committed.len() == 4
            && c.committed
                .values()
                .all(|v| v.iter().map(|(_, _, o)| o.len()).sum::<usize>() == 2)
    });
    for (id, blocks) in &c.committed {
        let outcomes: Vec<&TxOutcome> = blocks.iter().flat_map(|(_, _, o)| o).collect();
        let applied = outcomes
            .iter()
            .filter(|o| matches!(o, TxOutcome::Applied { .. }))
            .count();
        let refused: Vec<&&TxOutcome> = outcomes
            .iter()
            .filter(|o| matches!(o, TxOutcome::Rejected(Rejection::Stateless(why)) if why.contains("proof")))
            .collect();
        assert_eq!(
            (applied, refused.len()),
            (1, 1),
            "validator {}: {outcomes:?}",
            id.0
        );
        // Each proof verified once here, whenever it was.
        assert_eq!(
            c.nodes[id].status().verification.proofs,
            2,
            "validator {}",
            id.0
        );
    }
    let roots: BTreeSet<[u8; 32]> = c.nodes.values().map(|n| n.ledger().state_root()).collect();
    assert_eq!(roots.len(), 1, "every validator has the same state");
    assert_eq!(c.nodes[&ReplicaId(3)].ledger().frontier().size(), 2);
}

/// Blocks of filler requests (a transfer's layout, so validators order them, but not valid
/// transactions: execution marks them undecodable and skips them) are cheap to commit by the
/// dozen, so the others run far past a stopped validator's
/// window and garbage-collect the consensus log it would need; restarted, it asks a peer for
/// the blocks, checks their certificates, executes them and ends with the same chain.
#[test]
fn a_validator_down_for_many_blocks_catches_up_by_state_transfer() {
    let params = shoji_params::dev::parameters().expect("parameters");
    let verifier = Arc::new(Verifier::new(&params.vk));
    let keys = validator_keys(4);
    let validators = validator_set(&keys);
    let auditor = AuditSecretKey::random(&mut rand_core::OsRng);
    let genesis = Genesis::new(
        validators,
        ledger_config(auditor.public_key(), BTreeMap::new(), &[]),
    );
    let mut c = Cluster::new(keys, genesis, verifier);
    for i in 0..4u16 {
        c.start(ReplicaId(i));
    }
    let late = ReplicaId(3);
    c.stop(late);
    // Validator 1 forwards one request at a time to the leader (validator 0).
    const BLOCKS: u64 = 40;
    for k in 0..BLOCKS {
        let payload = filler(k);
        let sm = SignedMessage::sign(
            &c.nodes[&ReplicaId(1)].replica().config().validators.clone(),
            ReplicaId(1),
            Message::Request(payload),
            &c.keys[&ReplicaId(1)],
        );
        c.queue.push_back((
            ReplicaId(1),
            ReplicaId(0),
            shoji_node::wire::consensus(&sm.encode()),
        ));
        c.run_until(60_000, |c| c.heights().iter().all(|&h| h > k));
        assert!(c.heights().iter().all(|&h| h == k + 1), "{:?}", c.heights());
    }
    for n in c.nodes.values() {
        assert!(
            n.replica().stable_checkpoint().height >= BLOCKS - 8,
            "the others moved their stable checkpoint (and collected their logs)"
        );
    }
    // Restarted with nothing else going on: only its own request can tell it what it missed.
    c.start(late);
    assert_eq!(c.nodes[&late].ledger().height(), 0);
    let top = c.settle(&[ReplicaId(0), ReplicaId(1), ReplicaId(2), late]);
    assert!(top >= BLOCKS);
    assert_eq!(c.nodes[&late].ledger().height(), top, "caught up");
    // The answer carried the stable checkpoint whose votes it missed: its window moved with it.
    assert_eq!(
        c.nodes[&late].replica().stable_checkpoint().height,
        c.nodes[&ReplicaId(0)].replica().stable_checkpoint().height,
    );
    let reference = &c.nodes[&ReplicaId(0)];
    for h in 1..=BLOCKS {
        let (block, cert) = reference.store().block(h).expect("read").expect("block");
        let (mine, my_cert) = c.nodes[&late]
            .store()
            .block(h)
            .expect("read")
            .expect("block");
        assert_eq!(mine.hash(), block.hash(), "height {h}");
        assert!(shoji_consensus::verify_commit_certificate(
            &c.genesis.validators.clone().on_network(c.genesis.hash()),
            &mine,
            &my_cert
        )
        .is_ok());
        assert_eq!(
            c.nodes[&late].store().state_root(h).expect("read"),
            reference.store().state_root(h).expect("read"),
        );
        let _ = cert;
    }
    assert_eq!(
        c.nodes[&late].ledger().state_root(),
        reference.ledger().state_root()
    );
    // It takes part again: the next block is committed by all four.
    let sm = SignedMessage::sign(
        &c.nodes[&ReplicaId(2)].replica().config().validators.clone(),
        ReplicaId(2),
        Message::Request(filler(BLOCKS)),
        &c.keys[&ReplicaId(2)],
    );
    c.queue.push_back((
        ReplicaId(2),
        ReplicaId(0),
        shoji_node::wire::consensus(&sm.encode()),
    ));
    c.run_until(60_000, |c| c.heights().iter().all(|&h| h > top));
    let next = c.settle(&[ReplicaId(0), ReplicaId(1), ReplicaId(2), late]);
    assert!(next > top);
    assert_eq!(c.heights(), vec![next; 4]);
    // The restarted validator, restarted again, still agrees with its store.
    let root = c.nodes[&late].ledger().state_root();
    c.stop(late);
    c.start(late);
    assert_eq!(c.nodes[&late].ledger().state_root(), root);
}

/// A request number `k` with a transfer's layout (version, kind, length), which validators
/// order, but whose fields do not decode (the audit key is all ones, not a point): execution
/// marks it undecodable and skips it.
fn filler(k: u64) -> Vec<u8> {
    let mut payload = vec![0xff; shoji_primitives::tx::TRANSFER_BYTES];
    payload[0] = shoji_primitives::tx::TX_VERSION;
    payload[1] = 0; // a transfer
    payload[2..10].copy_from_slice(&k.to_le_bytes());
    payload
}

/// Commits one block of a filler request, relayed by validator 1 to its epoch's leader, and
/// checks that `voters` all moved up, to the same height: the next one, or one more when the
/// request came while the leader had an empty block in flight to close its checkpoint (the
/// request's block is then proposed beside it).
fn request(c: &mut Cluster, k: u64, voters: &[ReplicaId]) {
    let node = &c.nodes[&ReplicaId(1)];
    let (validators, leader, height) = (
        node.replica().config().validators.clone(),
        node.replica().leader(),
        node.ledger().height(),
    );
    let sm = SignedMessage::sign(
        &validators,
        ReplicaId(1),
        Message::Request(filler(k)),
        &c.keys[&ReplicaId(1)],
    );
    c.queue.push_back((
        ReplicaId(1),
        leader,
        shoji_node::wire::consensus(&sm.encode()),
    ));
    let reached = |c: &Cluster| c.nodes[&voters[0]].ledger().height();
    c.run_until(60_000, |c| {
        voters.iter().all(|r| {
            c.nodes[r].ledger().height() > height && c.nodes[r].ledger().height() == reached(c)
        })
    });
    let reached = reached(c);
    assert!(
        (height + 1..=height + 2).contains(&reached)
            && voters
                .iter()
                .all(|r| c.nodes[r].ledger().height() == reached),
        "block {} did not commit: {:?}",
        height + 1,
        c.heights()
    );
}

/// Governance removes a validator from a network of five. The change takes effect at the
/// checkpoint boundary a log window after the deciding block: the other four switch to a new
/// epoch there (a validator stopped since before the decision with them, on restart, by
/// catching up through the boundary), the removed one stops ordering and refuses
/// submissions, and blocks keep committing with four. A restart after the switch resumes in
/// the new epoch.
#[test]
fn governance_removes_a_validator_at_a_checkpoint_boundary() {
    let params = shoji_params::dev::parameters().expect("parameters");
    let verifier = Arc::new(Verifier::new(&params.vk));
    let keys = validator_keys(5);
    let admins: Vec<SigningKey> = (0..3u8)
        .map(|i| SigningKey::from_bytes(&[100 + i; 32]))
        .collect();
    let validators = validator_set(&keys);
    let auditor = AuditSecretKey::random(&mut rand_core::OsRng);
    let genesis = Genesis::new(
        validators,
        ledger_config(auditor.public_key(), BTreeMap::new(), &admins),
    );
    let mut c = Cluster::new(keys, genesis, verifier);
    for i in 0..5u16 {
        c.start(ReplicaId(i));
    }
    let (late, removed) = (ReplicaId(3), ReplicaId(4));
    c.stop(late);
    let network_id = c.genesis.hash();
    let keep: BTreeMap<u16, [u8; 32]> = (0..4u16)
        .map(|i| (i, c.keys[&ReplicaId(i)].verifying_key().to_bytes()))
        .collect();
    let approve = |g: &mut GovernanceTx| {
        g.approve(&admins[0], &network_id);
        g.approve(&admins[1], &network_id);
    };
    // Refused at admission: a set of three, and one adding a stranger.
    let mut small = GovernanceTx::new(
        0,
        GovernanceAction::SetValidators {
            validators: keep.iter().take(3).map(|(i, k)| (*i, *k)).collect(),
        },
    );
    approve(&mut small);
    assert!(matches!(
        c.submit_bytes(ReplicaId(0), small.to_bytes()),
        Err(SubmitError::Stateful(Rejection::ValidatorSet(_)))
    ));
    let mut grow = keep.clone();
    grow.insert(9, [9; 32]);
    let mut grow = GovernanceTx::new(0, GovernanceAction::SetValidators { validators: grow });
    approve(&mut grow);
    assert!(matches!(
        c.submit_bytes(ReplicaId(0), grow.to_bytes()),
        Err(SubmitError::Stateful(Rejection::ValidatorSet(_)))
    ));
    let mut remove = GovernanceTx::new(
        0,
        GovernanceAction::SetValidators {
            validators: keep.clone(),
        },
    );
    approve(&mut remove);
    c.submit_bytes(ReplicaId(0), remove.to_bytes())
        .expect("admitted");
    let running = [ReplicaId(0), ReplicaId(1), ReplicaId(2)];
    c.run_until(60_000, |c| {
        running.iter().all(|r| c.nodes[r].ledger().height() >= 1)
    });
    let decided = c.nodes[&ReplicaId(0)]
        .ledger()
        .policy()
        .next_validators
        .clone();
    let (last, next) = decided.expect("a change is pending");
    assert_eq!(next, keep);
    assert_eq!(last, 8 + 16, "round_up(1, K) + L");

    let mut k = 0;
    while c.nodes[&ReplicaId(0)].ledger().height() < last {
        request(&mut c, k, &running);
        k += 1;
    }
    for r in running {
        let n = &c.nodes[&r];
        assert_eq!(n.replica().config().validators.epoch, 1, "validator {r:?}");
        assert_eq!(n.replica().config().validators.n(), 4);
        assert_eq!(n.replica().config().start_checkpoint.height, last);
    }
    c.run_until(10_000, |c| c.nodes[&removed].is_retired());
    assert!(c.nodes[&removed].is_retired());
    assert_eq!(c.nodes[&removed].ledger().height(), last);
    // The new epoch orders blocks with three of its four validators running.
    for _ in 0..5 {
        request(&mut c, k, &running);
        k += 1;
    }
    let top = c.settle(&running);
    assert!(top >= last + 5);
    assert_eq!(c.nodes[&removed].ledger().height(), last);
    assert_eq!(
        c.submit_bytes(removed, vec![1, 2, 3]),
        Err(SubmitError::Retired)
    );

    // The validator that was down catches up across the boundary and joins the new epoch.
    c.start(late);
    c.run_until(60_000, |c| c.nodes[&late].ledger().height() == top);
    assert_eq!(c.nodes[&late].ledger().height(), top, "caught up");
    assert_eq!(c.nodes[&late].replica().config().validators.epoch, 1);
    assert_eq!(
        c.nodes[&late].ledger().state_root(),
        c.nodes[&ReplicaId(0)].ledger().state_root()
    );
    // Restarted after the switch, a validator resumes in the new epoch and keeps ordering.
    c.stop(ReplicaId(2));
    c.start(ReplicaId(2));
    assert_eq!(
        c.nodes[&ReplicaId(2)].replica().config().validators.epoch,
        1
    );
    for j in 0..3 {
        request(&mut c, k + j, &running);
    }
    c.run_until(60_000, |c| c.nodes[&late].ledger().height() == top + 3);
    let roots: BTreeSet<[u8; 32]> = [0u16, 1, 2, 3]
        .iter()
        .map(|i| c.nodes[&ReplicaId(*i)].ledger().state_root())
        .collect();
    assert_eq!(roots.len(), 1, "the four agree");
    // The removed validator cannot start again in this network.
    c.stop(removed);
    let store = Store::open(c.dirs[&removed].path().join("node.redb")).expect("store");
    let err = NodeCore::open(
        store,
        &c.genesis,
        c.keys[&removed].clone(),
        c.verifier.clone(),
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("not a member"), "{err}");
}

/// Governance adds a fifth validator. Started before the change as a learner, it refuses
/// client transactions and catches up from genesis by state transfer (its CHECKPOINT-driven
/// requests) while never voting; the change is announced to every host with the joiner's key
/// and address; at the boundary the joiner becomes a member of the five-validator epoch, and
/// blocks then commit with all five at the same state; with a founder down, the joiner's vote
/// makes the quorum. A second change while one is pending is refused, and a founding
/// validator's key opened "joining" opens as the member it is, never as a learner.
#[test]
fn governance_adds_a_validator_that_catches_up_as_a_learner() {
    let params = shoji_params::dev::parameters().expect("parameters");
    let verifier = Arc::new(Verifier::new(&params.vk));
    let keys = validator_keys(5);
    let admins: Vec<SigningKey> = (0..3u8)
        .map(|i| SigningKey::from_bytes(&[100 + i; 32]))
        .collect();
    let founders: BTreeMap<ReplicaId, SigningKey> = keys
        .iter()
        .filter(|(id, _)| id.0 < 4)
        .map(|(id, k)| (*id, k.clone()))
        .collect();
    let auditor = AuditSecretKey::random(&mut rand_core::OsRng);
    let genesis = Genesis::new(
        validator_set(&founders),
        ledger_config(auditor.public_key(), BTreeMap::new(), &admins),
    );
    let mut c = Cluster::new(keys, genesis, verifier);
    for i in 0..4u16 {
        c.start(ReplicaId(i));
    }
    let joiner = ReplicaId(4);
    c.start_joining(joiner);
    assert!(c.nodes[&joiner].is_learner());
    assert_eq!(
        c.submit_bytes(joiner, vec![1, 2, 3]),
        Err(SubmitError::Learning)
    );

    let network_id = c.genesis.hash();
    let add = |seq, id: u16, key: [u8; 32]| {
        let mut g = GovernanceTx::new(
            seq,
            GovernanceAction::AddValidator {
                id,
                key,
                address: format!("127.0.0.1:{}", 7000 + id),
            },
        );
        g.approve(&admins[0], &network_id);
        g.approve(&admins[2], &network_id);
        g
    };
    let joiner_key = c.keys[&joiner].verifying_key().to_bytes();
    c.submit_bytes(ReplicaId(0), add(0, 4, joiner_key).to_bytes())
        .expect("admitted");
    let members = [ReplicaId(0), ReplicaId(1), ReplicaId(2), ReplicaId(3)];
    c.run_until(60_000, |c| {
        members.iter().all(|r| c.nodes[r].ledger().height() >= 1)
    });
    let (last, next) = c.nodes[&ReplicaId(0)]
        .ledger()
        .policy()
        .next_validators
        .clone()
        .expect("a change is pending");
    assert_eq!(last, 8 + 16, "round_up(1, K) + L");
    assert_eq!(next.get(&4), Some(&joiner_key));
    for r in members {
        let (validators, addresses) = c.decided.get(&r).expect("announced to the host");
        assert_eq!(validators.get(&joiner), Some(&joiner_key));
        assert_eq!(
            addresses.get(&joiner).map(String::as_str),
            Some("127.0.0.1:7004")
        );
    }
    // One change at a time.
    let other = SigningKey::from_bytes(&[77; 32]).verifying_key().to_bytes();
    assert!(matches!(
        c.submit_bytes(ReplicaId(1), add(1, 5, other).to_bytes()),
        Err(SubmitError::Stateful(Rejection::ValidatorSet(_)))
    ));

    let mut k = 0;
    while c.nodes[&ReplicaId(0)].ledger().height() < last {
        request(&mut c, k, &members);
        k += 1;
    }
    // The learner caught up through the checkpoints and joined at the boundary.
    c.run_until(60_000, |c| !c.nodes[&joiner].is_learner());
    let j = &c.nodes[&joiner];
    assert!(!j.is_learner(), "joined at the boundary");
    assert_eq!(j.ledger().height(), last);
    assert_eq!(j.replica().config().validators.epoch, 1);
    assert_eq!(j.replica().config().validators.n(), 5);
    assert_eq!(
        Some(j.ledger().state_root()),
        c.nodes[&ReplicaId(0)]
            .store()
            .state_root(last)
            .expect("read")
    );
    // The five order blocks together; the joiner now admits client transactions.
    let all = [members.to_vec(), vec![joiner]].concat();
    for _ in 0..4 {
        request(&mut c, k, &all);
        k += 1;
    }
    assert!(matches!(
        c.submit_bytes(joiner, vec![1, 2, 3]),
        Err(SubmitError::Malformed(_))
    ));
    let roots: BTreeSet<[u8; 32]> = all
        .iter()
        .map(|r| c.nodes[r].ledger().state_root())
        .collect();
    assert_eq!(roots.len(), 1, "the five agree");
    // The joiner's votes count: with one founder down, the other four still commit.
    c.stop(ReplicaId(3));
    let four = [ReplicaId(0), ReplicaId(1), ReplicaId(2), joiner];
    request(&mut c, k, &four);
    // A founder's key is never a learner: restarted "joining", it is refused if removed
    // and opens as the member it is otherwise.
    let store = Store::open(c.dirs[&ReplicaId(3)].path().join("node.redb")).expect("store");
    let (n, _) = NodeCore::open_joining(
        store,
        &c.genesis,
        c.keys[&ReplicaId(3)].clone(),
        ReplicaId(3),
        c.verifier.clone(),
        &shoji_node::Tuning::default(),
    )
    .expect("a member opens");
    assert!(!n.is_learner());
}
