//! Poseidon over the BLS12-381 scalar field, the one hash used inside the transfer circuit.
//!
//! One permutation serves every use: width 5 (rate 4, capacity 1), S-box `x^5`, 8 full rounds and
//! 60 partial rounds — the round numbers the Poseidon paper (Grassi et al., USENIX Security 2021,
//! Table 2 for a 255-bit prime field, `t = 5`, `alpha = 5`) gives for 128-bit security. The round
//! constants and the MDS matrix come from the paper's Grain LFSR, generated with
//! `ark-crypto-primitives`' own routine; a digest of every constant is pinned in
//! [`PARAMETERS_DIGEST`] and checked when the parameters are first built, so a change in that
//! routine can never silently change our hash.
//!
//! Width 5 is chosen for the 4-ary commitment tree: one permutation hashes one tree node (four
//! children), where a binary tree with width 3 needs two permutations of 81 S-boxes for the same
//! two levels (docs/decisions/0003 has the measurement).
//!
//! Every use has its own [`Domain`]: the capacity element starts as `domain << 8 | input_len`, so
//! hashes for different purposes or of different lengths never collide by construction.

#[cfg(feature = "r1cs")]
pub mod constraints;

use crate::Fr;
use ark_ff::{Field, PrimeField, Zero};
use std::sync::OnceLock;

/// Width of the permutation state.
pub const WIDTH: usize = 5;
/// Number of field elements absorbed per permutation.
pub const RATE: usize = 4;
/// Full rounds (half before, half after the partial rounds).
pub const FULL_ROUNDS: usize = 8;
/// Partial rounds (S-box on the first state element only).
pub const PARTIAL_ROUNDS: usize = 60;
/// The S-box exponent.
pub const ALPHA: u64 = 5;

/// blake3 digest of the round constants followed by the MDS matrix, each element as 32
/// little-endian bytes. Recomputed and compared when the parameters are first built.
pub const PARAMETERS_DIGEST: &str =
    "a0ce4adaf649bdffc0d55d91e8820ab56cfbf93b887d80fd457bc90b668899bb";

/// The purposes Poseidon is used for. Each has its own domain-separation tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u64)]
pub enum Domain {
    /// Owner tag `apk = H(ask, nk)`.
    OwnerTag = 1,
    /// Note commitment `cm = H(asset‖value, apk, rho, rcm)`.
    NoteCommitment = 2,
    /// Nullifier `nf = H(nk, rho)`.
    Nullifier = 3,
    /// Commitment-tree node, `H(child_0, child_1, child_2, child_3)`.
    MerkleNode = 4,
    /// The audit record's pads, squeezed from the shared point `(S.x, S.y)`.
    AuditPad = 5,
    /// The empty leaf of the commitment tree (hash of nothing).
    EmptyLeaf = 6,
}

impl Domain {
    /// The capacity element that starts a hash of `len` inputs in this domain.
    pub fn tag(self, len: usize) -> Fr {
        Fr::from(((self as u64) << 8) | (len as u64 & 0xff))
    }
}

/// Round constants (`ark[round][i]`) and MDS matrix (`mds[i][j]`).
pub struct Parameters {
    /// Round constants, one row of [`WIDTH`] per round.
    pub ark: Vec<[Fr; WIDTH]>,
    /// The MDS matrix.
    pub mds: [[Fr; WIDTH]; WIDTH],
}

/// The pinned parameters, generated on first use and checked against [`PARAMETERS_DIGEST`].
pub fn parameters() -> &'static Parameters {
    static PARAMS: OnceLock<Parameters> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let params = generate_parameters();
        let digest = parameters_digest(&params);
        assert_eq!(
            digest, PARAMETERS_DIGEST,
            "Poseidon parameters differ from the pinned ones: the generator changed"
        );
        params
    })
}

fn generate_parameters() -> Parameters {
    let (ark, mds) = ark_crypto_primitives::sponge::poseidon::find_poseidon_ark_and_mds::<Fr>(
        Fr::MODULUS_BIT_SIZE as u64,
        RATE,
        FULL_ROUNDS as u64,
        PARTIAL_ROUNDS as u64,
        0,
    );
    let row = |v: &Vec<Fr>| -> [Fr; WIDTH] { std::array::from_fn(|i| v[i]) };
    Parameters {
        ark: ark.iter().map(row).collect(),
        mds: std::array::from_fn(|i| row(&mds[i])),
    }
}

