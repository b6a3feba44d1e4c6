//! `shoji-bench history`: what a state snapshot costs at a given size — producing it from a
//! validator's store, checking it against its certified root, installing it into an empty store
//! and restoring the ledger from it (a joining validator's work besides the transfer).
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

/// Measures each size in `opts`; returns one JSON object per size.
pub fn run(opts: &HistoryOptions) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
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
        out.push(serde_json::json!({
            "bench": "history",
            "nullifiers": n,
            "height": cert.height,
            "snapshot_bytes": bytes,
            "chunks": chunks,
            "produce_s": produce_s,
            "verify_s": verify_s,
            "install_s": install_s,
            "restore_s": restore_s,
            "join_without_transfer_s": verify_s + install_s + restore_s,
        }));
    }
    Ok(out)
}
