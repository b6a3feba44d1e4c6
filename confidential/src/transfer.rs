//! A transfer between accounts: the amount encrypted once for sender, receiver and auditor, and
//! one proof that
//! - every limb of the amount is well formed for the three keys (a sigma protocol);
//! - the sender owns its account and its new balance, `spendable − amount`, equals the value
//!   committed in four balance limbs (a sigma protocol; the proof of `s` is the sender's
//!   authorization of everything in the transcript);
//! - the four amount limbs and the four balance limbs are each in `[0, 2¹⁶)` (one Bulletproof
//!   aggregated over eight values), so `0 ≤ amount < 2⁶⁴` and `0 ≤ new balance < 2⁶⁴`: no
//!   overdraft, no negative amount by wrapping around the group order.
//!
//! Transcript (`shoji-confidential`, `proof = "transfer v1"`): the caller's context, the three
//! keys, the spendable balance, the amount's limbs, the balance limbs, then the two sigma
//! protocols and the range proof in that order.

use crate::batch::BatchVerifier;
use crate::elgamal::{AmountCiphertext, Ciphertext, Role};
use crate::keys::{PublicKey, SecretKey};
use crate::sigma::{self, BalanceLimbs, Equality, Point, Validity, Words};
use crate::{limbs_of, range, transcript, Error, LIMBS};
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;

/// The proof type and version at the head of the transcript.
pub const KIND: &[u8] = b"transfer v1";

/// Encoded size of a [`TransferProof`].
pub const PROOF_BYTES: usize =
    LIMBS * 32 + Validity::BYTES + Equality::BYTES + range::proof_bytes(2 * LIMBS);

/// The public values of a transfer other than the amount ciphertext and the proof.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'a> {
    /// The transaction's other fields as the ledger encodes them (network, asset, sequence
    /// number, …): absorbed first, so the proof is valid for this transaction only.
    pub context: &'a [u8],
    /// The paying account's key.
    pub sender: &'a PublicKey,
    /// The paid account's key.
    pub receiver: &'a PublicKey,
    /// The designated auditor's key.
    pub auditor: &'a PublicKey,
    /// The sender's balance the proof spends from, as the ledger computes it.
    pub spendable: &'a Ciphertext,
}

impl Statement<'_> {
    fn keys(&self) -> [&PublicKey; 3] {
        [self.sender, self.receiver, self.auditor]
    }

    fn absorb(
        &self,
        kind: &'static [u8],
        amount: &AmountCiphertext,
        limbs: &[Point],
    ) -> Transcript {
        let mut t = transcript(kind);
        t.append_message(b"context", self.context);
        t.append_message(b"sender", self.sender.compressed().as_bytes());
        t.append_message(b"receiver", self.receiver.compressed().as_bytes());
        t.append_message(b"auditor", self.auditor.compressed().as_bytes());
        sigma::absorb_ciphertext(&mut t, b"spendable", self.spendable);
        amount.absorb(&mut t);
        for l in limbs {
            l.append(&mut t, b"balance-limb");
        }
        t
    }
}

/// The proof of a transfer. 1,248 bytes encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferProof {
    balance_limbs: [Point; LIMBS],
    validity: Validity,
    equality: Equality,
    range: Vec<u8>,
}

