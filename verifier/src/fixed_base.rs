//! Fixed-base multiplication tables for the verifying key's input bases.
//!
//! Preparing a proof's public inputs is `γ_abc[0] + Σ x_j·γ_abc[j]` with bases fixed by the key.
//! For each base and each window of [`WINDOW_BITS`] bits of a scalar we store every multiple of
//! that window's weight, so a scalar multiplication is one mixed addition per non-zero window
//! instead of a full double-and-add.

use crate::pairing;
use ark_bls12_381::{Fr, G1Affine};
use ark_ec::AffineRepr;
use ark_ff::PrimeField;
use blst::{blst_p1, blst_p1_affine};
use rayon::prelude::*;

/// Bits per window.
pub const WINDOW_BITS: usize = 6;
const WINDOWS: usize = (Fr::MODULUS_BIT_SIZE as usize).div_ceil(WINDOW_BITS);
const ENTRIES: usize = (1 << WINDOW_BITS) - 1;

/// `tables[j][w·ENTRIES + d - 1] = d·2^(w·WINDOW_BITS)·bases[j]` (empty for an identity base,
/// which contributes nothing).
pub struct FixedBaseTables {
    tables: Vec<Vec<blst_p1_affine>>,
}

impl FixedBaseTables {
    /// Precomputes the tables for `bases`.
    pub fn new(bases: &[G1Affine]) -> Self {
        let tables = bases
            .par_iter()
            .map(|base| {
                if base.is_zero() {
                    return Vec::new();
                }
                let mut points: Vec<blst_p1> = Vec::with_capacity(WINDOWS * ENTRIES);
                let mut weight = pairing::from_affine(&pairing::g1_from_ark(base));
                for _ in 0..WINDOWS {
                    let mut acc = weight;
                    for _ in 0..ENTRIES {
                        points.push(acc);
                        acc = pairing::add(&acc, &weight);
                    }
                    weight = acc; // 2^WINDOW_BITS · weight
                }
                pairing::batch_to_affine(&points)
            })
            .collect();
        Self { tables }
    }

    /// `Σ scalars[j]·bases[j]` (the shorter of the two lengths).
    pub fn msm(&self, scalars: &[Fr]) -> blst_p1 {
        let mut acc = blst_p1::default();
        for (table, s) in self.tables.iter().zip(scalars) {
            if table.is_empty() {
                continue;
            }
            let limbs = s.into_bigint().0;
            for w in 0..WINDOWS {
                let d = window(&limbs, w * WINDOW_BITS);
                if d != 0 {
                    pairing::add_affine_assign(&mut acc, &table[w * ENTRIES + d - 1]);
                }
            }
        }
        acc
    }
}

/// The `WINDOW_BITS` bits of `limbs` (little-endian) from bit `at`.
fn window(limbs: &[u64; 4], at: usize) -> usize {
    let (i, shift) = (at / 64, at % 64);
    let mut bits = limbs[i] >> shift;
    if shift + WINDOW_BITS > 64 && i + 1 < limbs.len() {
        bits |= limbs[i + 1] << (64 - shift);
    }
    (bits as usize) & ENTRIES
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bls12_381::G1Projective;
    use ark_ec::{CurveGroup, VariableBaseMSM};
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
        let expected = G1Projective::msm(&bases, &scalars).unwrap().into_affine();
        assert_eq!(
            pairing::to_affine(&t.msm(&scalars)),
            pairing::g1_from_ark(&expected)
        );
        // An identity base contributes nothing.
        let mut with_zero = bases.clone();
        with_zero[4] = G1Affine::zero();
        let t = FixedBaseTables::new(&with_zero);
        let expected = G1Projective::msm(&with_zero, &scalars)
            .unwrap()
            .into_affine();
        assert_eq!(
            pairing::to_affine(&t.msm(&scalars)),
            pairing::g1_from_ark(&expected)
        );
    }
}
