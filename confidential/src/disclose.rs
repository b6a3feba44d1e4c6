//! Disclosure of a transfer's amount by the auditor, with a proof anyone holding the transaction
//! can check: the auditor reveals the four limbs `aᵢ` and proves, without revealing its key, that
//! `Cᵢ − aᵢ·G = s·Dᵢ` for its handle `Dᵢ` of every limb and `s·P = H` for its public key `P` (a
//! Chaum–Pedersen proof of equal discrete logarithms, the limbs folded with powers of a
//! challenge).
//!
//! Transcript (`shoji-confidential`, `proof = "disclose v1"`): the caller's context (the
//! transaction id), the auditor's key, the amount ciphertext, the revealed amount, the protocol.

use crate::batch::{Base, BatchVerifier};
use crate::elgamal::{AmountCiphertext, Role};
use crate::keys::{PublicKey, SecretKey};
use crate::sigma::{append_scalars, challenge, powers, Point, Words};
use crate::{g, limbs_of, transcript, Error, LIMBS};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use merlin::Transcript;

/// The proof type and version at the head of the transcript.
pub const KIND: &[u8] = b"disclose v1";

/// Encoded size of a [`DisclosureProof`].
pub const PROOF_BYTES: usize = 3 * 32;

/// The auditor's proof that an amount ciphertext holds a stated amount. 96 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosureProof {
    y_key: Point,
    y_handle: Point,
    z: Scalar,
}

fn absorb(
    kind: &'static [u8],
    context: &[u8],
    auditor: &PublicKey,
    ct: &AmountCiphertext,
    amount: u64,
) -> (Transcript, RistrettoPoint, RistrettoPoint) {
    let mut t = transcript(kind);
    t.append_message(b"context", context);
    t.append_message(b"auditor", auditor.compressed().as_bytes());
    ct.absorb(&mut t);
    t.append_u64(b"amount", amount);
    let powers = powers(challenge(&mut t, b"disclose-b"));
    let limbs = limbs_of(amount);
    // D* = Σ bⁱ·Dᵢ and C* − a*·G = Σ bⁱ·(Cᵢ − aᵢ·G).
    let handle = RistrettoPoint::vartime_multiscalar_mul(
        powers.iter(),
        ct.limbs.iter().map(|l| l.handles[Role::Auditor as usize]),
    );
    let a: Scalar = (0..LIMBS).map(|i| powers[i] * Scalar::from(limbs[i])).sum();
    let opened = RistrettoPoint::vartime_multiscalar_mul(
        powers.iter().chain(std::iter::once(&-a)),
        ct.limbs
            .iter()
            .map(|l| l.commitment)
            .chain(std::iter::once(g())),
    );
    (t, handle, opened)
}

/// Decrypts `ct` with the auditor's key and proves the amount found.
pub fn disclose(
    key: &SecretKey,
    context: &[u8],
    ct: &AmountCiphertext,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(u64, DisclosureProof), Error> {
    let amount = ct.decrypt(Role::Auditor, key)?;
    Ok((amount, prove_labelled(KIND, key, context, ct, amount, rng)))
}

pub(crate) fn prove_labelled(
    kind: &'static [u8],
    key: &SecretKey,
    context: &[u8],
    ct: &AmountCiphertext,
    amount: u64,
    rng: &mut impl rand_core::CryptoRngCore,
) -> DisclosureProof {
    let pk = key.public();
    let (mut t, handle, _) = absorb(kind, context, &pk, ct, amount);
    let mut trng = t
        .build_rng()
        .rekey_with_witness_bytes(b"witness", key.scalar().as_bytes())
        .finalize(rng);
    let k = Scalar::random(&mut trng);
    let y_key = Point::new(k * pk.point());
    let y_handle = Point::new(k * handle);
    y_key.append(&mut t, b"disclose-Y");
    y_handle.append(&mut t, b"disclose-Y");
    let c = challenge(&mut t, b"disclose-c");
    let z = k + c * key.scalar();
    append_scalars(&mut t, b"disclose-z", &[z]);
    DisclosureProof { y_key, y_handle, z }
}

/// Checks that `ct` holds `amount` for the auditor `auditor`, adding the relations to `bv`.
pub fn verify(
    context: &[u8],
    auditor: &PublicKey,
    ct: &AmountCiphertext,
    amount: u64,
    proof: &DisclosureProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    verify_labelled(KIND, context, auditor, ct, amount, proof, bv)
}

pub(crate) fn verify_labelled(
    kind: &'static [u8],
    context: &[u8],
    auditor: &PublicKey,
    ct: &AmountCiphertext,
    amount: u64,
    proof: &DisclosureProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    let (mut t, handle, opened) = absorb(kind, context, auditor, ct, amount);
    proof.y_key.append(&mut t, b"disclose-Y");
    proof.y_handle.append(&mut t, b"disclose-Y");
    let c = challenge(&mut t, b"disclose-c");
    append_scalars(&mut t, b"disclose-z", &[proof.z]);
    bv.relation([
        (proof.z, Base::P(*auditor.point())),
        (-Scalar::ONE, Base::P(proof.y_key.p)),
        (-c, Base::H),
    ]);
    bv.relation([
        (proof.z, Base::P(handle)),
        (-Scalar::ONE, Base::P(proof.y_handle.p)),
        (-c, Base::P(opened)),
    ]);
    bv.proof_added();
    Ok(())
}

/// Verifies one disclosure on its own.
pub fn verify_one(
    context: &[u8],
    auditor: &PublicKey,
    ct: &AmountCiphertext,
    amount: u64,
    proof: &DisclosureProof,
) -> Result<(), Error> {
    let mut bv = BatchVerifier::new();
    verify(context, auditor, ct, amount, proof, &mut bv)?;
    bv.verify()
}

impl DisclosureProof {
    /// The 96-byte encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_BYTES);
        out.extend_from_slice(self.y_key.c.as_bytes());
        out.extend_from_slice(self.y_handle.c.as_bytes());
        out.extend_from_slice(self.z.as_bytes());
        out
    }

    /// Decodes a proof of exactly [`PROOF_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut w = Words::new(bytes);
        let p = Self {
            y_key: w.point("disclosure proof")?,
            y_handle: w.point("disclosure proof")?,
            z: w.scalar("disclosure proof")?,
        };
        w.finish()?;
        Ok(p)
    }
}
