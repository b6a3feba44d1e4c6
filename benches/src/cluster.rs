//! Cluster measurements: four validators (`shoji-node devnet`, its own process) and a load
//! generator (this process) submitting real shielded transactions with pre-generated proofs over
//! many client connections.
//!
//! The transactions are mints to random addresses under the development issuer and auditor,
//! anchored at the empty tree: valid on any fresh development network for its first blocks, so
//! one set, generated once (proving is the slow part) and cached beside the parameters, serves
//! every run. Each phase starts a fresh network.
//!
//! Consensus capacity (`tps_ordering`) is measured on a network in the benchmark mode
//! `shoji-node devnet --ordering-only`: the load is small opaque payloads that the validators
//! order, sign, certify and store like transactions but do not execute, sent over eight
//! connections with many requests in flight on each.

use anyhow::{bail, ensure, Context};
use serde_json::json;
use shoji_client::network::{insecure_devnet_auditor, insecure_devnet_issuer};
use shoji_client::{Client, Network};
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tree::Frontier;
use shoji_primitives::tx::{Transaction, MINT_BYTES};
use shoji_prover::{Prover, TransferBuilder};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to load the cluster.
pub struct ClusterOptions {
    /// Transactions per phase.
    pub txs: usize,
    /// Concurrent client connections.
    pub clients: usize,
    /// Opaque payloads for the ordering phase (0 skips it).
    pub ordering_payloads: usize,
    /// Ordering requests in flight at once.
    pub ordering_in_flight: usize,
}

fn cache_path() -> PathBuf {
    // Named for the parameters and the transaction format, since records are fixed-size.
    shoji_params::default_dir().join(format!(
        "bench-devnet-mints-{}-v{}.bin",
        &shoji_params::DEV_VK_HASH[..16],
        shoji_primitives::tx::TX_VERSION
    ))
}

/// At least `n` mints for a fresh development network, from the cache, proving (and caching)
/// any that are missing.
pub fn mints(n: usize) -> anyhow::Result<Vec<Transaction>> {
    let path = cache_path();
    let mut raw = std::fs::read(&path).unwrap_or_default();
    raw.truncate(raw.len() - raw.len() % MINT_BYTES);
    let have = raw.len() / MINT_BYTES;
    if have < n {
        eprintln!(
            "proving {} mints for the load (once; cached in {}) ...",
            n - have,
            path.display()
        );
        let prover = Prover::dev().context("development parameters")?;
        let issuer = insecure_devnet_issuer();
        let auditor = insecure_devnet_auditor().public_key();
        let mut rng = rand_core::OsRng;
        let keys = SpendingKeys::from_seed(&WalletSeed::random(&mut rng));
        let anchor = Frontier::new().root();
        let start = Instant::now();
        for i in have..n {
            let to = SpendingKeys::from_seed(&WalletSeed::random(&mut rng)).address();
            let mut b = TransferBuilder::mint(
                &keys,
                AssetId(840),
                Amount(1 + i as u64),
                anchor,
                auditor,
                issuer.verifying_key().to_bytes(),
            );
            b.pay(to, Amount(1 + i as u64), Memo::empty())?;
            let tx = b
                .build(&mut rng)?
                .prove(&prover, &mut rng)?
                .sign_mint(&issuer)?;
            raw.extend_from_slice(&tx.to_bytes());
            if (i + 1) % 50 == 0 || i + 1 == n {
                shoji_client::sealed::write_atomic(&path, &raw)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "  {}/{n} ({:.1} s per proof)",
                    i + 1,
                    start.elapsed().as_secs_f64() / (i + 1 - have) as f64
                );
            }
        }
    }
    raw.chunks(MINT_BYTES)
        .take(n)
        .map(|c| Transaction::from_bytes(c).context("cached mint"))
        .collect()
}

struct Devnet {
    child: Child,
    _dir: tempfile::TempDir,
    network: Network,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable directory")?;
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        bail!(
            "{} is missing: build it beside shoji-bench (cargo build --release -p shoji-node)",
            path.display()
        );
    }
    Ok(path)
}

fn log_wanted() -> bool {
    std::env::var_os("SHOJI_BENCH_NODE_LOG").is_some()
}

