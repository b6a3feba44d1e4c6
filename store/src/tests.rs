//! Round trips, crash consistency, corruption and schema checks, with transactions taken from
//! the verifier's stored vectors and edited field by field (no proving).

use super::*;
use shoji_consensus::ed25519_dalek::{Signature, SigningKey};
use shoji_consensus::{ReplicaId, SignedMessage, ValidatorSet};
use shoji_ledger::{Ledger, LedgerConfig, Rejection};
use shoji_primitives::encoding::hex_decode;
use shoji_primitives::tx::ShieldedBundle;
use shoji_verifier::TxError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const WINDOW: usize = 3;

/// The first block's time (Unix ms).
const T0: u64 = 1_700_000_000_000;

fn stored(hex: &str) -> Transaction {
    Transaction::from_bytes(&hex_decode("vector", hex.trim()).unwrap()).unwrap()
}

fn transfer() -> Transaction {
    stored(include_str!("../../verifier/testdata/transfer-v3.hex"))
}

fn mint() -> Transaction {
    stored(include_str!("../../verifier/testdata/mint-v3.hex"))
}

fn with_bundle(tx: &Transaction, f: impl FnOnce(&mut ShieldedBundle)) -> Transaction {
    let mut tx = *tx;
    f(tx.bundle_mut());
    tx
}

fn config() -> LedgerConfig {
    let m = mint();
    let mut issuers = BTreeMap::new();
    issuers.insert(*m.issuer().unwrap(), BTreeSet::from([m.bundle().asset]));
    LedgerConfig {
        anchor_window_blocks: WINDOW,
        auditor: m.bundle().auditor,
        issuers,
        governance: Default::default(),
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: None,
    }
}

fn ok(n: usize) -> Vec<Result<(), TxError>> {
    (0..n).map(|_| Ok(())).collect()
}

/// Stand-in for the ledger API proposed in [`crate::snapshot`]: the real ledger for
/// `apply_block`, plus the head and nullifier set it would report, mirrored from its outcomes
/// (checked against the real state root after every block).
struct Standin {
    ledger: Option<Ledger>,
    head: LedgerHead,
    nullifiers: BTreeSet<[u8; 32]>,
}

impl Standin {
    fn genesis() -> Self {
        Standin {
            ledger: Some(Ledger::genesis(config())),
            head: LedgerHead::genesis(),
            nullifiers: BTreeSet::new(),
        }
    }

    fn apply(&mut self, time_ms: u64, txs: &[Transaction]) -> BlockOutcome {
        let ledger = self.ledger.as_mut().expect("a live ledger");
        let out = ledger.apply_block(time_ms, txs, &ok(txs.len()));
        for (tx, o) in txs.iter().zip(&out.outcomes) {
            if matches!(o, TxOutcome::Applied { .. }) {
                for nf in &tx.bundle().nullifiers {
                    let nf = fr_to_bytes(nf);
                    self.head.nullifier_chain = chain_nullifier(&self.head.nullifier_chain, &nf);
                    self.nullifiers.insert(nf);
                }
            }
        }
        self.head.height = out.height;
        self.head.scan_chain =
            shoji_ledger::chain_compact(&self.head.scan_chain, &out.compact.to_bytes());
        self.head.time_ms = self.head.time_ms.max(time_ms);
        assert_eq!(self.head.time_ms, out.time_ms);
        self.head.frontier = ledger.frontier().clone();
        self.head.recent_roots.push(out.tree_root);
        while self.head.recent_roots.len() > WINDOW {
            self.head.recent_roots.remove(0);
        }
        assert_eq!(self.head.state_root(), ledger.state_root());
        assert_eq!(self.head.state_root(), out.state_root);
        out
    }

    fn root(&self) -> Fr {
        self.head.frontier.root()
    }
}

impl SnapshotLedger for Standin {
    fn head(&self) -> LedgerHead {
        self.head.clone()
    }

    fn restore(config: LedgerConfig, s: LedgerSnapshot) -> Result<Self, String> {
        let n = s.head.recent_roots.len();
        if n == 0 || n > config.anchor_window_blocks.max(1) {
            return Err(format!("{n} recent roots"));
        }
        if s.head.recent_roots.last() != Some(&s.head.frontier.root()) {
            return Err("last recent root is not the frontier root".into());
        }
        Ok(Standin {
            ledger: None,
            head: s.head,
            nullifiers: s.nullifiers,
        })
    }
}

fn cert(view: u64) -> CommitCertificate {
    CommitCertificate {
        view,
        signatures: vec![(ReplicaId(0), Signature::from_bytes(&[7; 64]))],
    }
}

/// A host: the stand-in ledger, the expected consensus state, the last block hash and the time
/// the next block is proposed with.
struct Host {
    ledger: Standin,
    consensus: PersistedState,
    prev: BlockHash,
    clock: u64,
    outcomes: Vec<(Block, CommitCertificate, BlockOutcome, Vec<Transaction>)>,
}

impl Host {
    fn new() -> Self {
        Host {
            ledger: Standin::genesis(),
            consensus: PersistedState::genesis(),
            prev: BlockHash::GENESIS,
            clock: T0,
            outcomes: Vec::new(),
        }
    }

    fn block(&self, txs: &[Transaction]) -> Block {
        Block {
            height: self.ledger.head.height + 1,
            prev_hash: self.prev,
            view: 0,
            proposer: ReplicaId(1),
            time_ms: self.clock,
            transactions: txs.iter().map(|t| t.to_bytes()).collect(),
        }
    }

