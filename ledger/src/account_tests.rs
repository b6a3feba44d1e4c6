//! Confidential accounts through the ledger, with real proofs verified as validators verify
//! them: open, mint, pay, redeem; replays, stale balances, a credit landing between proving and
//! inclusion, wrong auditor, unknown accounts, unauthorized issuers, accounts switched off.

use super::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use shoji_confidential::{Role, SecretKey};
use shoji_primitives::account::{RedeemHeader, TransferHeader};
use shoji_primitives::note::{Amount, AssetId};
use shoji_verifier::accounts::verify_account_txs;

const NETWORK: [u8; 32] = [3; 32];
const USD: AssetId = AssetId(840);

struct World {
    ledger: Ledger,
    network: [u8; 32],
    asset: AssetId,
    issuer: ed25519_dalek::SigningKey,
    auditor: SecretKey,
    rng: ChaCha20Rng,
    nonce: u8,
}

fn world(accounts: bool) -> World {
    let note_auditor =
        shoji_primitives::audit::AuditSecretKey::random(&mut ChaCha20Rng::seed_from_u64(1))
            .public_key();
    world_on(NETWORK, USD, note_auditor, accounts)
}

/// A world on `network` whose issuer may mint `asset`, with the note auditor `note_auditor`.
fn world_on(
    network: [u8; 32],
    asset: AssetId,
    note_auditor: shoji_primitives::audit::AuditPublicKey,
    accounts: bool,
) -> World {
    let issuer = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let auditor = SecretKey::auditor(&[9; 32]);
    let ledger = Ledger::genesis(LedgerConfig {
        anchor_window_blocks: 3,
        auditor: note_auditor,
        issuers: BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([asset]))]),
        governance: GovernanceRules::default(),
        network_id: network,
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: accounts.then(|| auditor.public()),
    });
    World {
        ledger,
        network,
        asset,
        issuer,
        auditor,
        rng: ChaCha20Rng::seed_from_u64(2),
        nonce: 0,
    }
}

impl World {
    /// Verifies `txs` as a validator does and applies them as one block.
    fn block(&mut self, txs: &[AccountTx]) -> BlockOutcome {
        let refs: Vec<&AccountTx> = txs.iter().collect();
        let stateless = verify_account_txs(&refs, &self.network);
        self.ledger
            .apply_block_full(0, &[], &[], txs, &stateless, &[])
    }

    fn outcomes(&mut self, txs: &[AccountTx]) -> Vec<Result<(), Rejection>> {
        self.block(txs)
            .accounts
            .into_iter()
            .map(|(_, o)| match o {
                TxOutcome::Applied { .. } => Ok(()),
                TxOutcome::Rejected(r) => Err(r),
                TxOutcome::Enacted => panic!("an account transaction enacted"),
            })
            .collect()
    }

    fn open(&mut self, key: &SecretKey) -> AccountTx {
        AccountTx::open(&self.network, key, self.asset, &mut self.rng)
    }

    fn mint(&mut self, to: &SecretKey, value: u64) -> AccountTx {
        self.nonce += 1;
        AccountTx::mint(
            &self.network,
            &self.issuer,
            self.asset,
            to.public(),
            Amount(value),
            [self.nonce; 32],
        )
    }

    fn state(&self, key: &SecretKey) -> AccountState {
        self.ledger
            .account(&AccountId::new(&key.public(), self.asset))
            .cloned()
            .expect("an open account")
    }

    /// A payment of `amount` from `from` (holding `balance` with every credit) to `to`.
    fn pay(&mut self, from: &SecretKey, to: &SecretKey, balance: u64, amount: u64) -> AccountTx {
        let a = self.state(from);
        let header = TransferHeader {
            asset: self.asset,
            sender: from.public(),
            receiver: to.public(),
            auditor: self.auditor.public(),
            sequence: a.sequence,
            credits: a.credits,
            expiry_height: self.ledger.height() + 10,
            spendable: a.balance(),
        };
        AccountTx::transfer(&self.network, from, header, balance, amount, &mut self.rng).unwrap()
    }

    fn holds(&self, key: &SecretKey, value: u64) -> bool {
        self.state(key).balance().holds(key, value)
    }
}

fn keys() -> (SecretKey, SecretKey) {
    (SecretKey::account(&[1; 32]), SecretKey::account(&[2; 32]))
}

