//! Cluster measurements: four validators (`shoji-node devnet`, its own process) and a load
//! generator (this process) submitting real shielded transactions with pre-generated proofs over
//! many client connections.
//!
//! The measured transactions are shielded transfers (`--load transfers`, the default): each
//! spends one note that a setup mint paid to the load's own wallet, and pays it on to a random
//! address. Before each measured phase the setup mints are submitted one at a time, so they
//! commit in a known order and the tree is exactly the one the transfers were proved against
//! (setup is not measured). A transfer carries a proof and no signature; every validator
//! verifies it. `--load mints` measures mints to random addresses instead (a proof and the
//! issuer's Ed25519 signature each), the load of the figures recorded before transfers.
//!
//! Everything is anchored in development keys and a fresh development network, so one set,
//! generated once (proving is the slow part) and cached beside the parameters, serves every
//! run. Each phase starts a fresh network.
//!
//! Consensus capacity (`tps_ordering`) is measured on a network in the benchmark mode
//! `shoji-node devnet --ordering-only`: the load is small opaque payloads that the validators
//! order, sign, certify and store like transactions but do not execute, sent over eight
//! connections with many requests in flight on each.

use anyhow::{bail, ensure, Context};
use serde_json::json;
use shoji_client::network::{insecure_devnet_auditor, insecure_devnet_issuer};
use shoji_client::{Client, Network};
use shoji_primitives::account::AccountTx;
use shoji_primitives::encoding::hex_encode;
use shoji_primitives::encryption::{try_decrypt_note, Memo};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::{output_rho, Amount, AssetId, Note};
use shoji_primitives::tree::{Frontier, IncrementalWitness};
use shoji_primitives::tx::{Transaction, MINT_BYTES, TRANSFER_BYTES};
use shoji_prover::{Prover, SpendableNote, TransferBuilder};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the shielded phases submit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Transfers of notes minted to the load's wallet during setup: a proof each.
    Transfers,
    /// Mints to random addresses: a proof and the issuer's signature each.
    Mints,
    /// Confidential-account transfers, each from its own account (opened and funded during
    /// setup) to one receiving account: Bulletproofs and sigma proofs, verified in batches.
    Accounts,
}

impl Load {
    /// The name `--load` takes and the JSON line reports.
    pub fn name(self) -> &'static str {
        match self {
            Load::Transfers => "transfers",
            Load::Mints => "mints",
            Load::Accounts => "accounts",
        }
    }
}

/// How to load the cluster.
pub struct ClusterOptions {
    /// Transactions per phase.
    pub txs: usize,
    /// Their kind.
    pub load: Load,
    /// Concurrent client connections.
    pub clients: usize,
    /// Opaque payloads for the ordering phase (0 skips it).
    pub ordering_payloads: usize,
    /// Ordering requests in flight at once.
    pub ordering_in_flight: usize,
    /// Every validator behind a delaying relay (`shoji-node devnet --rtt-ms`), if set: the
    /// path of validators in different cities, on one machine.
    pub latency: shoji_cli::DistanceArgs,
}

fn cache_path(network: &[u8; 32]) -> PathBuf {
    // Named for the parameters, the transaction format (records are fixed-size) and the
    // network the transactions name.
    shoji_params::default_dir().join(format!(
        "bench-devnet-mints-{}-v{}-{}.bin",
        &shoji_params::DEV_VK_HASH[..16],
        shoji_primitives::tx::TX_VERSION,
        &hex_encode(network)[..16]
    ))
}

/// The transfer load for `n` transfers: its setup mints, then the transfers proven so far.
/// Named for `n` too, since every transfer is anchored at the tree of all `n` setup notes.
fn transfer_cache_path(n: usize, network: &[u8; 32]) -> PathBuf {
    shoji_params::default_dir().join(format!(
        "bench-devnet-transfers-{}-v{}-{}-{n}.bin",
        &shoji_params::DEV_VK_HASH[..16],
        shoji_primitives::tx::TX_VERSION,
        &hex_encode(network)[..16]
    ))
}

/// The seed of the wallet that receives the setup notes and spends them in the transfers.
const LOAD_WALLET_SEED: [u8; 32] = *b"shoji bench transfer load wallet";

/// The asset of every load transaction (the development issuer's USD).
const LOAD_ASSET: AssetId = AssetId(840);

