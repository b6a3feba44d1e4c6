//! The pairing arithmetic of verification, on blst (assembly-optimized BLS12-381).
//!
//! The statement, the verifying key and the public-input encoding stay arkworks'; this module
//! only decodes proof points and evaluates the Groth16 product of pairings. Its verdicts are
//! checked against ark-groth16's on valid and tampered proofs (`tests.rs`).
//!
//! The only unsafe code of the crate lives here: calls into blst's C functions, each on
//! initialized values owned by the caller, with the sizes blst documents.
#![allow(unsafe_code)]

use ark_bls12_381::{G1Affine, G2Affine};
use ark_serialize::{CanonicalSerialize, Compress};
use blst::{
    blst_final_exp, blst_fp12, blst_fp12_is_one, blst_fp12_mul, blst_fp12_one, blst_fp6,
    blst_miller_loop_lines, blst_miller_loop_n, blst_p1, blst_p1_add_or_double,
    blst_p1_add_or_double_affine, blst_p1_affine, blst_p1_affine_compress, blst_p1_affine_in_g1,
    blst_p1_deserialize, blst_p1_from_affine, blst_p1_is_inf, blst_p1_mult, blst_p1_to_affine,
    blst_p1_uncompress, blst_p1s_to_affine, blst_p2_affine, blst_p2_affine_compress,
    blst_p2_affine_in_g2, blst_p2_deserialize, blst_p2_uncompress, blst_precompute_lines,
    BLST_ERROR,
};

/// Bytes of a compressed proof: A (G1, 48), B (G2, 96), C (G1, 48), in the Zcash encoding that
/// ark-bls12-381 writes.
pub const PROOF_BYTES: usize = 192;

/// A Groth16 proof whose three points were decoded, found on their curves and in the
/// prime-order subgroups G1 and G2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedProof {
    a: blst_p1_affine,
    b: blst_p2_affine,
    c: blst_p1_affine,
}

/// A proof's bytes do not decode to three points of the right subgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the proof's points are malformed or outside their prime-order subgroups")]
pub struct BadProofEncoding;

impl DecodedProof {
    /// Decodes a compressed proof, checking each point: canonical encoding, on the curve, in
    /// the prime-order subgroup.
    pub fn from_bytes(bytes: &[u8; PROOF_BYTES]) -> Result<Self, BadProofEncoding> {
        Ok(DecodedProof {
            a: g1_uncompress(&bytes[0..48])?,
            b: g2_uncompress(&bytes[48..144])?,
            c: g1_uncompress(&bytes[144..192])?,
        })
    }

    /// The compressed encoding that [`DecodedProof::from_bytes`] reads back.
    pub fn to_bytes(&self) -> [u8; PROOF_BYTES] {
        let mut out = [0u8; PROOF_BYTES];
        // SAFETY: each slice has the 48 or 96 bytes blst writes; the points are valid.
        unsafe {
            blst_p1_affine_compress(out[0..48].as_mut_ptr(), &self.a);
            blst_p2_affine_compress(out[48..144].as_mut_ptr(), &self.b);
            blst_p1_affine_compress(out[144..192].as_mut_ptr(), &self.c);
        }
        out
    }

    /// The same proof from arkworks' type (whose points ark-bls12-381 already checked).
    pub fn from_ark(proof: &ark_groth16::Proof<ark_bls12_381::Bls12_381>) -> Self {
        let mut bytes = [0u8; PROOF_BYTES];
        // A proof is three points: its compressed encoding is exactly 192 bytes.
        let ok = proof
            .serialize_with_mode(&mut bytes[..], Compress::Yes)
            .is_ok();
        debug_assert!(ok);
        // An arkworks proof holds valid points, so decoding them again cannot fail; the
        // identity stands in if it ever did (the proof then does not verify).
        DecodedProof::from_bytes(&bytes).unwrap_or(DecodedProof {
            a: blst_p1_affine::default(),
            b: blst_p2_affine::default(),
            c: blst_p1_affine::default(),
        })
    }
}

