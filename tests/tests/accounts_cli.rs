//! Confidential accounts with the real binaries on `shoji-node devnet`: two wallets open
//! accounts, the issuer mints into one, it pays the other, the other redeems part to the issuer;
//! balances, an overdraft and a payment to a key that is not an account; value shielded into a
//! note, the note paid on, unshielded into an account, and the auditor's report of both tiers'
//! boundary; a wallet restored from its phrase finds its account again.

use serde_json::Value;

use shoji_tests::cli::{start_devnet, Shell};

fn account_balance(sh: &Shell, name: &str) -> u64 {
    let b: Value = sh.wallet(name, &["account", "balance"]);
    b["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter(|r| r["name"] == "USD")
        .map(|r| r["balance"].as_u64().expect("balance"))
        .sum()
}

#[test]
fn accounts_open_mint_pay_redeem_and_restore_with_the_binaries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_devnet, network) = start_devnet(tmp.path());
    let sh = Shell {
        dir: tmp.path().to_path_buf(),
        network,
    };
    let phrase = sh.wallet("alice", &["init"])["recovery_phrase"]
        .as_str()
        .expect("phrase")
        .to_string();
    sh.wallet("bob", &["init"]);
    sh.wallet("issuer", &["init"]);
    let key = |name: &str| {
        sh.wallet(name, &["account", "address"])["account_key"]
            .as_str()
            .expect("account key")
            .to_string()
    };
    let (alice, bob) = (key("alice"), key("bob"));
    assert_ne!(alice, bob);

    // Paying an account nobody opened is refused by the network.
    sh.wallet_fails(
        "issuer",
        &[
            "account",
            "mint",
            "--issuer-key",
            "devnet/issuer.key",
            "--to",
            &alice,
            "--amount",
            "5",
            "--asset",
            "USD",
        ],
        &[],
        8,
        "no such account",
    );
    for w in ["alice", "bob"] {
        let opened = sh.wallet(w, &["account", "open", "--asset", "USD"]);
        assert!(
            opened["certificate_signatures"]
                .as_u64()
                .expect("signatures")
                >= 3
        );
    }
    sh.wallet_fails(
        "alice",
        &["account", "open", "--asset", "USD"],
        &[],
        1,
        "already open",
    );
    sh.wallet(
        "issuer",
        &[
            "account",
            "mint",
            "--issuer-key",
            "devnet/issuer.key",
            "--to",
            &alice,
            "--amount",
            "1000",
            "--asset",
            "USD",
        ],
    );
    sh.wallet("alice", &["sync"]);
    assert_eq!(account_balance(&sh, "alice"), 1000);

    sh.wallet(
        "alice",
        &[
            "account", "send", "--to", &bob, "--amount", "300", "--asset", "USD",
        ],
    );
    sh.wallet("bob", &["sync"]);
    assert_eq!(
        [account_balance(&sh, "alice"), account_balance(&sh, "bob")],
        [700, 300]
    );

    // An overdraft is refused before anything is proved; a mistyped key is a bad address.
    sh.wallet_fails(
        "bob",
        &[
            "account", "send", "--to", &alice, "--amount", "301", "--asset", "USD",
        ],
        &[],
        3,
        "insufficient funds",
    );
    sh.wallet_fails(
        "bob",
        &[
            "account", "send", "--to", "abcd", "--amount", "1", "--asset", "USD",
        ],
        &[],
        5,
        "account key",
    );
    sh.wallet(
        "bob",
        &["account", "redeem", "--amount", "100", "--asset", "USD"],
    );
    assert_eq!(account_balance(&sh, "bob"), 200);

    // The development auditor's account-tier key is the one the devnet's network file names.
    let auditor = sh
        .ok("shoji-auditor", &["--json", "keygen", "--insecure-devnet"])
        .json();
    let network: Value =
        serde_json::from_str(&std::fs::read_to_string(&sh.network).expect("network file"))
            .expect("network json");
    assert_eq!(
        auditor["account_public_key"],
        network["account_auditor_public_key"]
    );

    // The bridge: Alice shields 400 of her account into a note for Carol, Carol pays 150 of
    // it on to Bob's note address, and Bob unshields 100 into his account.
    let address = |name: &str| {
        sh.wallet(name, &["address"])["address"]
            .as_str()
            .expect("address")
            .to_string()
    };
    sh.wallet("carol", &["init"]);
    let (carol_addr, bob_addr) = (address("carol"), address("bob"));
    sh.wallet(
        "alice",
        &[
            "account",
            "shield",
            "--amount",
            "400",
            "--asset",
            "USD",
            "--to",
            &carol_addr,
        ],
    );
    assert_eq!(account_balance(&sh, "alice"), 300);
    sh.wallet("carol", &["sync"]);
    assert_eq!(sh.balance("carol"), 400);
    sh.wallet(
        "carol",
        &[
            "send", "--to", &bob_addr, "--amount", "150", "--asset", "USD",
        ],
    );
    sh.wallet("bob", &["sync"]);
    assert_eq!(sh.balance("bob"), 150);
    // Into an account nobody opened: refused before proving.
    sh.wallet_fails(
        "carol",
        &["account", "unshield", "--amount", "1", "--asset", "USD"],
        &[],
        1,
        "account",
    );
    sh.wallet(
        "bob",
        &["account", "unshield", "--amount", "100", "--asset", "USD"],
    );
    assert_eq!(sh.balance("bob"), 50);
    assert_eq!(account_balance(&sh, "bob"), 300);
    // More than the account holds cannot be shielded.
    sh.wallet_fails(
        "alice",
        &["account", "shield", "--amount", "301", "--asset", "USD"],
        &[],
        3,
        "insufficient funds",
    );

    // The auditor sees both boundary crossings: the shield's note to Carol, and Bob's notes
    // leaving into an account.
    let names = serde_json::json!({
        carol_addr.clone(): "Carol", bob_addr.clone(): "Bob",
        alice.clone(): "Alice", bob.clone(): "Bob",
    });
    std::fs::write(tmp.path().join("names.json"), names.to_string()).expect("names");
    let au = |args: &[&str]| {
        let mut all = vec!["--names", "names.json", "--json"];
        all.extend_from_slice(args);
        sh.ok("shoji-auditor", &all).json()
    };
    au(&["scan"]);
    let report = au(&["report"]);
    let payments: Vec<(String, String, String, u64)> = report["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().expect("a string").to_string();
            (
                s("kind"),
                s("from"),
                s("to"),
                p["amount"].as_u64().expect("amount"),
            )
        })
        .collect();
    let has = |kind: &str, to: &str, amount: u64| {
        payments
            .iter()
            .any(|p| p.0 == kind && p.2 == to && p.3 == amount)
    };
    assert!(has("shield", "Carol", 400), "{payments:?}");
    assert!(has("transfer", "Bob", 150), "{payments:?}");
    assert!(has("unshield", "account", 100), "{payments:?}");
    // And the account tier, in the same report, by name: Alice's payment to Bob (its amount
    // read with the auditor's account-tier key) and Bob's redemption.
    let account_rows: Vec<(String, String, String, u64)> = payments
        .iter()
        .filter(|p| p.0.starts_with("account_"))
        .cloned()
        .collect();
    assert_eq!(
        account_rows,
        vec![
            ("account_transfer".into(), "Alice".into(), "Bob".into(), 300),
            ("account_redeem".into(), "Bob".into(), "issuer".into(), 100),
        ]
    );
    let with_mints = au(&["report", "--include-mints", "--participant", "Alice"]);
    let minted = with_mints["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .any(|p| p["kind"] == "account_mint" && p["to"] == "Alice" && p["amount"] == 1000);
    assert!(minted, "{with_mints}");

    // The auditor discloses Alice's payment to Bob; anyone checks it against the chain, and
    // an altered amount is refused.
    let transfer_txid = report["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .find(|p| p["kind"] == "account_transfer")
        .and_then(|p| p["txid"].as_str())
        .expect("the account transfer's id")
        .to_string();
    au(&["disclose", &transfer_txid, "--out", "acct.json"]);
    let v = sh
        .ok(
            "shoji-auditor",
            &["--json", "verify-disclosure", "acct.json"],
        )
        .json();
    assert_eq!(
        (&v["valid"], &v["kind"], &v["amount"], &v["sender_label"]),
        (
            &Value::Bool(true),
            &Value::from("account_transfer"),
            &Value::from(300),
            &Value::from("Alice")
        )
    );
    assert_eq!(v["receiver"], bob.as_str());
    let mut altered: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("acct.json")).expect("read"))
            .expect("json");
    altered["amount"] = 301.into();
    std::fs::write(tmp.path().join("acct-bad.json"), altered.to_string()).expect("write");
    let r = sh.run(
        "shoji-auditor",
        &["verify-disclosure", "acct-bad.json"],
        &[],
    );
    assert_eq!(
        r.code, 12,
        "an altered amount was not refused as invalid: {}",
        r.stdout
    );
    assert!(r.stderr.contains("INVALID"), "{}", r.stderr);

    // A wallet restored from its phrase finds its account and balance, the shield included.
    std::fs::write(tmp.path().join("phrase.txt"), &phrase).expect("phrase");
    sh.wallet("alice2", &["restore", "--phrase-file", "phrase.txt"]);
    assert_eq!(key("alice2"), alice);
    assert_eq!(account_balance(&sh, "alice2"), 300);
}
