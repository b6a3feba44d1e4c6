//! Notes, note commitments, nullifiers and output `rho` (docs/protocol/notes.md).
//!
//! A note is (`asset`, `value`, `owner`, `rho`, `rcm`). Asset identifiers and values are both
//! 64-bit, so `asset·2^64 + value` packs them into one field element injectively (both halves are
//! range-checked in the circuit); the commitment is then one Poseidon permutation:
//! `cm = H_NoteCommitment(asset·2^64 + value, owner, rho, rcm)`.

#[cfg(feature = "r1cs")]
pub mod constraints;

use crate::poseidon::{self, Domain};
use crate::Fr;
use ark_ff::UniformRand;

/// An asset identifier, assigned when governance registers the asset.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct AssetId(pub u64);

/// An amount of one asset, in its smallest unit.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Amount(pub u64);

impl Amount {
    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// Difference, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

/// `asset·2^64 + value` as a field element.
pub fn pack_asset_value(asset: AssetId, value: Amount) -> Fr {
    Fr::from(((asset.0 as u128) << 64) | value.0 as u128)
}

/// A shielded note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    /// Which asset.
    pub asset: AssetId,
    /// How much.
    pub value: Amount,
    /// The owner tag (`apk`) of the address it was sent to.
    pub owner: Fr,
    /// Uniqueness seed: for outputs of a transfer, derived from the transfer's nullifiers.
    pub rho: Fr,
    /// Commitment randomness.
    pub rcm: Fr,
}

impl Note {
    /// The note commitment `cm`.
    pub fn commitment(&self) -> Fr {
        note_commitment(
            pack_asset_value(self.asset, self.value),
            self.owner,
            self.rho,
            self.rcm,
        )
    }

    /// The nullifier `nf = H_Nullifier(nk, rho)` revealed when the note is spent.
    pub fn nullifier(&self, nk: &Fr) -> Fr {
        nullifier(nk, &self.rho)
    }

    /// A zero-value note owned by `owner`, with random `rho` and `rcm`, used to pad a transfer's
    /// inputs or outputs to two.
    pub fn dummy(asset: AssetId, owner: Fr, rng: &mut impl rand_core::RngCore) -> Self {
        Self {
            asset,
            value: Amount(0),
            owner,
            rho: Fr::rand(rng),
            rcm: Fr::rand(rng),
        }
    }
}

/// `cm = H_NoteCommitment(packed, owner, rho, rcm)`.
pub fn note_commitment(packed_asset_value: Fr, owner: Fr, rho: Fr, rcm: Fr) -> Fr {
    poseidon::hash(
        Domain::NoteCommitment,
        &[packed_asset_value, owner, rho, rcm],
    )
}

/// `nf = H_Nullifier(nk, rho)`.
pub fn nullifier(nk: &Fr, rho: &Fr) -> Fr {
    poseidon::hash(Domain::Nullifier, &[*nk, *rho])
}

/// `rho` of output `j` (0 or 1): the nullifier of input `j`. Nullifiers are unique on the
/// ledger (the validators refuse a repeated one, and the two of a transaction differ), so output
/// `rho`s are unique too, and two notes can never share a nullifier (no "faerie gold").
pub fn output_rho(nullifiers: &[Fr; 2], j: usize) -> Fr {
    nullifiers[j]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_is_injective_on_u64s() {
        let a = pack_asset_value(AssetId(1), Amount(0));
        let b = pack_asset_value(AssetId(0), Amount(u64::MAX));
        assert_ne!(a, b);
        assert_eq!(b + Fr::from(1u64), a);
    }

    #[test]
    fn commitment_binds_every_field() {
        let mut rng = ark_std::test_rng();
        let n = Note::dummy(AssetId(7), Fr::from(5u64), &mut rng);
        let base = n.commitment();
        let variants = [
            Note {
                asset: AssetId(8),
                ..n
            },
            Note {
                value: Amount(1),
                ..n
            },
            Note {
                owner: Fr::from(6u64),
                ..n
            },
            Note {
                rho: n.rho + Fr::from(1u64),
                ..n
            },
            Note {
                rcm: n.rcm + Fr::from(1u64),
                ..n
            },
        ];
        for v in variants {
            assert_ne!(v.commitment(), base);
        }
        assert_ne!(
            output_rho(&[Fr::from(1u64), Fr::from(2u64)], 0),
            output_rho(&[Fr::from(1u64), Fr::from(2u64)], 1)
        );
    }
}