#[test]
fn open_mint_pay_and_redeem_move_the_balances_every_party_reads() {
    let mut w = world(true);
    let (alice, bob) = keys();
    let opens = [w.open(&alice), w.open(&bob)];
    assert_eq!(w.outcomes(&opens), vec![Ok(()), Ok(())]);
    let m = w.mint(&alice, 1_000);
    assert_eq!(w.outcomes(&[m]), vec![Ok(())]);
    assert!(w.holds(&alice, 1_000));
    let root_before = w.ledger.state_root();
    let pay = w.pay(&alice, &bob, 1_000, 300);
    let out = w.block(std::slice::from_ref(&pay));
    assert!(matches!(out.accounts[0].1, TxOutcome::Applied { .. }));
    assert_ne!(w.ledger.state_root(), root_before);
    assert!(w.holds(&alice, 700));
    assert!(w.holds(&bob, 300));
    assert_eq!(out.accounts_changed.len(), 2);
    // The root the ledger keeps from cached encodings is the one computed from the accounts.
    assert_ne!(w.ledger.head().accounts_root, [0; 32]);
    assert_eq!(
        w.ledger.head().accounts_root,
        crate::accounts_root(w.ledger.accounts())
    );
    for (id, bytes) in &out.accounts_changed {
        assert_eq!(bytes, &w.ledger.accounts()[id].to_bytes());
    }
    // The compact block carries the payment whole: the auditor reads the amount from it.
    assert_eq!(out.compact.accounts, vec![pay.clone()]);
    assert_eq!(
        CompactBlock::from_bytes(&out.compact.to_bytes()),
        Ok(out.compact.clone())
    );
    let AccountTx::Transfer(t) = &out.compact.accounts[0] else {
        panic!("a transfer")
    };
    assert_eq!(t.amount.decrypt(Role::Auditor, &w.auditor), Ok(300));
    assert_eq!(t.amount.decrypt(Role::Receiver, &bob), Ok(300));
    // Bob pays some back, then redeems to the issuer.
    let back = w.pay(&bob, &alice, 300, 100);
    assert_eq!(w.outcomes(&[back]), vec![Ok(())]);
    assert!(w.holds(&alice, 800));
    let b = w.state(&bob);
    let header = RedeemHeader {
        asset: USD,
        account: bob.public(),
        issuer: w.issuer.verifying_key().to_bytes(),
        value: Amount(150),
        sequence: b.sequence,
        credits: b.credits,
        expiry_height: 100,
        spendable: b.balance(),
    };
    let redeem = AccountTx::redeem(&NETWORK, &bob, header, 200, &mut w.rng).unwrap();
    assert_eq!(w.outcomes(&[redeem]), vec![Ok(())]);
    assert!(w.holds(&bob, 50));
    // The state survives a snapshot.
    let snap = LedgerSnapshot {
        head: w.ledger.head(),
        nullifiers: w.ledger.nullifiers.clone(),
        accounts: w.ledger.accounts.clone(),
    };
    let restored = Ledger::restore(w.ledger.config().clone(), snap).unwrap();
    assert_eq!(
        restored.account(&AccountId::new(&bob.public(), USD)),
        Some(&w.state(&bob))
    );
}

#[test]
fn replays_are_refused() {
    let mut w = world(true);
    let (alice, bob) = keys();
    let opens = [w.open(&alice), w.open(&bob)];
    w.block(&opens);
    assert_eq!(w.outcomes(&opens[..1]), vec![Err(Rejection::AccountExists)]);
    let m = w.mint(&alice, 500);
    assert_eq!(
        w.outcomes(&[m.clone(), m.clone()]),
        vec![Ok(()), Err(Rejection::DoubleSpend)]
    );
    assert_eq!(w.outcomes(&[m]), vec![Err(Rejection::DoubleSpend)]);
    let pay = w.pay(&alice, &bob, 500, 200);
    assert_eq!(
        w.outcomes(&[pay.clone(), pay.clone()]),
        vec![
            Ok(()),
            Err(Rejection::AccountSequence {
                expected: 1,
                got: 0
            })
        ]
    );
    assert_eq!(
        w.outcomes(&[pay]),
        vec![Err(Rejection::AccountSequence {
            expected: 1,
            got: 0
        })]
    );
    assert!(w.holds(&alice, 300));
    assert!(w.holds(&bob, 200));
}

