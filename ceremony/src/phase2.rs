//! Phase 2: one circuit's Groth16 keys from a phase-1 transcript, then δ.
//!
//! **Start** ([`Phase2::new`]). The circuit's R1CS is reduced to a QAP exactly as
//! `ark-groth16` does (`LibsnarkReduction`): the evaluation domain is ark-poly's
//! `GeneralEvaluationDomain` of size `constraints + inputs` rounded up to a power of two, the
//! Lagrange polynomial `Lᵢ` belongs to the domain's element `ωⁱ`, and input `j` also gets
//! `L_{constraints + j}` in its A polynomial. Phase 1's powers become Lagrange values by an
//! inverse FFT in the group (`[Lᵢ(τ)] = (1/n)·Σⱼ ω^{−ij}·[τʲ]`), and each key element is a sum
//! of them weighted by the matrices' coefficients. γ = 1 and δ = 1 at the start.
//!
//! **Contributions** ([`Phase2::contribute`]) multiply δ by a fresh δ' and divide the L and H
//! queries by it, and prove knowledge of δ' ([`KnowledgeProof`]) against the transcript hash.
//!
//! **Verification** ([`Phase2::verify`]) recomputes the start from phase 1 and the circuit,
//! checks that every key element that does not involve δ is exactly the start's, that each
//! contribution's δ·G₁ is the previous one times its proven δ', that the final δ is the last
//! contribution's in both groups, and that the L and H queries are the start's divided by δ
//! (random linear combinations and pairings).

use crate::phase1::Phase1;
use crate::{
    combine, nonzero_scalar, read_header, read_item, read_points, read_u64, same_ratio,
    write_header, write_item, write_points, write_u64, CeremonyError, KnowledgeProof,
};
use ark_bls12_381::{Bls12_381, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::Field;
use ark_groth16::{ProvingKey, VerifyingKey};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, Matrix, OptimizationGoal, SynthesisMode,
    R1CS_PREDICATE_LABEL,
};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rayon::prelude::*;
use std::io::{Read, Write};

/// File kind byte of a phase-2 transcript.
const KIND: u8 = 2;

/// Role label of δ in proofs of knowledge.
const DELTA: &[u8] = b"delta";

/// One contribution: δ·G₁ after it, and a proof of knowledge of the multiplier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, CanonicalSerialize, CanonicalDeserialize)]
pub struct Phase2Contribution {
    /// `δ·G₁` after the contribution.
    pub delta_g1: G1Affine,
    /// Knowledge of `δ'`.
    pub proof: KnowledgeProof,
}

/// A circuit reduced to the form phase 2 needs: its R1CS matrices and sizes.
pub struct CircuitShape {
    a: Matrix<Fr>,
    b: Matrix<Fr>,
    c: Matrix<Fr>,
    num_constraints: usize,
    num_instance: usize,
    num_witness: usize,
    domain_size: usize,
    hash: [u8; 32],
}

