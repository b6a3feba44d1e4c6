//! The audit record: every transfer's sender, receivers, amounts and asset, encrypted to the
//! designated auditor inside the proof (docs/protocol/audit.md).
//!
//! `E = e·G`, `S = e·PK`, `(p_0..p_3) = Poseidon_AuditPad(S.x, S.y)` squeezed to four elements, and
//! `c_i = m_i + p_i` for the plaintext elements `m = (sender apk, receiver_0 apk, receiver_1 apk,
//! asset·2^128 + value_1·2^64 + value_0)`. The circuit proves this relation for the same values it
//! spends and creates, so the record cannot lie. The auditor computes `S = sk·E` and subtracts the
//! pads; [`disclosure`] lets it prove to anyone that it did so honestly.

#[cfg(feature = "r1cs")]
pub mod constraints;
pub mod disclosure;

use crate::encoding::{fr_to_bytes, point_to_bytes, EncodingError, Reader};
use crate::note::{Amount, AssetId};
use crate::poseidon::{self, Domain};
use crate::Fr;
use ark_ec::{AffineRepr, CurveGroup};
use ark_ed_on_bls12_381::{EdwardsAffine, Fr as JubjubScalar};
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, UniformRand, Zero};

/// Number of field elements in an audit plaintext and ciphertext.
pub const AUDIT_ELEMENTS: usize = 4;

/// The auditor's secret view key.
#[derive(Clone)]
pub struct AuditSecretKey(pub JubjubScalar);

impl Drop for AuditSecretKey {
    fn drop(&mut self) {
        self.0 = JubjubScalar::zero();
    }
}

/// The auditor's public key, registered by governance and a public input of every transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditPublicKey(pub EdwardsAffine);

impl AuditSecretKey {
    /// A fresh random key.
    pub fn random(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        loop {
            let k = JubjubScalar::rand(rng);
            if !k.is_zero() {
                return Self(k);
            }
        }
    }

    /// The public key `sk·G`.
    pub fn public_key(&self) -> AuditPublicKey {
        AuditPublicKey((EdwardsAffine::generator() * self.0).into_affine())
    }

    /// The shared point `S = sk·E` of a record.
    pub fn shared_point(&self, record: &AuditRecord) -> EdwardsAffine {
        (record.epk * self.0).into_affine()
    }

    /// Decrypts a record designated to this key. A record for another key yields
    /// [`AuditError::NotForThisKey`] (its packed element is out of range) with overwhelming
    /// probability.
    pub fn decrypt(&self, record: &AuditRecord) -> Result<AuditPlaintext, AuditError> {
        decrypt_with_shared_point(&self.shared_point(record), record)
    }
}

impl AuditSecretKey {
    /// 32-byte little-endian encoding of the scalar (keep it secret).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0.into_bigint().to_bytes_le());
        out
    }

    /// Decodes a canonical, non-zero scalar.
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self, EncodingError> {
        let k = JubjubScalar::from_le_bytes_mod_order(b);
        if k.is_zero() || k.into_bigint().to_bytes_le() != b[..] {
            return Err(EncodingError::Invalid("auditor secret key"));
        }
        Ok(Self(k))
    }
}

impl AuditPublicKey {
    /// 32-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        crate::encoding::point_to_bytes(&self.0)
    }

    /// Decodes and validates (on curve, prime-order subgroup, not the identity).
    ///
    /// Every transaction carries the auditor key in force, so the same 32 bytes arrive again
    /// and again: the last few encodings that passed are remembered and decode without
    /// repeating the subgroup check (a Jubjub scalar multiplication). Any other encoding is
    /// checked in full.
    pub fn from_bytes(b: &[u8]) -> Result<Self, EncodingError> {
        if let Some(p) = validated_keys::get(b) {
            return Ok(Self(p));
        }
        let p = crate::encoding::point_from_bytes("auditor public key", b)?;
        if p.is_zero() {
            return Err(EncodingError::InvalidPoint("auditor public key"));
        }
        validated_keys::put(b, p);
        Ok(Self(p))
    }
}

/// What the auditor learns of one transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditPlaintext {
    /// Owner tag of the sender (both inputs belong to it).
    pub sender: Fr,
    /// Owner tags of the two outputs' receivers.
    pub receivers: [Fr; 2],
    /// Values of the two outputs.
    pub values: [Amount; 2],
    /// The asset moved.
    pub asset: AssetId,
}

impl AuditPlaintext {
    /// The four plaintext field elements.
    pub fn to_elements(&self) -> [Fr; AUDIT_ELEMENTS] {
        [
            self.sender,
            self.receivers[0],
            self.receivers[1],
            pack_audit_amounts(self.asset, self.values),
        ]
    }