/// blake3 over every round constant, then every MDS entry, as 32-byte little-endian integers.
pub fn parameters_digest(params: &Parameters) -> String {
    let mut h = blake3::Hasher::new();
    for x in params
        .ark
        .iter()
        .flatten()
        .chain(params.mds.iter().flatten())
    {
        h.update(&crate::encoding::fr_to_bytes(x));
    }
    h.finalize().to_hex().to_string()
}

/// Applies the Poseidon permutation to `state` in place.
///
/// The result is exactly that of the textbook permutation (round constants, S-boxes, dense MDS
/// in every round — [`permute_reference`]); the rounds are rearranged for speed as the Poseidon
/// paper's Appendix B describes: the constants of a partial round that do not meet its S-box
/// are carried into the next round, so a partial round adds one constant; and each partial
/// round's MDS matrix is factored into a sparse matrix and a matrix that fixes the first
/// coordinate, which commutes with the partial round's S-box and is folded into the round
/// before. A partial round then costs 9 multiplications instead of 25.
pub fn permute(state: &mut [Fr; WIDTH]) {
    let f = fast();
    let half = FULL_ROUNDS / 2;
    for r in 0..half {
        full_round(
            state,
            &f.full_ark[r],
            if r + 1 == half {
                &f.pre_partial_mds
            } else {
                &f.mds
            },
        );
    }
    for i in 0..PARTIAL_ROUNDS {
        state[0] = sbox(state[0] + f.partial_ark[i]);
        let s0 = state[0];
        let row = &f.sparse_row[i];
        let first = row
            .iter()
            .zip(state.iter())
            .fold(Fr::from(0u64), |acc, (m, x)| acc + *m * x);
        for (s, c) in state[1..].iter_mut().zip(&f.sparse_col[i]) {
            *s += *c * s0;
        }
        state[0] = first;
    }
    for r in half..FULL_ROUNDS {
        full_round(state, &f.full_ark[r], &f.mds);
    }
}

fn full_round(state: &mut [Fr; WIDTH], ark: &[Fr; WIDTH], mds: &Matrix) {
    for (s, c) in state.iter_mut().zip(ark) {
        *s = sbox(*s + c);
    }
    *state = mat_vec(mds, state);
}

/// The textbook permutation: every round adds its constants, applies the S-boxes (all of them
/// in full rounds, the first in partial rounds) and the dense MDS matrix. [`permute`] computes
/// the same function faster; this one is kept as its specification.
pub fn permute_reference(state: &mut [Fr; WIDTH]) {
    let p = parameters();
    let half = FULL_ROUNDS / 2;
    for (round, ark) in p.ark.iter().enumerate() {
        for (s, c) in state.iter_mut().zip(ark) {
            *s += c;
        }
        if round < half || round >= half + PARTIAL_ROUNDS {
            for s in state.iter_mut() {
                *s = sbox(*s);
            }
        } else {
            state[0] = sbox(state[0]);
        }
        *state = mat_vec(&p.mds, state);
    }
}

type Matrix = [[Fr; WIDTH]; WIDTH];

fn mat_vec(m: &Matrix, v: &[Fr; WIDTH]) -> [Fr; WIDTH] {
    std::array::from_fn(|i| {
        m[i].iter()
            .zip(v.iter())
            .fold(Fr::from(0u64), |acc, (a, x)| acc + *a * x)
    })
}

fn mat_mul(a: &Matrix, b: &Matrix) -> Matrix {
    std::array::from_fn(|i| {
        std::array::from_fn(|j| (0..WIDTH).fold(Fr::from(0u64), |acc, k| acc + a[i][k] * b[k][j]))
    })
}

/// Inverse of a square matrix by Gauss–Jordan elimination; `None` if singular.
fn invert<const N: usize>(m: &[[Fr; N]; N]) -> Option<[[Fr; N]; N]> {
    let mut a = *m;
    let mut inv: [[Fr; N]; N] =
        std::array::from_fn(|i| std::array::from_fn(|j| Fr::from((i == j) as u64)));
    for col in 0..N {
        let pivot = (col..N).find(|&r| !a[r][col].is_zero())?;
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col].inverse()?;
        for j in 0..N {
            a[col][j] *= p;
            inv[col][j] *= p;
        }
        for r in 0..N {
            if r != col && !a[r][col].is_zero() {
                let f = a[r][col];
                for j in 0..N {
                    let (x, y) = (a[col][j], inv[col][j]);
                    a[r][j] -= f * x;
                    inv[r][j] -= f * y;
                }
            }
        }
    }
    Some(inv)
}