fn start_devnet(ordering_only: bool) -> anyhow::Result<Devnet> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(sibling_binary("shoji-node")?);
    // The cached mints are anchored at the empty tree: keep that root valid for the run.
    cmd.args(["devnet", "--anchor-window", "100000", "--dir"])
        .arg(dir.path());
    if ordering_only {
        cmd.arg("--ordering-only");
    }
    // SHOJI_BENCH_NODE_LOG=FILE keeps the validators' log for a look afterwards.
    let log = match std::env::var_os("SHOJI_BENCH_NODE_LOG") {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", PathBuf::from(&path).display()))?,
        ),
        None => Stdio::null(),
    };
    // SHOJI_BENCH_NODE_LOG_LEVEL (a RUST_LOG filter, `info` by default) sets how much.
    let level = match log_wanted() {
        true => std::env::var("SHOJI_BENCH_NODE_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        false => "warn".into(),
    };
    let child = cmd
        .env("RUST_LOG", level)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting shoji-node devnet")?;
    let file = dir.path().join("devnet.json");
    let start = Instant::now();
    while !file.exists() {
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "the devnet did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let network = Network::load(&file)?;
    Ok(Devnet {
        child,
        _dir: dir,
        network,
    })
}

/// Per-transaction commit latencies (ms) and the wall time of the whole phase. With `rate`, the
/// clients together submit at most that many transactions per second.
fn phase(
    network: &Network,
    txs: &[Transaction],
    clients: usize,
    rate: Option<f64>,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let clients = clients.clamp(1, txs.len().max(1));
    // Every client connects before the clock starts: QUIC handshakes are not the load.
    let ready = std::sync::Barrier::new(clients + 1);
    let (results, elapsed) = std::thread::scope(|s| {
        let ready = &ready;
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let node = (c % network.addrs.len()) as u16;
                    let client = Client::connect(network, Some(node));
                    ready.wait();
                    let start = Instant::now();
                    let client = client?;
                    let mut lat = Vec::new();
                    for (k, tx) in txs.iter().enumerate().skip(c).step_by(clients) {
                        if let Some(rate) = rate {
                            let due = start + Duration::from_secs_f64(k as f64 / rate);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        let t = Instant::now();
                        client.submit(tx)?;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(lat)
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let results: Vec<anyhow::Result<Vec<f64>>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect();
        (results, start.elapsed().as_secs_f64())
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok((all, elapsed))
}

/// Orders `count` distinct 64-byte opaque payloads on a fresh ordering-only network with
/// `in_flight` requests outstanding, and returns payloads committed per second (every answer
/// must be a commit).
fn ordering_phase(count: usize, in_flight: usize) -> anyhow::Result<f64> {
    use shoji_client::api::{Request, Response};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let net = start_devnet(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut conns = Vec::new();
        for _ in 0..2 {
            for (id, addr) in &net.network.addrs {
                let key = net.network.validators.key(*id).context("validator key")?;
                conns.push(Arc::new(
                    shoji_net::ClientConnection::connect(*addr, key).await?,
                ));
            }
        }
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..in_flight.max(1) {
            let conn = conns[t % conns.len()].clone();
            let next = next.clone();
            tasks.spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= count {
                        return Ok::<(), anyhow::Error>(());
                    }
                    // Not a transaction's version byte: an opaque payload.
                    let mut payload = vec![0xAA; 64];
                    payload[8..16].copy_from_slice(&(k as u64).to_le_bytes());
                    let answer = conn
                        .request(&Request::Submit { tx: payload }.encode())
                        .await?;
                    match Response::decode(&answer) {
                        Ok(Response::Committed { .. }) => {}
                        other => bail!("payload {k}: expected a commit, got {other:?}"),
                    }
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.context("a load task panicked")??;
        }
        Ok(count as f64 / start.elapsed().as_secs_f64())
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the shielded phases: all transactions as fast as the clients can submit them (the
/// throughput), then again on a fresh network at half that rate (the latency).
pub fn run(opts: &ClusterOptions) -> anyhow::Result<serde_json::Value> {
    let tps_ordering = match opts.ordering_payloads {
        0 => None,
        n => Some(ordering_phase(n, opts.ordering_in_flight)?),
    };
    let txs = mints(opts.txs)?;
    let net = start_devnet(false)?;
    let (_, elapsed) = phase(&net.network, &txs, opts.clients, None)?;
    drop(net);
    let tps = txs.len() as f64 / elapsed;
    let net = start_devnet(false)?;
    let (mut lat, _) = phase(&net.network, &txs, opts.clients, Some(tps / 2.0))?;
    drop(net);
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(json!({
        "bench": "cluster",
        "validators": 4,
        "transactions": txs.len(),
        "clients": opts.clients,
        "tps_shielded": tps,
        "half_load_tps": tps / 2.0,
        "commit_ms_p50": percentile(&lat, 0.5),
        "commit_ms_p99": percentile(&lat, 0.99),
        "tps_ordering": tps_ordering,
        "ordering_payloads": opts.ordering_payloads,
        "ordering_in_flight": opts.ordering_in_flight,
    }))
}

/// Where the mint cache lives (for the help text).
pub fn cache_location() -> String {
    cache_path().display().to_string()
}