#[test]
fn a_credit_between_proving_and_inclusion_neither_breaks_the_proof_nor_is_lost() {
    let mut w = world(true);
    let (alice, bob) = keys();
    let opens = [w.open(&alice), w.open(&bob)];
    w.block(&opens);
    let m = w.mint(&alice, 1_000);
    w.block(&[m]);
    // Alice proves against her balance now …
    let pay = w.pay(&alice, &bob, 1_000, 400);
    // … and, before it is ordered, two payments reach her.
    let m1 = w.mint(&alice, 50);
    let m2 = w.mint(&alice, 25);
    assert_eq!(w.outcomes(&[m1, m2]), vec![Ok(()), Ok(())]);
    assert_eq!(w.outcomes(&[pay]), vec![Ok(())]);
    assert!(w.holds(&alice, 675));
    assert!(w.holds(&bob, 400));
    // Her next payment names the latest credits and spends them.
    let pay2 = w.pay(&alice, &bob, 675, 675);
    assert_eq!(w.outcomes(&[pay2]), vec![Ok(())]);
    assert!(w.holds(&alice, 0));
}

#[test]
fn a_balance_the_account_does_not_have_is_refused() {
    let mut w = world(true);
    let (alice, bob) = keys();
    let opens = [w.open(&alice), w.open(&bob)];
    w.block(&opens);
    let m = w.mint(&alice, 1_000);
    w.block(&[m]);
    let a = w.state(&alice);
    let header = TransferHeader {
        asset: USD,
        sender: alice.public(),
        receiver: bob.public(),
        auditor: w.auditor.public(),
        sequence: a.sequence,
        credits: a.credits,
        expiry_height: 50,
        spendable: a.balance(),
    };
    // Claiming more than the account holds: spendable from another account's state.
    let fake = shoji_confidential::Ciphertext::public(5_000);
    let rich = AccountTx::transfer(
        &NETWORK,
        &alice,
        TransferHeader {
            spendable: fake,
            ..header
        },
        5_000,
        4_000,
        &mut w.rng,
    )
    .unwrap();
    assert_eq!(w.outcomes(&[rich]), vec![Err(Rejection::StaleBalance(1))]);
    // Naming credits it has not received, or credits out of the window.
    let ahead = AccountTx::transfer(
        &NETWORK,
        &alice,
        TransferHeader {
            credits: 2,
            ..header
        },
        1_000,
        1,
        &mut w.rng,
    )
    .unwrap();
    assert_eq!(w.outcomes(&[ahead]), vec![Err(Rejection::StaleBalance(2))]);
    // An expired transfer, a wrong auditor key, an unknown receiver.
    let expired = AccountTx::transfer(
        &NETWORK,
        &alice,
        TransferHeader {
            expiry_height: 1,
            ..header
        },
        1_000,
        1,
        &mut w.rng,
    )
    .unwrap();
    assert_eq!(w.outcomes(&[expired]), vec![Err(Rejection::Expired(1))]);
    let other_auditor = SecretKey::auditor(&[10; 32]).public();
    let wrong = AccountTx::transfer(
        &NETWORK,
        &alice,
        TransferHeader {
            auditor: other_auditor,
            ..header
        },
        1_000,
        1,
        &mut w.rng,
    )
    .unwrap();
    assert_eq!(w.outcomes(&[wrong]), vec![Err(Rejection::WrongAuditor)]);
    let stranger = SecretKey::account(&[5; 32]);
    let nowhere = AccountTx::transfer(
        &NETWORK,
        &alice,
        TransferHeader {
            receiver: stranger.public(),
            ..header
        },
        1_000,
        1,
        &mut w.rng,
    )
    .unwrap();
    assert_eq!(w.outcomes(&[nowhere]), vec![Err(Rejection::UnknownAccount)]);
    // A proof for another network fails stateless verification.
    let foreign = AccountTx::transfer(&[4; 32], &alice, header, 1_000, 1, &mut w.rng).unwrap();
    assert!(matches!(
        w.outcomes(&[foreign])[0],
        Err(Rejection::Stateless(_))
    ));
    // Nothing moved.
    assert!(w.holds(&alice, 1_000));
    assert_eq!(w.state(&alice).sequence, 0);
}

