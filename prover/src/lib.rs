//! Building and proving transactions.
//!
//! [`TransferBuilder`] collects the notes to spend (with their paths), the payments to make and,
//! for mints, redeems, shields and unshields, the public amount; [`TransferBuilder::build`] pads to two inputs and two
//! outputs with zero-value dummies, returns change to the sender, encrypts every output and
//! computes the transaction binding. The result, an [`UnprovenTransaction`], holds secrets and
//! cannot be serialized; only [`UnprovenTransaction::prove`] turns it into a
//! [`ProvenTransaction`], and only that yields a [`Transaction`] (directly, after the issuer's
//! signature for a mint, or after the account owner's withdrawal proof for a shield).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod fixtures;
mod groth16;

pub use groth16::{ProveTimings, Prover};

use ark_ff::UniformRand;
use shoji_circuits::{InputWitness, OutputWitness, TransferCircuit, TransferPrivate};
use shoji_confidential::{withdraw, PublicKey, SecretKey};
use shoji_primitives::audit::{self, AuditPublicKey};
use shoji_primitives::encryption::{encrypt_note, Memo};
use shoji_primitives::keys::{Address, SpendingKeys};
use shoji_primitives::note::{Amount, AssetId, Note};
use shoji_primitives::tree::MerklePath;
use shoji_primitives::tx::{
    tx_binding, AccountDebit, BindingFields, Boundary, IssuerAuth, Proof, ShieldedBundle,
    Transaction, TransferPublic, TxKind, WithdrawProofBytes,
};
use shoji_primitives::Fr;

/// A note the sender owns, with its path to the anchor the transaction will name.
#[derive(Clone, Debug)]
pub struct SpendableNote {
    /// The note.
    pub note: Note,
    /// Its authentication path (must lead to the builder's anchor).
    pub path: MerklePath,
}

/// Why a transaction could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// More than two notes to spend.
    #[error("a transaction spends at most two notes")]
    TooManyInputs,
    /// More than two outputs (counting change).
    #[error("a transaction has at most two outputs, counting change")]
    TooManyOutputs,
    /// A note of another asset.
    #[error("note of asset {got} cannot be spent in a transaction of asset {expected}")]
    AssetMismatch {
        /// The transaction's asset.
        expected: u64,
        /// The note's asset.
        got: u64,
    },
    /// A note owned by someone else.
    #[error("note is not owned by this wallet")]
    NotOwned,
    /// A path that does not lead from the note to the anchor.
    #[error("note's path does not lead to the transaction's anchor")]
    WrongPath,
    /// Outputs exceed inputs.
    #[error("insufficient funds: inputs {available}, outputs {needed}")]
    InsufficientFunds {
        /// Inputs plus public value in.
        available: u128,
        /// Outputs plus public value out.
        needed: u128,
    },
    /// A zero amount where value is required.
    #[error("amount must be greater than zero")]
    ZeroAmount,
    /// A mint must be signed by its issuer.
    #[error("a mint must be finished with the issuer's signature")]
    NeedsIssuerSignature,
    /// Only mints are signed.
    #[error("only a mint carries an issuer signature")]
    NotAMint,
    /// A shield must be finished with the account owner's withdrawal proof.
    #[error("a shield must be finished with the account's withdrawal proof")]
    NeedsAccountProof,
    /// Only shields carry a withdrawal proof.
    #[error("only a shield carries a withdrawal proof")]
    NotAShield,
    /// The account's withdrawal proof could not be made (an overdraft, another owner's key).
    #[error("the account cannot pay this: {0}")]
    Account(shoji_confidential::Error),
}

/// Why proving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The constraint system rejected the witness (a bug in the builder, or bad inputs).
    #[error("the statement does not hold; no valid proof exists for it")]
    Unsatisfied,
    /// Synthesis failed.
    #[error("constraint synthesis failed: {0}")]
    Synthesis(String),
}

/// Collects a transaction's inputs and outputs.
pub struct TransferBuilder<'a> {
    keys: &'a SpendingKeys,
    kind: TxKind,
    asset: AssetId,
    anchor: Fr,
    auditor: AuditPublicKey,
    value_in: Amount,
    value_out: Amount,
    party: Option<Boundary>,
    expiry_height: u64,
    network: [u8; 32],
    inputs: Vec<SpendableNote>,
    outputs: Vec<(Address, Amount, Memo)>,
}

