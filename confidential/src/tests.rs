//! Every proof type against every change of a public value, of a proof element and of the
//! transcript label; forged statements (overdraft, negative and oversized amounts, another
//! owner's account); batches.

use crate::batch::BatchVerifier;
use crate::elgamal::{AmountCiphertext, Ciphertext, Role};
use crate::keys::{PublicKey, SecretKey};
use crate::{disclose, g, open, transfer, withdraw, Error};
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

struct Parties {
    sender: SecretKey,
    receiver: SecretKey,
    auditor: SecretKey,
    pk: [PublicKey; 3],
}

fn parties(rng: &mut ChaCha20Rng) -> Parties {
    let sender = SecretKey::random(rng);
    let receiver = SecretKey::random(rng);
    let auditor = SecretKey::random(rng);
    let pk = [sender.public(), receiver.public(), auditor.public()];
    Parties {
        sender,
        receiver,
        auditor,
        pk,
    }
}

/// A balance ciphertext holding `value` with randomness, as a ledger would after a few credits.
fn balance(pk: &PublicKey, value: u64, rng: &mut ChaCha20Rng) -> Ciphertext {
    Ciphertext::encrypt_with(pk, value / 2, &Scalar::random(rng))
        + Ciphertext::encrypt_with(pk, value - value / 2, &Scalar::random(rng))
}

/// Each 32-byte word of an encoding changed in turn: points move by `G` (still valid
/// encodings), scalars by one (still canonical), so the refusal comes from verification.
fn mutations(bytes: &[u8], points: &[bool]) -> Vec<Vec<u8>> {
    assert_eq!(bytes.len(), points.len() * 32);
    (0..points.len())
        .map(|k| {
            let mut out = bytes.to_vec();
            let word: [u8; 32] = bytes[k * 32..(k + 1) * 32].try_into().unwrap();
            let new = if points[k] {
                let p = CompressedRistretto(word)
                    .decompress()
                    .expect("a point word");
                (p + g()).compress().to_bytes()
            } else {
                let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(word))
                    .expect("a scalar word");
                (s + Scalar::ONE).to_bytes()
            };
            out[k * 32..(k + 1) * 32].copy_from_slice(&new);
            out
        })
        .collect()
}

/// Layout of an aggregated range proof over `m` values: A, S, T1, T2, three scalars, L/R
/// pairs, two scalars.
fn range_layout(m: usize) -> Vec<bool> {
    let rounds = (16 * m).trailing_zeros() as usize;
    let mut v = vec![true; 4];
    v.extend([false; 3]);
    v.extend(vec![true; 2 * rounds]);
    v.extend([false; 2]);
    v
}

fn transfer_layout() -> Vec<bool> {
    let mut v = vec![true; 4]; // balance limbs
    v.extend([true, true, true, true, false, false]); // validity
    v.extend([true, true, true, false, false, false]); // equality
    v.extend(range_layout(8));
    v
}

fn withdraw_layout() -> Vec<bool> {
    let mut v = vec![true; 4];
    v.extend([true, true, true, false, false, false]);
    v.extend(range_layout(4));
    v
}

fn moved(pk: &PublicKey) -> PublicKey {
    PublicKey::from_point(pk.point() + g())
}

#[test]
fn transfer_moves_value_and_each_party_reads_it() {
    let mut rng = rng(10);
    let p = parties(&mut rng);
    let spendable = balance(&p.pk[0], 1_000_000, &mut rng);
    let st = transfer::Statement {
        context: b"tx",
        sender: &p.pk[0],
        receiver: &p.pk[1],
        auditor: &p.pk[2],
        spendable: &spendable,
    };
    let amount = 0x0001_2345_6789u64 % 1_000_000;
    let (ct, proof) = transfer::prove(&p.sender, &st, 1_000_000, amount, &mut rng).unwrap();
    assert_eq!(transfer::verify_one(&st, &ct, &proof), Ok(()));
    assert_eq!(proof.to_bytes().len(), transfer::PROOF_BYTES);
    assert_eq!(
        transfer::TransferProof::from_bytes(&proof.to_bytes()),
        Ok(proof)
    );
    assert!((spendable - ct.for_role(Role::Sender)).holds(&p.sender, 1_000_000 - amount));
    assert_eq!(ct.decrypt(Role::Receiver, &p.receiver), Ok(amount));
    assert_eq!(ct.decrypt(Role::Auditor, &p.auditor), Ok(amount));
    assert_eq!(ct.decrypt(Role::Sender, &p.sender), Ok(amount));
}

