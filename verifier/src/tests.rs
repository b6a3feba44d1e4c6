//! Verifier tests. Most run against two stored, proven transactions (a transfer and a mint) so
//! that they need no proving; a circuit change breaks them on purpose (regenerate with
//! `cargo test -p shoji-verifier -- --ignored regenerate_test_vectors`).

use super::*;
use ark_groth16::Groth16;
use ark_std::rand::SeedableRng;
use proptest::prelude::*;
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::note::Amount;
use shoji_primitives::tx::{Proof as ProofBytes, TxKind, MAX_TX_BYTES, TRANSFER_BYTES};

const TRANSFER_VECTOR: &str = include_str!("../testdata/transfer-v3.hex");
const MINT_VECTOR: &str = include_str!("../testdata/mint-v3.hex");
const SHIELD_VECTOR: &str = include_str!("../testdata/shield-v3.hex");
const UNSHIELD_VECTOR: &str = include_str!("../testdata/unshield-v3.hex");
/// A transfer of format version 2 (before transactions named their network), kept to show
/// that an old transaction is refused by its version, with a message saying so.
const TRANSFER_V2: &str = include_str!("../testdata/transfer-v2.hex");

fn verifier() -> Verifier {
    Verifier::new(
        &shoji_params::dev::parameters()
            .expect("development parameters")
            .vk,
    )
}

fn stored(hex: &str) -> Transaction {
    Transaction::from_bytes(&hex_decode("vector", hex.trim()).unwrap()).unwrap()
}

fn transfer() -> Transaction {
    stored(TRANSFER_VECTOR)
}

fn mint() -> Transaction {
    stored(MINT_VECTOR)
}

/// Proves the two vectors from a fixed scenario and writes them. Run on purpose after a circuit
/// or encoding change.
#[test]
#[ignore]
fn regenerate_test_vectors() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2026);
    let s = shoji_prover::fixtures::Scenario::new(&mut rng);
    let prover = shoji_prover::Prover::dev().unwrap();
    let t = s
        .transfer(250, &mut rng)
        .prove(&prover, &mut rng)
        .unwrap()
        .into_transaction()
        .unwrap();
    let m = s
        .mint(1000, &mut rng)
        .prove(&prover, &mut rng)
        .unwrap()
        .sign_mint(&s.issuer)
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    std::fs::write(
        dir.join("transfer-v3.hex"),
        hex_encode(&t.to_bytes()) + "\n",
    )
    .unwrap();
    std::fs::write(dir.join("mint-v3.hex"), hex_encode(&m.to_bytes()) + "\n").unwrap();
}

/// The account the stored shield debits and the stored unshield credits.
fn bridge_account() -> shoji_confidential::SecretKey {
    shoji_confidential::SecretKey::account(&[5; 32])
}

/// What the stored shield debits: the account's first spend, from a balance of 1,000 that one
/// public credit made.
fn bridge_debit() -> shoji_primitives::tx::AccountDebit {
    shoji_primitives::tx::AccountDebit {
        account: bridge_account().public(),
        sequence: 0,
        credits: 1,
        spendable: shoji_confidential::Ciphertext::public(1000),
    }
}

/// Proves the shield (300 out of the account) and unshield (250 into it) vectors from a fixed
/// scenario and writes them. Run on purpose after a circuit or encoding change.
#[test]
#[ignore]
fn regenerate_bridge_vectors() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2027);
    let s = shoji_prover::fixtures::Scenario::new(&mut rng);
    let prover = shoji_prover::Prover::dev().unwrap();
    let shield = s
        .shield(300, bridge_debit(), &mut rng)
        .prove(&prover, &mut rng)
        .unwrap()
        .authorize_shield(&bridge_account(), 1000, &mut rng)
        .unwrap();
    let unshield = s
        .unshield(250, bridge_account().public(), &mut rng)
        .prove(&prover, &mut rng)
        .unwrap()
        .into_transaction()
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for (name, tx) in [("shield-v3.hex", shield), ("unshield-v3.hex", unshield)] {
        std::fs::write(dir.join(name), hex_encode(&tx.to_bytes()) + "\n").unwrap();
    }
}