impl CircuitShape {
    /// Synthesizes `circuit` in setup mode, as `ark-groth16`'s generator does (optimized for
    /// constraints), and hashes its matrices: blake3 (derived key "shoji ceremony circuit v1")
    /// of the sizes and every (row, coefficient, column) of A, B and C.
    pub fn of<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<CircuitShape, CeremonyError> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        circuit
            .generate_constraints(cs.clone())
            .map_err(|e| CeremonyError::Circuit(e.to_string()))?;
        cs.finalize();
        let num_constraints = cs.num_constraints();
        let num_instance = cs.num_instance_variables();
        let num_witness = cs.num_witness_variables();
        let mut matrices = cs
            .to_matrices()
            .map_err(|e| CeremonyError::Circuit(e.to_string()))?;
        let mut r1cs = matrices
            .remove(R1CS_PREDICATE_LABEL)
            .ok_or_else(|| CeremonyError::Circuit("the circuit has no R1CS constraints".into()))?;
        if r1cs.len() != 3 {
            return Err(CeremonyError::Circuit(format!(
                "{} R1CS matrices, expected 3",
                r1cs.len()
            )));
        }
        let c = r1cs.pop().unwrap_or_default();
        let b = r1cs.pop().unwrap_or_default();
        let a = r1cs.pop().unwrap_or_default();
        let domain = GeneralEvaluationDomain::<Fr>::new(num_constraints + num_instance)
            .ok_or_else(|| {
                CeremonyError::Circuit("the circuit is too large for a domain".into())
            })?;
        let mut h = blake3::Hasher::new_derive_key("shoji ceremony circuit v1");
        for x in [num_constraints, num_instance, num_witness] {
            h.update(&(x as u64).to_le_bytes());
        }
        for m in [&a, &b, &c] {
            h.update(&(m.len() as u64).to_le_bytes());
            for (row, entries) in m.iter().enumerate() {
                for (coeff, col) in entries {
                    h.update(&(row as u64).to_le_bytes());
                    let mut bytes = Vec::with_capacity(32);
                    coeff
                        .serialize_uncompressed(&mut bytes)
                        .expect("writing to a Vec cannot fail");
                    h.update(&bytes);
                    h.update(&(*col as u64).to_le_bytes());
                }
            }
        }
        Ok(CircuitShape {
            a,
            b,
            c,
            num_constraints,
            num_instance,
            num_witness,
            domain_size: domain.size(),
            hash: *h.finalize().as_bytes(),
        })
    }

    /// The circuit's hash (see [`CircuitShape::of`]).
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The size of the circuit's evaluation domain.
    pub fn domain_size(&self) -> usize {
        self.domain_size
    }
}

/// A phase-2 transcript: the current keys and every contribution so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase2 {
    /// The phase-1 transcript hash it started from ([`Phase1::hash`]).
    pub phase1: [u8; 32],
    /// The circuit's hash ([`CircuitShape::hash`]).
    pub circuit: [u8; 32],
    /// The current proving key (with its verifying key).
    pub pk: ProvingKey<Bls12_381>,
    /// The contributions, oldest first.
    pub contributions: Vec<Phase2Contribution>,
}

impl Phase2 {
    /// The starting keys of `circuit` from `phase1` (γ = δ = 1), which must have been
    /// verified ([`Phase1::verify`]) and be at least as large as the circuit's domain.
    pub fn new(phase1: &Phase1, circuit: &CircuitShape) -> Result<Phase2, CeremonyError> {
        Ok(Phase2 {
            phase1: phase1.hash(),
            circuit: circuit.hash,
            pk: start(phase1, circuit)?,
            contributions: Vec::new(),
        })
    }

    /// The transcript hash: blake3 (derived key "shoji ceremony phase2 v1") of the phase-1 hash
    /// and the circuit hash, then for each contribution blake3 (derived key "shoji ceremony
    /// phase2 contribution v1") of the hash before it and its record.
    pub fn hash(&self) -> [u8; 32] {
        self.hashes()
            .last()
            .copied()
            .unwrap_or_else(|| self.start_hash())
    }

    /// The hash after each contribution, oldest first.
    pub fn hashes(&self) -> Vec<[u8; 32]> {
        let mut h = self.start_hash();
        self.contributions
            .iter()
            .map(|c| {
                h = next_hash(&h, c);
                h
            })
            .collect()
    }

