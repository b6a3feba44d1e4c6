//! Gadgets for [`super`]: 64-bit values, commitments, nullifiers and owner tags.

use crate::poseidon::{constraints as poseidon, Domain};
use crate::Fr;
use ark_r1cs_std::{alloc::AllocVar, boolean::Boolean, fields::fp::FpVar};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

/// A witness proven to fit in 64 bits: its bits (booleans) and the value as their weighted sum.
pub struct U64Var {
    /// Little-endian bits.
    pub bits: Vec<Boolean<Fr>>,
    /// `Σ bits[i]·2^i`.
    pub value: FpVar<Fr>,
}

impl U64Var {
    /// Allocates `value` as 64 boolean witnesses (64 constraints); the field value is their sum, so
    /// it is below 2^64 by construction.
    pub fn new_witness(
        cs: ConstraintSystemRef<Fr>,
        value: impl FnOnce() -> Result<u64, SynthesisError>,
    ) -> Result<Self, SynthesisError> {
        let v = value();
        let bits = (0..64)
            .map(|i| {
                Boolean::new_witness(cs.clone(), || {
                    v.as_ref().map(|v| (v >> i) & 1 == 1).map_err(|e| *e)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let value = Boolean::le_bits_to_fp(&bits)?;
        Ok(Self { bits, value })
    }
}

/// `asset·2^64 + value` for range-checked halves.
pub fn pack_asset_value(asset: &FpVar<Fr>, value: &FpVar<Fr>) -> FpVar<Fr> {
    asset * Fr::from(1u128 << 64) + value
}

/// Enforces and returns the note commitment, the gadget of [`super::note_commitment`].
pub fn note_commitment(
    packed: &FpVar<Fr>,
    owner: &FpVar<Fr>,
    rho: &FpVar<Fr>,
    rcm: &FpVar<Fr>,
) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon::hash(
        Domain::NoteCommitment,
        &[packed.clone(), owner.clone(), rho.clone(), rcm.clone()],
    )
}

/// The gadget of [`super::nullifier`].
pub fn nullifier(nk: &FpVar<Fr>, rho: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon::hash(Domain::Nullifier, &[nk.clone(), rho.clone()])
}

/// The gadget of [`crate::keys::owner_tag`].
pub fn owner_tag(ask: &FpVar<Fr>, nk: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    poseidon::hash(Domain::OwnerTag, &[ask.clone(), nk.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{Amount, AssetId, Note};
    use ark_r1cs_std::GR1CSVar;
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;

    #[test]
    fn gadgets_match_native() {
        let mut rng = ark_std::test_rng();
        for _ in 0..4 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let note = Note {
                asset: AssetId(u64::rand(&mut rng)),
                value: Amount(u64::rand(&mut rng)),
                owner: Fr::rand(&mut rng),
                rho: Fr::rand(&mut rng),
                rcm: Fr::rand(&mut rng),
            };
            let (ask, nk) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
            let w = |x: Fr| FpVar::new_witness(cs.clone(), || Ok(x)).unwrap();
            let asset = U64Var::new_witness(cs.clone(), || Ok(note.asset.0)).unwrap();
            let value = U64Var::new_witness(cs.clone(), || Ok(note.value.0)).unwrap();
            let packed = pack_asset_value(&asset.value, &value.value);
            let cm = note_commitment(&packed, &w(note.owner), &w(note.rho), &w(note.rcm)).unwrap();
            assert_eq!(cm.value().unwrap(), note.commitment());
            let nkv = w(nk);
            assert_eq!(
                nullifier(&nkv, &w(note.rho)).unwrap().value().unwrap(),
                note.nullifier(&nk)
            );
            assert_eq!(
                owner_tag(&w(ask), &nkv).unwrap().value().unwrap(),
                crate::keys::owner_tag(&ask, &nk)
            );
            assert!(cs.is_satisfied().unwrap());
        }
    }

    /// A bit that is not 0 or 1 (a value ≥ 2^64 smuggled through the bits) is rejected.
    #[test]
    fn non_boolean_bit_rejected() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let v = U64Var::new_witness(cs.clone(), || Ok(5)).unwrap();
        assert!(cs.is_satisfied().unwrap());
        let Boolean::Var(b) = &v.bits[0] else {
            panic!("bit 0 is a variable")
        };
        // A "bit" equal to 2 would let the sum exceed 2^64: the boolean constraint must fail.
        assert!(crate::r1cs_testing::satisfied_with(&cs, &[]));
        assert!(!crate::r1cs_testing::satisfied_with(
            &cs,
            &[(b.variable(), Fr::from(2u64))]
        ));
    }
}