    fn commit(&mut self, store: &Store, txs: &[Transaction]) -> BlockOutcome {
        let block = self.block(txs);
        let certificate = cert(0);
        let outcome = self.ledger.apply(block.time_ms, txs);
        self.clock += 1_000;
        let head = self.ledger.head();
        store
            .commit_block(&CommittedBlock {
                block: &block,
                certificate: &certificate,
                transactions: txs,
                accounts: &[],
                outcome: &outcome,
                ledger: &head,
                events: &[],
            })
            .unwrap();
        self.consensus.record_commit(&block);
        assert_eq!(
            store.consensus_state().unwrap().as_ref(),
            Some(&self.consensus)
        );
        self.prev = block.hash();
        self.outcomes
            .push((block, certificate, outcome.clone(), txs.to_vec()));
        outcome
    }
}

fn vote(height: u64) -> PersistDelta {
    let key = SigningKey::from_bytes(&[3; 32]);
    let msg = shoji_consensus::Message::Prepare(shoji_consensus::Vote {
        view: 0,
        height,
        block_hash: BlockHash([height as u8; 32]),
    });
    PersistDelta::Vote(SignedMessage::sign(&signers(&key), ReplicaId(2), msg, &key))
}

/// Five blocks: applied, rejected (unknown anchor, double spend), empty, and an anchor from the
/// window. Returns the host (the in-memory model).
fn five_blocks(store: &Store) -> Host {
    let mut host = Host::new();
    let deltas = [
        PersistDelta::View {
            view: 0,
            view_changing: false,
        },
        vote(1),
    ];
    store.persist_consensus(&deltas).unwrap();
    for d in &deltas {
        host.consensus.apply(d);
    }
    assert_eq!(
        store.consensus_state().unwrap().as_ref(),
        Some(&host.consensus)
    );

    let root0 = host.ledger.root();
    let m = with_bundle(&mint(), |b| b.anchor = root0);
    let foreign = transfer(); // anchored in another tree
    let out = host.commit(store, &[m, foreign]);
    assert_eq!(out.outcomes[0], TxOutcome::Applied { first_leaf: 0 });
    assert_eq!(
        out.outcomes[1],
        TxOutcome::Rejected(Rejection::UnknownAnchor)
    );

    let root1 = host.ledger.root();
    let t1 = with_bundle(&transfer(), |b| {
        b.anchor = root1;
        b.nullifiers = [Fr::from(1u64), Fr::from(2u64)];
    });
    let out = host.commit(store, &[t1, m]);
    assert_eq!(out.outcomes[0], TxOutcome::Applied { first_leaf: 2 });
    assert_eq!(out.outcomes[1], TxOutcome::Rejected(Rejection::DoubleSpend));

    host.commit(store, &[]);
    let t2 = with_bundle(&t1, |b| {
        b.anchor = root1;
        b.nullifiers = [Fr::from(10u64), Fr::from(11u64)];
    });
    let t3 = with_bundle(&t2, |b| b.nullifiers = [Fr::from(12u64), Fr::from(13u64)]);
    let out = host.commit(store, &[t2, t3]);
    assert_eq!(out.outcomes[0], TxOutcome::Applied { first_leaf: 4 });
    assert_eq!(out.outcomes[1], TxOutcome::Applied { first_leaf: 6 });
    host.commit(store, &[foreign]);
    host
}

fn check_matches(store: &Store, host: &Host) {
    let rec = store.load().unwrap().expect("a stored node");
    assert_eq!(rec.height, host.ledger.head.height);
    assert_eq!(rec.ledger.head, host.ledger.head);
    assert_eq!(rec.ledger.nullifiers, host.ledger.nullifiers);
    assert_eq!(rec.consensus, host.consensus);
    assert_eq!(rec.state_root, host.ledger.head.state_root());
    let restored: Standin = rec.restore_ledger(config()).unwrap();
    assert_eq!(restored.head, host.ledger.head);

    assert_eq!(store.height().unwrap(), rec.height);
    let tree = store.tree_state().unwrap();
    assert_eq!(tree.height, rec.height);
    assert_eq!(tree.anchor, host.ledger.root());
    assert_eq!(tree.size, host.ledger.head.frontier.size());
    for (block, certificate, outcome, txs) in &host.outcomes {
        let h = block.height;
        let (b, c) = store.block(h).unwrap().unwrap();
        assert_eq!(&b, block);
        assert_eq!(&c, certificate);
        let compact = store.compact_block(h).unwrap().unwrap();
        assert_eq!(compact, outcome.compact);
        assert_eq!(compact.time_ms, outcome.time_ms);
        assert_eq!(store.state_root(h).unwrap(), Some(outcome.state_root));
        let opening = store.opening(h).unwrap().expect("an opening");
        assert_eq!(
            opening.root(),
            outcome.state_root,
            "the opening hashes to the root"
        );
        for (i, (tx, o)) in txs.iter().zip(&outcome.outcomes).enumerate() {
            let s = store.transaction(&tx.id()).unwrap().unwrap();
            assert_eq!(s.tx, CommittedTx::Shielded(*tx));
            if let TxOutcome::Applied { first_leaf } = o {
                assert_eq!((s.height, s.index), (h, i as u32));
                assert_eq!(
                    s.outcome,
                    StoredOutcome::Applied {
                        first_leaf: *first_leaf
                    }
                );
                let cms = tx.bundle().commitments;
                assert_eq!(store.commitment(*first_leaf).unwrap(), Some(cms[0]));
                assert_eq!(store.commitment(first_leaf + 1).unwrap(), Some(cms[1]));
                let nf = tx.bundle().nullifiers[0];
                assert_eq!(store.nullifier_height(&nf).unwrap(), Some(h));
            }
        }
    }
    let h = rec.height;
    assert!(store.block(h + 1).unwrap().is_none());
    assert!(store.compact_block(h + 1).unwrap().is_none());

    // The reader serves the same bytes, in order, within its count and byte budget.
    let reader = store.reader();
    let all = reader.compact_blocks(1, 1_000, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, h);
    for (i, bytes) in all.iter().enumerate() {
        let want = store.compact_block(i as u64 + 1).unwrap().unwrap();
        assert_eq!(*bytes, want.to_bytes());
    }
    if h >= 3 {
        assert_eq!(reader.compact_blocks(2, 2, usize::MAX).unwrap(), all[1..3]);
        let two = all[0].len() + all[1].len();
        assert_eq!(reader.compact_blocks(1, 1_000, two).unwrap(), all[..2]);
        assert_eq!(reader.compact_blocks(1, 1_000, 1).unwrap(), all[..1]);
    }
    assert!(reader
        .compact_blocks(h + 1, 10, usize::MAX)
        .unwrap()
        .is_empty());
}

fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("node.redb")
}

#[test]
fn fresh_store_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    assert!(store.load().unwrap().is_none());
    assert!(store.is_empty().unwrap());
    let tree = store.tree_state().unwrap();
    assert_eq!((tree.height, tree.size), (0, 0));
    assert_eq!(tree.anchor, Frontier::new().root());
    // Consensus state alone (votes before the first block) is a node at height 0.
    store.persist_consensus(&[vote(1)]).unwrap();
    assert!(!store.is_empty().unwrap());
    let rec = store.load().unwrap().unwrap();
    assert_eq!(rec.height, 0);
    assert_eq!(rec.ledger.head, LedgerHead::genesis());
    assert_eq!(rec.consensus.prepares.len(), 1);
}

#[test]
fn commit_reopen_load_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let host = five_blocks(&store);
    check_matches(&store, &host);
    // The rejected-then-rejected-again transaction reports its latest inclusion.
    let s = store.transaction(&transfer().id()).unwrap().unwrap();
    assert_eq!(s.height, 5);
    assert_eq!(
        s.outcome,
        StoredOutcome::Rejected(Rejection::UnknownAnchor.to_string())
    );
    // The replayed mint keeps its applied record.
    let m = with_bundle(&mint(), |b| b.anchor = Frontier::new().root());
    let s = store.transaction(&m.id()).unwrap().unwrap();
    assert_eq!(
        (s.height, s.outcome),
        (1, StoredOutcome::Applied { first_leaf: 0 })
    );
    drop(store);

    let store = Store::open(path(&dir)).unwrap();
    check_matches(&store, &host);
}

#[test]
fn crash_between_blocks_and_inside_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let mut host = Host::new();
    let root0 = host.ledger.root();
    host.commit(&store, &[with_bundle(&mint(), |b| b.anchor = root0)]);
    // A write transaction that never commits: a crash in the middle of storing block 2.
    {
        let txn = store.db.begin_write().unwrap();
        {
            let mut blocks = txn.open_table(BLOCKS).unwrap();
            blocks.insert(2, &b"half a block"[..]).unwrap();
            let mut ledger = txn.open_table(LEDGER).unwrap();
            ledger.insert(K_HEIGHT, &codec::u64_value(2)[..]).unwrap();
            let mut cms = txn.open_table(COMMITMENTS).unwrap();
            cms.insert(2, &b"x"[..]).unwrap();
        }
        drop(txn);
    }
    drop(store);
    let store = Store::open(path(&dir)).unwrap();
    check_matches(&store, &host);
    assert!(store.block(2).unwrap().is_none());
    assert!(store.commitment(2).unwrap().is_none());

    // A refused block (its head's nullifier chain is wrong) leaves nothing behind either,
    // though the store had written its transactions and nullifiers before noticing.
    let root1 = host.ledger.root();
    let t = with_bundle(&transfer(), |b| b.anchor = root1);
    let mut ledger = Standin {
        ledger: host.ledger.ledger.clone(),
        head: host.ledger.head.clone(),
        nullifiers: host.ledger.nullifiers.clone(),
    };
    let block = host.block(&[t]);
    let outcome = ledger.apply(block.time_ms, &[t]);
    let mut head = ledger.head();
    head.nullifier_chain = [9; 32];
    let err = store
        .commit_block(&CommittedBlock {
            block: &block,
            certificate: &cert(0),
            transactions: &[t],
            accounts: &[],
            outcome: &outcome,
            ledger: &head,
            events: &[],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    assert!(store.transaction(&t.id()).unwrap().is_none());
    assert!(store
        .nullifier_height(&t.bundle().nullifiers[0])
        .unwrap()
        .is_none());
    check_matches(&store, &host);

    // The same block with the right head goes through; a crash right after it keeps it.
    host.commit(&store, &[t]);
    drop(store);
    let store = Store::open(path(&dir)).unwrap();
    check_matches(&store, &host);
}

#[test]
fn refuses_blocks_that_do_not_follow() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let mut host = Host::new();
    host.commit(&store, &[]);
    let mut ledger = Standin::genesis();
    let outcome = ledger.apply(0, &[]);
    let head = ledger.head();
    // Height 1 again.
    let block = Block::null(1, BlockHash::GENESIS, 0, ReplicaId(0));
    let c = CommittedBlock {
        block: &block,
        certificate: &cert(0),
        transactions: &[],
        accounts: &[],
        outcome: &outcome,
        ledger: &head,
        events: &[],
    };
    assert!(matches!(
        store.commit_block(&c),
        Err(StoreError::InvalidInput(_))
    ));
    // Height 2 not linked to block 1.
    let mut l2 = Standin::genesis();
    l2.apply(0, &[]);
    let outcome2 = l2.apply(0, &[]);
    let head2 = l2.head();
    let block2 = Block::null(2, BlockHash([1; 32]), 0, ReplicaId(0));
    let err = store
        .commit_block(&CommittedBlock {
            block: &block2,
            certificate: &cert(0),
            transactions: &[],
            accounts: &[],
            outcome: &outcome2,
            ledger: &head2,
            events: &[],
        })
        .unwrap_err();
    assert!(err.to_string().contains("does not link"), "{err}");
    // Outcome and head of different heights.
    let err = store
        .commit_block(&CommittedBlock {
            block: &block2,
            certificate: &cert(0),
            transactions: &[],
            accounts: &[],
            outcome: &outcome2,
            ledger: &LedgerHead::genesis(),
            events: &[],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    // Transactions that are not the block's.
    let root = host.ledger.root();
    let t = with_bundle(&transfer(), |b| b.anchor = root);
    let mut l3 = Standin {
        ledger: host.ledger.ledger.clone(),
        head: host.ledger.head.clone(),
        nullifiers: host.ledger.nullifiers.clone(),
    };
    let outcome3 = l3.apply(host.clock, &[t]);
    let err = store
        .commit_block(&CommittedBlock {
            block: &host.block(&[]),
            certificate: &cert(0),
            transactions: &[t],
            accounts: &[],
            outcome: &outcome3,
            ledger: &l3.head(),
            events: &[],
        })
        .unwrap_err();
    assert!(err.to_string().contains("not in the block"), "{err}");
    // An outcome whose compact block leaves out an applied transaction: what clients would
    // scan must be the block's, so nothing is written.
    let mut l4 = Standin {
        ledger: host.ledger.ledger.clone(),
        head: host.ledger.head.clone(),
        nullifiers: host.ledger.nullifiers.clone(),
    };
    let block4 = host.block(&[t]);
    let mut outcome4 = l4.apply(host.clock, &[t]);
    assert_eq!(outcome4.compact.txs.len(), 1, "the transfer applies");
    outcome4.compact.txs.clear();
    let err = store
        .commit_block(&CommittedBlock {
            block: &block4,
            certificate: &cert(0),
            transactions: &[t],
            accounts: &[],
            outcome: &outcome4,
            ledger: &l4.head(),
            events: &[],
        })
        .unwrap_err();
    assert!(err.to_string().contains("compact block"), "{err}");
    // And one that leaves out a rejection (the second copy of the transfer, a double spend):
    // the reason a wallet is told must be the block's too.
    let mut l5 = Standin {
        ledger: host.ledger.ledger.clone(),
        head: host.ledger.head.clone(),
        nullifiers: host.ledger.nullifiers.clone(),
    };
    let block5 = host.block(&[t, t]);
    let mut outcome5 = l5.apply(host.clock, &[t, t]);
    assert_eq!(outcome5.compact.rejected.len(), 1, "the copy is rejected");
    outcome5.compact.rejected.clear();
    let err = store
        .commit_block(&CommittedBlock {
            block: &block5,
            certificate: &cert(0),
            transactions: &[t, t],
            accounts: &[],
            outcome: &outcome5,
            ledger: &l5.head(),
            events: &[],
        })
        .unwrap_err();
    assert!(err.to_string().contains("compact block"), "{err}");
    check_matches(&store, &host);
}

/// Writes `value` at `key` of a table directly through redb (the store must be closed).
fn poke<K: redb::Key + 'static>(
    dir: &tempfile::TempDir,
    def: TableDefinition<K, &'static [u8]>,
    key: K::SelfType<'_>,
    value: &[u8],
) {
    let db = Database::create(path(dir)).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(def).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

/// Reads the value at `key` of a table directly through redb (the store must be closed).
fn peek<K: redb::Key + 'static>(
    dir: &tempfile::TempDir,
    def: TableDefinition<K, &'static [u8]>,
    key: K::SelfType<'_>,
) -> Vec<u8> {
    let db = Database::create(path(dir)).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(def).unwrap();
    let v = t.get(key).unwrap().unwrap().value().to_vec();
    v
}

fn stored_node() -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let host = five_blocks(&store);
    (dir, host)
}

