//! Reproducible scenarios for tests and benchmarks: a tree holding a sender's notes among others,
//! an auditor, an issuer, and builders for the transactions the tests prove.

use crate::{SpendableNote, TransferBuilder, UnprovenTransaction};
use ark_ff::UniformRand;
use rand_core::{CryptoRng, RngCore};
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::{Amount, AssetId, Note};
use shoji_primitives::tree::{Frontier, IncrementalWitness};
use shoji_primitives::Fr;

/// The asset every scenario uses.
pub const ASSET: AssetId = AssetId(1);

/// A sender holding notes of 600 and 400 (in a tree with other commitments), a receiver, an
/// auditor and an issuer.
pub struct Scenario {
    /// The paying wallet.
    pub sender: SpendingKeys,
    /// The paid wallet.
    pub receiver: SpendingKeys,
    /// The designated auditor.
    pub auditor: AuditSecretKey,
    /// The asset's issuer.
    pub issuer: ed25519_dalek::SigningKey,
    /// The commitment tree.
    pub frontier: Frontier,
    /// The sender's notes with their witnesses.
    pub notes: Vec<(Note, IncrementalWitness)>,
}

impl Scenario {
    /// A scenario drawn from `rng`.
    pub fn new(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let sender = SpendingKeys::from_seed(&WalletSeed::random(rng));
        let receiver = SpendingKeys::from_seed(&WalletSeed::random(rng));
        let mut frontier = Frontier::new();
        let mut notes: Vec<(Note, IncrementalWitness)> = Vec::new();
        for i in 0..7u64 {
            frontier.append(Fr::from(i + 1)).expect("tree has room");
        }
        for value in [600u64, 400] {
            let note = Note {
                asset: ASSET,
                value: Amount(value),
                owner: sender.apk,
                rho: Fr::rand(rng),
                rcm: Fr::rand(rng),
            };
            let (w, completed) = IncrementalWitness::append(&mut frontier, note.commitment())
                .expect("tree has room");
            for (_, other) in notes.iter_mut() {
                other.observe(&completed);
            }
            notes.push((note, w));
        }
        for i in 0..3u64 {
            let completed = frontier.append(Fr::from(100 + i)).expect("tree has room");
            for (_, w) in notes.iter_mut() {
                w.observe(&completed);
            }
        }
        Self {
            sender,
            receiver,
            auditor: AuditSecretKey::random(rng),
            issuer: ed25519_dalek::SigningKey::generate(rng),
            frontier,
            notes,
        }
    }

    /// The sender's `i`-th note, ready to spend under the current root.
    pub fn spendable(&self, i: usize) -> SpendableNote {
        let (note, w) = &self.notes[i];
        SpendableNote {
            note: *note,
            path: w.path(&self.frontier).expect("witness is current"),
        }
    }

    /// The sender pays the receiver `amount` out of both notes (change back to the sender).
    pub fn transfer(
        &self,
        amount: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> UnprovenTransaction {
        let mut b = TransferBuilder::transfer(
            &self.sender,
            ASSET,
            self.frontier.root(),
            self.auditor.public_key(),
        );
        b.spend(self.spendable(0)).expect("spendable");
        b.spend(self.spendable(1)).expect("spendable");
        b.pay(
            self.receiver.address(),
            Amount(amount),
            Memo::from_text("fixture").expect("short memo"),
        )
        .expect("one output");
        b.build(rng).expect("balanced")
    }

    /// The issuer mints `amount` to the receiver (the sender's wallet builds it).
    pub fn mint(&self, amount: u64, rng: &mut (impl RngCore + CryptoRng)) -> UnprovenTransaction {
        let mut b = TransferBuilder::mint(
            &self.sender,
            ASSET,
            Amount(amount),
            self.frontier.root(),
            self.auditor.public_key(),
            self.issuer.verifying_key().to_bytes(),
        );
        b.pay(self.receiver.address(), Amount(amount), Memo::empty())
            .expect("one output");
        b.build(rng).expect("balanced")
    }

    /// A shield of `amount` out of the confidential account `debit` names into a note for the
    /// receiver (the sender's wallet builds it; finish with
    /// [`crate::ProvenTransaction::authorize_shield`]).
    pub fn shield(
        &self,
        amount: u64,
        debit: shoji_primitives::tx::AccountDebit,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> UnprovenTransaction {
        let mut b = TransferBuilder::shield(
            &self.sender,
            ASSET,
            Amount(amount),
            self.frontier.root(),
            self.auditor.public_key(),
            debit,
        );
        b.pay(self.receiver.address(), Amount(amount), Memo::empty())
            .expect("one output");
        b.build(rng).expect("balanced")
    }

    /// The sender unshields `amount` out of both notes into the account of `account` (change
    /// back to the sender).
    pub fn unshield(
        &self,
        amount: u64,
        account: shoji_confidential::PublicKey,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> UnprovenTransaction {
        let mut b = TransferBuilder::unshield(
            &self.sender,
            ASSET,
            Amount(amount),
            self.frontier.root(),
            self.auditor.public_key(),
            account,
        );
        b.spend(self.spendable(0)).expect("spendable");
        b.spend(self.spendable(1)).expect("spendable");
        b.build(rng).expect("balanced")
    }
}
