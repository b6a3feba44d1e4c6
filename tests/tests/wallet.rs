//! The wallet's guarantees that need a chain: a submitted transaction that never commits loses
//! nothing, and the saved state comes back exactly (notes, witnesses, history, pending).

use shoji_ledger::LedgerConfig;
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::WalletSeed;
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{Proof, Transaction};
use shoji_prover::{Prover, TransferBuilder};
use shoji_tests::{Chain, LocalChain};
use shoji_verifier::Verifier;
use shoji_wallet::{Pending, Wallet, WalletError};
use std::collections::{BTreeMap, BTreeSet};

const USD: AssetId = AssetId(840);

/// A chain of this process for network `network` with a random auditor and one issuer of USD,
/// and the prover.
struct World {
    prover: Prover,
    auditor: shoji_primitives::audit::AuditPublicKey,
    issuer: ed25519_dalek::SigningKey,
    chain: LocalChain,
}

impl World {
    fn new(network: [u8; 32]) -> World {
        let mut rng = rand_core::OsRng;
        let prover = Prover::dev().expect("development parameters");
        let auditor = AuditSecretKey::random(&mut rng).public_key();
        let issuer = ed25519_dalek::SigningKey::generate(&mut rng);
        let chain = LocalChain::new(
            LedgerConfig {
                anchor_window_blocks: 100,
                auditor,
                issuers: BTreeMap::from([(
                    issuer.verifying_key().to_bytes(),
                    BTreeSet::from([USD]),
                )]),
                governance: Default::default(),
                network_id: network,
                validators: Default::default(),
                checkpoint_interval: 8,
                window_size: 16,
                account_auditor: None,
            },
            Verifier::new(&prover.proving_key().vk),
        );
        World {
            prover,
            auditor,
            issuer,
            chain,
        }
    }

    /// A proven payment of 400 USD from `from` to `to`, expiring after `expiry`, recorded as
    /// pending in `from` (as a wallet does before it submits).
    fn pay_400_pending(&self, from: &mut Wallet, to: &Wallet, expiry: u64) -> Transaction {
        let mut rng = rand_core::OsRng;
        let tx = from
            .pay(
                to.address(),
                USD,
                Amount(400),
                Memo::empty(),
                self.auditor,
                expiry,
                &mut rng,
            )
            .expect("pay")
            .prove(&self.prover, &mut rng)
            .expect("prove")
            .into_transaction()
            .expect("transaction");
        from.add_pending(Pending {
            txid: tx.id(),
            nullifiers: tx.bundle().nullifiers,
            expiry_height: expiry,
            asset: USD,
            amount: Amount(400),
            to: Some(to.address()),
        });
        tx
    }

    /// A mint of `amount` USD to `to`, naming `network`, under the chain's current root.
    fn mint(&mut self, to: &Wallet, amount: u64, network: [u8; 32]) -> Transaction {
        let mut rng = rand_core::OsRng;
        let mut b = TransferBuilder::mint(
            to.keys(),
            USD,
            Amount(amount),
            self.chain.anchor().expect("anchor"),
            self.auditor,
            self.issuer.verifying_key().to_bytes(),
        );
        b.pay(to.address(), Amount(amount), Memo::empty())
            .expect("pay");
        b.network(network);
        b.build(&mut rng)
            .expect("build")
            .prove(&self.prover, &mut rng)
            .expect("prove")
            .sign_mint(&self.issuer)
            .expect("sign")
    }
}

