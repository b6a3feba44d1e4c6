//! A network of real `shoji-node run` processes made by `shoji-node init`: transactions commit;
//! a backup killed with SIGKILL does not stop commits, and restarted it catches up by state
//! transfer; the leader killed with SIGKILL is replaced by a view change, and restarted it
//! catches up too; at the end every validator reports the same chain and state. Also: the
//! errors of `run` name the file at fault, SIGTERM stops a validator cleanly, and governance
//! removes a validator from a network of five at a checkpoint boundary.

use shoji_client::api::Status;
use shoji_client::network::{insecure_devnet_auditor, insecure_devnet_issuer};
use shoji_client::{Client, ClientError, Network};
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tree::Frontier;
use shoji_primitives::tx::Transaction;
use shoji_prover::{Prover, TransferBuilder};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shoji-node");
const N: u16 = 4;
/// Lines of each validator's log shown when the test fails.
const LOG_LINES: usize = 60;

/// A validator process, killed (SIGKILL) when dropped. Its log is appended to `log.txt`
/// beside its configuration.
struct Validator {
    child: Option<Child>,
    config: PathBuf,
}

impl Validator {
    fn spawn(config: &Path) -> Validator {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("log.txt"))
            .expect("log file");
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("SHOJI_TEST_LOG").unwrap_or_else(|_| "info,shoji_node=debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn shoji-node run");
        Validator {
            child: Some(child),
            config: config.to_path_buf(),
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reaped");
        }
    }

    fn restart(&mut self) {
        assert!(self.child.is_none());
        *self = Validator::spawn(&self.config);
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Free UDP ports on loopback (bound together, then released).
fn free_ports(n: u16) -> Vec<u16> {
    let sockets: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect()
}

fn connect(network: &Network, id: u16) -> Option<Client> {
    let c = Client::connect(network, Some(id)).ok()?;
    (c.node() == id).then_some(c)
}

fn status(network: &Network, id: u16) -> Option<Status> {
    connect(network, id)?.status().ok()
}

/// Polls until `f` holds, at most `limit` (then fails with the validators' recent logs).
fn wait_for(dir: &Path, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Submits `tx` to every validator in `to` at once and waits for the first certified commit.
/// Like any client, it submits again when an attempt fails (a validator answers a submission
/// for a limited time, which a view change on a loaded machine can exceed); a resubmission
/// refused as a double spend means an earlier attempt committed.
fn commit(dir: &Path, network: &Network, to: &[u16], tx: &Transaction) -> u64 {
    let start = Instant::now();
    let mut errors = Vec::new();
    while start.elapsed() < Duration::from_secs(50) {
        let (done, results) = mpsc::channel();
        for &id in to {
            let (network, tx, done) = (network.clone(), *tx, done.clone());
            std::thread::spawn(move || {
                let r = match connect(&network, id) {
                    None => Err((false, format!("validator {id} unreachable"))),
                    Some(c) => c.submit(&tx).map(|f| f.height).map_err(|e| {
                        let spent =
                            matches!(&e, ClientError::Refused(r) if r.contains("double spend"));
                        (spent, format!("validator {id}: {e}"))
                    }),
                };
                let _ = done.send(r);
            });
        }
        drop(done);
        let mut spent = false;
        while let Ok(r) = results.recv_timeout(Duration::from_secs(60)) {
            match r {
                Ok(height) => return height,
                Err((s, e)) => {
                    spent |= s;
                    errors.push(e);
                }
            }
        }
        if spent {
            let store_height = to
                .iter()
                .filter_map(|id| status(network, *id))
                .map(|s| s.height)
                .max();
            if let Some(h) = store_height {
                return h;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("transaction not committed: {errors:?}\n{}", logs(dir));
}

/// Whether the validators `ids` all answer, at height `min_height` or above, with the same
/// height, last block hash and state root.
fn agree(network: &Network, ids: &[u16], min_height: u64) -> bool {
    let s: Vec<Status> = ids.iter().filter_map(|i| status(network, *i)).collect();
    s.len() == ids.len()
        && s.iter().all(|x| {
            x.height >= min_height
                && x.height == s[0].height
                && x.last_block_hash == s[0].last_block_hash
                && x.state_root == s[0].state_root
        })
}

/// Proposes `action` as `file`, has the administrators `admins` approve it and submits it;
/// returns the next network file `submit` wrote.
fn enact(
    dir: &Path,
    network_file: &str,
    action: &[&str],
    file: &str,
    admins: [&str; 2],
) -> Network {
    let mut propose = vec!["propose", "--network", network_file];
    propose.extend_from_slice(action);
    propose.extend_from_slice(&["--out", file]);
    governance(dir, &propose);
    for admin in admins {
        governance(dir, &["approve", file, "--admin-key", admin]);
    }
    let said = governance(dir, &["submit", file, "--network", network_file]);
    assert!(said.contains("network.next.json"), "{said}");
    // The operations addresses of the validators that stay carry over to the next file.
    let raw = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).expect("read")).expect("JSON")
    };
    let (old, next) = (raw(network_file), raw("network.next.json"));
    for v in next["validators"].as_array().expect("validators") {
        let id = v["id"].to_string();
        if let Some(addr) = old["operations"].get(&id) {
            assert_eq!(
                next["operations"].get(&id),
                Some(addr),
                "operations of {id}"
            );
        }
    }
    assert!(!next["operations"].as_object().is_none_or(|o| o.is_empty()));
    Network::load(&dir.join("network.next.json")).expect("next network file")
}

/// Commits `txs`, one per block, to the validators `to` until validator 0 reports an epoch
/// after `network`'s; returns the height it reported then (the boundary).
fn traffic_to_next_epoch(
    dir: &Path,
    network: &Network,
    to: &[u16],
    txs: &mut impl Iterator<Item = Transaction>,
) -> u64 {
    // Fail with the validators' logs well before the harness kills the test.
    let start = Instant::now();
    for tx in txs {
        if let Some(s) = status(network, 0).filter(|s| s.epoch > network.validators.epoch) {
            return s.height;
        }
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "the next epoch did not start within 150 s\n{}",
            logs(dir)
        );
        commit(dir, network, to, &tx);
    }
    panic!("the next epoch did not start before the mints ran out");
}

/// `count` mints for the network `network` (its genesis hash).
fn mints(count: usize, network: [u8; 32]) -> Vec<Transaction> {
    let prover = Prover::dev().expect("parameters");
    let mut rng = rand_core::OsRng;
    let issuer = insecure_devnet_issuer();
    let wallet = SpendingKeys::from_seed(&WalletSeed([9; 32]));
    let alice = SpendingKeys::from_seed(&WalletSeed([10; 32])).address();
    (0..count)
        .map(|i| {
            let mut b = TransferBuilder::mint(
                &wallet,
                AssetId(840),
                Amount(100 + i as u64),
                Frontier::new().root(),
                insecure_devnet_auditor().public_key(),
                issuer.verifying_key().to_bytes(),
            );
            b.pay(alice, Amount(100 + i as u64), Memo::empty())
                .expect("pay");
            b.network(network);
            b.build(&mut rng)
                .expect("build")
                .prove(&prover, &mut rng)
                .expect("prove")
                .sign_mint(&issuer)
                .expect("sign")
        })
        .collect()
}

fn logs(dir: &Path) -> String {
    (0..)
        .take_while(|i| dir.join(format!("validator-{i}")).exists())
        .map(|i| {
            let p = dir.join(format!("validator-{i}/log.txt"));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(LOG_LINES).collect();
            format!(
                "--- validator {i} ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn processes_survive_sigkill_and_catch_up() {
    let started = Instant::now();
    shoji_params::dev::parameters().expect("development parameters in the cache");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let network = init_network(&dir, N);
    // Proving takes a few seconds: done while the network starts.
    let id = network.network_id;
    let proving = std::thread::spawn(move || mints(5, id));
    // One validator logs JSON lines, for a log collector.
    let p = dir.join(format!("validator-{}/config.toml", N - 1));
    let text = std::fs::read_to_string(&p).expect("config");
    assert!(text.contains("log_level = "));
    std::fs::write(
        &p,
        text.replace("log_level = ", "log_format = \"json\"\nlog_level = "),
    )
    .expect("write config");
    let mut nodes: Vec<Validator> = (0..N)
        .map(|i| Validator::spawn(&dir.join(format!("validator-{i}/config.toml"))))
        .collect();
    wait_for(
        &dir,
        "every validator to answer",
        Duration::from_secs(30),
        || (0..N).all(|i| status(&network, i).is_some()),
    );

    // A second validator on the same address is refused with a clear reason.
    let clash = dir.join("validator-0/clash.toml");
    let text = std::fs::read_to_string(dir.join("validator-0/config.toml")).expect("config");
    std::fs::write(
        &clash,
        text.replace("data_dir = \"data\"", "data_dir = \"data-clash\""),
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&clash)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("in use") && err.contains("clash.toml"),
        "{err}"
    );

    let txs = proving.join().expect("proving thread");
    let all: Vec<u16> = (0..N).collect();
    let h1 = commit(&dir, &network, &all, &txs[0]);

    // SIGKILL a backup: commits continue.
    let leader = status(&network, 0)
        .and_then(|s| s.leader)
        .expect("a leader");
    let backup = (leader + 1) % N;
    nodes[backup as usize].kill9();
    let live: Vec<u16> = all.iter().copied().filter(|i| *i != backup).collect();
    let h2 = commit(&dir, &network, &live, &txs[1]);
    assert!(h2 > h1);

    // Restarted, it catches up on the block it missed.
    nodes[backup as usize].restart();
    wait_for(
        &dir,
        "the restarted backup to catch up",
        Duration::from_secs(30),
        || status(&network, backup).is_some_and(|s| s.height >= h2),
    );

    // SIGKILL the leader: a view change, and commits continue.
    let view_before = status(&network, backup).expect("status").view;
    assert_eq!(u64::from(leader), view_before % u64::from(N));
    nodes[leader as usize].kill9();
    let live: Vec<u16> = all.iter().copied().filter(|i| *i != leader).collect();
    // Through one backup only, as a wallet does: it relays the transaction to the others, so
    // every live backup times out on the dead leader.
    let h3 = commit(&dir, &network, &live[..1], &txs[2]);
    assert!(h3 > h2);
    let s = status(&network, backup).expect("status");
    assert!(s.view > view_before, "the view changed: {s:?}");
    assert_ne!(s.leader, Some(leader));
    let h4 = commit(&dir, &network, &live, &txs[3]);

    // Restarted, the old leader catches up and the network goes on with all four.
    nodes[leader as usize].restart();
    wait_for(
        &dir,
        "the restarted leader to catch up",
        Duration::from_secs(30),
        || status(&network, leader).is_some_and(|s| s.height >= h4),
    );
    let h5 = commit(&dir, &network, &all, &txs[4]);
    assert!(h5 > h4);

    // Every validator ends on the same chain and state.
    let all_ids: Vec<u16> = (0..N).collect();
    wait_for(
        &dir,
        "the validators to agree",
        Duration::from_secs(30),
        || agree(&network, &all_ids, 0),
    );
    let s = status(&network, 0).expect("status");
    assert!(s.height >= h5);
    // Every height's compact block (time, nullifiers, commitments, ciphertexts) is the same
    // at every validator.
    let tops: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let c = connect(&network, i).expect("connect");
            c.compact_blocks(1, 1000)
                .expect("compact blocks")
                .iter()
                .map(|b| b.to_bytes())
                .collect::<Vec<_>>()
                .concat()
        })
        .collect();
    assert!(tops.iter().all(|t| *t == tops[0]));

    // SIGTERM stops a validator cleanly.
    let child = nodes[0].child.take().expect("running");
    let pid = child.id().to_string();
    let mut child = child;
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let start = Instant::now();
    let exit = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "SIGTERM did not stop the validator"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");

    // Stopped, its operator takes a snapshot of its state, lists and checks it; a chunk altered
    // on disk is caught.
    let config0 = dir.join("validator-0/config.toml");
    let snapshot = |args: &[&str]| {
        Command::new(BIN)
            .arg("snapshot")
            .args(args)
            .arg("--config")
            .arg(&config0)
            .output()
            .expect("snapshot command")
    };
    let took = snapshot(&["take"]);
    assert!(
        took.status.success(),
        "{}",
        String::from_utf8_lossy(&took.stderr)
    );
    let listed = String::from_utf8_lossy(&snapshot(&["list"]).stdout).into_owned();
    assert!(listed.contains("state root"), "{listed}");
    let verified = snapshot(&["verify"]);
    assert!(
        verified.status.success()
            && String::from_utf8_lossy(&verified.stdout).contains("checks against"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let snapshots = dir.join("validator-0/data/snapshots");
    let taken = std::fs::read_dir(&snapshots)
        .expect("snapshots")
        .filter_map(|e| e.ok())
        .find(|e| e.path().join("0").exists())
        .expect("a snapshot directory")
        .path();
    let mut head = std::fs::read(taken.join("0")).expect("chunk");
    let last = head.len() - 1;
    head[last] ^= 1;
    std::fs::write(taken.join("0"), head).expect("write");
    let refused = snapshot(&["verify"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("chunk 0"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Pruning by hand needs an archive and a window of at least 64 blocks; what the archive
    // holds bounds what goes (here nothing: the archive is new and empty).
    let prune = |args: &[&str]| {
        Command::new(BIN)
            .arg("prune")
            .arg("--config")
            .arg(&config0)
            .args(args)
            .output()
            .expect("prune command")
    };
    let no_archive = prune(&["--keep", "64"]);
    assert_eq!(no_archive.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_archive.stderr).contains("names no archive"));
    let text = std::fs::read_to_string(&config0).expect("config");
    let archive_url = url::Url::from_directory_path(dir.join("archive")).expect("absolute");
    std::fs::write(&config0, format!("archive = \"{archive_url}\"\n{text}")).expect("write");
    let small = prune(&["--keep", "10"]);
    assert_eq!(small.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&small.stderr).contains("at least 64"));
    let kept = prune(&["--keep", "64"]);
    let said = String::from_utf8_lossy(&kept.stdout);
    assert!(
        kept.status.success()
            && said.contains("blocks kept from height 1 to")
            && said.contains("every height up to 0"),
        "{said}{}",
        String::from_utf8_lossy(&kept.stderr)
    );

    // The JSON log: one object per line, each with a time, a level and a message, and the
    // events' fields as fields.
    let json =
        std::fs::read_to_string(dir.join(format!("validator-{}/log.txt", N - 1))).expect("log");
    let events: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(events
        .iter()
        .all(|e| e["timestamp"].is_string() && e["level"].is_string()));
    assert!(events.iter().any(|e| e["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("validator running"))
        && e["validator"] == N - 1));
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn run_errors_name_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // With backtraces asked for, an ordinary error is still a message, not a stack.
    let run = |config: &Path| {
        let out = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.starts_with("error: "), "{err}");
        assert!(!err.contains("backtrace"), "{err}");
        err
    };
    let missing = tmp.path().join("missing.toml");
    assert!(run(&missing).contains("missing.toml"));
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "id = [").expect("write");
    assert!(run(&bad).contains("bad.toml"));

    // A data directory made for another genesis is refused.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        let out = Command::new(BIN)
            .args(["init", "--dir"])
            .arg(d)
            .output()
            .expect("init");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let setup_a =
        shoji_node::config::Setup::load(&a.join("validator-0/config.toml")).expect("setup");
    std::fs::create_dir_all(&setup_a.config.data_dir).expect("data dir");
    shoji_store::Store::open(setup_a.database())
        .expect("store")
        .check_genesis(&setup_a.network.genesis.hash())
        .expect("tied to network a");
    let foreign = b.join("validator-0/foreign.toml");
    let text = std::fs::read_to_string(b.join("validator-0/config.toml")).expect("config");
    std::fs::write(
        &foreign,
        text.replace(
            "data_dir = \"data\"",
            &format!(
                "data_dir = {:?}",
                setup_a.config.data_dir.display().to_string()
            ),
        ),
    )
    .expect("write");
    let err = run(&foreign);
    assert!(err.contains("another genesis"), "{err}");
    assert!(err.contains("node.redb"), "{err}");
}

/// `--help` (alone, or `help`) prints every command, one per line, and succeeds; a command's
/// `--help` its options; an unknown command or option is bad usage (exit code 2).
#[test]
fn help_lists_every_command() {
    for args in [&["--help"][..], &["help"], &["-h"]] {
        let out = Command::new(BIN)
            .args(args)
            .output()
            .expect("run shoji-node");
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for command in [
            "init",
            "run",
            "join",
            "devnet",
            "governance propose",
            "governance submit",
            "snapshot list",
            "snapshot verify",
            "snapshot take",
            "archive list",
            "archive verify",
            "prune",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.contains(&format!("shoji-node {command}"))),
                "{args:?}: {command} missing from\n{text}"
            );
        }
    }
    let out = Command::new(BIN)
        .args(["init", "--help"])
        .output()
        .expect("run shoji-node");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for option in ["--dir", "--addresses", "--params", "--admin-threshold"] {
        assert!(text.contains(option), "{option} missing from\n{text}");
    }
    for args in [
        &["frobnicate"][..],
        &["init", "--dir", "x", "--frobnicate"],
        &["init", "--dir", "x", "--issuer-public-key", "00"],
        &["devnet", "--anchor-window", "0"],
    ] {
        let out = Command::new(BIN).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// `shoji-node init` of `n` validators on free loopback ports in `dir`, each probing its
/// peers every 500 ms (so catching up does not wait for the default interval).
fn init_network(dir: &Path, n: u16) -> Network {
    let addresses: Vec<String> = free_ports(n)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    // Operations on free ports too (by default they sit 1000 above each validator's port,
    // which another test may hold).
    let operations: Vec<String> = free_ports(n)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let out = Command::new(BIN)
        .args(["init", "--dir"])
        .arg(dir)
        .args(["--addresses", &addresses.join(",")])
        .args(["--operations", &operations.join(",")])
        .output()
        .expect("run shoji-node init");
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..n {
        let p = dir.join(format!("validator-{i}/config.toml"));
        let text = std::fs::read_to_string(&p).expect("config");
        assert!(text.contains("sync_interval_ms = 5000"));
        std::fs::write(
            &p,
            text.replace("sync_interval_ms = 5000", "sync_interval_ms = 500"),
        )
        .expect("write config");
    }
    Network::load(&dir.join("network.json")).expect("network file")
}

/// `shoji-node governance ...` in `dir`; its output when it succeeds.
fn governance(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .current_dir(dir)
        .arg("governance")
        .args(args)
        .output()
        .expect("run shoji-node governance");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "governance {args:?}: {text}");
    text
}

/// Five validator processes; governance (two of three administrators) removes validator 4.
/// Traffic carries the chain to the boundary (a checkpoint plus a log window after the
/// enactment); there the four others start the next epoch and go on committing, certified
/// for the next network file, while validator 4 stops ordering and refuses to start again.
/// A remaining validator killed and restarted in the new epoch catches up, and the four agree.
#[test]
fn governance_removes_a_validator_across_processes() {
    const FIVE: u16 = 5;
    // The boundary comes at most a checkpoint interval (8) and a log window (16) after the
    // enactment: one mint per block carries the chain there.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let network = init_network(&dir, FIVE);
    let id = network.network_id;
    let proving = std::thread::spawn(move || mints(30, id));
    let mut nodes: Vec<Validator> = (0..FIVE)
        .map(|i| Validator::spawn(&dir.join(format!("validator-{i}/config.toml"))))
        .collect();
    wait_for(
        &dir,
        "every validator to answer",
        Duration::from_secs(30),
        || (0..FIVE).all(|i| status(&network, i).is_some()),
    );
    let mut txs = proving.join().expect("proving thread").into_iter();
    let four: Vec<u16> = (0..4).collect();
    commit(&dir, &network, &four, &txs.next().expect("a mint"));

    let net_file = dir.join("network.json");
    let net_arg = net_file.to_str().expect("utf-8");
    let next = enact(
        &dir,
        net_arg,
        &["--remove-validator", "4"],
        "remove.json",
        ["admin-0.key", "admin-1.key"],
    );
    assert_eq!(next.validators.n(), 4);

    // Traffic until the four report the next epoch.
    let boundary = traffic_to_next_epoch(&dir, &network, &four, &mut txs);
    let s = status(&next, 1).expect("status");
    assert_eq!(s.validators, four, "{s:?}");

    // The four go on, certified by the next network file's validators.
    let tx = txs.next().expect("a mint");
    let h = commit(&dir, &next, &four, &tx);
    assert!(h > boundary);

    // A client that holds only the genesis network file follows the change: it learns the
    // next set from a checkpoint of the old one, so commits certified by the four check, and
    // it scans certified blocks across the boundary.
    let h = commit(&dir, &network, &four, &txs.next().expect("a mint"));
    assert!(h > boundary);
    let client = connect(&network, 0).expect("validator 0");
    let mut scanned = 0;
    let liars = client
        .scan_certified(1, h, 1000, |blocks, _| {
            scanned = blocks.last().map_or(scanned, |b| b.height);
            Ok::<_, ClientError>(())
        })
        .expect("certified blocks across the boundary");
    assert!(liars.is_empty(), "{liars:?}");
    assert!(scanned >= h, "scanned to {scanned}, committed at {h}");

    // Validator 4 orders nothing more and, restarted, refuses to run.
    let removed = status(&network, 4).expect("the removed validator still serves reads");
    assert!(removed.height <= boundary, "{removed:?}");
    nodes[4].kill9();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(dir.join("validator-4/config.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("governance removed it"), "{err}");

    // A remaining validator killed and restarted in the new epoch catches up.
    nodes[2].kill9();
    let h = commit(&dir, &next, &[0, 1, 3], &txs.next().expect("a mint"));
    nodes[2].restart();
    wait_for(&dir, "the four to agree", Duration::from_secs(30), || {
        agree(&next, &four, h)
    });
}

/// Four validator processes and a fifth prepared with `shoji-node join`. Started before the
/// change, the joiner cannot reach anyone; governance (two of three administrators) adds it
/// with its key and address, every validator's transport accepts it from the enacting block
/// on, and it catches up as a learner. Traffic carries the chain to the boundary, where it
/// becomes a member: the next network file's five validators certify blocks, and with one
/// founder killed the other three and the joiner still commit (a quorum of five is four).
#[test]
fn governance_adds_a_validator_across_processes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let network = init_network(&dir, N);
    let id = network.network_id;
    let proving = std::thread::spawn(move || mints(30, id));
    let mut nodes: Vec<Validator> = (0..N)
        .map(|i| Validator::spawn(&dir.join(format!("validator-{i}/config.toml"))))
        .collect();

    // The joiner's files, and the joiner itself, before governance knows of it.
    let joiner_addr = format!("127.0.0.1:{}", free_ports(1)[0]);
    let joiner_dir = dir.join("validator-4");
    let out = Command::new(BIN)
        .args(["join", "--dir"])
        .arg(&joiner_dir)
        .arg("--genesis")
        .arg(dir.join("genesis.toml"))
        .args(["--id", "4", "--listen", &joiner_addr])
        .output()
        .expect("run shoji-node join");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "join: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("public key: "))
        .expect("the joiner's public key")
        .to_string();
    assert!(said.contains(&format!(
        "--add-validator 4 --key {key} --address {joiner_addr}"
    )));
    let config = joiner_dir.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("sync_interval_ms = 5000", "sync_interval_ms = 500"),
    )
    .expect("write config");
    nodes.push(Validator::spawn(&config));
    // A second `join` into the same directory is refused.
    let again = Command::new(BIN)
        .args(["join", "--dir"])
        .arg(&joiner_dir)
        .arg("--genesis")
        .arg(dir.join("genesis.toml"))
        .args(["--id", "4", "--listen", &joiner_addr])
        .output()
        .expect("run shoji-node join");
    assert!(!again.status.success());

    wait_for(
        &dir,
        "every validator to answer",
        Duration::from_secs(30),
        || (0..N).all(|i| status(&network, i).is_some()),
    );
    let mut txs = proving.join().expect("proving thread").into_iter();
    let founders: Vec<u16> = (0..N).collect();
    commit(&dir, &network, &founders, &txs.next().expect("a mint"));

    let net_file = dir.join("network.json");
    let net_arg = net_file.to_str().expect("utf-8");
    let next = enact(
        &dir,
        net_arg,
        &[
            "--add-validator",
            "4",
            "--key",
            &key,
            "--address",
            &joiner_addr,
        ],
        "add.json",
        ["admin-0.key", "admin-2.key"],
    );
    assert_eq!(next.validators.n(), 5);
    let shown = governance(&dir, &["show", "add.json"]);
    assert!(shown.contains("add validator 4"), "{shown}");

    // The joiner is reachable now and follows as a learner, refusing client transactions.
    wait_for(
        &dir,
        "the joiner to answer",
        Duration::from_secs(30),
        || status(&next, 4).is_some(),
    );
    let refused = connect(&next, 4)
        .expect("client")
        .submit(&txs.next().expect("a mint"));
    assert!(
        matches!(&refused, Err(ClientError::Refused(r)) if r.contains("catching up")),
        "{refused:?}"
    );

    // Traffic until the founders report the next epoch.
    let boundary = traffic_to_next_epoch(&dir, &network, &founders, &mut txs);
    wait_for(&dir, "the joiner to join", Duration::from_secs(60), || {
        status(&next, 4).is_some_and(|s| s.epoch == next.validators.epoch && s.height >= boundary)
    });
    let s = status(&next, 4).expect("status");
    assert_eq!(s.validators, vec![0, 1, 2, 3, 4], "{s:?}");

    // The joiner's votes count: with founder 3 down, the other four commit.
    nodes[3].kill9();
    let four = [0u16, 1, 2, 4];
    let h = commit(&dir, &next, &four, &txs.next().expect("a mint"));
    assert!(h > boundary);
    wait_for(&dir, "the four to agree", Duration::from_secs(30), || {
        agree(&next, &four, h)
    });
}
