//! Confidential accounts (docs/protocol/accounts.md): the amount hidden, the parties known, no
//! trusted setup.
//!
//! An account holds its balance as a *twisted ElGamal* ciphertext on Ristretto:
//! `(C, D) = (v·G + r·H, r·P)` for the account's public key `P = s⁻¹·H`. `C` is a Pedersen
//! commitment (the same `G`, `H` as the `bulletproofs` crate's [`PedersenGens`]), so a range
//! proof can be made on it directly, and the secret `s` opens it: `C − s·D = v·G`.
//!
//! A transferred amount is split into four 16-bit limbs, each encrypted once with three decrypt
//! handles (sender, receiver, auditor), so each party recovers the whole `u64` with four lookups
//! in a table of `2¹⁶` points ([`dlog`]).
//!
//! The proofs ([`open`], [`transfer`], [`withdraw`], [`disclose`]) are sigma protocols and one
//! aggregated Bulletproof, all in one merlin transcript per proof that begins with the proof type
//! and version and absorbs every public value, including a caller's `context` (the transaction's
//! other fields). The verifier reduces each proof to linear relations between points and checks
//! them in one multiscalar multiplication; [`batch::BatchVerifier`] does the same for many
//! proofs at once, with a random weight per relation.

pub mod batch;
pub mod disclose;
pub mod dlog;
pub mod elgamal;
pub mod keys;
pub mod open;
mod range;
mod sigma;
#[cfg(test)]
mod tests;
pub mod transfer;
pub mod withdraw;

pub use batch::BatchVerifier;
pub use elgamal::{AmountCiphertext, Ciphertext, Role};
pub use keys::{PublicKey, SecretKey};

use bulletproofs::PedersenGens;
use curve25519_dalek::ristretto::RistrettoPoint;
use std::sync::OnceLock;

/// Bits per amount limb: each limb is range-proved to `[0, 2¹⁶)` and decrypted by table lookup.
pub const LIMB_BITS: usize = 16;
/// Limbs per amount: `4 × 16` bits cover every `u64`.
pub const LIMBS: usize = 4;
/// The merlin transcript's name for every proof of this crate.
pub const TRANSCRIPT_LABEL: &[u8] = b"shoji-confidential";

/// Why a value was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The bytes do not decode (wrong length, a non-canonical scalar, a point not on the group).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A proof does not verify; the string names the relation that failed, or `batch`.
    #[error("invalid proof: {0}")]
    InvalidProof(&'static str),
    /// A limb decrypted to a point outside `[0, 2¹⁶)·G`: not encrypted to this key, or not a limb.
    #[error("the ciphertext does not decrypt under this key")]
    Undecryptable,
    /// The prover was asked to prove something false (an overdraft, a balance it does not hold).
    #[error("cannot prove: {0}")]
    Unprovable(&'static str),
}

/// The two Pedersen bases: `G` (values, the Ristretto basepoint) and `H` (blinding), as
/// `bulletproofs::PedersenGens::default()` defines them.
pub fn pedersen() -> &'static PedersenGens {
    static GENS: OnceLock<PedersenGens> = OnceLock::new();
    GENS.get_or_init(PedersenGens::default)
}

pub(crate) fn g() -> RistrettoPoint {
    pedersen().B
}

pub(crate) fn h() -> RistrettoPoint {
    pedersen().B_blinding
}

/// Powers `1, 2¹⁶, 2³², 2⁴⁸`: the weight of each limb.
pub(crate) fn limb_weights() -> [curve25519_dalek::scalar::Scalar; LIMBS] {
    std::array::from_fn(|i| curve25519_dalek::scalar::Scalar::from(1u64 << (LIMB_BITS * i)))
}

/// Splits a `u64` into its four 16-bit limbs, least significant first.
pub fn limbs_of(value: u64) -> [u64; LIMBS] {
    let mut out = [0u64; LIMBS];
    for (i, l) in out.iter_mut().enumerate() {
        *l = (value >> (LIMB_BITS * i)) & 0xffff;
    }
    out
}

/// A fresh transcript for one proof type: the crate's label, then `proof = kind` (which carries
/// the version, e.g. `transfer v1`).
pub(crate) fn transcript(kind: &'static [u8]) -> merlin::Transcript {
    let mut t = merlin::Transcript::new(TRANSCRIPT_LABEL);
    t.append_message(b"proof", kind);
    t
}
