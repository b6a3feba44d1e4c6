//! Multi-scalar multiplication on blst's Pippenger, for the prover: the proving key's bases
//! converted once ([`G1Bases`], [`G2Bases`]), then each MSM over arkworks scalars returns an
//! arkworks point. blst's MSM beats arkworks' on every one of the prover's five
//! (BENCHMARKS.md, "The prover's MSMs"), most in G2.
//!
//! With a rayon pool as large as the machine, blst's own pool runs the MSM (its tiling beats
//! splitting the points: 474 against 506 ms per proof on two threads, BENCHMARKS.md). With a
//! smaller pool, the work is split over that pool instead (one single-threaded Pippenger per
//! chunk, the partial sums added), so a prover limited to one thread uses one.

use ark_bls12_381::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ff::{BigInteger, PrimeField};

use crate::pairing::{g1_from_ark, g1_to_ark, g2_from_ark, g2_to_ark, p1_msm, p2_msm};
use blst::MultiPoint;
use rayon::prelude::*;

/// Bits of a scalar of BLS12-381's group order.
const SCALAR_BITS: usize = 255;

/// The scalars as blst reads them: 32 little-endian bytes each.
fn scalar_bytes(scalars: &[<Fr as PrimeField>::BigInt]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 * scalars.len());
    for s in scalars {
        out.extend_from_slice(&s.to_bytes_le());
    }
    out
}

/// Points per chunk: one chunk per thread of the caller's pool.
fn chunk_len(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads()).max(1)
}

/// Whether the caller's pool has every core: then blst's own pool may use them all.
fn whole_machine() -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::current_num_threads() >= cores && cores > 1
}

/// G1 bases in blst's form.
pub struct G1Bases(Vec<blst::blst_p1_affine>);

impl G1Bases {
    /// Converts `points` (trusted: a proving key's, checked when it was loaded).
    pub fn from_ark(points: &[G1Affine]) -> Self {
        Self(points.iter().map(g1_from_ark).collect())
    }

    /// Σ scalarsᵢ·basesᵢ over the first `scalars.len()` bases.
    pub fn msm(&self, scalars: &[<Fr as PrimeField>::BigInt]) -> G1Projective {
        let n = scalars.len().min(self.0.len());
        let bytes = scalar_bytes(&scalars[..n]);
        if n > 0 && whole_machine() {
            return g1_to_ark(&self.0[..n].mult(&bytes, SCALAR_BITS)).into();
        }
        let chunk = chunk_len(n);
        self.0[..n]
            .par_chunks(chunk)
            .zip(bytes.par_chunks(chunk * 32))
            .map(|(p, s)| G1Projective::from(g1_to_ark(&p1_msm(p, s, SCALAR_BITS))))
            .sum()
    }
}

/// G2 bases in blst's form.
pub struct G2Bases(Vec<blst::blst_p2_affine>);

impl G2Bases {
    /// Converts `points` (trusted, as for [`G1Bases::from_ark`]).
    pub fn from_ark(points: &[G2Affine]) -> Self {
        Self(points.iter().map(g2_from_ark).collect())
    }

    /// Σ scalarsᵢ·basesᵢ over the first `scalars.len()` bases.
    pub fn msm(&self, scalars: &[<Fr as PrimeField>::BigInt]) -> G2Projective {
        let n = scalars.len().min(self.0.len());
        let bytes = scalar_bytes(&scalars[..n]);
        if n > 0 && whole_machine() {
            return g2_to_ark(&self.0[..n].mult(&bytes, SCALAR_BITS)).into();
        }
        let chunk = chunk_len(n);
        self.0[..n]
            .par_chunks(chunk)
            .zip(bytes.par_chunks(chunk * 32))
            .map(|(p, s)| G2Projective::from(g2_to_ark(&p2_msm(p, s, SCALAR_BITS))))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::{CurveGroup, VariableBaseMSM};
    use ark_std::UniformRand;
    use rand_core::SeedableRng;

    /// blst's MSM equals arkworks' on random bases and scalars, the identity among the bases
    /// and zero and one among the scalars (a witness has many), in G1 and G2: on the default
    /// pool (blst's own threads on a machine of more than one core), and split over pools of
    /// one and three threads (uneven chunks).
    #[test]
    fn blst_msm_equals_arkworks() {
        compare();
        for threads in [1, 3] {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(compare);
        }
    }

    fn compare() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for n in [1usize, 2, 7, 64, 300] {
            let mut g1: Vec<G1Affine> = (0..n).map(|_| G1Affine::rand(&mut rng)).collect();
            let mut g2: Vec<G2Affine> = (0..n).map(|_| G2Affine::rand(&mut rng)).collect();
            g1[0] = G1Affine::identity();
            g2[n - 1] = G2Affine::identity();
            let scalars: Vec<Fr> = (0..n)
                .map(|i| match i % 3 {
                    0 => Fr::from((i % 2) as u64),
                    _ => Fr::rand(&mut rng),
                })
                .collect();
            let big: Vec<_> = scalars.iter().map(|s| s.into_bigint()).collect();
            assert_eq!(
                G1Bases::from_ark(&g1).msm(&big).into_affine(),
                G1Projective::msm_unchecked(&g1, &scalars).into_affine(),
                "G1, {n}"
            );
            assert_eq!(
                G2Bases::from_ark(&g2).msm(&big).into_affine(),
                G2Projective::msm_unchecked(&g2, &scalars).into_affine(),
                "G2, {n}"
            );
        }
        assert_eq!(G1Bases::from_ark(&[]).msm(&[]), G1Projective::default());
    }
}
