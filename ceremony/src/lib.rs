//! The multi-party setup of Shoji's Groth16 parameters, after Bowe, Gabizon and Miers,
//! "Scalable Multi-party Computation for zk-SNARK Parameters in the Random Beacon Model"
//! (2017), the construction Zcash's Sapling parameters came from.
//!
//! - **Phase 1** ([`phase1`]) builds powers of a secret τ, and α·τⁱ, β·τⁱ, in both groups of
//!   BLS12-381. It serves any circuit up to its size.
//! - **Phase 2** ([`phase2`]) turns phase 1 into the keys of one circuit, then multiplies δ
//!   into them.
//!
//! Each contributor multiplies fresh secrets into the parameters and publishes a proof that it
//! knows them ([`KnowledgeProof`]), bound to the transcript so far. Anyone can verify the whole
//! transcript. The result is sound if one contributor destroyed its secrets: no one knows the
//! final τ, α, β or δ, so no one can simulate a proof.
//!
//! Transcripts are files with a versioned header ([`FILE_MAGIC`]); points are stored
//! uncompressed and checked on reading to be on the curve and in the prime-order subgroup.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod phase1;
pub mod phase2;

use ark_bls12_381::{Bls12_381, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_std::UniformRand;
use rand_chacha::rand_core::SeedableRng;
use std::io::{Read, Write};

/// The first bytes of every transcript file.
pub const FILE_MAGIC: &[u8; 14] = b"SHOJI-CEREMONY";
/// The transcript format version this build writes and reads.
pub const FILE_VERSION: u8 = 1;

/// What went wrong with a transcript or a contribution.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// The file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a transcript of the expected kind.
    #[error("not a {expected} transcript")]
    NotTranscript {
        /// What was expected ("phase-1", "phase-2").
        expected: &'static str,
    },
    /// A transcript of another format version.
    #[error("transcript format version {found}; this build reads version {FILE_VERSION}")]
    Version {
        /// The file's version.
        found: u8,
    },
    /// The bytes do not decode.
    #[error("malformed transcript: {0}")]
    Malformed(String),
    /// A contribution that does not verify: named by its position (from 1) and hash.
    #[error("contribution {index} ({hash}) is invalid: {reason}")]
    BadContribution {
        /// Its position in the transcript, from 1.
        index: usize,
        /// Its hash, as its contributor published it.
        hash: String,
        /// What failed.
        reason: String,
    },
    /// The parameters do not match the contributions, or are not consistent powers.
    #[error("the parameters are inconsistent: {0}")]
    Inconsistent(String),
    /// The circuit could not be synthesized, or does not fit.
    #[error("circuit: {0}")]
    Circuit(String),
    /// A phase-2 transcript started from another phase-1 transcript.
    #[error(
        "this phase-2 transcript was started from phase-1 transcript {found}, not from {expected}"
    )]
    WrongPhase1 {
        /// The phase-1 hash the transcript names.
        found: String,
        /// The hash of the phase-1 transcript given.
        expected: String,
    },
    /// A phase-2 transcript of another circuit.
    #[error("this phase-2 transcript is for circuit {found}, not for {expected}")]
    WrongCircuit {
        /// The circuit hash the transcript names.
        found: String,
        /// The hash of the circuit given.
        expected: String,
    },
}

/// Lower-case hex of a hash.
pub fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Proof that a contributor knows the `x` it multiplied into the parameters: a random
/// `s = r·G₁` of its choosing, `s·x`, and `x·R` for a point `R` of G₂ drawn from the transcript
/// hash before the contribution and from `s`, `s·x` ([`KnowledgeProof::challenge`]). It
/// cannot be made without `x` (knowledge-of-exponent), and it cannot be copied from another
/// transcript or another position, since `R` changes with them. A verifier then checks the
/// contribution's effect with `R` and `x·R`: the parameters' element after is `x` times the one
/// before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, CanonicalSerialize, CanonicalDeserialize)]
pub struct KnowledgeProof {
    /// `s`, a point of G₁ with a discrete logarithm only the contributor could know.
    pub s: G1Affine,
    /// `s·x`.
    pub s_x: G1Affine,
    /// `x·R`, `R` the challenge point.
    pub r_x: G2Affine,
}

