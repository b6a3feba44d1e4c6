//! `shoji-bench history`: what a state snapshot costs at a given size — producing it from a
//! validator's store, checking it against its certified root, installing it into an empty store
//! and restoring the ledger from it (a joining validator's work besides the transfer); and the
//! history archive's throughput, writing blocks as a validator does and reading compact blocks
//! back as a client does.
//!
//! Beside the join, a replay measured end to end: four validators commit a chain of real
//! shielded transactions (cached mints, each with a Groth16 proof and two nullifiers, as a
//! transfer has), then a fourth starts on an empty directory with no snapshot to fetch and
//! replays the chain from genesis by state transfer. Its rate, per nullifier, gives the replay
//! time at each snapshot's height.
//!
//! The state is synthetic but whole: `n` nullifiers (random, folded into the nullifier chain in
//! order), the genesis tree and policy, no accounts. It is installed into a store (which is also
//! what a joining validator does), and that store then produces the snapshot measured.

use shoji_consensus::{BlockHash, CheckpointCertificate};
use shoji_ledger::snapshot::{SnapshotAssembler, VerifiedSnapshot, DEFAULT_CHUNK_BYTES};
use shoji_ledger::{chain_nullifier, LedgerHead, LedgerSnapshot};
use std::collections::BTreeSet;
use std::time::Instant;

/// What to measure.
pub struct HistoryOptions {
    /// Nullifier counts, one measurement each.
    pub nullifiers: Vec<u64>,
    /// Blocks written to the archive and read back (0: none).
    pub archive_blocks: u64,
    /// Transactions per archived block.
    pub archive_block_txs: usize,
    /// The archive's URL (`None`: a fresh local directory).
    pub archive: Option<String>,
    /// Shielded transactions in the chain a late validator replays (0: no replay).
    pub replay_txs: usize,
}

/// Bytes of one archived transaction: about a shielded transfer's.
const ARCHIVED_TX_BYTES: usize = 2000;

/// Heights handed to [`shoji_client::archive::Archive::put_heights`] at once, as the validator's
/// archive task does.
const ARCHIVE_BATCH: u64 = 64;