fn g1_uncompress(bytes: &[u8]) -> Result<blst_p1_affine, BadProofEncoding> {
    if bytes.len() != 48 {
        return Err(BadProofEncoding);
    }
    let mut p = blst_p1_affine::default();
    // SAFETY: `bytes` holds the 48 bytes blst reads; `p` is a valid output location.
    let (err, in_group) = unsafe {
        let err = blst_p1_uncompress(&mut p, bytes.as_ptr());
        (err, blst_p1_affine_in_g1(&p))
    };
    match (err, in_group) {
        (BLST_ERROR::BLST_SUCCESS, true) => Ok(p),
        _ => Err(BadProofEncoding),
    }
}

fn g2_uncompress(bytes: &[u8]) -> Result<blst_p2_affine, BadProofEncoding> {
    if bytes.len() != 96 {
        return Err(BadProofEncoding);
    }
    let mut p = blst_p2_affine::default();
    // SAFETY: `bytes` holds the 96 bytes blst reads; `p` is a valid output location.
    let (err, in_group) = unsafe {
        let err = blst_p2_uncompress(&mut p, bytes.as_ptr());
        (err, blst_p2_affine_in_g2(&p))
    };
    match (err, in_group) {
        (BLST_ERROR::BLST_SUCCESS, true) => Ok(p),
        _ => Err(BadProofEncoding),
    }
}

/// An arkworks G1 point (trusted: the verifying key's or one computed from it) for blst.
pub(crate) fn g1_from_ark(p: &G1Affine) -> blst_p1_affine {
    let mut bytes = [0u8; 96];
    let _ = p.serialize_with_mode(&mut bytes[..], Compress::No);
    let mut out = blst_p1_affine::default();
    // SAFETY: `bytes` holds the 96 bytes blst reads; `out` is a valid output location.
    let err = unsafe { blst_p1_deserialize(&mut out, bytes.as_ptr()) };
    debug_assert_eq!(err, BLST_ERROR::BLST_SUCCESS);
    out
}

fn g2_from_ark(p: &G2Affine) -> blst_p2_affine {
    let mut bytes = [0u8; 192];
    let _ = p.serialize_with_mode(&mut bytes[..], Compress::No);
    let mut out = blst_p2_affine::default();
    // SAFETY: `bytes` holds the 192 bytes blst reads; `out` is a valid output location.
    let err = unsafe { blst_p2_deserialize(&mut out, bytes.as_ptr()) };
    debug_assert_eq!(err, BLST_ERROR::BLST_SUCCESS);
    out
}

/// Precomputed Miller-loop lines of a fixed G2 point (blst's 68 line coefficients).
pub(crate) struct G2Lines(Box<[blst_fp6; 68]>);

impl G2Lines {
    pub(crate) fn new(q: &G2Affine) -> Self {
        let q = g2_from_ark(q);
        let mut lines = Box::new([blst_fp6::default(); 68]);
        // SAFETY: `lines` is the 68-entry array blst fills; `q` is a valid affine point.
        unsafe { blst_precompute_lines(lines.as_mut_ptr(), &q) };
        G2Lines(lines)
    }

    /// The Miller loop of `(p, self)`.
    pub(crate) fn miller_loop(&self, p: &blst_p1_affine) -> Gt {
        let mut out = blst_fp12::default();
        // SAFETY: `self.0` holds 68 precomputed lines; `p` and `out` are valid.
        unsafe { blst_miller_loop_lines(&mut out, self.0.as_ptr(), p) };
        Gt(out)
    }
}

/// An element of the Miller loop's target (before the final exponentiation).
#[derive(Clone, Copy)]
pub(crate) struct Gt(blst_fp12);

impl Gt {
    pub(crate) fn one() -> Gt {
        // SAFETY: blst returns a pointer to its static one.
        Gt(unsafe { *blst_fp12_one() })
    }

    pub(crate) fn mul(self, other: Gt) -> Gt {
        let mut out = blst_fp12::default();
        // SAFETY: all three are valid field elements.
        unsafe { blst_fp12_mul(&mut out, &self.0, &other.0) };
        Gt(out)
    }

    /// Whether the final exponentiation of this Miller-loop product is one.
    pub(crate) fn final_exp_is_one(self) -> bool {
        let mut out = blst_fp12::default();
        // SAFETY: both are valid field elements.
        unsafe {
            blst_final_exp(&mut out, &self.0);
            blst_fp12_is_one(&out)
        }
    }
}