fn shield() -> Transaction {
    stored(SHIELD_VECTOR)
}

fn unshield() -> Transaction {
    stored(UNSHIELD_VECTOR)
}

/// The stored shield and unshield verify, both proofs, and decode back to themselves.
#[test]
fn stored_bridge_transactions_verify() {
    let v = verifier();
    for (tx, kind) in [(shield(), TxKind::Shield), (unshield(), TxKind::Unshield)] {
        assert_eq!(tx.kind(), kind);
        v.verify_transaction(&tx).unwrap();
        assert_eq!(Transaction::from_bytes(&tx.to_bytes()).unwrap(), tx);
        assert_eq!(v.verify_transactions(&[tx]), vec![Ok(())]);
    }
    let Transaction::Shield { debit, .. } = shield() else {
        panic!("a shield")
    };
    assert_eq!(debit, bridge_debit());
    assert_eq!(
        unshield().account_side().map(|(k, v)| (k, v.0)),
        Some((bridge_account().public(), 250))
    );
}

/// A shield binds the account side both ways: the Groth16 proof binds the debit (account,
/// sequence, credits, balance), and the withdrawal proof binds every field of the bundle. Each
/// field changed alone is refused, and so is each proof changed.
#[test]
fn a_shield_binds_its_account_and_its_notes() {
    let v = verifier();
    let tx = shield();
    let Transaction::Shield {
        bundle,
        debit,
        proof,
    } = tx
    else {
        panic!("a shield")
    };
    let other_key = shoji_confidential::SecretKey::account(&[6; 32]).public();
    let debits = [
        shoji_primitives::tx::AccountDebit {
            account: other_key,
            ..debit
        },
        shoji_primitives::tx::AccountDebit {
            sequence: 1,
            ..debit
        },
        shoji_primitives::tx::AccountDebit {
            credits: 2,
            ..debit
        },
        shoji_primitives::tx::AccountDebit {
            spendable: shoji_confidential::Ciphertext::public(1001),
            ..debit
        },
    ];
    for (i, d) in debits.into_iter().enumerate() {
        let bad = Transaction::Shield {
            bundle,
            debit: d,
            proof,
        };
        assert!(v.verify_transaction(&bad).is_err(), "debit field {i}");
        // Each proof refuses it alone: the Groth16 proof through the binding, the withdrawal
        // proof through its statement and context.
        let groth = DecodedProof::from_bytes(&bundle.proof.0).unwrap();
        assert_eq!(
            v.verify_proof(&groth, &bad.public_inputs().to_field_elements()),
            Err(VerificationError::InvalidProof),
            "debit field {i}, Groth16"
        );
        assert!(
            accounts::verify_shield_withdrawal(&bad, &d, &proof).is_err(),
            "debit field {i}, withdrawal"
        );
    }
    // The notes: another output ciphertext, expiry or network under the same withdrawal proof.
    let mut changed = Vec::new();
    let mut b = bundle;
    b.outputs[0] = shoji_primitives::encryption::NoteCiphertext::from_bytes(
        &[7; shoji_primitives::encryption::NOTE_CIPHERTEXT_BYTES],
    );
    changed.push(b);
    let mut b = bundle;
    b.expiry_height -= 1;
    changed.push(b);
    let mut b = bundle;
    b.network[0] ^= 1;
    changed.push(b);
    let mut b = bundle;
    b.commitments[1] += Fr::from(1u64);
    changed.push(b);
    for (i, b) in changed.into_iter().enumerate() {
        let bad = Transaction::Shield {
            bundle: b,
            debit,
            proof,
        };
        assert!(
            accounts::verify_shield_withdrawal(&bad, &debit, &proof).is_err(),
            "bundle change {i}, withdrawal"
        );
    }
    // The public amount: the withdrawal proof was made for 300.
    let mut b = bundle;
    b.value_in = Amount(301);
    let bad = Transaction::Shield {
        bundle: b,
        debit,
        proof,
    };
    assert!(accounts::verify_shield_withdrawal(&bad, &debit, &proof).is_err());
    assert!(v.verify_transaction(&bad).is_err());
    // Every word of the withdrawal proof.
    for at in (0..proof.0.len()).step_by(32) {
        let mut p = proof;
        p.0[at] ^= 1;
        let bad = Transaction::Shield {
            bundle,
            debit,
            proof: p,
        };
        assert!(v.verify_transaction(&bad).is_err(), "withdrawal byte {at}");
    }
    // Unchanged, it passes: the refusals above are the changes'.
    assert!(accounts::verify_shield_withdrawal(&tx, &debit, &proof).is_ok());
}