/// The rearranged constants and matrices [`permute`] uses.
struct Fast {
    /// Constants of the full rounds (the first of the second half also carries the partial
    /// rounds' leftover constants).
    full_ark: Vec<[Fr; WIDTH]>,
    /// One constant per partial round, added to the first element.
    partial_ark: Vec<Fr>,
    /// Linear layer of the last full round before the partial rounds.
    pre_partial_mds: Matrix,
    /// Per partial round: the sparse matrix's first row ...
    sparse_row: Vec<[Fr; WIDTH]>,
    /// ... and its first column below the diagonal (the rest is the identity).
    sparse_col: Vec<[Fr; WIDTH - 1]>,
    /// The MDS matrix.
    mds: Matrix,
}

fn fast() -> &'static Fast {
    static FAST: OnceLock<Fast> = OnceLock::new();
    FAST.get_or_init(|| {
        let p = parameters();
        let half = FULL_ROUNDS / 2;
        let mds = p.mds;
        // Constants: carry what does not meet the S-box into the next round.
        let mut full_ark: Vec<[Fr; WIDTH]> = p.ark[..half].to_vec();
        let mut partial_ark = Vec::with_capacity(PARTIAL_ROUNDS);
        let mut carry = [Fr::from(0u64); WIDTH];
        for r in half..half + PARTIAL_ROUNDS {
            let v: [Fr; WIDTH] = std::array::from_fn(|i| p.ark[r][i] + carry[i]);
            partial_ark.push(v[0]);
            let mut rest = v;
            rest[0] = Fr::from(0u64);
            carry = mat_vec(&mds, &rest);
        }
        for (k, r) in (half + PARTIAL_ROUNDS..FULL_ROUNDS + PARTIAL_ROUNDS).enumerate() {
            let mut v = p.ark[r];
            if k == 0 {
                for (x, c) in v.iter_mut().zip(&carry) {
                    *x += c;
                }
            }
            full_ark.push(v);
        }
        // Matrices, last partial round first: A = S·D with D = diag(1, Â) folded into the
        // round before.
        let mut sparse_row = vec![[Fr::from(0u64); WIDTH]; PARTIAL_ROUNDS];
        let mut sparse_col = vec![[Fr::from(0u64); WIDTH - 1]; PARTIAL_ROUNDS];
        let mut d: Option<Matrix> = None;
        for i in (0..PARTIAL_ROUNDS).rev() {
            let a = match &d {
                Some(d) => mat_mul(d, &mds),
                None => mds,
            };
            let hat: [[Fr; WIDTH - 1]; WIDTH - 1] =
                std::array::from_fn(|r| std::array::from_fn(|c| a[r + 1][c + 1]));
            let hat_inv = invert(&hat).expect("MDS submatrices are invertible");
            // First row: a00, then aᵀ·Â⁻¹.
            sparse_row[i][0] = a[0][0];
            for c in 0..WIDTH - 1 {
                sparse_row[i][c + 1] =
                    (0..WIDTH - 1).fold(Fr::from(0u64), |acc, k| acc + a[0][k + 1] * hat_inv[k][c]);
            }
            for r in 0..WIDTH - 1 {
                sparse_col[i][r] = a[r + 1][0];
            }
            let mut next = [[Fr::from(0u64); WIDTH]; WIDTH];
            next[0][0] = Fr::from(1u64);
            for r in 0..WIDTH - 1 {
                for c in 0..WIDTH - 1 {
                    next[r + 1][c + 1] = hat[r][c];
                }
            }
            d = Some(next);
        }
        let pre_partial_mds = match &d {
            Some(d) => mat_mul(d, &mds),
            None => mds,
        };
        Fast {
            full_ark,
            partial_ark,
            pre_partial_mds,
            sparse_row,
            sparse_col,
            mds,
        }
    })
}

