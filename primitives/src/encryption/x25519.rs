//! X25519 of one secret scalar with many points at once (trial decryption).
//!
//! A wallet multiplies every output's ephemeral key by the same secret, so the Montgomery
//! ladders of [`LANES`] points take the same branch-free path bit for bit. This module runs them
//! side by side: each field element holds one point's coordinate per lane, in radix 2^25.5 (ten
//! limbs of 26 and 25 bits, the products fitting in 64 bits), and every operation is the same
//! loop over lanes, which the compiler turns into SIMD multiplications (32 × 32 → 64 bits per
//! lane). The final inversion of each lane is done in the same way. No branch or memory address
//! depends on the secret: the ladder's swaps are masks.
//!
//! The result is exactly `MontgomeryPoint(u).mul_clamped(k)` of curve25519-dalek (RFC 7748
//! X25519, the encoding's top bit ignored), which the tests check on random and RFC inputs.

use fiat_crypto::curve25519_64 as fiat;
use zeroize::Zeroize;

/// Points multiplied side by side.
pub const LANES: usize = 4;

/// One limb of [`LANES`] values.
#[derive(Clone, Copy)]
struct Limb([u64; LANES]);

impl Limb {
    #[inline(always)]
    fn splat(x: u64) -> Limb {
        Limb([x; LANES])
    }

    #[inline(always)]
    fn add(&self, b: &Limb) -> Limb {
        Limb(std::array::from_fn(|l| self.0[l] + b.0[l]))
    }

    /// Times a small constant.
    #[inline(always)]
    fn scale(&self, c: u64) -> Limb {
        Limb(std::array::from_fn(|l| self.0[l] * c))
    }

    /// The low 32 bits of each lane times those of `b`: one SIMD multiplication.
    #[inline(always)]
    fn mul32(&self, b: &Limb) -> Limb {
        Limb(std::array::from_fn(|l| {
            (self.0[l] & 0xffff_ffff) * (b.0[l] & 0xffff_ffff)
        }))
    }
}

/// Ten limbs, each holding one value per lane.
#[derive(Clone, Copy)]
struct Fe([Limb; 10]);

const MASK26: u64 = (1 << 26) - 1;
const MASK25: u64 = (1 << 25) - 1;

/// 2p in limbs: added before a subtraction so no limb goes negative.
const TWO_P: [u64; 10] = [
    2 * (MASK26 - 18),
    2 * MASK25,
    2 * MASK26,
    2 * MASK25,
    2 * MASK26,
    2 * MASK25,
    2 * MASK26,
    2 * MASK25,
    2 * MASK26,
    2 * MASK25,
];

// Bounds. "Tight": limbs below 2^26 (even) and 2^25 + 2^18 (odd), as every carry leaves them.
// A multiplication accepts limbs below 1.5·2^27 (even) and 1.5·2^26 (odd): a sum of two tight
// elements, or a tight element minus a tight one plus 2p. Then 19·g_j < 2^32 and each output limb
// sums at most ten products below 19·2^55.2, under 2^62.8.

impl Fe {
    const ZERO: Fe = Fe([Limb([0; LANES]); 10]);

    fn one() -> Fe {
        let mut f = Fe::ZERO;
        f.0[0] = Limb::splat(1);
        f
    }

    /// `self + b`, not carried (a multiplication input).
    #[inline(always)]
    fn add(&self, b: &Fe) -> Fe {
        Fe(std::array::from_fn(|i| self.0[i].add(&b.0[i])))
    }

    /// `self - b + 2p` for tight `b`, not carried (a multiplication input).
    #[inline(always)]
    fn sub(&self, b: &Fe) -> Fe {
        Fe(std::array::from_fn(|i| {
            Limb(std::array::from_fn(|l| {
                self.0[i].0[l] + TWO_P[i] - b.0[i].0[l]
            }))
        }))
    }

    /// Carries wide limbs (each below 2^63) back to tight ones.
    #[inline(always)]
    fn carry(h: &mut [Limb; 10]) {
        #[inline(always)]
        fn step(h: &mut [Limb; 10], i: usize) {
            let (shift, mask) = if i.is_multiple_of(2) {
                (26, MASK26)
            } else {
                (25, MASK25)
            };
            for l in 0..LANES {
                let c = h[i].0[l] >> shift;
                h[i].0[l] &= mask;
                if i == 9 {
                    h[0].0[l] += c * 19;
                } else {
                    h[i + 1].0[l] += c;
                }
            }
        }
        // Two interleaved chains, as in ref10, then the wrap-around and one more step.
        step(h, 0);
        step(h, 4);
        step(h, 1);
        step(h, 5);
        step(h, 2);
        step(h, 6);
        step(h, 3);
        step(h, 7);
        step(h, 4);
        step(h, 8);
        step(h, 9);
        step(h, 0);
    }

