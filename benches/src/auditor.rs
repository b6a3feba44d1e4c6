//! The auditor's records database at scale: how fast a scan stores what it decrypts, and how
//! long report queries take over a million records, on SQLite and PostgreSQL.

use anyhow::Context;
use serde_json::json;
use shoji_auditor::records::{Query, Records};
use shoji_auditor::{AuditEntry, Auditor};
use shoji_primitives::audit::{
    encrypt, AuditEphemeral, AuditPlaintext, AuditRecord, AuditSecretKey,
};
use shoji_primitives::encoding::fr_to_bytes;
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{TxId, TxKind};
use shoji_primitives::Fr;
use std::time::Instant;

/// What to measure.
pub struct AuditorOptions {
    /// Records to store.
    pub records: u64,
    /// Designated records per block.
    pub per_block: u64,
    /// Records appended per database transaction (a scan appends once per batch of blocks).
    pub batch: usize,
    /// A PostgreSQL database whose `records` and `meta` tables may be dropped (none: SQLite
    /// only).
    pub postgres: Option<String>,
}

/// Distinct participants in the synthetic records.
const PARTICIPANTS: u64 = 16;

/// Distinct (plaintext, record) pairs, reused across the records (encrypting a million would
/// take minutes and measure the encryption, not the database).
const POOL: usize = 256;

/// Block time of height 1 (Unix ms), one block a second after it.
const T0: u64 = 1_767_225_600_000;

fn pool(key: &AuditSecretKey) -> Vec<(AuditPlaintext, AuditRecord)> {
    let mut rng = rand_core::OsRng;
    (0..POOL as u64)
        .map(|i| {
            let plaintext = AuditPlaintext {
                sender: Fr::from(i % PARTICIPANTS + 1),
                receivers: [
                    Fr::from((i + 1) % PARTICIPANTS + 1),
                    Fr::from(i % PARTICIPANTS + 1),
                ],
                values: [Amount(1000 + i), Amount(i)],
                asset: AssetId(if i % 5 == 0 { 978 } else { 840 }),
            };
            let record = encrypt(
                &key.public_key(),
                &plaintext,
                &AuditEphemeral::random(&mut rng),
            );
            (plaintext, record)
        })
        .collect()
}

fn entry(pool: &[(AuditPlaintext, AuditRecord)], per_block: u64, i: u64) -> AuditEntry {
    let (plaintext, record) = pool[(i % POOL as u64) as usize];
    let height = i / per_block + 1;
    let mut txid = [0u8; 32];
    txid[..8].copy_from_slice(&i.to_le_bytes());
    txid[8..16].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    AuditEntry {
        txid: TxId(txid),
        height,
        time_ms: T0 + (height - 1) * 1000,
        kind: TxKind::Transfer,
        public_value: Amount(0),
        plaintext,
        record,
    }
}

/// The median of `runs` timings of `f`, in milliseconds, and its last result.
fn median_ms<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f()?);
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let out = last.context("no run")?;
    Ok((times[times.len() / 2], out))
}