    fn start_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("shoji ceremony phase2 v1");
        h.update(&self.phase1);
        h.update(&self.circuit);
        *h.finalize().as_bytes()
    }

    /// Multiplies a fresh δ' from `rng` into δ, divides the L and H queries by it, and records
    /// the contribution. Returns the transcript hash after it, which the contributor publishes.
    pub fn contribute<R: rand_core::RngCore + rand_core::CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> [u8; 32] {
        let before = self.hash();
        let mut delta = nonzero_scalar(rng);
        let mut inverse = delta.inverse().unwrap_or_default();
        let pk = &mut self.pk;
        pk.delta_g1 = (pk.delta_g1 * delta).into_affine();
        pk.vk.delta_g2 = (pk.vk.delta_g2 * delta).into_affine();
        pk.l_query = scale_all(&pk.l_query, &inverse);
        pk.h_query = scale_all(&pk.h_query, &inverse);
        let c = Phase2Contribution {
            delta_g1: pk.delta_g1,
            proof: KnowledgeProof::new(&delta, &before, DELTA, rng),
        };
        zeroize::Zeroize::zeroize(&mut delta);
        zeroize::Zeroize::zeroize(&mut inverse);
        self.contributions.push(c);
        next_hash(&before, &c)
    }

    /// Verifies the transcript against `phase1` (which must have been verified) and
    /// `circuit`; see the module documentation for the checks. Returns the hash after each
    /// contribution. An error names the contribution at fault, or the check of the keys that
    /// failed.
    pub fn verify(
        &self,
        phase1: &Phase1,
        circuit: &CircuitShape,
    ) -> Result<Vec<[u8; 32]>, CeremonyError> {
        if self.phase1 != phase1.hash() {
            return Err(CeremonyError::WrongPhase1 {
                found: crate::hex(&self.phase1),
                expected: crate::hex(&phase1.hash()),
            });
        }
        if self.circuit != circuit.hash {
            return Err(CeremonyError::WrongCircuit {
                found: crate::hex(&self.circuit),
                expected: crate::hex(&circuit.hash),
            });
        }
        let start = start(phase1, circuit)?;
        let pk = &self.pk;
        let inconsistent = |what: &str| Err(CeremonyError::Inconsistent(what.to_string()));
        if pk.vk.alpha_g1 != start.vk.alpha_g1
            || pk.vk.beta_g2 != start.vk.beta_g2
            || pk.vk.gamma_g2 != start.vk.gamma_g2
            || pk.beta_g1 != start.beta_g1
        {
            return inconsistent("α, β or γ is not phase 1's");
        }
        if pk.vk.gamma_abc_g1 != start.vk.gamma_abc_g1 {
            return inconsistent("the verifying key's input bases are not the circuit's");
        }
        if pk.a_query != start.a_query
            || pk.b_g1_query != start.b_g1_query
            || pk.b_g2_query != start.b_g2_query
        {
            return inconsistent("the A or B query is not the circuit's");
        }
        if pk.l_query.len() != start.l_query.len() || pk.h_query.len() != start.h_query.len() {
            return inconsistent("the L or H query has the wrong length");
        }
        let mut delta = G1Affine::generator();
        let mut hash = self.start_hash();
        let mut hashes = Vec::with_capacity(self.contributions.len());
        for (i, c) in self.contributions.iter().enumerate() {
            let after = next_hash(&hash, c);
            let bad = |reason: String| CeremonyError::BadContribution {
                index: i + 1,
                hash: crate::hex(&after),
                reason,
            };
            let (r, r_x) = c.proof.verify(&hash, DELTA).map_err(bad)?;
            if c.delta_g1.is_zero() || !same_ratio((delta, c.delta_g1), (r, r_x)) {
                return Err(bad(
                    "δ·G₁ after it is not the one before times the proven δ'".into(),
                ));
            }
            delta = c.delta_g1;
            hash = after;
            hashes.push(after);
        }
        if pk.delta_g1 != delta {
            return inconsistent("δ·G₁ is not the last contribution's");
        }
        let g1 = G1Affine::generator();
        let g2 = G2Affine::generator();
        if !same_ratio((g1, pk.delta_g1), (g2, pk.vk.delta_g2)) {
            return inconsistent("δ·G₂ is not δ·G₁'s δ");
        }
        let mut rng = rand_core::OsRng;
        let (before, now) = combine::<G1Projective>(&start.l_query, &pk.l_query, &mut rng);
        if !same_ratio((now, before), (g2, pk.vk.delta_g2)) {
            return inconsistent("the L query is not the circuit's divided by δ");
        }
        let (before, now) = combine::<G1Projective>(&start.h_query, &pk.h_query, &mut rng);
        if !same_ratio((now, before), (g2, pk.vk.delta_g2)) {
            return inconsistent("the H query is not the circuit's divided by δ");
        }
        Ok(hashes)
    }

    /// The proving and verifying keys.
    pub fn keys(&self) -> (ProvingKey<Bls12_381>, VerifyingKey<Bls12_381>) {
        (self.pk.clone(), self.pk.vk.clone())
    }

    /// Writes the transcript: header, phase-1 hash, circuit hash, the proving key (uncompressed,
    /// ark-serialize), the contribution count and the contributions.
    pub fn write(&self, w: &mut impl Write) -> Result<(), CeremonyError> {
        write_header(w, KIND)?;
        w.write_all(&self.phase1)?;
        w.write_all(&self.circuit)?;
        write_item(w, &self.pk)?;
        write_u64(w, self.contributions.len() as u64)?;
        write_points(w, &self.contributions)?;
        Ok(())
    }

    /// Reads a transcript written by [`Phase2::write`], checking every point. It is not
    /// verified: call [`Phase2::verify`].
    pub fn read(r: &mut impl Read) -> Result<Phase2, CeremonyError> {
        read_header(r, KIND, "phase-2")?;
        let mut phase1 = [0u8; 32];
        let mut circuit = [0u8; 32];
        r.read_exact(&mut phase1)
            .and_then(|()| r.read_exact(&mut circuit))
            .map_err(|e| CeremonyError::Malformed(e.to_string()))?;
        let pk = read_item(r, "proving key")?;
        let count = read_u64(r)?;
        if count > 1 << 20 {
            return Err(CeremonyError::Malformed(format!("{count} contributions")));
        }
        let contributions = read_points(r, count as usize, "contribution")?;
        let mut rest = [0u8; 1];
        if r.read(&mut rest)? != 0 {
            return Err(CeremonyError::Malformed(
                "bytes after the last contribution".into(),
            ));
        }
        Ok(Phase2 {
            phase1,
            circuit,
            pk,
            contributions,
        })
    }
}