/// Writes the cache after every `SAVE_EVERY` proofs, so an interrupted generation resumes.
const SAVE_EVERY: usize = 50;

/// Setup mints and `n` transfers for a fresh development network, from the cache, proving (and
/// caching) what is missing. Mint `k` pays two notes to the load wallet; committed in order,
/// they are leaves `2k` and `2k + 1`, and transfer `i` spends leaf `i` under the root of them all.
pub fn transfer_load(
    n: usize,
    network: [u8; 32],
) -> anyhow::Result<(Vec<Transaction>, Vec<Transaction>)> {
    let path = transfer_cache_path(n, &network);
    let mut raw = std::fs::read(&path).unwrap_or_default();
    let want_mints = n.div_ceil(2);
    let mint_count = (raw.len() / MINT_BYTES).min(want_mints);
    let mut mints: Vec<Transaction> = raw[..mint_count * MINT_BYTES]
        .chunks(MINT_BYTES)
        .map(|c| Transaction::from_bytes(c).context("cached setup mint"))
        .collect::<anyhow::Result<_>>()?;
    let mut transfers: Vec<Transaction> = Vec::new();
    if mint_count == want_mints {
        let rest = &raw[mint_count * MINT_BYTES..];
        transfers = rest[..rest.len() - rest.len() % TRANSFER_BYTES]
            .chunks(TRANSFER_BYTES)
            .take(n)
            .map(|c| Transaction::from_bytes(c).context("cached transfer"))
            .collect::<anyhow::Result<_>>()?;
    }
    raw.truncate(mint_count * MINT_BYTES + transfers.len() * TRANSFER_BYTES);
    if mints.len() == want_mints && transfers.len() == n {
        return Ok((mints, transfers));
    }

    let missing = want_mints - mints.len() + n - transfers.len();
    eprintln!(
        "proving {missing} transactions for the transfer load (once; cached in {}) ...",
        path.display()
    );
    let prover = Prover::dev().context("development parameters")?;
    let issuer = insecure_devnet_issuer();
    let auditor = insecure_devnet_auditor().public_key();
    let keys = SpendingKeys::from_seed(&WalletSeed(LOAD_WALLET_SEED));
    let mut rng = rand_core::OsRng;
    let start = Instant::now();
    let mut proved = 0usize;
    let progress = |raw: &[u8], proved: usize| -> anyhow::Result<()> {
        if proved.is_multiple_of(SAVE_EVERY) || proved == missing {
            shoji_client::sealed::write_atomic(&path, raw)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "  {proved}/{missing} ({:.1} s per proof)",
                start.elapsed().as_secs_f64() / proved as f64
            );
        }
        Ok(())
    };
    let empty_root = Frontier::new().root();
    while mints.len() < want_mints {
        let value = 1 + mints.len() as u64;
        let mut b = TransferBuilder::mint(
            &keys,
            LOAD_ASSET,
            Amount(2 * value),
            empty_root,
            auditor,
            issuer.verifying_key().to_bytes(),
        );
        b.pay(keys.address(), Amount(value), Memo::empty())?;
        b.pay(keys.address(), Amount(value), Memo::empty())?;
        b.network(network);
        let tx = b
            .build(&mut rng)?
            .prove(&prover, &mut rng)?
            .sign_mint(&issuer)?;
        raw.extend_from_slice(&tx.to_bytes());
        mints.push(tx);
        proved += 1;
        progress(&raw, proved)?;
    }

    // The tree as the ledger will hold it once the setup mints have committed in order, and
    // the load wallet's notes in it (recovered from the mints, as a wallet would).
    let mut frontier = Frontier::new();
    let mut notes: Vec<(Note, IncrementalWitness)> = Vec::with_capacity(2 * mints.len());
    for (k, mint) in mints.iter().enumerate() {
        let b = mint.bundle();
        for j in 0..2 {
            let cm = b.commitments[j];
            let (note, _) =
                try_decrypt_note(&keys, &b.outputs[j], &cm, output_rho(&b.nullifiers, j))
                    .with_context(|| format!("setup mint {k} does not pay the load wallet"))?;
            let (w, completed) = IncrementalWitness::append(&mut frontier, cm)?;
            for (_, other) in notes.iter_mut() {
                other.observe(&completed);
            }
            notes.push((note, w));
        }
    }
    let anchor = frontier.root();
    while transfers.len() < n {
        let (note, witness) = &notes[transfers.len()];
        let to = SpendingKeys::from_seed(&WalletSeed::random(&mut rng)).address();
        let mut b = TransferBuilder::transfer(&keys, LOAD_ASSET, anchor, auditor);
        b.spend(SpendableNote {
            note: *note,
            path: witness.path(&frontier)?,
        })?;
        b.pay(to, note.value, Memo::empty())?;
        b.network(network);
        let tx = b
            .build(&mut rng)?
            .prove(&prover, &mut rng)?
            .into_transaction()?;
        raw.extend_from_slice(&tx.to_bytes());
        transfers.push(tx);
        proved += 1;
        progress(&raw, proved)?;
    }
    Ok((mints, transfers))
}