/// The product of the Miller loops of `(p_i, q_i)`, computed together.
pub(crate) fn multi_miller_loop(pairs: &[(blst_p1_affine, blst_p2_affine)]) -> Gt {
    if pairs.is_empty() {
        return Gt::one();
    }
    let ps: Vec<*const blst_p1_affine> = pairs.iter().map(|(p, _)| p as *const _).collect();
    let qs: Vec<*const blst_p2_affine> = pairs.iter().map(|(_, q)| q as *const _).collect();
    let mut out = blst_fp12::default();
    // SAFETY: `ps` and `qs` hold `pairs.len()` pointers to valid points that outlive the call.
    unsafe { blst_miller_loop_n(&mut out, qs.as_ptr(), ps.as_ptr(), pairs.len()) };
    Gt(out)
}

/// `k·p` for a scalar given as little-endian bytes of `bits` significant bits.
fn mul_bytes(p: &blst_p1_affine, k: &[u8], bits: usize) -> blst_p1 {
    let mut proj = blst_p1::default();
    let mut out = blst_p1::default();
    // SAFETY: `k` holds at least `bits` bits; the points are valid.
    unsafe {
        blst_p1_from_affine(&mut proj, p);
        blst_p1_mult(&mut out, &proj, k.as_ptr(), bits);
    }
    out
}

/// `k·p` for a non-negative scalar of at most `bits` bits given as little-endian limbs.
pub(crate) fn mul_limbs(p: &blst_p1_affine, k: &[u64], bits: usize) -> blst_p1 {
    let bytes: Vec<u8> = k.iter().flat_map(|l| l.to_le_bytes()).collect();
    if bits == 0 {
        return blst_p1::default();
    }
    mul_bytes(p, &bytes, bits.min(bytes.len() * 8))
}

/// `r·p` for a 128-bit `r`.
pub(crate) fn mul_u128(p: &blst_p1_affine, r: u128) -> blst_p1 {
    mul_bytes(p, &r.to_le_bytes(), 128)
}

/// `a + b`.
pub(crate) fn add(a: &blst_p1, b: &blst_p1) -> blst_p1 {
    let mut out = blst_p1::default();
    // SAFETY: all three are valid points.
    unsafe { blst_p1_add_or_double(&mut out, a, b) };
    out
}

/// `acc + p`, in place.
pub(crate) fn add_affine_assign(acc: &mut blst_p1, p: &blst_p1_affine) {
    let a = *acc;
    // SAFETY: all three are valid points (`a` is a copy, so the output may not alias it).
    unsafe { blst_p1_add_or_double_affine(acc, &a, p) };
}

/// The projective form of `p`.
pub(crate) fn from_affine(p: &blst_p1_affine) -> blst_p1 {
    let mut out = blst_p1::default();
    // SAFETY: both are valid points.
    unsafe { blst_p1_from_affine(&mut out, p) };
    out
}

/// The affine forms of `points`, with one shared inversion.
pub(crate) fn batch_to_affine(points: &[blst_p1]) -> Vec<blst_p1_affine> {
    // blst's shared inversion assumes no point at infinity: convert those one by one.
    // SAFETY: every point is valid.
    if points.iter().any(|p| unsafe { blst_p1_is_inf(p) }) {
        return points.iter().map(to_affine).collect();
    }
    if points.is_empty() {
        return Vec::new();
    }
    let ptrs: Vec<*const blst_p1> = points.iter().map(|p| p as *const _).collect();
    let mut out = vec![blst_p1_affine::default(); points.len()];
    // SAFETY: `ptrs` holds `points.len()` pointers to valid points that outlive the call, and
    // `out` has room for as many affine points.
    unsafe { blst_p1s_to_affine(out.as_mut_ptr(), ptrs.as_ptr(), points.len()) };
    out
}

/// The affine form of `p`.
pub(crate) fn to_affine(p: &blst_p1) -> blst_p1_affine {
    let mut out = blst_p1_affine::default();
    // SAFETY: both are valid points.
    unsafe { blst_p1_to_affine(&mut out, p) };
    out
}

/// The proof's points, for the verifier's equation.
impl DecodedProof {
    pub(crate) fn a(&self) -> &blst_p1_affine {
        &self.a
    }
    pub(crate) fn b(&self) -> &blst_p2_affine {
        &self.b
    }
    pub(crate) fn c(&self) -> &blst_p1_affine {
        &self.c
    }
}