/// Encrypts `amount` and proves the transfer. `balance` is the value `spendable` holds; the
/// prover checks it and refuses an overdraft rather than make a proof that fails.
pub fn prove(
    key: &SecretKey,
    statement: &Statement<'_>,
    balance: u64,
    amount: u64,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(AmountCiphertext, TransferProof), Error> {
    prove_labelled(KIND, key, statement, balance, amount, rng)
}

pub(crate) fn prove_labelled(
    kind: &'static [u8],
    key: &SecretKey,
    statement: &Statement<'_>,
    balance: u64,
    amount: u64,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(AmountCiphertext, TransferProof), Error> {
    if key.public() != *statement.sender {
        return Err(Error::Unprovable("the key is not the sender's"));
    }
    if !statement.spendable.holds(key, balance) {
        return Err(Error::Unprovable(
            "the spendable balance does not hold that value",
        ));
    }
    let rest = balance
        .checked_sub(amount)
        .ok_or(Error::Unprovable("the amount exceeds the balance"))?;
    build(
        kind,
        key,
        statement,
        limbs_of(amount).map(Scalar::from),
        limbs_of(rest).map(Scalar::from),
        rng,
    )
}

/// Builds the proof from limbs without checking them: the honest path passes the limbs of two
/// `u64`s; a test passes forged ones and shows the verifier refuses them.
pub(crate) fn build(
    kind: &'static [u8],
    key: &SecretKey,
    statement: &Statement<'_>,
    amount_limbs: [Scalar; LIMBS],
    rest_limbs: [Scalar; LIMBS],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(AmountCiphertext, TransferProof), Error> {
    let (ct, opening) = AmountCiphertext::encrypt_limbs(statement.keys(), amount_limbs, rng);
    let limbs = BalanceLimbs::commit(rest_limbs, rng);
    let mut t = statement.absorb(kind, &ct, &limbs.points);
    let validity = Validity::prove(
        &mut t,
        statement.keys(),
        &opening.limbs,
        &opening.randomness,
        rng,
    );
    let new_balance = *statement.spendable - ct.for_role(Role::Sender);
    let equality = Equality::prove(
        &mut t,
        key,
        &new_balance,
        limbs.value(),
        &limbs.blinding(),
        rng,
    );
    let values: Vec<u64> = opening
        .limbs
        .iter()
        .chain(limbs.values.iter())
        .map(sigma::low_bits)
        .collect();
    let blindings: Vec<_> = opening
        .randomness
        .iter()
        .chain(limbs.blindings.iter())
        .copied()
        .collect();
    let (range, _) = range::prove(&mut t, &values, &blindings, rng)?;
    Ok((
        ct,
        TransferProof {
            balance_limbs: limbs.points,
            validity,
            equality,
            range,
        },
    ))
}

/// Checks a transfer's proof against its statement and amount, adding its relations to `bv`
/// (run [`BatchVerifier::verify`] to conclude). Errors here are refusals found before the
/// multiscalar multiplication: a malformed range proof, an identity point where the protocol
/// forbids one.
pub fn verify(
    statement: &Statement<'_>,
    amount: &AmountCiphertext,
    proof: &TransferProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    verify_labelled(KIND, statement, amount, proof, bv)
}

pub(crate) fn verify_labelled(
    kind: &'static [u8],
    statement: &Statement<'_>,
    amount: &AmountCiphertext,
    proof: &TransferProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    let mut t = statement.absorb(kind, amount, &proof.balance_limbs);
    proof
        .validity
        .verify(&mut t, statement.keys(), amount, bv)?;
    let new_balance = *statement.spendable - amount.for_role(Role::Sender);
    proof.equality.verify(
        &mut t,
        statement.sender,
        &new_balance,
        sigma::weighted(&proof.balance_limbs),
        bv,
    )?;
    let commitments: Vec<_> = amount
        .limbs
        .iter()
        .map(|l| (l.compressed[0], l.commitment))
        .chain(proof.balance_limbs.iter().map(|p| (p.c, p.p)))
        .collect();
    range::verify(&mut t, &proof.range, &commitments, bv)?;
    bv.proof_added();
    Ok(())
}

/// Verifies one transfer on its own.
pub fn verify_one(
    statement: &Statement<'_>,
    amount: &AmountCiphertext,
    proof: &TransferProof,
) -> Result<(), Error> {
    let mut bv = BatchVerifier::new();
    verify(statement, amount, proof, &mut bv)?;
    bv.verify()
}

impl TransferProof {
    /// The encoding: balance limbs, validity, equality, range proof.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_BYTES);
        for l in &self.balance_limbs {
            out.extend_from_slice(l.c.as_bytes());
        }
        self.validity.write(&mut out);
        self.equality.write(&mut out);
        out.extend_from_slice(&self.range);
        out
    }

    /// Decodes a proof of exactly [`PROOF_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != PROOF_BYTES {
            return Err(Error::Malformed("transfer proof length"));
        }
        let mut w = Words::new(bytes);
        let balance_limbs = sigma::read_limbs(&mut w)?;
        let validity = Validity::read(&mut w)?;
        let equality = Equality::read(&mut w)?;
        let range = w
            .bytes(range::proof_bytes(2 * LIMBS), "range proof")?
            .to_vec();
        w.finish()?;
        Ok(Self {
            balance_limbs,
            validity,
            equality,
            range,
        })
    }
}