#[test]
fn corrupt_values_are_errors() {
    let (dir, host) = stored_node();
    // Garbage frontier.
    poke(&dir, LEDGER, K_FRONTIER, b"\x01garbage");
    let err = Store::open(path(&dir)).unwrap().load().unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "ledger", key, .. } if key == K_FRONTIER),
        "{err}"
    );
    // A well-formed frontier of another size.
    let mut f = Frontier::new();
    f.append(Fr::from(1u64)).unwrap();
    poke(&dir, LEDGER, K_FRONTIER, &codec::encode_frontier(&f));
    let err = Store::open(path(&dir)).unwrap().load().unwrap_err();
    assert!(matches!(err, StoreError::Inconsistent(_)), "{err}");
    assert!(err.to_string().contains("commitments"), "{err}");
    poke(
        &dir,
        LEDGER,
        K_FRONTIER,
        &codec::encode_frontier(&host.ledger.head.frontier),
    );
    check_matches(&Store::open(path(&dir)).unwrap(), &host);

    // Unknown format version, truncated records, a wrong state root.
    poke(&dir, BLOCKS, 3, b"\x02whatever");
    let store = Store::open(path(&dir)).unwrap();
    let err = store.block(3).unwrap_err();
    assert!(
        err.to_string().contains("unknown format version 2"),
        "{err}"
    );
    assert!(err.to_string().contains("height 3"), "{err}");
    drop(store);
    let txid = host.outcomes[0].3[0].id();
    poke(&dir, TXS, &txid.0[..], b"\x01\x01\x00");
    let store = Store::open(path(&dir)).unwrap();
    let err = store.transaction(&txid).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "transactions",
                ..
            }
        ),
        "{err}"
    );
    drop(store);
    // A damaged compact block is an error naming its table, not a panic or a wrong answer.
    poke(&dir, COMPACT, 1, b"\x01\xff");
    let err = Store::open(path(&dir))
        .unwrap()
        .compact_block(1)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "compact_blocks",
                ..
            }
        ),
        "{err}"
    );
    let mut info = codec::decode_info(&peek(&dir, HEIGHTS, 5)).unwrap();
    info.state_root[0] ^= 1;
    poke(&dir, HEIGHTS, 5, &codec::encode_info(&info));
    let err = Store::open(path(&dir)).unwrap().load().unwrap_err();
    assert!(err.to_string().contains("state root"), "{err}");
    // Garbage consensus state.
    info.state_root[0] ^= 1;
    poke(&dir, HEIGHTS, 5, &codec::encode_info(&info));
    poke(&dir, CONSENSUS, K_PERSISTED, b"\x01\xff\xff\xff");
    let err = Store::open(path(&dir)).unwrap().load().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "consensus",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn random_garbage_never_panics() {
    let (dir, _host) = stored_node();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..40u64 {
        let mut garbage = vec![1u8];
        for _ in 0..(round * 7 % 90) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            garbage.push(x as u8);
        }
        let key = [K_HEIGHT, K_TIME, K_CHAIN, K_FRONTIER, K_ROOTS][round as usize % 5];
        poke(&dir, LEDGER, key, &garbage);
        poke(&dir, HEIGHTS, round % 5 + 1, &garbage);
        let store = Store::open(path(&dir)).unwrap();
        assert!(store.load().is_err());
        let _ = store.compact_block(round % 5 + 1);
        let _ = store.tree_state();
    }
}