/// The hash after contribution `c`, given the hash before it.
fn next_hash(before: &[u8; 32], c: &Phase2Contribution) -> [u8; 32] {
    let mut bytes = Vec::new();
    c.serialize_uncompressed(&mut bytes)
        .expect("writing to a Vec cannot fail");
    let mut h = blake3::Hasher::new_derive_key("shoji ceremony phase2 contribution v1");
    h.update(before);
    h.update(&bytes);
    *h.finalize().as_bytes()
}

/// Every point times `k`, in parallel.
fn scale_all(points: &[G1Affine], k: &Fr) -> Vec<G1Affine> {
    let projective: Vec<G1Projective> = points.par_iter().map(|p| *p * k).collect();
    G1Projective::normalize_batch(&projective)
}

/// `[Lᵢ(τ)]` for `i < n` from `[τʲ]`, `j < n`: the inverse FFT in the group.
fn lagrange<G>(domain: &GeneralEvaluationDomain<Fr>, powers: &[G::Affine]) -> Vec<G::Affine>
where
    G: CurveGroup<ScalarField = Fr>,
{
    let mut v: Vec<G> = powers.par_iter().map(|p| p.into_group()).collect();
    domain.ifft_in_place(&mut v);
    G::normalize_batch(&v)
}

/// Σ coefficient · base over a sparse column, for every variable of one matrix.
fn columns<G>(m: &Matrix<Fr>, bases: &[G::Affine], num_vars: usize) -> Vec<Vec<(Fr, G::Affine)>>
where
    G: CurveGroup<ScalarField = Fr>,
{
    let mut cols: Vec<Vec<(Fr, G::Affine)>> = vec![Vec::new(); num_vars];
    for (row, entries) in m.iter().enumerate() {
        for (coeff, var) in entries {
            if let Some(col) = cols.get_mut(*var) {
                col.push((*coeff, bases[row]));
            }
        }
    }
    cols
}

/// Evaluates every column: `Σ coeff · base`.
fn evaluate<G>(cols: &[Vec<(Fr, G::Affine)>]) -> Vec<G>
where
    G: CurveGroup<ScalarField = Fr>,
{
    cols.par_iter()
        .map(|col| {
            let (scalars, bases): (Vec<Fr>, Vec<G::Affine>) = col.iter().copied().unzip();
            G::msm(&bases, &scalars).unwrap_or_else(|_| G::zero())
        })
        .collect()
}