fn sbox(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

/// The sponge state after absorbing `inputs` in `domain` (capacity = domain tag, inputs added to
/// the rate part [`RATE`] at a time, one permutation after each chunk).
fn absorb(domain: Domain, inputs: &[Fr]) -> [Fr; WIDTH] {
    let mut state = [Fr::from(0u64); WIDTH];
    state[0] = domain.tag(inputs.len());
    if inputs.is_empty() {
        permute(&mut state);
    }
    for chunk in inputs.chunks(RATE) {
        for (s, x) in state[1..].iter_mut().zip(chunk) {
            *s += x;
        }
        permute(&mut state);
    }
    state
}

/// Fixed-length hash of `inputs` in `domain`: one field element.
///
/// At most 255 inputs (the length is part of the domain tag).
pub fn hash(domain: Domain, inputs: &[Fr]) -> Fr {
    debug_assert!(inputs.len() < 256);
    absorb(domain, inputs)[1]
}

/// Hash of `inputs` in `domain` squeezed to [`RATE`] field elements (one permutation's rate).
pub fn hash_to_rate(domain: Domain, inputs: &[Fr]) -> [Fr; RATE] {
    let state = absorb(domain, inputs);
    [state[1], state[2], state[3], state[4]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_crypto_primitives::sponge::poseidon::{PoseidonConfig, PoseidonSponge};
    use ark_crypto_primitives::sponge::CryptographicSponge;

    #[test]
    fn rearranged_permutation_equals_the_textbook_one() {
        use ark_std::UniformRand;
        let mut rng = ark_std::test_rng();
        let mut states: Vec<[Fr; WIDTH]> = vec![[Fr::from(0u64); WIDTH]];
        states.extend((0..50).map(|_| std::array::from_fn(|_| Fr::rand(&mut rng))));
        for s in states {
            let (mut a, mut b) = (s, s);
            permute(&mut a);
            permute_reference(&mut b);
            assert_eq!(a, b);
        }
        // And the test can fail: a different state gives a different image.
        let (mut a, mut b) = ([Fr::from(1u64); WIDTH], [Fr::from(2u64); WIDTH]);
        permute(&mut a);
        permute_reference(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn parameters_match_pinned_digest() {
        let params = generate_parameters();
        assert_eq!(params.ark.len(), FULL_ROUNDS + PARTIAL_ROUNDS);
        assert_eq!(parameters_digest(&params), PARAMETERS_DIGEST);
    }

    /// Our permutation is the one `ark-crypto-primitives`' Poseidon sponge applies.
    #[test]
    fn permutation_matches_arkworks_sponge() {
        let p = parameters();
        let config = PoseidonConfig::new(
            FULL_ROUNDS,
            PARTIAL_ROUNDS,
            ALPHA,
            p.mds.iter().map(|r| r.to_vec()).collect(),
            p.ark.iter().map(|r| r.to_vec()).collect(),
            RATE,
            1,
        );
        let inputs: Vec<Fr> = (1..=4u64).map(Fr::from).collect();
        // The sponge starts from the all-zero state and adds inputs to the rate part; it squeezes
        // from the rate part after one permutation: the same as our hash with a zero capacity.
        let mut sponge = PoseidonSponge::new(&config);
        sponge.absorb(&inputs);
        let out: Vec<Fr> = sponge.squeeze_field_elements(1);
        let mut state = [Fr::from(0u64); WIDTH];
        state[1..].copy_from_slice(&inputs);
        permute(&mut state);
        assert_eq!(out[0], state[1]);
    }

    #[test]
    fn domains_separate() {
        let x = [Fr::from(7u64), Fr::from(9u64)];
        assert_ne!(hash(Domain::Nullifier, &x), hash(Domain::OwnerTag, &x));
        assert_ne!(
            hash(Domain::Nullifier, &x),
            hash(Domain::Nullifier, &x[..1])
        );
        // A trailing zero is not the same as a shorter input.
        let y = [Fr::from(7u64), Fr::from(9u64), Fr::from(0u64)];
        assert_ne!(hash(Domain::Nullifier, &x), hash(Domain::Nullifier, &y));
    }

    /// Test vectors: pinned outputs, so any change to the hash is noticed.
    #[test]
    fn test_vectors() {
        let v = |d, n: u64| {
            let inputs: Vec<Fr> = (0..n).map(Fr::from).collect();
            crate::encoding::fr_to_hex(&hash(d, &inputs))
        };
        let got = [
            v(Domain::MerkleNode, 4),
            v(Domain::NoteCommitment, 4),
            v(Domain::OwnerTag, 2),
            v(Domain::EmptyLeaf, 0),
            v(Domain::AuditPad, 6),
        ];
        let want = [
            "692a5161cfa0a172c65b3d61dfe158de87051050839a3e2fc8af5727b3b13f2b",
            "75d5d44d9ecfba5ac6fa51a5e223be671871cc436c7c9bba4d188fd498380431",
            "cd116b8f3477d009fad6044412961d2e4ec53c5486d1b72e6691c19ed725f437",
            "6d804572a6752555c65319ed762a5c03f550b914190180e92881e0fa3839c156",
            "4d1bf3d95b6c9d9bf68fcce343f3bd5722667403511ffe72a8e9b0480529530b",
        ];
        assert_eq!(got, want);
    }
}