#[test]
fn issuers_and_networks_without_accounts_are_refused() {
    let mut w = world(true);
    let (alice, _) = keys();
    let o = w.open(&alice);
    w.block(&[o]);
    let rogue = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let m = AccountTx::mint(&NETWORK, &rogue, USD, alice.public(), Amount(9), [1; 32]);
    assert_eq!(
        w.outcomes(&[m]),
        vec![Err(Rejection::UnauthorizedIssuer(840))]
    );
    let other_asset = AccountTx::mint(
        &NETWORK,
        &w.issuer,
        AssetId(978),
        alice.public(),
        Amount(9),
        [1; 32],
    );
    assert_eq!(
        w.outcomes(&[other_asset]),
        vec![Err(Rejection::UnauthorizedIssuer(978))]
    );
    let unopened = SecretKey::account(&[6; 32]);
    let nowhere = w.mint(&unopened, 9);
    assert_eq!(w.outcomes(&[nowhere]), vec![Err(Rejection::UnknownAccount)]);
    let mut forged = w.mint(&alice, 9);
    if let AccountTx::Mint(m) = &mut forged {
        m.value = Amount(9_000);
    }
    assert!(matches!(
        w.outcomes(&[forged])[0],
        Err(Rejection::Stateless(_))
    ));

    let mut off = world(false);
    let o = off.open(&alice);
    assert_eq!(off.outcomes(&[o]), vec![Err(Rejection::AccountsDisabled)]);
}

#[test]
fn governance_rotates_the_account_auditor_and_opens_accounts_on_a_network_without() {
    use shoji_primitives::governance::{GovernanceAction, GovernanceTx};
    let admin = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    let mut w = world(false);
    w.ledger.config.governance = GovernanceRules {
        admins: BTreeSet::from([admin.verifying_key().to_bytes()]),
        threshold: 1,
    };
    let (alice, bob) = keys();
    let o = w.open(&alice);
    assert_eq!(
        w.outcomes(std::slice::from_ref(&o)),
        vec![Err(Rejection::AccountsDisabled)]
    );
    let enact = |w: &mut World, seq: u64, key: &SecretKey| {
        let mut g = GovernanceTx::new(
            seq,
            GovernanceAction::SetAccountAuditor {
                auditor: key.public(),
            },
        );
        g.approve(&admin, &NETWORK);
        let out = w.ledger.apply_block_full(0, &[], &[], &[], &[], &[g]);
        assert_eq!(out.governance[0].1, TxOutcome::Enacted);
    };
    let first = w.auditor.clone();
    enact(&mut w, 0, &first);
    let ob = w.open(&bob);
    assert_eq!(w.outcomes(&[o, ob]), vec![Ok(()), Ok(())]);
    let m = w.mint(&alice, 100);
    w.block(&[m]);
    // The auditor rotates: a payment to the old key is refused, to the new one applied.
    let old = w.pay(&alice, &bob, 100, 10);
    let new_auditor = SecretKey::auditor(&[12; 32]);
    enact(&mut w, 1, &new_auditor);
    assert_eq!(w.outcomes(&[old]), vec![Err(Rejection::WrongAuditor)]);
    w.auditor = new_auditor;
    let new = w.pay(&alice, &bob, 100, 10);
    assert_eq!(w.outcomes(std::slice::from_ref(&new)), vec![Ok(())]);
    let AccountTx::Transfer(t) = &new else {
        panic!("a transfer")
    };
    assert_eq!(t.amount.decrypt(Role::Auditor, &w.auditor), Ok(10));
    // The policy, with its account auditor, survives its encoding.
    let p = w.ledger.policy().clone();
    assert_eq!(Policy::from_bytes(&p.to_bytes()), Ok(p));
}

/// The verifier's stored shield (300 out of the account of `SecretKey::account(&[5; 32])`,
/// spending from a balance of 1,000 made by one public credit) and unshield (250 into that
/// account), on the all-zeros network, anchored at `root`. Their stateless checks are the
/// verifier's (`stored_bridge_transactions_verify`); here they are given.
fn bridge_vectors(root: Fr) -> (Transaction, Transaction) {
    let read = |hex: &str| {
        let bytes = shoji_primitives::encoding::hex_decode("vector", hex.trim()).unwrap();
        let mut tx = Transaction::from_bytes(&bytes).unwrap();
        tx.bundle_mut().anchor = root;
        tx
    };
    (
        read(include_str!("../../verifier/testdata/shield-v3.hex")),
        read(include_str!("../../verifier/testdata/unshield-v3.hex")),
    )
}