/// The starting keys (γ = δ = 1): see the module documentation.
fn start(phase1: &Phase1, circuit: &CircuitShape) -> Result<ProvingKey<Bls12_381>, CeremonyError> {
    let n = circuit.domain_size;
    if n > phase1.size() {
        return Err(CeremonyError::Circuit(format!(
            "the circuit's domain has {n} points, more than phase 1's {}",
            phase1.size()
        )));
    }
    let domain = GeneralEvaluationDomain::<Fr>::new(n)
        .ok_or_else(|| CeremonyError::Circuit("no domain of that size".into()))?;
    let l_g1 = lagrange::<G1Projective>(&domain, &phase1.tau_g1[..n]);
    let l_g2 = lagrange::<G2Projective>(&domain, &phase1.tau_g2[..n]);
    let alpha_l = lagrange::<G1Projective>(&domain, &phase1.alpha_tau_g1[..n]);
    let beta_l = lagrange::<G1Projective>(&domain, &phase1.beta_tau_g1[..n]);

    let num_vars = circuit.num_instance + circuit.num_witness;
    let nc = circuit.num_constraints;
    // A: the matrix, and each input j also L_{nc + j} (the reduction's input constraints).
    let mut a_cols = columns::<G1Projective>(&circuit.a, &l_g1, num_vars);
    let mut beta_a = columns::<G1Projective>(&circuit.a, &beta_l, num_vars);
    for j in 0..circuit.num_instance {
        a_cols[j].push((Fr::from(1u64), l_g1[nc + j]));
        beta_a[j].push((Fr::from(1u64), beta_l[nc + j]));
    }
    let b_g1_cols = columns::<G1Projective>(&circuit.b, &l_g1, num_vars);
    let b_g2_cols = columns::<G2Projective>(&circuit.b, &l_g2, num_vars);
    let alpha_b = columns::<G1Projective>(&circuit.b, &alpha_l, num_vars);
    let c_cols = columns::<G1Projective>(&circuit.c, &l_g1, num_vars);

    let a_query = G1Projective::normalize_batch(&evaluate::<G1Projective>(&a_cols));
    let b_g1_query = G1Projective::normalize_batch(&evaluate::<G1Projective>(&b_g1_cols));
    let b_g2_query = G2Projective::normalize_batch(&evaluate::<G2Projective>(&b_g2_cols));
    // β·A + α·B + C per variable, at γ = δ = 1.
    let abc: Vec<Vec<(Fr, G1Affine)>> = (0..num_vars)
        .map(|j| {
            beta_a[j]
                .iter()
                .chain(&alpha_b[j])
                .chain(&c_cols[j])
                .copied()
                .collect()
        })
        .collect();
    let abc = G1Projective::normalize_batch(&evaluate::<G1Projective>(&abc));
    let (gamma_abc_g1, l_query) = abc.split_at(circuit.num_instance);
    // H: τⁱ·Z(τ) = τ^(i+n) − τⁱ for i < n − 1.
    let h: Vec<G1Projective> = (0..n - 1)
        .into_par_iter()
        .map(|i| phase1.tau_g1[i + n].into_group() - phase1.tau_g1[i])
        .collect();
    let g1 = G1Affine::generator();
    let g2 = G2Affine::generator();
    let vk = VerifyingKey::<Bls12_381> {
        alpha_g1: phase1.alpha_tau_g1[0],
        beta_g2: phase1.beta_g2,
        gamma_g2: g2,
        delta_g2: g2,
        gamma_abc_g1: gamma_abc_g1.to_vec(),
    };
    Ok(ProvingKey {
        vk,
        beta_g1: phase1.beta_tau_g1[0],
        delta_g1: g1,
        a_query,
        b_g1_query,
        b_g2_query,
        h_query: G1Projective::normalize_batch(&h),
        l_query: l_query.to_vec(),
    })
}
