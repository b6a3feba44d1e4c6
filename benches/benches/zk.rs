//! Criterion benches of the cryptographic core. Proving is slow: few samples.

use ark_bls12_381::Bls12_381;
use ark_groth16::Groth16;
use ark_std::rand::SeedableRng;
use criterion::{criterion_group, criterion_main, Criterion};
use shoji_primitives::encryption::{try_decrypt_note, try_decrypt_notes, TrialOutput};
use shoji_primitives::poseidon::{self, Domain};
use shoji_primitives::tree::Frontier;
use shoji_primitives::Fr;
use shoji_prover::fixtures::Scenario;
use shoji_prover::Prover;
use shoji_verifier::{BatchItem, DecodedProof, Verifier};

fn benches(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let s = Scenario::new(&mut rng);
    let prover = Prover::dev().expect("parameters");
    let verifier = Verifier::new(&prover.proving_key().vk);

    c.bench_function("poseidon/hash4", |b| {
        let x = [
            Fr::from(1u64),
            Fr::from(2u64),
            Fr::from(3u64),
            Fr::from(4u64),
        ];
        b.iter(|| poseidon::hash(Domain::MerkleNode, &x))
    });
    c.bench_function("tree/append_1000", |b| {
        b.iter(|| {
            let mut f = Frontier::new();
            for i in 0..1000u64 {
                f.append(Fr::from(i)).expect("room");
            }
            f.root()
        })
    });

    let tx = s
        .transfer(250, &mut rng)
        .prove(&prover, &mut rng)
        .expect("proof")
        .into_transaction()
        .expect("transfer");
    let b = tx.bundle();
    c.bench_function("wallet/trial_decrypt_miss", |bch| {
        bch.iter(|| try_decrypt_note(&s.sender, &b.outputs[0], &b.commitments[0], b.nullifiers[0]))
    });
    // The wallet's path: 64 outputs at a time, key agreements side by side (divide by 64).
    let batch = vec![
        TrialOutput {
            ciphertext: &b.outputs[0],
            cm: b.commitments[0],
            rho: b.nullifiers[0],
        };
        64
    ];
    c.bench_function("wallet/trial_decrypt_miss_batch64", |bch| {
        bch.iter(|| try_decrypt_notes(&s.sender, &batch))
    });
    c.bench_function("verify/transaction", |bch| {
        bch.iter(|| verifier.verify_transaction(&tx).expect("valid"))
    });

    let proof = b.proof.to_ark().expect("proof");
    let inputs = tx.public_inputs().to_field_elements();
    let items: Vec<BatchItem> = std::iter::repeat_n((), 64)
        .map(|_| BatchItem {
            proof: DecodedProof::from_ark(&Groth16::<Bls12_381>::rerandomize_proof(
                verifier.verifying_key(),
                &proof,
                &mut rng,
            )),
            inputs: inputs.clone(),
        })
        .collect();
    c.bench_function("verify/batch64", |bch| {
        bch.iter(|| verifier.verify_batch(&items))
    });

    let mut g = c.benchmark_group("prove");
    g.sample_size(10);
    g.bench_function("transfer_2x2", |bch| {
        bch.iter_batched(
            || s.transfer(250, &mut rng),
            |u| {
                prover
                    .prove(u.circuit(), &mut rand_chacha::ChaCha20Rng::seed_from_u64(3))
                    .expect("proof")
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(zk, benches);
criterion_main!(zk);
