//! Zcash Orchard (Halo 2, no trusted setup): one bundle of two actions, proved and verified by
//! the `orchard` crate.
//!
//! The bundle pays two outputs; the builder pads it with dummy spends to two actions. A dummy
//! spend is proved by the same circuit as a real one, so the proof costs the same.

use anyhow::{anyhow, Context};
use orchard::builder::{Builder, BundleType, InProgress, Unauthorized, UnauthorizedBundle};
use orchard::bundle::{Authorized, Bundle, BundleVersion, Flags};
use orchard::circuit::{OrchardCircuitVersion, ProvingKey, VerifyingKey};
use orchard::keys::{FullViewingKey, Scope, SpendingKey};
use orchard::value::NoteValue;
use orchard::Anchor;
use orchard::Proof;
use rand010::rngs::StdRng;

/// The current (post-NU6.2) Orchard circuit's keys. Building them takes a few seconds; Halo 2
/// needs no setup, so nothing is cached.
pub struct Keys {
    pk: ProvingKey,
    vk: VerifyingKey,
}

impl Keys {
    /// Builds both keys.
    pub fn build() -> Self {
        let version = OrchardCircuitVersion::FixedPostNu6_2;
        Self {
            pk: ProvingKey::build(version),
            vk: VerifyingKey::build(version),
        }
    }
}

/// Builds a bundle of two actions, without its proof.
pub fn build(rng: &mut StdRng) -> anyhow::Result<UnauthorizedBundle<i64>> {
    let sk = Option::<SpendingKey>::from(SpendingKey::from_bytes([7u8; 32]))
        .context("Orchard spending key")?;
    let to = FullViewingKey::from(&sk).address_at(0u32, Scope::External);
    let mut b = Builder::new(
        BundleType::DEFAULT,
        BundleVersion::orchard_v2(),
        Flags::ENABLED,
        Anchor::empty_tree(),
    )
    .map_err(|e| anyhow!("Orchard builder: {e:?}"))?;
    for v in [250u64, 250] {
        b.add_output(None, to, NoteValue::from_raw(v), [0u8; 512])
            .map_err(|e| anyhow!("Orchard output: {e:?}"))?;
    }
    let (bundle, _) = b
        .build::<i64>(rng)
        .map_err(|e| anyhow!("Orchard bundle: {e:?}"))?
        .context("an empty Orchard bundle")?;
    Ok(bundle)
}

/// Proves a built bundle (one Halo 2 proof for both actions).
pub fn prove(
    keys: &Keys,
    bundle: UnauthorizedBundle<i64>,
    rng: &mut StdRng,
) -> anyhow::Result<Proven> {
    bundle
        .create_proof(&keys.pk, rng)
        .map_err(|e| anyhow!("Orchard proof: {e:?}"))
}

/// Signs a proven bundle (its dummy spends sign themselves, and the binding signature).
pub fn sign(proven: Proven, rng: &mut StdRng) -> anyhow::Result<Bundle<Authorized, i64>> {
    proven
        .apply_signatures(rng, super::sapling::SIGHASH, &[])
        .map_err(|e| anyhow!("Orchard signatures: {e:?}"))
}

/// A bundle with its proof, not yet signed.
pub type Proven = Bundle<InProgress<Proof, Unauthorized>, i64>;

/// The proof's size in bytes.
pub fn proof_bytes(bundle: &Bundle<Authorized, i64>) -> usize {
    bundle.authorization().proof().as_ref().len()
}

/// Verifies the bundle's proof (both actions).
pub fn verify(keys: &Keys, bundle: &Bundle<Authorized, i64>) -> bool {
    bundle.verify_proof(&keys.vk).is_ok()
}

/// The number of actions in the bundle.
pub fn actions(bundle: &Bundle<Authorized, i64>) -> usize {
    bundle.actions().len()
}
