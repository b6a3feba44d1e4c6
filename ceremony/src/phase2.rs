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
//! **Verification** ([`Phase2::verify`]) does not recompute the start: it checks, by one random
//! linear combination per query against phase 1's powers, that every key element that does not
//! involve δ is the start's, that each
//! contribution's δ·G₁ is the previous one times its proven δ', that the final δ is the last
//! contribution's in both groups, and that the L and H queries are the start's divided by δ
//! (random linear combinations and pairings).

use crate::phase1::Phase1;
use crate::{
    nonzero_scalar, read_header, read_item, read_points, read_u64, same_ratio, write_header,
    write_item, write_points, write_u64, CeremonyError, KnowledgeProof,
};
use ark_bls12_381::{Bls12_381, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{Field, Zero};
use ark_groth16::{ProvingKey, VerifyingKey};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, Matrix, OptimizationGoal, SynthesisMode,
    R1CS_PREDICATE_LABEL,
};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rayon::prelude::*;
use std::io::{Read, Write};

/// Derived-key context of the hash after a contribution.
const CONTRIBUTION: &str = "shoji ceremony phase2 contribution v1";

/// File kind byte of a phase-2 transcript.
const KIND: u8 = 2;

/// Role label of δ in proofs of knowledge.
pub(crate) const DELTA: &[u8] = b"delta";

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
        crate::chain(CONTRIBUTION, self.start_hash(), &self.contributions)
    }

    pub(crate) fn start_hash(&self) -> [u8; 32] {
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
        check_start(phase1, circuit, &self.pk)?;
        let hashes = self.verify_contributions()?;
        check_divided_by_delta(phase1, circuit, &self.pk)?;
        Ok(hashes)
    }

    /// Verifies the contributions alone: each proof of knowledge against the transcript hash
    /// before it, each δ·G₁ the previous one times the proven δ', and the keys' δ the last
    /// contribution's in both groups. It does not check the keys against phase 1 and the
    /// circuit ([`Phase2::verify`] does). Returns the hash after each contribution.
    pub fn verify_contributions(&self) -> Result<Vec<[u8; 32]>, CeremonyError> {
        let pk = &self.pk;
        let inconsistent = |what: &str| Err(CeremonyError::Inconsistent(what.to_string()));
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
    crate::chain_step(CONTRIBUTION, before, c)
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

/// [`lagrange`] in G₂, multiplying by GLV (ark-bls12-381 does not use it in G₂): a third of
/// the time.
fn lagrange_g2(domain: &GeneralEvaluationDomain<Fr>, powers: &[G2Affine]) -> Vec<G2Affine> {
    let mut v: Vec<GlvG2> = powers.par_iter().map(|p| GlvG2(p.into_group())).collect();
    domain.ifft_in_place(&mut v);
    G2Projective::normalize_batch(&v.into_iter().map(|p| p.0).collect::<Vec<_>>())
}

/// A point of G₂ whose multiplication by a scalar uses GLV, for ark-poly's FFT.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GlvG2(G2Projective);

impl std::ops::Add for GlvG2 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        GlvG2(self.0 + o.0)
    }
}

impl std::ops::Sub for GlvG2 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        GlvG2(self.0 - o.0)
    }
}

impl std::ops::AddAssign for GlvG2 {
    fn add_assign(&mut self, o: Self) {
        self.0 += o.0;
    }
}

impl std::ops::SubAssign for GlvG2 {
    fn sub_assign(&mut self, o: Self) {
        self.0 -= o.0;
    }
}

impl std::ops::MulAssign<Fr> for GlvG2 {
    fn mul_assign(&mut self, k: Fr) {
        self.0 =
            <ark_bls12_381::g2::Config as ark_ec::scalar_mul::glv::GLVConfig>::glv_mul_projective(
                self.0, k,
            );
    }
}