/// Designated records a scan decrypts per second (`Auditor::scan_next` over compact blocks of
/// 100 transactions, every one designated to the key), on `threads` threads.
fn scan_rate(
    key: &AuditSecretKey,
    pool: &[(AuditPlaintext, AuditRecord)],
    threads: usize,
) -> anyhow::Result<f64> {
    let me = shoji_primitives::keys::SpendingKeys::from_seed(&shoji_primitives::keys::WalletSeed(
        [3; 32],
    ))
    .address();
    let opts = crate::wallet::SyncOptions {
        blocks: 20,
        txs_per_block: 100,
    };
    let mut chain = crate::wallet::synthetic_chain(&opts, &me);
    let mut n = 0usize;
    for tx in chain.iter_mut().flat_map(|b| b.txs.iter_mut()) {
        tx.auditor = key.public_key();
        tx.audit = pool[n % pool.len()].1;
        n += 1;
    }
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut rates = Vec::new();
    for _ in 0..3 {
        let mut auditor = Auditor::new(key.clone());
        let start = Instant::now();
        rayon.install(|| -> anyhow::Result<()> {
            for b in &chain {
                auditor.scan_next(b)?;
            }
            Ok(())
        })?;
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(auditor.entries().len() == n, "not every record decrypted");
        rates.push(n as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[1])
}

fn measure(
    location: &str,
    backend: &str,
    opts: &AuditorOptions,
    key: &AuditSecretKey,
    pool: &[(AuditPlaintext, AuditRecord)],
) -> anyhow::Result<serde_json::Value> {
    let auditor = Auditor::new(key.clone());
    let mut db =
        Records::open(location, &key.public_key(), None).context("opening the database")?;
    let start = Instant::now();
    let mut i = 0u64;
    while i < opts.records {
        let end = (i + opts.batch as u64).min(opts.records);
        let batch: Vec<AuditEntry> = (i..end).map(|j| entry(pool, opts.per_block, j)).collect();
        let height = batch.last().map_or(0, |e| e.height);
        db.append(&batch, &[], height)?;
        i = end;
    }
    let append_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(db.count()? == opts.records, "not every record was stored");
    let last_height = (opts.records - 1) / opts.per_block + 1;
    let report = |q: Query, db: &mut Records| -> anyhow::Result<usize> {
        let entries = db.query(&q)?;
        Ok(auditor.payments(&entries).len())
    };
    // The last hour of blocks (one a second), by height; the same hour for one participant,
    // by time; and one asset.
    let hour = 3600u64.min(last_height);
    let recent = Query {
        from: last_height - hour + 1,
        to: last_height,
        ..Default::default()
    };
    let (hour_ms, hour_rows) = median_ms(5, || report(recent.clone(), &mut db))?;
    let participant = Query {
        from: 1,
        to: last_height,
        participant: Some(fr_to_bytes(&Fr::from(3u64))),
        since_ms: Some(T0 + (last_height - hour) * 1000),
        ..Default::default()
    };
    let (participant_ms, participant_rows) = median_ms(5, || report(participant.clone(), &mut db))?;
    let asset = Query {
        from: last_height - hour + 1,
        to: last_height,
        asset: Some(AssetId(978)),
        ..Default::default()
    };
    let (asset_ms, asset_rows) = median_ms(5, || report(asset.clone(), &mut db))?;
    let probe = entry(pool, opts.per_block, opts.records / 2);
    let (show_ms, found) = median_ms(20, || Ok(db.entry(&probe.txid, key)?.is_some()))?;
    anyhow::ensure!(found, "the probed record was not found");
    Ok(json!({
        "bench": "auditor",
        "database": backend,
        "records": opts.records,
        "records_per_block": opts.per_block,
        "batch": opts.batch,
        "append_records_per_s": (opts.records as f64 / append_s).round(),
        "append_s": (append_s * 10.0).round() / 10.0,
        "report_last_hour_ms": (hour_ms * 10.0).round() / 10.0,
        "report_last_hour_payments": hour_rows,
        "report_participant_last_hour_ms": (participant_ms * 10.0).round() / 10.0,
        "report_participant_last_hour_payments": participant_rows,
        "report_asset_last_hour_ms": (asset_ms * 10.0).round() / 10.0,
        "report_asset_last_hour_payments": asset_rows,
        "show_one_ms": (show_ms * 100.0).round() / 100.0,
    }))
}

/// Runs the measurement on SQLite (a temporary file) and, when given, PostgreSQL: one JSON
/// line each, after one line with the decryption rate.
pub fn run(opts: &AuditorOptions) -> anyhow::Result<Vec<serde_json::Value>> {
    let key = AuditSecretKey::random(&mut rand_core::OsRng);
    let pool = pool(&key);
    let mut out = vec![json!({
        "bench": "auditor_scan",
        "scan_records_per_s_1t": scan_rate(&key, &pool, 1)?.round(),
        "scan_records_per_s_2t": scan_rate(&key, &pool, 2)?.round(),
    })];
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("auditor.db");
    out.push(measure(
        &path.display().to_string(),
        "sqlite",
        opts,
        &key,
        &pool,
    )?);
    if let Some(url) = &opts.postgres {
        let mut admin =
            postgres::Client::connect(url, postgres::NoTls).context("connecting to PostgreSQL")?;
        admin.batch_execute("DROP TABLE IF EXISTS records; DROP TABLE IF EXISTS account_records; DROP TABLE IF EXISTS meta;")?;
        drop(admin);
        out.push(measure(url, "postgresql", opts, &key, &pool)?);
    }
    Ok(out)
}