/// A ledger on the vectors' network, asset and note auditor, where the vectors' account is
/// open (if `open`) and credited 1,000 by one mint; with the compact blocks that did it.
fn bridge_world(open: bool) -> (World, SecretKey, Vec<CompactBlock>) {
    let (probe, _) = bridge_vectors(Fr::from(0u64));
    let b = probe.bundle();
    let mut w = world_on([0; 32], b.asset, b.auditor, true);
    let key = SecretKey::account(&[5; 32]);
    let mut blocks = Vec::new();
    if open {
        let open = w.open(&key);
        let mint = w.mint(&key, 1000);
        for tx in [open, mint] {
            let out = w.block(&[tx]);
            assert!(matches!(out.accounts[0].1, TxOutcome::Applied { .. }));
            blocks.push(out.compact);
        }
    }
    (w, key, blocks)
}

impl World {
    /// Applies `txs` as one block of shielded transactions, their stateless checks given as
    /// passed; returns the outcome and each transaction's result.
    fn shielded(&mut self, txs: &[Transaction]) -> (BlockOutcome, Vec<Result<(), Rejection>>) {
        let ok = vec![Ok(()); txs.len()];
        let out = self.ledger.apply_block_full(0, txs, &ok, &[], &[], &[]);
        let results = out
            .outcomes
            .iter()
            .map(|o| match o {
                TxOutcome::Rejected(r) => Err(r.clone()),
                _ => Ok(()),
            })
            .collect();
        (out, results)
    }
}

#[test]
fn a_shield_and_an_unshield_move_value_between_the_tiers_and_the_supply_balances() {
    let (mut w, key, mut blocks) = bridge_world(true);
    let id = AccountId::new(&key.public(), w.asset);
    let (shield, unshield) = bridge_vectors(w.ledger.tree_root());
    let (out, results) = w.shielded(&[shield]);
    assert_eq!(results, vec![Ok(())]);
    assert!(w.holds(&key, 700));
    assert_eq!(out.accounts_changed, vec![(id, w.state(&key).to_bytes())]);
    assert_eq!(out.compact.txs[0].account, Some(key.public().to_bytes()));
    assert_eq!(
        CompactBlock::from_bytes(&out.compact.to_bytes()),
        Ok(out.compact.clone())
    );
    blocks.push(out.compact);
    let (out, results) = w.shielded(&[unshield]);
    assert_eq!(results, vec![Ok(())]);
    assert!(w.holds(&key, 950));
    let state = w.state(&key);
    assert_eq!((state.sequence, state.credits), (1, 2));
    blocks.push(out.compact);

    // The supply, from public values alone: 1,000 issued into the account, 300 shielded, 250
    // unshielded.
    let mut book = SupplyBook::new();
    let mut followed = AccountState::new();
    for b in &blocks {
        book.follow(b);
        // A wallet following the compact blocks holds the ledger's state of its account.
        for t in &b.txs {
            followed.follow_bridge(&id, t);
        }
        for a in &b.accounts {
            followed.follow(&id, a);
        }
    }
    assert_eq!(followed, state);
    let s = book.asset(w.asset);
    assert_eq!((s.issued, s.redeemed), (1000, 0));
    assert_eq!((s.shielded, s.unshielded), (300, 250));
    assert_eq!((s.in_accounts, s.in_notes), (950, 50));
    assert!(s.balances());
}

#[test]
fn a_bridge_is_refused_against_the_wrong_account_state() {
    // No account: neither a shield out of it nor an unshield into it.
    let (mut w, _, _) = bridge_world(false);
    let (shield, unshield) = bridge_vectors(w.ledger.tree_root());
    assert_eq!(
        w.shielded(&[shield, unshield]).1,
        vec![
            Err(Rejection::UnknownAccount),
            Err(Rejection::UnknownAccount)
        ]
    );

    // A balance that is not the account's.
    let (mut w, key, _) = bridge_world(true);
    let (shield, _) = bridge_vectors(w.ledger.tree_root());
    let mut stale = shield;
    if let Transaction::Shield { debit, .. } = &mut stale {
        debit.spendable = Ciphertext::public(999);
    }
    assert_eq!(
        w.shielded(&[stale]).1,
        vec![Err(Rejection::StaleBalance(1))]
    );

    // The account spent meanwhile (its sequence moved on): the shield's debit is stale.
    let a = w.state(&key);
    let header = RedeemHeader {
        asset: w.asset,
        account: key.public(),
        issuer: w.issuer.verifying_key().to_bytes(),
        value: Amount(10),
        sequence: a.sequence,
        credits: a.credits,
        expiry_height: 100,
        spendable: a.balance(),
    };
    let redeem = AccountTx::redeem(&w.network, &key, header, 1000, &mut w.rng).unwrap();
    assert_eq!(w.outcomes(&[redeem]), vec![Ok(())]);
    let (shield, _) = bridge_vectors(w.ledger.tree_root());
    assert_eq!(
        w.shielded(&[shield]).1,
        vec![Err(Rejection::AccountSequence {
            expected: 1,
            got: 0
        })]
    );
    assert!(w.holds(&key, 990), "nothing moved");

    // Applied once, the same shield again is a double spend (its nullifiers).
    let (mut w, key, _) = bridge_world(true);
    let (shield, _) = bridge_vectors(w.ledger.tree_root());
    assert_eq!(
        w.shielded(&[shield, shield]).1,
        vec![Ok(()), Err(Rejection::DoubleSpend)]
    );
    assert!(w.holds(&key, 700));
}