#[test]
fn the_whole_u64_range_transfers() {
    let mut rng = rng(11);
    let p = parties(&mut rng);
    let spendable = balance(&p.pk[0], u64::MAX, &mut rng);
    let st = transfer::Statement {
        context: b"tx",
        sender: &p.pk[0],
        receiver: &p.pk[1],
        auditor: &p.pk[2],
        spendable: &spendable,
    };
    for amount in [0, u64::MAX, u64::MAX - 1, 1 << 63] {
        let (ct, proof) = transfer::prove(&p.sender, &st, u64::MAX, amount, &mut rng).unwrap();
        assert_eq!(transfer::verify_one(&st, &ct, &proof), Ok(()));
        assert_eq!(ct.decrypt(Role::Receiver, &p.receiver), Ok(amount));
    }
}

#[test]
fn transfer_refuses_every_changed_public_value_proof_element_and_label() {
    let mut rng = rng(12);
    let p = parties(&mut rng);
    let spendable = balance(&p.pk[0], 5_000, &mut rng);
    let st = transfer::Statement {
        context: b"network 1, asset 7, sequence 3",
        sender: &p.pk[0],
        receiver: &p.pk[1],
        auditor: &p.pk[2],
        spendable: &spendable,
    };
    let (ct, proof) = transfer::prove(&p.sender, &st, 5_000, 1_234, &mut rng).unwrap();
    assert_eq!(transfer::verify_one(&st, &ct, &proof), Ok(()));
    let refused = |st: &transfer::Statement<'_>, ct: &AmountCiphertext, proof: &[u8]| {
        match transfer::TransferProof::from_bytes(proof) {
            Err(_) => true,
            Ok(proof) => transfer::verify_one(st, ct, &proof).is_err(),
        }
    };
    let bytes = proof.to_bytes();
    // The statement, one value at a time.
    assert!(refused(
        &transfer::Statement {
            context: b"network 1, asset 7, sequence 4",
            ..st
        },
        &ct,
        &bytes
    ));
    let keys = [moved(&p.pk[0]), moved(&p.pk[1]), moved(&p.pk[2])];
    assert!(refused(
        &transfer::Statement {
            sender: &keys[0],
            ..st
        },
        &ct,
        &bytes
    ));
    assert!(refused(
        &transfer::Statement {
            receiver: &keys[1],
            ..st
        },
        &ct,
        &bytes
    ));
    assert!(refused(
        &transfer::Statement {
            auditor: &keys[2],
            ..st
        },
        &ct,
        &bytes
    ));
    let mut s2 = spendable;
    s2.commitment += g();
    assert!(refused(
        &transfer::Statement {
            spendable: &s2,
            ..st
        },
        &ct,
        &bytes
    ));
    let mut s3 = spendable;
    s3.handle += g();
    assert!(refused(
        &transfer::Statement {
            spendable: &s3,
            ..st
        },
        &ct,
        &bytes
    ));
    // Each of the amount's sixteen points.
    let ct_bytes = ct.to_bytes();
    for bad in mutations(&ct_bytes, &[true; 16]) {
        let bad_ct = AmountCiphertext::from_bytes(&bad).unwrap();
        assert!(refused(&st, &bad_ct, &bytes));
    }
    // Each word of the proof.
    let layout = transfer_layout();
    assert_eq!(layout.len() * 32, transfer::PROOF_BYTES);
    for (k, bad) in mutations(&bytes, &layout).into_iter().enumerate() {
        assert!(
            refused(&st, &ct, &bad),
            "proof word {k} changed was accepted"
        );
    }
    // The transcript label, both ways.
    let mut bv = BatchVerifier::new();
    transfer::verify_labelled(b"transfer v2", &st, &ct, &proof, &mut bv).unwrap();
    assert!(bv.verify().is_err());
    let (ct2, proof2) =
        transfer::prove_labelled(b"transfer v0", &p.sender, &st, 5_000, 1_234, &mut rng).unwrap();
    assert!(transfer::verify_one(&st, &ct2, &proof2).is_err());
}