    /// `self · b`, tight. Schoolbook, as ref10's `fe_mul`: limb `k` sums `f_i g_j` over
    /// `i + j = k` and `19 f_i g_j` over `i + j = k + 10` (2^255 = 19), doubled where both limbs
    /// are odd (their offsets sum to one bit above limb `k`'s).
    #[inline]
    fn mul(&self, b: &Fe) -> Fe {
        let f = &self.0;
        let g = &b.0;
        let g1_19 = g[1].scale(19);
        let g2_19 = g[2].scale(19);
        let g3_19 = g[3].scale(19);
        let g4_19 = g[4].scale(19);
        let g5_19 = g[5].scale(19);
        let g6_19 = g[6].scale(19);
        let g7_19 = g[7].scale(19);
        let g8_19 = g[8].scale(19);
        let g9_19 = g[9].scale(19);
        let f1_2 = f[1].scale(2);
        let f3_2 = f[3].scale(2);
        let f5_2 = f[5].scale(2);
        let f7_2 = f[7].scale(2);
        let f9_2 = f[9].scale(2);
        let h0 = f[0]
            .mul32(&g[0])
            .add(&f1_2.mul32(&g9_19))
            .add(&f[2].mul32(&g8_19))
            .add(&f3_2.mul32(&g7_19))
            .add(&f[4].mul32(&g6_19))
            .add(&f5_2.mul32(&g5_19))
            .add(&f[6].mul32(&g4_19))
            .add(&f7_2.mul32(&g3_19))
            .add(&f[8].mul32(&g2_19))
            .add(&f9_2.mul32(&g1_19));
        let h1 = f[0]
            .mul32(&g[1])
            .add(&f[1].mul32(&g[0]))
            .add(&f[2].mul32(&g9_19))
            .add(&f[3].mul32(&g8_19))
            .add(&f[4].mul32(&g7_19))
            .add(&f[5].mul32(&g6_19))
            .add(&f[6].mul32(&g5_19))
            .add(&f[7].mul32(&g4_19))
            .add(&f[8].mul32(&g3_19))
            .add(&f[9].mul32(&g2_19));
        let h2 = f[0]
            .mul32(&g[2])
            .add(&f1_2.mul32(&g[1]))
            .add(&f[2].mul32(&g[0]))
            .add(&f3_2.mul32(&g9_19))
            .add(&f[4].mul32(&g8_19))
            .add(&f5_2.mul32(&g7_19))
            .add(&f[6].mul32(&g6_19))
            .add(&f7_2.mul32(&g5_19))
            .add(&f[8].mul32(&g4_19))
            .add(&f9_2.mul32(&g3_19));
        let h3 = f[0]
            .mul32(&g[3])
            .add(&f[1].mul32(&g[2]))
            .add(&f[2].mul32(&g[1]))
            .add(&f[3].mul32(&g[0]))
            .add(&f[4].mul32(&g9_19))
            .add(&f[5].mul32(&g8_19))
            .add(&f[6].mul32(&g7_19))
            .add(&f[7].mul32(&g6_19))
            .add(&f[8].mul32(&g5_19))
            .add(&f[9].mul32(&g4_19));
        let h4 = f[0]
            .mul32(&g[4])
            .add(&f1_2.mul32(&g[3]))
            .add(&f[2].mul32(&g[2]))
            .add(&f3_2.mul32(&g[1]))
            .add(&f[4].mul32(&g[0]))
            .add(&f5_2.mul32(&g9_19))
            .add(&f[6].mul32(&g8_19))
            .add(&f7_2.mul32(&g7_19))
            .add(&f[8].mul32(&g6_19))
            .add(&f9_2.mul32(&g5_19));
        let h5 = f[0]
            .mul32(&g[5])
            .add(&f[1].mul32(&g[4]))
            .add(&f[2].mul32(&g[3]))
            .add(&f[3].mul32(&g[2]))
            .add(&f[4].mul32(&g[1]))
            .add(&f[5].mul32(&g[0]))
            .add(&f[6].mul32(&g9_19))
            .add(&f[7].mul32(&g8_19))
            .add(&f[8].mul32(&g7_19))
            .add(&f[9].mul32(&g6_19));
        let h6 = f[0]
            .mul32(&g[6])
            .add(&f1_2.mul32(&g[5]))
            .add(&f[2].mul32(&g[4]))
            .add(&f3_2.mul32(&g[3]))
            .add(&f[4].mul32(&g[2]))
            .add(&f5_2.mul32(&g[1]))
            .add(&f[6].mul32(&g[0]))
            .add(&f7_2.mul32(&g9_19))
            .add(&f[8].mul32(&g8_19))
            .add(&f9_2.mul32(&g7_19));
        let h7 = f[0]
            .mul32(&g[7])
            .add(&f[1].mul32(&g[6]))
            .add(&f[2].mul32(&g[5]))
            .add(&f[3].mul32(&g[4]))
            .add(&f[4].mul32(&g[3]))
            .add(&f[5].mul32(&g[2]))
            .add(&f[6].mul32(&g[1]))
            .add(&f[7].mul32(&g[0]))
            .add(&f[8].mul32(&g9_19))
            .add(&f[9].mul32(&g8_19));
        let h8 = f[0]
            .mul32(&g[8])
            .add(&f1_2.mul32(&g[7]))
            .add(&f[2].mul32(&g[6]))
            .add(&f3_2.mul32(&g[5]))
            .add(&f[4].mul32(&g[4]))
            .add(&f5_2.mul32(&g[3]))
            .add(&f[6].mul32(&g[2]))
            .add(&f7_2.mul32(&g[1]))
            .add(&f[8].mul32(&g[0]))
            .add(&f9_2.mul32(&g9_19));
        let h9 = f[0]
            .mul32(&g[9])
            .add(&f[1].mul32(&g[8]))
            .add(&f[2].mul32(&g[7]))
            .add(&f[3].mul32(&g[6]))
            .add(&f[4].mul32(&g[5]))
            .add(&f[5].mul32(&g[4]))
            .add(&f[6].mul32(&g[3]))
            .add(&f[7].mul32(&g[2]))
            .add(&f[8].mul32(&g[1]))
            .add(&f[9].mul32(&g[0]));
        let mut h = [h0, h1, h2, h3, h4, h5, h6, h7, h8, h9];
        Fe::carry(&mut h);
        Fe(h)
    }