#[test]
fn schema_version_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(path(&dir)).unwrap());
    {
        let db = Database::create(path(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_le_bytes()[..])
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(path(&dir)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaVersion {
                found,
                expected: SCHEMA_VERSION
            } if found == SCHEMA_VERSION + 1
        ),
        "{err}"
    );

    // A redb database of something else.
    let other = dir.path().join("other.redb");
    {
        let db = Database::create(&other).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(BLOCKS)
            .unwrap()
            .insert(1, &b"x"[..])
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        Store::open(&other).unwrap_err(),
        StoreError::MissingSchemaVersion
    ));

    // Not a database at all.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0xabu8; 8192]).unwrap();
    let err = Store::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::Db { .. }), "{err}");
    assert!(err.to_string().contains("junk.redb"), "{err}");
}

#[test]
fn checkpoints_and_consensus_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();

    let cp = CheckpointCertificate {
        height: 8,
        block_hash: BlockHash([4; 32]),
        state_root: [5; 32],
        signatures: vec![(ReplicaId(1), Signature::from_bytes(&[6; 64]))],
    };
    let mut expected = PersistedState::genesis();
    let deltas = [vote(8), vote(9), PersistDelta::StableCheckpoint(cp.clone())];
    for d in &deltas {
        expected.apply(d);
    }
    store.persist_consensus(&deltas).unwrap();
    assert_eq!(expected.prepares.len(), 1, "height 8 collected");
    assert_eq!(store.checkpoint(8).unwrap(), Some(cp));
    assert_eq!(store.consensus_state().unwrap(), Some(expected.clone()));
    drop(store);
    let store = Store::open(path(&dir)).unwrap();
    assert_eq!(store.consensus_state().unwrap(), Some(expected));
}

/// An in-memory backend whose writes fail on demand, like a full disk.
#[derive(Debug)]
struct FlakyDisk {
    inner: redb::backends::InMemoryBackend,
    full: Arc<AtomicBool>,
}

impl FlakyDisk {
    fn check(&self) -> std::io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device",
            ))
        } else {
            Ok(())
        }
    }
}

impl redb::StorageBackend for FlakyDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

#[test]
fn full_disk_is_an_error_with_context() {
    let full = Arc::new(AtomicBool::new(false));
    let store = Store::open_backend(FlakyDisk {
        inner: redb::backends::InMemoryBackend::new(),
        full: full.clone(),
    })
    .unwrap();
    let mut host = Host::new();
    host.commit(&store, &[]);
    full.store(true, Ordering::SeqCst);
    let block = host.block(&[]);
    let outcome = host.ledger.apply(block.time_ms, &[]);
    let head = host.ledger.head();
    let err = store
        .commit_block(&CommittedBlock {
            block: &block,
            certificate: &cert(0),
            transactions: &[],
            accounts: &[],
            outcome: &outcome,
            ledger: &head,
            events: &[],
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Db { .. }), "{err}");
    assert!(err.to_string().contains("block 2"), "{err}");
    let err = store.persist_consensus(&[vote(3)]).unwrap_err();
    assert!(matches!(err, StoreError::Db { .. }), "{err}");
}

/// A file backend that kills the process at its `n`-th write, resize or sync: a crash inside
/// redb's commit, with whatever it had written so far on disk.
#[derive(Debug)]
struct CrashingFile {
    inner: redb::backends::FileBackend,
    ops_left: Arc<std::sync::atomic::AtomicU64>,
}

impl CrashingFile {
    fn tick(&self) {
        if self.ops_left.fetch_sub(1, Ordering::SeqCst) == 1 {
            std::process::abort();
        }
    }
}

impl redb::StorageBackend for CrashingFile {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.tick();
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.tick();
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.tick();
        self.inner.write(offset, data)
    }
}

/// Three blocks; `before_last` runs before the third is committed, which is skipped if it
/// returns false.
fn three_blocks(store: &Store, before_last: impl FnOnce() -> bool) -> Host {
    let mut host = Host::new();
    let root0 = host.ledger.root();
    host.commit(store, &[with_bundle(&mint(), |b| b.anchor = root0)]);
    let root1 = host.ledger.root();
    let t1 = with_bundle(&transfer(), |b| b.anchor = root1);
    host.commit(store, &[t1]);
    let t2 = with_bundle(&t1, |b| b.nullifiers = [Fr::from(10u64), Fr::from(11u64)]);
    let t3 = with_bundle(&t1, |b| b.nullifiers = [Fr::from(12u64), Fr::from(13u64)]);
    if before_last() {
        host.commit(store, &[t2, t3]);
    }
    host
}

const CRASH_DB: &str = "SHOJI_STORE_CRASH_DB";
const CRASH_AT: &str = "SHOJI_STORE_CRASH_AT";

