//! The ceremony as its participants run it: `shoji-ceremony` processes, one per contributor,
//! through phase 1, phase 2 and finalization; the keys it writes prove and verify transfers
//! with Shoji's own prover and verifier, and transcripts that do not verify are refused.

use ark_serialize::CanonicalDeserialize;
use shoji_tests::binary;
use std::path::Path;
use std::process::{Command, Output};

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
}