/// A ledger with two accounts, `mints` mints (each leaves a nullifier) and a payment; returns
/// it with its nullifiers in order of revelation.
fn snapshot_world(mints: usize) -> (World, Vec<[u8; 32]>) {
    let mut w = world(true);
    let (alice, bob) = keys();
    let opens = [w.open(&alice), w.open(&bob)];
    assert_eq!(w.outcomes(&opens), vec![Ok(()), Ok(())]);
    let mut log = Vec::new();
    for _ in 0..mints {
        let m = w.mint(&alice, 10);
        log.push(mint_nullifier(&m.id()));
        assert_eq!(w.outcomes(&[m]), vec![Ok(())]);
    }
    let pay = w.pay(&alice, &bob, 10 * mints as u64, 5);
    assert_eq!(w.outcomes(&[pay]), vec![Ok(())]);
    (w, log)
}

/// Cuts `ledger` into chunks of about `chunk_bytes`.
fn cut(
    ledger: &Ledger,
    log: &[[u8; 32]],
    chunk_bytes: usize,
) -> (snapshot::SnapshotManifest, Vec<Vec<u8>>) {
    let mut chunks = Vec::new();
    let sink = |i: usize, b: &[u8]| -> Result<(), ()> {
        assert_eq!(i, chunks.len());
        chunks.push(b.to_vec());
        Ok(())
    };
    let mut w =
        snapshot::SnapshotWriter::new(&ledger.head(), &ledger.tree_root(), chunk_bytes, sink)
            .unwrap();
    for nf in log {
        w.nullifier(nf).unwrap();
    }
    for (id, state) in ledger.accounts() {
        w.account(id, state).unwrap();
    }
    let manifest = w.finish().unwrap();
    (manifest, chunks)
}

#[test]
fn a_snapshot_restores_the_same_state_from_chunks_in_any_order() {
    let (w, log) = snapshot_world(70);
    let (manifest, chunks) = cut(&w.ledger, &log, 1024);
    // A head, three nullifier chunks (32 a chunk), an account chunk.
    assert_eq!(chunks.len(), 5);
    assert_eq!(
        snapshot::SnapshotManifest::from_bytes(&manifest.to_bytes()),
        Ok(manifest.clone())
    );
    let root = w.ledger.state_root();
    let mut a = snapshot::SnapshotAssembler::new(manifest, &root).unwrap();
    for i in [3, 0, 4, 2, 1] {
        a.accept(i, &chunks[i]).unwrap();
    }
    assert!(a.missing().is_empty());
    let v = a.finish().unwrap();
    assert_eq!(v.nullifier_log, log);
    let restored = Ledger::restore(w.ledger.config().clone(), v.state).unwrap();
    assert_eq!(restored.state_root(), root);
    assert_eq!(restored.accounts(), w.ledger.accounts());
    assert_eq!(restored.nullifiers, w.ledger.nullifiers);
}