/// Kills a child process at the n-th disk operation of the third block's commit, for several
/// n; after each crash the store reopens at height 2 or 3, consistent either way.
#[test]
fn process_killed_inside_a_commit() {
    if let (Ok(db), Ok(at)) = (std::env::var(CRASH_DB), std::env::var(CRASH_AT)) {
        // The child.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(db)
            .unwrap();
        let ops_left = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
        let store = Store::open_backend(CrashingFile {
            inner: redb::backends::FileBackend::new(file).unwrap(),
            ops_left: ops_left.clone(),
        })
        .unwrap();
        three_blocks(&store, || {
            ops_left.store(at.parse().unwrap(), Ordering::SeqCst);
            true
        });
        return;
    }
    let model = |height: u64| {
        let store = Store::open_backend(redb::backends::InMemoryBackend::new()).unwrap();
        three_blocks(&store, || height == 3)
    };
    let (at2, at3) = (model(2), model(3));
    let (mut crashed, mut at_two) = (0, 0);
    for at in [1u64, 2, 3, 4, 5, 6, 8, 10, 13, 17, 25, 40] {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::process_killed_inside_a_commit",
                "--test-threads=1",
            ])
            .env(CRASH_DB, path(&dir))
            .env(CRASH_AT, at.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        if !status.success() {
            crashed += 1;
        }
        let store = Store::open(path(&dir)).unwrap();
        let rec = store.load().unwrap().unwrap();
        match rec.height {
            2 => {
                at_two += 1;
                check_matches(&store, &at2)
            }
            3 => check_matches(&store, &at3),
            h => panic!("crash at operation {at} left height {h}"),
        }
        if status.success() {
            assert_eq!(rec.height, 3);
        }
    }
    eprintln!("{crashed} runs crashed, {at_two} reopened at height 2");
    assert!(crashed >= 3, "only {crashed} runs crashed");
    assert!(at_two >= 1, "no crash hit before the commit point");
}

/// The stored block time is the proposed time clamped to the previous block's; a head with any
/// other time is refused, and a stored time that disagrees with the height metadata is found on
/// load.
#[test]
fn block_time_is_clamped_checked_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let mut host = Host::new();
    host.commit(&store, &[]);
    // The next proposer's clock is behind: the block keeps the previous time.
    host.clock = T0 - 5_000;
    let out = host.commit(&store, &[]);
    assert_eq!(out.time_ms, T0);
    host.clock = T0 + 7_000;
    host.commit(&store, &[]);
    let times: Vec<u64> = (1..=3)
        .map(|h| store.compact_block(h).unwrap().unwrap().time_ms)
        .collect();
    assert_eq!(times, vec![T0, T0, T0 + 7_000]);
    check_matches(&store, &host);

    // A head whose time is not max(proposed, stored) is refused.
    let block = host.block(&[]);
    let next = || Standin {
        ledger: host.ledger.ledger.clone(),
        head: host.ledger.head.clone(),
        nullifiers: host.ledger.nullifiers.clone(),
    };
    let mut ledger = next();
    let mut outcome = ledger.apply(block.time_ms, &[]);
    let mut head = ledger.head();
    head.time_ms += 1;
    outcome.time_ms += 1;
    outcome.compact.time_ms += 1;
    outcome.state_root = head.state_root();
    let err = store
        .commit_block(&CommittedBlock {
            block: &block,
            certificate: &cert(0),
            transactions: &[],
            accounts: &[],
            outcome: &outcome,
            ledger: &head,
            events: &[],
        })
        .unwrap_err();
    assert!(err.to_string().contains("ledger time"), "{err}");
    // An outcome whose time differs from the head's.
    let mut ledger = next();
    let mut outcome = ledger.apply(block.time_ms, &[]);
    outcome.time_ms += 1;
    let head = ledger.head();
    let err = store
        .commit_block(&CommittedBlock {
            block: &block,
            certificate: &cert(0),
            transactions: &[],
            accounts: &[],
            outcome: &outcome,
            ledger: &head,
            events: &[],
        })
        .unwrap_err();
    assert!(err.to_string().contains("outcome time"), "{err}");
    check_matches(&store, &host);
    drop(store);

    // A stored head time that is not the time recorded for its height.
    poke(&dir, LEDGER, K_TIME, &codec::u64_value(T0 + 1));
    let err = Store::open(path(&dir)).unwrap().load().unwrap_err();
    assert!(err.to_string().contains("block time"), "{err}");
}

#[test]
fn the_database_is_tied_to_one_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    store.check_genesis(&[1; 32]).unwrap();
    store.check_genesis(&[1; 32]).unwrap();
    drop(store);
    let store = Store::open(path(&dir)).unwrap();
    store.check_genesis(&[1; 32]).unwrap();
    let err = store.check_genesis(&[2; 32]).unwrap_err();
    assert!(matches!(err, StoreError::GenesisMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&"01".repeat(32)), "{err}");
}

/// Every kind of per-height entry, at heights 9 and 10, over a small state in view 2.
fn busy_consensus_state() -> PersistedState {
    let key = SigningKey::from_bytes(&[3; 32]);
    let block = |height: u64| Block {
        height,
        prev_hash: BlockHash([height as u8; 32]),
        view: 2,
        proposer: ReplicaId(2),
        time_ms: 1_000 * height,
        transactions: vec![vec![height as u8; 40]; 3],
    };
    let proposal = |height: u64| {
        shoji_consensus::SignedProposal::sign(
            &signers(&key),
            ReplicaId(2),
            shoji_consensus::Proposal {
                view: 2,
                header: block(height).header(),
            },
            &key,
        )
    };
    let pre_prepare = |height: u64| shoji_consensus::AcceptedProposal {
        proposal: proposal(height),
        bodies: vec![block(height)],
    };
    let sign =
        |m: shoji_consensus::Message| SignedMessage::sign(&signers(&key), ReplicaId(2), m, &key);
    let vote = |height: u64| shoji_consensus::Vote {
        view: 2,
        height,
        block_hash: block(height).hash(),
    };
    let mut s = PersistedState::genesis();
    let mut deltas = vec![PersistDelta::View {
        view: 2,
        view_changing: false,
    }];
    for h in [9, 10] {
        deltas.push(PersistDelta::PrePrepare(pre_prepare(h)));
        deltas.push(PersistDelta::Vote(sign(shoji_consensus::Message::Prepare(
            vote(h),
        ))));
        deltas.push(PersistDelta::Vote(sign(shoji_consensus::Message::Commit(
            vote(h),
        ))));
        deltas.push(PersistDelta::Prepared(
            shoji_consensus::PreparedCertificate {
                proposal: proposal(h),
                prepares: vec![(ReplicaId(0), Signature::from_bytes(&[h as u8; 64]))],
            },
        ));
        deltas.push(PersistDelta::Vote(sign(
            shoji_consensus::Message::Checkpoint(shoji_consensus::CheckpointVote {
                height: h,
                block_hash: block(h).hash(),
                state_root: [h as u8; 32],
            }),
        )));
    }
    for d in &deltas {
        s.apply(d);
    }
    s
}

