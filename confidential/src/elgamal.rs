//! Twisted ElGamal ciphertexts: a balance under one key, and a transferred amount as four limbs
//! each with three decrypt handles.

use crate::dlog;
use crate::keys::{PublicKey, SecretKey};
use crate::{g, h, Error, LIMBS};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use std::ops::{Add, Sub};

/// A ciphertext under one key: `C = v·G + r·H`, `D = r·P`. Adding and subtracting ciphertexts
/// under the same key adds and subtracts the values they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    /// The Pedersen commitment `v·G + r·H`.
    pub commitment: RistrettoPoint,
    /// The decrypt handle `r·P`.
    pub handle: RistrettoPoint,
}

/// Encoded length of a [`Ciphertext`].
pub const CIPHERTEXT_BYTES: usize = 64;

impl Ciphertext {
    /// The ciphertext of zero with no randomness: what a new account holds.
    pub fn zero() -> Self {
        Self {
            commitment: RistrettoPoint::identity(),
            handle: RistrettoPoint::identity(),
        }
    }

    /// A public amount as a ciphertext with randomness zero (`v·G`, identity): what the ledger
    /// adds for a mint or an unshield and subtracts for a public withdrawal.
    pub fn public(value: u64) -> Self {
        Self {
            commitment: Scalar::from(value) * g(),
            handle: RistrettoPoint::identity(),
        }
    }

    /// Encrypts `value` to `key` with randomness `r`.
    pub fn encrypt_with(key: &PublicKey, value: u64, r: &Scalar) -> Self {
        Self {
            commitment: Scalar::from(value) * g() + r * h(),
            handle: r * key.point(),
        }
    }

    /// `v·G = C − s·D`: the value as a point. Recovering `v` itself needs it small (a limb) or
    /// known (the owner's own bookkeeping, checked with [`Ciphertext::holds`]).
    pub fn decrypt_point(&self, key: &SecretKey) -> RistrettoPoint {
        self.commitment - key.scalar() * self.handle
    }

    /// Whether this ciphertext holds `value` under `key`.
    pub fn holds(&self, key: &SecretKey, value: u64) -> bool {
        self.decrypt_point(key) == Scalar::from(value) * g()
    }

    /// The 64-byte encoding: compressed `C` then `D`.
    pub fn to_bytes(&self) -> [u8; CIPHERTEXT_BYTES] {
        let mut out = [0u8; CIPHERTEXT_BYTES];
        out[..32].copy_from_slice(self.commitment.compress().as_bytes());
        out[32..].copy_from_slice(self.handle.compress().as_bytes());
        out
    }

    /// Decodes a ciphertext; either point may be the identity.
    pub fn from_bytes(bytes: &[u8; CIPHERTEXT_BYTES]) -> Result<Self, Error> {
        Ok(Self {
            commitment: point(&bytes[..32], "ciphertext commitment")?,
            handle: point(&bytes[32..], "ciphertext handle")?,
        })
    }
}

impl Add for Ciphertext {
    type Output = Ciphertext;
    fn add(self, o: Ciphertext) -> Ciphertext {
        Ciphertext {
            commitment: self.commitment + o.commitment,
            handle: self.handle + o.handle,
        }
    }
}

impl Sub for Ciphertext {
    type Output = Ciphertext;
    fn sub(self, o: Ciphertext) -> Ciphertext {
        Ciphertext {
            commitment: self.commitment - o.commitment,
            handle: self.handle - o.handle,
        }
    }
}

pub(crate) fn point(bytes: &[u8], what: &'static str) -> Result<RistrettoPoint, Error> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::Malformed(what))?;
    CompressedRistretto(arr)
        .decompress()
        .ok_or(Error::Malformed(what))
}

pub(crate) fn scalar(bytes: &[u8], what: &'static str) -> Result<Scalar, Error> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::Malformed(what))?;
    Option::from(Scalar::from_canonical_bytes(arr)).ok_or(Error::Malformed(what))
}

/// Who a decrypt handle is for. The discriminant is the handle's index in a limb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The paying account: its new balance is computed with these handles.
    Sender = 0,
    /// The paid account: credited with these handles.
    Receiver = 1,
    /// The designated auditor.
    Auditor = 2,
}

impl Role {
    /// The three roles in handle order.
    pub const ALL: [Role; 3] = [Role::Sender, Role::Receiver, Role::Auditor];
}

