//! Guardian shares with the real binaries on `shoji-node devnet`: a wallet with a note and an
//! account splits its seed 2-of-3, loses its file and phrase, and two shares restore the same
//! balances and history; one share, shares of two sets, a share given twice and a corrupted
//! share are refused, naming the share. Shares encrypted to guardians open only with each
//! guardian's wallet.

use serde_json::Value;

use shoji_tests::cli::{start_devnet, Shell};

#[test]
fn two_of_three_guardian_shares_restore_a_lost_wallet_with_the_binaries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_devnet, network) = start_devnet(tmp.path());
    let sh = Shell {
        dir: tmp.path().to_path_buf(),
        network,
    };
    let alice = sh.wallet("alice", &["init"])["address"]
        .as_str()
        .expect("address")
        .to_string();
    sh.wallet("issuer", &["init"]);
    sh.wallet(
        "issuer",
        &[
            "mint",
            "--issuer-key",
            "devnet/issuer.key",
            "--to",
            &alice,
            "--amount",
            "700",
            "--asset",
            "USD",
        ],
    );
    sh.wallet("alice", &["account", "open", "--asset", "USD"]);
    sh.wallet(
        "alice",
        &["account", "unshield", "--amount", "200", "--asset", "USD"],
    );
    assert_eq!(sh.balance("alice"), 500);
    let history: Value = sh.wallet("alice", &["history"]);

    let split = sh.wallet(
        "alice",
        &[
            "backup",
            "split",
            "--threshold",
            "2",
            "--shares",
            "3",
            "--out",
            "shares",
        ],
    );
    let files: Vec<String> = split["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("path").to_string())
        .collect();
    assert_eq!(files.len(), 3);
    // A guardian checks its own share without the wallet.
    let checked = sh.wallet("nobody", &["backup", "check", "--share", &files[1]]);
    assert_eq!(
        (&checked["valid"], &checked["index"]),
        (&Value::Bool(true), &Value::from(2))
    );

    // Everything is lost: the wallet file (and the phrase, never used here).
    std::fs::remove_file(tmp.path().join("alice.wallet")).expect("lose the wallet");

    // Too few, two sets, the same share twice, a corrupted share: refused, naming it.
    sh.wallet_fails(
        "restored",
        &["restore", "--share", &files[0]],
        &[],
        2,
        "1 shares given, 2 needed",
    );
    sh.wallet("other", &["init"]);
    let other = sh.wallet(
        "other",
        &[
            "backup",
            "split",
            "--threshold",
            "2",
            "--shares",
            "2",
            "--out",
            "other",
        ],
    );
    let other_file = other["files"][0].as_str().expect("path").to_string();
    sh.wallet_fails(
        "restored",
        &["restore", "--share", &files[0], "--share", &other_file],
        &[],
        2,
        "different backups",
    );
    sh.wallet_fails(
        "restored",
        &["restore", "--share", &files[0], "--share", &files[0]],
        &[],
        2,
        "each share counts once",
    );
    let mut bad: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join(&files[2])).expect("read"))
            .expect("json");
    let mut words: Vec<String> = bad["words"]
        .as_str()
        .expect("words")
        .split(' ')
        .map(str::to_string)
        .collect();
    words[3] = if words[3] == "zoo" { "zone" } else { "zoo" }.to_string();
    bad["words"] = words.join(" ").into();
    std::fs::write(tmp.path().join("bad-share.json"), bad.to_string()).expect("write");
    sh.wallet_fails(
        "restored",
        &["restore", "--share", &files[0], "--share", "bad-share.json"],
        &[],
        2,
        "share bad-share.json is corrupted",
    );

    // Two good shares restore the wallet: the same address, notes, account and history.
    let restored = sh.wallet(
        "restored",
        &["restore", "--share", &files[2], "--share", &files[0]],
    );
    assert_eq!(restored["height"].as_u64().map(|h| h > 0), Some(true));
    assert_eq!(
        sh.wallet("restored", &["address"])["address"],
        alice.as_str()
    );
    assert_eq!(sh.balance("restored"), 500);
    let accounts = sh.wallet("restored", &["account", "balance"]);
    assert_eq!(accounts["accounts"][0]["balance"], 200);
    assert_eq!(sh.wallet("restored", &["history"]), history);

    // Encrypted to three guardians: a sealed share is no use to anyone but its guardian, who
    // opens (and checks) it to hand it over.
    let keys: Vec<String> = ["g1", "g2", "g3"]
        .iter()
        .map(|g| {
            sh.wallet(g, &["init"]);
            sh.wallet(g, &["backup", "guardian-key"])["guardian_key"]
                .as_str()
                .expect("guardian key")
                .to_string()
        })
        .collect();
    let sealed = sh.wallet(
        "restored",
        &[
            "backup",
            "split",
            "--threshold",
            "2",
            "--shares",
            "3",
            "--out",
            "sealed",
            "--guardian",
            &keys[0],
            "--guardian",
            &keys[1],
            "--guardian",
            &keys[2],
        ],
    );
    let sealed: Vec<String> = sealed["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("path").to_string())
        .collect();
    let text = std::fs::read_to_string(tmp.path().join(&sealed[0])).expect("read");
    let file: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(file["words"], "", "the words do not travel in the clear");
    sh.wallet_fails(
        "again",
        &["restore", "--share", &sealed[0], "--share", &sealed[1]],
        &[],
        2,
        "its guardian opens it first",
    );
    sh.wallet_fails(
        "g2",
        &[
            "backup",
            "open",
            "--share",
            &sealed[0],
            "--out",
            "stolen.json",
        ],
        &[],
        2,
        "not encrypted to this wallet",
    );
    sh.wallet(
        "g1",
        &[
            "backup",
            "open",
            "--share",
            &sealed[0],
            "--out",
            "open1.json",
        ],
    );
    sh.wallet(
        "g3",
        &[
            "backup",
            "open",
            "--share",
            &sealed[2],
            "--out",
            "open3.json",
        ],
    );
    sh.wallet(
        "again",
        &[
            "restore",
            "--share",
            "open1.json",
            "--share",
            "open3.json",
            "--no-sync",
        ],
    );
    assert_eq!(sh.wallet("again", &["address"])["address"], alice.as_str());
}
