//! What the devnet tests share: the development parameters, an auditor, an issuer of USD, the
//! ledger configuration of a four-validator devnet, and proven mints.
#![allow(dead_code)]

use shoji_ledger::LedgerConfig;
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::SpendingKeys;
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::Transaction;
use shoji_primitives::Fr;
use shoji_prover::{Prover, TransferBuilder};
use shoji_verifier::Verifier;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The asset the issuer issues.
pub const USD: AssetId = AssetId(840);

/// Keys, parameters and a ledger configuration for a devnet.
pub struct Fixture {
    pub prover: Prover,
    pub verifier: Arc<Verifier>,
    pub auditor: AuditSecretKey,
    pub issuer: shoji_consensus::ed25519_dalek::SigningKey,
    pub dir: tempfile::TempDir,
    pub ledger: LedgerConfig,
}

impl Fixture {
    pub fn new() -> Fixture {
        let prover = Prover::dev().expect("parameters");
        let verifier = Arc::new(Verifier::new(&prover.proving_key().vk));
        let auditor = AuditSecretKey::random(&mut rand_core::OsRng);
        let issuer = shoji_consensus::ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let ledger = LedgerConfig {
            anchor_window_blocks: 100,
            auditor: auditor.public_key(),
            issuers: BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([USD]))]),
            governance: Default::default(),
            network_id: [0; 32],
            validators: Default::default(),
            checkpoint_interval: 8,
            window_size: 16,
            account_auditor: None,
        };
        Fixture {
            prover,
            verifier,
            auditor,
            issuer,
            dir: tempfile::tempdir().expect("tempdir"),
            ledger,
        }
    }

    /// A proven, issuer-signed mint of `amount` USD to `wallet`'s own address, anchored at
    /// `anchor`, for the network `network`.
    pub fn mint(
        &self,
        wallet: &SpendingKeys,
        amount: u64,
        anchor: Fr,
        network: [u8; 32],
    ) -> Transaction {
        let mut b = TransferBuilder::mint(
            wallet,
            USD,
            Amount(amount),
            anchor,
            self.auditor.public_key(),
            self.issuer.verifying_key().to_bytes(),
        );
        b.pay(wallet.address(), Amount(amount), Memo::empty())
            .expect("pay");
        b.network(network);
        b.build(&mut rand_core::OsRng)
            .expect("build")
            .prove(&self.prover, &mut rand_core::OsRng)
            .expect("prove")
            .sign_mint(&self.issuer)
            .expect("sign")
    }
}
