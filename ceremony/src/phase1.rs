//! Phase 1: powers of tau over BLS12-381.
//!
//! For `N = 2^power` the parameters are, for secrets τ, α, β no one knows:
//! - `τⁱ·G₁` for `i < 2N − 1` (the H query of a circuit of domain `N` needs `2N − 2`),
//! - `τⁱ·G₂`, `α·τⁱ·G₁` and `β·τⁱ·G₁` for `i < N`,
//! - `β·G₂`.
//!
//! A contribution multiplies fresh `τ'`, `α'`, `β'` in (every element by the matching product),
//! records the new `τ·G₁`, `α·G₁`, `β·G₁` and proves knowledge of each multiplier against the
//! previous ones ([`KnowledgeProof`]). The transcript keeps the current parameters and every
//! contribution's record; its hash chains the records ([`Phase1::hash`]). Verification checks
//! each record against the one before it, that the parameters start from the last record,
//! and that they are consistent powers, by random linear combinations and pairings.

use crate::{
    consecutive, nonzero_scalar, read_header, read_item, read_points, read_u64, same_ratio,
    write_header, write_item, write_points, write_u64, CeremonyError, KnowledgeProof,
};
use ark_bls12_381::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::One;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rayon::prelude::*;
use std::io::{Read, Write};

/// The largest phase 1 this build makes or reads: `2^21`, the size of Zcash's public powers of
/// tau ceremony.
pub const MAX_POWER: u32 = 21;

/// Derived-key context of the hash after a contribution.
const CONTRIBUTION: &str = "shoji ceremony phase1 contribution v1";

/// File kind byte of a phase-1 transcript.
const KIND: u8 = 1;

/// Role labels of the three secrets in proofs of knowledge.
const TAU: &[u8] = b"tau";
const ALPHA: &[u8] = b"alpha";
const BETA: &[u8] = b"beta";

/// One contribution: the first elements after it, and proofs of knowledge of the multipliers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, CanonicalSerialize, CanonicalDeserialize)]
pub struct Phase1Contribution {
    /// `τ·G₁` after the contribution.
    pub tau_g1: G1Affine,
    /// `α·G₁` after the contribution.
    pub alpha_g1: G1Affine,
    /// `β·G₁` after the contribution.
    pub beta_g1: G1Affine,
    /// Knowledge of `τ'`.
    pub tau_proof: KnowledgeProof,
    /// Knowledge of `α'`.
    pub alpha_proof: KnowledgeProof,
    /// Knowledge of `β'`.
    pub beta_proof: KnowledgeProof,
}

/// A phase-1 transcript: the current parameters and every contribution so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase1 {
    /// `log₂ N`.
    pub power: u32,
    /// `τⁱ·G₁`, `i < 2N − 1`.
    pub tau_g1: Vec<G1Affine>,
    /// `τⁱ·G₂`, `i < N`.
    pub tau_g2: Vec<G2Affine>,
    /// `α·τⁱ·G₁`, `i < N`.
    pub alpha_tau_g1: Vec<G1Affine>,
    /// `β·τⁱ·G₁`, `i < N`.
    pub beta_tau_g1: Vec<G1Affine>,
    /// `β·G₂`.
    pub beta_g2: G2Affine,
    /// Where the transcript started when it did not start from the generators: parameters
    /// imported from another ceremony ([`Phase1::import_zcash`]).
    pub origin: Option<Origin>,
    /// The contributions, oldest first.
    pub contributions: Vec<Phase1Contribution>,
}

/// The start of a transcript imported from another ceremony: the first elements of the
/// imported parameters and the hash that names them there. Verification takes them as given
/// (the other ceremony's own transcript vouches for them) and checks that the parameters are
/// consistent powers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CanonicalSerialize, CanonicalDeserialize)]
pub struct Origin {
    /// `τ·G₁` of the imported parameters.
    pub tau_g1: G1Affine,
    /// `α·G₁`.
    pub alpha_g1: G1Affine,
    /// `β·G₁`.
    pub beta_g1: G1Affine,
    /// The size of the other ceremony (`log₂ N`).
    pub source_power: u32,
    /// The hash the imported file names its predecessor by (Zcash: the BLAKE2b-512 hash of
    /// the challenge the response answered).
    pub source_hash: [u8; 64],
}

