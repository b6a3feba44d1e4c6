//! The Groth16 prover, with the constraint matrices computed once and timings per phase.
//!
//! The math is the Groth16 prover (Groth, EUROCRYPT 2016) over ark-groth16's key layout and its
//! libsnark R1CS-to-QAP reduction: `A = α + Σ z_i·a_i + r·δ`, `B = β + Σ z_i·b_i + s·δ` (in G2 and
//! G1), `C = Σ w_i·l_i + Σ h_i·h_i + s·A + r·B₁ − r·s·δ`. Proving a fresh statement then needs only
//! witness generation (no matrix construction), one QAP witness map (the FFTs) and five MSMs.

use crate::ProveError;
use ark_bls12_381::{Bls12_381, Fr, G1Projective, G2Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{PrimeField, UniformRand};
use ark_groth16::r1cs_to_qap::{LibsnarkReduction, R1CSToQAP};
use ark_groth16::{Proof, ProvingKey};
use ark_poly::GeneralEvaluationDomain;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisMode, R1CS_PREDICATE_LABEL,
};
use ark_relations::utils::matrix::Matrix;
use shoji_circuits::TransferCircuit;
use shoji_verifier::msm::{G1Bases, G2Bases};
use std::time::{Duration, Instant};

/// Where one proof's time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProveTimings {
    /// Running the circuit to produce the witness.
    pub witness: Duration,
    /// The QAP witness map (three inverse and three forward FFTs, pointwise products).
    pub fft: Duration,
    /// MSM over the A query (G1).
    pub msm_a: Duration,
    /// MSM over the B query in G1.
    pub msm_b_g1: Duration,
    /// MSM over the B query in G2.
    pub msm_b_g2: Duration,
    /// MSM over the L query (G1, witness part).
    pub msm_l: Duration,
    /// MSM over the H query (G1, quotient coefficients).
    pub msm_h: Duration,
    /// The whole proof.
    pub total: Duration,
}

/// A proving key with the circuit's constraint matrices, and its MSM bases converted for
/// blst's Pippenger (once, when the key is loaded).
pub struct Prover {
    pk: ProvingKey<Bls12_381>,
    bases: Bases,
    pvk: ark_groth16::PreparedVerifyingKey<Bls12_381>,
    matrices: Vec<Matrix<Fr>>,
    num_instance: usize,
    num_constraints: usize,
}

/// The proving key's five MSM bases in blst's form: blst's Pippenger is 18–31 % faster than
/// arkworks' on each (BENCHMARKS.md, "The prover's MSMs").
struct Bases {
    a: G1Bases,
    b_g1: G1Bases,
    b_g2: G2Bases,
    l: G1Bases,
    h: G1Bases,
}

impl Bases {
    fn of(pk: &ProvingKey<Bls12_381>) -> Self {
        // Index 0 of the A and B queries is the constant `one`'s, added outside the MSM.
        Self {
            a: G1Bases::from_ark(pk.a_query.get(1..).unwrap_or_default()),
            b_g1: G1Bases::from_ark(pk.b_g1_query.get(1..).unwrap_or_default()),
            b_g2: G2Bases::from_ark(pk.b_g2_query.get(1..).unwrap_or_default()),
            l: G1Bases::from_ark(&pk.l_query),
            h: G1Bases::from_ark(&pk.h_query),
        }
    }
}

