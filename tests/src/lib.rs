//! The end-to-end story, in one process: an issuer mints 1,000 to Alice; Alice pays Bob 250; Bob
//! pays Carol 100; the auditor reports exactly those payments and discloses one with a proof.
//!
//! Every transaction is really built and proved, then committed by a [`Chain`]: either four
//! validators over QUIC on loopback ([`devnet::Devnet`]: consensus, verification, ledger, redb),
//! or the ledger's state transition alone ([`LocalChain`]). Wallets and the auditor learn only
//! what they scan from compact blocks.
#![forbid(unsafe_code)]

pub mod cli;
pub mod devnet;
pub mod fuzz;
pub mod liar;

use anyhow::{ensure, Context};
use shoji_auditor::{Auditor, Payment};
use shoji_ledger::{CompactBlock, Ledger, LedgerConfig, TxOutcome};
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::{Address, WalletSeed};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::Transaction;
use shoji_prover::{Prover, TransferBuilder};
use shoji_verifier::Verifier;
use shoji_wallet::Wallet;
use std::collections::{BTreeMap, BTreeSet};

/// The path of the workspace binary `name` built beside the running test (`cargo build
/// --bins`, which `cargo nextest run --workspace` does).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target directory");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --bins)",
        path.display()
    );
    path
}

/// The asset of the story.
pub const USD: AssetId = AssetId(840);

/// What the story ended with.
pub struct StoryOutcome {
    /// Balances of Alice, Bob, Carol.
    pub balances: [u128; 3],
    /// The auditor's payment report.
    pub payments: Vec<Payment>,
    /// The auditor's issuance report.
    pub issuances: Vec<Payment>,
    /// The disclosure of Alice's payment verified against the auditor's public key.
    pub disclosure_verified: bool,
    /// A disclosure with a changed amount was rejected.
    pub tampered_disclosure_rejected: bool,
    /// An auditor key that is not designated decrypted nothing.
    pub other_auditor_entries: usize,
    /// Every committed transaction, encoded: what any observer of the chain holds.
    pub chain_bytes: Vec<Vec<u8>>,
    /// The participants (name, address).
    pub participants: Vec<(String, Address)>,
}

/// Where transactions are committed.
pub trait Chain {
    /// Commits `txs` (each must be applied) and returns every compact block committed since the
    /// last call, in height order.
    fn commit(&mut self, txs: Vec<Transaction>) -> anyhow::Result<Vec<CompactBlock>>;
    /// The current commitment-tree root (an anchor).
    fn anchor(&mut self) -> anyhow::Result<shoji_primitives::Fr>;
    /// What the log should call this chain.
    fn describe(&self) -> String;
    /// The network its transactions must name (its genesis hash).
    fn network_id(&self) -> [u8; 32];
}

/// The ledger's state transition with stateless verification, in this process: no consensus.
pub struct LocalChain {
    verifier: Verifier,
    ledger: Ledger,
}

impl LocalChain {
    /// A chain from genesis `config`.
    pub fn new(config: LedgerConfig, verifier: Verifier) -> Self {
        Self {
            verifier,
            ledger: Ledger::genesis(config),
        }
    }
}

impl Chain for LocalChain {
    fn commit(&mut self, txs: Vec<Transaction>) -> anyhow::Result<Vec<CompactBlock>> {
        let stateless = self.verifier.verify_transactions(&txs);
        // No proposer here: the block gets this machine's clock.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let out = self.ledger.apply_block(now_ms, &txs, &stateless);
        for (tx, o) in txs.iter().zip(&out.outcomes) {
            ensure!(
                matches!(o, TxOutcome::Applied { .. }),
                "transaction {} rejected: {o:?}",
                tx.id()
            );
        }
        Ok(vec![out.compact])
    }

    fn anchor(&mut self) -> anyhow::Result<shoji_primitives::Fr> {
        Ok(self.ledger.frontier().root())
    }

    fn describe(&self) -> String {
        "the ledger state transition in this process (no consensus)".into()
    }

    fn network_id(&self) -> [u8; 32] {
        self.ledger.config().network_id
    }
}

struct World {
    chain: Vec<Vec<u8>>,
    prover: Prover,
    ledger: Box<dyn Chain>,
    wallets: Vec<(String, Wallet)>,
    auditor: Auditor,
    bystander: Auditor,
}

impl World {
    /// Verifies and applies one block, then lets everyone scan it.
    fn commit(&mut self, txs: Vec<Transaction>, log: &mut dyn FnMut(String)) -> anyhow::Result<()> {
        self.chain.extend(txs.iter().map(|t| t.to_bytes()));
        for out in self.ledger.commit(txs)? {
            log(format!(
                "  block {} committed at {} ms: {} transaction(s), tree root {}",
                out.height,
                out.time_ms,
                out.txs.len(),
                &shoji_primitives::encoding::fr_to_hex(&out.tree_root)[..16]
            ));
            self.scan(&out)?;
        }
        Ok(())
    }

    fn scan(&mut self, out: &CompactBlock) -> anyhow::Result<()> {
        for (_, w) in self.wallets.iter_mut() {
            w.scan(out)?;
        }
        self.auditor.scan(out);
        self.bystander.scan(out);
        Ok(())
    }

    fn wallet(&self, name: &str) -> &Wallet {
        &self
            .wallets
            .iter()
            .find(|(n, _)| n == name)
            .expect("known wallet")
            .1
    }
}