/// The secrets of one contribution. Dropped as soon as they are multiplied in; zeroized then.
struct Secrets {
    tau: Fr,
    alpha: Fr,
    beta: Fr,
}

impl Drop for Secrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.tau.zeroize();
        self.alpha.zeroize();
        self.beta.zeroize();
    }
}

impl Phase1 {
    /// The starting parameters of size `2^power` (τ = α = β = 1: every element a generator).
    /// Insecure until someone contributes.
    pub fn new(power: u32) -> Result<Phase1, CeremonyError> {
        if !(1..=MAX_POWER).contains(&power) {
            return Err(CeremonyError::Circuit(format!(
                "power {power} is outside 1..={MAX_POWER}"
            )));
        }
        let n = 1usize << power;
        let g1 = G1Affine::generator();
        let g2 = G2Affine::generator();
        Ok(Phase1 {
            power,
            tau_g1: vec![g1; 2 * n - 1],
            tau_g2: vec![g2; n],
            alpha_tau_g1: vec![g1; n],
            beta_tau_g1: vec![g1; n],
            beta_g2: g2,
            origin: None,
            contributions: Vec::new(),
        })
    }

    /// `N`.
    pub fn size(&self) -> usize {
        1usize << self.power
    }

    /// The transcript hash: blake3 (derived key "shoji ceremony phase1 v1") of the power, then
    /// for each contribution blake3 (derived key "shoji ceremony phase1 contribution v1") of
    /// the hash before it and its record. The hash after a contribution is the one its
    /// contributor publishes.
    pub fn hash(&self) -> [u8; 32] {
        self.hashes()
            .last()
            .copied()
            .unwrap_or_else(|| self.start_hash())
    }

    /// The hash after each contribution, oldest first.
    pub fn hashes(&self) -> Vec<[u8; 32]> {
        crate::chain(CONTRIBUTION, self.start_hash(), &self.contributions)
    }