#[test]
fn a_transaction_that_never_commits_loses_nothing_and_state_round_trips() {
    let mut rng = rand_core::OsRng;
    let mut world = World::new([0; 32]);
    let auditor = world.auditor;
    let mut alice = Wallet::new(&WalletSeed::random(&mut rng));
    let bob = Wallet::new(&WalletSeed::random(&mut rng));
    let mint = world.mint(&alice, 1000, [0; 32]);
    let blocks = world.chain.commit(vec![mint]).expect("commit");
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
    world.pay_400_pending(&mut alice, &bob, expiry);
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
        for block in world.chain.commit(vec![]).expect("empty block") {
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
        .prove(&world.prover, &mut rng)
        .expect("prove")
        .into_transaction()
        .expect("transaction");
    for block in world.chain.commit(vec![retry]).expect("commit") {
        alice.scan(&block).expect("scan");
    }
    assert_eq!(alice.balance(USD), 600);
}

/// A faulty validator (or anyone) can rerandomize a transfer's proof into other valid bytes and
/// have that twin ordered before the sender's copy. Ids leave the proof out, so the twin is the
/// sender's transaction: its own copy is then a double spend, but the wallet finds its payment
/// committed. With the proof in the id, the wallet saw a failed payment ("nothing was spent")
/// that had happened.
#[test]
fn a_rerandomized_twin_ordered_first_is_the_senders_payment() {
    use ark_groth16::Groth16;
    let mut rng = rand_core::OsRng;
    let mut world = World::new([0; 32]);
    let mut alice = Wallet::new(&WalletSeed::random(&mut rng));
    let mut bob = Wallet::new(&WalletSeed::random(&mut rng));
    let mint = world.mint(&alice, 1000, [0; 32]);
    let blocks = world.chain.commit(vec![mint]).expect("commit");
    alice.scan_blocks(&blocks).expect("scan");
    bob.scan_blocks(&blocks).expect("scan");

    let tx = world.pay_400_pending(&mut alice, &bob, u64::MAX);
    let Transaction::Transfer(mut bundle) = tx else {
        panic!("a transfer")
    };
    let proof = bundle.proof.to_ark().expect("proof");
    let vk = &world.prover.proving_key().vk;
    let twin_proof = Groth16::<ark_bls12_381::Bls12_381>::rerandomize_proof(vk, &proof, &mut rng);
    bundle.proof = Proof::from_ark(&twin_proof);
    let twin = Transaction::Transfer(bundle);
    assert_ne!(twin.to_bytes(), tx.to_bytes(), "other bytes");
    assert_ne!(twin.auth_id(), tx.auth_id());
    assert_eq!(twin.id(), tx.id(), "the same transaction");

    // The twin is ordered first; the sender's copy is then refused as a double spend.
    let blocks = world.chain.commit(vec![twin]).expect("commit");
    let refused = world
        .chain
        .commit(vec![tx])
        .expect_err("the sender's copy is refused");
    assert!(refused.to_string().contains("DoubleSpend"), "{refused}");
    alice.scan_blocks(&blocks).expect("scan");
    bob.scan_blocks(&blocks).expect("scan");
    assert_eq!(alice.committed_height(&tx.id()), Some(blocks[0].height));
    assert_eq!(alice.balance(USD), 600);
    assert_eq!(bob.balance(USD), 400);
}

/// A transaction names its network and the proof binds it: one built for (or replayed from)
/// another network that shares issuers and keys is refused, and editing the name breaks the
/// proof (and a mint's issuer signature, which signs every field but itself).
#[test]
fn a_transaction_for_another_network_is_refused() {
    let ours = [1; 32];
    let mut world = World::new(ours);
    let alice = Wallet::new(&WalletSeed::random(&mut rand_core::OsRng));
    let foreign = world.mint(&alice, 5, [2; 32]);
    let refused = world.chain.commit(vec![foreign]).expect_err("refused");
    assert!(refused.to_string().contains("WrongNetwork"), "{refused}");

    // Renamed to our network, the same transaction's proof and signature no longer hold.
    let Transaction::Mint { mut bundle, auth } = foreign else {
        panic!("a mint")
    };
    bundle.network = ours;
    let mut renamed = Transaction::Mint { bundle, auth };
    let verifier = Verifier::new(&world.prover.proving_key().vk);
    assert!(matches!(
        verifier.verify_transaction(&renamed),
        Err(shoji_verifier::TxError::BadIssuerSignature)
    ));
    // Even re-signed by the issuer, the proof still names the other network.
    let signature = ed25519_dalek::Signer::sign(&world.issuer, &renamed.sighash()).to_bytes();
    if let Transaction::Mint { auth, .. } = &mut renamed {
        auth.signature = signature;
    }
    assert!(matches!(
        verifier.verify_transaction(&renamed),
        Err(shoji_verifier::TxError::Proof(_))
    ));

    let mint = world.mint(&alice, 5, ours);
    world
        .chain
        .commit(vec![mint])
        .expect("a mint for this network applies");
}
