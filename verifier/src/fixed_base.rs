//! Fixed-base multiplication tables for the verifying key's input bases.
//!
//! Preparing a proof's public inputs is `γ_abc[0] + Σ x_j·γ_abc[j]` with bases fixed by the key.
//! For each base and each window of [`WINDOW_BITS`] bits of a scalar we store every multiple of
//! that window's weight, so a scalar multiplication is one mixed addition per non-zero window
//! instead of a full double-and-add.

use ark_bls12_381::{Fr, G1Affine, G1Projective};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{BigInteger, PrimeField, Zero};
use rayon::prelude::*;

/// Bits per window.
pub const WINDOW_BITS: usize = 6;
const WINDOWS: usize = (Fr::MODULUS_BIT_SIZE as usize).div_ceil(WINDOW_BITS);
const ENTRIES: usize = (1 << WINDOW_BITS) - 1;

/// `tables[j][w][d - 1] = d·2^(w·WINDOW_BITS)·bases[j]`.
pub struct FixedBaseTables {
    tables: Vec<Vec<G1Affine>>,
}

impl FixedBaseTables {
    /// Precomputes the tables for `bases`.
    pub fn new(bases: &[G1Affine]) -> Self {
        let tables = bases
            .par_iter()
            .map(|base| {
                let mut points = Vec::with_capacity(WINDOWS * ENTRIES);
                let mut weight = base.into_group();
                for _ in 0..WINDOWS {
                    let mut acc = weight;
                    for _ in 0..ENTRIES {
                        points.push(acc);
                        acc += weight;
                    }
                    weight = acc; // 2^WINDOW_BITS · weight
                }
                G1Projective::normalize_batch(&points)
            })
            .collect();
        Self { tables }
    }

    /// `Σ scalars[j]·bases[j]` (the shorter of the two lengths).
    pub fn msm(&self, scalars: &[Fr]) -> G1Projective {
        let mut acc = G1Projective::zero();
        for (table, s) in self.tables.iter().zip(scalars) {
            let bits = s.into_bigint().to_bits_le();
            for (w, chunk) in bits.chunks(WINDOW_BITS).enumerate().take(WINDOWS) {
                let d = chunk
                    .iter()
                    .rev()
                    .fold(0usize, |a, &b| (a << 1) | b as usize);
                if d != 0 {
                    acc += table[w * ENTRIES + d - 1];
                }
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ec::VariableBaseMSM;
    use ark_std::UniformRand;

    #[test]
    fn matches_msm() {
        let mut rng = ark_std::test_rng();
        let bases: Vec<G1Affine> = (0..5)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let t = FixedBaseTables::new(&bases);
        let mut scalars: Vec<Fr> = (0..5).map(|_| Fr::rand(&mut rng)).collect();
        scalars[1] = Fr::from(0u64);
        scalars[2] = -Fr::from(1u64);
        scalars[3] = Fr::from(63u64);
        assert_eq!(
            t.msm(&scalars),
            G1Projective::msm(&bases, &scalars).unwrap()
        );
    }
}
