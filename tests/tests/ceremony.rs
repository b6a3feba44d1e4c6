//! The ceremony as its participants run it: `shoji-ceremony` processes, one per contributor,
//! through phase 1, phase 2 and finalization; the keys it writes prove and verify transfers
//! with Shoji's own prover and verifier, and transcripts that do not verify are refused. A
//! network made with `shoji-node init --params` from those keys runs the mint → pay → audit
//! story with the real binaries. The development key's trapdoor, recomputed from its public
//! seed, forges a proof of a mint of `u64::MAX` that the development verifier accepts and the
//! ceremony network's validators refuse.

use ark_serialize::CanonicalDeserialize;
use shoji_primitives::encoding::hex_encode;
use shoji_tests::binary;
use shoji_tests::cli::{free_ports, Kill, Shell};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary("shoji-ceremony"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run shoji-ceremony")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "shoji-ceremony {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The hash a contributor is told to publish.
fn published(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Your contribution's hash (publish it): "))
        .unwrap_or_else(|| panic!("no published hash in {stdout}"))
        .to_string()
}

#[test]
fn three_contributors_make_keys_that_prove_transfers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    // Phase 1, sized for the transfer circuit (a domain of 2^14), three contributors.
    ok(dir, &["phase1", "new", "--power", "14", "--out", "tau.0"]);
    let mut phase1 = Vec::new();
    for i in 0..3 {
        let (from, to) = (format!("tau.{i}"), format!("tau.{}", i + 1));
        let out = ok(
            dir,
            &[
                "phase1",
                "contribute",
                &from,
                "--out",
                &to,
                "--entropy",
                "6 2 5 1 4",
            ],
        );
        phase1.push(published(&out));
    }
    let listed = ok(dir, &["phase1", "verify", "tau.3"]);
    for (i, h) in phase1.iter().enumerate() {
        assert!(
            listed.contains(&format!("contribution {}: {h}", i + 1)),
            "{listed}"
        );
    }

    // Phase 2 of the transfer circuit, three contributors; the second does not check the keys
    // against phase 1 before contributing, the others do.
    ok(
        dir,
        &["phase2", "new", "--phase1", "tau.3", "--out", "transfer.0"],
    );
    let mut phase2 = Vec::new();
    for i in 0..3 {
        let (from, to) = (format!("transfer.{i}"), format!("transfer.{}", i + 1));
        let mut args = vec!["phase2", "contribute", &from, "--out", &to];
        if i != 1 {
            args.extend(["--phase1", "tau.3"]);
        }
        phase2.push(published(&ok(dir, &args)));
    }
    let listed = ok(
        dir,
        &["phase2", "verify", "transfer.3", "--phase1", "tau.3"],
    );
    for (i, h) in phase2.iter().enumerate() {
        assert!(
            listed.contains(&format!("contribution {}: {h}", i + 1)),
            "{listed}"
        );
    }

    // A transcript is never overwritten; a phase 2 checked against another phase 1 is refused.
    let before = std::fs::read(dir.join("transfer.2")).expect("read");
    let again = run(
        dir,
        &["phase2", "contribute", "transfer.1", "--out", "transfer.2"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read(dir.join("transfer.2")).expect("read"), before);
    let other = run(
        dir,
        &["phase2", "verify", "transfer.3", "--phase1", "tau.2"],
    );
    assert_eq!(other.status.code(), Some(3));
    let why = String::from_utf8_lossy(&other.stderr);
    assert!(why.contains("started from phase-1 transcript"), "{why}");
    // A phase-1 transcript with one point changed: refused, with the check that failed.
    let mut bytes = std::fs::read(dir.join("tau.3")).expect("read");
    let g1 = 96;
    let at = 16 + 8 + 5 * g1;
    let other_point = bytes[16 + 8 + 7 * g1..16 + 8 + 8 * g1].to_vec();
    bytes[at..at + g1].copy_from_slice(&other_point);
    std::fs::write(dir.join("tau.bad"), &bytes).expect("write");
    let bad = run(dir, &["phase1", "verify", "tau.bad"]);
    assert_eq!(bad.status.code(), Some(3));
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(why.contains("not consecutive powers"), "{why}");

    // Finalized keys prove a transfer with Shoji's prover, and Shoji's verifier accepts it
    // under these keys only.
    let out = ok(
        dir,
        &[
            "phase2",
            "finalize",
            "transfer.3",
            "--phase1",
            "tau.3",
            "--out",
            "params",
        ],
    );
    assert!(out.contains("Verifying key hash (blake3): "), "{out}");
    let pk_bytes = std::fs::read(dir.join("params/transfer.pk")).expect("proving key");
    let vk_bytes = std::fs::read(dir.join("params/transfer.vk")).expect("verifying key");
    assert!(
        out.contains(&blake3::hash(&vk_bytes).to_hex().to_string()),
        "{out}"
    );
    let pk = ark_groth16::ProvingKey::<ark_bls12_381::Bls12_381>::deserialize_uncompressed(
        &pk_bytes[..],
    )
    .expect("proving key decodes");
    let vk = ark_groth16::VerifyingKey::<ark_bls12_381::Bls12_381>::deserialize_compressed(
        &vk_bytes[..],
    )
    .expect("verifying key decodes");
    assert_eq!(pk.vk, vk);
    let mut rng = rand_core::OsRng;
    let prover = shoji_prover::Prover::new(pk).expect("prover");
    let tx = shoji_prover::fixtures::Scenario::new(&mut rng)
        .transfer(250, &mut rng)
        .prove(&prover, &mut rng)
        .expect("proved")
        .into_transaction()
        .expect("transaction");
    shoji_verifier::Verifier::new(&vk)
        .verify_transaction(&tx)
        .expect("the ceremony's verifier accepts it");
    let dev = shoji_params::dev::parameters().expect("development parameters");
    assert!(
        shoji_verifier::Verifier::new(&dev.vk)
            .verify_transaction(&tx)
            .is_err(),
        "the development key accepts a proof made under the ceremony's keys"
    );

    // The development trapdoor's forgery does not pass under the ceremony's key.
    assert!(
        shoji_verifier::Verifier::new(&vk)
            .verify_transaction(&fixture_forgery())
            .is_err(),
        "the ceremony's key accepts a forgery"
    );

    ceremony_network_story(dir);
}

/// A network initialized from the ceremony's keys in `dir/params`, with its own issuer and
/// auditor keys (so not marked insecure), run as four `shoji-node run` processes: the issuer
/// mints, Alice pays Bob, the auditor reports the payment. Wallets find the proving key beside
/// the network file and refuse another; the validators refuse the development forgery.
fn ceremony_network_story(dir: &Path) {
    let sh = Shell {
        dir: dir.to_path_buf(),
        network: dir.join("net").join("network.json"),
    };
    let auditor = sh.ok("shoji-auditor", &["--json", "keygen"]).json();
    let auditor_pk = auditor["public_key"]
        .as_str()
        .expect("public key")
        .to_string();
    let issuer = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    std::fs::write(dir.join("issuer.key"), hex_encode(&issuer.to_bytes())).expect("issuer key");
    let addresses: Vec<String> = free_ports(4)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let operations: Vec<String> = free_ports(4)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let issuer_pk = hex_encode(issuer.verifying_key().as_bytes());
    sh.ok(
        "shoji-node",
        &[
            "init",
            "--dir",
            "net",
            "--addresses",
            &addresses.join(","),
            "--operations",
            &operations.join(","),
            "--params",
            "params",
            "--auditor-public-key",
            &auditor_pk,
            "--issuer-public-key",
            &issuer_pk,
            "--issuer-assets",
            "840",
        ],
    );
    let genesis = std::fs::read_to_string(dir.join("net/genesis.toml")).expect("genesis");
    assert!(!genesis.contains("insecure"), "{genesis}");
    let _validators: Vec<Kill> = (0..4)
        .map(|i| {
            let log = std::fs::File::create(dir.join(format!("validator-{i}.log"))).expect("log");
            Kill(
                Command::new(binary("shoji-node"))
                    .current_dir(dir)
                    .args(["run", "--config"])
                    .arg(format!("net/validator-{i}/config.toml"))
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("spawn shoji-node run"),
            )
        })
        .collect();

    let address = |name: &str| {
        sh.wallet(name, &["init"])["address"]
            .as_str()
            .expect("address")
            .to_string()
    };
    let (alice, bob) = (address("alice"), address("bob"));
    address("issuer");
    // Wait for the validators to answer.
    let start = Instant::now();
    loop {
        let r = sh.run("shoji-wallet", &["--wallet", "alice.wallet", "sync"], &[]);
        if r.code == 0 {
            assert!(!r.stderr.contains("INSECURE"), "{}", r.stderr);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the network did not start: {}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mint = [
        "mint",
        "--issuer-key",
        "issuer.key",
        "--to",
        &alice,
        "--amount",
        "1000",
        "--asset",
        "USD",
    ];
    sh.wallet("issuer", &mint);
    // A proving key other than the one the network names is refused before anything is proved:
    // here the development key, copied where the wallet is told to look.
    std::fs::create_dir_all(dir.join("other")).expect("dir");
    std::fs::copy(
        shoji_params::default_dir().join(shoji_params::pk_file()),
        dir.join("other").join("transfer.pk"),
    )
    .expect("copy the development proving key");
    let pay = [
        "send", "--to", &bob, "--amount", "250", "--asset", "USD", "--memo", "ceremony",
    ];
    let mut wrong = vec!["--params", "other"];
    wrong.extend(pay);
    sh.wallet_fails("alice", &wrong, &[], 1, "it is not this network's key");
    sh.wallet("alice", &pay);
    sh.wallet("bob", &["sync"]);
    assert_eq!([sh.balance("alice"), sh.balance("bob")], [750, 250]);

    std::fs::write(
        dir.join("names.json"),
        serde_json::json!({ alice.clone(): "Alice", bob.clone(): "Bob" }).to_string(),
    )
    .expect("names");
    let au = |args: &[&str]| {
        let mut all = vec!["--names", "names.json", "--json"];
        all.extend_from_slice(args);
        sh.ok("shoji-auditor", &all).json()
    };
    assert_eq!(au(&["scan"])["decrypted"], 2);
    let report = au(&["report"]);
    let payments = report["payments"].as_array().expect("payments");
    assert_eq!(payments.len(), 1, "{report}");
    assert_eq!(payments[0]["from"], "Alice");
    assert_eq!(payments[0]["to"], "Bob");
    assert_eq!(payments[0]["amount"], 250);

    // The development trapdoor's forgery, signed by this network's issuer and bound to this
    // network: the validators refuse it for its proof.
    let network = shoji_client::Network::load(&sh.network).expect("network file");
    let client = shoji_client::Client::connect(&network, None).expect("connect");
    let tip = client.tree_state().expect("tree state");
    let forged = forged_mint(&issuer, network.auditor, tip.anchor, network.network_id);
    match client.submit(&forged) {
        Err(shoji_client::ClientError::Refused(why)) => {
            assert!(why.contains("proof does not verify"), "{why}")
        }
        other => panic!("the forged mint was not refused: {other:?}"),
    }
}

/// Anyone recomputes the development parameters' trapdoor from the public seed and "proves" a
/// mint of `u64::MAX` without a witness; the development verifier accepts it.
#[test]
fn the_development_trapdoor_forges_a_mint_of_u64_max() {
    let dev = shoji_params::dev::parameters().expect("development parameters");
    let forged = fixture_forgery();
    let shoji_primitives::tx::Transaction::Mint { bundle, .. } = &forged else {
        panic!("not a mint")
    };
    assert_eq!(bundle.value_in.0, u64::MAX);
    shoji_verifier::Verifier::new(&dev.vk)
        .verify_transaction(&forged)
        .expect("the development key accepts the forged mint of u64::MAX");
    // The forgery is the trapdoor's, not a flaw of the check: one input changed, it fails.
    let shoji_primitives::tx::Transaction::Mint { mut bundle, auth } = forged else {
        unreachable!()
    };
    bundle.value_in = shoji_primitives::note::Amount(u64::MAX - 1);
    assert!(shoji_verifier::Verifier::new(&dev.vk)
        .verify_transaction(&shoji_primitives::tx::Transaction::Mint { bundle, auth })
        .is_err());
}

/// [`forged_mint`] by the fixture's issuer, for the fixture's auditor and tree.
fn fixture_forgery() -> shoji_primitives::tx::Transaction {
    let scenario = shoji_prover::fixtures::Scenario::new(&mut rand_core::OsRng);
    forged_mint(
        &scenario.issuer,
        scenario.auditor.public_key(),
        scenario.frontier.root(),
        [0; 32],
    )
}

/// A mint of `u64::MAX` of USD (840) on `network` with a proof forged from the development
/// trapdoor, signed by `issuer`: an honest mint of 1 whose amount is raised after proving.
fn forged_mint(
    issuer: &ed25519_dalek::SigningKey,
    auditor: shoji_primitives::audit::AuditPublicKey,
    anchor: shoji_primitives::Fr,
    network: [u8; 32],
) -> shoji_primitives::tx::Transaction {
    use shoji_primitives::keys::{SpendingKeys, WalletSeed};
    use shoji_primitives::note::{Amount, AssetId};
    use shoji_primitives::tx::Transaction;
    let mut rng = rand_core::OsRng;
    let dev = shoji_params::dev::parameters().expect("development parameters");
    let keys = SpendingKeys::from_seed(&WalletSeed::random(&mut rng));
    let mut b = shoji_prover::TransferBuilder::mint(
        &keys,
        AssetId(840),
        Amount(1),
        anchor,
        auditor,
        issuer.verifying_key().to_bytes(),
    );
    b.pay(
        keys.address(),
        Amount(1),
        shoji_primitives::encryption::Memo::empty(),
    )
    .expect("one output")
    .network(network);
    let dev_prover = shoji_prover::Prover::dev().expect("development prover");
    let honest = b
        .build(&mut rng)
        .expect("balanced")
        .prove(&dev_prover, &mut rng)
        .expect("proved")
        .sign_mint(issuer)
        .expect("signed");
    let Transaction::Mint { mut bundle, auth } = honest else {
        panic!("not a mint")
    };
    bundle.value_in = shoji_primitives::note::Amount(u64::MAX);
    let inputs = Transaction::Mint { bundle, auth }
        .public_inputs()
        .to_field_elements();
    bundle.proof =
        shoji_primitives::tx::Proof::from_ark(&forge_with_dev_trapdoor(&dev.vk, &inputs));
    let mut forged = Transaction::Mint { bundle, auth };
    let sig = ed25519_dalek::Signer::sign(issuer, &forged.sighash()).to_bytes();
    if let Transaction::Mint { auth, .. } = &mut forged {
        auth.signature = sig;
    }
    forged
}

/// A proof for any public inputs under the development key, from its trapdoor: ark-groth16's
/// generator draws α, β, γ, δ and then the two generators from ChaCha20 seeded with the public
/// `INSECURE_DEV_SEED`. With `A = a·G₁`, `B = b·G₂` for any a, b, and
/// `C = ((ab − αβ)/δ)·G₁ − (γ/δ)·IC`, the verification equation holds.
fn forge_with_dev_trapdoor(
    vk: &ark_groth16::VerifyingKey<ark_bls12_381::Bls12_381>,
    inputs: &[ark_bls12_381::Fr],
) -> ark_groth16::Proof<ark_bls12_381::Bls12_381> {
    use ark_bls12_381::{Fr, G1Projective, G2Projective};
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_ff::Field;
    use ark_std::UniformRand;
    use rand_chacha::rand_core::SeedableRng;
    let mut seeded = rand_chacha::ChaCha20Rng::from_seed(shoji_params::dev::INSECURE_DEV_SEED);
    let (alpha, beta, gamma, delta) = (
        Fr::rand(&mut seeded),
        Fr::rand(&mut seeded),
        Fr::rand(&mut seeded),
        Fr::rand(&mut seeded),
    );
    let g1 = G1Projective::rand(&mut seeded);
    let g2 = G2Projective::rand(&mut seeded);
    assert_eq!(
        (g1 * alpha).into_affine(),
        vk.alpha_g1,
        "the trapdoor is recomputed"
    );
    assert_eq!(
        (g2 * delta).into_affine(),
        vk.delta_g2,
        "the trapdoor is recomputed"
    );
    let ic = inputs
        .iter()
        .zip(&vk.gamma_abc_g1[1..])
        .fold(vk.gamma_abc_g1[0].into_group(), |acc, (x, base)| {
            acc + *base * x
        });
    let (a, b) = (Fr::from(3u64), Fr::from(5u64));
    let delta_inv = delta.inverse().expect("nonzero");
    let c = g1 * ((a * b - alpha * beta) * delta_inv) - ic * (gamma * delta_inv);
    ark_groth16::Proof {
        a: (g1 * a).into_affine(),
        b: (g2 * b).into_affine(),
        c: c.into_affine(),
    }
}
