//! The `peers` measurement: the same work done by Shoji and by what a user would pick instead,
//! in one process, alternating, with medians.
//!
//! - Proving a 2-in-2-out payment: Shoji's transfer proof (with its audit record) against
//!   Zcash Sapling's two Spend and two Output proofs, against Zcash Orchard's bundle of two
//!   actions (Halo 2), and against stock `ark-groth16` proving Shoji's own circuit.
//! - Verifying: one proof against stock `ark-groth16`; one transaction against Orchard's
//!   bundle; the batch verifier per proof and per transaction against Sapling's.
//! - A wallet's trial decryption of outputs that are not its own, against
//!   `zcash_note_encryption`'s batched decryption (compact and full).
//!
//! Every `…_ratio` field is ours / theirs: below 1 means Shoji is faster.
//!
//! Everything runs on rayon's global pool, as large as the machine unless `RAYON_NUM_THREADS`
//! says otherwise: Sapling's prover (bellman's worker) refuses to run inside a smaller pool, so
//! the one-thread figures come from a run with `RAYON_NUM_THREADS=1`. Trial decryption is
//! single-threaded on both sides.

pub mod orchard;
pub mod sapling;
pub mod trial;

use crate::median;
use anyhow::ensure;
use ark_bls12_381::Bls12_381;
use ark_groth16::Groth16;
use ark_serialize::CanonicalDeserialize;
use ark_std::rand::SeedableRng;
use rand010::SeedableRng as _;
use serde_json::{json, Value};
use shoji_prover::fixtures::Scenario;
use shoji_prover::Prover;
use shoji_verifier::{BatchItem, DecodedProof, Verifier};
use std::time::Instant;

/// Options of the `peers` measurement.
pub struct PeersOptions {
    /// Rounds of each alternation (the median is reported).
    pub rounds: usize,
    /// Proofs (and transactions) per batch in the batch-verification rounds.
    pub batch: usize,
    /// Outputs per trial-decryption round.
    pub outputs: usize,
}

