//! The wallet's guarantees that need a chain: a submitted transaction that never commits loses
//! nothing, and the saved state comes back exactly (notes, witnesses, history, pending).

use shoji_ledger::LedgerConfig;
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::WalletSeed;
use shoji_primitives::note::{Amount, AssetId};
use shoji_prover::{Prover, TransferBuilder};
use shoji_tests::{Chain, LocalChain};
use shoji_verifier::Verifier;
use shoji_wallet::{Pending, Wallet, WalletError};
use std::collections::{BTreeMap, BTreeSet};

const USD: AssetId = AssetId(840);

#[test]
fn a_transaction_that_never_commits_loses_nothing_and_state_round_trips() {
    let mut rng = rand_core::OsRng;
    let prover = Prover::dev().expect("development parameters");
    let auditor = AuditSecretKey::random(&mut rng).public_key();
    let issuer = ed25519_dalek::SigningKey::generate(&mut rng);
    let mut chain = LocalChain::new(
        LedgerConfig {
            anchor_window_blocks: 100,
            auditor,
            issuers: BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([USD]))]),
            governance: Default::default(),
            network_id: [0; 32],
            validators: Default::default(),
            checkpoint_interval: 8,
            window_size: 16,
        },
        Verifier::new(&prover.proving_key().vk),
    );
    let mut alice = Wallet::new(&WalletSeed::random(&mut rng));
    let bob = Wallet::new(&WalletSeed::random(&mut rng));
    let mut b = TransferBuilder::mint(
        alice.keys(),
        USD,
        Amount(1000),
        chain.anchor().expect("anchor"),
        auditor,
        issuer.verifying_key().to_bytes(),
    );
    b.pay(alice.address(), Amount(1000), Memo::empty())
        .expect("pay");
    let mint = b
        .build(&mut rng)
        .expect("build")
        .prove(&prover, &mut rng)
        .expect("prove")
        .sign_mint(&issuer)
        .expect("sign");
    let blocks = chain.commit(vec![mint]).expect("commit");
    // A validator serving a block that does not match its root, or with an altered commitment,
    // is caught.
    let mut wrong_root = blocks[0].clone();
    wrong_root.tree_root = shoji_primitives::Fr::from(7u64);
    assert!(matches!(
        Wallet::new(&WalletSeed([1; 32])).scan(&wrong_root),
        Err(WalletError::RootMismatch(1))
    ));
    let mut altered = blocks[0].clone();
    altered.txs[0].commitments[1] += shoji_primitives::Fr::from(1u64);
    assert!(matches!(
        Wallet::new(&WalletSeed([1; 32])).scan_blocks(&[altered]),
        Err(WalletError::RootMismatch(1))
    ));
    alice.scan_blocks(&blocks).expect("scan");

    // Alice builds and "submits" a payment that never reaches a block.
    let expiry = alice.height() + 2;
    let tx = alice
        .pay(
            bob.address(),
            USD,
            Amount(400),
            Memo::empty(),
            auditor,
            expiry,
            &mut rng,
        )
        .expect("pay")
        .prove(&prover, &mut rng)
        .expect("prove")
        .into_transaction()
        .expect("transaction");
    alice.add_pending(Pending {
        txid: tx.id(),
        nullifiers: tx.bundle().nullifiers,
        expiry_height: expiry,
        asset: USD,
        amount: Amount(400),
        to: Some(bob.address()),
    });
    // The note is still hers, but withheld from a second payment.
    assert_eq!(alice.balance(USD), 1000);
    assert_eq!(alice.pending_balance(USD), 1000);
    assert!(matches!(
        alice.pay(
            bob.address(),
            USD,
            Amount(1),
            Memo::empty(),
            auditor,
            u64::MAX,
            &mut rng
        ),
        Err(WalletError::InsufficientFunds { .. })
    ));

    // The saved state restores exactly, pending transaction included, and corruption is caught.
    let saved = alice.to_bytes();
    let restored = Wallet::from_bytes(&saved).expect("restore");
    assert_eq!(restored.to_bytes(), saved);
    assert_eq!(restored.pending(), alice.pending());
    assert!(Wallet::from_bytes(&saved[..saved.len() - 1]).is_err());
    let mut other = saved.clone();
    other[1] ^= 1; // a different seed: the notes are not its own
    assert!(Wallet::from_bytes(&other).is_err());
    let mut alice = restored;

    // Blocks go by without it; once past its expiry the note is spendable again.
    for _ in 0..2 {
        for block in chain.commit(vec![]).expect("empty block") {
            alice.scan(&block).expect("scan");
        }
    }
    assert!(alice.pending().is_empty());
    assert_eq!(alice.pending_balance(USD), 0);
    let retry = alice
        .pay(
            bob.address(),
            USD,
            Amount(400),
            Memo::empty(),
            auditor,
            u64::MAX,
            &mut rng,
        )
        .expect("the note is spendable again")
        .prove(&prover, &mut rng)
        .expect("prove")
        .into_transaction()
        .expect("transaction");
    for block in chain.commit(vec![retry]).expect("commit") {
        alice.scan(&block).expect("scan");
    }
    assert_eq!(alice.balance(USD), 600);
}
