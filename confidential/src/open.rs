//! Opening an account: a proof of knowledge of the account's secret key (`s·P = H`), bound to the
//! opening transaction's context. A key nobody can decrypt with cannot become an account, so
//! payments cannot be sent into a key that will never spend them by mistake.
//!
//! Transcript (`shoji-confidential`, `proof = "open v1"`): the caller's context, the key, the
//! Schnorr protocol.

use crate::batch::BatchVerifier;
use crate::keys::{PublicKey, SecretKey};
use crate::sigma::{KeyProof, Words};
use crate::{transcript, Error};
use merlin::Transcript;

/// The proof type and version at the head of the transcript.
pub const KIND: &[u8] = b"open v1";

/// Encoded size of an [`OpenProof`].
pub const PROOF_BYTES: usize = KeyProof::BYTES;

/// The proof that opens an account. 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenProof(KeyProof);

fn absorb(kind: &'static [u8], context: &[u8], key: &PublicKey) -> Transcript {
    let mut t = transcript(kind);
    t.append_message(b"context", context);
    t.append_message(b"key", key.compressed().as_bytes());
    t
}

/// Proves knowledge of `key` for the transaction described by `context`.
pub fn prove(
    key: &SecretKey,
    context: &[u8],
    rng: &mut impl rand_core::CryptoRngCore,
) -> OpenProof {
    prove_labelled(KIND, key, context, rng)
}

pub(crate) fn prove_labelled(
    kind: &'static [u8],
    key: &SecretKey,
    context: &[u8],
    rng: &mut impl rand_core::CryptoRngCore,
) -> OpenProof {
    let mut t = absorb(kind, context, &key.public());
    OpenProof(KeyProof::prove(&mut t, key, rng))
}

/// Checks an opening proof, adding its relation to `bv`.
pub fn verify(
    context: &[u8],
    key: &PublicKey,
    proof: &OpenProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    verify_labelled(KIND, context, key, proof, bv)
}

pub(crate) fn verify_labelled(
    kind: &'static [u8],
    context: &[u8],
    key: &PublicKey,
    proof: &OpenProof,
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    let mut t = absorb(kind, context, key);
    proof.0.verify(&mut t, key, bv)?;
    bv.proof_added();
    Ok(())
}

/// Verifies one opening proof on its own.
pub fn verify_one(context: &[u8], key: &PublicKey, proof: &OpenProof) -> Result<(), Error> {
    let mut bv = BatchVerifier::new();
    verify(context, key, proof, &mut bv)?;
    bv.verify()
}

impl OpenProof {
    /// The 64-byte encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_BYTES);
        self.0.write(&mut out);
        out
    }

    /// Decodes a proof of exactly [`PROOF_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut w = Words::new(bytes);
        let p = KeyProof::read(&mut w)?;
        w.finish()?;
        Ok(Self(p))
    }
}