/// One 16-bit limb `a` of an amount, encrypted once: `C = a·G + r·H` and a handle `r·P` for
/// each [`Role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limb {
    /// `a·G + r·H`.
    pub commitment: RistrettoPoint,
    /// `r·P_sender`, `r·P_receiver`, `r·P_auditor`.
    pub handles: [RistrettoPoint; 3],
    pub(crate) compressed: [CompressedRistretto; 4],
}

impl Limb {
    fn new(commitment: RistrettoPoint, handles: [RistrettoPoint; 3]) -> Self {
        let compressed = [
            commitment.compress(),
            handles[0].compress(),
            handles[1].compress(),
            handles[2].compress(),
        ];
        Self {
            commitment,
            handles,
            compressed,
        }
    }

    /// The ciphertext of this limb for one role.
    pub fn for_role(&self, role: Role) -> Ciphertext {
        Ciphertext {
            commitment: self.commitment,
            handle: self.handles[role as usize],
        }
    }
}

/// `Σ 2^(16·i)·points[i]` (the limb weights), by Horner's rule: 48 doublings and three
/// additions. A multiscalar multiplication walks all 256 bits of its scalars whatever their
/// size, and took twice as long (28.8 against 13.8 µs on the benchmark machine).
fn limb_sum(points: [RistrettoPoint; LIMBS]) -> RistrettoPoint {
    let mut acc = points[LIMBS - 1];
    for p in points[..LIMBS - 1].iter().rev() {
        for _ in 0..crate::LIMB_BITS {
            acc = acc + acc;
        }
        acc += p;
    }
    acc
}

/// An amount encrypted for sender, receiver and auditor: four [`Limb`]s, least significant
/// first. 512 bytes encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmountCiphertext {
    /// The limbs, weight `2^(16·i)` for limb `i`.
    pub limbs: [Limb; LIMBS],
}

/// Encoded length of an [`AmountCiphertext`].
pub const AMOUNT_CIPHERTEXT_BYTES: usize = LIMBS * 4 * 32;

/// The limb values and randomness behind an [`AmountCiphertext`], known to its sender.
pub(crate) struct AmountOpening {
    pub(crate) limbs: [Scalar; LIMBS],
    pub(crate) randomness: [Scalar; LIMBS],
}

impl AmountCiphertext {
    /// Encrypts `value` for the three keys (in [`Role`] order) with fresh randomness per limb.
    #[cfg(test)]
    pub(crate) fn encrypt(
        keys: [&PublicKey; 3],
        value: u64,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> (Self, AmountOpening) {
        Self::encrypt_limbs(keys, crate::limbs_of(value).map(Scalar::from), rng)
    }

    /// Encrypts limbs given as scalars (a test forges out-of-range limbs with this).
    pub(crate) fn encrypt_limbs(
        keys: [&PublicKey; 3],
        limbs: [Scalar; LIMBS],
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> (Self, AmountOpening) {
        let randomness: [Scalar; LIMBS] = std::array::from_fn(|_| Scalar::random(rng));
        let ct = AmountCiphertext {
            limbs: std::array::from_fn(|i| {
                let r = randomness[i];
                Limb::new(
                    limbs[i] * g() + r * h(),
                    std::array::from_fn(|j| r * keys[j].point()),
                )
            }),
        };
        (ct, AmountOpening { limbs, randomness })
    }

    /// The whole amount as one ciphertext under one role's key: `Σ 2^(16·i)·limb_i`. This is
    /// what the ledger subtracts from the sender (`Sender`) and credits to the receiver
    /// (`Receiver`).
    pub fn for_role(&self, role: Role) -> Ciphertext {
        Ciphertext {
            commitment: limb_sum(self.limbs.map(|l| l.commitment)),
            handle: limb_sum(self.limbs.map(|l| l.handles[role as usize])),
        }
    }

    /// Decrypts the amount with the key of `role`: four table lookups. Fails with
    /// [`Error::Undecryptable`] when the key is not the one the amount was encrypted to.
    pub fn decrypt(&self, role: Role, key: &SecretKey) -> Result<u64, Error> {
        let mut value = 0u64;
        for (i, limb) in self.limbs.iter().enumerate() {
            let a =
                dlog::small(&limb.for_role(role).decrypt_point(key)).ok_or(Error::Undecryptable)?;
            value |= u64::from(a) << (crate::LIMB_BITS * i);
        }
        Ok(value)
    }

    /// The 512-byte encoding: per limb, `C` then the three handles.
    pub fn to_bytes(&self) -> [u8; AMOUNT_CIPHERTEXT_BYTES] {
        let mut out = [0u8; AMOUNT_CIPHERTEXT_BYTES];
        for (i, limb) in self.limbs.iter().enumerate() {
            for (j, c) in limb.compressed.iter().enumerate() {
                let at = (i * 4 + j) * 32;
                out[at..at + 32].copy_from_slice(c.as_bytes());
            }
        }
        out
    }

    /// Decodes an amount ciphertext. Every point must be a canonical Ristretto encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != AMOUNT_CIPHERTEXT_BYTES {
            return Err(Error::Malformed("amount ciphertext length"));
        }
        // Decoding is strict (a point has one encoding), so the bytes read are the points'
        // compressed forms: kept as they are, not compressed again.
        let limb = |i: usize| -> Result<Limb, Error> {
            let at = |j: usize| &bytes[(i * 4 + j) * 32..(i * 4 + j + 1) * 32];
            let words: [CompressedRistretto; 4] = std::array::from_fn(|j| {
                let mut w = [0u8; 32];
                w.copy_from_slice(at(j));
                CompressedRistretto(w)
            });
            Ok(Limb {
                commitment: point(at(0), "amount commitment")?,
                handles: [
                    point(at(1), "amount handle")?,
                    point(at(2), "amount handle")?,
                    point(at(3), "amount handle")?,
                ],
                compressed: words,
            })
        };
        Ok(Self {
            limbs: [limb(0)?, limb(1)?, limb(2)?, limb(3)?],
        })
    }

