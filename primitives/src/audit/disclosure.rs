//! Proving a decryption to a third party (docs/protocol/audit.md, "The disclosure").
//!
//! The auditor publishes the shared point `S` of one record and a Chaum–Pedersen proof that
//! `log_G(PK) = log_E(S)`: `S` is what its secret key makes of the record's `E`, so the plaintext
//! that `S` decrypts is the one the sender proved, and anyone holding `PK` can check it without
//! learning the key. The challenge is drawn from a merlin transcript over every public value:
//! the generator, `PK`, `E`, `S`, all ciphertext elements, the caller's context (the transaction
//! id), and both commitments.

use super::{
    decrypt_with_shared_point, AuditError, AuditPlaintext, AuditPublicKey, AuditRecord,
    AuditSecretKey,
};
use crate::encoding::{fr_to_bytes, point_to_bytes, Reader};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ed_on_bls12_381::{EdwardsAffine, Fr as JubjubScalar};
use ark_ff::{PrimeField, UniformRand};
use ark_serialize::CanonicalSerialize;
use merlin::Transcript;

/// Encoded length of a [`Disclosure`]'s proof part: `S`, challenge, response.
pub const DISCLOSURE_PROOF_BYTES: usize = 32 + 32 + 32;

/// The one way challenges are made: every value goes into the transcript with a label.
pub trait TranscriptProtocol {
    /// Starts the disclosure protocol's transcript (versioned domain separator).
    fn disclosure_domain() -> Self;
    /// Appends a Jubjub point.
    fn append_point(&mut self, label: &'static [u8], p: &EdwardsAffine);
    /// Appends a BLS12-381 scalar.
    fn append_field(&mut self, label: &'static [u8], x: &crate::Fr);
    /// Draws a Jubjub scalar challenge.
    fn challenge_scalar(&mut self, label: &'static [u8]) -> JubjubScalar;
}

impl TranscriptProtocol for Transcript {
    fn disclosure_domain() -> Self {
        Transcript::new(b"shoji audit disclosure v1")
    }
    fn append_point(&mut self, label: &'static [u8], p: &EdwardsAffine) {
        self.append_message(label, &point_to_bytes(p));
    }
    fn append_field(&mut self, label: &'static [u8], x: &crate::Fr) {
        self.append_message(label, &fr_to_bytes(x));
    }
    fn challenge_scalar(&mut self, label: &'static [u8]) -> JubjubScalar {
        let mut buf = [0u8; 64];
        self.challenge_bytes(label, &mut buf);
        JubjubScalar::from_le_bytes_mod_order(&buf)
    }
}

/// A verifiable decryption of one audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disclosure {
    /// `S = sk·E`.
    pub shared: EdwardsAffine,
    /// Fiat–Shamir challenge.
    pub challenge: JubjubScalar,
    /// `r + challenge·sk`.
    pub response: JubjubScalar,
}

fn challenge(
    pk: &AuditPublicKey,
    record: &AuditRecord,
    context: &[u8],
    shared: &EdwardsAffine,
    a1: &EdwardsAffine,
    a2: &EdwardsAffine,
) -> JubjubScalar {
    let mut t = Transcript::disclosure_domain();
    t.append_message(b"context", context);
    t.append_point(b"G", &EdwardsAffine::generator());
    t.append_point(b"PK", &pk.0);
    t.append_point(b"E", &record.epk);
    for c in &record.ciphertext {
        t.append_field(b"c", c);
    }
    t.append_point(b"S", shared);
    t.append_point(b"A1", a1);
    t.append_point(b"A2", a2);
    t.challenge_scalar(b"challenge")
}

impl AuditSecretKey {
    /// Discloses `record` (bound to `context`, e.g. the transaction id) with a proof.
    pub fn disclose(
        &self,
        record: &AuditRecord,
        context: &[u8],
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Disclosure {
        let shared = self.shared_point(record);
        let r = JubjubScalar::rand(rng);
        let a1 = (EdwardsAffine::generator() * r).into_affine();
        let a2 = (record.epk * r).into_affine();
        let c = challenge(&self.public_key(), record, context, &shared, &a1, &a2);
        Disclosure {
            shared,
            challenge: c,
            response: r + c * self.0,
        }
    }
}

impl Disclosure {
    /// Checks the proof against the auditor's public key, the record and the context, and returns
    /// the plaintext the record holds.
    pub fn verify(
        &self,
        pk: &AuditPublicKey,
        record: &AuditRecord,
        context: &[u8],
    ) -> Result<AuditPlaintext, AuditError> {
        let g = EdwardsAffine::generator();
        let a1 = (g * self.response - pk.0 * self.challenge).into_affine();
        let a2 = (record.epk * self.response - self.shared * self.challenge).into_affine();
        if challenge(pk, record, context, &self.shared, &a1, &a2) != self.challenge {
            return Err(AuditError::InvalidDisclosure("challenge does not match"));
        }
        decrypt_with_shared_point(&self.shared, record)
    }

    /// Checks the proof and that the record decrypts to `claimed`.
    pub fn verify_claim(
        &self,
        pk: &AuditPublicKey,
        record: &AuditRecord,
        context: &[u8],
        claimed: &AuditPlaintext,
    ) -> Result<(), AuditError> {
        if self.verify(pk, record, context)? != *claimed {
            return Err(AuditError::PlaintextMismatch);
        }
        Ok(())
    }

    /// `S ‖ challenge ‖ response`.
    pub fn to_bytes(&self) -> [u8; DISCLOSURE_PROOF_BYTES] {
        let mut out = [0u8; DISCLOSURE_PROOF_BYTES];
        out[..32].copy_from_slice(&point_to_bytes(&self.shared));
        self.challenge
            .serialize_compressed(&mut out[32..64])
            .expect("32-byte scalar");
        self.response
            .serialize_compressed(&mut out[64..])
            .expect("32-byte scalar");
        out
    }

    /// Strict decoding of [`Disclosure::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, AuditError> {
        use ark_serialize::CanonicalDeserialize;
        let mut r = Reader::new("disclosure", b);
        let shared = r.point("disclosure shared point")?;
        let scalar = |bytes: &[u8]| {
            JubjubScalar::deserialize_compressed(bytes)
                .map_err(|_| AuditError::InvalidDisclosure("scalar is not canonical"))
        };
        let challenge = scalar(r.take(32)?)?;
        let response = scalar(r.take(32)?)?;
        r.finish()?;
        Ok(Self {
            shared,
            challenge,
            response,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{Amount, AssetId};
    use crate::Fr;
    use rand_core::OsRng;

    fn setup() -> (AuditSecretKey, AuditRecord, AuditPlaintext) {
        let sk = AuditSecretKey::random(&mut OsRng);
        let pt = AuditPlaintext {
            sender: Fr::from(1u64),
            receivers: [Fr::from(2u64), Fr::from(3u64)],
            values: [Amount(100), Amount(900)],
            asset: AssetId(1),
        };
        let rec = super::super::encrypt(
            &sk.public_key(),
            &pt,
            &super::super::AuditEphemeral::random(&mut OsRng),
        );
        (sk, rec, pt)
    }

    #[test]
    fn honest_disclosure_verifies() {
        let (sk, rec, pt) = setup();
        let d = sk.disclose(&rec, b"tx 1", &mut OsRng);
        assert_eq!(d.verify(&sk.public_key(), &rec, b"tx 1").unwrap(), pt);
        d.verify_claim(&sk.public_key(), &rec, b"tx 1", &pt)
            .unwrap();
        assert_eq!(Disclosure::from_bytes(&d.to_bytes()).unwrap(), d);
    }

    /// Changing any one public value — key, record, context, shared point, proof — is rejected.
    #[test]
    fn every_public_value_is_bound() {
        let (sk, rec, pt) = setup();
        let pk = sk.public_key();
        let d = sk.disclose(&rec, b"tx 1", &mut OsRng);
        let other_pk = AuditSecretKey::random(&mut OsRng).public_key();
        assert!(d.verify(&other_pk, &rec, b"tx 1").is_err());
        assert!(d.verify(&pk, &rec, b"tx 2").is_err());
        for i in 0..4 {
            let mut r = rec;
            r.ciphertext[i] += Fr::from(1u64);
            assert!(d.verify(&pk, &r, b"tx 1").is_err(), "ciphertext {i}");
        }
        let mut r = rec;
        r.epk = (r.epk + EdwardsAffine::generator()).into_affine();
        assert!(d.verify(&pk, &r, b"tx 1").is_err());
        let bad_shared = Disclosure {
            shared: (d.shared + EdwardsAffine::generator()).into_affine(),
            ..d
        };
        assert!(bad_shared.verify(&pk, &rec, b"tx 1").is_err());
        let bad_resp = Disclosure {
            response: d.response + JubjubScalar::from(1u64),
            ..d
        };
        assert!(bad_resp.verify(&pk, &rec, b"tx 1").is_err());
        let mut claimed = pt;
        claimed.values[0] = Amount(101);
        assert_eq!(
            d.verify_claim(&pk, &rec, b"tx 1", &claimed),
            Err(AuditError::PlaintextMismatch)
        );
    }

    #[test]
    fn flipped_byte_rejected() {
        let (sk, rec, _) = setup();
        let d = sk.disclose(&rec, b"ctx", &mut OsRng);
        let bytes = d.to_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes;
            b[i] ^= 0x01;
            let ok =
                Disclosure::from_bytes(&b).and_then(|d| d.verify(&sk.public_key(), &rec, b"ctx"));
            assert!(ok.is_err(), "byte {i}");
        }
    }
}
