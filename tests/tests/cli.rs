//! The real binaries, end to end: `shoji-node devnet` runs four validators; `shoji-wallet` and
//! `shoji-auditor` processes play the story, then every documented failure is provoked and its
//! exit code and message checked — and nothing is lost by any of them.
//!
//! The binaries are the ones cargo builds beside this test (`cargo build --bins`, which
//! `cargo nextest run --workspace` does).

use serde_json::Value;

use shoji_tests::cli::{start_devnet, Shell};

#[test]
fn story_balances_report_disclosure_restore_and_every_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_devnet, network) = start_devnet(tmp.path());
    let sh = Shell {
        dir: tmp.path().to_path_buf(),
        network,
    };

    // Wallets.
    let alice = sh.wallet("alice", &["init"]);
    let phrase = alice["recovery_phrase"]
        .as_str()
        .expect("phrase")
        .to_string();
    assert_eq!(phrase.split(' ').count(), 24);
    let alice_addr = alice["address"].as_str().expect("address").to_string();
    let bob_addr = sh.wallet("bob", &["init"])["address"]
        .as_str()
        .expect("address")
        .to_string();
    let carol_addr = sh.wallet("carol", &["init"])["address"]
        .as_str()
        .expect("address")
        .to_string();
    sh.wallet("issuer", &["init"]);
    assert_eq!(
        sh.wallet("alice", &["address"])["address"],
        alice_addr.as_str()
    );

    // 1. The issuer mints 1,000 USD to Alice.
    let mint = sh.wallet(
        "issuer",
        &[
            "mint",
            "--issuer-key",
            "devnet/issuer.key",
            "--to",
            &alice_addr,
            "--amount",
            "1000",
            "--asset",
            "USD",
        ],
    );
    assert!(mint["certificate_signatures"].as_u64().expect("signatures") >= 3);
    // 2. Alice pays Bob 250.
    let pay1 = sh.wallet(
        "alice",
        &[
            "send",
            "--to",
            &bob_addr,
            "--amount",
            "250",
            "--asset",
            "USD",
            "--memo",
            "invoice 17",
        ],
    );
    let pay1_txid = pay1["txid"].as_str().expect("txid").to_string();
    // 3. Bob pays Carol 100.
    let pay2 = sh.wallet(
        "bob",
        &[
            "send",
            "--to",
            &carol_addr,
            "--amount",
            "100",
            "--asset",
            "840",
        ],
    );
    assert!(pay2["height"].as_u64() > pay1["height"].as_u64());
    for w in ["alice", "bob", "carol"] {
        sh.wallet(w, &["sync"]);
    }
    assert_eq!(
        ["alice", "bob", "carol"].map(|w| sh.balance(w)),
        [750, 150, 100]
    );
    let bob_history = sh.wallet("bob", &["history"]);
    let entries = bob_history["history"].as_array().expect("history");
    assert!(entries
        .iter()
        .any(|e| e["direction"] == "received" && e["amount"] == 250 && e["memo"] == "invoice 17"));
    assert!(entries
        .iter()
        .any(|e| e["direction"] == "sent" && e["amount"] == 100 && e["to"] == carol_addr.as_str()));
    // Change is not listed as a receipt.
    assert!(!entries.iter().any(|e| e["amount"] == 150));

    // The auditor's report shows exactly the two payments, by name.
    let names = serde_json::json!({ alice_addr.clone(): "Alice", bob_addr.clone(): "Bob", carol_addr.clone(): "Carol" });
    std::fs::write(tmp.path().join("names.json"), names.to_string()).expect("names");
    let au = |args: &[&str]| {
        let mut all = vec!["--names", "names.json", "--json"];
        all.extend_from_slice(args);
        sh.ok("shoji-auditor", &all).json()
    };
    au(&["keygen", "--insecure-devnet"]);
    let scan = au(&["scan"]);
    assert_eq!(scan["decrypted"], 3);
    // A development network: every program says so, with the genesis' reason.
    for (program, args) in [
        ("shoji-wallet", ["--wallet", "alice.wallet", "sync"]),
        ("shoji-auditor", ["--names", "names.json", "scan"]),
    ] {
        let r = sh.ok(program, &args);
        assert!(
            r.stderr
                .contains("WARNING: INSECURE NETWORK: development keys and parameters"),
            "{program}: {}",
            r.stderr
        );
    }
    let report = au(&["report"]);
    let payments: Vec<(String, String, u64)> = report["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .map(|p| {
            (
                p["from"].as_str().expect("from").to_string(),
                p["to"].as_str().expect("to").to_string(),
                p["amount"].as_u64().expect("amount"),
            )
        })
        .collect();
    assert_eq!(
        payments,
        vec![
            ("Alice".to_string(), "Bob".to_string(), 250),
            ("Bob".to_string(), "Carol".to_string(), 100)
        ]
    );
    let csv = sh.ok(
        "shoji-auditor",
        &[
            "--names",
            "names.json",
            "report",
            "--format",
            "csv",
            "--participant",
            "carol",
        ],
    );
    assert_eq!(csv.stdout.lines().count(), 2, "{}", csv.stdout);
    assert!(csv.stdout.contains(",Bob,Carol,100,USD"), "{}", csv.stdout);
    // By time: the blocks are stamped with the validators' clocks.
    let today = au(&["report", "--since", "2000-01-01", "--until", "2999-01-01"]);
    assert_eq!(today["payments"].as_array().map(Vec::len), Some(2));
    let future = au(&["report", "--since", "2999-01-01"]);
    assert_eq!(future["payments"].as_array().map(Vec::len), Some(0));
    let show = au(&["show", &pay1_txid]);
    assert!(
        show["time"].as_str().is_some_and(|t| t.starts_with("20")),
        "{show}"
    );
    assert_eq!(show["sender"], "Alice");
    assert_eq!(show["outputs"][0]["receiver"], "Bob");

    // A disclosure verifies; a tampered one does not.
    au(&["disclose", &pay1_txid, "--out", "d.json"]);
    let v = sh
        .ok("shoji-auditor", &["--json", "verify-disclosure", "d.json"])
        .json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["kind"], "transfer");
    // Proven tags first; the names are the auditor's labels, marked as such.
    assert_eq!(v["sender_label"], "Alice");
    assert_eq!(v["sender_tag"].as_str().map(str::len), Some(16));
    let text = sh
        .ok("shoji-auditor", &["verify-disclosure", "d.json"])
        .stdout;
    assert!(text.contains("the auditor's label: \"Alice\""), "{text}");
    let original: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("d.json")).expect("read"))
            .expect("json");
    type Tamper = fn(&mut Value);
    let tamperings: [(&str, Tamper); 4] = [
        ("amount", |d| d["claim"]["amounts"][0] = (251).into()),
        // A payment shown as an issuance: the kind is checked against the block.
        ("kind", |d| d["kind"] = "mint".into()),
        ("receiver", |d| {
            let s = d["claim"]["sender"].clone();
            d["claim"]["receivers"][0] = s;
        }),
        ("proof", |d| {
            let p = d["proof"].as_str().expect("proof").to_string();
            let flipped = if p.starts_with('0') { "1" } else { "0" };
            d["proof"] = format!("{flipped}{}", &p[1..]).into();
        }),
    ];
    for (what, tamper) in tamperings {
        let mut d = original.clone();
        tamper(&mut d);
        std::fs::write(tmp.path().join("bad.json"), d.to_string()).expect("write");
        let r = sh.run("shoji-auditor", &["verify-disclosure", "bad.json"], &[]);
        assert_eq!(
            r.code, 12,
            "tampered {what} accepted: {} {}",
            r.stdout, r.stderr
        );
        assert!(r.stderr.contains("INVALID"), "{}", r.stderr);
    }

    // Restoring from the phrase finds the same balance and history.
    std::fs::write(tmp.path().join("phrase.txt"), &phrase).expect("phrase");
    sh.wallet("alice2", &["restore", "--phrase-file", "phrase.txt"]);
    assert_eq!(sh.balance("alice2"), 750);
    assert_eq!(
        sh.wallet("alice2", &["history"])["history"],
        sh.wallet("alice", &["history"])["history"]
    );

    // A lying validator: a double of validator 3, with its real key, that adds a forged
    // payment (a copy of a real output under another commitment) to every block it serves.
    // Restored through it, a wallet checks the blocks against a stable checkpoint, names the
    // liar, scans from another validator and ends with the honest balance: before, it would
    // have credited the forged copy of the 1,000 USD mint.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&sh.network).expect("network file"))
            .expect("network JSON");
    let entries = file["validators"].as_array().expect("validators");
    let key_of = |e: &Value| {
        let hex = e["public_key"].as_str().expect("key");
        let bytes: [u8; 32] = shoji_primitives::encoding::hex_decode("key", hex)
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        shoji_net::VerifyingKey::from_bytes(&bytes).expect("key")
    };
    let validators: std::collections::BTreeMap<u16, _> = entries
        .iter()
        .map(|e| {
            let id = e["id"].as_u64().and_then(|i| u16::try_from(i).ok());
            (id.expect("id"), key_of(e))
        })
        .collect();
    let double = shoji_node::devnet::dev_validator_key(3);
    assert_eq!(
        validators[&3],
        double.verifying_key(),
        "the devnet's validator 3"
    );
    let honest = entries[0]["addr"]
        .as_str()
        .expect("addr")
        .parse()
        .expect("addr");
    // A colluding auditor's fabrication: a record of the disclosed payment that says 25,000
    // instead of 250, encrypted to its key, and a disclosure of it, proven with its key. The
    // double serves that record as the payment's.
    let auditor_key = shoji_client::network::insecure_devnet_auditor();
    let pay1: [u8; 32] = shoji_primitives::encoding::hex_decode("txid", &pay1_txid)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let record_hex = original["record"].as_str().expect("record");
    let record_raw = shoji_primitives::encoding::hex_decode("record", record_hex).expect("hex");
    let mut r = shoji_primitives::encoding::Reader::new("record", &record_raw);
    let real = shoji_primitives::audit::AuditRecord {
        epk: r.point("epk").expect("epk"),
        ciphertext: std::array::from_fn(|_| r.fr("c").expect("c")),
    };
    let mut claim = auditor_key.decrypt(&real).expect("the auditor's record");
    assert_eq!(claim.values[0].0, 250);
    claim.values[0] = shoji_primitives::note::Amount(25_000);
    let fake = shoji_primitives::audit::encrypt(
        &auditor_key.public_key(),
        &claim,
        &shoji_primitives::audit::AuditEphemeral::random(&mut rand_core::OsRng),
    );
    let fake_proof = auditor_key.disclose(&fake, &pay1, &mut rand_core::OsRng);
    let mut fabricated = original.clone();
    fabricated["claim"]["amounts"][0] = 25_000.into();
    fabricated["record"] = shoji_primitives::encoding::hex_encode(&fake.to_bytes()).into();
    fabricated["proof"] = shoji_primitives::encoding::hex_encode(&fake_proof.to_bytes()).into();
    std::fs::write(tmp.path().join("fabricated.json"), fabricated.to_string()).expect("write");
    let liar = shoji_tests::liar::LyingValidator::start(
        &double,
        validators.clone(),
        honest,
        validators[&0],
        (shoji_primitives::tx::TxId(pay1), fake),
    )
    .expect("the double starts");
    let mut lying_file = file.clone();
    lying_file["validators"][3]["addr"] = Value::String(liar.addr.to_string());
    let lying_network = tmp.path().join("lying.json");
    std::fs::write(&lying_network, lying_file.to_string()).expect("write");
    let lying_env = [("SHOJI_NETWORK", lying_network.to_str().expect("utf-8"))];
    let restored = sh.run(
        "shoji-wallet",
        &[
            "--wallet",
            "alice3.wallet",
            "--json",
            "--node",
            "3",
            "restore",
            "--phrase-file",
            "phrase.txt",
        ],
        &lying_env,
    );
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_eq!(sh.balance("alice3"), 750, "a forged payment was credited");
    assert!(
        restored
            .stderr
            .contains("validator 3 answered what the network did not certify"),
        "the liar is not named: {}",
        restored.stderr
    );

    // `verify-disclosure` through the double: the block it serves is checked against the
    // certified state, the liar is named, and the disclosure verifies from another validator.
    let through_liar = sh.run(
        "shoji-auditor",
        &["--json", "--node", "3", "verify-disclosure", "d.json"],
        &lying_env,
    );
    assert_eq!(through_liar.code, 0, "{}", through_liar.stderr);
    assert!(
        through_liar
            .stderr
            .contains("validator 3 answered what the network did not certify"),
        "the liar is not named: {}",
        through_liar.stderr
    );
    assert_eq!(through_liar.json()["valid"], true);

    // The fabricated disclosure: the double serves the fake record in the payment's block, and
    // a reader that believed it would find the disclosure valid. Checked against the certified
    // block, it is INVALID, and the liar is named.
    let lying_client = shoji_client::Client::connect(
        &shoji_client::Network::load(&lying_network).expect("network"),
        Some(3),
    )
    .expect("connect to the double");
    let height = original["height"].as_u64().expect("height");
    let served = lying_client.compact_blocks(height, 1).expect("blocks");
    assert!(
        served
            .iter()
            .flat_map(|b| &b.txs)
            .any(|t| t.txid.0 == pay1 && t.audit == fake),
        "the double does not serve the fabricated record"
    );
    // A block summary padded under the honest certificate does not verify; a payment reported
    // rejected is checked against the certified blocks, and the liar named.
    let padded = lying_client.block(height);
    assert!(
        matches!(
            padded,
            Err(shoji_client::ClientError::BadCertificate { node: 3, .. })
        ),
        "{padded:?}"
    );
    let honest_client = shoji_client::Client::connect(
        &shoji_client::Network::load(&sh.network).expect("network"),
        Some(0),
    )
    .expect("connect");
    assert!(honest_client.block(height).expect("block").is_some());
    drop(honest_client);
    let flipped = lying_client.transaction(shoji_primitives::tx::TxId(pay1));
    assert!(
        matches!(
            flipped,
            Err(shoji_client::ClientError::Lied { node: 3, .. })
        ),
        "{flipped:?}"
    );
    drop(lying_client);
    let fabricated = sh.run(
        "shoji-auditor",
        &["--node", "3", "verify-disclosure", "fabricated.json"],
        &lying_env,
    );
    assert_eq!(
        fabricated.code, 12,
        "fabricated record accepted: {} {}",
        fabricated.stdout, fabricated.stderr
    );
    assert!(
        fabricated.stderr.contains("INVALID"),
        "{}",
        fabricated.stderr
    );
    assert!(
        fabricated
            .stderr
            .contains("validator 3 answered what the network did not certify"),
        "the liar is not named: {}",
        fabricated.stderr
    );

    // Every error: its exit code, its message, and nothing lost.
    let usd = ["--asset", "USD"];
    sh.wallet_fails(
        "carol",
        &[
            "send",
            "--to",
            &alice_addr,
            "--amount",
            "101",
            usd[0],
            usd[1],
        ],
        &[],
        3,
        "insufficient funds",
    );
    sh.wallet_fails(
        "carol",
        &[
            "send",
            "--to",
            &alice_addr,
            "--amount",
            "1",
            "--asset",
            "EUR",
        ],
        &[],
        4,
        "unknown asset",
    );
    let mut typo = alice_addr.clone().into_bytes();
    let i = typo.len() - 5;
    typo[i] = if typo[i] == b'q' { b'p' } else { b'q' };
    let typo = String::from_utf8(typo).expect("ascii");
    sh.wallet_fails(
        "carol",
        &["send", "--to", &typo, "--amount", "1", usd[0], usd[1]],
        &[],
        5,
        "not a valid address",
    );
    sh.wallet_fails(
        "carol",
        &["balance"],
        &[("SHOJI_WALLET_PASSPHRASE", "wrong horse")],
        6,
        "wrong passphrase",
    );
    // Carol pays Alice 10 through the double, which reports the applied payment rejected:
    // the wallet finds it in the certified blocks, says it was paid and names the liar.
    // Alice's wallet is now a block behind the network.
    let paid = sh.run(
        "shoji-wallet",
        &[
            "--wallet",
            "carol.wallet",
            "--node",
            "3",
            "send",
            "--to",
            &alice_addr,
            "--amount",
            "10",
            "--asset",
            "USD",
        ],
        &lying_env,
    );
    assert_eq!(paid.code, 0, "{} {}", paid.stdout, paid.stderr);
    assert!(
        paid.stdout.contains("Committed in block"),
        "{}",
        paid.stdout
    );
    assert!(
        paid.stderr.contains("validator 3 reported transaction")
            && paid.stderr.contains("does not reject it"),
        "the false rejection is not named: {}",
        paid.stderr
    );
    sh.wallet_fails(
        "alice",
        &[
            "send",
            "--no-sync",
            "--to",
            &bob_addr,
            "--amount",
            "1",
            usd[0],
            usd[1],
        ],
        &[],
        9,
        "shoji-wallet sync",
    );
    // An issuer the network file lists but genesis never authorized: the validators refuse it.
    let rogue = "11".repeat(32);
    std::fs::write(tmp.path().join("rogue.key"), &rogue).expect("key");
    let rogue_pk = shoji_primitives::encoding::hex_encode(
        ed25519_dalek::SigningKey::from_bytes(&[0x11; 32])
            .verifying_key()
            .as_bytes(),
    );
    let mut net: Value =
        serde_json::from_slice(&std::fs::read(&sh.network).expect("read")).expect("json");
    net["issuers"]
        .as_array_mut()
        .expect("issuers")
        .push(serde_json::json!({"public_key": rogue_pk, "assets": [840]}));
    std::fs::write(tmp.path().join("rogue.json"), net.to_string()).expect("write");
    let rogue_mint = [
        "--network",
        "rogue.json",
        "mint",
        "--issuer-key",
        "rogue.key",
        "--to",
        &alice_addr,
        "--amount",
        "5",
        usd[0],
        usd[1],
    ];
    sh.wallet_fails(
        "issuer",
        &rogue_mint,
        &[],
        8,
        "refused: issuer is not registered for asset 840",
    );
    // Governance registers it: a proposal approved by two of the three administrators. One
    // approval is not enough; a proposal for another network is refused before submitting.
    sh.ok(
        "shoji-node",
        &[
            "governance",
            "propose",
            "--network",
            sh.network.to_str().expect("utf-8"),
            "--set-issuer",
            &rogue_pk,
            "--assets",
            "840",
            "--out",
            "register.json",
        ],
    );
    let approve = |key: &str| {
        sh.ok(
            "shoji-node",
            &["governance", "approve", "register.json", "--admin-key", key],
        )
    };
    let network_arg = sh.network.to_str().expect("utf-8").to_string();
    let submit = |file: &str| {
        sh.run(
            "shoji-node",
            &["governance", "submit", file, "--network", &network_arg],
            &[],
        )
    };
    approve("devnet/admin-0.key");
    let r = submit("register.json");
    assert_eq!(r.code, 8, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("1 approvals, 2 needed"), "{}", r.stderr);
    approve("devnet/admin-2.key");
    let shown = sh.ok("shoji-node", &["governance", "show", "register.json"]);
    assert!(shown
        .stdout
        .contains(&format!("issuer {rogue_pk} may mint and redeem assets 840")));
    assert_eq!(shown.stdout.matches("approved by").count(), 2);
    let mut elsewhere: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("register.json")).expect("read"))
            .expect("json");
    elsewhere["network_id"] = Value::String("00".repeat(32));
    std::fs::write(tmp.path().join("elsewhere.json"), elsewhere.to_string()).expect("write");
    let r = submit("elsewhere.json");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("another network"), "{}", r.stderr);
    let enacted = submit("register.json");
    assert_eq!(enacted.code, 0, "{}{}", enacted.stdout, enacted.stderr);
    assert!(
        enacted.stdout.contains("enacted at height"),
        "{}",
        enacted.stdout
    );
    // The same approvals again are a replay.
    let r = submit("register.json");
    assert_eq!(r.code, 8, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("sequence number 0, expected 1"),
        "{}",
        r.stderr
    );
    // Now the validators accept its mints.
    sh.wallet("issuer", &rogue_mint);
    // Governance registers Bob's bank by name; Alice pays the name, resolved from the certified
    // registry (once a stable checkpoint covers it); a name nobody registered is refused.
    sh.ok(
        "shoji-node",
        &[
            "governance",
            "propose",
            "--network",
            &network_arg,
            "--register-participant",
            "Bank B",
            "--identity-key",
            &rogue_pk,
            "--participant-address",
            &bob_addr,
            "--out",
            "bank-b.json",
        ],
    );
    for key in ["devnet/admin-0.key", "devnet/admin-1.key"] {
        sh.ok(
            "shoji-node",
            &["governance", "approve", "bank-b.json", "--admin-key", key],
        );
    }
    let enacted = submit("bank-b.json");
    assert_eq!(enacted.code, 0, "{}{}", enacted.stdout, enacted.stderr);
    let pay_name = ["send", "--to", "Bank B", "--amount", "5", "--asset", "USD"];
    let mut paid = false;
    for _ in 0..60 {
        let mut args = vec!["--wallet", "alice.wallet"];
        args.extend_from_slice(&pay_name);
        let r = sh.run("shoji-wallet", &args, &[]);
        if r.code == 0 {
            paid = true;
            break;
        }
        assert!(
            r.stderr.contains("no participant is registered"),
            "{}",
            r.stderr
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(paid, "the registered name never resolved");
    // The auditor names the payment from the certified registry; its names file overrides it.
    au(&["scan"]);
    let to_bank_b = |report: &Value| -> Vec<String> {
        report["payments"]
            .as_array()
            .expect("payments")
            .iter()
            .filter(|p| p["amount"] == 5 && p["kind"] == "transfer")
            .map(|p| p["to"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let plain = sh.ok("shoji-auditor", &["--json", "report"]).json();
    assert!(to_bank_b(&plain).contains(&"Bank B".to_string()), "{plain}");
    let named = au(&["report"]);
    assert!(to_bank_b(&named).contains(&"Bob".to_string()), "{named}");
    sh.wallet_fails(
        "alice",
        &["send", "--to", "Bank Z", "--amount", "5", "--asset", "USD"],
        &[],
        2,
        "no participant is registered as \"Bank Z\"",
    );
    // No validator reachable: one validator at a port nothing listens on.
    let mut dead = net.clone();
    dead["validators"] = serde_json::json!([{
        "id": 0, "addr": "127.0.0.1:9", "public_key": net["validators"][0]["public_key"]
    }]);
    std::fs::write(tmp.path().join("dead.json"), dead.to_string()).expect("write");
    sh.wallet_fails(
        "alice",
        &["--network", "dead.json", "sync"],
        &[],
        7,
        "no validator is reachable",
    );
    // The wallet in use by another process (this one holds its lock).
    let held = shoji_client::sealed::SealedFile::open(
        &tmp.path().join("alice.wallet"),
        b"SHOJIWLT",
        b"correct horse",
    )
    .expect("open alice's wallet");
    sh.wallet_fails("alice", &["balance"], &[], 10, "in use");
    drop(held);
    sh.wallet_fails("nobody", &["balance"], &[], 11, "no wallet");
    sh.wallet_fails("alice", &["init"], &[], 11, "already exists");

    // Nothing was lost: every failure left the balances as they were (Alice has the 5 the
    // newly registered issuer minted, and paid 5 to Bank B, which is Bob).
    sh.wallet("alice", &["sync"]);
    sh.wallet("bob", &["sync"]);
    sh.wallet("carol", &["sync"]);
    assert_eq!(
        ["alice", "bob", "carol"].map(|w| sh.balance(w)),
        [760, 155, 90]
    );

    // The history archive the devnet writes (`devnet/archive`) lists and checks against the
    // network's certificates; an archived block altered in storage is named.
    let network_file = sh.network.to_str().expect("network path").to_string();
    let listed = sh.ok(
        "shoji-node",
        &["archive", "list", "--network", &network_file],
    );
    assert!(
        listed.stdout.contains("checkpoints: ") && listed.stdout.contains("blocks: "),
        "{}",
        listed.stdout
    );
    let verify = [
        "archive",
        "verify",
        "--network",
        &network_file,
        "--to",
        "40",
    ];
    let verified = sh.ok("shoji-node", &verify);
    assert!(
        verified.stdout.contains("heights 1..=40 check: 40 blocks"),
        "{}",
        verified.stdout
    );
    let object = tmp.path().join(format!("devnet/archive/blocks/{:020}", 3));
    let original = std::fs::read(&object).expect("archived block 3");
    let mut altered = original.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    std::fs::write(&object, altered).expect("write");
    let refused = sh.run("shoji-node", &verify, &[]);
    assert!(
        refused.code == 1 && refused.stderr.contains("height 3"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    std::fs::write(&object, original).expect("write");

    // Carol redeems 40 with the issuer; the auditor sees it leave.
    sh.wallet("carol", &["redeem", "--amount", "40", "--asset", "USD"]);
    assert_eq!(sh.balance("carol"), 50);
    au(&["scan"]);
    let report = au(&["report", "--participant", "Carol"]);
    let redeems: Vec<&Value> = report["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .filter(|p| p["kind"] == "redeem")
        .collect();
    assert_eq!(redeems.len(), 1, "{report}");
    assert_eq!(redeems[0]["from"], "Carol");
    assert_eq!(redeems[0]["to"], "issuer");
    assert_eq!(redeems[0]["amount"], 40);
}
