//! The Merkle path gadget: proves a leaf sits under a root of the 4-ary tree.
//!
//! Per level: two boolean slot bits, one Poseidon permutation over the four children, and seven
//! constraints to place the path's node among its three siblings.

use super::{MerklePath, ARITY, DEPTH};
use crate::poseidon::{constraints as poseidon, Domain};
use crate::Fr;
use ark_r1cs_std::{alloc::AllocVar, boolean::Boolean, fields::fp::FpVar, fields::FieldVar};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

/// A witnessed authentication path.
pub struct MerklePathVar {
    /// The slot of the path's node at each level, as two little-endian bits.
    pub slot_bits: Vec<[Boolean<Fr>; 2]>,
    /// The three siblings at each level, in child order.
    pub siblings: Vec<[FpVar<Fr>; ARITY - 1]>,
}

impl MerklePathVar {
    /// Allocates `path` as witnesses.
    pub fn new_witness(
        cs: ConstraintSystemRef<Fr>,
        path: impl FnOnce() -> Result<MerklePath, SynthesisError>,
    ) -> Result<Self, SynthesisError> {
        let path = path();
        let mut slot_bits = Vec::with_capacity(DEPTH);
        let mut siblings = Vec::with_capacity(DEPTH);
        for level in 0..DEPTH {
            let slot = path.as_ref().map(|p| p.slot(level)).map_err(|e| *e);
            let bit =
                |i: usize| Boolean::new_witness(cs.clone(), || slot.map(|s| (s >> i) & 1 == 1));
            slot_bits.push([bit(0)?, bit(1)?]);
            let mut sib = Vec::with_capacity(ARITY - 1);
            for k in 0..ARITY - 1 {
                sib.push(FpVar::new_witness(cs.clone(), || {
                    path.as_ref().map(|p| p.siblings[level][k]).map_err(|e| *e)
                })?);
            }
            siblings.push([sib[0].clone(), sib[1].clone(), sib[2].clone()]);
        }
        Ok(Self {
            slot_bits,
            siblings,
        })
    }

    /// Enforces and returns the root reached from `leaf` along this path.
    pub fn root(&self, leaf: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
        let mut cur = leaf.clone();
        for (bits, sib) in self.slot_bits.iter().zip(&self.siblings) {
            let children = insert(&sib.clone(), &bits.clone(), &cur)?;
            cur = poseidon::hash(Domain::MerkleNode, &children)?;
        }
        Ok(cur)
    }
}

/// The four children with `node` inserted among `siblings` at the slot `bits` encode (the gadget
/// of [`super::insert`]).
pub fn insert(
    siblings: &[FpVar<Fr>; 3],
    bits: &[Boolean<Fr>; 2],
    node: &FpVar<Fr>,
) -> Result<[FpVar<Fr>; ARITY], SynthesisError> {
    let [s0, s1, s2] = siblings;
    let b0: FpVar<Fr> = bits[0].clone().into();
    let b1: FpVar<Fr> = bits[1].clone().into();
    let b01: FpVar<Fr> = (&bits[0] & &bits[1]).into();
    let one = FpVar::one();
    // Indicators of the slot, linear in b0, b1 and b0·b1.
    let is0 = &one - &b0 - &b1 + &b01;
    let is1 = &b0 - &b01;
    let is2 = &b1 - &b01;
    let is3 = b01;
    let ge1 = &one - &is0;
    Ok([
        s0 + &is0 * (node - s0),
        s0 + &ge1 * (s1 - s0) + &is1 * (node - s1),
        s1 + &is2 * (node - s1) + &is3 * (s2 - s1),
        s2 + &is3 * (node - s2),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Frontier, IncrementalWitness};
    use ark_r1cs_std::{eq::EqGadget, GR1CSVar};
    use ark_relations::gr1cs::ConstraintSystem;

    #[test]
    fn insert_matches_native_for_every_slot() {
        let sib = [Fr::from(10u64), Fr::from(11u64), Fr::from(12u64)];
        for slot in 0..4 {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let sv = sib.map(|x| FpVar::new_witness(cs.clone(), || Ok(x)).unwrap());
            let bits = [0, 1]
                .map(|i| Boolean::new_witness(cs.clone(), || Ok((slot >> i) & 1 == 1)).unwrap());
            let node = FpVar::new_witness(cs.clone(), || Ok(Fr::from(99u64))).unwrap();
            let got = insert(&sv, &bits, &node).unwrap();
            let want = crate::tree::insert(&sib, slot, Fr::from(99u64));
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g.value().unwrap(), w);
            }
            assert!(cs.is_satisfied().unwrap());
        }
    }

    /// The gadget reaches the native root for a real witness; a wrong leaf does not.
    #[test]
    fn path_gadget_matches_native() {
        let mut f = Frontier::new();
        for i in 0..21u64 {
            f.append(Fr::from(i)).unwrap();
        }
        let (mut w, _) = IncrementalWitness::append(&mut f, Fr::from(777u64)).unwrap();
        for i in 0..6u64 {
            let c = f.append(Fr::from(100 + i)).unwrap();
            w.observe(&c);
        }
        let path = w.path(&f).unwrap();
        for (leaf, ok) in [(Fr::from(777u64), true), (Fr::from(778u64), false)] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let pv = MerklePathVar::new_witness(cs.clone(), || Ok(path.clone())).unwrap();
            let leaf = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
            let root = pv.root(&leaf).unwrap();
            let anchor = FpVar::new_input(cs.clone(), || Ok(f.root())).unwrap();
            root.enforce_equal(&anchor).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), ok);
        }
    }
}
