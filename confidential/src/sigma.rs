//! The sigma protocols the proofs are built from, each made non-interactive in the caller's
//! transcript: the prover appends its commitments `Y`, draws the challenge `c`, and appends its
//! responses `z`; the verifier replays the same and adds the protocol's relations to a
//! [`BatchVerifier`].
//!
//! Nonces come from merlin's transcript RNG, rekeyed with the witness and finalized with the
//! caller's RNG, so a weak RNG alone does not leak a key.

use crate::batch::{Base, BatchVerifier};
use crate::elgamal::{point, scalar, Ciphertext};
use crate::keys::{PublicKey, SecretKey};
use crate::{g, h, Error, LIMBS};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;

pub(crate) fn challenge(t: &mut Transcript, label: &'static [u8]) -> Scalar {
    let mut buf = [0u8; 64];
    t.challenge_bytes(label, &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

/// Nonces for one protocol run, bound to the transcript so far and the witness.
fn nonces<const K: usize>(
    t: &Transcript,
    witness: &[Scalar],
    rng: &mut impl rand_core::CryptoRngCore,
) -> [Scalar; K] {
    let mut b = t.build_rng();
    for w in witness {
        b = b.rekey_with_witness_bytes(b"witness", w.as_bytes());
    }
    let mut trng = b.finalize(rng);
    std::array::from_fn(|_| Scalar::random(&mut trng))
}

/// Reads a proof's fixed-size words in order.
pub(crate) struct Words<'a> {
    bytes: &'a [u8],
}

impl<'a> Words<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.bytes.len() < len {
            return Err(Error::Malformed(what));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn point(&mut self, what: &'static str) -> Result<Point, Error> {
        let b = self.take(32, what)?;
        Ok(Point {
            c: CompressedRistretto(b.try_into().map_err(|_| Error::Malformed(what))?),
            p: point(b, what)?,
        })
    }

    pub(crate) fn scalar(&mut self, what: &'static str) -> Result<Scalar, Error> {
        scalar(self.take(32, what)?, what)
    }

    pub(crate) fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
        self.take(len, what)
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed("trailing bytes"))
        }
    }
}

/// A point as sent (compressed) and as used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) c: CompressedRistretto,
    pub(crate) p: RistrettoPoint,
}

impl Point {
    pub(crate) fn new(p: RistrettoPoint) -> Self {
        Self { c: p.compress(), p }
    }

    pub(crate) fn append(&self, t: &mut Transcript, label: &'static [u8]) {
        t.append_message(label, self.c.as_bytes());
    }
}

pub(crate) fn append_scalars(t: &mut Transcript, label: &'static [u8], zs: &[Scalar]) {
    for z in zs {
        t.append_message(label, z.as_bytes());
    }
}

pub(crate) fn append_point(t: &mut Transcript, label: &'static [u8], p: &RistrettoPoint) {
    t.append_message(label, p.compress().as_bytes());
}

/// Knowledge of the secret key: `s·P = H` (a Schnorr proof). 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyProof {
    y: Point,
    z: Scalar,
}

impl KeyProof {
    pub(crate) const BYTES: usize = 64;

    pub(crate) fn prove(
        t: &mut Transcript,
        key: &SecretKey,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Self {
        let [k] = nonces::<1>(t, &[*key.scalar()], rng);
        let y = Point::new(k * key.public().point());
        y.append(t, b"key-Y");
        let c = challenge(t, b"key-c");
        let z = k + c * key.scalar();
        append_scalars(t, b"key-z", &[z]);
        Self { y, z }
    }

    pub(crate) fn verify(
        &self,
        t: &mut Transcript,
        pk: &PublicKey,
        bv: &mut BatchVerifier,
    ) -> Result<(), Error> {
        self.y.append(t, b"key-Y");
        let c = challenge(t, b"key-c");
        append_scalars(t, b"key-z", &[self.z]);
        bv.relation([
            (self.z, Base::P(*pk.point())),
            (-Scalar::ONE, Base::P(self.y.p)),
            (-c, Base::H),
        ]);
        Ok(())
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.y.c.as_bytes());
        out.extend_from_slice(self.z.as_bytes());
    }

    pub(crate) fn read(w: &mut Words<'_>) -> Result<Self, Error> {
        Ok(Self {
            y: w.point("key proof")?,
            z: w.scalar("key proof")?,
        })
    }
}

/// Validity of an amount's limbs: for every limb `i`, the prover knows `(aᵢ, rᵢ)` with
/// `Cᵢ = aᵢ·G + rᵢ·H` and each handle `Dᵢⱼ = rᵢ·Pⱼ`. The limbs are folded with powers of a
/// challenge `b` into one statement. 192 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Validity {
    y_c: Point,
    y_d: [Point; 3],
    z_a: Scalar,
    z_r: Scalar,
}

