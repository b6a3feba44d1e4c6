//! Stateless verification (docs/protocol/transactions.md): everything about a transaction that can be checked without
//! the ledger's state — its shape, a mint's issuer signature, and its Groth16 proof against the
//! public inputs recomputed from its own fields.
//!
//! [`Verifier::verify_batch`] checks many proofs with one multi-Miller loop and one final
//! exponentiation (random linear combination with coefficients drawn from 2^128 values), in parallel over cores,
//! and when the batch fails, finds the bad proofs by bisection. This crate never links witness or
//! proving code: it depends on the verifying key and the public-input encoding only.
//!
//! The verifying key, the statement and the public inputs are arkworks'; decoding the proof's
//! points and the pairings run on blst (see [`DecodedProof`] and docs/decisions/0017), whose
//! verdicts the tests hold against ark-groth16's.
#![deny(unsafe_code)]
#![deny(missing_docs)]

use ark_bls12_381::{Bls12_381, Fr};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{BigInteger, One, PrimeField, Zero};
use ark_groth16::VerifyingKey;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;
use shoji_primitives::encoding::EncodingError;
use shoji_primitives::tx::{ShapeError, Transaction};
use std::path::Path;

pub mod accounts;
mod fixed_base;
pub mod msm;
mod pairing;
use fixed_base::FixedBaseTables;
pub use pairing::{BadProofEncoding, DecodedProof, PROOF_BYTES};
use pairing::{G2Lines, Gt, SplitScalar};

/// A proof did not verify, or was checked against the wrong number of inputs.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerificationError {
    /// The proof is not valid for these public inputs.
    #[error("the proof does not verify against its public inputs")]
    InvalidProof,
    /// The number of public inputs does not match the verifying key.
    #[error("expected {expected} public inputs, got {got}")]
    InputCount {
        /// What the key requires.
        expected: usize,
        /// What was given.
        got: usize,
    },
}

