//! A withdrawal of a public amount from an account (a shield into a note, a redemption to the
//! issuer): the owner proves that it owns the account and that `spendable − amount·G` holds a
//! value in `[0, 2⁶⁴)`, committed in four balance limbs (a sigma protocol and one Bulletproof
//! over the four limbs).
//!
//! Transcript (`shoji-confidential`, `proof = "withdraw v1"`): the caller's context, the owner's
//! key, the spendable balance, the amount, the balance limbs, the equality protocol, the range
//! proof.

use crate::batch::BatchVerifier;
use crate::elgamal::Ciphertext;
use crate::keys::{PublicKey, SecretKey};
use crate::sigma::{self, BalanceLimbs, Equality, Point, Words};
use crate::{limbs_of, range, transcript, Error, LIMBS};
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;

/// The proof type and version at the head of the transcript.
pub const KIND: &[u8] = b"withdraw v1";

/// Encoded size of a [`WithdrawProof`].
pub const PROOF_BYTES: usize = LIMBS * 32 + Equality::BYTES + range::proof_bytes(LIMBS);

/// The public values of a withdrawal.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'a> {
    /// The transaction's other fields as the ledger encodes them.
    pub context: &'a [u8],
    /// The account's key.
    pub owner: &'a PublicKey,
    /// The balance the proof spends from, as the ledger computes it.
    pub spendable: &'a Ciphertext,
    /// The public amount leaving the account.
    pub amount: u64,
}

impl Statement<'_> {
    fn absorb(&self, kind: &'static [u8], limbs: &[Point]) -> Transcript {
        let mut t = transcript(kind);
        t.append_message(b"context", self.context);
        t.append_message(b"owner", self.owner.compressed().as_bytes());
        sigma::absorb_ciphertext(&mut t, b"spendable", self.spendable);
        t.append_u64(b"amount", self.amount);
        for l in limbs {
            l.append(&mut t, b"balance-limb");
        }
        t
    }

    fn new_balance(&self) -> Ciphertext {
        *self.spendable - Ciphertext::public(self.amount)
    }
}

/// The proof of a withdrawal. 992 bytes encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawProof {
    balance_limbs: [Point; LIMBS],
    equality: Equality,
    range: Vec<u8>,
}

/// Proves a withdrawal of `statement.amount` from an account holding `balance`.
pub fn prove(
    key: &SecretKey,
    statement: &Statement<'_>,
    balance: u64,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<WithdrawProof, Error> {
    prove_labelled(KIND, key, statement, balance, rng)
}

pub(crate) fn prove_labelled(
    kind: &'static [u8],
    key: &SecretKey,
    statement: &Statement<'_>,
    balance: u64,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<WithdrawProof, Error> {
    if key.public() != *statement.owner {
        return Err(Error::Unprovable("the key is not the owner's"));
    }
    if !statement.spendable.holds(key, balance) {
        return Err(Error::Unprovable(
            "the spendable balance does not hold that value",
        ));
    }
    let rest = balance
        .checked_sub(statement.amount)
        .ok_or(Error::Unprovable("the amount exceeds the balance"))?;
    build(kind, key, statement, limbs_of(rest).map(Scalar::from), rng)
}

/// Builds the proof from balance limbs without checking them (see `transfer::build`).
pub(crate) fn build(
    kind: &'static [u8],
    key: &SecretKey,
    statement: &Statement<'_>,
    rest_limbs: [Scalar; LIMBS],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<WithdrawProof, Error> {
    let limbs = BalanceLimbs::commit(rest_limbs, rng);
    let mut t = statement.absorb(kind, &limbs.points);
    let equality = Equality::prove(
        &mut t,
        key,
        &statement.new_balance(),
        limbs.value(),
        &limbs.blinding(),
        rng,
    );
    let values: Vec<u64> = limbs.values.iter().map(sigma::low_bits).collect();
    let (range, _) = range::prove(&mut t, &values, &limbs.blindings, rng)?;
    Ok(WithdrawProof {
        balance_limbs: limbs.points,
        equality,
        range,
    })
}

/// Checks a withdrawal's proof, adding its relations to `bv`.
pub fn verify(
    statement: &Statement<'_>,
    proof: &WithdrawProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    verify_labelled(KIND, statement, proof, bv)
}

pub(crate) fn verify_labelled(
    kind: &'static [u8],
    statement: &Statement<'_>,
    proof: &WithdrawProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    let mut t = statement.absorb(kind, &proof.balance_limbs);
    proof.equality.verify(
        &mut t,
        statement.owner,
        &statement.new_balance(),
        sigma::weighted(&proof.balance_limbs),
        bv,
    )?;
    let commitments: Vec<_> = proof.balance_limbs.iter().map(|p| (p.c, p.p)).collect();
    range::verify(&mut t, &proof.range, &commitments, bv)?;
    bv.proof_added();
    Ok(())
}

/// Verifies one withdrawal on its own.
pub fn verify_one(statement: &Statement<'_>, proof: &WithdrawProof) -> Result<(), Error> {
    let mut bv = BatchVerifier::new();
    verify(statement, proof, &mut bv)?;
    bv.verify()
}

impl WithdrawProof {
    /// The encoding: balance limbs, equality, range proof.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_BYTES);
        for l in &self.balance_limbs {
            out.extend_from_slice(l.c.as_bytes());
        }
        self.equality.write(&mut out);
        out.extend_from_slice(&self.range);
        out
    }

    /// Decodes a proof of exactly [`PROOF_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != PROOF_BYTES {
            return Err(Error::Malformed("withdraw proof length"));
        }
        let mut w = Words::new(bytes);
        let balance_limbs = sigma::read_limbs(&mut w)?;
        let equality = Equality::read(&mut w)?;
        let range = w.bytes(range::proof_bytes(LIMBS), "range proof")?.to_vec();
        w.finish()?;
        Ok(Self {
            balance_limbs,
            equality,
            range,
        })
    }
}
