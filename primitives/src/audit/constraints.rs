//! The audit-record gadget: proves `E = k·G`, `S = k·PK` and `c_i = m_i + pad_i(S)` for the
//! signed-binary exponent `k = Σ (2·b_i − 1)·2^i` of the witness bits `b` (see
//! [`super::AuditEphemeral`]).
//!
//! Both multiplications walk the bits two at a time, and share the product `b_{2i}·b_{2i+1}`:
//! - `E` (fixed base): `k·G = Σ b_i·2^(i+1)·G − (2^252 − 1)·G`. Each pair selects one of four
//!   constant points; the selected coordinates are linear in `b_{2i}`, `b_{2i+1}` and their product,
//!   so the cost is one complete addition (6 constraints) per pair.
//! - `S` (variable base): the pair is the signed digit `d = s_0 + 2·s_1 ∈ {±1, ±3}`
//!   (`s = 2b − 1`); `|d| = 3` exactly when the bits are equal, and the sign is `s_1`. So `d·PK` is
//!   `PK` or `3·PK` (two constraints) with `x` negated by `s_1` (one constraint), and Horner's rule
//!   `acc = 4·acc + d·PK` costs two doublings and one addition per pair — about 19 constraints per
//!   two bits, where double-and-add with a select costs 13 per bit.
//!
//! Twisted Edwards addition and doubling are complete on Jubjub (`a = −1` a square, `d` a
//! non-square), so no intermediate value needs special-casing. `PK` is a public input the verifier
//! has checked to be a point of the prime-order subgroup.

use super::{AUDIT_ELEMENTS, EPHEMERAL_BITS};
use crate::poseidon::{constraints as poseidon, Domain};
use crate::Fr;
use ark_ec::{AdditiveGroup, AffineRepr, CurveGroup};
use ark_ed_on_bls12_381::{constraints::EdwardsVar, EdwardsAffine, EdwardsProjective};
use ark_r1cs_std::{boolean::Boolean, fields::fp::FpVar, fields::FieldVar, groups::CurveVar};
use ark_relations::gr1cs::SynthesisError;
use std::sync::OnceLock;

/// Per bit pair `i`, the four points `{0, 2^(2i+1)·G, 2^(2i+2)·G, both}` as affine coordinates;
/// and the constant `−(2^252 − 1)·G`.
struct FixedTables {
    windows: Vec<[(Fr, Fr); 4]>,
    offset: EdwardsAffine,
}

fn fixed_tables() -> &'static FixedTables {
    static TABLES: OnceLock<FixedTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let g = EdwardsAffine::generator().into_group();
        let mut power = g.double(); // 2^(2i+1)·G for i = 0
        let mut windows = Vec::with_capacity(EPHEMERAL_BITS / 2);
        for _ in 0..EPHEMERAL_BITS / 2 {
            let next = power.double();
            let pts = [EdwardsProjective::default(), power, next, power + next];
            let affine = EdwardsProjective::normalize_batch(&pts);
            windows.push(std::array::from_fn(|j| (affine[j].x, affine[j].y)));
            power = next.double();
        }
        let mut all_ones = g;
        for _ in 0..EPHEMERAL_BITS {
            all_ones = all_ones.double();
        }
        let offset = (g - all_ones).into_affine(); // −(2^252 − 1)·G
        FixedTables { windows, offset }
    })
}

/// The in-circuit record.
pub struct AuditRecordVar {
    /// `E = k·G`.
    pub epk: EdwardsVar,
    /// `c_i = m_i + pad_i`.
    pub ciphertext: [FpVar<Fr>; AUDIT_ELEMENTS],
}

/// `c0 + b0·(c1 − c0) + b1·(c2 − c0) + b01·(c3 − c2 − c1 + c0)`: a four-way constant lookup,
/// linear in its selectors.
fn lookup(b0: &FpVar<Fr>, b1: &FpVar<Fr>, b01: &FpVar<Fr>, c: [Fr; 4]) -> FpVar<Fr> {
    FpVar::constant(c[0])
        + b0 * (c[1] - c[0])
        + b1 * (c[2] - c[0])
        + b01 * (c[3] - c[2] - c[1] + c[0])
}