    fn start_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("shoji ceremony phase1 v1");
        h.update(&self.power.to_le_bytes());
        if let Some(o) = &self.origin {
            let mut bytes = Vec::new();
            o.serialize_uncompressed(&mut bytes)
                .expect("writing to a Vec cannot fail");
            h.update(&bytes);
        }
        *h.finalize().as_bytes()
    }

    /// Multiplies fresh secrets from `rng` into the parameters and records the contribution
    /// with its proofs. Returns the transcript hash after it, which the contributor publishes.
    pub fn contribute<R: rand_core::RngCore + rand_core::CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> [u8; 32] {
        let secrets = Secrets {
            tau: nonzero_scalar(rng),
            alpha: nonzero_scalar(rng),
            beta: nonzero_scalar(rng),
        };
        self.contribute_with(&secrets, rng)
    }

    /// [`Phase1::contribute`] with given secrets (tests compare with a known τ).
    fn contribute_with<R: rand_core::RngCore + rand_core::CryptoRng>(
        &mut self,
        s: &Secrets,
        rng: &mut R,
    ) -> [u8; 32] {
        let before = self.hash();
        let mut powers = Vec::with_capacity(self.tau_g1.len());
        let mut p = Fr::one();
        for _ in 0..self.tau_g1.len() {
            powers.push(p);
            p *= s.tau;
        }
        let n = self.size();
        self.tau_g1 = scale(&self.tau_g1, &powers, &Fr::one());
        self.tau_g2 = scale_g2(&self.tau_g2, &powers[..n]);
        self.alpha_tau_g1 = scale(&self.alpha_tau_g1, &powers[..n], &s.alpha);
        self.beta_tau_g1 = scale(&self.beta_tau_g1, &powers[..n], &s.beta);
        self.beta_g2 = (self.beta_g2 * s.beta).into_affine();
        for p in powers.iter_mut() {
            zeroize::Zeroize::zeroize(p);
        }
        let c = Phase1Contribution {
            tau_g1: self.tau_g1[1],
            alpha_g1: self.alpha_tau_g1[0],
            beta_g1: self.beta_tau_g1[0],
            tau_proof: KnowledgeProof::new(&s.tau, &before, TAU, rng),
            alpha_proof: KnowledgeProof::new(&s.alpha, &before, ALPHA, rng),
            beta_proof: KnowledgeProof::new(&s.beta, &before, BETA, rng),
        };
        self.contributions.push(c);
        next_hash(&before, &c)
    }

    /// Verifies the transcript: each contribution's proofs of knowledge against the transcript
    /// hash before it, and that its τ·G₁, α·G₁, β·G₁ are the previous ones times the proven
    /// multipliers; then that the parameters are powers of one τ starting from the generators,
    /// with α and β of the last contribution. Returns the hash after each contribution (for
    /// contributors to find theirs). An error names the contribution at fault, or says which
    /// consistency check of the parameters failed.
    pub fn verify(&self) -> Result<Vec<[u8; 32]>, CeremonyError> {
        let n = self.size();
        if self.power > MAX_POWER
            || self.tau_g1.len() != 2 * n - 1
            || self.tau_g2.len() != n
            || self.alpha_tau_g1.len() != n
            || self.beta_tau_g1.len() != n
        {
            return Err(CeremonyError::Inconsistent(format!(
                "vector lengths do not match power {}",
                self.power
            )));
        }
        let g1 = G1Affine::generator();
        let g2 = G2Affine::generator();
        let (mut tau, mut alpha, mut beta) = match &self.origin {
            Some(o) => (o.tau_g1, o.alpha_g1, o.beta_g1),
            None => (g1, g1, g1),
        };
        let mut hash = self.start_hash();
        let mut hashes = Vec::with_capacity(self.contributions.len());
        for (i, c) in self.contributions.iter().enumerate() {
            let after = next_hash(&hash, c);
            let bad = |reason: String| CeremonyError::BadContribution {
                index: i + 1,
                hash: crate::hex(&after),
                reason,
            };
            for (label, proof, old, new) in [
                ("τ", &c.tau_proof, tau, c.tau_g1),
                ("α", &c.alpha_proof, alpha, c.alpha_g1),
                ("β", &c.beta_proof, beta, c.beta_g1),
            ] {
                let role = match label {
                    "τ" => TAU,
                    "α" => ALPHA,
                    _ => BETA,
                };
                let (r, r_x) = proof
                    .verify(&hash, role)
                    .map_err(|e| bad(format!("{label}: {e}")))?;
                if new.is_zero() || !same_ratio((old, new), (r, r_x)) {
                    return Err(bad(format!(
                        "{label}·G₁ after it is not the one before times the proven {label}'"
                    )));
                }
            }
            (tau, alpha, beta) = (c.tau_g1, c.alpha_g1, c.beta_g1);
            hash = after;
            hashes.push(after);
        }
        let inconsistent = |what: &str| Err(CeremonyError::Inconsistent(what.to_string()));
        if self.tau_g1[0] != g1 || self.tau_g2[0] != g2 {
            return inconsistent("τ⁰ is not the generator");
        }
        if self.tau_g1[1] != tau || self.alpha_tau_g1[0] != alpha || self.beta_tau_g1[0] != beta {
            return inconsistent(
                "τ·G₁, α·G₁ or β·G₁ is not the last contribution's (or the origin's)",
            );
        }
        let mut rng = rand_core::OsRng;
        let tau_g2 = self.tau_g2[1];
        let (a, b) = consecutive::<G1Projective>(&self.tau_g1, &mut rng);
        if !same_ratio((a, b), (g2, tau_g2)) {
            return inconsistent("τⁱ·G₁ are not consecutive powers of τ");
        }
        let (a, b) = consecutive::<G2Projective>(&self.tau_g2, &mut rng);
        if !same_ratio((g1, tau), (a, b)) {
            return inconsistent("τⁱ·G₂ are not consecutive powers of τ");
        }
        let (a, b) = consecutive::<G1Projective>(&self.alpha_tau_g1, &mut rng);
        if !same_ratio((a, b), (g2, tau_g2)) {
            return inconsistent("α·τⁱ·G₁ are not consecutive powers of τ");
        }
        let (a, b) = consecutive::<G1Projective>(&self.beta_tau_g1, &mut rng);
        if !same_ratio((a, b), (g2, tau_g2)) {
            return inconsistent("β·τⁱ·G₁ are not consecutive powers of τ");
        }
        if !same_ratio((g1, beta), (g2, self.beta_g2)) {
            return inconsistent("β·G₂ is not β·G₁'s β");
        }
        Ok(hashes)
    }

    /// Writes the transcript: header, power, the parameters, the contribution count and the
    /// contributions (points uncompressed, integers little-endian).
    pub fn write(&self, w: &mut impl Write) -> Result<(), CeremonyError> {
        write_header(w, KIND)?;
        write_u64(w, self.power as u64)?;
        write_points(w, &self.tau_g1)?;
        write_points(w, &self.tau_g2)?;
        write_points(w, &self.alpha_tau_g1)?;
        write_points(w, &self.beta_tau_g1)?;
        write_item(w, &self.beta_g2)?;
        match &self.origin {
            None => w.write_all(&[0])?,
            Some(o) => {
                w.write_all(&[1])?;
                write_item(w, o)?;
            }
        }
        write_u64(w, self.contributions.len() as u64)?;
        write_points(w, &self.contributions)?;
        Ok(())
    }

    /// Reads a transcript written by [`Phase1::write`], checking every point is on the curve and
    /// in the prime-order subgroup. It is not verified: call [`Phase1::verify`].
    pub fn read(r: &mut impl Read) -> Result<Phase1, CeremonyError> {
        read_header(r, KIND, "phase-1")?;
        let power = read_u64(r)?;
        if !(1..=MAX_POWER as u64).contains(&power) {
            return Err(CeremonyError::Malformed(format!(
                "power {power} is outside 1..={MAX_POWER}"
            )));
        }
        let n = 1usize << power;
        let tau_g1 = read_points(r, 2 * n - 1, "τⁱ·G₁")?;
        let tau_g2 = read_points(r, n, "τⁱ·G₂")?;
        let alpha_tau_g1 = read_points(r, n, "α·τⁱ·G₁")?;
        let beta_tau_g1 = read_points(r, n, "β·τⁱ·G₁")?;
        let beta_g2 = read_item(r, "β·G₂")?;
        let mut flag = [0u8; 1];
        r.read_exact(&mut flag)
            .map_err(|e| CeremonyError::Malformed(format!("origin: {e}")))?;
        let origin = match flag[0] {
            0 => None,
            1 => Some(read_item(r, "origin")?),
            other => return Err(CeremonyError::Malformed(format!("origin marker {other}"))),
        };
        let count = read_u64(r)?;
        if count > 1 << 20 {
            return Err(CeremonyError::Malformed(format!("{count} contributions")));
        }
        let contributions = (0..count)
            .map(|i| read_item(r, &format!("contribution {}", i + 1)))
            .collect::<Result<_, _>>()?;
        let mut rest = [0u8; 1];
        if r.read(&mut rest)? != 0 {
            return Err(CeremonyError::Malformed(
                "bytes after the last contribution".into(),
            ));
        }
        Ok(Phase1 {
            power: power as u32,
            tau_g1,
            tau_g2,
            alpha_tau_g1,
            beta_tau_g1,
            beta_g2,
            origin,
            contributions,
        })
    }

    /// Reads a response file of Zcash's Powers of Tau ceremony for BLS12-381 (its
    /// `powersoftau` software's layout, for a ceremony of size `2^source_power`, 2^21 for the
    /// public one): the BLAKE2b-512 hash of the challenge, then the accumulator with points
    /// compressed (Zcash's encoding, which ark-bls12-381 shares) — `τⁱ·G₁` for `i < 2N − 1`,
    /// `τⁱ·G₂`, `α·τⁱ·G₁`, `β·τⁱ·G₁` for `i < N`, `β·G₂` — then the contributor's public key,
    /// which is not read. Only the first elements needed for `2^power` are kept, each checked
    /// to be in the subgroup. The result starts a transcript here ([`Origin`]); the imported
    /// contributions are verified with Zcash's own tools, not by this crate.
    pub fn import_zcash(
        r: &mut impl Read,
        source_power: u32,
        power: u32,
    ) -> Result<Phase1, CeremonyError> {
        use ark_serialize::Compress;
        if power == 0 || power > source_power || source_power > 28 {
            return Err(CeremonyError::Malformed(format!(
                "cannot take 2^{power} from a ceremony of 2^{source_power}"
            )));
        }
        let (big, n) = (1usize << source_power, 1usize << power);
        let mut source_hash = [0u8; 64];
        r.read_exact(&mut source_hash)
            .map_err(|e| CeremonyError::Malformed(format!("challenge hash: {e}")))?;
        fn section<T: CanonicalDeserialize + Send>(
            r: &mut impl Read,
            keep: usize,
            total: usize,
            size: usize,
            what: &str,
        ) -> Result<Vec<T>, CeremonyError> {
            let mut bytes = vec![0u8; keep * size];
            r.read_exact(&mut bytes)
                .map_err(|e| CeremonyError::Malformed(format!("{what}: {e}")))?;
            let skip = ((total - keep) * size) as u64;
            let skipped = std::io::copy(&mut r.by_ref().take(skip), &mut std::io::sink())?;
            if skipped != skip {
                return Err(CeremonyError::Malformed(format!(
                    "{what}: the file ends early"
                )));
            }
            crate::decode_points(&bytes, size, Compress::Yes, what)
        }
        let tau_g1: Vec<G1Affine> = section(r, 2 * n - 1, 2 * big - 1, 48, "τⁱ·G₁")?;
        let tau_g2: Vec<G2Affine> = section(r, n, big, 96, "τⁱ·G₂")?;
        let alpha_tau_g1: Vec<G1Affine> = section(r, n, big, 48, "α·τⁱ·G₁")?;
        let beta_tau_g1: Vec<G1Affine> = section(r, n, big, 48, "β·τⁱ·G₁")?;
        let beta_g2: Vec<G2Affine> = section(r, 1, 1, 96, "β·G₂")?;
        Ok(Phase1 {
            power,
            origin: Some(Origin {
                tau_g1: tau_g1[1],
                alpha_g1: alpha_tau_g1[0],
                beta_g1: beta_tau_g1[0],
                source_power,
                source_hash,
            }),
            tau_g1,
            tau_g2,
            alpha_tau_g1,
            beta_tau_g1,
            beta_g2: beta_g2[0],
            contributions: Vec::new(),
        })
    }
}