/// Runs each closure once per round, in turn, and returns each one's median time in
/// milliseconds: the measured pairs share the machine's state round by round.
fn alternate(
    rounds: usize,
    work: &mut [&mut dyn FnMut() -> anyhow::Result<()>],
) -> anyhow::Result<Vec<f64>> {
    let mut samples = vec![Vec::with_capacity(rounds); work.len()];
    for _ in 0..rounds {
        for (f, s) in work.iter_mut().zip(&mut samples) {
            let t = Instant::now();
            f()?;
            s.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(samples.iter_mut().map(|s| median(s)).collect())
}

/// Everything the rounds need, made once.
struct Setup {
    rng: rand_chacha::ChaCha20Rng,
    zrng: rand010::rngs::StdRng,
    scenario: Scenario,
    prover: Prover,
    sapling: sapling::Params,
    sapling_wallet: sapling::Wallet,
    orchard: orchard::Keys,
}

/// Proving, one thread setting: Shoji, Sapling (2 + 2 proofs), Orchard (2 actions), stock
/// ark-groth16 on Shoji's circuit.
fn prove(s: &mut Setup, rounds: usize) -> anyhow::Result<Value> {
    let Setup {
        rng,
        zrng,
        scenario,
        prover,
        sapling,
        sapling_wallet,
        orchard,
    } = s;
    let rng = std::cell::RefCell::new(rng);
    let zrng = std::cell::RefCell::new(zrng);
    let ms = alternate(
        rounds,
        &mut [
            &mut || {
                let mut rng = rng.borrow_mut();
                let circuit = scenario.transfer(250, &mut **rng).circuit();
                prover.prove(circuit, &mut **rng)?;
                Ok(())
            },
            &mut || {
                let mut zrng = zrng.borrow_mut();
                let bundle = sapling_wallet.build(&mut zrng)?;
                sapling::Wallet::prove(sapling, bundle, &mut zrng);
                Ok(())
            },
            &mut || {
                let mut zrng = zrng.borrow_mut();
                let bundle = orchard::build(&mut zrng)?;
                orchard::prove(orchard, bundle, &mut zrng)?;
                Ok(())
            },
            &mut || {
                let mut rng = rng.borrow_mut();
                let circuit = scenario.transfer(250, &mut **rng).circuit();
                Groth16::<Bls12_381>::create_random_proof_with_reduction(
                    circuit,
                    prover.proving_key(),
                    &mut **rng,
                )?;
                Ok(())
            },
        ],
    )?;
    Ok(json!({
        "shoji_transfer": ms[0],
        "sapling_2_spends_2_outputs": ms[1],
        "orchard_2_actions": ms[2],
        "ark_groth16_shoji_circuit": ms[3],
        "sapling_prove_ratio": ms[0] / ms[1],
        "orchard_prove_ratio": ms[0] / ms[2],
        "ark_prove_ratio": ms[0] / ms[3],
    }))
}

/// Verification, one thread setting.
fn verify(s: &mut Setup, rounds: usize, batch: usize) -> anyhow::Result<Value> {
    let tx = s
        .scenario
        .transfer(250, &mut s.rng)
        .prove(&s.prover, &mut s.rng)?
        .into_transaction()?;
    let verifier = Verifier::new(&s.prover.proving_key().vk);
    let ark_proof = tx.bundle().proof.to_ark()?;
    let inputs = tx.public_inputs().to_field_elements();
    // Both sides decode the same bytes: the proof as a transaction carries it (uncompressed),
    // each point checked to be on its curve and in its subgroup.
    let shoji_bytes = tx.bundle().proof.0;
    let pvk = ark_groth16::prepare_verifying_key(&s.prover.proving_key().vk);

    let sapling_bundle = {
        let b = s.sapling_wallet.build(&mut s.zrng)?;
        let p = sapling::Wallet::prove(&s.sapling, b, &mut s.zrng);
        s.sapling_wallet.sign(p, &mut s.zrng)?
    };
    ensure!(
        sapling::batch_verify_bundles(&s.sapling, &sapling_bundle, 1, &mut s.zrng),
        "the Sapling bundle does not verify"
    );
    let orchard_bundle = {
        let b = orchard::build(&mut s.zrng)?;
        let p = orchard::prove(&s.orchard, b, &mut s.zrng)?;
        orchard::sign(p, &mut s.zrng)?
    };
    ensure!(
        orchard::verify(&s.orchard, &orchard_bundle),
        "the Orchard bundle does not verify"
    );

    let single = alternate(
        rounds * 10,
        &mut [
            &mut || {
                let p = DecodedProof::from_bytes(&shoji_bytes)?;
                ensure!(verifier.verify_proof(&p, &inputs).is_ok(), "Shoji proof");
                Ok(())
            },
            &mut || {
                let p =
                    ark_groth16::Proof::<Bls12_381>::deserialize_uncompressed(&shoji_bytes[..])?;
                ensure!(
                    Groth16::<Bls12_381>::verify_proof(&pvk, &p, &inputs)?,
                    "ark proof"
                );
                Ok(())
            },
        ],
    )?;
    let tx_vs_orchard = alternate(
        rounds,
        &mut [
            &mut || {
                ensure!(verifier.verify_transaction(&tx).is_ok(), "Shoji tx");
                Ok(())
            },
            &mut || {
                ensure!(
                    orchard::verify(&s.orchard, &orchard_bundle),
                    "Orchard bundle"
                );
                Ok(())
            },
        ],
    )?;

    let items: Vec<BatchItem> = (0..batch)
        .map(|_| BatchItem {
            proof: DecodedProof::from_ark(&Groth16::<Bls12_381>::rerandomize_proof(
                &s.prover.proving_key().vk,
                &ark_proof,
                &mut s.rng,
            )),
            inputs: inputs.clone(),
        })
        .collect();
    let txs = vec![tx; batch];
    let sapling_params = &s.sapling;
    let zrng = std::cell::RefCell::new(&mut s.zrng);
    let batched = alternate(
        rounds,
        &mut [
            &mut || {
                ensure!(
                    verifier.verify_batch(&items).iter().all(|r| r.is_ok()),
                    "batch"
                );
                Ok(())
            },
            &mut || {
                // `batch` Spend and `batch` Output proofs: twice the proofs of the other side.
                ensure!(
                    sapling::batch_verify_proofs(sapling_params, &sapling_bundle, batch)?,
                    "Sapling proofs"
                );
                Ok(())
            },
            &mut || {
                ensure!(
                    verifier.verify_transactions(&txs).iter().all(|r| r.is_ok()),
                    "transactions"
                );
                Ok(())
            },
            &mut || {
                let mut zrng = zrng.borrow_mut();
                ensure!(
                    sapling::batch_verify_bundles(
                        sapling_params,
                        &sapling_bundle,
                        batch,
                        &mut zrng
                    ),
                    "Sapling bundles"
                );
                Ok(())
            },
        ],
    )?;
    let n = batch as f64;
    let (ours_proof, sapling_proof) = (batched[0] / n, batched[1] / (2.0 * n));
    let (ours_tx, sapling_tx) = (batched[2] / n, batched[3] / n);
    Ok(json!({
        "shoji_proof_from_bytes": single[0],
        "ark_groth16_proof_from_bytes": single[1],
        "ark_verify_ratio": single[0] / single[1],
        "shoji_transaction": tx_vs_orchard[0],
        "orchard_bundle_2_actions": tx_vs_orchard[1],
        "orchard_verify_ratio": tx_vs_orchard[0] / tx_vs_orchard[1],
        "batch": batch,
        "shoji_batch_per_proof": ours_proof,
        "sapling_batch_per_proof": sapling_proof,
        "sapling_batch_verify_ratio": ours_proof / sapling_proof,
        "shoji_batch_per_transaction": ours_tx,
        "sapling_batch_per_bundle_2x2": sapling_tx,
        "sapling_batch_verify_tx_ratio": ours_tx / sapling_tx,
        "sizes_bytes": {
            "shoji_transaction": tx.to_bytes().len(),
            "shoji_proof": shoji_bytes.len(),
            "sapling_proofs_2x2": 4 * 192,
            "orchard_proof_2_actions": orchard::proof_bytes(&orchard_bundle),
        },
    }))
}

/// Trial decryption per output, on the current thread.
fn trial(s: &mut Setup, rounds: usize, outputs: usize) -> anyhow::Result<Value> {
    let ours = trial::ShojiOutputs::new(outputs, 0, &mut s.rng);
    let theirs = trial::SaplingOutputs::new(outputs, 0, &mut s.zrng)?;
    let ms = alternate(
        rounds,
        &mut [
            &mut || {
                ensure!(ours.scan() == 0, "a stranger's note decrypted");
                Ok(())
            },
            &mut || {
                ensure!(theirs.scan_compact() == 0, "a stranger's note decrypted");
                Ok(())
            },
            &mut || {
                ensure!(theirs.scan_full() == 0, "a stranger's note decrypted");
                Ok(())
            },
        ],
    )?;
    let us = |i: usize, n: usize| ms[i] * 1e3 / n as f64;
    let (o, c, f) = (us(0, ours.len()), us(1, theirs.len()), us(2, theirs.len()));
    Ok(json!({
        "outputs": outputs,
        "shoji": o,
        "sapling_compact": c,
        "sapling_full": f,
        "trial_decrypt_compact_ratio": o / c,
        "trial_decrypt_full_ratio": o / f,
    }))
}

/// Runs the measurement and returns one JSON object.
pub fn run(opts: &PeersOptions) -> anyhow::Result<Value> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    let mut zrng = rand010::rngs::StdRng::seed_from_u64(42);
    let dir = shoji_params::default_dir().join("peers");
    let sapling = sapling::Params::load_or_generate(&dir, &mut zrng)?;
    let sapling_wallet = sapling::Wallet::new(&mut zrng)?;
    let mut s = Setup {
        scenario: Scenario::new(&mut rng),
        prover: Prover::dev()?,
        orchard: orchard::Keys::build(),
        rng,
        zrng,
        sapling,
        sapling_wallet,
    };
    // Warm up every prover once (lazily built tables, page faults), then measure.
    prove(&mut s, 1)?;
    let prove = prove(&mut s, opts.rounds)?;
    let verify = verify(&mut s, opts.rounds, opts.batch)?;
    let trial = trial(&mut s, opts.rounds, opts.outputs)?;
    let (spend, output) = sapling::constraints()?;
    Ok(json!({
        "bench": "peers",
        "threads": rayon::current_num_threads(),
        "rounds": opts.rounds,
        "constraints": {
            "shoji_transfer": s.prover.num_constraints(),
            "sapling_spend": spend,
            "sapling_output": output,
            "sapling_2_spends_2_outputs": 2 * (spend + output),
        },
        "prove_ms": prove,
        "verify_ms": verify,
        "trial_decrypt_us_per_output": trial,
        "versions": {
            "sapling-crypto": "0.9", "groth16": "0.2", "orchard": "0.16",
            "zcash_note_encryption": "0.5", "ark-groth16": "0.6",
        },
    }))
}
