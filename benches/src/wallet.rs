//! Wallet measurements: how fast a wallet scans outputs that are not its own (the sync rate),
//! and how long `send` takes on a local network (build, prove, finality).

use anyhow::{ensure, Context};
use serde_json::json;
use shoji_ledger::{CompactBlock, CompactTx};
use shoji_primitives::audit::{AuditRecord, AuditSecretKey};
use shoji_primitives::encryption::{encrypt_note, Memo};
use shoji_primitives::keys::{Address, SpendingKeys, WalletSeed};
use shoji_primitives::note::{Amount, AssetId, Note};
use shoji_primitives::tree::Frontier;
use shoji_primitives::tx::{TxId, TxKind};
use shoji_primitives::Fr;
use shoji_wallet::Wallet;
use std::time::Instant;

/// Synthetic chain shape for the sync measurement.
pub struct SyncOptions {
    /// Blocks.
    pub blocks: usize,
    /// Transactions per block (two outputs each).
    pub txs_per_block: usize,
}

/// Compact blocks of `opts` shape whose outputs go to strangers, except one note to `me` in the
/// first block.
pub fn synthetic_chain(opts: &SyncOptions, me: &Address) -> Vec<CompactBlock> {
    use ark_std::UniformRand;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64_compat(7);
    let strangers: Vec<(Address, [u8; 32])> = (0..8)
        .map(|_| {
            let k = SpendingKeys::from_seed(&WalletSeed::random(&mut rng));
            (k.address(), k.ovk)
        })
        .collect();
    let auditor = AuditSecretKey::random(&mut rng).public_key();
    let mut frontier = Frontier::new();
    let mut blocks = Vec::with_capacity(opts.blocks);
    for h in 0..opts.blocks {
        let mut txs = Vec::with_capacity(opts.txs_per_block);
        for t in 0..opts.txs_per_block {
            let nullifiers = [Fr::rand(&mut rng), Fr::rand(&mut rng)];
            let mut commitments = [Fr::from(0u64); 2];
            let outputs = std::array::from_fn(|j| {
                let (to, ovk) = if h == 0 && t == 0 && j == 0 {
                    (*me, [0u8; 32])
                } else {
                    strangers[(t + j) % strangers.len()]
                };
                let note = Note {
                    asset: AssetId(840),
                    value: Amount(1 + t as u64),
                    owner: to.apk,
                    rho: shoji_primitives::note::output_rho(&nullifiers, j),
                    rcm: Fr::rand(&mut rng),
                };
                commitments[j] = note.commitment();
                encrypt_note(&note, &Memo::empty(), &to, &ovk, &mut rng)
            });
            for cm in commitments {
                frontier.append(cm).expect("tree has room");
            }
            let mut txid = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rng, &mut txid);
            txs.push(CompactTx {
                txid: TxId(txid),
                kind: TxKind::Transfer,
                asset: AssetId(0),
                value_in: Amount(0),
                value_out: Amount(0),
                nullifiers,
                commitments,
                outputs,
                auditor,
                audit: AuditRecord {
                    epk: auditor.0,
                    ciphertext: [Fr::from(0u64); 4],
                },
                account: None,
            });
        }
        blocks.push(CompactBlock {
            height: h as u64 + 1,
            time_ms: 1_700_000_000_000 + h as u64 * 1000,
            txs,
            tree_root: frontier.root(),
            rejected: Vec::new(),
            accounts: Vec::new(),
        });
    }
    blocks
}

/// Scans a synthetic chain with one wallet on the current thread; returns one JSON object.
pub fn sync_rate(opts: &SyncOptions, rounds: usize) -> anyhow::Result<serde_json::Value> {
    let seed = WalletSeed([9; 32]);
    let me = Wallet::new(&seed).address();
    let chain = synthetic_chain(opts, &me);
    let outputs = (opts.blocks * opts.txs_per_block * 2) as f64;
    let mut rates = Vec::new();
    for _ in 0..rounds.max(1) {
        let mut w = Wallet::new(&seed);
        let start = Instant::now();
        for batch in chain.chunks(500) {
            w.scan_blocks(batch).context("scan")?;
        }
        let secs = start.elapsed().as_secs_f64();
        ensure!(
            w.balance(AssetId(840)) == 1,
            "the wallet's note was not found"
        );
        rates.push(outputs / secs);
    }
    Ok(json!({
        "bench": "wallet_sync",
        "blocks": opts.blocks,
        "txs_per_block": opts.txs_per_block,
        "outputs": outputs as u64,
        "outputs_per_second_median": crate::median(&mut rates),
        "threads": rayon::current_num_threads(),
    }))
}