/// The hash after contribution `c`, given the hash before it.
fn next_hash(before: &[u8; 32], c: &Phase1Contribution) -> [u8; 32] {
    crate::chain_step(CONTRIBUTION, before, c)
}

/// `points[i] · powers[i] · k`, in parallel.
fn scale<A>(points: &[A], powers: &[Fr], k: &Fr) -> Vec<A>
where
    A: AffineRepr<ScalarField = Fr>,
{
    let projective: Vec<A::Group> = points
        .par_iter()
        .zip(powers.par_iter())
        .map(|(p, x)| *p * (*x * k))
        .collect();
    A::Group::normalize_batch(&projective)
}

/// `points[i] · powers[i]` in G₂ by GLV (which ark-bls12-381 does not use there), in parallel.
fn scale_g2(points: &[G2Affine], powers: &[Fr]) -> Vec<G2Affine> {
    use ark_ec::scalar_mul::glv::GLVConfig;
    let projective: Vec<G2Projective> = points
        .par_iter()
        .zip(powers.par_iter())
        .map(|(p, x)| ark_bls12_381::g2::Config::glv_mul_affine(*p, *x).into_group())
        .collect();
    G2Projective::normalize_batch(&projective)
}

#[cfg(test)]
pub(crate) fn contribute_known(phase1: &mut Phase1, tau: Fr, alpha: Fr, beta: Fr) -> [u8; 32] {
    let s = Secrets { tau, alpha, beta };
    phase1.contribute_with(&s, &mut rand_core::OsRng)
}