    /// `self²`, tight: the products of [`Fe::mul`] with `b = self`, each pair once (55
    /// multiplications instead of 100); the factors 2 of the pairs and of odd limbs apply to
    /// the 64-bit sums.
    #[inline]
    fn square(&self) -> Fe {
        let f = &self.0;
        let f5_19 = f[5].scale(19);
        let f6_19 = f[6].scale(19);
        let f7_19 = f[7].scale(19);
        let f8_19 = f[8].scale(19);
        let f9_19 = f[9].scale(19);
        let h0 = f[0]
            .mul32(&f[0])
            .add(
                &(f[2]
                    .mul32(&f8_19)
                    .add(&f[4].mul32(&f6_19))
                    .add(&f[5].mul32(&f5_19)))
                .scale(2),
            )
            .add(&(f[1].mul32(&f9_19).add(&f[3].mul32(&f7_19))).scale(4));
        let h1 = (f[0]
            .mul32(&f[1])
            .add(&f[2].mul32(&f9_19))
            .add(&f[3].mul32(&f8_19))
            .add(&f[4].mul32(&f7_19))
            .add(&f[5].mul32(&f6_19)))
        .scale(2);
        let h2 = f[6]
            .mul32(&f6_19)
            .add(
                &(f[0]
                    .mul32(&f[2])
                    .add(&f[1].mul32(&f[1]))
                    .add(&f[4].mul32(&f8_19)))
                .scale(2),
            )
            .add(&(f[3].mul32(&f9_19).add(&f[5].mul32(&f7_19))).scale(4));
        let h3 = (f[0]
            .mul32(&f[3])
            .add(&f[1].mul32(&f[2]))
            .add(&f[4].mul32(&f9_19))
            .add(&f[5].mul32(&f8_19))
            .add(&f[6].mul32(&f7_19)))
        .scale(2);
        let h4 = f[2]
            .mul32(&f[2])
            .add(
                &(f[0]
                    .mul32(&f[4])
                    .add(&f[6].mul32(&f8_19))
                    .add(&f[7].mul32(&f7_19)))
                .scale(2),
            )
            .add(&(f[1].mul32(&f[3]).add(&f[5].mul32(&f9_19))).scale(4));
        let h5 = (f[0]
            .mul32(&f[5])
            .add(&f[1].mul32(&f[4]))
            .add(&f[2].mul32(&f[3]))
            .add(&f[6].mul32(&f9_19))
            .add(&f[7].mul32(&f8_19)))
        .scale(2);
        let h6 = f[8]
            .mul32(&f8_19)
            .add(
                &(f[0]
                    .mul32(&f[6])
                    .add(&f[2].mul32(&f[4]))
                    .add(&f[3].mul32(&f[3])))
                .scale(2),
            )
            .add(&(f[1].mul32(&f[5]).add(&f[7].mul32(&f9_19))).scale(4));
        let h7 = (f[0]
            .mul32(&f[7])
            .add(&f[1].mul32(&f[6]))
            .add(&f[2].mul32(&f[5]))
            .add(&f[3].mul32(&f[4]))
            .add(&f[8].mul32(&f9_19)))
        .scale(2);
        let h8 = f[4]
            .mul32(&f[4])
            .add(
                &(f[0]
                    .mul32(&f[8])
                    .add(&f[2].mul32(&f[6]))
                    .add(&f[9].mul32(&f9_19)))
                .scale(2),
            )
            .add(&(f[1].mul32(&f[7]).add(&f[3].mul32(&f[5]))).scale(4));
        let h9 = (f[0]
            .mul32(&f[9])
            .add(&f[1].mul32(&f[8]))
            .add(&f[2].mul32(&f[7]))
            .add(&f[3].mul32(&f[6]))
            .add(&f[4].mul32(&f[5])))
        .scale(2);
        let mut h = [h0, h1, h2, h3, h4, h5, h6, h7, h8, h9];
        Fe::carry(&mut h);
        Fe(h)
    }