    /// Reads plaintext elements back; fails if the packed element is not below 2^192.
    pub fn from_elements(m: &[Fr; AUDIT_ELEMENTS]) -> Result<Self, AuditError> {
        let bytes = m[3].into_bigint().to_bytes_le();
        if bytes[24..].iter().any(|&b| b != 0) {
            return Err(AuditError::NotForThisKey);
        }
        let limb =
            |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        Ok(Self {
            sender: m[0],
            receivers: [m[1], m[2]],
            values: [Amount(limb(0)), Amount(limb(1))],
            asset: AssetId(limb(2)),
        })
    }
}

/// `asset·2^128 + value_1·2^64 + value_0`.
pub fn pack_audit_amounts(asset: AssetId, values: [Amount; 2]) -> Fr {
    let low = ((values[1].0 as u128) << 64) | values[0].0 as u128;
    Fr::from(asset.0) * Fr::from(2u64).pow([128u64]) + Fr::from(low)
}

/// An encrypted audit record, as published in a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Ephemeral point `E = e·G`.
    pub epk: EdwardsAffine,
    /// `c_i = m_i + pad_i`.
    pub ciphertext: [Fr; AUDIT_ELEMENTS],
}

impl AuditRecord {
    /// Length of the encoding: `E(32) ‖ c_0(32) ‖ … ‖ c_3(32)`.
    pub const BYTES: usize = 32 + 32 * AUDIT_ELEMENTS;

    /// Appends the record's one encoding: `E` compressed, then each `c_i` in canonical
    /// little-endian form. Transactions, compact blocks, the auditor's file and disclosures
    /// all carry this.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&point_to_bytes(&self.epk));
        for c in &self.ciphertext {
            out.extend_from_slice(&fr_to_bytes(c));
        }
    }

    /// The encoding alone.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        self.write(&mut out);
        out
    }

    /// Reads a record, checking that `E` is on the curve and in the prime-order subgroup and
    /// that each `c_i` is canonical.
    pub fn read(r: &mut Reader<'_>) -> Result<AuditRecord, EncodingError> {
        let epk = r.point("audit ephemeral key")?;
        Self::read_ciphertext(r, epk)
    }

    /// [`AuditRecord::read`] that checks `E` is on the curve but leaves its subgroup check to
    /// the proof, which binds `E` as a public input (docs/decisions/0021).
    pub fn read_proof_bound(r: &mut Reader<'_>) -> Result<AuditRecord, EncodingError> {
        let epk = r.point_on_curve("audit ephemeral key")?;
        Self::read_ciphertext(r, epk)
    }

    fn read_ciphertext(
        r: &mut Reader<'_>,
        epk: EdwardsAffine,
    ) -> Result<AuditRecord, EncodingError> {
        let mut ciphertext = [Fr::zero(); AUDIT_ELEMENTS];
        for c in ciphertext.iter_mut() {
            *c = r.fr("audit ciphertext")?;
        }
        Ok(AuditRecord { epk, ciphertext })
    }
}

/// Audit decryption and disclosure failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditError {
    /// The record does not decrypt to a well-formed plaintext under this key.
    #[error("this audit record is not designated to this auditor key")]
    NotForThisKey,
    /// A disclosure's proof does not verify.
    #[error("the disclosure proof is invalid: {0}")]
    InvalidDisclosure(&'static str),
    /// A disclosure's published plaintext differs from what its shared point decrypts.
    #[error("the disclosed plaintext does not match the record")]
    PlaintextMismatch,
    /// Malformed bytes.
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

/// The four pads derived from the shared point.
pub fn audit_pads(shared: &EdwardsAffine) -> [Fr; AUDIT_ELEMENTS] {
    poseidon::hash_to_rate(Domain::AuditPad, &[shared.x, shared.y])
}

/// Encrypts `plaintext` to `pk` under the ephemeral exponent `eph` (the circuit's witness).
pub fn encrypt(
    pk: &AuditPublicKey,
    plaintext: &AuditPlaintext,
    eph: &AuditEphemeral,
) -> AuditRecord {
    let k = eph.exponent();
    let epk = (EdwardsAffine::generator() * k).into_affine();
    let shared = (pk.0 * k).into_affine();
    let pads = audit_pads(&shared);
    let m = plaintext.to_elements();
    AuditRecord {
        epk,
        ciphertext: std::array::from_fn(|i| m[i] + pads[i]),
    }
}

/// Decrypts a record given its shared point (from the secret key, or from a verified disclosure).
pub fn decrypt_with_shared_point(
    shared: &EdwardsAffine,
    record: &AuditRecord,
) -> Result<AuditPlaintext, AuditError> {
    let pads = audit_pads(shared);
    let m: [Fr; AUDIT_ELEMENTS] = std::array::from_fn(|i| record.ciphertext[i] - pads[i]);
    AuditPlaintext::from_elements(&m)
}

/// Number of random bits of the audit record's ephemeral exponent.
pub const EPHEMERAL_BITS: usize = 252;

/// The audit record's ephemeral exponent.
///
/// It is drawn as [`EPHEMERAL_BITS`] random bits `b_i`, and the exponent is the signed-binary
/// number `k = Σ (2·b_i − 1)·2^i` (reduced modulo the Jubjub group order). Signed digits let the
/// circuit multiply the auditor's key two bits at a time by `±P` or `±3P` with a conditional
/// negation instead of a four-way table (see `constraints.rs`). `k` takes 2^252 equally likely odd
/// values, so reduced modulo the order (about 2^251.9) its min-entropy is above 251 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditEphemeral {
    limbs: [u64; 4],
}