#[test]
fn consensus_entries_are_rows_collected_at_the_stable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let mut expected = busy_consensus_state();
    store.store_consensus_state(&expected).unwrap();
    assert_eq!(store.consensus_state().unwrap().as_ref(), Some(&expected));
    drop(store);
    // One row per entry; the small state holds none of them.
    let rows = {
        let db = Database::create(path(&dir)).unwrap();
        let r = db.begin_read().unwrap();
        let t = r.open_table(CONSENSUS_LOG).unwrap();
        t.len().unwrap()
    };
    assert_eq!(rows, 10);
    let core = codec::decode_consensus(&peek(&dir, CONSENSUS, K_PERSISTED)).unwrap();
    assert_eq!(core, small_state(&expected));
    assert!(core.pre_prepares.is_empty() && core.prepared.is_empty());

    // A stable checkpoint at 9 removes every row at or below 9, and nothing above.
    let store = Store::open(path(&dir)).unwrap();
    let cp = CheckpointCertificate {
        height: 9,
        block_hash: BlockHash([9; 32]),
        state_root: [9; 32],
        signatures: Vec::new(),
    };
    let delta = PersistDelta::StableCheckpoint(cp);
    store
        .persist_consensus(std::slice::from_ref(&delta))
        .unwrap();
    expected.apply(&delta);
    assert_eq!(expected.pre_prepares.len(), 1);
    assert_eq!(store.consensus_state().unwrap(), Some(expected));
    drop(store);

    // A garbled row and a row of no known kind are errors naming the table and the row.
    poke(&dir, CONSENSUS_LOG, (10, LOG_PREPARE), b"\x01garbage");
    let err = Store::open(path(&dir))
        .unwrap()
        .consensus_state()
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "consensus_log",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("height 10, kind 1"), "{err}");
    poke(
        &dir,
        CONSENSUS_LOG,
        (10, LOG_PREPARE),
        &peek_row(&dir, (10, LOG_COMMIT)),
    );
    assert!(Store::open(path(&dir)).unwrap().consensus_state().is_err());
    poke(
        &dir,
        CONSENSUS_LOG,
        (11, 9),
        &peek_row(&dir, (10, LOG_COMMIT)),
    );
    let err = Store::open(path(&dir))
        .unwrap()
        .consensus_state()
        .unwrap_err();
    assert!(err.to_string().contains("kind"), "{err}");
}

fn peek_row(dir: &tempfile::TempDir, key: (u64, u8)) -> Vec<u8> {
    peek(dir, CONSENSUS_LOG, key)
}

#[test]
fn a_store_of_an_older_schema_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(path(&dir)).unwrap());
    for old in [3u32, 4] {
        {
            let db = Database::create(path(&dir)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, &old.to_le_bytes()[..])
                .unwrap();
            txn.commit().unwrap();
        }
        let err = Store::open(path(&dir)).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaVersion { found, expected } if found == old && expected == SCHEMA_VERSION),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("version {old}")), "{err}");
        assert_eq!(peek(&dir, META, SCHEMA_KEY), old.to_le_bytes().to_vec());
    }
}

/// A set of one member, validator 2 with `key`, to sign test messages for.
fn signers(key: &SigningKey) -> ValidatorSet {
    ValidatorSet::new(0, BTreeMap::from([(ReplicaId(2), key.verifying_key())])).expect("set")
}

/// A validator-set change the ledger decided is kept by the last height of its epoch, for
/// clients that follow epochs to ask for.
#[test]
fn a_decided_validator_set_change_is_kept_for_clients() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let mut host = Host::new();
    host.commit(&store, &[]);
    assert_eq!(store.epoch_change_at_or_after(0).unwrap(), None);
    let block = host.block(&[]);
    let mut outcome = host.ledger.apply(block.time_ms, &[]);
    let next: shoji_ledger::Validators = (0..3u16).map(|i| (i, [i as u8 + 1; 32])).collect();
    outcome.validators_decided = Some((24, next.clone()));
    store
        .commit_block(&CommittedBlock {
            block: &block,
            certificate: &cert(0),
            transactions: &[],
            accounts: &[],
            outcome: &outcome,
            ledger: &host.ledger.head(),
            events: &[],
        })
        .unwrap();
    let want = EpochChange {
        decided: 2,
        last: 24,
        validators: next,
    };
    for h in [0, 2, 24] {
        assert_eq!(
            store.epoch_change_at_or_after(h).unwrap(),
            Some(want.clone())
        );
    }
    assert_eq!(store.epoch_change_at_or_after(25).unwrap(), None);
    drop(store);
    let store = Store::open(path(&dir)).unwrap();
    assert_eq!(store.epoch_change_at_or_after(3).unwrap(), Some(want));
}