#[test]
fn overdraft_negative_oversized_and_foreign_transfers_are_refused() {
    let mut rng = rng(13);
    let p = parties(&mut rng);
    let spendable = balance(&p.pk[0], 100, &mut rng);
    let st = transfer::Statement {
        context: b"tx",
        sender: &p.pk[0],
        receiver: &p.pk[1],
        auditor: &p.pk[2],
        spendable: &spendable,
    };
    let limbs = |v: u64| crate::limbs_of(v).map(Scalar::from);
    // The honest prover will not try.
    assert_eq!(
        transfer::prove(&p.sender, &st, 100, 101, &mut rng).map(|_| ()),
        Err(Error::Unprovable("the amount exceeds the balance"))
    );
    assert!(transfer::prove(&p.receiver, &st, 100, 1, &mut rng).is_err());
    assert!(transfer::prove(&p.sender, &st, 99, 1, &mut rng).is_err());
    let forged =
        |amount: [Scalar; 4], rest: [Scalar; 4], key: &SecretKey, rng: &mut ChaCha20Rng| {
            let (ct, proof) = transfer::build(transfer::KIND, key, &st, amount, rest, rng).unwrap();
            transfer::verify_one(&st, &ct, &proof)
        };
    // The forger's honest control case passes, so each refusal below is the forgery's.
    assert_eq!(forged(limbs(40), limbs(60), &p.sender, &mut rng), Ok(()));
    // Overdraft by one: the new balance is -1, whose limbs cannot all be 16-bit.
    let minus_one = [-Scalar::ONE, Scalar::ZERO, Scalar::ZERO, Scalar::ZERO];
    assert!(forged(limbs(101), minus_one, &p.sender, &mut rng).is_err());
    // A negative amount by wrapping around the group order: sending -1 would credit the sender.
    assert!(forged(minus_one, limbs(101), &p.sender, &mut rng).is_err());
    // An amount of 2^64: the top limb is 2^16.
    let two_64 = [
        Scalar::ZERO,
        Scalar::ZERO,
        Scalar::ZERO,
        Scalar::from(1u64 << 16),
    ];
    let rest = -Scalar::from(u64::MAX) - Scalar::ONE + Scalar::from(100u64);
    assert!(forged(
        two_64,
        [rest, Scalar::ZERO, Scalar::ZERO, Scalar::ZERO],
        &p.sender,
        &mut rng
    )
    .is_err());
    // From an account the signer does not own.
    assert!(forged(limbs(40), limbs(60), &p.receiver, &mut rng).is_err());
}