impl Validity {
    pub(crate) const BYTES: usize = 6 * 32;

    pub(crate) fn prove(
        t: &mut Transcript,
        keys: [&PublicKey; 3],
        limbs: &[Scalar; LIMBS],
        randomness: &[Scalar; LIMBS],
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Self {
        let b = challenge(t, b"validity-b");
        let powers = powers(b);
        let a: Scalar = (0..LIMBS).map(|i| powers[i] * limbs[i]).sum();
        let r: Scalar = (0..LIMBS).map(|i| powers[i] * randomness[i]).sum();
        let [ka, kr] = nonces::<2>(t, &[a, r], rng);
        let y_c = Point::new(ka * g() + kr * h());
        let y_d = keys.map(|pk| Point::new(kr * pk.point()));
        y_c.append(t, b"validity-Y");
        for y in &y_d {
            y.append(t, b"validity-Y");
        }
        let c = challenge(t, b"validity-c");
        let (z_a, z_r) = (ka + c * a, kr + c * r);
        append_scalars(t, b"validity-z", &[z_a, z_r]);
        Self { y_c, y_d, z_a, z_r }
    }

    pub(crate) fn verify(
        &self,
        t: &mut Transcript,
        keys: [&PublicKey; 3],
        amount: &crate::AmountCiphertext,
        bv: &mut BatchVerifier,
    ) -> Result<(), Error> {
        let b = challenge(t, b"validity-b");
        let powers = powers(b);
        self.y_c.append(t, b"validity-Y");
        for y in &self.y_d {
            y.append(t, b"validity-Y");
        }
        let c = challenge(t, b"validity-c");
        append_scalars(t, b"validity-z", &[self.z_a, self.z_r]);
        bv.relation(
            [
                (self.z_a, Base::G),
                (self.z_r, Base::H),
                (-Scalar::ONE, Base::P(self.y_c.p)),
            ]
            .into_iter()
            .chain((0..LIMBS).map(|i| (-c * powers[i], Base::P(amount.limbs[i].commitment)))),
        );
        for (j, pk) in keys.iter().enumerate() {
            bv.relation(
                [
                    (self.z_r, Base::P(*pk.point())),
                    (-Scalar::ONE, Base::P(self.y_d[j].p)),
                ]
                .into_iter()
                .chain((0..LIMBS).map(|i| (-c * powers[i], Base::P(amount.limbs[i].handles[j])))),
            );
        }
        Ok(())
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.y_c.c.as_bytes());
        for y in &self.y_d {
            out.extend_from_slice(y.c.as_bytes());
        }
        out.extend_from_slice(self.z_a.as_bytes());
        out.extend_from_slice(self.z_r.as_bytes());
    }

    pub(crate) fn read(w: &mut Words<'_>) -> Result<Self, Error> {
        Ok(Self {
            y_c: w.point("validity proof")?,
            y_d: [
                w.point("validity proof")?,
                w.point("validity proof")?,
                w.point("validity proof")?,
            ],
            z_a: w.scalar("validity proof")?,
            z_r: w.scalar("validity proof")?,
        })
    }
}

/// `1, b, b², b³`: the weights that fold the limbs into one statement.
pub(crate) fn powers(b: Scalar) -> [Scalar; LIMBS] {
    let mut out = [Scalar::ONE; LIMBS];
    for i in 1..LIMBS {
        out[i] = out[i - 1] * b;
    }
    out
}

/// Equality of a ciphertext and a commitment, by the key's owner: the prover knows `s`, `x`,
/// `r'` with `s·P = H`, `C − s·D = x·G` for the ciphertext `(C, D)`, and `C' = x·G + r'·H`.
/// Proving knowledge of `s` is also the account owner's authorization of the transcript.
/// 192 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Equality {
    y: [Point; 3],
    z_s: Scalar,
    z_x: Scalar,
    z_r: Scalar,
}

impl Equality {
    pub(crate) const BYTES: usize = 6 * 32;