/// Builds the chain the story runs on, from the genesis ledger configuration.
pub type ChainFactory = dyn FnOnce(LedgerConfig, Verifier) -> anyhow::Result<Box<dyn Chain>>;

/// Runs the story on the chain `make_chain` builds, reporting each step through `log`.
pub fn run_story(
    make_chain: Box<ChainFactory>,
    log: &mut dyn FnMut(String),
) -> anyhow::Result<StoryOutcome> {
    let mut rng = rand_core::OsRng;
    log("Loading the insecure development parameters (generated once per machine) ...".into());
    let prover = Prover::dev().context("development parameters")?;
    let verifier = Verifier::new(&prover.proving_key().vk);

    let auditor_key = AuditSecretKey::random(&mut rng);
    let auditor_pk = auditor_key.public_key();
    let issuer_key = ed25519_dalek::SigningKey::generate(&mut rng);
    let config = LedgerConfig {
        anchor_window_blocks: 100,
        auditor: auditor_pk,
        issuers: BTreeMap::from([(issuer_key.verifying_key().to_bytes(), BTreeSet::from([USD]))]),
        governance: Default::default(),
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: None,
    };
    let names = ["issuer", "alice", "bob", "carol"];
    let mut wallets: Vec<(String, Wallet)> = names
        .iter()
        .map(|n| (n.to_string(), Wallet::new(&WalletSeed::random(&mut rng))))
        .collect();
    let mut auditor = Auditor::new(auditor_key);
    for (n, w) in &wallets {
        auditor.name(w.address().apk, n);
    }
    let ledger = make_chain(config, verifier)?;
    log(format!("Chain: {}", ledger.describe()));
    let network = ledger.network_id();
    for (_, w) in wallets.iter_mut() {
        w.set_network(network);
    }
    let mut world = World {
        chain: Vec::new(),
        prover,
        ledger,
        wallets,
        auditor,
        bystander: Auditor::new(AuditSecretKey::random(&mut rng)),
    };

    log("1. The issuer mints 1,000 USD to Alice".into());
    let alice = world.wallet("alice").address();
    let anchor = world.ledger.anchor()?;
    let mint = {
        let issuer_wallet = world.wallet("issuer");
        let mut b = TransferBuilder::mint(
            issuer_wallet.keys(),
            USD,
            Amount(1000),
            anchor,
            auditor_pk,
            issuer_key.verifying_key().to_bytes(),
        );
        b.network(network);
        b.pay(
            alice,
            Amount(1000),
            Memo::from_text("initial funding").context("memo")?,
        )?;
        b.build(&mut rng)?
            .prove(&world.prover, &mut rng)?
            .sign_mint(&issuer_key)?
    };
    world.commit(vec![mint], log)?;

    log("2. Alice pays Bob 250".into());
    let bob = world.wallet("bob").address();
    let pay = world.wallet("alice").pay(
        bob,
        USD,
        Amount(250),
        Memo::from_text("invoice 17").context("memo")?,
        auditor_pk,
        u64::MAX,
        &mut rng,
    )?;
    let tx_alice_bob = pay.prove(&world.prover, &mut rng)?.into_transaction()?;
    world.commit(vec![tx_alice_bob], log)?;

    log("3. Bob pays Carol 100".into());
    let carol = world.wallet("carol").address();
    let pay = world.wallet("bob").pay(
        carol,
        USD,
        Amount(100),
        Memo::empty(),
        auditor_pk,
        u64::MAX,
        &mut rng,
    )?;
    let tx = pay.prove(&world.prover, &mut rng)?.into_transaction()?;
    world.commit(vec![tx], log)?;

    let balances = ["alice", "bob", "carol"].map(|n| world.wallet(n).balance(USD));
    log(format!(
        "Balances: alice {}, bob {}, carol {}",
        balances[0], balances[1], balances[2]
    ));

    let height = u64::MAX;
    let payments = world.auditor.report(0, height);
    let issuances = world.auditor.issuances(0, height);
    log("4. The auditor's report:".into());
    for p in issuances.iter().chain(&payments) {
        log(format!(
            "  height {}  {:>6} -> {:<6} {:>5} USD   tx {}",
            p.height,
            p.from,
            p.to,
            p.amount.0,
            &p.txid.to_string()[..16]
        ));
    }

    log("5. The auditor discloses Alice's payment; anyone with its public key checks it".into());
    let id = tx_alice_bob.id();
    let (entry, disclosure) = world
        .auditor
        .disclose(&id, &mut rng)
        .context("the auditor has the transfer")?;
    let disclosure_verified = disclosure
        .verify_claim(&auditor_pk, &entry.record, &id.0, &entry.plaintext)
        .is_ok();
    let mut lie = entry.plaintext;
    lie.values[0] = Amount(25);
    let tampered_disclosure_rejected = disclosure
        .verify_claim(&auditor_pk, &entry.record, &id.0, &lie)
        .is_err();
    log(format!("  disclosure verifies: {disclosure_verified}; a disclosure claiming 25 instead of 250 is rejected: {tampered_disclosure_rejected}"));

    Ok(StoryOutcome {
        balances,
        payments,
        issuances,
        disclosure_verified,
        tampered_disclosure_rejected,
        other_auditor_entries: world.bystander.entries().len(),
        participants: world
            .wallets
            .iter()
            .map(|(n, w)| (n.clone(), w.address()))
            .collect(),
        chain_bytes: world.chain,
    })
}
