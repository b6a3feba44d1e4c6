//! Account and auditor keys: a secret scalar `s` and the public point `P = s⁻¹·H`.
//!
//! With this "twisted" form a ciphertext `(C, D) = (v·G + r·H, r·P)` opens as `C − s·D = v·G`,
//! and `C` stays a plain Pedersen commitment that range proofs accept.

use crate::{h, Error};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Key-derivation context of an account key from a wallet seed.
pub const ACCOUNT_KEY_CONTEXT: &str = "shoji 2026 account key v1";
/// Key-derivation context of the auditor's account-tier key from its audit secret key bytes.
pub const AUDITOR_KEY_CONTEXT: &str = "shoji 2026 account auditor key v1";

/// A secret key `s` (never zero). Decrypts ciphertexts under [`SecretKey::public`] and signs,
/// through the proofs that use it, the transactions of its account.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Scalar);

impl SecretKey {
    /// Derives a key from 32 secret bytes with blake3's key derivation under `context`
    /// (64 output bytes reduced modulo the group order; a zero result, probability 2⁻²⁵², moves
    /// to the next counter).
    pub fn derive(context: &str, secret: &[u8; 32]) -> Self {
        let mut counter = 0u32;
        loop {
            let mut out = [0u8; 64];
            let mut xof = blake3::Hasher::new_derive_key(context);
            xof.update(secret);
            xof.update(&counter.to_le_bytes());
            xof.finalize_xof().fill(&mut out);
            let s = Scalar::from_bytes_mod_order_wide(&out);
            out.zeroize();
            if s != Scalar::ZERO {
                return Self(s);
            }
            counter += 1;
        }
    }

    /// The account key of a wallet seed.
    pub fn account(seed: &[u8; 32]) -> Self {
        Self::derive(ACCOUNT_KEY_CONTEXT, seed)
    }

    /// The auditor's account-tier key, derived from the bytes of its note-tier audit secret key,
    /// so one auditor secret reads both tiers.
    pub fn auditor(audit_secret: &[u8; 32]) -> Self {
        Self::derive(AUDITOR_KEY_CONTEXT, audit_secret)
    }

    /// A random key.
    pub fn random(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        loop {
            let s = Scalar::random(rng);
            if s != Scalar::ZERO {
                return Self(s);
            }
        }
    }

    /// The public key `P = s⁻¹·H`.
    pub fn public(&self) -> PublicKey {
        PublicKey::from_point(self.0.invert() * h())
    }

    pub(crate) fn scalar(&self) -> &Scalar {
        &self.0
    }
}

/// A public key `P` (never the identity), kept both compressed (for transcripts and encodings)
/// and decompressed (for arithmetic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    point: RistrettoPoint,
    bytes: CompressedRistretto,
}

impl PublicKey {
    pub(crate) fn from_point(point: RistrettoPoint) -> Self {
        Self {
            point,
            bytes: point.compress(),
        }
    }

    /// Decodes a public key: a canonical Ristretto encoding that is not the identity.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        let compressed = CompressedRistretto(*bytes);
        let point = compressed
            .decompress()
            .ok_or(Error::Malformed("public key"))?;
        if point.is_identity() {
            return Err(Error::Malformed("public key (identity)"));
        }
        Ok(Self {
            point,
            bytes: compressed,
        })
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes.0
    }

    pub(crate) fn point(&self) -> &RistrettoPoint {
        &self.point
    }

    pub(crate) fn compressed(&self) -> &CompressedRistretto {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separated_by_context() {
        let seed = [7u8; 32];
        assert_eq!(
            SecretKey::account(&seed).public(),
            SecretKey::account(&seed).public()
        );
        assert_ne!(
            SecretKey::account(&seed).public(),
            SecretKey::auditor(&seed).public()
        );
        assert_ne!(
            SecretKey::account(&seed).public(),
            SecretKey::account(&[8u8; 32]).public()
        );
    }

    #[test]
    fn public_key_round_trips_and_refuses_bad_encodings() {
        let pk = SecretKey::account(&[1u8; 32]).public();
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()), Ok(pk));
        assert!(matches!(
            PublicKey::from_bytes(&[0u8; 32]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            PublicKey::from_bytes(&[0xffu8; 32]),
            Err(Error::Malformed(_))
        ));
    }
}