    /// `self · 121666` ((A + 2) / 4 of Curve25519), tight; `self` a multiplication input.
    #[inline(always)]
    fn mul_121666(&self) -> Fe {
        let mut h = self.0.map(|x| x.scale(121_666));
        Fe::carry(&mut h);
        Fe(h)
    }

    fn pow2k(&self, k: u32) -> Fe {
        let mut x = *self;
        for _ in 0..k {
            x = x.square();
        }
        x
    }

    /// `self^(p - 2)`: the inverse, and 0 for 0 (curve25519-dalek's addition chain).
    fn invert(&self) -> Fe {
        let t0 = self.square();
        let t1 = t0.square().square();
        let t2 = self.mul(&t1);
        let t3 = t0.mul(&t2);
        let t4 = t3.square();
        let t5 = t2.mul(&t4);
        let t6 = t5.pow2k(5);
        let t7 = t6.mul(&t5);
        let t8 = t7.pow2k(10);
        let t9 = t8.mul(&t7);
        let t10 = t9.pow2k(20);
        let t11 = t10.mul(&t9);
        let t12 = t11.pow2k(10);
        let t13 = t12.mul(&t7);
        let t14 = t13.pow2k(50);
        let t15 = t14.mul(&t13);
        let t16 = t15.pow2k(100);
        let t17 = t16.mul(&t15);
        let t18 = t17.pow2k(50);
        let t19 = t18.mul(&t13);
        let t20 = t19.pow2k(5);
        t20.mul(&t3)
    }

    /// Swaps `a` and `b` where `mask` is all ones, keeps them where it is zero.
    #[inline(always)]
    fn cswap(a: &mut Fe, b: &mut Fe, mask: u64) {
        let m = Limb::splat(mask);
        for (x, y) in a.0.iter_mut().zip(b.0.iter_mut()) {
            let t = Limb(std::array::from_fn(|l| (x.0[l] ^ y.0[l]) & m.0[l]));
            *x = Limb(std::array::from_fn(|l| x.0[l] ^ t.0[l]));
            *y = Limb(std::array::from_fn(|l| y.0[l] ^ t.0[l]));
        }
    }