/// An unshield binds the account it credits: another key, or the same bytes read as a
/// redemption to an "issuer" with those 32 bytes (the tails have one length), are refused.
#[test]
fn an_unshield_binds_the_account_it_credits() {
    let v = verifier();
    let tx = unshield();
    let Transaction::Unshield { bundle, account } = tx else {
        panic!("an unshield")
    };
    let thief = shoji_confidential::SecretKey::account(&[6; 32]).public();
    let stolen = Transaction::Unshield {
        bundle,
        account: thief,
    };
    assert!(v.verify_transaction(&stolen).is_err());
    let mut bytes = tx.to_bytes();
    assert_eq!(bytes.len(), shoji_primitives::tx::REDEEM_BYTES);
    bytes[1] = TxKind::Redeem as u8;
    let as_redeem = Transaction::from_bytes(&bytes).unwrap();
    assert_eq!(as_redeem.issuer(), Some(&account.to_bytes()));
    assert!(v.verify_transaction(&as_redeem).is_err());
    v.verify_transaction(&tx).unwrap();
}

/// The bridge kinds keep the shape rules of their direction.
#[test]
fn bridge_shapes_are_checked() {
    let v = verifier();
    let mut s = shield();
    s.bundle_mut().value_out = Amount(1);
    assert!(matches!(
        v.verify_transaction(&s),
        Err(TxError::Shape(ShapeError::ShieldValues))
    ));
    let mut u = unshield();
    u.bundle_mut().value_out = Amount(0);
    assert!(matches!(
        v.verify_transaction(&u),
        Err(TxError::Shape(ShapeError::UnshieldValues))
    ));
}

/// A version-2 transaction is refused by its version, not misread.
#[test]
fn an_old_transaction_is_refused_by_its_version() {
    let bytes = hex_decode("vector", TRANSFER_V2.trim()).unwrap();
    let err = Transaction::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    assert!(err.to_string().contains('2'), "{err}");
}

/// The stored proofs verify on every run: a change of circuit, parameters or encoding is noticed.
#[test]
fn stored_transactions_verify() {
    let v = verifier();
    for tx in [transfer(), mint()] {
        v.verify_transaction(&tx).unwrap();
        assert_eq!(Transaction::from_bytes(&tx.to_bytes()).unwrap(), tx);
    }
    assert_eq!(transfer().kind(), TxKind::Transfer);
    assert_eq!(mint().kind(), TxKind::Mint);
}

/// Changing any one public input makes the proof fail.
#[test]
fn every_public_input_is_checked() {
    let v = verifier();
    let tx = transfer();
    let proof = DecodedProof::from_bytes(&tx.bundle().proof.0).unwrap();
    let inputs = tx.public_inputs().to_field_elements();
    v.verify_proof(&proof, &inputs).unwrap();
    for i in 0..inputs.len() {
        let mut bad = inputs.clone();
        bad[i] += Fr::from(1u64);
        assert_eq!(
            v.verify_proof(&proof, &bad),
            Err(VerificationError::InvalidProof),
            "input {i}"
        );
    }
}

