//! The `zk` measurement: circuit size, proving time (with its breakdown), verification, batch
//! verification, sizes.

use crate::median;
use ark_bls12_381::Bls12_381;
use ark_groth16::Groth16;
use ark_std::rand::SeedableRng;
use shoji_primitives::tx::Transaction;
use shoji_prover::fixtures::Scenario;
use shoji_prover::{ProveTimings, Prover};
use shoji_verifier::{BatchItem, DecodedProof, Verifier};
use std::time::Instant;

/// Options of the `zk` measurement.
pub struct ZkOptions {
    /// Proofs per thread setting.
    pub proofs: usize,
    /// Single verifications.
    pub verifies: usize,
    /// Batches of 64.
    pub batches: usize,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn prove_many(
    prover: &Prover,
    s: &Scenario,
    n: usize,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> anyhow::Result<Vec<ProveTimings>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let u = s.transfer(250, rng);
        let (_, t) = prover.prove(u.circuit(), rng)?;
        out.push(t);
    }
    Ok(out)
}

fn breakdown(ts: &[ProveTimings]) -> serde_json::Value {
    let m = |f: &dyn Fn(&ProveTimings) -> std::time::Duration| {
        median(&mut ts.iter().map(|t| ms(f(t))).collect::<Vec<_>>())
    };
    serde_json::json!({
        "total": m(&|t| t.total),
        "witness": m(&|t| t.witness),
        "fft": m(&|t| t.fft),
        "msm_a_g1": m(&|t| t.msm_a),
        "msm_b_g1": m(&|t| t.msm_b_g1),
        "msm_b_g2": m(&|t| t.msm_b_g2),
        "msm_l_g1": m(&|t| t.msm_l),
        "msm_h_g1": m(&|t| t.msm_h),
    })
}

/// Runs the measurement and returns one JSON object.
pub fn run(opts: &ZkOptions) -> anyhow::Result<serde_json::Value> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    let s = Scenario::new(&mut rng);
    let prover = Prover::dev()?;
    let threads = rayon::current_num_threads();

    // Warm up (caches, lazily built tables), then measure.
    prove_many(&prover, &s, 1, &mut rng)?;
    let default_t = prove_many(&prover, &s, opts.proofs, &mut rng)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let one_t =
        pool.install(|| prove_many(&prover, &s, opts.proofs.div_ceil(2).max(1), &mut rng))?;

    let tx: Transaction = s
        .transfer(250, &mut rng)
        .prove(&prover, &mut rng)?
        .into_transaction()?;
    let verifier = Verifier::new(&prover.proving_key().vk);
    let mut single = Vec::with_capacity(opts.verifies);
    for _ in 0..opts.verifies {
        let t = Instant::now();
        verifier.verify_transaction(&tx)?;
        single.push(ms(t.elapsed()));
    }
    let proof = tx.bundle().proof.to_ark()?;
    let inputs = tx.public_inputs().to_field_elements();
    let vk = verifier.verifying_key().clone();
    let mut per_proof = Vec::with_capacity(opts.batches);
    let mut per_proof_1t = Vec::with_capacity(opts.batches);
    for _ in 0..opts.batches {
        let items: Vec<BatchItem> = (0..64)
            .map(|_| BatchItem {
                proof: DecodedProof::from_ark(&Groth16::<Bls12_381>::rerandomize_proof(
                    &vk, &proof, &mut rng,
                )),
                inputs: inputs.clone(),
            })
            .collect();
        let t = Instant::now();
        let ok = verifier.verify_batch(&items).iter().all(|r| r.is_ok());
        per_proof.push(ms(t.elapsed()) / 64.0);
        anyhow::ensure!(ok, "batch of valid proofs rejected");
        let t = Instant::now();
        pool.install(|| verifier.verify_batch(&items));
        per_proof_1t.push(ms(t.elapsed()) / 64.0);
    }

    // The whole stateless check of a transaction (decoding with subgroup checks, public inputs,
    // batched pairing check) per transaction, by batch size, on one thread: what a validator
    // pays per proof when its batches are that large. Repeating one transaction costs what
    // distinct ones would.
    let mut by_batch = serde_json::Map::new();
    for n in [1usize, 4, 16, 32, 64, 128] {
        let txs = vec![tx; n];
        let mut samples = Vec::new();
        for _ in 0..(512 / n).clamp(3, 64) {
            let t = Instant::now();
            let ok = pool.install(|| verifier.verify_transactions(&txs));
            samples.push(ms(t.elapsed()) / n as f64);
            anyhow::ensure!(ok.iter().all(|r| r.is_ok()), "valid transactions rejected");
        }
        by_batch.insert(n.to_string(), median(&mut samples).into());
    }

    let mut total: Vec<f64> = default_t.iter().map(|t| ms(t.total)).collect();
    let mut total_1t: Vec<f64> = one_t.iter().map(|t| ms(t.total)).collect();
    Ok(serde_json::json!({
        "constraints": prover.num_constraints(),
        "public_inputs": shoji_primitives::tx::NUM_PUBLIC_INPUTS,
        "threads": threads,
        "prove_ms_median": median(&mut total),
        "prove_ms_median_1t": median(&mut total_1t),
        "prove_breakdown_ms": breakdown(&default_t),
        "prove_breakdown_ms_1t": breakdown(&one_t),
        "verify_ms_median": median(&mut single),
        "batch64_verify_ms_per_proof": median(&mut per_proof),
        "batch64_verify_ms_per_proof_1t": median(&mut per_proof_1t),
        "verify_tx_ms_per_tx_1t_by_batch": by_batch,
        "proof_bytes": shoji_primitives::tx::PROOF_BYTES,
        "tx_bytes": tx.to_bytes().len(),
        "samples": {"proofs": opts.proofs, "proofs_1t": one_t.len(), "verifies": opts.verifies, "batches": opts.batches},
    }))
}