#[test]
fn withdraw_works_and_refuses_every_change() {
    let mut rng = rng(14);
    let p = parties(&mut rng);
    let spendable = balance(&p.pk[0], 700, &mut rng);
    let st = withdraw::Statement {
        context: b"shield",
        owner: &p.pk[0],
        spendable: &spendable,
        amount: 300,
    };
    let proof = withdraw::prove(&p.sender, &st, 700, &mut rng).unwrap();
    assert_eq!(withdraw::verify_one(&st, &proof), Ok(()));
    let bytes = proof.to_bytes();
    assert_eq!(bytes.len(), withdraw::PROOF_BYTES);
    let refused =
        |st: &withdraw::Statement<'_>, proof: &[u8]| match withdraw::WithdrawProof::from_bytes(
            proof,
        ) {
            Err(_) => true,
            Ok(proof) => withdraw::verify_one(st, &proof).is_err(),
        };
    assert!(refused(
        &withdraw::Statement {
            context: b"shielD",
            ..st
        },
        &bytes
    ));
    assert!(refused(&withdraw::Statement { amount: 299, ..st }, &bytes));
    assert!(refused(&withdraw::Statement { amount: 301, ..st }, &bytes));
    let other = moved(&p.pk[0]);
    assert!(refused(
        &withdraw::Statement {
            owner: &other,
            ..st
        },
        &bytes
    ));
    let mut s2 = spendable;
    s2.commitment += g();
    assert!(refused(
        &withdraw::Statement {
            spendable: &s2,
            ..st
        },
        &bytes
    ));
    let mut s3 = spendable;
    s3.handle += g();
    assert!(refused(
        &withdraw::Statement {
            spendable: &s3,
            ..st
        },
        &bytes
    ));
    for (k, bad) in mutations(&bytes, &withdraw_layout())
        .into_iter()
        .enumerate()
    {
        assert!(refused(&st, &bad), "proof word {k} changed was accepted");
    }
    let mut bv = BatchVerifier::new();
    withdraw::verify_labelled(b"withdraw v2", &st, &proof, &mut bv).unwrap();
    assert!(bv.verify().is_err());
    // Overdraft: refused by the prover, and forged it does not verify.
    let over = withdraw::Statement { amount: 701, ..st };
    assert!(withdraw::prove(&p.sender, &over, 700, &mut rng).is_err());
    let minus_one = [-Scalar::ONE, Scalar::ZERO, Scalar::ZERO, Scalar::ZERO];
    let forged = withdraw::build(withdraw::KIND, &p.sender, &over, minus_one, &mut rng).unwrap();
    assert!(withdraw::verify_one(&over, &forged).is_err());
    let foreign = withdraw::build(
        withdraw::KIND,
        &p.receiver,
        &st,
        crate::limbs_of(400).map(Scalar::from),
        &mut rng,
    )
    .unwrap();
    assert!(withdraw::verify_one(&st, &foreign).is_err());
}

#[test]
fn open_proves_the_key_and_refuses_every_change() {
    let mut rng = rng(15);
    let key = SecretKey::random(&mut rng);
    let pk = key.public();
    let proof = open::prove(&key, b"open account", &mut rng);
    assert_eq!(open::verify_one(b"open account", &pk, &proof), Ok(()));
    let bytes = proof.to_bytes();
    assert!(open::verify_one(b"open accounT", &pk, &proof).is_err());
    assert!(open::verify_one(b"open account", &moved(&pk), &proof).is_err());
    for bad in mutations(&bytes, &[true, false]) {
        let p = open::OpenProof::from_bytes(&bad).unwrap();
        assert!(open::verify_one(b"open account", &pk, &p).is_err());
    }
    let mut bv = BatchVerifier::new();
    open::verify_labelled(b"open v2", b"open account", &pk, &proof, &mut bv).unwrap();
    assert!(bv.verify().is_err());
    // A proof for one key does not open another.
    let other = SecretKey::random(&mut rng);
    let p2 = open::prove(&other, b"open account", &mut rng);
    assert!(open::verify_one(b"open account", &pk, &p2).is_err());
}