impl KnowledgeProof {
    /// Proves knowledge of `x` for the transcript hash `digest` and the secret's role `label`.
    pub fn new<R: rand_core::RngCore + rand_core::CryptoRng>(
        x: &Fr,
        digest: &[u8; 32],
        label: &[u8],
        rng: &mut R,
    ) -> Self {
        let s = G1Projective::rand(rng).into_affine();
        let s_x = (s * x).into_affine();
        let r = Self::challenge(digest, label, &s, &s_x);
        KnowledgeProof {
            s,
            s_x,
            r_x: (r * x).into_affine(),
        }
    }

    /// The challenge point `R` of G₂: a point with no known discrete logarithm, drawn by a
    /// ChaCha20 generator seeded with blake3 (derived key "shoji ceremony challenge v1") of the
    /// transcript hash, the role label and `s`, `s·x` (uncompressed).
    pub fn challenge(digest: &[u8; 32], label: &[u8], s: &G1Affine, s_x: &G1Affine) -> G2Affine {
        let mut h = blake3::Hasher::new_derive_key("shoji ceremony challenge v1");
        h.update(digest);
        h.update(&(label.len() as u64).to_le_bytes());
        h.update(label);
        for p in [s, s_x] {
            let mut bytes = Vec::with_capacity(96);
            p.serialize_uncompressed(&mut bytes)
                .expect("writing to a Vec cannot fail");
            h.update(&bytes);
        }
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(*h.finalize().as_bytes());
        G2Projective::rand(&mut rng).into_affine()
    }

    /// Checks the proof for `digest` and `label`: `s` and `s·x` are not the identity and
    /// `e(s, x·R) = e(s·x, R)`. Returns `(R, x·R)`, with which the caller checks the
    /// contribution's effect ([`same_ratio`]).
    pub fn verify(&self, digest: &[u8; 32], label: &[u8]) -> Result<(G2Affine, G2Affine), String> {
        if self.s.is_zero() || self.s_x.is_zero() || self.r_x.is_zero() {
            return Err("a proof of knowledge with the identity point".into());
        }
        let r = Self::challenge(digest, label, &self.s, &self.s_x);
        if !same_ratio((self.s, self.s_x), (r, self.r_x)) {
            return Err("the proof of knowledge does not verify".into());
        }
        Ok((r, self.r_x))
    }
}

/// The hash after a contribution: blake3 (derived key `context`) of the hash before it and
/// the contribution's record (uncompressed).
fn chain_step<C: CanonicalSerialize>(context: &str, before: &[u8; 32], c: &C) -> [u8; 32] {
    let mut bytes = Vec::new();
    c.serialize_uncompressed(&mut bytes)
        .expect("writing to a Vec cannot fail");
    let mut h = blake3::Hasher::new_derive_key(context);
    h.update(before);
    h.update(&bytes);
    *h.finalize().as_bytes()
}

/// The hash after each of `contributions`, from `start`, oldest first ([`chain_step`]).
fn chain<C: CanonicalSerialize>(
    context: &str,
    start: [u8; 32],
    contributions: &[C],
) -> Vec<[u8; 32]> {
    let mut h = start;
    contributions
        .iter()
        .map(|c| {
            h = chain_step(context, &h, c);
            h
        })
        .collect()
}

/// Whether `g1.1 / g1.0 = g2.1 / g2.0` in the exponent: `e(g1.0, g2.1) = e(g1.1, g2.0)`.
pub fn same_ratio(g1: (G1Affine, G1Affine), g2: (G2Affine, G2Affine)) -> bool {
    Bls12_381::pairing(g1.0, g2.1) == Bls12_381::pairing(g1.1, g2.0)
}