trait SeedCompat {
    fn seed_from_u64_compat(s: u64) -> Self;
}

impl SeedCompat for rand_chacha::ChaCha20Rng {
    fn seed_from_u64_compat(s: u64) -> Self {
        rand_core::SeedableRng::seed_from_u64(s)
    }
}

/// Starts four validators in this process, funds a wallet, then times `sends` payments end to
/// end: build, prove, and submit until a checked commit certificate comes back.
pub fn send_latency(sends: usize) -> anyhow::Result<serde_json::Value> {
    use shoji_client::Client;
    use shoji_primitives::note::AssetId;
    use std::collections::{BTreeMap, BTreeSet};
    let mut rng = rand_core::OsRng;
    let prover = shoji_prover::Prover::dev().context("development parameters")?;
    let verifier = shoji_verifier::Verifier::new(&prover.proving_key().vk);
    let issuer = ed25519_dalek::SigningKey::generate(&mut rng);
    let auditor = AuditSecretKey::random(&mut rng).public_key();
    let usd = AssetId(840);
    let issuers = BTreeMap::from([(issuer.verifying_key().to_bytes(), BTreeSet::from([usd]))]);
    let config = shoji_ledger::LedgerConfig {
        anchor_window_blocks: 100,
        auditor,
        issuers: issuers.clone(),
        governance: Default::default(),
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let net = {
        let _guard = runtime.enter();
        shoji_node::devnet::start(4, config, std::sync::Arc::new(verifier), dir.path())?
    };
    let network = net.client_network(auditor, issuers);
    let client = Client::connect(&network, None)?;
    let mut wallet = Wallet::new(&WalletSeed::random(&mut rng));
    wallet.set_network(network.network_id);
    let bob = Wallet::new(&WalletSeed::random(&mut rng)).address();
    // The clients' own sync loop: certified blocks only.
    let sync = |w: &mut Wallet| -> anyhow::Result<()> {
        shoji_cli::sync_certified(&client, w.height(), "syncing", true, |blocks, _, _| {
            w.scan_blocks(blocks)?;
            Ok(String::new())
        })
        .map_err(|f| f.error)?;
        Ok(())
    };
    let tip = client.tree_state()?;
    let mint = wallet
        .mint(
            wallet.address(),
            usd,
            Amount(1_000_000),
            Memo::empty(),
            tip.anchor,
            auditor,
            issuer.verifying_key().to_bytes(),
            u64::MAX,
            &mut rng,
        )?
        .prove(&prover, &mut rng)?
        .sign_mint(&issuer)?;
    client.submit(&mint)?;
    sync(&mut wallet)?;
    let (mut total, mut prove, mut finality) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sends.max(1) {
        let t0 = Instant::now();
        let unproven = wallet.pay(
            bob,
            usd,
            Amount(1),
            Memo::empty(),
            auditor,
            u64::MAX,
            &mut rng,
        )?;
        let t1 = Instant::now();
        let tx = unproven.prove(&prover, &mut rng)?.into_transaction()?;
        let t2 = Instant::now();
        client.submit(&tx)?;
        let t3 = Instant::now();
        total.push((t3 - t0).as_secs_f64() * 1e3);
        prove.push((t2 - t1).as_secs_f64() * 1e3);
        finality.push((t3 - t2).as_secs_f64() * 1e3);
        sync(&mut wallet)?;
    }
    drop(client);
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(json!({
        "bench": "wallet_send",
        "sends": sends.max(1),
        "send_ms_median": crate::median(&mut total),
        "prove_ms_median": crate::median(&mut prove),
        "finality_ms_median": crate::median(&mut finality),
        "validators": 4,
        "threads": rayon::current_num_threads(),
    }))
}
