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
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress};
use blst::{
    blst_final_exp, blst_fp, blst_fp12, blst_fp12_is_one, blst_fp12_mul, blst_fp12_one, blst_fp6,
    blst_fp_from_bendian, blst_fp_mul, blst_miller_loop_lines, blst_miller_loop_n, blst_p1,
    blst_p1_add_or_double, blst_p1_add_or_double_affine, blst_p1_affine, blst_p1_affine_in_g1,
    blst_p1_affine_serialize, blst_p1_deserialize, blst_p1_double, blst_p1_from_affine,
    blst_p1_is_inf, blst_p1_mult, blst_p1_to_affine, blst_p1s_mult_pippenger,
    blst_p1s_mult_pippenger_scratch_sizeof, blst_p1s_to_affine, blst_p2, blst_p2_affine,
    blst_p2_affine_in_g2, blst_p2_affine_serialize, blst_p2_deserialize, blst_p2_to_affine,
    blst_p2s_mult_pippenger, blst_p2s_mult_pippenger_scratch_sizeof, blst_precompute_lines,
    BLST_ERROR,
};

/// Bytes of an uncompressed proof: A (G1, 96), B (G2, 192), C (G1, 96), in the Zcash encoding
/// that ark-bls12-381 writes; the transaction format's proof field.
pub const PROOF_BYTES: usize = shoji_primitives::tx::PROOF_BYTES;
const _: () = assert!(PROOF_BYTES == 96 + 192 + 96);

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
    /// Decodes an uncompressed proof, checking each point: canonical encoding (no compressed
    /// form, coordinates below the modulus), on the curve, in the prime-order subgroup.
    pub fn from_bytes(bytes: &[u8; PROOF_BYTES]) -> Result<Self, BadProofEncoding> {
        Ok(DecodedProof {
            a: g1_decode(&bytes[0..96])?,
            b: g2_decode(&bytes[96..288])?,
            c: g1_decode(&bytes[288..384])?,
        })
    }

    /// The encoding that [`DecodedProof::from_bytes`] reads back.
    pub fn to_bytes(&self) -> [u8; PROOF_BYTES] {
        let mut out = [0u8; PROOF_BYTES];
        // SAFETY: each slice has the 96 or 192 bytes blst writes; the points are valid.
        unsafe {
            blst_p1_affine_serialize(out[0..96].as_mut_ptr(), &self.a);
            blst_p2_affine_serialize(out[96..288].as_mut_ptr(), &self.b);
            blst_p1_affine_serialize(out[288..384].as_mut_ptr(), &self.c);
        }
        out
    }

    /// The same proof from arkworks' type (whose points ark-bls12-381 already checked).
    pub fn from_ark(proof: &ark_groth16::Proof<ark_bls12_381::Bls12_381>) -> Self {
        let mut bytes = [0u8; PROOF_BYTES];
        // A proof is three points: its uncompressed encoding is exactly 384 bytes.
        let ok = proof
            .serialize_with_mode(&mut bytes[..], Compress::No)
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

/// The flag bit of the Zcash encoding that marks a compressed point: blst would read such
/// bytes as compressed and ignore the rest, so an uncompressed field refuses it.
const COMPRESSED_FLAG: u8 = 0x80;

fn g1_decode(bytes: &[u8]) -> Result<blst_p1_affine, BadProofEncoding> {
    if bytes.len() != 96 || bytes[0] & COMPRESSED_FLAG != 0 {
        return Err(BadProofEncoding);
    }
    let mut p = blst_p1_affine::default();
    // SAFETY: `bytes` holds the 96 bytes blst reads; `p` is a valid output location.
    let (err, in_group) = unsafe {
        let err = blst_p1_deserialize(&mut p, bytes.as_ptr());
        (err, blst_p1_affine_in_g1(&p))
    };
    match (err, in_group) {
        (BLST_ERROR::BLST_SUCCESS, true) => Ok(p),
        _ => Err(BadProofEncoding),
    }
}

fn g2_decode(bytes: &[u8]) -> Result<blst_p2_affine, BadProofEncoding> {
    if bytes.len() != 192 || bytes[0] & COMPRESSED_FLAG != 0 {
        return Err(BadProofEncoding);
    }
    let mut p = blst_p2_affine::default();
    // SAFETY: `bytes` holds the 192 bytes blst reads; `p` is a valid output location.
    let (err, in_group) = unsafe {
        let err = blst_p2_deserialize(&mut p, bytes.as_ptr());
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

pub(crate) fn g2_from_ark(p: &G2Affine) -> blst_p2_affine {
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

/// λ = z² − 1 (z = −0xd201000000010000, the BLS12-381 parameter): a primitive cube root of
/// unity modulo the group order, the eigenvalue of [`endo`] on G1.
pub(crate) const LAMBDA: u128 = 0xac45a401_0001a402_00000000_ffffffff;

/// β, the cube root of unity in Fp with `(β·x, y) = λ·(x, y)` for every point of G1 (which of
/// the two roots pairs with λ is checked by the tests):
/// 0x1a0111ea397fe699ec02408663d4de85aa0d857d89759ad4897d29650fb85f9b409427eb4f49fffd8bfd00000000aaac.
const BETA_BE: [u8; 48] = [
    0x1a, 0x01, 0x11, 0xea, 0x39, 0x7f, 0xe6, 0x99, 0xec, 0x02, 0x40, 0x86, 0x63, 0xd4, 0xde, 0x85,
    0xaa, 0x0d, 0x85, 0x7d, 0x89, 0x75, 0x9a, 0xd4, 0x89, 0x7d, 0x29, 0x65, 0x0f, 0xb8, 0x5f, 0x9b,
    0x40, 0x94, 0x27, 0xeb, 0x4f, 0x49, 0xff, 0xfd, 0x8b, 0xfd, 0x00, 0x00, 0x00, 0x00, 0xaa, 0xac,
];

fn beta() -> blst_fp {
    let mut out = blst_fp::default();
    // SAFETY: `BETA_BE` holds the 48 bytes blst reads.
    unsafe { blst_fp_from_bendian(&mut out, BETA_BE.as_ptr()) };
    out
}

/// The endomorphism φ(x, y) = (β·x, y) of the curve, in Jacobian coordinates (X, Y, Z) ↦
/// (β·X, Y, Z); on G1 it is multiplication by [`LAMBDA`].
pub(crate) fn endo(p: &blst_p1, beta: &blst_fp) -> blst_p1 {
    let mut out = *p;
    // SAFETY: all are valid field elements; `out.x` is written from a copy of itself.
    unsafe { blst_fp_mul(&mut out.x, &p.x, beta) };
    out
}

/// φ of an affine point (the point at infinity, all zeros, stays itself).
pub(crate) fn endo_affine(p: &blst_p1_affine, beta: &blst_fp) -> blst_p1_affine {
    let mut out = *p;
    // SAFETY: all are valid field elements.
    unsafe { blst_fp_mul(&mut out.x, &p.x, beta) };
    out
}

/// A batch coefficient `lo + λ·hi` (mod the group order) kept as its two 64-bit halves.
///
/// Distinct pairs give distinct coefficients: if `a + λ·b ≡ 0` with `|a|, |b| < 2^64` and
/// `(a, b) ≠ 0`, then `a² − a·b + b² ≡ b²·(λ² + λ + 1) ≡ 0`, yet `0 < a² − a·b + b² < 3·2^128`
/// is smaller than the order. So a uniformly drawn pair is a uniformly drawn coefficient from a
/// set of 2^128, as good for batch soundness as a 128-bit integer, while `coefficient·P` costs
/// only 64 doublings through φ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SplitScalar {
    pub(crate) lo: u64,
    pub(crate) hi: u64,
}

/// `lo·p + hi·φ(p)`, which is `(lo + λ·hi)·p` for `p` in G1: one table of the multiples
/// 0..15 of `p` serves both halves (φ of an entry is one field multiplication), 4-bit windows.
pub(crate) fn mul_split(p: &blst_p1_affine, k: SplitScalar, beta: &blst_fp) -> blst_p1 {
    let base = from_affine(p);
    let mut table = [blst_p1::default(); 16];
    table[1] = base;
    for i in 2..16 {
        table[i] = add(&table[i - 1], &base);
    }
    let mut endo_table = [blst_p1::default(); 16];
    for i in 1..16 {
        endo_table[i] = endo(&table[i], beta);
    }
    let mut acc = blst_p1::default();
    for w in (0..16).rev() {
        if w != 15 {
            for _ in 0..4 {
                let a = acc;
                // SAFETY: valid points; `a` is a copy, so the output does not alias it.
                unsafe { blst_p1_double(&mut acc, &a) };
            }
        }
        let lo = ((k.lo >> (4 * w)) & 15) as usize;
        let hi = ((k.hi >> (4 * w)) & 15) as usize;
        if lo != 0 {
            acc = add(&acc, &table[lo]);
        }
        if hi != 0 {
            acc = add(&acc, &endo_table[hi]);
        }
    }
    acc
}

/// `Σ (lo_i + λ·hi_i)·p_i` for `p_i` in G1, as one multi-scalar multiplication of the `p_i`
/// and `φ(p_i)` with 64-bit scalars.
pub(crate) fn msm_split(points: &[blst_p1_affine], ks: &[SplitScalar], beta: &blst_fp) -> blst_p1 {
    let n = points.len().min(ks.len());
    if n == 0 {
        return blst_p1::default();
    }
    let mut all: Vec<blst_p1_affine> = Vec::with_capacity(2 * n);
    let mut scalars: Vec<u8> = Vec::with_capacity(16 * n);
    for (p, k) in points.iter().zip(ks) {
        all.push(*p);
        scalars.extend_from_slice(&k.lo.to_le_bytes());
    }
    for (p, k) in points.iter().zip(ks) {
        all.push(endo_affine(p, beta));
        scalars.extend_from_slice(&k.hi.to_le_bytes());
    }
    p1_msm(&all, &scalars, 64)
}

/// The cached β (see [`endo`]).
pub(crate) fn beta_cached() -> &'static blst_fp {
    static BETA: std::sync::OnceLock<blst_fp> = std::sync::OnceLock::new();
    BETA.get_or_init(beta)
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

/// A blst G1 point back in arkworks' form (the uncompressed encoding both read).
pub(crate) fn g1_to_ark(p: &blst_p1) -> G1Affine {
    let mut affine = blst_p1_affine::default();
    let mut bytes = [0u8; 96];
    // SAFETY: `p` is a valid point, `affine` and `bytes` valid outputs of the sizes blst writes.
    unsafe {
        blst_p1_to_affine(&mut affine, p);
        blst_p1_affine_serialize(bytes.as_mut_ptr(), &affine);
    }
    G1Affine::deserialize_with_mode(&bytes[..], Compress::No, ark_serialize::Validate::No)
        .unwrap_or_default()
}

/// A blst G2 point back in arkworks' form.
pub(crate) fn g2_to_ark(p: &blst_p2) -> G2Affine {
    let mut affine = blst_p2_affine::default();
    let mut bytes = [0u8; 192];
    // SAFETY: as in `g1_to_ark`.
    unsafe {
        blst_p2_to_affine(&mut affine, p);
        blst_p2_affine_serialize(bytes.as_mut_ptr(), &affine);
    }
    G2Affine::deserialize_with_mode(&bytes[..], Compress::No, ark_serialize::Validate::No)
        .unwrap_or_default()
}

/// Σ scalarsᵢ·pointsᵢ on one thread (blst's Pippenger, without its own thread pool):
/// `scalars` holds `points.len()` little-endian scalars of `nbits` bits, each
/// `nbits.div_ceil(8)` bytes. An empty input gives the identity.
pub(crate) fn p1_msm(points: &[blst_p1_affine], scalars: &[u8], nbits: usize) -> blst_p1 {
    let count = points.len();
    let mut out = blst_p1::default();
    if count == 0 || scalars.len() < count * nbits.div_ceil(8) {
        return out;
    }
    let points_ptrs: [*const blst_p1_affine; 2] = [points.as_ptr(), std::ptr::null()];
    let scalar_ptrs: [*const u8; 2] = [scalars.as_ptr(), std::ptr::null()];
    // SAFETY: `points` and `scalars` hold `count` points and `count` scalars of `nbits` bits
    // (checked above) and outlive the call; the scratch space has the size blst asks for.
    unsafe {
        let bytes = blst_p1s_mult_pippenger_scratch_sizeof(count);
        let mut scratch: Vec<blst::limb_t> =
            vec![0; bytes.div_ceil(std::mem::size_of::<blst::limb_t>())];
        blst_p1s_mult_pippenger(
            &mut out,
            points_ptrs.as_ptr(),
            count,
            scalar_ptrs.as_ptr(),
            nbits,
            scratch.as_mut_ptr(),
        );
    }
    out
}

/// [`p1_msm`] in G2.
pub(crate) fn p2_msm(points: &[blst_p2_affine], scalars: &[u8], nbits: usize) -> blst_p2 {
    let count = points.len();
    let mut out = blst_p2::default();
    if count == 0 || scalars.len() < count * nbits.div_ceil(8) {
        return out;
    }
    let points_ptrs: [*const blst_p2_affine; 2] = [points.as_ptr(), std::ptr::null()];
    let scalar_ptrs: [*const u8; 2] = [scalars.as_ptr(), std::ptr::null()];
    // SAFETY: as in `p1_msm`.
    unsafe {
        let bytes = blst_p2s_mult_pippenger_scratch_sizeof(count);
        let mut scratch: Vec<blst::limb_t> =
            vec![0; bytes.div_ceil(std::mem::size_of::<blst::limb_t>())];
        blst_p2s_mult_pippenger(
            &mut out,
            points_ptrs.as_ptr(),
            count,
            scalar_ptrs.as_ptr(),
            nbits,
            scratch.as_mut_ptr(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bls12_381::{Fr, G1Projective};
    use ark_ec::{CurveGroup, PrimeGroup};
    use ark_ff::{BigInteger, PrimeField};
    use ark_std::UniformRand;

    fn random_points(n: usize) -> Vec<G1Affine> {
        let mut rng = ark_std::test_rng();
        let mut v: Vec<G1Affine> = (0..n)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        v[0] = G1Projective::generator().into_affine();
        v
    }

    fn split_fr(k: SplitScalar) -> Fr {
        Fr::from(k.lo) + Fr::from(LAMBDA) * Fr::from(k.hi)
    }

    #[test]
    fn lambda_is_a_cube_root_of_unity_and_beta_its_endomorphism() {
        let l = Fr::from(LAMBDA);
        assert_eq!(l * l + l + Fr::from(1u64), Fr::from(0u64));
        assert_ne!(l, Fr::from(1u64));
        for p in random_points(4) {
            let expected = g1_from_ark(&(p * l).into_affine());
            assert_eq!(endo_affine(&g1_from_ark(&p), beta_cached()), expected);
            let proj = endo(&from_affine(&g1_from_ark(&p)), beta_cached());
            assert_eq!(to_affine(&proj), expected);
        }
        // The other cube root of unity in Fp is not φ for this λ: the test can fail.
        let mut other = blst_fp::default();
        // SAFETY: valid field elements.
        unsafe { blst_fp_mul(&mut other, beta_cached(), beta_cached()) };
        let g = g1_from_ark(&G1Projective::generator().into_affine());
        assert_ne!(
            endo_affine(&g, &other),
            g1_from_ark(&(G1Projective::generator() * l).into_affine())
        );
    }

    #[test]
    fn split_multiplication_matches_the_scalar() {
        let mut rng = ark_std::test_rng();
        let edge = [
            SplitScalar { lo: 0, hi: 0 },
            SplitScalar { lo: 1, hi: 0 },
            SplitScalar { lo: 0, hi: 1 },
            SplitScalar {
                lo: u64::MAX,
                hi: u64::MAX,
            },
        ];
        let random = (0..4).map(|_| SplitScalar {
            lo: u64::rand(&mut rng),
            hi: u64::rand(&mut rng),
        });
        let points = random_points(8);
        for (k, p) in edge.into_iter().chain(random).zip(points.iter().cycle()) {
            let expected = g1_from_ark(&(*p * split_fr(k)).into_affine());
            let got = to_affine(&mul_split(&g1_from_ark(p), k, beta_cached()));
            assert_eq!(got, expected, "{k:?}");
            // And the scalar is not merely lo (or hi) alone.
            if k.hi != 0 {
                let lo_only = g1_from_ark(&(*p * Fr::from(k.lo)).into_affine());
                assert_ne!(got, lo_only);
            }
        }
    }

    #[test]
    fn split_msm_matches_the_sum_of_products() {
        let mut rng = ark_std::test_rng();
        // Sizes on both sides of blst's switch to Pippenger at 32 points (2n points here).
        for n in [1usize, 2, 5, 16, 40] {
            let mut points = random_points(n);
            if n > 2 {
                points[2] = G1Affine::identity();
            }
            let ks: Vec<SplitScalar> = (0..n)
                .map(|_| SplitScalar {
                    lo: u64::rand(&mut rng),
                    hi: u64::rand(&mut rng),
                })
                .collect();
            let expected: G1Projective =
                points.iter().zip(&ks).map(|(p, k)| *p * split_fr(*k)).sum();
            let blst_points: Vec<blst_p1_affine> = points.iter().map(g1_from_ark).collect();
            let got = to_affine(&msm_split(&blst_points, &ks, beta_cached()));
            assert_eq!(got, g1_from_ark(&expected.into_affine()), "n = {n}");
        }
    }

    #[test]
    fn distinct_halves_give_distinct_coefficients_near_the_edges() {
        // The injectivity argument of `SplitScalar` checked where a wrap-around would show.
        let l = Fr::from(LAMBDA);
        let a = split_fr(SplitScalar {
            lo: u64::MAX,
            hi: 0,
        });
        let b = split_fr(SplitScalar { lo: 0, hi: 1 });
        assert_ne!(a, b);
        let top = split_fr(SplitScalar {
            lo: u64::MAX,
            hi: u64::MAX,
        });
        assert!(top.into_bigint().num_bits() > 128);
        assert_eq!(top, Fr::from(u64::MAX) * (Fr::from(1u64) + l));
    }
}
