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

    /// [`Fixture::new`], with confidential accounts: the auditor's account-tier key is derived
    /// from its one secret, as `shoji-auditor` derives it.
    pub fn with_accounts() -> Fixture {
        let mut f = Fixture::new();
        let account_auditor = shoji_confidential::SecretKey::auditor(&f.auditor.to_bytes());
        f.ledger.account_auditor = Some(account_auditor.public());
        f
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

/// A two-thread runtime for a devnet's validators, as the tests' machines have two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// An account opened on a devnet with accounts, and one issuer's mints into it, each waited for
/// (so each lands in a block of its own on an otherwise idle network).
pub struct Minter<'a> {
    client: &'a shoji_client::Client,
    network: [u8; 32],
    issuer: &'a shoji_consensus::ed25519_dalek::SigningKey,
    to: shoji_confidential::SecretKey,
    /// Mints committed so far.
    pub minted: u64,
}

impl<'a> Minter<'a> {
    /// Opens the account of `seed` through `client`.
    pub fn open(
        client: &'a shoji_client::Client,
        issuer: &'a shoji_consensus::ed25519_dalek::SigningKey,
        seed: u8,
    ) -> Minter<'a> {
        let network = client.network().network_id;
        let to = shoji_confidential::SecretKey::account(&[seed; 32]);
        let open =
            shoji_primitives::account::AccountTx::open(&network, &to, USD, &mut rand_core::OsRng);
        client.submit_bytes(open.to_bytes()).expect("opened");
        Minter {
            client,
            network,
            issuer,
            to,
            minted: 0,
        }
    }

    /// Mints one unit; returns the height of the block holding it.
    pub fn mint(&mut self) -> u64 {
        self.try_mint().expect("minted")
    }

    /// Mints one unit: the height of the block holding it, or why it did not commit.
    pub fn try_mint(&mut self) -> Result<u64, shoji_client::ClientError> {
        self.minted += 1;
        let mut nonce = [0; 32];
        nonce[..8].copy_from_slice(&self.minted.to_le_bytes());
        let tx = shoji_primitives::account::AccountTx::mint(
            &self.network,
            self.issuer,
            USD,
            self.to.public(),
            Amount(1),
            nonce,
        );
        self.client.submit_bytes(tx.to_bytes()).map(|f| f.height)
    }
}

/// The account transactions in every certified block from height 1 to `height`, read through
/// `network`'s validators and, below what they keep, its archive: what a wallet restored from
/// its phrase scans.
pub fn account_txs_through(
    network: &shoji_client::Network,
    height: u64,
) -> Result<u64, shoji_client::ClientError> {
    let c = shoji_client::Client::connect(network, None)?;
    let (mut next, mut count) = (1, 0);
    let start = std::time::Instant::now();
    while next <= height {
        // As far as the validator's newest stable checkpoint: one that started from a snapshot
        // keeps none below it, so a nearer one would not be found.
        let got = c.certified_blocks(next, u32::MAX)?;
        if got.blocks.is_empty() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "no certified blocks from {next}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        count += got
            .blocks
            .iter()
            .filter(|b| b.height <= height)
            .map(|b| b.accounts.len() as u64)
            .sum::<u64>();
        next = got.height + 1;
    }
    Ok(count)
}