    pub(crate) fn absorb(&self, t: &mut merlin::Transcript) {
        for limb in &self.limbs {
            t.append_message(b"amount-commitment", limb.compressed[0].as_bytes());
            for c in &limb.compressed[1..] {
                t.append_message(b"amount-handle", c.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn each_role_decrypts_the_whole_u64_and_no_other_key_does() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::random(&mut rng)).collect();
        let pubs = [&keys[0].public(), &keys[1].public(), &keys[2].public()];
        for value in [0, 1, 0xffff, 0x1_0000, 0xdead_beef_cafe_f00d, u64::MAX] {
            let (ct, _) = AmountCiphertext::encrypt(pubs, value, &mut rng);
            for role in Role::ALL {
                assert_eq!(ct.decrypt(role, &keys[role as usize]), Ok(value));
                assert!(ct.for_role(role).holds(&keys[role as usize], value));
            }
            if value != 0 {
                let stranger = SecretKey::random(&mut rng);
                assert_eq!(
                    ct.decrypt(Role::Receiver, &stranger),
                    Err(Error::Undecryptable)
                );
            }
            let bytes = ct.to_bytes();
            assert_eq!(AmountCiphertext::from_bytes(&bytes), Ok(ct));
        }
    }

    #[test]
    fn limb_sum_is_the_weighted_sum() {
        use crate::limb_weights;
        use curve25519_dalek::traits::VartimeMultiscalarMul;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        for _ in 0..4 {
            let points: [RistrettoPoint; LIMBS] =
                std::array::from_fn(|_| RistrettoPoint::random(&mut rng));
            let by_msm = RistrettoPoint::vartime_multiscalar_mul(limb_weights().iter(), &points);
            assert_eq!(limb_sum(points), by_msm);
            // Each limb's weight matters: swapping two limbs changes the sum.
            let mut swapped = points;
            swapped.swap(0, 1);
            assert_ne!(limb_sum(swapped), by_msm);
        }
    }

    #[test]
    fn ciphertexts_add_and_subtract_values() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let k = SecretKey::random(&mut rng);
        let a = Ciphertext::encrypt_with(&k.public(), 500, &Scalar::random(&mut rng));
        let b = Ciphertext::encrypt_with(&k.public(), 200, &Scalar::random(&mut rng));
        assert!((a - b).holds(&k, 300));
        assert!((a + b + Ciphertext::public(5)).holds(&k, 705));
        assert!(!(a - b).holds(&k, 301));
        assert_eq!(Ciphertext::from_bytes(&a.to_bytes()), Ok(a));
    }

    #[test]
    fn decoders_refuse_bad_points_and_lengths() {
        assert!(AmountCiphertext::from_bytes(&[0u8; 10]).is_err());
        assert!(AmountCiphertext::from_bytes(&[0xffu8; AMOUNT_CIPHERTEXT_BYTES]).is_err());
        assert!(Ciphertext::from_bytes(&[0xffu8; 64]).is_err());
    }
}