impl<'a> TransferBuilder<'a> {
    fn new(
        keys: &'a SpendingKeys,
        kind: TxKind,
        asset: AssetId,
        anchor: Fr,
        auditor: AuditPublicKey,
    ) -> Self {
        Self {
            keys,
            kind,
            asset,
            anchor,
            auditor,
            value_in: Amount(0),
            value_out: Amount(0),
            party: None,
            expiry_height: u64::MAX,
            network: [0; 32],
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// A shielded transfer of `asset` spending notes under `anchor`.
    pub fn transfer(
        keys: &'a SpendingKeys,
        asset: AssetId,
        anchor: Fr,
        auditor: AuditPublicKey,
    ) -> Self {
        Self::new(keys, TxKind::Transfer, asset, anchor, auditor)
    }

    /// A mint of `amount` of `asset` by the issuer `issuer` (its Ed25519 public key), paid out
    /// with [`TransferBuilder::pay`]. `keys` is the minting wallet (it owns the dummy inputs).
    pub fn mint(
        keys: &'a SpendingKeys,
        asset: AssetId,
        amount: Amount,
        anchor: Fr,
        auditor: AuditPublicKey,
        issuer: [u8; 32],
    ) -> Self {
        let party = Some(Boundary::Issuer(issuer));
        Self::at_boundary(keys, TxKind::Mint, asset, anchor, auditor, party, amount)
    }

    /// A redemption of `amount` of `asset` to `issuer`, spending notes under `anchor`.
    pub fn redeem(
        keys: &'a SpendingKeys,
        asset: AssetId,
        amount: Amount,
        anchor: Fr,
        auditor: AuditPublicKey,
        issuer: [u8; 32],
    ) -> Self {
        let party = Some(Boundary::Issuer(issuer));
        Self::at_boundary(keys, TxKind::Redeem, asset, anchor, auditor, party, amount)
    }

    /// A shield of `amount` of `asset` out of the confidential account `debit` names, paid out
    /// with [`TransferBuilder::pay`] (the change, if any, to `keys`). `keys` owns the dummy
    /// inputs; the proven transaction is finished with
    /// [`ProvenTransaction::authorize_shield`].
    pub fn shield(
        keys: &'a SpendingKeys,
        asset: AssetId,
        amount: Amount,
        anchor: Fr,
        auditor: AuditPublicKey,
        debit: AccountDebit,
    ) -> Self {
        let party = Some(Boundary::Debit(debit));
        Self::at_boundary(keys, TxKind::Shield, asset, anchor, auditor, party, amount)
    }

    /// An unshield of `amount` of `asset` into the confidential account of `account`,
    /// spending notes under `anchor`.
    pub fn unshield(
        keys: &'a SpendingKeys,
        asset: AssetId,
        amount: Amount,
        anchor: Fr,
        auditor: AuditPublicKey,
        account: PublicKey,
    ) -> Self {
        let party = Some(Boundary::Account(account));
        Self::at_boundary(
            keys,
            TxKind::Unshield,
            asset,
            anchor,
            auditor,
            party,
            amount,
        )
    }

    /// Public `amount` in (mint, shield) or out (redeem, unshield), with the party at the
    /// boundary.
    fn at_boundary(
        keys: &'a SpendingKeys,
        kind: TxKind,
        asset: AssetId,
        anchor: Fr,
        auditor: AuditPublicKey,
        party: Option<Boundary>,
        amount: Amount,
    ) -> Self {
        let mut b = Self::new(keys, kind, asset, anchor, auditor);
        if matches!(kind, TxKind::Mint | TxKind::Shield) {
            b.value_in = amount;
        } else {
            b.value_out = amount;
        }
        b.party = party;
        b
    }

    /// Spends `note` (owned by this wallet, of the transaction's asset, with a path to the anchor).
    pub fn spend(&mut self, note: SpendableNote) -> Result<&mut Self, BuildError> {
        if self.inputs.len() == 2 {
            return Err(BuildError::TooManyInputs);
        }
        if note.note.asset != self.asset {
            return Err(BuildError::AssetMismatch {
                expected: self.asset.0,
                got: note.note.asset.0,
            });
        }
        if note.note.owner != self.keys.apk {
            return Err(BuildError::NotOwned);
        }
        if note.note.value.0 > 0 && note.path.root(note.note.commitment()) != self.anchor {
            return Err(BuildError::WrongPath);
        }
        self.inputs.push(note);
        Ok(self)
    }

    /// Pays `value` to `to` with `memo`.
    pub fn pay(&mut self, to: Address, value: Amount, memo: Memo) -> Result<&mut Self, BuildError> {
        if self.outputs.len() == 2 {
            return Err(BuildError::TooManyOutputs);
        }
        if value.0 == 0 {
            return Err(BuildError::ZeroAmount);
        }
        self.outputs.push((to, value, memo));
        Ok(self)
    }

    /// The last height at which the transaction may be included.
    pub fn expiry_height(&mut self, height: u64) -> &mut Self {
        self.expiry_height = height;
        self
    }

    /// The network the transaction is for (its genesis hash; all zeros until set). The proof
    /// binds it, and validators refuse a transaction for another network.
    pub fn network(&mut self, network: [u8; 32]) -> &mut Self {
        self.network = network;
        self
    }

    /// Pads, returns change, encrypts and binds. Consumes the builder.
    pub fn build(
        self,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<UnprovenTransaction, BuildError> {
        if self.kind != TxKind::Transfer && self.value_in.0 == 0 && self.value_out.0 == 0 {
            return Err(BuildError::ZeroAmount);
        }
        let available: u128 = self
            .inputs
            .iter()
            .map(|n| n.note.value.0 as u128)
            .sum::<u128>()
            + self.value_in.0 as u128;
        let needed: u128 =
            self.outputs.iter().map(|o| o.1 .0 as u128).sum::<u128>() + self.value_out.0 as u128;
        if available < needed {
            return Err(BuildError::InsufficientFunds { available, needed });
        }
        let me = self.keys.address();
        let mut outputs = self.outputs;
        let change = available - needed;
        if change > 0 {
            if outputs.len() == 2 {
                return Err(BuildError::TooManyOutputs);
            }
            // Both sides are sums of at most three u64s, and the outputs fit: change fits in u64
            // unless the inputs alone overflow it, which the circuit would reject anyway.
            let change = u64::try_from(change).map_err(|_| BuildError::TooManyOutputs)?;
            outputs.push((me, Amount(change), Memo::empty()));
        }
        while outputs.len() < 2 {
            outputs.push((me, Amount(0), Memo::empty()));
        }
        let mut inputs: Vec<InputWitness> = self
            .inputs
            .iter()
            .map(|n| InputWitness {
                note: n.note,
                path: n.path.clone(),
            })
            .collect();
        while inputs.len() < 2 {
            inputs.push(InputWitness {
                note: Note::dummy(self.asset, self.keys.apk, rng),
                path: MerklePath::dummy(),
            });
        }
        let outs: [OutputWitness; 2] = std::array::from_fn(|j| OutputWitness {
            owner: outputs[j].0.apk,
            value: outputs[j].1,
            rcm: Fr::rand(rng),
        });
        let private = TransferPrivate {
            ask: self.keys.ask,
            nk: self.keys.nk,
            asset: self.asset,
            inputs: [inputs[0].clone(), inputs[1].clone()],
            outputs: outs,
            audit_e: audit::AuditEphemeral::random(rng),
        };
        let nullifiers = private.nullifiers();
        let notes = private.output_notes();
        let ciphertexts = [0, 1]
            .map(|j| encrypt_note(&notes[j], &outputs[j].2, &outputs[j].0, &self.keys.ovk, rng));
        let binding = tx_binding(&BindingFields {
            kind: self.kind,
            network: &self.network,
            expiry_height: self.expiry_height,
            outputs: &ciphertexts,
            boundary: self.party.as_ref(),
        });
        let public_asset = if self.kind == TxKind::Transfer {
            AssetId(0)
        } else {
            self.asset
        };
        let public = TransferPublic {
            anchor: self.anchor,
            nullifiers,
            commitments: [notes[0].commitment(), notes[1].commitment()],
            value_in: self.value_in,
            value_out: self.value_out,
            asset: public_asset,
            auditor: self.auditor,
            audit: audit::encrypt(&self.auditor, &private.audit_plaintext(), &private.audit_e),
            binding,
        };
        Ok(UnprovenTransaction {
            kind: self.kind,
            party: self.party,
            expiry_height: self.expiry_height,
            network: self.network,
            ciphertexts,
            public,
            private,
            recipients: [outputs[0].0, outputs[1].0],
        })
    }
}

/// A fully built transaction without its proof. Holds the sender's keys: it cannot be serialized.
pub struct UnprovenTransaction {
    kind: TxKind,
    party: Option<Boundary>,
    expiry_height: u64,
    network: [u8; 32],
    ciphertexts: [shoji_primitives::encryption::NoteCiphertext; 2],
    public: TransferPublic,
    private: TransferPrivate,
    recipients: [Address; 2],
}

impl UnprovenTransaction {
    /// The output notes this transaction creates (for the sender's records).
    pub fn output_notes(&self) -> [Note; 2] {
        self.private.output_notes()
    }

    /// The public inputs the proof will be checked against.
    pub fn public(&self) -> &TransferPublic {
        &self.public
    }

    /// The circuit for this statement (for tests and benchmarks of the constraint system).
    pub fn circuit(&self) -> TransferCircuit {
        TransferCircuit::new(self.public, self.private.clone())
    }

    /// Proves the statement and checks the proof before returning it.
    pub fn prove(
        self,
        prover: &Prover,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<ProvenTransaction, ProveError> {
        let (proof, _) = prover.prove(self.circuit(), rng)?;
        Ok(self.with_proof(Proof::from_ark(&proof)))
    }

    fn with_proof(self, proof: Proof) -> ProvenTransaction {
        let p = &self.public;
        ProvenTransaction {
            kind: self.kind,
            party: self.party,
            output_notes: self.private.output_notes(),
            recipients: self.recipients,
            bundle: ShieldedBundle {
                anchor: p.anchor,
                nullifiers: p.nullifiers,
                commitments: p.commitments,
                value_in: p.value_in,
                value_out: p.value_out,
                asset: p.asset,
                auditor: p.auditor,
                audit: p.audit,
                outputs: self.ciphertexts,
                expiry_height: self.expiry_height,
                network: self.network,
                proof,
            },
        }
    }
}

/// A proven transaction, ready to encode (after the issuer's signature, for a mint).
#[derive(Clone, Debug)]
pub struct ProvenTransaction {
    kind: TxKind,
    party: Option<Boundary>,
    bundle: ShieldedBundle,
    /// The notes this transaction created, in output order.
    pub output_notes: [Note; 2],
    /// Who each output went to.
    pub recipients: [Address; 2],
}

impl ProvenTransaction {
    /// The transaction (transfers, redeems and unshields).
    pub fn into_transaction(self) -> Result<Transaction, BuildError> {
        match (self.kind, self.party) {
            (TxKind::Transfer, _) => Ok(Transaction::Transfer(self.bundle)),
            (TxKind::Redeem, Some(Boundary::Issuer(issuer))) => Ok(Transaction::Redeem {
                bundle: self.bundle,
                issuer,
            }),
            (TxKind::Unshield, Some(Boundary::Account(account))) => Ok(Transaction::Unshield {
                bundle: self.bundle,
                account,
            }),
            (TxKind::Shield, _) => Err(BuildError::NeedsAccountProof),
            _ => Err(BuildError::NeedsIssuerSignature),
        }
    }

    /// Finishes a shield with the account owner's withdrawal proof: `key` is the account's
    /// secret key and `balance` the value its debited `spendable` holds.
    pub fn authorize_shield(
        self,
        key: &SecretKey,
        balance: u64,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Transaction, BuildError> {
        let (TxKind::Shield, Some(Boundary::Debit(debit))) = (self.kind, self.party) else {
            return Err(BuildError::NotAShield);
        };
        let mut tx = Transaction::Shield {
            bundle: self.bundle,
            debit,
            proof: WithdrawProofBytes([0; withdraw::PROOF_BYTES]),
        };
        let context = tx.withdraw_context().ok_or(BuildError::NotAShield)?;
        let statement = withdraw::Statement {
            context: &context,
            owner: &debit.account,
            spendable: &debit.spendable,
            amount: self.bundle.value_in.0,
        };
        let made = withdraw::prove(key, &statement, balance, rng).map_err(BuildError::Account)?;
        let bytes: [u8; withdraw::PROOF_BYTES] = made
            .to_bytes()
            .try_into()
            .map_err(|_| BuildError::Account(shoji_confidential::Error::Malformed("proof")))?;
        if let Transaction::Shield { proof, .. } = &mut tx {
            *proof = WithdrawProofBytes(bytes);
        }
        Ok(tx)
    }

    /// Signs a mint with the issuer's key (whose public half the builder was given).
    pub fn sign_mint(
        self,
        issuer_key: &ed25519_dalek::SigningKey,
    ) -> Result<Transaction, BuildError> {
        let (TxKind::Mint, Some(Boundary::Issuer(issuer))) = (self.kind, self.party) else {
            return Err(BuildError::NotAMint);
        };
        let mut tx = Transaction::Mint {
            bundle: self.bundle,
            auth: IssuerAuth {
                issuer,
                signature: [0; 64],
            },
        };
        let sig = ed25519_dalek::Signer::sign(issuer_key, &tx.sighash()).to_bytes();
        if let Transaction::Mint { auth, .. } = &mut tx {
            auth.signature = sig;
        }
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{Scenario, ASSET};
    use ark_std::rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(11)
    }

    #[test]
    fn builder_refuses_bad_requests() {
        let mut rng = rng();
        let s = Scenario::new(&mut rng);
        let auditor = s.auditor.public_key();
        let root = s.frontier.root();
        let to = s.receiver.address();

        let mut b = TransferBuilder::transfer(&s.sender, ASSET, root, auditor);
        b.spend(s.spendable(0)).unwrap();
        b.pay(to, Amount(601), Memo::empty()).unwrap();
        assert_eq!(
            b.build(&mut rng).err(),
            Some(BuildError::InsufficientFunds {
                available: 600,
                needed: 601
            })
        );

        let mut b = TransferBuilder::transfer(&s.sender, ASSET, root, auditor);
        b.spend(s.spendable(0)).unwrap();
        b.pay(to, Amount(100), Memo::empty()).unwrap();
        b.pay(to, Amount(100), Memo::empty()).unwrap();
        assert!(matches!(
            b.pay(to, Amount(1), Memo::empty()),
            Err(BuildError::TooManyOutputs)
        ));
        // Two payments and change would need three outputs.
        assert_eq!(b.build(&mut rng).err(), Some(BuildError::TooManyOutputs));

        let mut b = TransferBuilder::transfer(&s.sender, AssetId(2), root, auditor);
        assert_eq!(
            b.spend(s.spendable(0)).err(),
            Some(BuildError::AssetMismatch {
                expected: 2,
                got: 1
            })
        );
        assert!(matches!(
            b.pay(to, Amount(0), Memo::empty()),
            Err(BuildError::ZeroAmount)
        ));

        let mut b = TransferBuilder::transfer(&s.receiver, ASSET, root, auditor);
        assert_eq!(b.spend(s.spendable(0)).err(), Some(BuildError::NotOwned));

        let mut b = TransferBuilder::transfer(&s.sender, ASSET, root + Fr::from(1u64), auditor);
        assert_eq!(b.spend(s.spendable(0)).err(), Some(BuildError::WrongPath));

        let mut b = TransferBuilder::transfer(&s.sender, ASSET, root, auditor);
        b.spend(s.spendable(0)).unwrap();
        b.spend(s.spendable(1)).unwrap();
        assert!(matches!(
            b.spend(s.spendable(1)),
            Err(BuildError::TooManyInputs)
        ));
    }

    /// An unsatisfiable statement yields an error, not an invalid proof.
    #[test]
    fn unsatisfied_statement_is_an_error() {
        let mut rng = rng();
        let s = Scenario::new(&mut rng);
        let unproven = s.transfer(250, &mut rng);
        let mut circuit = unproven.circuit();
        if let Some(p) = circuit.public.as_mut() {
            p.nullifiers[0] += Fr::from(1u64);
        }
        let prover = Prover::dev().unwrap();
        assert!(matches!(
            prover.prove(circuit, &mut rng),
            Err(ProveError::Unsatisfied)
        ));
    }

    /// The built transaction pays the requested amounts and returns change.
    #[test]
    fn change_and_padding() {
        let mut rng = rng();
        let s = Scenario::new(&mut rng);
        let u = s.transfer(250, &mut rng);
        let notes = u.output_notes();
        assert_eq!(notes[0].value, Amount(250));
        assert_eq!(notes[0].owner, s.receiver.apk);
        assert_eq!(notes[1].value, Amount(750));
        assert_eq!(notes[1].owner, s.sender.apk);
        let m = s.mint(1000, &mut rng);
        assert_eq!(m.output_notes()[1].value, Amount(0));
        assert_eq!(m.public().value_in, Amount(1000));
        assert_eq!(m.public().asset, ASSET);
        assert_eq!(u.public().asset, AssetId(0));
    }
}
