//! The audit-record gadget: proves `E = e·G`, `S = e·PK` and `c_i = m_i + pad_i(S)`.
//!
//! `e` enters as its little-endian bits (booleans); the same bits drive the fixed-base
//! multiplication for `E` and the variable-base one for `S`, so `E` and `S` share one exponent.

use super::AUDIT_ELEMENTS;
use crate::poseidon::{constraints as poseidon, Domain};
use crate::Fr;
use ark_ec::AffineRepr;
use ark_ed_on_bls12_381::{constraints::EdwardsVar, EdwardsAffine, EdwardsProjective};
use ark_r1cs_std::{boolean::Boolean, fields::fp::FpVar, groups::CurveVar};
use ark_relations::gr1cs::SynthesisError;
use std::sync::OnceLock;

/// `2^i·G` for every bit of a Jubjub scalar.
fn generator_powers() -> &'static Vec<EdwardsProjective> {
    static POWERS: OnceLock<Vec<EdwardsProjective>> = OnceLock::new();
    POWERS.get_or_init(|| {
        let mut p = EdwardsAffine::generator().into_group();
        (0..super::SCALAR_BITS)
            .map(|_| {
                let cur = p;
                p = p + p;
                cur
            })
            .collect()
    })
}

/// The encrypted record's in-circuit values.
pub struct AuditRecordVar {
    /// `E = e·G`.
    pub epk: EdwardsVar,
    /// `c_i = m_i + pad_i`.
    pub ciphertext: [FpVar<Fr>; AUDIT_ELEMENTS],
}

/// Enforces the audit encryption of `plaintext` to `pk` under the exponent whose bits are
/// `e_bits`, returning the record.
pub fn encrypt(
    pk: &EdwardsVar,
    plaintext: &[FpVar<Fr>; AUDIT_ELEMENTS],
    e_bits: &[Boolean<Fr>],
) -> Result<AuditRecordVar, SynthesisError> {
    let powers = generator_powers();
    if e_bits.len() > powers.len() {
        return Err(SynthesisError::Unsatisfiable);
    }
    let mut epk = EdwardsVar::zero();
    epk.precomputed_base_scalar_mul_le(e_bits.iter().zip(powers.iter()))?;
    let shared = pk.scalar_mul_le(e_bits.iter())?;
    let pads = poseidon::hash_to_rate(Domain::AuditPad, &[shared.x.clone(), shared.y.clone()])?;
    let ciphertext = std::array::from_fn(|i| &plaintext[i] + &pads[i]);
    Ok(AuditRecordVar { epk, ciphertext })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{self, AuditPlaintext, AuditSecretKey};
    use crate::note::{Amount, AssetId};
    use ark_ed_on_bls12_381::Fr as JubjubScalar;
    use ark_r1cs_std::{alloc::AllocVar, GR1CSVar};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand_core::OsRng;

    /// The gadget's `E` and ciphertext equal the native encryption's for random keys and values.
    #[test]
    fn gadget_matches_native() {
        let sk = AuditSecretKey::random(&mut OsRng);
        let pk = sk.public_key();
        let pt = AuditPlaintext {
            sender: Fr::rand(&mut OsRng),
            receivers: [Fr::rand(&mut OsRng), Fr::rand(&mut OsRng)],
            values: [Amount(5), Amount(u64::MAX)],
            asset: AssetId(9),
        };
        let e = JubjubScalar::rand(&mut OsRng);
        let native = audit::encrypt(&pk, &pt, &e);

        let cs = ConstraintSystem::<Fr>::new_ref();
        let pkv = EdwardsVar::new_input(cs.clone(), || Ok(pk.0)).unwrap();
        let m = pt
            .to_elements()
            .map(|x| FpVar::new_witness(cs.clone(), || Ok(x)).unwrap());
        let bits: Vec<Boolean<Fr>> = audit::scalar_bits_le(&e)
            .into_iter()
            .map(|b| Boolean::new_witness(cs.clone(), || Ok(b)).unwrap())
            .collect();
        let before = cs.num_constraints();
        let rec = encrypt(&pkv, &m, &bits).unwrap();
        eprintln!(
            "audit encryption: {} constraints",
            cs.num_constraints() - before
        );
        assert_eq!(
            ark_ec::CurveGroup::into_affine(rec.epk.value().unwrap()),
            native.epk
        );
        for (g, n) in rec.ciphertext.iter().zip(native.ciphertext) {
            assert_eq!(g.value().unwrap(), n);
        }
        assert!(cs.is_satisfied().unwrap());
        assert_eq!(sk.decrypt(&native).unwrap(), pt);
    }
}
