//! One multiscalar multiplication for many proofs.
//!
//! Every proof of this crate reduces, once its transcript is replayed, to linear relations
//! `Σ sᵢ·Pᵢ = 0`. A verifier multiplies each relation by a fresh random weight and adds them all
//! into one sum; the sum is the identity for valid proofs, and for any invalid relation it is the
//! identity with probability about 2⁻²⁵² over the weights. Bases shared by all proofs (`G`, `H`
//! and the Bulletproof generators) are summed into one scalar each, so a batch of `k` transfers
//! costs one multiscalar multiplication over about `58·k + 258` points instead of `k` over 284.

use crate::Error;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha3::digest::{ExtendableOutput, Update, XofReader};
use std::sync::OnceLock;

/// Generators per party of the Bulletproof range proofs (the limb size in bits).
pub(crate) const BP_N: usize = crate::LIMB_BITS;
/// Parties (values per aggregated proof) at most.
pub(crate) const BP_M: usize = 8;

/// A base point of a relation.
#[derive(Clone, Copy)]
pub(crate) enum Base {
    /// The value base `G`.
    G,
    /// The blinding base `H`.
    H,
    /// Bulletproof generator `G` number `i` (party-major: party `j`, bit `b` is `j·16 + b`).
    BpG(usize),
    /// Bulletproof generator `H` number `i`.
    BpH(usize),
    /// Any other point.
    P(RistrettoPoint),
}

/// Accumulates the relations of any number of proofs and checks them at once.
pub struct BatchVerifier {
    g: Scalar,
    h: Scalar,
    bp_g: Vec<Scalar>,
    bp_h: Vec<Scalar>,
    scalars: Vec<Scalar>,
    points: Vec<RistrettoPoint>,
    rng: ChaCha20Rng,
    proofs: usize,
}

impl Default for BatchVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchVerifier {
    /// An empty batch. The weights come from a ChaCha20 stream seeded by the operating system:
    /// a prover must not be able to predict them.
    pub fn new() -> Self {
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        Self::with_rng(ChaCha20Rng::from_seed(seed))
    }

    fn with_rng(rng: ChaCha20Rng) -> Self {
        Self {
            g: Scalar::ZERO,
            h: Scalar::ZERO,
            bp_g: vec![Scalar::ZERO; BP_N * BP_M],
            bp_h: vec![Scalar::ZERO; BP_N * BP_M],
            scalars: Vec::new(),
            points: Vec::new(),
            rng,
            proofs: 0,
        }
    }

    /// How many proofs were added.
    pub fn len(&self) -> usize {
        self.proofs
    }

    /// Whether no proof was added.
    pub fn is_empty(&self) -> bool {
        self.proofs == 0
    }

    pub(crate) fn proof_added(&mut self) {
        self.proofs += 1;
    }

    /// A fresh random scalar (a relation weight, or a challenge of the verifier's own).
    pub(crate) fn random(&mut self) -> Scalar {
        let mut wide = [0u8; 64];
        self.rng.fill_bytes(&mut wide);
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    /// Adds the relation `Σ s·base = 0`, multiplied by a fresh random weight.
    pub(crate) fn relation(&mut self, terms: impl IntoIterator<Item = (Scalar, Base)>) {
        let weight = self.random();
        self.add_terms(terms.into_iter().map(|(s, b)| (weight * s, b)));
    }

    /// Adds terms as they are (the caller already weighted them).
    pub(crate) fn add_terms(&mut self, terms: impl IntoIterator<Item = (Scalar, Base)>) {
        for (s, base) in terms {
            match base {
                Base::G => self.g += s,
                Base::H => self.h += s,
                Base::BpG(i) => self.bp_g[i] += s,
                Base::BpH(i) => self.bp_h[i] += s,
                Base::P(p) => {
                    self.scalars.push(s);
                    self.points.push(p);
                }
            }
        }
    }

    /// Checks every relation added: `Ok` when all proofs verify. When it fails it does not say
    /// which proof failed; verify them one at a time to find out.
    pub fn verify(self) -> Result<(), Error> {
        let gens = bp_generators();
        let sum = RistrettoPoint::vartime_multiscalar_mul(
            [self.g, self.h]
                .iter()
                .chain(self.bp_g.iter())
                .chain(self.bp_h.iter())
                .chain(self.scalars.iter()),
            [crate::g(), crate::h()]
                .iter()
                .chain(gens.g.iter())
                .chain(gens.h.iter())
                .chain(self.points.iter()),
        );
        if sum.is_identity() {
            Ok(())
        } else {
            Err(Error::InvalidProof("batch"))
        }
    }
}

pub(crate) struct Generators {
    pub(crate) g: Vec<RistrettoPoint>,
    pub(crate) h: Vec<RistrettoPoint>,
}

/// The Bulletproof generators `G` and `H` for 8 parties of 16 bits, party-major, derived as the
/// `bulletproofs` crate derives them (SHAKE256 over `"GeneratorsChain" ‖ label`, label
/// `'G' | 'H'` then the party index as a little-endian u32, 64 bytes per point hashed to
/// Ristretto). The crate keeps its `H` vector private, and the batch verifier needs both.
pub(crate) fn bp_generators() -> &'static Generators {
    static GENS: OnceLock<Generators> = OnceLock::new();
    GENS.get_or_init(|| {
        let chain = |letter: u8, party: u32| {
            let mut shake = sha3::Shake256::default();
            shake.update(b"GeneratorsChain");
            let mut label = [letter, 0, 0, 0, 0];
            label[1..].copy_from_slice(&party.to_le_bytes());
            shake.update(&label);
            let mut reader = shake.finalize_xof();
            (0..BP_N)
                .map(|_| {
                    let mut wide = [0u8; 64];
                    reader.read(&mut wide);
                    RistrettoPoint::from_uniform_bytes(&wide)
                })
                .collect::<Vec<_>>()
        };
        Generators {
            g: (0..BP_M as u32).flat_map(|j| chain(b'G', j)).collect(),
            h: (0..BP_M as u32).flat_map(|j| chain(b'H', j)).collect(),
        }
    })
}

/// The `bulletproofs` crate's generators for proving.
pub(crate) fn bp_gens() -> &'static bulletproofs::BulletproofGens {
    static GENS: OnceLock<bulletproofs::BulletproofGens> = OnceLock::new();
    GENS.get_or_init(|| bulletproofs::BulletproofGens::new(BP_N, BP_M))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_match_the_bulletproofs_crate() {
        let ours = bp_generators();
        let theirs = bp_gens();
        for j in 0..BP_M {
            let g: Vec<RistrettoPoint> = theirs.share(j).G(BP_N).copied().collect();
            assert_eq!(g, ours.g[j * BP_N..(j + 1) * BP_N]);
        }
        // The H vector is checked by the range proofs: a wrong H fails every valid proof
        // (range::tests::replay_agrees_with_the_crate).
    }

    #[test]
    fn a_false_relation_fails_and_a_true_one_passes() {
        let mut bv = BatchVerifier::new();
        let p = crate::g() + crate::h();
        bv.relation([
            (Scalar::ONE, Base::G),
            (Scalar::ONE, Base::H),
            (-Scalar::ONE, Base::P(p)),
        ]);
        assert_eq!(bv.verify(), Ok(()));
        let mut bv = BatchVerifier::new();
        bv.relation([(Scalar::ONE, Base::G), (-Scalar::ONE, Base::P(p))]);
        assert_eq!(bv.verify(), Err(Error::InvalidProof("batch")));
    }
}