/// ark-groth16 does not check the input count; we do.
#[test]
fn input_count_is_checked() {
    let v = verifier();
    let tx = transfer();
    let proof = DecodedProof::from_bytes(&tx.bundle().proof.0).unwrap();
    let mut inputs = tx.public_inputs().to_field_elements();
    inputs.push(Fr::from(0u64));
    assert!(matches!(
        v.verify_proof(&proof, &inputs),
        Err(VerificationError::InputCount { .. })
    ));
    inputs.truncate(inputs.len() - 2);
    assert!(matches!(
        v.verify_proof(&proof, &inputs),
        Err(VerificationError::InputCount { .. })
    ));
}

/// One flipped bit anywhere in the proof: rejected as malformed or invalid, never accepted.
#[test]
fn flipped_proof_byte_rejected() {
    let v = verifier();
    let tx = transfer();
    for byte in (0..PROOF_BYTES).step_by(7) {
        let mut p = tx.bundle().proof.0;
        p[byte] ^= 0x10;
        let mut bundle = *tx.bundle();
        bundle.proof = ProofBytes(p);
        assert!(
            v.verify_transaction(&Transaction::Transfer(bundle))
                .is_err(),
            "byte {byte}"
        );
    }
}

/// blst and arkworks agree, on decoding and on the verdict: every single-bit change of the
/// proof's bytes (decoded by both or refused by both; a decoded one verifies under both or
/// neither), each public input off by one, and rerandomized valid proofs.
#[test]
fn blst_agrees_with_ark_groth16() {
    let v = verifier();
    let pvk = ark_groth16::prepare_verifying_key(v.verifying_key());
    let verdicts = |bytes: &[u8; PROOF_BYTES], inputs: &[Fr]| {
        let ours = DecodedProof::from_bytes(bytes)
            .ok()
            .map(|p| v.verify_proof(&p, inputs).is_ok());
        let theirs = ProofBytes(*bytes)
            .to_ark()
            .ok()
            .map(|p| Groth16::<Bls12_381>::verify_proof(&pvk, &p, inputs).unwrap_or(false));
        (ours, theirs)
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let mut accepted = 0;
    for tx in [transfer(), mint()] {
        let bytes = tx.bundle().proof.0;
        let inputs = tx.public_inputs().to_field_elements();
        assert_eq!(verdicts(&bytes, &inputs), (Some(true), Some(true)));
        for bit in 0..PROOF_BYTES * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            let (ours, theirs) = verdicts(&b, &inputs);
            assert_eq!(ours, theirs, "bit {bit}");
            accepted += usize::from(ours == Some(true));
        }
        for i in 0..inputs.len() {
            let mut bad = inputs.clone();
            bad[i] += Fr::from(1u64);
            assert_eq!(
                verdicts(&bytes, &bad),
                (Some(false), Some(false)),
                "input {i}"
            );
        }
        let ark = tx.bundle().proof.to_ark().unwrap();
        for _ in 0..4 {
            let fresh = Groth16::<Bls12_381>::rerandomize_proof(v.verifying_key(), &ark, &mut rng);
            let mut b = [0u8; PROOF_BYTES];
            ark_serialize::CanonicalSerialize::serialize_uncompressed(&fresh, &mut b[..]).unwrap();
            assert_eq!(verdicts(&b, &inputs), (Some(true), Some(true)));
            assert_eq!(
                DecodedProof::from_bytes(&b).unwrap(),
                DecodedProof::from_ark(&fresh)
            );
        }
    }
    // A changed bit never yields an accepted proof (a sign flip of a point negates it).
    assert_eq!(accepted, 0);
}