impl Prover {
    /// Prepares `pk` for proving: synthesizes the circuit's shape once.
    pub fn new(pk: ProvingKey<Bls12_381>) -> Result<Self, ProveError> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        TransferCircuit::blank()
            .generate_constraints(cs.clone())
            .map_err(|e| ProveError::Synthesis(e.to_string()))?;
        cs.finalize();
        let mut all = cs
            .to_matrices()
            .map_err(|e| ProveError::Synthesis(e.to_string()))?;
        let matrices = all
            .remove(R1CS_PREDICATE_LABEL)
            .ok_or_else(|| ProveError::Synthesis("no R1CS matrices".into()))?;
        Ok(Self {
            num_instance: cs.num_instance_variables(),
            num_constraints: cs.num_constraints(),
            pvk: ark_groth16::prepare_verifying_key(&pk.vk),
            bases: Bases::of(&pk),
            pk,
            matrices,
        })
    }

    /// The development prover: cached insecure parameters.
    pub fn dev() -> Result<Self, ProveError> {
        let params =
            shoji_params::dev::parameters().map_err(|e| ProveError::Synthesis(e.to_string()))?;
        Self::new(params.pk.clone())
    }

    /// The proving key.
    pub fn proving_key(&self) -> &ProvingKey<Bls12_381> {
        &self.pk
    }

    /// Number of constraints of the circuit.
    pub fn num_constraints(&self) -> usize {
        self.num_constraints
    }

    /// Proves `circuit`; checks the proof verifies before returning it.
    pub fn prove(
        &self,
        circuit: TransferCircuit,
        rng: &mut impl rand_core::RngCore,
    ) -> Result<(Proof<Bls12_381>, ProveTimings), ProveError> {
        let start = Instant::now();
        let mut t = ProveTimings::default();
        let synth = |e: ark_relations::gr1cs::SynthesisError| ProveError::Synthesis(e.to_string());

        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Prove {
            construct_matrices: false,
            generate_lc_assignments: false,
        });
        circuit.generate_constraints(cs.clone()).map_err(synth)?;
        let mut z = cs.instance_assignment().map_err(synth)?;
        if z.len() != self.num_instance {
            return Err(ProveError::Synthesis(
                "instance size differs from the key's".into(),
            ));
        }
        z.extend(cs.witness_assignment().map_err(synth)?);
        drop(cs);
        t.witness = start.elapsed();

        let mark = Instant::now();
        let h = LibsnarkReduction::witness_map_from_matrices::<Fr, GeneralEvaluationDomain<Fr>>(
            &self.matrices,
            self.num_instance,
            self.num_constraints,
            &z,
        )
        .map_err(synth)?;
        t.fft = mark.elapsed();

        let pk = &self.pk;
        let r = Fr::rand(rng);
        let s = Fr::rand(rng);
        let z_big: Vec<_> = z[1..].iter().map(|x| x.into_bigint()).collect();
        let w_big = &z_big[self.num_instance - 1..];
        let h_big: Vec<_> = h.iter().map(|x| x.into_bigint()).collect();
        let timed = |slot: &mut Duration, f: &mut dyn FnMut()| {
            let m = Instant::now();
            f();
            *slot = m.elapsed();
        };

        let mut a = G1Projective::default();
        timed(&mut t.msm_a, &mut || {
            a = pk.vk.alpha_g1.into_group()
                + pk.a_query[0]
                + self.bases.a.msm(&z_big)
                + pk.delta_g1 * r;
        });
        let mut b1 = G1Projective::default();
        timed(&mut t.msm_b_g1, &mut || {
            b1 = pk.beta_g1.into_group()
                + pk.b_g1_query[0]
                + self.bases.b_g1.msm(&z_big)
                + pk.delta_g1 * s;
        });
        let mut b2 = G2Projective::default();
        timed(&mut t.msm_b_g2, &mut || {
            b2 = pk.vk.beta_g2.into_group()
                + pk.b_g2_query[0]
                + self.bases.b_g2.msm(&z_big)
                + pk.vk.delta_g2 * s;
        });
        let mut l = G1Projective::default();
        timed(&mut t.msm_l, &mut || l = self.bases.l.msm(w_big));
        let mut hh = G1Projective::default();
        timed(&mut t.msm_h, &mut || hh = self.bases.h.msm(&h_big));
        let c = l + hh + a * s + b1 * r - pk.delta_g1 * (r * s);

        let proof = Proof {
            a: a.into_affine(),
            b: b2.into_affine(),
            c: c.into_affine(),
        };
        t.total = start.elapsed();
        let inputs = &z[1..self.num_instance];
        match ark_groth16::Groth16::<Bls12_381>::verify_proof(&self.pvk, &proof, inputs) {
            Ok(true) => Ok((proof, t)),
            _ => Err(ProveError::Unsatisfied),
        }
    }
}