/// Submits the setup mints one at a time, each waiting for its commit, so that their notes
/// take the leaves the transfers were proved against; checks the tree has them all.
fn setup(network: &Network, mints: &[Transaction]) -> anyhow::Result<()> {
    if mints.is_empty() {
        return Ok(());
    }
    eprintln!("setup: {} mints, one at a time ...", mints.len());
    let client = Client::connect(network, Some(0))?;
    for (k, mint) in mints.iter().enumerate() {
        client
            .submit(mint)
            .with_context(|| format!("setup mint {k}"))?;
    }
    let size = client.tree_state()?.size;
    ensure!(
        size == 2 * mints.len() as u64,
        "after setup the tree holds {size} commitments, not {}",
        2 * mints.len()
    );
    Ok(())
}

/// An account load of `n` transfers on the development network `network`: the setup (every
/// sender's opening, then the issuer's mint into it, and the receiver's opening first) and the
/// transfers, each the first payment of its own account, so that any order of inclusion is
/// valid. Proved on every core; the proofs take milliseconds, so nothing is cached.
fn account_load(n: usize, network: &Network) -> anyhow::Result<(Vec<Vec<Encoded>>, Vec<Encoded>)> {
    use rayon::prelude::*;
    let auditor = network
        .account_auditor
        .context("the development network names no account auditor")?;
    let id = network.network_id;
    let issuer = insecure_devnet_issuer();
    let asset = AssetId(840);
    let funds = 1_000_000u64;
    let receiver = shoji_confidential::SecretKey::account(&[0xee; 32]);
    let start = Instant::now();
    eprintln!("proving {n} account transfers and their setup ...");
    let made: Vec<(Encoded, Encoded, Encoded)> = (0..n)
        .into_par_iter()
        .map(|i| -> anyhow::Result<(Encoded, Encoded, Encoded)> {
            let mut rng = rand_core::OsRng;
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = shoji_confidential::SecretKey::account(&seed);
            let open = AccountTx::open(&id, &key, asset, &mut rng);
            let mint = AccountTx::mint(&id, &issuer, asset, key.public(), Amount(funds), seed);
            let header = shoji_primitives::account::TransferHeader {
                asset,
                sender: key.public(),
                receiver: receiver.public(),
                auditor,
                sequence: 0,
                credits: 1,
                expiry_height: u64::MAX,
                spendable: shoji_confidential::Ciphertext::public(funds),
            };
            let pay = AccountTx::transfer(&id, &key, header, funds, 1 + i as u64, &mut rng)
                .map_err(|e| anyhow::anyhow!("proving an account transfer: {e}"))?;
            Ok((
                Encoded::account(&open),
                Encoded::account(&mint),
                Encoded::account(&pay),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "  {:.1} ms per transfer and its setup",
        start.elapsed().as_secs_f64() * 1e3 / n.max(1) as f64
    );
    let mut opens = vec![Encoded::account(&AccountTx::open(
        &id,
        &receiver,
        asset,
        &mut rand_core::OsRng,
    ))];
    let (mut mints, mut pays) = (Vec::new(), Vec::new());
    for (o, m, p) in made {
        opens.push(o);
        mints.push(m);
        pays.push(p);
    }
    Ok((vec![opens, mints], pays))
}

/// At least `n` mints for a fresh development network, from the cache, proving (and caching)
/// any that are missing.
pub fn mints(n: usize, network: [u8; 32]) -> anyhow::Result<Vec<Transaction>> {
    let path = cache_path(&network);
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
            b.network(network);
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

fn start_devnet(ordering_only: bool, latency: shoji_cli::DistanceArgs) -> anyhow::Result<Devnet> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(sibling_binary("shoji-node")?);
    // The cached mints are anchored at the empty tree: keep that root valid for the run.
    cmd.args(["devnet", "--anchor-window", "100000", "--dir"])
        .arg(dir.path());
    if ordering_only {
        cmd.arg("--ordering-only");
    }
    cmd.args(latency.to_args());
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
/// When each transaction's commit answer came back, by [`Transaction::id`].
type Committed = std::sync::Mutex<std::collections::HashMap<[u8; 32], Instant>>;

/// One transaction as the load submits it: its bytes and its id.
pub struct Encoded {
    bytes: Vec<u8>,
    id: [u8; 32],
}

impl Encoded {
    pub(crate) fn shielded(tx: &Transaction) -> Encoded {
        Encoded {
            bytes: tx.to_bytes(),
            id: tx.id().0,
        }
    }

    fn account(tx: &AccountTx) -> Encoded {
        Encoded {
            bytes: tx.to_bytes(),
            id: tx.id().0,
        }
    }
}

pub(crate) fn phase(
    network: &Network,
    txs: &[Encoded],
    clients: usize,
    rate: Option<f64>,
    committed: Option<&Committed>,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let clients = clients.clamp(1, txs.len().max(1));
    // Every client connects before the clock starts: QUIC handshakes are not the load.
    let ready = std::sync::Barrier::new(clients + 1);
    // The clock stops at the last commit, not when the clients have hung up: a client's drop
    // waits for its close to reach the validator, which is not the load.
    let (results, start) = std::thread::scope(|s| {
        let ready = &ready;
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || -> anyhow::Result<(Vec<f64>, Instant)> {
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
                        client.submit_bytes(tx.bytes.clone())?;
                        let done = Instant::now();
                        lat.push((done - t).as_secs_f64() * 1e3);
                        if let Some(c) = committed {
                            if let Ok(mut c) = c.lock() {
                                c.insert(tx.id, done);
                            }
                        }
                    }
                    Ok((lat, Instant::now()))
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let results: Vec<anyhow::Result<(Vec<f64>, Instant)>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect();
        (results, start)
    });
    let mut all = Vec::new();
    let mut end = start;
    for r in results {
        let (lat, done) = r?;
        all.extend(lat);
        end = end.max(done);
    }
    Ok((all, end.duration_since(start).as_secs_f64()))
}

/// Tails the event stream of validator 0 for transaction events until `stop`, returning when
/// each transaction's event arrived, by id.
fn tail_events(
    network: &Network,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<std::collections::HashMap<[u8; 32], Instant>> {
    use shoji_client::events::{Cursor, EventBody, EventKind};
    let client = Client::connect(network, Some(0))?;
    let mut seen = std::collections::HashMap::new();
    let mut after = Cursor::START;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let (events, next) = client.events(after, EventKind::Transaction.bit(), 10_000, 200)?;
        let now = Instant::now();
        for e in events {
            if let EventBody::Transaction { txid, .. } = e.body {
                seen.insert(txid, now);
            }
        }
        after = next;
    }
    Ok(seen)
}

/// Orders `count` distinct 64-byte opaque payloads on a fresh ordering-only network with
/// `in_flight` requests outstanding, and returns payloads committed per second (every answer
/// must be a commit).
fn ordering_phase(
    count: usize,
    in_flight: usize,
    latency: shoji_cli::DistanceArgs,
) -> anyhow::Result<f64> {
    use shoji_client::api::{Request, Response};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let net = start_devnet(true, latency)?;
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

/// CPU time (user and system) the process `pid` has used so far, in seconds, where the system
/// says (Linux's `/proc`). Divided by the transactions of a phase it is the validators' cost per
/// transaction: a steadier figure than throughput, which moves with scheduling.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses; utime and stime
    // are the 14th and 15th fields of the line, in USER_HZ ticks (100 per second on Linux).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
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
        n => Some(ordering_phase(n, opts.ordering_in_flight, opts.latency)?),
    };
    // The load names the development network's id (its genesis hash, the same on every run):
    // read it from a devnet's network file.
    let devnet = start_devnet(false, shoji_cli::DistanceArgs::default())?
        .network
        .clone();
    let network = devnet.network_id;
    let (setup_mints, setup_accounts, txs) = match opts.load {
        Load::Transfers => {
            let (m, t) = transfer_load(opts.txs, network)?;
            (m, Vec::new(), t.iter().map(Encoded::shielded).collect())
        }
        Load::Mints => {
            let m = mints(opts.txs, network)?;
            (
                Vec::new(),
                Vec::new(),
                m.iter().map(Encoded::shielded).collect(),
            )
        }
        Load::Accounts => {
            let (setup, transfers) = account_load(opts.txs, &devnet)?;
            (Vec::new(), setup, transfers)
        }
    };
    let prepare = |net: &Network| -> anyhow::Result<()> {
        setup(net, &setup_mints)?;
        for (what, batch) in ["opening", "funding"].iter().zip(&setup_accounts) {
            eprintln!("setup: {what} {} accounts ...", batch.len());
            phase(net, batch, opts.clients, None, None)?;
        }
        Ok(())
    };
    // Progress on stderr, one line per phase, so that a profiler can be pointed at the
    // measured part alone.
    let net = start_devnet(false, opts.latency)?;
    prepare(&net.network)?;
    eprintln!("full load: {} transactions ...", txs.len());
    let cpu_before = process_cpu_seconds(net.child.id());
    let (_, elapsed) = phase(&net.network, &txs, opts.clients, None, None)?;
    let cpu_ms_per_tx = match (cpu_before, process_cpu_seconds(net.child.id())) {
        (Some(a), Some(b)) => Some((b - a) * 1e3 / txs.len() as f64),
        _ => None,
    };
    drop(net);
    let tps = txs.len() as f64 / elapsed;
    eprintln!("full load done: {tps:.0} per second");
    let net = start_devnet(false, opts.latency)?;
    prepare(&net.network)?;
    eprintln!("half load: {:.0} per second ...", tps / 2.0);
    // A consumer tails the event stream meanwhile: how long after a transaction's commit
    // answer reaches its client does its event reach the consumer?
    let committed = Committed::default();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (lat, seen) = std::thread::scope(|s| {
        let consumer = s.spawn(|| tail_events(&net.network, &stop));
        let lat = phase(
            &net.network,
            &txs,
            opts.clients,
            Some(tps / 2.0),
            Some(&committed),
        );
        // The last events arrive within a block of the last commit.
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen = consumer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the event consumer panicked")));
        (lat, seen)
    });
    let (mut lat, _) = lat?;
    let seen = seen?;
    drop(net);
    let committed = committed
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
    let mut event_lag: Vec<f64> = committed
        .iter()
        .filter_map(|(id, at)| {
            let got = seen.get(id)?;
            Some(match got.checked_duration_since(*at) {
                Some(d) => d.as_secs_f64() * 1e3,
                None => -(at.duration_since(*got).as_secs_f64() * 1e3),
            })
        })
        .collect();
    anyhow::ensure!(
        event_lag.len() == committed.len(),
        "the event consumer saw {} of the {} transactions committed",
        event_lag.len(),
        committed.len()
    );
    event_lag.sort_by(|a, b| a.total_cmp(b));
    eprintln!("half load done");
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(json!({
        "bench": "cluster",
        "validators": 4,
        "load": opts.load.name(),
        "transactions": txs.len(),
        "clients": opts.clients,
        "tps": tps,
        "tps_shielded": (opts.load != Load::Accounts).then_some(tps),
        "tps_accounts": (opts.load == Load::Accounts).then_some(tps),
        "validators_cpu_ms_per_tx": cpu_ms_per_tx,
        "half_load_tps": tps / 2.0,
        "commit_ms_p50": percentile(&lat, 0.5),
        "commit_ms_p99": percentile(&lat, 0.99),
        "event_lag_ms_p50": percentile(&event_lag, 0.5),
        "event_lag_ms_p99": percentile(&event_lag, 0.99),
        "tps_ordering": tps_ordering,
        "ordering_payloads": opts.ordering_payloads,
        "ordering_in_flight": opts.ordering_in_flight,
        "rtt_ms": opts.latency.rtt_ms.unwrap_or(0),
        "jitter_ms": opts.latency.jitter_ms,
        "loss": opts.latency.loss,
        "clients_local": opts.latency.clients_local,
    }))
}

/// The directory the load's cache lives in (for the help text); the file is named for the
/// load, the parameters, the transaction format and the network.
pub fn cache_location() -> String {
    shoji_params::default_dir().display().to_string()
}