impl Zero for GlvG2 {
    fn zero() -> Self {
        GlvG2(G2Projective::zero())
    }
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
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

/// Evaluates every column, `Σ coeff · base`. Long columns (the constant's, a few inputs')
/// are multi-scalar multiplications, one after another, each parallel inside; short ones are
/// summed one per task, sequentially inside, so that no parallel multiplication nests in the
/// parallel loop (nesting them overflowed worker stacks). Coefficients ±1, most of the
/// circuit's, cost an addition.
fn evaluate<G>(cols: &[Vec<(Fr, G::Affine)>], mul: impl Fn(&G::Affine, &Fr) -> G + Sync) -> Vec<G>
where
    G: CurveGroup<ScalarField = Fr>,
{
    const LONG: usize = 64;
    let one = Fr::from(1u64);
    let minus_one = -one;
    let mut out: Vec<G> = cols
        .par_iter()
        .map(|col| {
            if col.len() >= LONG {
                return G::zero();
            }
            col.iter().fold(G::zero(), |acc, (c, b)| {
                if *c == one {
                    acc + b
                } else if *c == minus_one {
                    acc - b
                } else {
                    acc + mul(b, c)
                }
            })
        })
        .collect();
    for (sum, col) in out.iter_mut().zip(cols) {
        if col.len() >= LONG {
            let (scalars, bases): (Vec<Fr>, Vec<G::Affine>) = col.iter().copied().unzip();
            *sum = G::msm(&bases, &scalars).unwrap_or_else(|_| G::zero());
        }
    }
    out
}

/// `b·c` in G₁ (ark-bls12-381 multiplies by GLV).
fn mul_g1(b: &G1Affine, c: &Fr) -> G1Projective {
    *b * c
}

/// `b·c` in G₂ by GLV, which ark-bls12-381 does not use by default there.
fn mul_g2(b: &G2Affine, c: &Fr) -> G2Projective {
    <ark_bls12_381::g2::Config as ark_ec::scalar_mul::glv::GLVConfig>::glv_mul_affine(*b, *c)
        .into_group()
}

/// `M·c` for a sparse matrix of the circuit, as a vector over the domain's `n` points.
fn mat_vec(m: &Matrix<Fr>, c: &[Fr], n: usize) -> Vec<Fr> {
    let mut v = vec![Fr::zero(); n];
    for (row, entries) in m.iter().enumerate() {
        for (coeff, var) in entries {
            if let Some(x) = c.get(*var) {
                v[row] += *coeff * x;
            }
        }
    }
    v
}

/// `Σᵢ vᵢ·[Lᵢ(τ)]` from the powers `[τᵏ]` without the group FFT: since `[Lᵢ(τ)] =
/// (1/n)·Σₖ ω^{−ik}·[τᵏ]`, the sum is `Σₖ ifft(v)ₖ·[τᵏ]` (the inverse FFT of `v` in the
/// field, one multi-scalar multiplication in the group).
fn lagrange_sum<G: CurveGroup<ScalarField = Fr>>(
    domain: &GeneralEvaluationDomain<Fr>,
    powers: &[G::Affine],
    v: &[Fr],
) -> G {
    let coeffs = domain.ifft(v);
    G::msm(&powers[..coeffs.len()], &coeffs).unwrap_or_else(|_| G::zero())
}

fn random_vector(n: usize, rng: &mut rand_core::OsRng) -> Vec<Fr> {
    (0..n)
        .map(|_| <Fr as ark_std::UniformRand>::rand(rng))
        .collect()
}

fn msm<G: CurveGroup<ScalarField = Fr>>(bases: &[G::Affine], scalars: &[Fr]) -> G {
    G::msm(bases, scalars).unwrap_or_else(|_| G::zero())
}

/// Checks that every part of `pk` that δ does not touch is the circuit's start from
/// `phase1`: α, β, γ exactly, and the A, B and input queries by one random linear combination
/// each, compared with the same combination of phase 1's powers ([`lagrange_sum`]). A query
/// that differs anywhere passes with probability about `1/r`.
fn check_start(
    phase1: &Phase1,
    circuit: &CircuitShape,
    pk: &ProvingKey<Bls12_381>,
) -> Result<(), CeremonyError> {
    let inconsistent = |what: &str| Err(CeremonyError::Inconsistent(what.to_string()));
    let (n, domain) = domain(phase1, circuit)?;
    let (ni, nw, nc) = (
        circuit.num_instance,
        circuit.num_witness,
        circuit.num_constraints,
    );
    if pk.vk.alpha_g1 != phase1.alpha_tau_g1[0]
        || pk.vk.beta_g2 != phase1.beta_g2
        || pk.vk.gamma_g2 != G2Affine::generator()
        || pk.beta_g1 != phase1.beta_tau_g1[0]
    {
        return inconsistent("α, β or γ is not phase 1's");
    }
    if pk.a_query.len() != ni + nw
        || pk.b_g1_query.len() != ni + nw
        || pk.b_g2_query.len() != ni + nw
        || pk.vk.gamma_abc_g1.len() != ni
        || pk.l_query.len() != nw
        || pk.h_query.len() != n - 1
    {
        return inconsistent("a query has the wrong length");
    }
    let mut rng = rand_core::OsRng;
    let (tau_g1, tau_g2) = (&phase1.tau_g1[..n], &phase1.tau_g2[..n]);
    // A: the matrix and each input's L_{nc + j}.
    let c = random_vector(ni + nw, &mut rng);
    let mut v = mat_vec(&circuit.a, &c, n);
    for j in 0..ni {
        v[nc + j] += c[j];
    }
    if msm::<G1Projective>(&pk.a_query, &c) != lagrange_sum::<G1Projective>(&domain, tau_g1, &v) {
        return inconsistent("the A or B query is not the circuit's");
    }
    let c = random_vector(ni + nw, &mut rng);
    let v = mat_vec(&circuit.b, &c, n);
    if msm::<G1Projective>(&pk.b_g1_query, &c) != lagrange_sum::<G1Projective>(&domain, tau_g1, &v)
        || msm::<G2Projective>(&pk.b_g2_query, &c)
            != lagrange_sum::<G2Projective>(&domain, tau_g2, &v)
    {
        return inconsistent("the A or B query is not the circuit's");
    }
    // β·A + α·B + C over the inputs, at γ = 1.
    let mut c = random_vector(ni, &mut rng);
    let expected = abc_sum(phase1, circuit, &domain, &c, true);
    c.truncate(ni);
    if msm::<G1Projective>(&pk.vk.gamma_abc_g1, &c) != expected {
        return inconsistent("the verifying key's input bases are not the circuit's");
    }
    Ok(())
}

/// `Σⱼ cⱼ·(β·Aⱼ + α·Bⱼ + Cⱼ)(τ)` over the inputs (`inputs`, `c` of their length) or the
/// witnesses (`c` of theirs), from phase 1's powers.
fn abc_sum(
    phase1: &Phase1,
    circuit: &CircuitShape,
    domain: &GeneralEvaluationDomain<Fr>,
    c: &[Fr],
    inputs: bool,
) -> G1Projective {
    let (ni, nc, n) = (
        circuit.num_instance,
        circuit.num_constraints,
        circuit.domain_size,
    );
    let full: Vec<Fr> = if inputs {
        c.iter()
            .copied()
            .chain(std::iter::repeat_n(Fr::zero(), circuit.num_witness))
            .collect()
    } else {
        std::iter::repeat_n(Fr::zero(), ni)
            .chain(c.iter().copied())
            .collect()
    };
    let mut va = mat_vec(&circuit.a, &full, n);
    if inputs {
        for j in 0..ni {
            va[nc + j] += full[j];
        }
    }
    let vb = mat_vec(&circuit.b, &full, n);
    let vc = mat_vec(&circuit.c, &full, n);
    lagrange_sum::<G1Projective>(domain, &phase1.beta_tau_g1[..n], &va)
        + lagrange_sum::<G1Projective>(domain, &phase1.alpha_tau_g1[..n], &vb)
        + lagrange_sum::<G1Projective>(domain, &phase1.tau_g1[..n], &vc)
}

/// Checks that the L and H queries are the circuit's start divided by the final δ: one random
/// linear combination of each, paired with δ·G₂, against the same combination of the start
/// (computed from phase 1's powers) paired with G₂.
fn check_divided_by_delta(
    phase1: &Phase1,
    circuit: &CircuitShape,
    pk: &ProvingKey<Bls12_381>,
) -> Result<(), CeremonyError> {
    let inconsistent = |what: &str| Err(CeremonyError::Inconsistent(what.to_string()));
    let (n, domain) = domain(phase1, circuit)?;
    let g2 = G2Affine::generator();
    let mut rng = rand_core::OsRng;
    let c = random_vector(circuit.num_witness, &mut rng);
    let start = abc_sum(phase1, circuit, &domain, &c, false).into_affine();
    let now = msm::<G1Projective>(&pk.l_query, &c).into_affine();
    if !same_ratio((now, start), (g2, pk.vk.delta_g2)) {
        return inconsistent("the L query is not the circuit's divided by δ");
    }
    // H: τⁱ·Z(τ) = τ^(i+n) − τⁱ for i < n − 1.
    let c = random_vector(n - 1, &mut rng);
    let start = (msm::<G1Projective>(&phase1.tau_g1[n..2 * n - 1], &c)
        - msm::<G1Projective>(&phase1.tau_g1[..n - 1], &c))
    .into_affine();
    let now = msm::<G1Projective>(&pk.h_query, &c).into_affine();
    if !same_ratio((now, start), (g2, pk.vk.delta_g2)) {
        return inconsistent("the H query is not the circuit's divided by δ");
    }
    Ok(())
}

/// The circuit's evaluation domain and its size, which phase 1 must cover.
fn domain(
    phase1: &Phase1,
    circuit: &CircuitShape,
) -> Result<(usize, GeneralEvaluationDomain<Fr>), CeremonyError> {
    let n = circuit.domain_size;
    if n > phase1.size() {
        return Err(CeremonyError::Circuit(format!(
            "the circuit's domain has {n} points, more than phase 1's {}",
            phase1.size()
        )));
    }
    let domain = GeneralEvaluationDomain::<Fr>::new(n)
        .ok_or_else(|| CeremonyError::Circuit("no domain of that size".into()))?;
    Ok((n, domain))
}

/// The starting keys (γ = δ = 1): see the module documentation.
fn start(phase1: &Phase1, circuit: &CircuitShape) -> Result<ProvingKey<Bls12_381>, CeremonyError> {
    let (n, domain) = domain(phase1, circuit)?;
    let l_g1 = lagrange::<G1Projective>(&domain, &phase1.tau_g1[..n]);
    let l_g2 = lagrange_g2(&domain, &phase1.tau_g2[..n]);
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

    let a_query = G1Projective::normalize_batch(&evaluate::<G1Projective>(&a_cols, mul_g1));
    let b_g1_query = G1Projective::normalize_batch(&evaluate::<G1Projective>(&b_g1_cols, mul_g1));
    let b_g2_query = G2Projective::normalize_batch(&evaluate::<G2Projective>(&b_g2_cols, mul_g2));
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
    let abc = G1Projective::normalize_batch(&evaluate::<G1Projective>(&abc, mul_g1));
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
