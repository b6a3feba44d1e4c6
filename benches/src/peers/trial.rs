//! Wallet trial decryption of outputs that are not the wallet's (nearly all a wallet scans):
//! Shoji's batched X25519 against `zcash_note_encryption`'s batched decryption of Sapling
//! outputs, compact (the 52 bytes a light wallet fetches) and full.

use anyhow::{anyhow, ensure, Context};
use rand010::rngs::StdRng;
use sapling_crypto::builder::BundleType;
use sapling_crypto::bundle::OutputDescription;
use sapling_crypto::circuit::{OutputParameters, SpendParameters};
use sapling_crypto::keys::PreparedIncomingViewingKey;
use sapling_crypto::note_encryption::{CompactOutputDescription, SaplingDomain, Zip212Enforcement};
use sapling_crypto::value::NoteValue;
use sapling_crypto::zip32::ExtendedSpendingKey;
use sapling_crypto::Anchor;
use shoji_primitives::encryption::{
    encrypt_note, try_decrypt_notes, Memo, NoteCiphertext, TrialOutput,
};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::{output_rho, Amount, AssetId, Note};
use shoji_primitives::Fr;

/// `n` Shoji outputs to a stranger, and a wallet that is not the stranger.
pub struct ShojiOutputs {
    wallet: SpendingKeys,
    outputs: Vec<(NoteCiphertext, Fr, Fr)>,
}

impl ShojiOutputs {
    /// Encrypts `n` notes: the first `mine` to the scanning wallet, the rest to a stranger.
    pub fn new(n: usize, mine: usize, rng: &mut rand_chacha::ChaCha20Rng) -> Self {
        use ark_std::UniformRand;
        let wallet = SpendingKeys::from_seed(&WalletSeed::random(rng));
        let stranger = SpendingKeys::from_seed(&WalletSeed::random(rng));
        let outputs = (0..n)
            .map(|i| {
                let to = if i < mine { &wallet } else { &stranger };
                let rho = output_rho(&[Fr::rand(rng), Fr::rand(rng)], i % 2);
                let note = Note {
                    asset: AssetId(840),
                    value: Amount(1 + i as u64),
                    owner: to.address().apk,
                    rho,
                    rcm: Fr::rand(rng),
                };
                let c = encrypt_note(&note, &Memo::empty(), &to.address(), &to.ovk, rng);
                (c, note.commitment(), rho)
            })
            .collect();
        Self { wallet, outputs }
    }

    /// Trial-decrypts every output; the count the wallet found.
    pub fn scan(&self) -> usize {
        let batch: Vec<TrialOutput<'_>> = self
            .outputs
            .iter()
            .map(|(c, cm, rho)| TrialOutput {
                ciphertext: c,
                cm: *cm,
                rho: *rho,
            })
            .collect();
        try_decrypt_notes(&self.wallet, &batch)
            .iter()
            .flatten()
            .count()
    }

    /// How many outputs.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }
}

/// `n` Sapling outputs to a stranger, and the prepared incoming viewing key of another wallet.
pub struct SaplingOutputs {
    ivk: PreparedIncomingViewingKey,
    full: Vec<(
        SaplingDomain,
        OutputDescription<sapling_crypto::bundle::GrothProofBytes>,
    )>,
    compact: Vec<(SaplingDomain, CompactOutputDescription)>,
}

impl SaplingOutputs {
    /// Builds a bundle of `n` outputs, the first `mine` to the scanning wallet and the rest to
    /// a stranger (the builder encrypts them; no proofs are made), and keeps its outputs.
    pub fn new(n: usize, mine: usize, rng: &mut StdRng) -> anyhow::Result<Self> {
        let stranger = ExtendedSpendingKey::master(&[3u8; 32]).context("Sapling key")?;
        let (_, theirs) = stranger
            .to_diversifiable_full_viewing_key()
            .default_address();
        let me = ExtendedSpendingKey::master(&[9u8; 32]).context("Sapling key")?;
        let (_, mine_addr) = me.to_diversifiable_full_viewing_key().default_address();
        let mut b = sapling_crypto::builder::Builder::new(
            Zip212Enforcement::On,
            BundleType::DEFAULT,
            Anchor::empty_tree(),
        );
        for i in 0..n {
            let to = if i < mine { mine_addr } else { theirs };
            b.add_output(None, to, NoteValue::from_raw(1 + i as u64), [0u8; 512])
                .map_err(|e| anyhow!("Sapling output: {e:?}"))?;
        }
        let (bundle, _) = b
            .build::<SpendParameters, OutputParameters, _, i64>(&[], &mut *rng)
            .map_err(|e| anyhow!("Sapling bundle: {e:?}"))?
            .context("an empty Sapling bundle")?;
        let domain = || SaplingDomain::new(Zip212Enforcement::On);
        let full: Vec<_> = bundle
            .shielded_outputs()
            .iter()
            .map(|o| {
                // The same output with an (unused) proof's bytes, as a node stores it.
                let o = OutputDescription::from_parts(
                    o.cv().clone(),
                    *o.cmu(),
                    o.ephemeral_key().clone(),
                    *o.enc_ciphertext(),
                    *o.out_ciphertext(),
                    [0u8; 192],
                );
                (domain(), o)
            })
            .collect();
        let compact = full
            .iter()
            .map(|(_, o)| (domain(), CompactOutputDescription::from(o.clone())))
            .collect();
        let ivk = me.to_diversifiable_full_viewing_key().fvk().vk.ivk();
        ensure!(full.len() >= n, "the bundle lost outputs");
        Ok(Self {
            ivk: PreparedIncomingViewingKey::new(&ivk),
            full,
            compact,
        })
    }

    /// Batched compact trial decryption; the count found.
    pub fn scan_compact(&self) -> usize {
        zcash_note_encryption::batch::try_compact_note_decryption(
            std::slice::from_ref(&self.ivk),
            &self.compact,
        )
        .iter()
        .flatten()
        .count()
    }

    /// Batched full trial decryption; the count found.
    pub fn scan_full(&self) -> usize {
        zcash_note_encryption::batch::try_note_decryption(
            std::slice::from_ref(&self.ivk),
            &self.full,
        )
        .iter()
        .flatten()
        .count()
    }

    /// How many outputs.
    pub fn len(&self) -> usize {
        self.full.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_std::rand::SeedableRng;
    use rand010::SeedableRng as _;

    /// Both sides really decrypt: an output to the wallet is found among strangers' ones, so
    /// the benchmark's scans do the work they claim (no early exit on a malformed batch).
    #[test]
    fn each_side_finds_the_wallets_outputs_and_only_them() {
        let ours = ShojiOutputs::new(16, 2, &mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        assert_eq!(ours.scan(), 2);
        assert_eq!(
            ShojiOutputs::new(16, 0, &mut rand_chacha::ChaCha20Rng::seed_from_u64(1)).scan(),
            0
        );
        let theirs = SaplingOutputs::new(16, 2, &mut StdRng::seed_from_u64(1)).expect("outputs");
        assert_eq!(theirs.len(), 16);
        assert_eq!(theirs.scan_compact(), 2);
        assert_eq!(theirs.scan_full(), 2);
        let none = SaplingOutputs::new(16, 0, &mut StdRng::seed_from_u64(1)).expect("outputs");
        assert_eq!((none.scan_compact(), none.scan_full()), (0, 0));
    }
}