    /// Reads lane `l` from a u-coordinate's encoding (top bit ignored, as RFC 7748 says).
    fn set_lane(&mut self, l: usize, bytes: &[u8; 32]) {
        let mut b = *bytes;
        b[31] &= 0x7f;
        let mut t = fiat::fiat_25519_tight_field_element([0; 5]);
        fiat::fiat_25519_from_bytes(&mut t, &b);
        for k in 0..5 {
            self.0[2 * k].0[l] = t.0[k] & MASK26;
            self.0[2 * k + 1].0[l] = t.0[k] >> 26;
        }
    }

    /// The canonical encoding of lane `l` (of a tight element).
    fn lane_bytes(&self, l: usize) -> [u8; 32] {
        let mut t = fiat::fiat_25519_tight_field_element([0; 5]);
        for k in 0..5 {
            t.0[k] = self.0[2 * k].0[l] + (self.0[2 * k + 1].0[l] << 26);
        }
        // Fiat's tight bound (1.1 · 2^51 per limb) holds: below 2^51 + 2^44.
        let mut out = [0u8; 32];
        fiat::fiat_25519_to_bytes(&mut out, &t);
        out
    }
}

impl Zeroize for Fe {
    fn zeroize(&mut self) {
        for limb in self.0.iter_mut() {
            limb.0.zeroize();
        }
    }
}

/// One step of the ladder (RFC 7748 §5): `(x2 : z2) ← 2·(x2 : z2)`,
/// `(x3 : z3) ← (x2 : z2) + (x3 : z3)`, their difference being `x1`.
#[inline(never)]
fn ladder_step(x1: &Fe, x2: &mut Fe, z2: &mut Fe, x3: &mut Fe, z3: &mut Fe) {
    let a = x2.add(z2);
    let b = x2.sub(z2);
    let aa = a.square();
    let bb = b.square();
    let e = aa.sub(&bb);
    let c = x3.add(z3);
    let d = x3.sub(z3);
    let da = d.mul(&a);
    let cb = c.mul(&b);
    *x3 = da.add(&cb).square();
    *z3 = x1.mul(&da.sub(&cb).square());
    *x2 = aa.mul(&bb);
    *z2 = e.mul(&bb.add(&e.mul_121666()));
}

/// `u([k]P)` for `u(P) = points[l]`, `k` = `scalar` clamped, lane by lane.
fn ladder(scalar: &[u8; 32], points: &[[u8; 32]; LANES]) -> [[u8; 32]; LANES] {
    let mut k = *scalar;
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;

    let mut x1 = Fe::ZERO;
    for (l, p) in points.iter().enumerate() {
        x1.set_lane(l, p);
    }
    let mut x2 = Fe::one();
    let mut z2 = Fe::ZERO;
    let mut x3 = x1;
    let mut z3 = Fe::one();
    let mut swap = 0u64;
    for t in (0..255).rev() {
        let bit = u64::from((k[t / 8] >> (t % 8)) & 1);
        // Hidden from the optimizer so that it stays a mask, not a branch.
        let mask = std::hint::black_box(0u64.wrapping_sub(swap ^ bit));
        Fe::cswap(&mut x2, &mut x3, mask);
        Fe::cswap(&mut z2, &mut z3, mask);
        swap = bit;

        ladder_step(&x1, &mut x2, &mut z2, &mut x3, &mut z3);
    }
    let mask = std::hint::black_box(0u64.wrapping_sub(swap));
    Fe::cswap(&mut x2, &mut x3, mask);
    Fe::cswap(&mut z2, &mut z3, mask);

    let u = x2.mul(&z2.invert());
    let out = std::array::from_fn(|l| u.lane_bytes(l));
    k.zeroize();
    for f in [&mut x2, &mut z2, &mut x3, &mut z3] {
        f.zeroize();
    }
    swap.zeroize();
    out
}

/// X25519 of `scalar` with every point: `out[i]` is the encoding of
/// `MontgomeryPoint(points[i]).mul_clamped(*scalar)`, in time independent of `scalar`.
///
/// Side by side where the build has AVX2 (four 64-bit lanes per instruction; the repository's
/// build settings enable it on x86-64); otherwise one by one with curve25519-dalek, which is
/// faster than lanes emulated on narrower vectors.
pub fn mul_clamped_many(scalar: &[u8; 32], points: &[[u8; 32]]) -> Vec<[u8; 32]> {
    if cfg!(target_feature = "avx2") {
        mul_clamped_lanes(scalar, points)
    } else {
        points
            .iter()
            .map(|p| {
                curve25519_dalek::montgomery::MontgomeryPoint(*p)
                    .mul_clamped(*scalar)
                    .to_bytes()
            })
            .collect()
    }
}