/// Why a transaction failed stateless validation.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// Its bytes (or its proof's points) are malformed.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] EncodingError),
    /// Its public values do not fit its kind.
    #[error("invalid transaction shape: {0}")]
    Shape(#[from] ShapeError),
    /// A mint's issuer signature is invalid.
    #[error("the issuer signature is invalid")]
    BadIssuerSignature,
    /// The proof is invalid.
    #[error(transparent)]
    Proof(#[from] VerificationError),
    /// An account transaction's proof or issuer signature is invalid.
    #[error(transparent)]
    Account(#[from] accounts::AccountTxError),
}

/// A verifying key, prepared for single and batched verification.
pub struct Verifier {
    vk: VerifyingKey<Bls12_381>,
    input_tables: FixedBaseTables,
    alpha_neg: blst::blst_p1_affine,
    /// The Miller loop of `(−α, β)`: a constant of every single verification.
    alpha_beta_neg: Gt,
    gamma_neg: G2Lines,
    delta_neg: G2Lines,
    beta: G2Lines,
}

/// One proof with its public inputs, for [`Verifier::verify_batch`].
pub struct BatchItem {
    /// The proof (already decoded and subgroup-checked).
    pub proof: DecodedProof,
    /// Its public inputs.
    pub inputs: Vec<Fr>,
}

impl Verifier {
    /// A verifier for `vk`.
    pub fn new(vk: &VerifyingKey<Bls12_381>) -> Self {
        let alpha_neg = pairing::g1_from_ark(&(-vk.alpha_g1.into_group()).into_affine());
        let beta = G2Lines::new(&vk.beta_g2);
        Self {
            alpha_neg,
            alpha_beta_neg: beta.miller_loop(&alpha_neg),
            gamma_neg: G2Lines::new(&(-vk.gamma_g2.into_group()).into_affine()),
            delta_neg: G2Lines::new(&(-vk.delta_g2.into_group()).into_affine()),
            beta,
            input_tables: FixedBaseTables::new(&vk.gamma_abc_g1),
            vk: vk.clone(),
        }
    }

    /// A verifier for the verifying-key file at `path`, refused unless it matches the pinned hash.
    pub fn from_file(path: &Path) -> Result<Self, shoji_params::ParamsError> {
        Ok(Self::new(&shoji_params::load_verifying_key(path)?.vk))
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bls12_381> {
        &self.vk
    }

    fn check_input_count(&self, inputs: &[Fr]) -> Result<(), VerificationError> {
        // ark-groth16 does not check this: an extra input would be ignored, a missing one read
        // as zero.
        let expected = self.vk.gamma_abc_g1.len() - 1;
        if inputs.len() != expected {
            return Err(VerificationError::InputCount {
                expected,
                got: inputs.len(),
            });
        }
        Ok(())
    }

    /// Verifies one proof against its public inputs: `e(A, B) = e(α, β)·e(IC, γ)·e(C, δ)` with
    /// `IC = γ_abc[0] + Σ x_j·γ_abc[j]`.
    pub fn verify_proof(
        &self,
        proof: &DecodedProof,
        inputs: &[Fr],
    ) -> Result<(), VerificationError> {
        self.check_input_count(inputs)?;
        let ic = pairing::to_affine(&self.prepare_inputs(&[Fr::one()], inputs));
        let product = pairing::multi_miller_loop(&[(*proof.a(), *proof.b())])
            .mul(self.gamma_neg.miller_loop(&ic))
            .mul(self.delta_neg.miller_loop(proof.c()))
            .mul(self.alpha_beta_neg);
        match product.final_exp_is_one() {
            true => Ok(()),
            false => Err(VerificationError::InvalidProof),
        }
    }

    /// `c_0·γ_abc[0] + Σ c_j·γ_abc[j]` with `c = first ‖ rest`, from the precomputed tables.
    fn prepare_inputs(&self, first: &[Fr], rest: &[Fr]) -> blst::blst_p1 {
        let scalars: Vec<Fr> = first.iter().chain(rest).copied().collect();
        self.input_tables.msm(&scalars)
    }

    /// Stateless validation of one transaction: shape, issuer signature (mint), proof.
    pub fn verify_transaction(&self, tx: &Transaction) -> Result<(), TxError> {
        let item = self.prepare(tx)?;
        self.verify_proof(&item.proof, &item.inputs)?;
        Ok(())
    }

    /// Everything but the proof check; returns the proof and its inputs.
    fn prepare(&self, tx: &Transaction) -> Result<BatchItem, TxError> {
        tx.check_shape()?;
        if let Transaction::Mint { auth, .. } = tx {
            let key = ed25519_dalek::VerifyingKey::from_bytes(&auth.issuer)
                .map_err(|_| TxError::BadIssuerSignature)?;
            let sig = ed25519_dalek::Signature::from_bytes(&auth.signature);
            key.verify_strict(&tx.sighash(), &sig)
                .map_err(|_| TxError::BadIssuerSignature)?;
        }
        if let Transaction::Shield { debit, proof, .. } = tx {
            accounts::verify_shield_withdrawal(tx, debit, proof)?;
        }
        let proof = DecodedProof::from_bytes(&tx.bundle().proof.0)
            .map_err(|_| EncodingError::InvalidPoint("proof"))?;
        Ok(BatchItem {
            proof,
            inputs: tx.public_inputs().to_field_elements(),
        })
    }

    /// Stateless validation of many transactions, proofs batched. One result per transaction, in
    /// order.
    pub fn verify_transactions(&self, txs: &[Transaction]) -> Vec<Result<(), TxError>> {
        let prepared: Vec<Result<BatchItem, TxError>> =
            txs.par_iter().map(|tx| self.prepare(tx)).collect();
        let mut results: Vec<Result<(), TxError>> = Vec::with_capacity(txs.len());
        let (mut idx, mut items) = (Vec::new(), Vec::new());
        for (i, p) in prepared.into_iter().enumerate() {
            match p {
                Ok(item) => {
                    idx.push(i);
                    items.push(item);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        for (k, r) in self.verify_batch(&items).into_iter().enumerate() {
            if let Err(e) = r {
                results[idx[k]] = Err(e.into());
            }
        }
        results
    }

    /// Verifies a batch; returns one result per item. If the whole batch verifies, every result is
    /// `Ok`; otherwise the batch is bisected until each bad proof is identified.
    pub fn verify_batch(&self, items: &[BatchItem]) -> Vec<Result<(), VerificationError>> {
        let mut results: Vec<Result<(), VerificationError>> = Vec::with_capacity(items.len());
        let mut valid = Vec::with_capacity(items.len());
        for item in items {
            results.push(self.check_input_count(&item.inputs));
            valid.push(results.last().is_some_and(|r| r.is_ok()));
        }
        let candidates: Vec<usize> = (0..items.len()).filter(|&i| valid[i]).collect();
        self.bisect(items, &candidates, &mut results);
        results
    }

    fn bisect(
        &self,
        items: &[BatchItem],
        idx: &[usize],
        results: &mut [Result<(), VerificationError>],
    ) {
        // Below this size a failed batch is not split but checked proof by proof.
        const SINGLE_BELOW: usize = 4;
        if idx.is_empty() {
            return;
        }
        // Two or three proofs are still cheaper as one batch (one final exponentiation)
        // than one by one, when they are valid, which is the common case.
        if idx.len() >= 2 && idx.len() < SINGLE_BELOW {
            let batch: Vec<&BatchItem> = idx.iter().map(|&i| &items[i]).collect();
            if self.batch_holds(&batch) {
                return;
            }
        }
        if idx.len() < SINGLE_BELOW {
            let checked: Vec<(usize, Result<(), VerificationError>)> = idx
                .par_iter()
                .map(|&i| (i, self.verify_proof(&items[i].proof, &items[i].inputs)))
                .collect();
            for (i, r) in checked {
                results[i] = r;
            }
            return;
        }
        let batch: Vec<&BatchItem> = idx.iter().map(|&i| &items[i]).collect();
        if self.batch_holds(&batch) {
            return;
        }
        let (left, right) = idx.split_at(idx.len() / 2);
        self.bisect(items, left, results);
        self.bisect(items, right, results);
    }

    /// Checks `Π e(r_i·A_i, B_i) = e(α, β)^{Σ r_i} · e(Σ r_i·IC_i, γ) · e(Σ r_i·C_i, δ)` with one
    /// multi-Miller loop and one final exponentiation.
    fn batch_holds(&self, batch: &[&BatchItem]) -> bool {
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        // Coefficients r_i = lo_i + λ·hi_i from two random 64-bit halves: 2^128 distinct
        // values (see `SplitScalar`), so a bad proof passes with probability at most 2^-128,
        // and r_i·P costs 64 doublings.
        let r: Vec<SplitScalar> = (0..batch.len())
            .map(|_| SplitScalar {
                lo: rng.next_u64(),
                hi: rng.next_u64(),
            })
            .collect();
        let lambda = Fr::from(pairing::LAMBDA);

        // Σ r_i·IC_i = (Σ r_i)·γ_abc[0] + Σ_j (Σ_i r_i·x_ij)·γ_abc[j]: one small MSM.
        let n_inputs = self.vk.gamma_abc_g1.len();
        let mut coeffs = vec![Fr::zero(); n_inputs];
        for (ri, item) in r.iter().zip(batch) {
            let ri = Fr::from(ri.lo) + lambda * Fr::from(ri.hi);
            coeffs[0] += ri;
            for (c, x) in coeffs[1..].iter_mut().zip(&item.inputs) {
                *c += ri * x;
            }
        }
        let ic = pairing::to_affine(&self.input_tables.msm(&coeffs));
        let r_sum = coeffs[0].into_bigint();
        let alpha = pairing::to_affine(&pairing::mul_limbs(
            &self.alpha_neg,
            &r_sum.0,
            r_sum.num_bits() as usize,
        ));

        // Per proof: r_i·A_i paired with B_i (Miller loops of a chunk together), and
        // Σ r_i·C_i (one multi-scalar multiplication per chunk); chunks in parallel.
        let beta = pairing::beta_cached();
        let chunk = batch
            .len()
            .div_ceil(rayon::current_num_threads().max(1))
            .max(1);
        let (proof_part, c_sum) = batch
            .par_chunks(chunk)
            .zip(r.par_chunks(chunk))
            .map(|(items, rs)| {
                let ra: Vec<blst::blst_p1> = items
                    .iter()
                    .zip(rs)
                    .map(|(b, ri)| pairing::mul_split(b.proof.a(), *ri, beta))
                    .collect();
                let cs: Vec<blst::blst_p1_affine> = items.iter().map(|b| *b.proof.c()).collect();
                let c_sum = pairing::msm_split(&cs, rs, beta);
                let pairs: Vec<(blst::blst_p1_affine, blst::blst_p2_affine)> =
                    pairing::batch_to_affine(&ra)
                        .into_iter()
                        .zip(items)
                        .map(|(ra, b)| (ra, *b.proof.b()))
                        .collect();
                (pairing::multi_miller_loop(&pairs), Some(c_sum))
            })
            .reduce(
                || (Gt::one(), None),
                |(ga, ca), (gb, cb)| {
                    let c = match (ca, cb) {
                        (Some(a), Some(b)) => Some(pairing::add(&a, &b)),
                        (a, b) => a.or(b),
                    };
                    (ga.mul(gb), c)
                },
            );
        let Some(c_sum) = c_sum else {
            return true;
        };
        let c_sum = pairing::to_affine(&c_sum);
        proof_part
            .mul(self.gamma_neg.miller_loop(&ic))
            .mul(self.delta_neg.miller_loop(&c_sum))
            .mul(self.beta.miller_loop(&alpha))
            .final_exp_is_one()
    }
}

#[cfg(test)]
mod tests;