/// A snapshot of a store at height 5, checked and installed into an empty store that then
/// commits block 6 exactly as the full store does, and survives a reopen.
#[test]
fn a_store_started_from_a_snapshot_continues_like_the_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let full = Store::open(path(&dir)).unwrap();
    let mut host = five_blocks(&full);
    let view = full.state_view().unwrap();
    assert_eq!(view.height(), 5);
    let mut chunks = Vec::new();
    let manifest = view
        .write_snapshot(1024, |i, b| {
            assert_eq!(i, chunks.len());
            chunks.push(b.to_vec());
            Ok(())
        })
        .unwrap();
    // Block 6 commits to the full store after the view was taken: the view does not move.
    let root1 = host.ledger.root();
    let t = with_bundle(&transfer(), |b| {
        b.anchor = root1;
        b.nullifiers = [Fr::from(20u64), Fr::from(21u64)];
    });
    host.commit(&full, &[t]);
    assert_eq!(view.height(), 5);
    let root5 = full.state_root(5).unwrap().unwrap();
    assert_eq!(view.state_root(), root5);
    assert_eq!(manifest.nullifiers, 8);

    let mut a = shoji_ledger::snapshot::SnapshotAssembler::new(manifest, &root5).unwrap();
    for (i, c) in chunks.iter().enumerate() {
        a.accept(i, c).unwrap();
    }
    let verified = a.finish().unwrap();
    let (block5, _, _, _) = &host.outcomes[4];
    let checkpoint = CheckpointCertificate {
        height: 5,
        block_hash: block5.hash(),
        state_root: root5,
        signatures: Vec::new(),
    };
    let dir2 = tempfile::tempdir().unwrap();
    let joined = Store::open(path(&dir2)).unwrap();
    // A certificate for another state is refused.
    let mut other = checkpoint.clone();
    other.state_root = [9; 32];
    assert!(matches!(
        joined.install_snapshot(&verified, &other),
        Err(StoreError::InvalidInput(_))
    ));
    joined.install_snapshot(&verified, &checkpoint).unwrap();
    assert!(matches!(
        joined.install_snapshot(&verified, &checkpoint),
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(joined.base().unwrap(), Some((5, block5.hash())));
    assert_eq!(joined.block(3).unwrap(), None);
    assert_eq!(joined.opening(5).unwrap(), full.opening(5).unwrap());
    let rec = joined.load().unwrap().unwrap();
    assert_eq!(rec.height, 5);
    let ledger: Ledger = rec.restore_ledger(config()).unwrap();
    assert_eq!(ledger.state_root(), root5);

    // Block 6, as the full store committed it.
    let (block6, cert6, out6, txs6) = host.outcomes[5].clone();
    joined
        .commit_block(&CommittedBlock {
            block: &block6,
            certificate: &cert6,
            transactions: &txs6,
            accounts: &[],
            outcome: &out6,
            ledger: &host.ledger.head(),
            events: &[],
        })
        .unwrap();
    assert_eq!(joined.opening(6).unwrap(), full.opening(6).unwrap());
    assert_eq!(joined.nullifier_height(&Fr::from(20u64)).unwrap(), Some(6));
    // Nullifiers from the snapshot are recorded at its height.
    assert_eq!(joined.nullifier_height(&Fr::from(10u64)).unwrap(), Some(5));
    drop(joined);
    let reopened = Store::open(path(&dir2)).unwrap();
    let rec = reopened.load().unwrap().unwrap();
    assert_eq!(rec.height, 6);
    assert_eq!(rec.state_root, full.load().unwrap().unwrap().state_root);
    // And a snapshot taken from the joined store is the full store's.
    let mut again = Vec::new();
    let m2 = reopened
        .state_view()
        .unwrap()
        .write_snapshot(1024, |_, b| {
            again.push(b.to_vec());
            Ok(())
        })
        .unwrap();
    let mut same = Vec::new();
    let m1 = full
        .state_view()
        .unwrap()
        .write_snapshot(1024, |_, b| {
            same.push(b.to_vec());
            Ok(())
        })
        .unwrap();
    assert_eq!((m1, same), (m2, again));
}

/// Pruning moves the base up to a stored checkpoint: the blocks, compact blocks, events,
/// transaction records and commitments at and below it go, the state and openings stay, the
/// store loads as before, and reads below the base say where blocks start.
#[test]
fn pruning_to_a_checkpoint_keeps_the_state_and_says_where_blocks_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(path(&dir)).unwrap();
    let host = five_blocks(&store);
    let before = store.load().unwrap().unwrap();
    // No checkpoint stored yet: nothing to prune.
    assert_eq!(store.prune(4, 100).unwrap(), 0);
    let (block3, _, _, txs3) = &host.outcomes[2];
    assert!(txs3.is_empty());
    let (_, _, _, txs2) = &host.outcomes[1];
    let cp = CheckpointCertificate {
        height: 3,
        block_hash: block3.hash(),
        state_root: store.state_root(3).unwrap().unwrap(),
        signatures: Vec::new(),
    };
    store
        .persist_consensus(&[PersistDelta::StableCheckpoint(cp)])
        .unwrap();
    let opening2 = store.opening(2).unwrap();
    assert_eq!(store.prune(4, 100).unwrap(), 3);
    assert_eq!(store.base().unwrap(), Some((3, block3.hash())));
    for h in 1..=3 {
        assert_eq!(store.block(h).unwrap(), None, "block {h}");
    }
    assert!(store.block(4).unwrap().is_some());
    assert_eq!(store.transaction(&txs2[0].id()).unwrap(), None);
    assert_eq!(store.opening(2).unwrap(), opening2);
    assert!(matches!(
        store.reader().compact_blocks(1, 10, 1 << 20),
        Err(StoreError::NotKept { first: 4 })
    ));
    assert_eq!(
        store.reader().compact_blocks(4, 10, 1 << 20).unwrap().len(),
        2
    );
    let after = store.load().unwrap().unwrap();
    assert_eq!(
        (after.height, after.state_root),
        (before.height, before.state_root)
    );
    assert_eq!(after.ledger, before.ledger);
    // Pruning again to the same checkpoint does nothing.
    assert_eq!(store.prune(5, 100).unwrap(), 3);
}