/// The proof field takes each point in exactly one form: a compressed point (whose tail blst
/// would ignore) and a coordinate not reduced below the modulus are refused, by both decoders.
#[test]
fn proof_points_have_one_encoding() {
    let tx = transfer();
    let bytes = tx.bundle().proof.0;
    let ark = tx.bundle().proof.to_ark().unwrap();
    assert_eq!(DecodedProof::from_bytes(&bytes).unwrap().to_bytes(), bytes);
    // A in compressed form, followed by anything.
    let mut compressed = bytes;
    ark_serialize::CanonicalSerialize::serialize_compressed(&ark.a, &mut compressed[..48]).unwrap();
    assert_ne!(compressed, bytes);
    assert!(DecodedProof::from_bytes(&compressed).is_err());
    assert!(ProofBytes(compressed).to_ark().is_err());
    // C's y coordinate plus the field modulus (y + p < 2^384: it fits the 48 bytes).
    let modulus = <ark_bls12_381::Fq as PrimeField>::MODULUS.to_bytes_be();
    let mut unreduced = bytes;
    let y = &mut unreduced[336..384];
    let mut carry = 0u16;
    for i in (0..48).rev() {
        let sum = u16::from(y[i]) + u16::from(modulus[i]) + carry;
        y[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    assert!(DecodedProof::from_bytes(&unreduced).is_err());
    assert!(ProofBytes(unreduced).to_ark().is_err());
    // The same point at infinity in the canonical form only.
    let mut inf = bytes;
    inf[0..96].fill(0);
    inf[0] = 0x40;
    assert!(DecodedProof::from_bytes(&inf).is_ok());
    inf[95] = 1;
    assert!(DecodedProof::from_bytes(&inf).is_err());
}

/// The binding covers the non-public fields: expiry, ciphertexts, kind, issuer.
#[test]
fn binding_covers_every_other_field() {
    let v = verifier();
    let tx = transfer();
    let mut b = *tx.bundle();
    b.expiry_height -= 1;
    assert!(matches!(
        v.verify_transaction(&Transaction::Transfer(b)),
        Err(TxError::Proof(_))
    ));

    // A relayer swaps the two outputs' ciphertexts, or replaces one byte of one.
    let mut b = *tx.bundle();
    b.outputs.swap(0, 1);
    assert!(matches!(
        v.verify_transaction(&Transaction::Transfer(b)),
        Err(TxError::Proof(_))
    ));
    for j in 0..2 {
        let mut b = *tx.bundle();
        b.outputs[j].enc[5] ^= 1;
        assert!(matches!(
            v.verify_transaction(&Transaction::Transfer(b)),
            Err(TxError::Proof(_))
        ));
        let mut b = *tx.bundle();
        b.outputs[j].out[0] ^= 1;
        assert!(matches!(
            v.verify_transaction(&Transaction::Transfer(b)),
            Err(TxError::Proof(_))
        ));
    }
    // The same bundle presented as a redeem to some issuer.
    let mut b = *tx.bundle();
    b.value_out = Amount(1);
    assert!(v
        .verify_transaction(&Transaction::Redeem {
            bundle: b,
            issuer: [7; 32]
        })
        .is_err());
}

#[test]
fn mint_signature_is_checked() {
    let v = verifier();
    let Transaction::Mint { bundle, auth } = mint() else {
        panic!("a mint")
    };
    let mut bad = auth;
    bad.signature[3] ^= 1;
    assert_eq!(
        v.verify_transaction(&Transaction::Mint { bundle, auth: bad }),
        Err(TxError::BadIssuerSignature)
    );
    // Another issuer signing the same bundle: its signature is valid, but the binding names the
    // original issuer.
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut tx = Transaction::Mint {
        bundle,
        auth: shoji_primitives::tx::IssuerAuth {
            issuer: other.verifying_key().to_bytes(),
            signature: [0; 64],
        },
    };
    let sig = ed25519_dalek::Signer::sign(&other, &tx.sighash()).to_bytes();
    if let Transaction::Mint { auth, .. } = &mut tx {
        auth.signature = sig;
    }
    assert!(matches!(v.verify_transaction(&tx), Err(TxError::Proof(_))));
}

#[test]
fn shape_is_checked() {
    let v = verifier();
    let mut b = *transfer().bundle();
    b.value_in = Amount(5);
    assert!(matches!(
        v.verify_transaction(&Transaction::Transfer(b)),
        Err(TxError::Shape(_))
    ));
    let mut b = *transfer().bundle();
    b.nullifiers[1] = b.nullifiers[0];
    assert!(matches!(
        v.verify_transaction(&Transaction::Transfer(b)),
        Err(TxError::Shape(_))
    ));
}

fn batch_items(n: usize) -> Vec<BatchItem> {
    let vk = verifier().verifying_key().clone();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let txs = [transfer(), mint()];
    (0..n)
        .map(|i| {
            let tx = &txs[i % 2];
            let proof = Groth16::<Bls12_381>::rerandomize_proof(
                &vk,
                &tx.bundle().proof.to_ark().unwrap(),
                &mut rng,
            );
            BatchItem {
                proof: DecodedProof::from_ark(&proof),
                inputs: tx.public_inputs().to_field_elements(),
            }
        })
        .collect()
}

#[test]
fn batch_of_valid_proofs_accepts() {
    let v = verifier();
    let items = batch_items(64);
    assert!(v.verify_batch(&items).iter().all(|r| r.is_ok()));
    assert!(v.verify_batch(&[]).is_empty());
}

/// One bad proof among 64 (a swapped input, a proof of another statement, a wrong input count) is
/// found, and only it.
#[test]
fn batch_finds_the_bad_proof() {
    let v = verifier();
    for (bad_at, how) in [(0usize, 0), (37, 1), (63, 2)] {
        let mut items = batch_items(64);
        match how {
            0 => items[bad_at].inputs[3] += Fr::from(1u64),
            1 => items[bad_at].inputs = items[(bad_at + 1) % 64].inputs.clone(),
            _ => {
                items[bad_at].inputs.pop();
            }
        }
        let results = v.verify_batch(&items);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_err(), i == bad_at, "item {i} ({how})");
        }
    }
}

