//! Escrowed recovery with the real binaries on `shoji-node devnet` (docs/protocol/recovery.md):
//! governance names three agents' wallets (any two, a window of 12 blocks, more than
//! the empty blocks an idle chain runs on to its checkpoint) and registers Bank
//! B under its wallet's identity key; Bank B, holding three notes, escrows its seed, then loses
//! its wallet. Its fresh wallet's request key goes to agent 0, which opens a recovery; an early
//! release and a stranger's opening are refused; after the window agents 1 and 2 release, and
//! the fresh wallet collects the old seed and sweeps its notes into itself. Governance registers
//! the new wallet's identity; it escrows again, and cancels a recovery opened against it.

use serde_json::Value;
use shoji_tests::cli::{start_devnet, Run, Shell};
use std::time::{Duration, Instant};

/// Runs a wallet command until it succeeds, while it fails with exit code 2 or 8 saying one of
/// `waiting` (certified state or the chain has not caught up yet).
fn eventually(sh: &Shell, wallet: &str, args: &[&str], waiting: &[&str]) -> Value {
    let start = Instant::now();
    let w = format!("{wallet}.wallet");
    let mut all = vec!["--wallet", &w, "--json"];
    all.extend_from_slice(args);
    loop {
        let r: Run = sh.run("shoji-wallet", &all, &[]);
        if r.code == 0 {
            return r.json();
        }
        assert!(
            [2, 8].contains(&r.code) && waiting.iter().any(|n| r.stderr.contains(n)),
            "shoji-wallet {all:?}: exit {}\nstdout: {}\nstderr: {}",
            r.code,
            r.stdout,
            r.stderr
        );
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "shoji-wallet {all:?} still waiting: {}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn agents_recover_a_lost_wallet_into_a_fresh_one_which_sweeps_its_notes_and_escrows_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_devnet, network) = start_devnet(tmp.path());
    let sh = Shell {
        dir: tmp.path().to_path_buf(),
        network,
    };
    let network_arg = sh.network.display().to_string();
    let str_of = |v: &Value, k: &str| v[k].as_str().expect(k).to_string();
    let bank = str_of(&sh.wallet("bank", &["init"]), "address");
    sh.wallet("issuer", &["init"]);
    let agents: Vec<String> = (0..3)
        .map(|i| {
            let w = format!("agent{i}");
            sh.wallet(&w, &["init"]);
            str_of(&sh.wallet(&w, &["recovery", "keys"]), "agent_key")
        })
        .collect();
    let identity = str_of(&sh.wallet("bank", &["recovery", "keys"]), "identity_key");

    // Governance: the agents, then Bank B under the wallet's identity key.
    let enact = |file: &str, action: &[&str]| {
        let mut args = vec![
            "governance",
            "propose",
            "--network",
            &network_arg,
            "--out",
            file,
        ];
        args.extend_from_slice(action);
        sh.ok("shoji-node", &args);
        for key in ["devnet/admin-0.key", "devnet/admin-1.key"] {
            sh.ok(
                "shoji-node",
                &["governance", "approve", file, "--admin-key", key],
            );
        }
        sh.ok(
            "shoji-node",
            &["governance", "submit", file, "--network", &network_arg],
        );
    };
    let agent_list = agents.join(",");
    enact(
        "agents.json",
        &[
            "--set-recovery-agents",
            &agent_list,
            "--recovery-threshold",
            "2",
            "--recovery-window",
            "12",
        ],
    );
    enact(
        "bank-b.json",
        &[
            "--register-participant",
            "Bank B",
            "--identity-key",
            &identity,
            "--participant-address",
            &bank,
        ],
    );
    let mint = |to: &str, amount: &str| {
        sh.wallet(
            "issuer",
            &[
                "mint",
                "--issuer-key",
                "devnet/issuer.key",
                "--to",
                to,
                "--amount",
                amount,
                "--asset",
                "USD",
            ],
        );
    };
    for amount in ["100", "200", "300"] {
        mint(&bank, amount);
    }
    let not_yet = [
        "no participant is registered",
        "names no recovery agents",
        "no recovery of",
        "releases nothing before height",
        "of the 2 releases needed",
    ];
    let escrowed = eventually(
        &sh,
        "bank",
        &["recovery", "escrow", "--name", "Bank B"],
        &not_yet,
    );
    assert_eq!(escrowed["threshold"], 2, "{escrowed}");

    // Every device lost. A fresh wallet's request key goes to agent 0, which opens a recovery.
    std::fs::remove_file(tmp.path().join("bank.wallet")).expect("lose the wallet");
    sh.wallet("fresh", &["init"]);
    let fresh = str_of(&sh.wallet("fresh", &["address"]), "address");
    let request = str_of(&sh.wallet("fresh", &["recovery", "keys"]), "request_key");
    // A wallet that is not an agent cannot open it.
    sh.wallet_fails(
        "issuer",
        &[
            "recovery",
            "open",
            "--name",
            "Bank B",
            "--request-key",
            &request,
        ],
        &[],
        2,
        "not one of the network's recovery agents",
    );
    let opened = sh.wallet(
        "agent0",
        &[
            "recovery",
            "open",
            "--name",
            "Bank B",
            "--request-key",
            &request,
        ],
    );
    let from = opened["releases_from"].as_u64().expect("releases_from");
    // Inside the window (once certified state shows the recovery) agent 1's release is
    // refused by the ledger.
    let status_until = |what: &str, done: &dyn Fn(&Value) -> bool| {
        let start = Instant::now();
        loop {
            let s = sh.wallet("agent1", &["recovery", "status", "--name", "Bank B"]);
            if done(&s) {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{what}: {s}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let open = status_until("the recovery never showed", &|s| !s["recovery"].is_null());
    assert_eq!(open["recovery"]["request_key"], request.as_str(), "{open}");
    sh.wallet_fails(
        "agent1",
        &["recovery", "release", "--name", "Bank B"],
        &[],
        8,
        "releases nothing before height",
    );
    // Blocks pass (mints to someone else); then agents 1 and 2 release.
    while sh.wallet("issuer", &["sync"])["height"]
        .as_u64()
        .expect("height")
        < from
    {
        mint(&fresh, "1");
    }
    for agent in ["agent1", "agent2"] {
        eventually(
            &sh,
            agent,
            &["recovery", "release", "--name", "Bank B"],
            &not_yet,
        );
    }
    // A wallet that is not an agent releases nothing; someone else's wallet opens nothing; the fresh one collects and sweeps three notes.
    sh.wallet_fails(
        "issuer",
        &["recovery", "release", "--name", "Bank B"],
        &[],
        2,
        "not one of the network's recovery agents",
    );
    sh.wallet_fails(
        "agent0",
        &[
            "recovery", "collect", "--name", "Bank B", "--out", "x.wallet",
        ],
        &[],
        2,
        "not this wallet's",
    );
    sh.wallet("fresh", &["sync"]);
    let before = sh.balance("fresh");
    let collected = eventually(
        &sh,
        "fresh",
        &[
            "recovery",
            "collect",
            "--name",
            "Bank B",
            "--out",
            "recovered.wallet",
            "--sweep",
        ],
        &not_yet,
    );
    assert_eq!(collected["address"], bank.as_str(), "{collected}");
    assert_eq!(collected["swept"][0]["amount"], 600, "{collected}");
    assert_eq!(collected["swept"][0]["payments"], 2, "{collected}");
    sh.wallet("fresh", &["sync"]);
    assert_eq!(sh.balance("fresh"), before + 600);
    assert_eq!(sh.balance("recovered"), 0);
    // The money is the fresh wallet's to spend; the old seed has nothing left to spend.
    let agent0 = str_of(&sh.wallet("agent0", &["address"]), "address");
    let pay = ["send", "--to", &agent0, "--amount", "600", "--asset", "USD"];
    sh.wallet("fresh", &pay);
    sh.wallet_fails("recovered", &pay, &[], 3, "insufficient funds");

    // The recovered participant's new identity: governance registers it, it escrows again,
    // and cancels a recovery opened against it.
    let new_identity = str_of(&sh.wallet("fresh", &["recovery", "keys"]), "identity_key");
    enact(
        "bank-b-again.json",
        &[
            "--register-participant",
            "Bank B",
            "--identity-key",
            &new_identity,
            "--participant-address",
            &fresh,
        ],
    );
    let not_renewed = ["is registered with identity key"];
    let waiting: Vec<&str> = not_yet.iter().chain(&not_renewed).copied().collect();
    eventually(
        &sh,
        "fresh",
        &["recovery", "escrow", "--name", "Bank B"],
        &waiting,
    );
    let thief = str_of(&sh.wallet("agent2", &["recovery", "keys"]), "request_key");
    let reopen = ["has escrowed no seed"];
    let waiting: Vec<&str> = not_yet.iter().chain(&reopen).copied().collect();
    eventually(
        &sh,
        "agent0",
        &[
            "recovery",
            "open",
            "--name",
            "Bank B",
            "--request-key",
            &thief,
        ],
        &waiting,
    );
    sh.wallet("fresh", &["recovery", "cancel", "--name", "Bank B"]);
    let status = status_until("the cancel never showed", &|s| {
        s["recovery"]["cancelled"] == true && s["recovery"]["request_key"] == thief.as_str()
    });
    assert_eq!(status["escrow_current"], true, "{status}");
    // A cancelled recovery releases nothing.
    sh.wallet_fails(
        "agent1",
        &["recovery", "release", "--name", "Bank B"],
        &[],
        8,
        "was cancelled",
    );
}
