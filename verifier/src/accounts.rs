//! Stateless verification of confidential-account transactions (docs/protocol/accounts.md):
//! their proofs against the context of the network they are for, and a mint's issuer
//! signature. Many transactions are checked in one multiscalar multiplication per thread; when
//! a batch fails, its transactions are checked one at a time to find which.

use rayon::prelude::*;
use shoji_confidential::{open, transfer, withdraw, BatchVerifier};
use shoji_primitives::account::AccountTx;
use shoji_primitives::tx::{AccountDebit, Transaction, WithdrawProofBytes};

/// Why an account transaction fails stateless verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountTxError {
    /// A proof does not verify (or does not decode to group elements).
    #[error("account proof: {0}")]
    Proof(shoji_confidential::Error),
    /// A mint's issuer signature is invalid.
    #[error("the issuer signature is invalid")]
    BadIssuerSignature,
    /// A mint or redemption of nothing.
    #[error("a mint or redemption must move a value above zero")]
    ZeroValue,
}

/// Adds `tx`'s proof to `bv`, or checks its signature; errors found before the batch's
/// multiscalar multiplication are returned.
fn add(tx: &AccountTx, network: &[u8; 32], bv: &mut BatchVerifier) -> Result<(), AccountTxError> {
    let context = tx.context(network);
    match tx {
        AccountTx::Open(o) => open::verify(&context, &o.key, &o.proof, bv),
        AccountTx::Transfer(t) => {
            let h = &t.header;
            let st = transfer::Statement {
                context: &context,
                sender: &h.sender,
                receiver: &h.receiver,
                auditor: &h.auditor,
                spendable: &h.spendable,
            };
            transfer::verify(&st, &t.amount, &t.proof, bv)
        }
        AccountTx::Redeem(r) => {
            let h = &r.header;
            if h.value.0 == 0 {
                return Err(AccountTxError::ZeroValue);
            }
            let st = withdraw::Statement {
                context: &context,
                owner: &h.account,
                spendable: &h.spendable,
                amount: h.value.0,
            };
            withdraw::verify(&st, &r.proof, bv)
        }
        AccountTx::Mint(m) => {
            if m.value.0 == 0 {
                return Err(AccountTxError::ZeroValue);
            }
            let key = ed25519_dalek::VerifyingKey::from_bytes(&m.issuer)
                .map_err(|_| AccountTxError::BadIssuerSignature)?;
            let sig = ed25519_dalek::Signature::from_bytes(&m.signature);
            return key
                .verify_strict(&tx.sighash(network), &sig)
                .map_err(|_| AccountTxError::BadIssuerSignature);
        }
    }
    .map_err(AccountTxError::Proof)
}

/// Verifies a shield's withdrawal proof: the owner of `debit.account` authorizes taking the
/// shield's `value_in` from `debit.spendable`, for exactly this transaction's notes (the proof
/// is made over [`shoji_primitives::tx::Transaction::withdraw_context`]). One proof, checked
/// alone: shields are few beside the Groth16 proof each carries.
pub fn verify_shield_withdrawal(
    tx: &Transaction,
    debit: &AccountDebit,
    proof: &WithdrawProofBytes,
) -> Result<(), AccountTxError> {
    let context = tx.withdraw_context().ok_or(AccountTxError::Proof(
        shoji_confidential::Error::Malformed("a withdrawal context"),
    ))?;
    let proof = withdraw::WithdrawProof::from_bytes(&proof.0).map_err(AccountTxError::Proof)?;
    let st = withdraw::Statement {
        context: &context,
        owner: &debit.account,
        spendable: &debit.spendable,
        amount: tx.bundle().value_in.0,
    };
    withdraw::verify_one(&st, &proof).map_err(AccountTxError::Proof)
}

/// Verifies one account transaction for `network`.
pub fn verify_account_tx(tx: &AccountTx, network: &[u8; 32]) -> Result<(), AccountTxError> {
    let mut bv = BatchVerifier::new();
    add(tx, network, &mut bv)?;
    bv.verify().map_err(AccountTxError::Proof)
}

/// Verifies many account transactions for `network`: one batch per thread, and on a failed
/// batch each of its transactions alone. The results are in the order of `txs`.
pub fn verify_account_txs(
    txs: &[&AccountTx],
    network: &[u8; 32],
) -> Vec<Result<(), AccountTxError>> {
    if txs.is_empty() {
        return Vec::new();
    }
    let chunk = txs.len().div_ceil(rayon::current_num_threads()).max(1);
    txs.par_chunks(chunk)
        .flat_map_iter(|chunk| {
            let mut bv = BatchVerifier::new();
            let mut out: Vec<Result<(), AccountTxError>> =
                chunk.iter().map(|tx| add(tx, network, &mut bv)).collect();
            if !bv.is_empty() && bv.verify().is_err() {
                for (tx, r) in chunk.iter().zip(out.iter_mut()) {
                    if r.is_ok() {
                        *r = verify_account_tx(tx, network);
                    }
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use shoji_confidential::{Ciphertext, SecretKey};
    use shoji_primitives::account::TransferHeader;
    use shoji_primitives::note::{Amount, AssetId};

    const NET: [u8; 32] = [1; 32];

    #[test]
    fn a_batch_finds_exactly_the_bad_transactions() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let alice = SecretKey::account(&[1; 32]);
        let bob = SecretKey::account(&[2; 32]).public();
        let auditor = SecretKey::auditor(&[3; 32]).public();
        let issuer = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let asset = AssetId(1);
        let header = TransferHeader {
            asset,
            sender: alice.public(),
            receiver: bob,
            auditor,
            sequence: 0,
            credits: 1,
            expiry_height: 9,
            spendable: Ciphertext::public(100),
        };
        let mut txs: Vec<AccountTx> = (0..6)
            .map(|i| AccountTx::transfer(&NET, &alice, header, 100, i, &mut rng).unwrap())
            .collect();
        txs.push(AccountTx::open(&NET, &alice, asset, &mut rng));
        txs.push(AccountTx::mint(
            &NET,
            &issuer,
            asset,
            bob,
            Amount(5),
            [0; 32],
        ));
        let refs: Vec<&AccountTx> = txs.iter().collect();
        assert!(verify_account_txs(&refs, &NET).iter().all(|r| r.is_ok()));
        assert!(verify_account_txs(&refs, &[2; 32])
            .iter()
            .all(|r| r.is_err()));

        // A transfer made for another network, a mint whose value was raised after signing, a
        // mint of nothing: each found, the others still pass.
        let mut bad = txs.clone();
        bad[2] = AccountTx::transfer(&[2; 32], &alice, header, 100, 2, &mut rng).unwrap();
        if let AccountTx::Mint(m) = &mut bad[7] {
            m.value = Amount(500);
        }
        bad.push(AccountTx::mint(
            &NET,
            &issuer,
            asset,
            bob,
            Amount(0),
            [1; 32],
        ));
        let refs: Vec<&AccountTx> = bad.iter().collect();
        let results = verify_account_txs(&refs, &NET);
        let failed: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].is_err())
            .collect();
        assert_eq!(failed, vec![2, 7, 8]);
        assert_eq!(results[7], Err(AccountTxError::BadIssuerSignature));
        assert_eq!(results[8], Err(AccountTxError::ZeroValue));
        assert_eq!(verify_account_tx(&txs[0], &NET), Ok(()));
    }
}