#[test]
fn a_tampered_or_truncated_chunk_is_refused_on_arrival_and_the_honest_one_accepted() {
    let (w, log) = snapshot_world(40);
    let (manifest, chunks) = cut(&w.ledger, &log, 1024);
    let mut a = snapshot::SnapshotAssembler::new(manifest, &w.ledger.state_root()).unwrap();
    for i in 0..chunks.len() {
        let mut bad = chunks[i].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            a.accept(i, &bad),
            Err(snapshot::SnapshotError::ChunkHash(i))
        );
        let short = &chunks[i][..chunks[i].len() - 1];
        assert_eq!(
            a.accept(i, short),
            Err(snapshot::SnapshotError::ChunkHash(i))
        );
        // The same chunk from an honest peer.
        a.accept(i, &chunks[i]).unwrap();
    }
    assert_eq!(
        a.accept(chunks.len(), &chunks[0]),
        Err(snapshot::SnapshotError::NoSuchChunk(chunks.len()))
    );
    a.finish().unwrap();
}

#[test]
fn a_snapshot_of_another_state_or_missing_a_chunk_is_refused() {
    let (mut w, log) = snapshot_world(40);
    let (manifest, chunks) = cut(&w.ledger, &log, 1024);
    let old_root = w.ledger.state_root();
    // One more block: the certificate now signs another state.
    let (alice, _) = keys();
    let m = w.mint(&alice, 1);
    assert_eq!(w.outcomes(&[m]), vec![Ok(())]);
    assert!(matches!(
        snapshot::SnapshotAssembler::new(manifest.clone(), &w.ledger.state_root()),
        Err(snapshot::SnapshotError::OtherRoot { .. })
    ));
    // Truncated: the last chunk never arrives.
    let mut a = snapshot::SnapshotAssembler::new(manifest, &old_root).unwrap();
    for (i, c) in chunks.iter().enumerate().take(chunks.len() - 1) {
        a.accept(i, c).unwrap();
    }
    assert_eq!(a.missing(), vec![chunks.len() - 1]);
    assert_eq!(
        a.finish().map(|_| ()),
        Err(snapshot::SnapshotError::Missing(chunks.len() - 1))
    );
}

/// Every chunk accepted (each matches its manifest entry), then the whole checked.
fn assemble(
    m: snapshot::SnapshotManifest,
    chunks: &[Vec<u8>],
    root: &[u8; 32],
) -> Result<snapshot::VerifiedSnapshot, snapshot::SnapshotError> {
    let mut a = snapshot::SnapshotAssembler::new(m, root)?;
    for (i, c) in chunks.iter().enumerate() {
        a.accept(i, c)?;
    }
    a.finish()
}

#[test]
fn a_lying_manifest_is_caught_against_the_certified_root() {
    let (w, log) = snapshot_world(40);
    let root = w.ledger.state_root();
    // A peer drops one nullifier (a spent note would look unspent) and lists its chunks
    // honestly by hash: every chunk matches the manifest, the state does not.
    let mut fewer = log.clone();
    fewer.remove(3);
    let (m, chunks) = cut(&w.ledger, &fewer, 1024);
    assert!(matches!(
        assemble(m, &chunks, &root),
        Err(snapshot::SnapshotError::Mismatch(_))
    ));
    // The same with nullifiers reordered, and with an account's state altered.
    let mut swapped = log.clone();
    swapped.swap(0, 1);
    let (m, chunks) = cut(&w.ledger, &swapped, 1024);
    assert!(matches!(
        assemble(m, &chunks, &root),
        Err(snapshot::SnapshotError::Mismatch(_))
    ));
    let mut forged = w.ledger.clone();
    let (alice, _) = keys();
    let id = AccountId::new(&alice.public(), USD);
    let other = forged
        .accounts
        .get(&AccountId::new(&keys().1.public(), USD))
        .cloned();
    forged.accounts.insert(id, other.unwrap());
    let (m, chunks) = cut(&forged, &log, 1024);
    assert!(matches!(
        assemble(m, &chunks, &root),
        Err(snapshot::SnapshotError::Mismatch(_))
    ));
    // A head whose recent roots differ is refused on arrival.
    let mut head = w.ledger.head();
    head.recent_roots.remove(0);
    let mut chunks = Vec::new();
    let writer =
        snapshot::SnapshotWriter::new(&head, &w.ledger.tree_root(), 1024, |_, b: &[u8]| {
            chunks.push(b.to_vec());
            Ok::<(), ()>(())
        })
        .unwrap();
    let mut m = writer.finish().unwrap();
    m.opening = w.ledger.head().opening_with(&w.ledger.tree_root());
    let mut a = snapshot::SnapshotAssembler::new(m, &root).unwrap();
    assert!(matches!(
        a.accept(0, &chunks[0]),
        Err(snapshot::SnapshotError::Mismatch(_))
    ));
}