/// Writes `opts.archive_blocks` blocks of `opts.archive_block_txs` transactions to the archive,
/// with their commit certificates and compact forms (the compact form is the size of the
/// transactions' ids: what a block of shielded transfers' compact form is not, but the archive
/// does not look inside), then reads the compact blocks back.
fn archive_throughput(opts: &HistoryOptions) -> anyhow::Result<serde_json::Value> {
    let tmp = tempfile::tempdir()?;
    let url = match &opts.archive {
        Some(u) => format!("{}/bench-{}", u.trim_end_matches('/'), std::process::id()),
        None => url::Url::from_directory_path(tmp.path().join("archive"))
            .map_err(|()| anyhow::anyhow!("no archive URL for the temporary directory"))?
            .to_string(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let archive = shoji_client::archive::Archive::open(&url)?;
    let block = |h: u64| {
        let txs: Vec<Vec<u8>> = (0..opts.archive_block_txs)
            .map(|i| {
                let seed = blake3::hash(&[h.to_le_bytes(), (i as u64).to_le_bytes()].concat());
                let mut tx = vec![0u8; ARCHIVED_TX_BYTES];
                blake3::Hasher::new_keyed(seed.as_bytes())
                    .finalize_xof()
                    .fill(&mut tx);
                tx
            })
            .collect();
        let b = shoji_consensus::Block {
            height: h,
            prev_hash: BlockHash([0; 32]),
            view: 0,
            proposer: shoji_consensus::ReplicaId(0),
            time_ms: h,
            transactions: txs,
        };
        // Three signatures, as four validators' certificates carry (not checked here).
        let cert = shoji_consensus::CommitCertificate {
            view: 0,
            signatures: (0..3)
                .map(|i| {
                    (
                        shoji_consensus::ReplicaId(i),
                        shoji_consensus::ed25519_dalek::Signature::from_bytes(&[i as u8; 64]),
                    )
                })
                .collect(),
        };
        let compact: Vec<u8> = b.tx_hashes().iter().flat_map(|t| t.0).collect();
        Ok::<_, anyhow::Error>((postcard::to_allocvec(&(b, cert))?, compact))
    };
    let (mut written_bytes, mut write_s) = (0u64, 0.0);
    let mut first = 1;
    while first <= opts.archive_blocks {
        let last = opts.archive_blocks.min(first + ARCHIVE_BATCH - 1);
        let batch = (first..=last)
            .map(|h| block(h).map(|(b, c)| (h, b, c)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        written_bytes += batch
            .iter()
            .map(|(_, b, c)| (b.len() + c.len()) as u64)
            .sum::<u64>();
        let t = Instant::now();
        runtime
            .block_on(archive.put_heights(batch))
            .map_err(|(h, e)| anyhow::anyhow!("height {h}: {e}"))?;
        runtime.block_on(archive.put_head(last))?;
        write_s += secs(t);
        first = last + 1;
    }
    let t = Instant::now();
    let mut read = 0u64;
    let mut first = 1;
    while first <= opts.archive_blocks {
        let last = opts.archive_blocks.min(first + ARCHIVE_BATCH - 1);
        for o in runtime.block_on(archive.objects("compact", first..=last))? {
            read += o
                .ok_or_else(|| anyhow::anyhow!("a compact block is missing"))?
                .len() as u64;
        }
        first = last + 1;
    }
    let read_s = secs(t);
    let n = opts.archive_blocks as f64;
    Ok(serde_json::json!({
        "bench": "history_archive",
        "archive": if opts.archive.is_some() { url.as_str() } else { "a local directory" },
        "blocks": opts.archive_blocks,
        "block_txs": opts.archive_block_txs,
        "written_mib": written_bytes as f64 / (1 << 20) as f64,
        "write_blocks_per_s": n / write_s,
        "write_mib_per_s": written_bytes as f64 / (1 << 20) as f64 / write_s,
        "read_compact_blocks_per_s": n / read_s,
        "read_mib": read as f64 / (1 << 20) as f64,
    }))
}

/// A replay measured end to end: validators 0–2 of a development network commit `n` cached
/// mints, submitted by 128 clients as the cluster load is; validator 3 then starts on an empty
/// directory, finds no snapshot (the network takes none), and replays every block from genesis
/// by state transfer — checking each certificate, verifying each proof, executing and storing
/// each block. Timed from its start until it holds the others' height, whose state root it must
/// then report.
/// Returns the figures and the replay's seconds.
fn replay(n: usize) -> anyhow::Result<(serde_json::Value, f64)> {
    use anyhow::Context as _;
    let vk = shoji_params::default_dir().join(shoji_params::vk_file());
    let verifier = std::sync::Arc::new(
        shoji_verifier::Verifier::from_file(&vk)
            .with_context(|| format!("loading the verifying key {}", vk.display()))?,
    );
    let auditor = shoji_client::network::insecure_devnet_auditor().public_key();
    // The load's anchor is the empty tree's root: keep it valid, as `shoji-bench cluster` does.
    let ledger = shoji_node::devnet::dev_ledger(auditor, 100_000);
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut net, socket) = {
        let _guard = runtime.enter();
        shoji_node::devnet::start_without_snapshotting(
            4,
            ledger,
            verifier.clone(),
            dir.path(),
            3,
            &shoji_node::devnet::History::default(),
        )?
    };
    let network = net.client_network(auditor, shoji_node::devnet::dev_issuers());
    let status = |id: u16| {
        let mut one = network.clone();
        one.addrs.retain(|(i, _)| i.0 == id);
        shoji_client::Client::connect(&one, None)
            .ok()?
            .status()
            .ok()
    };
    let mints = crate::cluster::mints(n, net.network_id)?;
    let txs: Vec<_> = mints
        .iter()
        .take(n)
        .map(crate::cluster::Encoded::shielded)
        .collect();
    let mut running = network.clone();
    running.addrs.retain(|(i, _)| i.0 != 3);
    eprintln!("replay: committing {n} mints on validators 0-2 ...");
    crate::cluster::phase(&running, &txs, 128, None, None)?;
    let head = status(0).ok_or_else(|| anyhow::anyhow!("validator 0 does not answer"))?;

    eprintln!(
        "replay: validator 3 replays {} blocks from genesis ...",
        head.height
    );
    let t = Instant::now();
    let synced = net.start_late(3, socket, dir.path(), verifier)?;
    anyhow::ensure!(
        matches!(synced, shoji_node::snapshots::Synced::NoSnapshot),
        "validator 3 did not start from genesis: {synced:?}"
    );
    let replayed = loop {
        if let Some(s) = status(3).filter(|s| s.height >= head.height) {
            break s;
        }
        anyhow::ensure!(
            t.elapsed() < std::time::Duration::from_secs(1_800),
            "validator 3 did not catch up within 30 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let replay_s = secs(t);
    let head = status(0).ok_or_else(|| anyhow::anyhow!("validator 0 does not answer"))?;
    anyhow::ensure!(
        replayed.height == head.height && replayed.state_root == head.state_root,
        "the replay reached another state"
    );
    drop(net);
    drop(runtime);
    let figures = serde_json::json!({
        "bench": "history_replay",
        "transactions": n,
        "nullifiers": 2 * n,
        "blocks": head.height,
        "replay_s": replay_s,
        "replay_tx_per_s": n as f64 / replay_s,
    });
    Ok((figures, replay_s))
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// A verified snapshot of a state with `n` nullifiers at height `n / 2` (two per transfer),
/// with a certificate over it (unsigned: the signatures are the client's to check).
fn synthetic(n: u64) -> (VerifiedSnapshot, CheckpointCertificate) {
    let log: Vec<[u8; 32]> = (0..n)
        .map(|i| blake3::derive_key("shoji-bench nullifier", &i.to_le_bytes()))
        .collect();
    let mut head = LedgerHead::genesis();
    head.height = (n / 2).max(8).div_ceil(8) * 8;
    head.time_ms = 1;
    head.nullifier_chain = log.iter().fold([0; 32], |c, nf| chain_nullifier(&c, nf));
    let root = head.frontier.root();
    let opening = head.opening_with(&root);
    let cert = CheckpointCertificate {
        height: head.height,
        block_hash: BlockHash([7; 32]),
        state_root: opening.root(),
        signatures: Vec::new(),
    };
    let nullifiers: BTreeSet<[u8; 32]> = log.iter().copied().collect();
    let snapshot = VerifiedSnapshot {
        state: LedgerSnapshot {
            head,
            nullifiers,
            accounts: Default::default(),
        },
        nullifier_log: log,
        opening,
    };
    (snapshot, cert)
}

fn dir_bytes(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        total += e?.metadata()?.len();
    }
    Ok(total)
}

/// Serving validators in [`transfer_over_quic`].
const SERVERS: u8 = 3;

/// Seconds to fetch the `chunks` chunk files in `files` over QUIC on loopback, as a joining
/// validator does: [`SERVERS`] validator endpoints (the validators' own QUIC, TLS pinned to
/// their keys, default frame limits) each answer a chunk request by reading the chunk's file on
/// a blocking thread, as the validator's read path does; the joiner asks for chunk `i` from
/// server `i mod 3`, one request at a time, and checks each chunk's hash against the manifest.
fn transfer_over_quic(
    files: &std::path::Path,
    chunks: usize,
    manifest: &shoji_ledger::snapshot::SnapshotManifest,
    cert: &CheckpointCertificate,
) -> anyhow::Result<f64> {
    use ed25519_dalek::SigningKey;
    use shoji_net::{ClientConnection, Identity, NetConfig, ReplicaId, ValidatorEndpoint};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let keys: Vec<SigningKey> = (0..SERVERS)
        .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
        .collect();
    let set: std::collections::BTreeMap<ReplicaId, _> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (i as ReplicaId, k.verifying_key()))
        .collect();
    runtime.block_on(async {
        let mut conns = Vec::new();
        let mut servers = Vec::new();
        for k in &keys {
            let ep = std::sync::Arc::new(ValidatorEndpoint::bind(
                Identity::new(k)?,
                "127.0.0.1:0".parse()?,
                set.clone(),
                Default::default(),
                NetConfig::default(),
            )?);
            let addr = ep.local_addr()?;
            let (serving, dir) = (ep.clone(), files.to_path_buf());
            tokio::spawn(async move {
                while let Some(req) = serving.next_request().await {
                    let Ok(i) = <[u8; 4]>::try_from(req.body()).map(u32::from_le_bytes) else {
                        req.respond(Vec::new());
                        continue;
                    };
                    let path = dir.join(i.to_string());
                    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                    req.respond(bytes);
                }
            });
            conns.push(ClientConnection::connect(addr, &k.verifying_key()).await?);
            servers.push(ep);
        }
        let mut assembler = SnapshotAssembler::new(manifest.clone(), &cert.state_root)?;
        let t = Instant::now();
        for i in 0..chunks {
            let bytes = conns[i % conns.len()]
                .request(&(i as u32).to_le_bytes())
                .await?;
            assembler.accept(i, &bytes)?;
        }
        let transfer_s = secs(t);
        drop(servers);
        Ok(transfer_s)
    })
}

/// Measures each size in `opts`; returns one JSON object per size.
pub fn run(opts: &HistoryOptions) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    if opts.archive_blocks > 0 {
        out.push(archive_throughput(opts)?);
    }
    // Seconds of replay per nullifier, measured.
    let replay_per_nullifier = match opts.replay_txs {
        0 => None,
        n => {
            let (figures, replay_s) = replay(n)?;
            out.push(figures);
            Some(replay_s / (2 * n) as f64)
        }
    };
    for &n in &opts.nullifiers {
        let tmp = tempfile::tempdir()?;
        let (snapshot, cert) = synthetic(n);
        let source = shoji_store::Store::open(tmp.path().join("source.redb"))?;
        source.install_snapshot(&snapshot, &cert)?;
        drop(snapshot);

        // Produce: from a frozen view of the store, into chunk files.
        let files = tmp.path().join("snapshot");
        std::fs::create_dir_all(&files)?;
        let t = Instant::now();
        let manifest = source
            .state_view()?
            .write_snapshot(DEFAULT_CHUNK_BYTES, |i, b| {
                std::fs::write(files.join(i.to_string()), b)
            })?;
        let produce_s = secs(t);
        let bytes = dir_bytes(&files)?;
        let chunks = manifest.chunks.len();

        // Transfer: every chunk over QUIC from three serving validators, chunk i from the
        // (i mod 3)th, one at a time as a joining validator fetches them, each checked against
        // its hash in the manifest on arrival.
        let transfer_s = transfer_over_quic(&files, chunks, &manifest, &cert)?;

        // Check: every chunk on arrival, the whole against the certified root.
        let t = Instant::now();
        let mut assembler = SnapshotAssembler::new(manifest, &cert.state_root)?;
        for i in 0..chunks {
            assembler.accept(i, &std::fs::read(files.join(i.to_string()))?)?;
        }
        let verified = assembler.finish()?;
        let verify_s = secs(t);

        // Install into an empty store, and restore the ledger from it as a validator starts.
        let joined = shoji_store::Store::open(tmp.path().join("joined.redb"))?;
        let t = Instant::now();
        joined.install_snapshot(&verified, &cert)?;
        let install_s = secs(t);
        drop(verified);
        let t = Instant::now();
        let recovered = joined
            .load()?
            .ok_or_else(|| anyhow::anyhow!("the joined store is empty"))?;
        let config = shoji_ledger::LedgerConfig {
            anchor_window_blocks: 100,
            auditor: shoji_primitives::audit::AuditSecretKey::random(&mut rand_core::OsRng)
                .public_key(),
            issuers: Default::default(),
            governance: Default::default(),
            network_id: [0; 32],
            validators: Default::default(),
            checkpoint_interval: 8,
            window_size: 16,
            account_auditor: None,
        };
        let ledger: shoji_ledger::Ledger = recovered.restore_ledger(config)?;
        let restore_s = secs(t);
        anyhow::ensure!(
            ledger.state_root() == cert.state_root,
            "restored another state"
        );
        let join_s = transfer_s + verify_s + install_s + restore_s;
        // The replay to the same height at the measured rate: a floor, since a larger set and
        // store cost each block more than the short chain measured.
        let replay_s = replay_per_nullifier.map(|per| per * n as f64);
        out.push(serde_json::json!({
            "bench": "history",
            "nullifiers": n,
            "height": cert.height,
            "snapshot_bytes": bytes,
            "chunks": chunks,
            "produce_s": produce_s,
            "transfer_s": transfer_s,
            "transfer_mib_per_s": bytes as f64 / (1 << 20) as f64 / transfer_s,
            "verify_s": verify_s,
            "install_s": install_s,
            "restore_s": restore_s,
            "join_without_transfer_s": verify_s + install_s + restore_s,
            "join_s": join_s,
            "replay_at_measured_rate_s": replay_s,
            "join_speedup": replay_s.map(|r| r / join_s),
        }));
    }
    Ok(out)
}