impl AuditEphemeral {
    /// Fresh random bits.
    pub fn random(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut limbs = [0u64; 4];
        for l in limbs.iter_mut() {
            *l = rng.next_u64();
        }
        limbs[3] &= (1u64 << (EPHEMERAL_BITS - 192)) - 1;
        Self { limbs }
    }

    /// The ephemeral with the given bits (at most [`EPHEMERAL_BITS`]; missing ones are zero).
    pub fn from_bits(bits: &[bool]) -> Self {
        let mut limbs = [0u64; 4];
        for (i, b) in bits.iter().take(EPHEMERAL_BITS).enumerate() {
            limbs[i / 64] |= (*b as u64) << (i % 64);
        }
        Self { limbs }
    }

    /// The bits `b_0 .. b_251`.
    pub fn bits(&self) -> Vec<bool> {
        (0..EPHEMERAL_BITS)
            .map(|i| (self.limbs[i / 64] >> (i % 64)) & 1 == 1)
            .collect()
    }

    /// The exponent `k = 2·B − (2^252 − 1)` where `B = Σ b_i·2^i`.
    pub fn exponent(&self) -> JubjubScalar {
        let mut bytes = [0u8; 32];
        for (i, l) in self.limbs.iter().enumerate() {
            bytes[8 * i..8 * i + 8].copy_from_slice(&l.to_le_bytes());
        }
        let b = JubjubScalar::from_le_bytes_mod_order(&bytes);
        let all_ones =
            JubjubScalar::from(2u64).pow([EPHEMERAL_BITS as u64]) - JubjubScalar::from(1u64);
        b.double() - all_ones
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn plaintext() -> AuditPlaintext {
        AuditPlaintext {
            sender: Fr::from(11u64),
            receivers: [Fr::from(12u64), Fr::from(13u64)],
            values: [Amount(250), Amount(u64::MAX)],
            asset: AssetId(u64::MAX - 1),
        }
    }

    #[test]
    fn designated_auditor_decrypts_others_do_not() {
        let sk = AuditSecretKey::random(&mut OsRng);
        let other = AuditSecretKey::random(&mut OsRng);
        let rec = encrypt(
            &sk.public_key(),
            &plaintext(),
            &AuditEphemeral::random(&mut OsRng),
        );
        assert_eq!(sk.decrypt(&rec).unwrap(), plaintext());
        assert_eq!(other.decrypt(&rec), Err(AuditError::NotForThisKey));
    }

    /// The exponent is the signed-binary value of the bits.
    #[test]
    fn ephemeral_exponent() {
        let eph = AuditEphemeral::random(&mut OsRng);
        let bits = eph.bits();
        assert_eq!(bits.len(), EPHEMERAL_BITS);
        let mut k = JubjubScalar::from(0u64);
        let mut pow = JubjubScalar::from(1u64);
        for b in bits {
            k += if b { pow } else { -pow };
            pow.double_in_place();
        }
        assert_eq!(k, eph.exponent());
        let zero = AuditEphemeral { limbs: [0; 4] };
        assert_eq!(
            zero.exponent(),
            -(JubjubScalar::from(2u64).pow([252u64]) - JubjubScalar::from(1u64))
        );
    }

    /// Remembering validated keys never lets another encoding skip its checks: a key plus a
    /// point of order two (outside the prime-order subgroup) and the identity are refused
    /// after the key itself was accepted, and the key still decodes to itself.
    #[test]
    fn remembered_auditor_keys_do_not_bypass_validation() {
        let pk = AuditSecretKey::random(&mut OsRng).public_key();
        let bytes = pk.to_bytes();
        assert_eq!(AuditPublicKey::from_bytes(&bytes).unwrap(), pk);
        // (0, -1) has order two on a twisted Edwards curve.
        let two_torsion = EdwardsAffine::new_unchecked(Zero::zero(), -ark_ed_on_bls12_381::Fq::ONE);
        let off = (pk.0 + two_torsion).into_affine();
        let off_bytes = crate::encoding::point_to_bytes(&off);
        assert_ne!(off_bytes, bytes);
        assert!(AuditPublicKey::from_bytes(&off_bytes).is_err());
        let identity = crate::encoding::point_to_bytes(&EdwardsAffine::zero());
        assert!(AuditPublicKey::from_bytes(&identity).is_err());
        assert_eq!(AuditPublicKey::from_bytes(&bytes).unwrap(), pk);
        let mut flipped = bytes;
        flipped[0] ^= 1;
        assert_ne!(AuditPublicKey::from_bytes(&flipped).ok(), Some(pk));
    }

    /// The record's one encoding round-trips; `read` refuses an `E` outside the prime-order
    /// subgroup, which `read_proof_bound` leaves to the proof; a non-canonical `c_i` and a short
    /// record are refused by both.
    #[test]
    fn the_record_encoding_round_trips_and_refuses_bad_points_and_elements() {
        let sk = AuditSecretKey::random(&mut OsRng);
        let rec = encrypt(
            &sk.public_key(),
            &plaintext(),
            &AuditEphemeral::random(&mut OsRng),
        );
        let bytes = rec.to_bytes();
        assert_eq!(bytes.len(), AuditRecord::BYTES);
        let read = |b: &[u8]| AuditRecord::read(&mut Reader::new("record", b));
        let bound = |b: &[u8]| AuditRecord::read_proof_bound(&mut Reader::new("record", b));
        assert_eq!(read(&bytes).unwrap(), rec);
        assert_eq!(bound(&bytes).unwrap(), rec);
        let two_torsion = EdwardsAffine::new_unchecked(Zero::zero(), -ark_ed_on_bls12_381::Fq::ONE);
        let mut off = bytes.clone();
        off[..32].copy_from_slice(&point_to_bytes(&(rec.epk + two_torsion).into_affine()));
        assert!(read(&off).is_err());
        assert!(bound(&off).is_ok());
        let mut big = bytes.clone();
        big[32..64].copy_from_slice(&[0xff; 32]);
        assert!(read(&big).is_err());
        assert!(bound(&big).is_err());
        assert!(read(&bytes[..AuditRecord::BYTES - 1]).is_err());
    }

    #[test]
    fn packing_roundtrip_extremes() {
        for p in [
            plaintext(),
            AuditPlaintext {
                values: [Amount(0); 2],
                asset: AssetId(0),
                ..plaintext()
            },
        ] {
            assert_eq!(AuditPlaintext::from_elements(&p.to_elements()).unwrap(), p);
        }
        let mut m = plaintext().to_elements();
        m[3] += Fr::from(2u64).pow([192u64]);
        assert!(AuditPlaintext::from_elements(&m).is_err());
    }
}

/// Auditor-key encodings that passed [`AuditPublicKey::from_bytes`]'s checks.
mod validated_keys {
    use ark_ed_on_bls12_381::EdwardsAffine;
    use std::sync::Mutex;

    /// How many distinct keys are remembered (a network has one auditor key in force, and a
    /// few over its history).
    const KEPT: usize = 4;

    static KEYS: Mutex<Vec<([u8; 32], EdwardsAffine)>> = Mutex::new(Vec::new());

    /// The point of an encoding that was validated before.
    pub(super) fn get(bytes: &[u8]) -> Option<EdwardsAffine> {
        let keys = KEYS.lock().ok()?;
        keys.iter().find(|(k, _)| k[..] == *bytes).map(|(_, p)| *p)
    }

    /// Remembers a validated encoding, forgetting the oldest beyond [`KEPT`].
    pub(super) fn put(bytes: &[u8], point: EdwardsAffine) {
        let Ok(key) = <[u8; 32]>::try_from(bytes) else {
            return;
        };
        if let Ok(mut keys) = KEYS.lock() {
            if keys.iter().all(|(k, _)| *k != key) {
                if keys.len() >= KEPT {
                    let _ = keys.remove(0);
                }
                keys.push((key, point));
            }
        }
    }
}
