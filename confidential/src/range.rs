//! Aggregated range proofs: `m` values (m ∈ {1, 2, 4, 8}), each in `[0, 2¹⁶)`, proved with the
//! `bulletproofs` crate and verified by replaying its transcript here, so that the final check
//! becomes terms of a [`BatchVerifier`] instead of a multiscalar multiplication of its own.
//!
//! The replay follows `RangeProof::verify_multiple_with_rng` of bulletproofs 5.0 step by step (its
//! transcript labels, challenge order and verification equation); a test compares the two on
//! valid and tampered proofs.

use crate::batch::{Base, BatchVerifier, BP_M, BP_N};
use crate::elgamal::{point, scalar};
use crate::sigma::challenge;
use crate::Error;
use bulletproofs::RangeProof;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use merlin::Transcript;

/// Encoded size of an aggregated proof over `m` values of 16 bits.
pub(crate) const fn proof_bytes(m: usize) -> usize {
    (7 + 2 * (BP_N * m).trailing_zeros() as usize + 2) * 32
}

/// Proves that each `values[i] < 2¹⁶`, committed as `values[i]·G + blindings[i]·H`.
pub(crate) fn prove(
    t: &mut Transcript,
    values: &[u64],
    blindings: &[Scalar],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<(Vec<u8>, Vec<CompressedRistretto>), Error> {
    if values.iter().any(|&v| v >> BP_N != 0) {
        return Err(Error::Unprovable("a value out of range"));
    }
    let (proof, commitments) = RangeProof::prove_multiple_with_rng(
        crate::batch::bp_gens(),
        crate::pedersen(),
        t,
        values,
        blindings,
        BP_N,
        rng,
    )
    .map_err(|_| Error::Unprovable("range proof parameters"))?;
    Ok((proof.to_bytes(), commitments))
}

fn nonzero_point(
    t: &mut Transcript,
    label: &'static [u8],
    bytes: &[u8],
) -> Result<RistrettoPoint, Error> {
    let p = point(bytes, "range proof point")?;
    if p.is_identity() {
        return Err(Error::InvalidProof("range proof point is the identity"));
    }
    t.append_message(label, bytes);
    Ok(p)
}

/// Replays the proof's transcript and adds its verification equation to `bv`. `commitments`
/// are the committed values, compressed (as absorbed) and decompressed (as used).
pub(crate) fn verify(
    t: &mut Transcript,
    proof: &[u8],
    commitments: &[(CompressedRistretto, RistrettoPoint)],
    bv: &mut BatchVerifier,
) -> Result<(), Error> {
    let m = commitments.len();
    if !m.is_power_of_two() || m > BP_M {
        return Err(Error::Malformed("range proof value count"));
    }
    let nm = BP_N * m;
    let lg = nm.trailing_zeros() as usize;
    if proof.len() != proof_bytes(m) {
        return Err(Error::Malformed("range proof length"));
    }
    let word = |i: usize| &proof[i * 32..(i + 1) * 32];

    t.append_message(b"dom-sep", b"rangeproof v1");
    t.append_u64(b"n", BP_N as u64);
    t.append_u64(b"m", m as u64);
    for (c, _) in commitments {
        t.append_message(b"V", c.as_bytes());
    }
    let a_pt = nonzero_point(t, b"A", word(0))?;
    let s_pt = nonzero_point(t, b"S", word(1))?;
    let y = challenge(t, b"y");
    let z = challenge(t, b"z");
    let t1 = nonzero_point(t, b"T_1", word(2))?;
    let t2 = nonzero_point(t, b"T_2", word(3))?;
    let x = challenge(t, b"x");
    let t_x = scalar(word(4), "range proof scalar")?;
    let t_x_blinding = scalar(word(5), "range proof scalar")?;
    let e_blinding = scalar(word(6), "range proof scalar")?;
    t.append_message(b"t_x", word(4));
    t.append_message(b"t_x_blinding", word(5));
    t.append_message(b"e_blinding", word(6));
    let w = challenge(t, b"w");

    // Inner-product argument: recompute the round challenges u_k.
    t.append_message(b"dom-sep", b"ipp v1");
    t.append_u64(b"n", nm as u64);
    let mut ls = Vec::with_capacity(lg);
    let mut rs = Vec::with_capacity(lg);
    let mut u = Vec::with_capacity(lg);
    for k in 0..lg {
        ls.push(nonzero_point(t, b"L", word(7 + 2 * k))?);
        rs.push(nonzero_point(t, b"R", word(8 + 2 * k))?);
        u.push(challenge(t, b"u"));
    }
    let a = scalar(word(7 + 2 * lg), "range proof scalar")?;
    let b = scalar(word(8 + 2 * lg), "range proof scalar")?;

    let mut u_inv = u.clone();
    let all_inv = Scalar::batch_invert(&mut u_inv);
    let u_sq: Vec<Scalar> = u.iter().map(|x| x * x).collect();
    let u_inv_sq: Vec<Scalar> = u_inv.iter().map(|x| x * x).collect();
    // s_i = Π_k u_k^{±1}, built inductively as the crate does.
    let mut s = Vec::with_capacity(nm);
    s.push(all_inv);
    for i in 1..nm {
        let lg_i = (usize::BITS - 1 - i.leading_zeros()) as usize;
        let k = 1 << lg_i;
        s.push(s[i - k] * u_sq[(lg - 1) - lg_i]);
    }

    let c = bv.random();
    let zz = z * z;
    let y_inv = y.invert();
    let two = Scalar::from(2u64);
    let powers = |base: Scalar, count: usize| {
        let mut out = Vec::with_capacity(count);
        let mut acc = Scalar::ONE;
        for _ in 0..count {
            out.push(acc);
            acc *= base;
        }
        out
    };
    let pow2 = powers(two, BP_N);
    let pow_z = powers(z, m);
    let pow_y_inv = powers(y_inv, nm);
    let sum_y: Scalar = powers(y, nm).iter().sum();
    let sum_2: Scalar = pow2.iter().sum();
    let sum_z: Scalar = pow_z.iter().sum();
    let delta = (z - zz) * sum_y - zz * z * sum_2 * sum_z;

    let weight = bv.random();
    let mut terms: Vec<(Scalar, Base)> = Vec::with_capacity(2 * nm + 2 * lg + 6 + m);
    terms.push((Scalar::ONE, Base::P(a_pt)));
    terms.push((x, Base::P(s_pt)));
    terms.push((c * x, Base::P(t1)));
    terms.push((c * x * x, Base::P(t2)));
    for k in 0..lg {
        terms.push((u_sq[k], Base::P(ls[k])));
        terms.push((u_inv_sq[k], Base::P(rs[k])));
    }
    terms.push((-e_blinding - c * t_x_blinding, Base::H));
    terms.push((w * (t_x - a * b) + c * (delta - t_x), Base::G));
    for i in 0..nm {
        terms.push((-z - a * s[i], Base::BpG(i)));
        let z_and_2 = pow_z[i / BP_N] * pow2[i % BP_N];
        terms.push((
            z + pow_y_inv[i] * (zz * z_and_2 - b * s[nm - 1 - i]),
            Base::BpH(i),
        ));
    }
    for (j, (_, v)) in commitments.iter().enumerate() {
        terms.push((c * zz * pow_z[j], Base::P(*v)));
    }
    bv.add_terms(terms.into_iter().map(|(s, b)| (weight * s, b)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn check(
        proof: &[u8],
        values: &[(CompressedRistretto, RistrettoPoint)],
        label: &[u8],
    ) -> (bool, bool) {
        let mut t = Transcript::new(b"range test");
        t.append_message(b"ctx", label);
        let mut bv = BatchVerifier::new();
        let ours = verify(&mut t, proof, values, &mut bv).is_ok() && bv.verify().is_ok();
        let mut t = Transcript::new(b"range test");
        t.append_message(b"ctx", label);
        let compressed: Vec<CompressedRistretto> = values.iter().map(|v| v.0).collect();
        let theirs = RangeProof::from_bytes(proof).is_ok_and(|p| {
            p.verify_multiple(
                crate::batch::bp_gens(),
                crate::pedersen(),
                &mut t,
                &compressed,
                BP_N,
            )
            .is_ok()
        });
        (ours, theirs)
    }

    #[test]
    fn replay_agrees_with_the_crate() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for m in [1usize, 2, 4, 8] {
            let values: Vec<u64> = (0..m as u64).map(|i| (i * 7919) % 65_536).collect();
            let blindings: Vec<Scalar> = (0..m).map(|_| Scalar::random(&mut rng)).collect();
            let mut t = Transcript::new(b"range test");
            t.append_message(b"ctx", b"ok");
            let (proof, commitments) = prove(&mut t, &values, &blindings, &mut rng).unwrap();
            assert_eq!(proof.len(), proof_bytes(m));
            let vs: Vec<_> = commitments
                .iter()
                .map(|c| (*c, c.decompress().unwrap()))
                .collect();
            assert_eq!(check(&proof, &vs, b"ok"), (true, true), "m = {m}");
            // A different transcript (the label test), each byte of the proof, each value.
            assert_eq!(check(&proof, &vs, b"no"), (false, false));
            for word in 0..proof.len() / 32 {
                let mut bad = proof.clone();
                bad[word * 32] ^= 1;
                assert_eq!(
                    check(&bad, &vs, b"ok"),
                    (false, false),
                    "m = {m}, word {word}"
                );
            }
            for j in 0..m {
                let mut other = vs.clone();
                let p = other[j].1 + crate::g();
                other[j] = (p.compress(), p);
                assert_eq!(check(&proof, &other, b"ok"), (false, false));
            }
        }
    }

    #[test]
    fn values_of_sixteen_bits_or_more_cannot_be_proved() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let mut t = Transcript::new(b"range test");
        assert!(matches!(
            prove(&mut t, &[65_536], &[Scalar::ONE], &mut rng),
            Err(Error::Unprovable(_))
        ));
    }
}