/// [`mul_clamped_many`] with the ladders side by side, whatever the build's vector width.
fn mul_clamped_lanes(scalar: &[u8; 32], points: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut out = Vec::with_capacity(points.len());
    for chunk in points.chunks(LANES) {
        let mut lanes = [[0u8; 32]; LANES];
        lanes[..chunk.len()].copy_from_slice(chunk);
        let r = ladder(scalar, &lanes);
        out.extend_from_slice(&r[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::montgomery::MontgomeryPoint;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    fn hex32(s: &str) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
        }
        b
    }

    /// RFC 7748 §5.2, both vectors, in different lanes of one batch.
    #[test]
    fn rfc7748_vectors() {
        let k1 = hex32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
        let u1 = hex32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
        let r1 = hex32("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
        let k2 = hex32("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d");
        let u2 = hex32("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493");
        let r2 = hex32("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
        assert_eq!(mul_clamped_lanes(&k1, &[u1]), vec![r1]);
        assert_eq!(mul_clamped_many(&k1, &[u1]), vec![r1]);
        assert_eq!(mul_clamped_lanes(&k2, &[u1, u2, u2]), {
            let v = MontgomeryPoint(u1).mul_clamped(k2).to_bytes();
            vec![v, r2, r2]
        });
    }

    /// RFC 7748 §5.2, the iterated vector (1,000 iterations).
    #[test]
    fn rfc7748_iterated() {
        let mut k = hex32("0900000000000000000000000000000000000000000000000000000000000000");
        let mut u = k;
        for _ in 0..1000 {
            let r = mul_clamped_lanes(&k, &[u])[0];
            u = k;
            k = r;
        }
        assert_eq!(
            k,
            hex32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
        );
    }

    /// Random scalars and points (top bit set or not, some non-canonical or of low order), batches
    /// of every length up to three chunks: equal to curve25519-dalek's ladder.
    #[test]
    fn matches_dalek() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        for round in 0..40 {
            let mut k = [0u8; 32];
            rng.fill_bytes(&mut k);
            let n = round % (3 * LANES) + 1;
            let mut points: Vec<[u8; 32]> = (0..n)
                .map(|_| {
                    let mut p = [0u8; 32];
                    rng.fill_bytes(&mut p);
                    p
                })
                .collect();
            if round % 5 == 0 {
                // Special encodings: 0, 1, p - 1, p, p + 1, 2^255 - 1 (non-canonical).
                let mut p_minus_1 = [0xffu8; 32];
                p_minus_1[0] = 0xec;
                p_minus_1[31] = 0x7f;
                let specials = [
                    [0u8; 32],
                    {
                        let mut o = [0u8; 32];
                        o[0] = 1;
                        o
                    },
                    p_minus_1,
                    {
                        let mut o = p_minus_1;
                        o[0] = 0xed;
                        o
                    },
                    {
                        let mut o = p_minus_1;
                        o[0] = 0xee;
                        o
                    },
                    [0xff; 32],
                ];
                for (slot, s) in points.iter_mut().zip(specials) {
                    *slot = s;
                }
            }
            let want: Vec<[u8; 32]> = points
                .iter()
                .map(|p| MontgomeryPoint(*p).mul_clamped(k).to_bytes())
                .collect();
            assert_eq!(mul_clamped_lanes(&k, &points), want, "round {round}");
        }
    }

    /// One flipped bit of the scalar or of a point changes that lane's result, and only that one.
    #[test]
    fn flipped_bits_change_the_result() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        let points: Vec<[u8; 32]> = (0..LANES)
            .map(|_| {
                let mut p = [0u8; 32];
                rng.fill_bytes(&mut p);
                p
            })
            .collect();
        let base = mul_clamped_lanes(&k, &points);
        let mut k2 = k;
        k2[10] ^= 4;
        let other = mul_clamped_lanes(&k2, &points);
        assert!(base.iter().zip(&other).all(|(a, b)| a != b));
        let mut p2 = points.clone();
        p2[1][3] ^= 1;
        let other = mul_clamped_lanes(&k, &p2);
        assert_eq!(other[0], base[0]);
        assert_ne!(other[1], base[1]);
        assert_eq!(other[2..], base[2..]);
    }
}
