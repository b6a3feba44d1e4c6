//! The ceremony as its participants run it: `shoji-ceremony` processes, one per contributor,
//! through phase 1, phase 2 and finalization; the keys it writes prove and verify transfers
//! with Shoji's own prover and verifier, and transcripts that do not verify are refused. The
//! development key's trapdoor, recomputed from its public seed, forges a proof of a mint of
//! `u64::MAX` that the development verifier accepts and the ceremony's refuses.

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

    // The development trapdoor's forgery does not pass under the ceremony's key.
    assert!(
        shoji_verifier::Verifier::new(&vk)
            .verify_transaction(&forged_mint())
            .is_err(),
        "the ceremony's key accepts a forgery"
    );
}

/// Anyone recomputes the development parameters' trapdoor from the public seed and "proves" a
/// mint of `u64::MAX` without a witness; the development verifier accepts it.
#[test]
fn the_development_trapdoor_forges_a_mint_of_u64_max() {
    let dev = shoji_params::dev::parameters().expect("development parameters");
    let forged = forged_mint();
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

/// A mint of `u64::MAX` with a proof forged from the development trapdoor, signed by the
/// fixture's issuer (only the proof matters here).
fn forged_mint() -> shoji_primitives::tx::Transaction {
    use shoji_primitives::tx::Transaction;
    let mut rng = rand_core::OsRng;
    let dev = shoji_params::dev::parameters().expect("development parameters");
    let scenario = shoji_prover::fixtures::Scenario::new(&mut rng);
    let issuer = scenario.issuer.clone();
    let dev_prover = shoji_prover::Prover::dev().expect("development prover");
    let honest = scenario
        .mint(1, &mut rng)
        .prove(&dev_prover, &mut rng)
        .expect("proved")
        .sign_mint(&issuer)
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
    let sig = ed25519_dalek::Signer::sign(&issuer, &forged.sighash()).to_bytes();
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
