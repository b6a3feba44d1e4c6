//! Four validators in one process, messages passed in memory on a virtual clock: real
//! transactions are proved, submitted, ordered, verified, applied and stored; a validator
//! restarted from its store resumes where it was.

use shoji_consensus::{ReplicaId, TimerKind, ValidatorSet};
use shoji_ledger::{LedgerConfig, TxOutcome};
use shoji_node::{ed25519_dalek_key::SigningKey, Genesis, NodeCore, Output, SubmitError};
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
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
}

/// Height, state root and transaction outcomes of one committed block.
type CommittedBlock = (u64, [u8; 32], Vec<TxOutcome>);

fn timer_slot(kind: TimerKind) -> u8 {
    match kind {
        TimerKind::ViewChange => 0,
        TimerKind::Retransmit => 1,
        TimerKind::StateTransfer => 2,
    }
}

impl Cluster {
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
                Output::RequestStateTransfer { .. } => {}
            }
        }
    }

    /// Delivers messages (and fires timers when idle) until `done` holds or `max_ms` of virtual
    /// time pass.
    fn run_until(&mut self, max_ms: u64, done: impl Fn(&Cluster) -> bool) {
        let deadline = self.now_ms + max_ms;
        while !done(self) && self.now_ms <= deadline {
            if let Some((from, to, bytes)) = self.queue.pop_front() {
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.set_now_ms(CLOCK_BASE_MS + self.now_ms);
                    let out = node.on_peer_bytes(from, &bytes).expect("node");
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
    }

    fn submit(&mut self, to: ReplicaId, tx: &Transaction) -> Result<(), SubmitError> {
        let node = self.nodes.get_mut(&to).expect("node");
        node.set_now_ms(CLOCK_BASE_MS + self.now_ms);
        let out = node.submit(tx.to_bytes()).expect("node")?;
        self.handle(to, out);
        Ok(())
    }

    fn heights(&self) -> Vec<u64> {
        self.nodes.values().map(|n| n.ledger().height()).collect()
    }
}

#[test]
fn four_validators_commit_verify_store_and_restart() {
    let mut rng = rand_core::OsRng;
    let prover = Prover::dev().expect("parameters");
    let verifier = Arc::new(Verifier::new(&prover.proving_key().vk));
    let auditor = AuditSecretKey::random(&mut rng);
    let issuer = shoji_consensus::ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let keys: BTreeMap<ReplicaId, SigningKey> = (0..4u16)
        .map(|i| (ReplicaId(i), SigningKey::from_bytes(&[i as u8 + 1; 32])))
        .collect();
    let validators = ValidatorSet::new(
        0,
        keys.iter()
            .map(|(id, k)| (*id, k.verifying_key()))
            .collect(),
    )
    .expect("set");
    let genesis = Genesis {
        validators,
        ledger: LedgerConfig {
            anchor_window_blocks: 100,
            auditor: auditor.public_key(),
            issuers: BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([USD]))]),
        },
    };
    let mut c = Cluster {
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
    };
    for i in 0..4u16 {
        c.start(ReplicaId(i));
    }

    let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
    let alice = SpendingKeys::from_seed(&WalletSeed([10; 32])).address();
    let mint = |amount: u64, anchor, rng: &mut rand_core::OsRng| {
        let mut b = TransferBuilder::mint(
            &wallet,
            USD,
            Amount(amount),
            anchor,
            auditor.public_key(),
            issuer.verifying_key().to_bytes(),
        );
        b.pay(alice, Amount(amount), Memo::empty()).expect("pay");
        b.build(rng)
            .expect("build")
            .prove(&prover, rng)
            .expect("prove")
            .sign_mint(&issuer)
            .expect("sign")
    };
    let genesis_root = c.nodes[&ReplicaId(0)].ledger().frontier().root();
    let m1 = mint(1000, genesis_root, &mut rng);

    // Garbage is refused at admission, and a forged peer message changes nothing.
    assert!(matches!(
        c.nodes
            .get_mut(&ReplicaId(1))
            .unwrap()
            .submit(vec![1, 2, 3])
            .unwrap(),
        Err(SubmitError::Malformed(_))
    ));
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
    let m2 = mint(500, root, &mut rng);
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
    assert_eq!(tx.tx, m2);
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
}