/// Two or three proofs are checked as one batch first: valid ones pass, and one bad proof
/// (a public input off by one) is still found, and only it.
#[test]
fn small_batches_accept_valid_and_find_the_bad_proof() {
    let v = verifier();
    for n in [2usize, 3] {
        let items = batch_items(n);
        assert!(
            v.verify_batch(&items).iter().all(|r| r.is_ok()),
            "{n} valid"
        );
        for bad_at in 0..n {
            let mut items = batch_items(n);
            items[bad_at].inputs[0] += Fr::from(1u64);
            let results = v.verify_batch(&items);
            for (i, r) in results.iter().enumerate() {
                assert_eq!(
                    r.is_err(),
                    i == bad_at,
                    "{n} items, bad at {bad_at}: item {i}"
                );
            }
        }
    }
}

/// A proof whose A or C is the point at infinity decodes (it is in the subgroup) but never
/// verifies, alone or in a batch, and does not spoil the valid proofs batched with it.
#[test]
fn points_at_infinity_are_refused_in_batches() {
    let v = verifier();
    let mut infinity = [0u8; 96];
    infinity[0] = 0x40; // uncompressed, infinity
    for n in [1usize, 2, 3, 5, 9] {
        // A, then C.
        for which in [0usize, 288] {
            let mut items = batch_items(n);
            let bad_at = n / 2;
            let mut raw = items[bad_at].proof.to_bytes();
            assert_eq!(DecodedProof::from_bytes(&raw), Ok(items[bad_at].proof));
            raw[which..which + 96].copy_from_slice(&infinity);
            items[bad_at].proof = DecodedProof::from_bytes(&raw).expect("infinity decodes");
            let results = v.verify_batch(&items);
            for (i, r) in results.iter().enumerate() {
                assert_eq!(r.is_err(), i == bad_at, "{n} items, point at {which}: {i}");
            }
        }
    }
}