#[test]
fn disclosure_proves_the_amount_to_anyone_and_refuses_every_change() {
    let mut rng = rng(16);
    let p = parties(&mut rng);
    let spendable = balance(&p.pk[0], 90_000, &mut rng);
    let st = transfer::Statement {
        context: b"tx",
        sender: &p.pk[0],
        receiver: &p.pk[1],
        auditor: &p.pk[2],
        spendable: &spendable,
    };
    let (ct, _) = transfer::prove(&p.sender, &st, 90_000, 77_777, &mut rng).unwrap();
    let (amount, proof) = disclose::disclose(&p.auditor, b"txid", &ct, &mut rng).unwrap();
    assert_eq!(amount, 77_777);
    assert_eq!(
        disclose::verify_one(b"txid", &p.pk[2], &ct, amount, &proof),
        Ok(())
    );
    assert!(disclose::verify_one(b"txiD", &p.pk[2], &ct, amount, &proof).is_err());
    assert!(disclose::verify_one(b"txid", &p.pk[2], &ct, amount + 1, &proof).is_err());
    assert!(disclose::verify_one(b"txid", &p.pk[2], &ct, amount + (1 << 16), &proof).is_err());
    assert!(disclose::verify_one(b"txid", &moved(&p.pk[2]), &ct, amount, &proof).is_err());
    for bad in mutations(&ct.to_bytes(), &[true; 16]) {
        let bad_ct = AmountCiphertext::from_bytes(&bad).unwrap();
        assert!(disclose::verify_one(b"txid", &p.pk[2], &bad_ct, amount, &proof).is_err());
    }
    for bad in mutations(&proof.to_bytes(), &[true, true, false]) {
        let bad = disclose::DisclosureProof::from_bytes(&bad).unwrap();
        assert!(disclose::verify_one(b"txid", &p.pk[2], &ct, amount, &bad).is_err());
    }
    let mut bv = BatchVerifier::new();
    disclose::verify_labelled(
        b"disclose v2",
        b"txid",
        &p.pk[2],
        &ct,
        amount,
        &proof,
        &mut bv,
    )
    .unwrap();
    assert!(bv.verify().is_err());
    // The receiver cannot disclose as the auditor: its key does not open the auditor's handles.
    assert_eq!(
        disclose::disclose(&p.receiver, b"txid", &ct, &mut rng).map(|_| ()),
        Err(Error::Undecryptable)
    );
    let lie = disclose::prove_labelled(disclose::KIND, &p.receiver, b"txid", &ct, amount, &mut rng);
    assert!(disclose::verify_one(b"txid", &p.pk[2], &ct, amount, &lie).is_err());
}

#[test]
fn a_batch_accepts_valid_proofs_of_every_type_and_refuses_one_bad_among_them() {
    let mut rng = rng(17);
    let p = parties(&mut rng);
    let spendable = balance(&p.pk[0], 1 << 40, &mut rng);
    let st = transfer::Statement {
        context: b"tx",
        sender: &p.pk[0],
        receiver: &p.pk[1],
        auditor: &p.pk[2],
        spendable: &spendable,
    };
    let transfers: Vec<_> = (0..6)
        .map(|i| transfer::prove(&p.sender, &st, 1 << 40, 1000 + i, &mut rng).unwrap())
        .collect();
    let wst = withdraw::Statement {
        context: b"w",
        owner: &p.pk[0],
        spendable: &spendable,
        amount: 5,
    };
    let w = withdraw::prove(&p.sender, &wst, 1 << 40, &mut rng).unwrap();
    let o = open::prove(&p.receiver, b"o", &mut rng);
    let (amount, d) = disclose::disclose(&p.auditor, b"d", &transfers[0].0, &mut rng).unwrap();
    let run = |bad: Option<usize>| {
        let mut bv = BatchVerifier::new();
        for (i, (ct, proof)) in transfers.iter().enumerate() {
            let st = if bad == Some(i) {
                transfer::Statement {
                    context: b"other",
                    ..st
                }
            } else {
                st
            };
            transfer::verify(&st, ct, proof, &mut bv).unwrap();
        }
        withdraw::verify(&wst, &w, &mut bv).unwrap();
        open::verify(b"o", &p.pk[1], &o, &mut bv).unwrap();
        disclose::verify(b"d", &p.pk[2], &transfers[0].0, amount, &d, &mut bv).unwrap();
        assert_eq!(bv.len(), 9);
        bv.verify()
    };
    assert_eq!(run(None), Ok(()));
    for bad in 0..6 {
        assert_eq!(run(Some(bad)), Err(Error::InvalidProof("batch")));
    }
}
