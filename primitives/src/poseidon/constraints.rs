//! In-circuit Poseidon: the same permutation and hash as [`super`], as constraints.
//!
//! Each S-box costs three multiplication constraints; the linear layers are free. A hash of up to
//! four inputs is one permutation: 8·5 + 60 = 100 S-boxes, 297 constraints (the first S-box of the
//! constant capacity element is computed outside the circuit).

use super::{parameters, Domain, FULL_ROUNDS, PARTIAL_ROUNDS, RATE, WIDTH};
use crate::Fr;
use ark_r1cs_std::fields::{fp::FpVar, FieldVar};
use ark_relations::gr1cs::SynthesisError;

fn sbox(x: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

/// Enforces the Poseidon permutation on `state`, returning the permuted state.
pub fn permute(state: &[FpVar<Fr>; WIDTH]) -> Result<[FpVar<Fr>; WIDTH], SynthesisError> {
    let p = parameters();
    let half = FULL_ROUNDS / 2;
    let mut state = state.clone();
    for (round, ark) in p.ark.iter().enumerate() {
        for (s, c) in state.iter_mut().zip(ark) {
            *s += *c;
        }
        if round < half || round >= half + PARTIAL_ROUNDS {
            for s in state.iter_mut() {
                *s = sbox(s)?;
            }
        } else {
            state[0] = sbox(&state[0])?;
        }
        let old = state.clone();
        for (i, s) in state.iter_mut().enumerate() {
            let mut acc = FpVar::zero();
            for (m, x) in p.mds[i].iter().zip(old.iter()) {
                acc += x * *m;
            }
            *s = acc;
        }
    }
    Ok(state)
}

fn absorb(domain: Domain, inputs: &[FpVar<Fr>]) -> Result<[FpVar<Fr>; WIDTH], SynthesisError> {
    let mut state: [FpVar<Fr>; WIDTH] = std::array::from_fn(|_| FpVar::zero());
    state[0] = FpVar::constant(domain.tag(inputs.len()));
    if inputs.is_empty() {
        state = permute(&state)?;
    }
    for chunk in inputs.chunks(RATE) {
        for (s, x) in state[1..].iter_mut().zip(chunk) {
            *s += x;
        }
        state = permute(&state)?;
    }
    Ok(state)
}

/// Enforces `out = H_domain(inputs)`, the gadget of [`super::hash`].
pub fn hash(domain: Domain, inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    let [_, out, ..] = absorb(domain, inputs)?;
    Ok(out)
}

/// The gadget of [`super::hash_to_rate`].
pub fn hash_to_rate(
    domain: Domain,
    inputs: &[FpVar<Fr>],
) -> Result<[FpVar<Fr>; RATE], SynthesisError> {
    let [_, a, b, c, d] = absorb(domain, inputs)?;
    Ok([a, b, c, d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_r1cs_std::{alloc::AllocVar, GR1CSVar};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;

    /// Gadget and native hash agree on random inputs of every length we use, and one hash of up
    /// to four inputs costs 300 constraints.
    #[test]
    fn gadget_matches_native() {
        let mut rng = ark_std::test_rng();
        for len in [0usize, 1, 2, 4, 5, 8] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let xs: Vec<Fr> = (0..len).map(|_| Fr::rand(&mut rng)).collect();
            let vars: Vec<FpVar<Fr>> = xs
                .iter()
                .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
                .collect();
            let before = cs.num_constraints();
            let out = hash(Domain::NoteCommitment, &vars).unwrap();
            let cost = cs.num_constraints() - before;
            assert_eq!(
                out.value().unwrap(),
                super::super::hash(Domain::NoteCommitment, &xs)
            );
            // Constant (zero) inputs make some first-round S-boxes free.
            if (1..=RATE).contains(&len) {
                assert!(cost <= 300, "one permutation, len {len}: {cost}");
            }
            if len == RATE {
                assert_eq!(
                    cost, 297,
                    "the capacity element is a constant: its first S-box is free"
                );
            }
            let rate = hash_to_rate(Domain::AuditPad, &vars).unwrap();
            let native = super::super::hash_to_rate(Domain::AuditPad, &xs);
            for (g, n) in rate.iter().zip(native) {
                assert_eq!(g.value().unwrap(), n);
            }
            assert!(cs.is_satisfied().unwrap());
        }
    }

    /// A wrong claimed output is not satisfiable.
    #[test]
    fn wrong_output_rejected() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let x = FpVar::new_witness(cs.clone(), || Ok(Fr::from(3u64))).unwrap();
        let out = hash(Domain::Nullifier, &[x]).unwrap();
        let claimed = FpVar::new_input(cs.clone(), || {
            Ok(super::super::hash(Domain::Nullifier, &[Fr::from(4u64)]))
        })
        .unwrap();
        use ark_r1cs_std::eq::EqGadget;
        out.enforce_equal(&claimed).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }
}