/// A random linear combination of `points[..n-1]` and of `points[1..]` with the same
/// coefficients: if the points are consecutive powers `x^i·P`, the second is `x` times the
/// first, and otherwise it is not, except with probability about `n / r`.
fn consecutive<G: CurveGroup<ScalarField = Fr>>(
    points: &[G::Affine],
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> (G::Affine, G::Affine) {
    let n = points.len().saturating_sub(1);
    let coeffs: Vec<Fr> = (0..n).map(|_| Fr::rand(rng)).collect();
    let a = G::msm(&points[..n], &coeffs).unwrap_or_else(|_| G::zero());
    let b = G::msm(&points[1..=n], &coeffs).unwrap_or_else(|_| G::zero());
    (a.into_affine(), b.into_affine())
}

/// The random generator a contributor's secrets come from: ChaCha20 seeded with blake3
/// (derived key "shoji ceremony entropy v1") of 64 bytes from the operating system and the
/// contributor's own entropy, if any. Either source alone is enough.
pub fn contribution_rng(user_entropy: &[u8]) -> rand_chacha::ChaCha20Rng {
    let mut os = zeroize::Zeroizing::new([0u8; 64]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut os[..]);
    let mut h = blake3::Hasher::new_derive_key("shoji ceremony entropy v1");
    h.update(&os[..]);
    h.update(user_entropy);
    let seed = zeroize::Zeroizing::new(*h.finalize().as_bytes());
    rand_chacha::ChaCha20Rng::from_seed(*seed)
}

/// A nonzero random scalar.
fn nonzero_scalar(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Fr {
    loop {
        let x = Fr::rand(rng);
        if x != Fr::from(0u64) {
            return x;
        }
    }
}

/// Writes the file header: magic, version, kind.
fn write_header(w: &mut impl Write, kind: u8) -> Result<(), CeremonyError> {
    w.write_all(FILE_MAGIC)?;
    w.write_all(&[FILE_VERSION, kind])?;
    Ok(())
}

/// Reads and checks the file header.
fn read_header(r: &mut impl Read, kind: u8, expected: &'static str) -> Result<(), CeremonyError> {
    let mut head = [0u8; 16];
    r.read_exact(&mut head)
        .map_err(|_| CeremonyError::NotTranscript { expected })?;
    if &head[..14] != FILE_MAGIC || head[15] != kind {
        return Err(CeremonyError::NotTranscript { expected });
    }
    if head[14] != FILE_VERSION {
        return Err(CeremonyError::Version { found: head[14] });
    }
    Ok(())
}

fn write_u64(w: &mut impl Write, x: u64) -> Result<(), CeremonyError> {
    w.write_all(&x.to_le_bytes())?;
    Ok(())
}

fn read_u64(r: &mut impl Read) -> Result<u64, CeremonyError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)
        .map_err(|e| CeremonyError::Malformed(e.to_string()))?;
    Ok(u64::from_le_bytes(b))
}

fn write_item<T: CanonicalSerialize>(w: &mut impl Write, x: &T) -> Result<(), CeremonyError> {
    x.serialize_uncompressed(w)
        .map_err(|e| CeremonyError::Malformed(e.to_string()))
}

/// Reads one item, checking every point is on the curve and in the prime-order subgroup.
fn read_item<T: CanonicalDeserialize>(r: &mut impl Read, what: &str) -> Result<T, CeremonyError> {
    T::deserialize_with_mode(r, Compress::No, Validate::Yes)
        .map_err(|e| CeremonyError::Malformed(format!("{what}: {e}")))
}

/// Writes `points` without a length (the reader knows it).
fn write_points<T: CanonicalSerialize>(
    w: &mut impl Write,
    points: &[T],
) -> Result<(), CeremonyError> {
    for p in points {
        write_item(w, p)?;
    }
    Ok(())
}

/// Reads `n` points, checked as [`read_item`] does, validating in parallel.
fn read_points<T: CanonicalDeserialize + CanonicalSerialize + Default + Send>(
    r: &mut impl Read,
    n: usize,
    what: &str,
) -> Result<Vec<T>, CeremonyError> {
    let size = T::default().uncompressed_size();
    let mut bytes =
        vec![
            0u8;
            n.checked_mul(size)
                .ok_or_else(|| CeremonyError::Malformed(format!("{what}: too many points")))?
        ];
    r.read_exact(&mut bytes)
        .map_err(|e| CeremonyError::Malformed(format!("{what}: {e}")))?;
    decode_points(&bytes, size, Compress::No, what)
}

/// Decodes consecutive points of `size` bytes each, checking every one is on the curve and in
/// the prime-order subgroup, in parallel.
fn decode_points<T: CanonicalDeserialize + Send>(
    bytes: &[u8],
    size: usize,
    compress: Compress,
    what: &str,
) -> Result<Vec<T>, CeremonyError> {
    use rayon::prelude::*;
    bytes
        .par_chunks(size)
        .enumerate()
        .map(|(i, c)| {
            T::deserialize_with_mode(c, compress, Validate::Yes)
                .map_err(|e| CeremonyError::Malformed(format!("{what} {i}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests;
