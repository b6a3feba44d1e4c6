//! The `accounts` measurement: proving and verifying confidential-account proofs (one at a time
//! and batched), decryption, and sizes.

use crate::median;
use rand_core::SeedableRng;
use rayon::prelude::*;
use shoji_confidential::elgamal::{AMOUNT_CIPHERTEXT_BYTES, CIPHERTEXT_BYTES};
use shoji_confidential::{disclose, open, transfer, withdraw, BatchVerifier, Ciphertext, Role};
use shoji_confidential::{AmountCiphertext, PublicKey, SecretKey};
use std::time::Instant;

/// Options of the `accounts` measurement.
pub struct AccountsOptions {
    /// Proofs to time per proof type.
    pub proofs: usize,
    /// Single verifications to time.
    pub verifies: usize,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

struct Setup {
    sender: SecretKey,
    auditor: SecretKey,
    keys: [PublicKey; 3],
    spendable: Ciphertext,
}

impl Setup {
    fn statement(&self) -> transfer::Statement<'_> {
        transfer::Statement {
            context: b"shoji-bench accounts",
            sender: &self.keys[0],
            receiver: &self.keys[1],
            auditor: &self.keys[2],
            spendable: &self.spendable,
        }
    }
}

const BALANCE: u64 = 1 << 50;

/// Runs the measurement and returns one JSON object.
pub fn run(opts: &AccountsOptions) -> anyhow::Result<serde_json::Value> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let t = Instant::now();
    shoji_confidential::dlog::warm();
    let table_ms = ms_since(t);
    let sender = SecretKey::random(&mut rng);
    let receiver = SecretKey::random(&mut rng);
    let auditor = SecretKey::random(&mut rng);
    let keys = [sender.public(), receiver.public(), auditor.public()];
    let spendable = Ciphertext::public(BALANCE);
    let s = Setup {
        sender,
        auditor,
        keys,
        spendable,
    };
    let st = s.statement();

    // Transfers: prove, verify one, verify batched.
    let mut prove = Vec::with_capacity(opts.proofs);
    let mut transfers: Vec<(AmountCiphertext, transfer::TransferProof)> = Vec::new();
    for i in 0..opts.proofs.max(256) {
        let t = Instant::now();
        let out = transfer::prove(&s.sender, &st, BALANCE, 1_000 + i as u64, &mut rng)?;
        if i < opts.proofs {
            prove.push(ms_since(t));
        }
        transfers.push(out);
    }
    let mut verify = Vec::with_capacity(opts.verifies);
    for i in 0..opts.verifies {
        let (ct, proof) = &transfers[i % transfers.len()];
        let t = Instant::now();
        transfer::verify_one(&st, ct, proof)?;
        verify.push(ms_since(t));
    }
    let batch_once = |items: &[(AmountCiphertext, transfer::TransferProof)]| {
        let mut bv = BatchVerifier::new();
        for (ct, proof) in items {
            transfer::verify(&st, ct, proof, &mut bv)?;
        }
        bv.verify()
    };
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let threads = rayon::current_num_threads();
    let mut by_batch = serde_json::Map::new();
    let mut by_batch_all = serde_json::Map::new();
    for n in [1usize, 16, 64, 256] {
        let items = &transfers[..n];
        let rounds = (1024 / n).clamp(5, 64);
        let mut one = Vec::with_capacity(rounds);
        let mut all = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            pool1.install(|| batch_once(items))?;
            one.push(ms_since(t) / n as f64);
            // All threads: one batch per thread, each its own multiscalar multiplication.
            let t = Instant::now();
            items
                .par_chunks(n.div_ceil(threads))
                .map(batch_once)
                .collect::<Result<Vec<()>, _>>()?;
            all.push(ms_since(t) / n as f64);
        }
        by_batch.insert(n.to_string(), median(&mut one).into());
        by_batch_all.insert(n.to_string(), median(&mut all).into());
    }

    // Withdrawals (shield, redeem).
    let wst = withdraw::Statement {
        context: b"shoji-bench accounts",
        owner: &s.keys[0],
        spendable: &s.spendable,
        amount: 5_000,
    };
    let mut wprove = Vec::with_capacity(opts.proofs);
    let mut wproof = None;
    for _ in 0..opts.proofs {
        let t = Instant::now();
        wproof = Some(withdraw::prove(&s.sender, &wst, BALANCE, &mut rng)?);
        wprove.push(ms_since(t));
    }
    let wproof = wproof.ok_or_else(|| anyhow::anyhow!("no withdrawal proved"))?;
    let mut wverify = Vec::with_capacity(opts.verifies);
    for _ in 0..opts.verifies {
        let t = Instant::now();
        withdraw::verify_one(&wst, &wproof)?;
        wverify.push(ms_since(t));
    }

    // Opening, disclosure, decryption.
    let oproof = open::prove(&s.sender, b"open", &mut rng);
    let mut overify = Vec::with_capacity(opts.verifies);
    for _ in 0..opts.verifies {
        let t = Instant::now();
        open::verify_one(b"open", &s.keys[0], &oproof)?;
        overify.push(ms_since(t));
    }
    let mut decrypt = Vec::new();
    let mut disclose_prove = Vec::new();
    let mut disclose_verify = Vec::new();
    for (ct, _) in transfers.iter().take(opts.verifies) {
        let t = Instant::now();
        let amount = ct.decrypt(Role::Auditor, &s.auditor)?;
        decrypt.push(ms_since(t));
        let t = Instant::now();
        let (_, d) = disclose::disclose(&s.auditor, b"txid", ct, &mut rng)?;
        disclose_prove.push(ms_since(t));
        let t = Instant::now();
        disclose::verify_one(b"txid", &s.keys[2], ct, amount, &d)?;
        disclose_verify.push(ms_since(t));
    }

    Ok(serde_json::json!({
        "threads": threads,
        "transfer_prove_ms_median": median(&mut prove),
        "transfer_verify_ms_median": median(&mut verify),
        "transfer_batch_verify_ms_per_proof_1t_by_batch": by_batch,
        "transfer_batch_verify_ms_per_proof_by_batch": by_batch_all,
        "withdraw_prove_ms_median": median(&mut wprove),
        "withdraw_verify_ms_median": median(&mut wverify),
        "open_verify_ms_median": median(&mut overify),
        "auditor_decrypt_ms_median": median(&mut decrypt),
        "disclose_prove_ms_median": median(&mut disclose_prove),
        "disclose_verify_ms_median": median(&mut disclose_verify),
        "dlog_table_build_ms": table_ms,
        "transfer_proof_bytes": transfer::PROOF_BYTES,
        "amount_ciphertext_bytes": AMOUNT_CIPHERTEXT_BYTES,
        "balance_ciphertext_bytes": CIPHERTEXT_BYTES,
        "withdraw_proof_bytes": withdraw::PROOF_BYTES,
        "open_proof_bytes": open::PROOF_BYTES,
        "disclosure_proof_bytes": disclose::PROOF_BYTES,
        "samples": {"proofs": opts.proofs, "verifies": opts.verifies},
    }))
}