/// Enforces the audit encryption of `plaintext` to `pk` under the exponent whose bits are
/// `bits` ([`EPHEMERAL_BITS`] of them), returning the record.
pub fn encrypt(
    pk: &EdwardsVar,
    plaintext: &[FpVar<Fr>; AUDIT_ELEMENTS],
    bits: &[Boolean<Fr>],
) -> Result<AuditRecordVar, SynthesisError> {
    if bits.len() != EPHEMERAL_BITS {
        return Err(SynthesisError::Unsatisfiable);
    }
    let tables = fixed_tables();
    let one = FpVar::one();

    // P and 3P for the variable-base digits.
    let p = pk.clone();
    let p3 = p.double()? + &p;
    let (dx, dy) = (&p3.x - &p.x, &p3.y - &p.y);

    let mut epk: Option<EdwardsVar> = None;
    let mut shared: Option<EdwardsVar> = None;
    // Most significant pair first, for Horner's rule on `shared`.
    for (i, pair) in bits.chunks(2).enumerate().rev() {
        let b0: FpVar<Fr> = pair[0].clone().into();
        let b1: FpVar<Fr> = pair[1].clone().into();
        let b01: FpVar<Fr> = (&pair[0] & &pair[1]).into();

        // E: add this pair's constant point.
        let w = &tables.windows[i];
        let x = lookup(&b0, &b1, &b01, w.map(|c| c.0));
        let y = lookup(&b0, &b1, &b01, w.map(|c| c.1));
        let term = EdwardsVar::new(x, y);
        epk = Some(match epk {
            None => term,
            Some(acc) => acc + &term,
        });

        // S: acc = 4·acc + d·P with d = s0 + 2·s1.
        let equal = &one - &b0 - &b1 + b01.double()?; // 1 iff b0 == b1, i.e. |d| = 3
        let x_sel = &p.x + &equal * &dx;
        let y_sel = &p.y + &equal * &dy;
        let sign = b1.double()? - &one; // s1
        let digit = EdwardsVar::new(&sign * &x_sel, y_sel);
        shared = Some(match shared {
            None => digit,
            Some(mut acc) => {
                acc.double_in_place()?;
                acc.double_in_place()?;
                acc + &digit
            }
        });
    }
    let (Some(epk), Some(shared)) = (epk, shared) else {
        return Err(SynthesisError::Unsatisfiable);
    };
    let epk = epk + EdwardsVar::constant(tables.offset.into());
    let pads = poseidon::hash_to_rate(Domain::AuditPad, &[shared.x.clone(), shared.y.clone()])?;
    let ciphertext = std::array::from_fn(|i| &plaintext[i] + &pads[i]);
    Ok(AuditRecordVar { epk, ciphertext })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{self, AuditEphemeral, AuditPlaintext, AuditSecretKey};
    use crate::note::{Amount, AssetId};
    use ark_r1cs_std::{alloc::AllocVar, GR1CSVar};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand_core::OsRng;

    fn check(eph: AuditEphemeral) {
        let sk = AuditSecretKey::random(&mut OsRng);
        let pk = sk.public_key();
        let pt = AuditPlaintext {
            sender: Fr::rand(&mut OsRng),
            receivers: [Fr::rand(&mut OsRng), Fr::rand(&mut OsRng)],
            values: [Amount(5), Amount(u64::MAX)],
            asset: AssetId(9),
        };
        let native = audit::encrypt(&pk, &pt, &eph);

        let cs = ConstraintSystem::<Fr>::new_ref();
        let pkv = EdwardsVar::new_input(cs.clone(), || Ok(pk.0)).unwrap();
        let m = pt
            .to_elements()
            .map(|x| FpVar::new_witness(cs.clone(), || Ok(x)).unwrap());
        let bits: Vec<Boolean<Fr>> = eph
            .bits()
            .into_iter()
            .map(|b| Boolean::new_witness(cs.clone(), || Ok(b)).unwrap())
            .collect();
        let before = cs.num_constraints();
        let rec = encrypt(&pkv, &m, &bits).unwrap();
        eprintln!(
            "audit encryption: {} constraints besides the bits",
            cs.num_constraints() - before
        );
        assert_eq!(rec.epk.value().unwrap().into_affine(), native.epk);
        for (g, n) in rec.ciphertext.iter().zip(native.ciphertext) {
            assert_eq!(g.value().unwrap(), n);
        }
        assert!(cs.is_satisfied().unwrap());
        assert_eq!(sk.decrypt(&native).unwrap(), pt);
    }

    /// The gadget's `E` and ciphertext equal the native encryption's, for random exponents and for
    /// the extremes (all bits zero, all bits one).
    #[test]
    fn gadget_matches_native() {
        check(AuditEphemeral::random(&mut OsRng));
        check(AuditEphemeral::random(&mut OsRng));
        let ones: Vec<bool> = vec![true; EPHEMERAL_BITS];
        check(AuditEphemeral::from_bits(&ones));
        check(AuditEphemeral::from_bits(&vec![false; EPHEMERAL_BITS]));
    }
}