/// `Transaction::from_bytes_proof_bound` skips the subgroup check of the audit key `epk`,
/// which is safe for validators only because the proof binds `epk`: a transaction whose `epk`
/// has a torsion component decodes that way but never verifies.
#[test]
fn an_epk_outside_the_subgroup_decodes_unchecked_but_never_verifies() {
    use ark_ed_on_bls12_381::{EdwardsAffine, Fq};
    let v = verifier();
    for tx in [transfer(), mint()] {
        let bytes = tx.to_bytes();
        assert_eq!(Transaction::from_bytes_proof_bound(&bytes), Ok(tx));
        // epk follows version, kind, anchor, two nullifiers, two commitments, three u64s and
        // the auditor key.
        let at = 2 + 32 * 5 + 24 + 32;
        let epk = tx.bundle().audit.epk;
        assert_eq!(
            bytes[at..at + 32],
            shoji_primitives::encoding::point_to_bytes(&epk)
        );
        let two_torsion = EdwardsAffine::new_unchecked(Fq::from(0u64), -Fq::from(1u64));
        let off = (epk + two_torsion).into_affine();
        let mut tampered = bytes.clone();
        tampered[at..at + 32].copy_from_slice(&shoji_primitives::encoding::point_to_bytes(&off));
        assert!(matches!(
            Transaction::from_bytes(&tampered),
            Err(EncodingError::InvalidPoint(_))
        ));
        let unchecked = Transaction::from_bytes_proof_bound(&tampered).expect("on the curve");
        // (A mint's issuer signature covers the bytes too, and fails first.)
        let verdict = v.verify_transaction(&unchecked);
        assert!(
            matches!(
                verdict,
                Err(TxError::Proof(VerificationError::InvalidProof) | TxError::BadIssuerSignature)
            ),
            "{verdict:?}"
        );
        // The proof itself is refused with the tampered epk as a public input.
        let proof = DecodedProof::from_bytes(&unchecked.bundle().proof.0).expect("proof");
        assert_eq!(
            v.verify_proof(&proof, &unchecked.public_inputs().to_field_elements()),
            Err(VerificationError::InvalidProof)
        );
        // Bytes off the curve are refused either way.
        let mut garbage = bytes.clone();
        garbage[at..at + 32].copy_from_slice(&[0xff; 32]);
        assert!(Transaction::from_bytes_proof_bound(&garbage).is_err());
    }
}

#[test]
fn verify_transactions_reports_per_transaction() {
    let v = verifier();
    let mut b = *transfer().bundle();
    b.expiry_height = 1;
    let txs = vec![transfer(), Transaction::Transfer(b), mint()];
    let r = v.verify_transactions(&txs);
    assert!(r[0].is_ok() && r[2].is_ok());
    assert!(matches!(
        r[1],
        Err(TxError::Proof(VerificationError::InvalidProof))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..MAX_TX_BYTES + 8)) {
        let _ = Transaction::from_bytes(&bytes);
    }

    /// A valid encoding with one byte changed, truncated or extended is either refused or decodes
    /// to a different transaction that does not verify.
    #[test]
    fn mutated_encoding_is_refused(pos in 0usize..TRANSFER_BYTES, bit in 0u8..8, cut in 0usize..TRANSFER_BYTES) {
        let bytes = transfer().to_bytes();
        let mut flipped = bytes.clone();
        flipped[pos % bytes.len()] ^= 1 << bit;
        if let Ok(tx) = Transaction::from_bytes(&flipped) {
            prop_assert!(verifier().verify_transaction(&tx).is_err());
        }
        prop_assert!(Transaction::from_bytes(&bytes[..cut % bytes.len()]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Transaction::from_bytes(&longer).is_err());
    }
}

#[test]
fn size_limit() {
    assert_eq!(
        transfer().to_bytes().len(),
        shoji_primitives::tx::TRANSFER_BYTES
    );
    assert!(Transaction::from_bytes(&vec![1u8; MAX_TX_BYTES + 1]).is_err());
}