    pub(crate) fn prove(
        t: &mut Transcript,
        key: &SecretKey,
        ciphertext: &Ciphertext,
        x: Scalar,
        r: &Scalar,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Self {
        let s = *key.scalar();
        let [ks, kx, kr] = nonces::<3>(t, &[s, x, *r], rng);
        let y = [
            Point::new(ks * key.public().point()),
            Point::new(kx * g() + ks * ciphertext.handle),
            Point::new(kx * g() + kr * h()),
        ];
        for p in &y {
            p.append(t, b"equality-Y");
        }
        let c = challenge(t, b"equality-c");
        let (z_s, z_x, z_r) = (ks + c * s, kx + c * x, kr + c * r);
        append_scalars(t, b"equality-z", &[z_s, z_x, z_r]);
        Self { y, z_s, z_x, z_r }
    }

    pub(crate) fn verify(
        &self,
        t: &mut Transcript,
        pk: &PublicKey,
        ciphertext: &Ciphertext,
        commitment: impl IntoIterator<Item = (Scalar, RistrettoPoint)>,
        bv: &mut BatchVerifier,
    ) -> Result<(), Error> {
        for p in &self.y {
            p.append(t, b"equality-Y");
        }
        let c = challenge(t, b"equality-c");
        append_scalars(t, b"equality-z", &[self.z_s, self.z_x, self.z_r]);
        bv.relation([
            (self.z_s, Base::P(*pk.point())),
            (-Scalar::ONE, Base::P(self.y[0].p)),
            (-c, Base::H),
        ]);
        bv.relation([
            (self.z_x, Base::G),
            (self.z_s, Base::P(ciphertext.handle)),
            (-Scalar::ONE, Base::P(self.y[1].p)),
            (-c, Base::P(ciphertext.commitment)),
        ]);
        bv.relation(
            [
                (self.z_x, Base::G),
                (self.z_r, Base::H),
                (-Scalar::ONE, Base::P(self.y[2].p)),
            ]
            .into_iter()
            .chain(commitment.into_iter().map(|(s, p)| (-c * s, Base::P(p)))),
        );
        Ok(())
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        for p in &self.y {
            out.extend_from_slice(p.c.as_bytes());
        }
        for z in [self.z_s, self.z_x, self.z_r] {
            out.extend_from_slice(z.as_bytes());
        }
    }

    pub(crate) fn read(w: &mut Words<'_>) -> Result<Self, Error> {
        Ok(Self {
            y: [
                w.point("equality proof")?,
                w.point("equality proof")?,
                w.point("equality proof")?,
            ],
            z_s: w.scalar("equality proof")?,
            z_x: w.scalar("equality proof")?,
            z_r: w.scalar("equality proof")?,
        })
    }
}

/// A new balance `x` split into four 16-bit limbs committed as `Bⱼ = xⱼ·G + tⱼ·H`: the
/// commitment `C' = Σ 2^(16·j)·Bⱼ` that an [`Equality`] ties to the balance ciphertext, and whose
/// limbs a range proof shows to be 16-bit, so `0 ≤ x < 2⁶⁴`.
pub(crate) struct BalanceLimbs {
    pub(crate) points: [Point; LIMBS],
    pub(crate) values: [Scalar; LIMBS],
    pub(crate) blindings: [Scalar; LIMBS],
}

impl BalanceLimbs {
    /// Commits to limbs given as scalars (honest provers pass the limbs of a `u64`).
    pub(crate) fn commit(values: [Scalar; LIMBS], rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let blindings: [Scalar; LIMBS] = std::array::from_fn(|_| Scalar::random(rng));
        Self {
            points: std::array::from_fn(|j| Point::new(values[j] * g() + blindings[j] * h())),
            values,
            blindings,
        }
    }

    /// `x = Σ 2^(16·j)·xⱼ`, the committed value.
    pub(crate) fn value(&self) -> Scalar {
        let w = crate::limb_weights();
        (0..LIMBS).map(|j| w[j] * self.values[j]).sum()
    }

    /// `r' = Σ 2^(16·j)·tⱼ`, the blinding of `C'`.
    pub(crate) fn blinding(&self) -> Scalar {
        let w = crate::limb_weights();
        (0..LIMBS).map(|j| w[j] * self.blindings[j]).sum()
    }
}

/// `C'` as terms `(2^(16·j), Bⱼ)`.
pub(crate) fn weighted(points: &[Point; LIMBS]) -> [(Scalar, RistrettoPoint); LIMBS] {
    let w = crate::limb_weights();
    std::array::from_fn(|j| (w[j], points[j].p))
}

pub(crate) fn read_limbs(w: &mut Words<'_>) -> Result<[Point; LIMBS], Error> {
    Ok([
        w.point("balance limb")?,
        w.point("balance limb")?,
        w.point("balance limb")?,
        w.point("balance limb")?,
    ])
}

pub(crate) fn absorb_ciphertext(t: &mut Transcript, label: &'static [u8], ct: &Ciphertext) {
    append_point(t, label, &ct.commitment);
    append_point(t, label, &ct.handle);
}

/// The low 16 bits of a scalar: what an honest limb is, and what a forging test hands the range
/// prover for a limb that is not 16-bit.
pub(crate) fn low_bits(s: &Scalar) -> u64 {
    u64::from(u16::from_le_bytes([s.as_bytes()[0], s.as_bytes()[1]]))
}
