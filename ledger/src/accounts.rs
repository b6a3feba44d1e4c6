//! Confidential accounts in the ledger (docs/protocol/accounts.md, "The ledger's accounts").
//!
//! An account is `(key, asset)`. Its balance is `base + R[credits]`:
//! - `base` changes only by the owner's own transactions (the amounts it sends and redeems),
//!   each carrying the next sequence number;
//! - `R[k]` is the running sum of the first `k` amounts credited to it (transfers in, mints).
//!
//! A transaction spends from `base + R[k]` for a `k` it names, at most [`CREDIT_WINDOW`]
//! credits old. A credit that lands between proving and inclusion therefore neither
//! invalidates the proof (its `R[k]` is still there) nor is lost (the next transaction names a
//! later `k` and includes it): no "apply pending balance" transaction, unlike Solana's split.
//! Soundness holds whatever `k`: every credit is a range-proved non-negative amount, so
//! `R[credits] − R[k]` is never negative and the balance is at least what was proved.

use crate::CompactTx;
use shoji_confidential::{Ciphertext, PublicKey, Role};
use shoji_primitives::account::AccountTx;
use shoji_primitives::encoding::{EncodingError, Reader};
use shoji_primitives::note::AssetId;
use shoji_primitives::tx::TxKind;
use std::collections::VecDeque;

/// How many credits old the balance a transaction spends from may be.
pub const CREDIT_WINDOW: u64 = 64;

/// An account's identity: its key and its asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId {
    /// The account's public key, encoded.
    pub key: [u8; 32],
    /// The asset it holds.
    pub asset: AssetId,
}

impl AccountId {
    /// The account of `key` for `asset`.
    pub fn new(key: &PublicKey, asset: AssetId) -> Self {
        Self {
            key: key.to_bytes(),
            asset,
        }
    }

    /// `key ‖ asset:u64` (little-endian): the store's key.
    pub fn to_bytes(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..32].copy_from_slice(&self.key);
        out[32..].copy_from_slice(&self.asset.0.to_le_bytes());
        out
    }

    /// Decodes [`AccountId::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut r = Reader::new("account id", bytes);
        let key = r.array()?;
        let asset = AssetId(r.u64()?);
        r.finish()?;
        Ok(Self { key, asset })
    }
}

/// One account's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// What the owner's own transactions left: zero minus every amount sent or redeemed.
    pub base: Ciphertext,
    /// Credits received so far.
    pub credits: u64,
    /// `R[k]` for the last `received.len()` values of `k`, ending at `k = credits`
    /// (`R[0]` is zero); at most `CREDIT_WINDOW + 1` kept.
    pub received: VecDeque<Ciphertext>,
    /// The owner's transactions so far: the next one must carry this number.
    pub sequence: u64,
}

impl Default for AccountState {
    fn default() -> Self {
        Self::new()
    }
}

impl AccountState {
    /// A new account: zero balance, no credits, sequence 0.
    pub fn new() -> Self {
        Self {
            base: Ciphertext::zero(),
            credits: 0,
            received: VecDeque::from([Ciphertext::zero()]),
            sequence: 0,
        }
    }

    /// `base + R[k]`: the balance a transaction naming `k` credits spends from, if `k` is at
    /// most [`CREDIT_WINDOW`] credits old.
    pub fn spendable(&self, k: u64) -> Option<Ciphertext> {
        if k > self.credits || self.credits - k > CREDIT_WINDOW {
            return None;
        }
        let back = (self.credits - k) as usize;
        let at = self.received.len().checked_sub(1 + back)?;
        Some(self.base + self.received[at])
    }

    /// The balance with every credit: what the owner's next transaction may spend.
    pub fn balance(&self) -> Ciphertext {
        self.base
            + self
                .received
                .back()
                .copied()
                .unwrap_or_else(Ciphertext::zero)
    }

    /// The accounts an applied transaction changes: the debited one first, then the credited
    /// one (the same twice for a payment to oneself); an opening changes none (it creates one).
    pub fn touched(tx: &AccountTx) -> Vec<AccountId> {
        match tx {
            AccountTx::Open(_) => Vec::new(),
            AccountTx::Transfer(t) => vec![
                AccountId::new(&t.header.sender, t.header.asset),
                AccountId::new(&t.header.receiver, t.header.asset),
            ],
            AccountTx::Mint(m) => vec![AccountId::new(&m.account, m.asset)],
            AccountTx::Redeem(r) => vec![AccountId::new(&r.header.account, r.header.asset)],
        }
    }

    /// Applies what an applied transaction `tx` does to this account, `id`: the ledger does
    /// this for every account `tx` touches, and a wallet following certified compact blocks
    /// does it for its own, so both hold the same state.
    pub fn follow(&mut self, id: &AccountId, tx: &AccountTx) {
        match tx {
            AccountTx::Open(_) => {}
            AccountTx::Transfer(t) => {
                let h = &t.header;
                if AccountId::new(&h.sender, h.asset) == *id {
                    self.debit(t.amount.for_role(Role::Sender));
                }
                if AccountId::new(&h.receiver, h.asset) == *id {
                    self.credit(t.amount.for_role(Role::Receiver));
                }
            }
            AccountTx::Mint(m) => {
                if AccountId::new(&m.account, m.asset) == *id {
                    self.credit(Ciphertext::public(m.value.0));
                }
            }
            AccountTx::Redeem(r) => {
                if AccountId::new(&r.header.account, r.header.asset) == *id {
                    self.debit(Ciphertext::public(r.header.value.0));
                }
            }
        }
    }

    /// The account an applied shield debits or an applied unshield credits (the bridge
    /// between the tiers); `None` for the other kinds.
    pub fn bridged(tx: &CompactTx) -> Option<AccountId> {
        tx.account.map(|key| AccountId {
            key,
            asset: tx.asset,
        })
    }

    /// Applies what an applied shield or unshield `tx` does to this account, `id`: a shield
    /// debits its public `value_in` (and takes a sequence number), an unshield credits its
    /// public `value_out`. The ledger and a following wallet both call this, as
    /// [`AccountState::follow`].
    pub fn follow_bridge(&mut self, id: &AccountId, tx: &CompactTx) {
        if Self::bridged(tx).as_ref() != Some(id) {
            return;
        }
        match tx.kind {
            TxKind::Shield => self.debit(Ciphertext::public(tx.value_in.0)),
            TxKind::Unshield => self.credit(Ciphertext::public(tx.value_out.0)),
            _ => {}
        }
    }

    fn credit(&mut self, amount: Ciphertext) {
        let last = self
            .received
            .back()
            .copied()
            .unwrap_or_else(Ciphertext::zero);
        self.received.push_back(last + amount);
        self.credits += 1;
        while self.received.len() as u64 > CREDIT_WINDOW + 1 {
            self.received.pop_front();
        }
    }

    fn debit(&mut self, amount: Ciphertext) {
        self.base = self.base - amount;
        self.sequence += 1;
    }

    /// `base(64) ‖ credits:u64 ‖ sequence:u64 ‖ count:u8 ‖ R(64)*` (oldest first).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 17 + 64 * self.received.len());
        out.extend_from_slice(&self.base.to_bytes());
        out.extend_from_slice(&self.credits.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.push(self.received.len() as u8);
        for r in &self.received {
            out.extend_from_slice(&r.to_bytes());
        }
        out
    }

    /// Strict decoding of [`AccountState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut r = Reader::new("account state", bytes);
        let ct = |r: &mut Reader<'_>| {
            Ciphertext::from_bytes(&r.array()?)
                .map_err(|_| EncodingError::InvalidPoint("account ciphertext"))
        };
        let base = ct(&mut r)?;
        let credits = r.u64()?;
        let sequence = r.u64()?;
        let n = r.u8()? as u64;
        if n == 0 || n > CREDIT_WINDOW + 1 || n > credits + 1 {
            return Err(EncodingError::Invalid("account running sums"));
        }
        let received = (0..n).map(|_| ct(&mut r)).collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self {
            base,
            credits,
            received,
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spendable_names_any_recent_credit_count_and_nothing_else() {
        let key = shoji_confidential::SecretKey::account(&[1; 32]);
        let mut a = AccountState::new();
        assert!(a.spendable(0).is_some_and(|c| c.holds(&key, 0)));
        assert!(a.spendable(1).is_none());
        for i in 1..=100u64 {
            a.credit(Ciphertext::public(i));
        }
        a.debit(Ciphertext::public(50));
        assert_eq!(a.credits, 100);
        let sum = |k: u64| k * (k + 1) / 2;
        assert!(a.balance().holds(&key, sum(100) - 50));
        for k in [36, 40, 99, 100] {
            assert!(
                a.spendable(k).is_some_and(|c| c.holds(&key, sum(k) - 50)),
                "{k}"
            );
        }
        assert!(a.spendable(35).is_none(), "older than the window");
        assert!(a.spendable(101).is_none(), "a credit that does not exist");
        assert_eq!(a.sequence, 1);
        assert_eq!(AccountState::from_bytes(&a.to_bytes()), Ok(a.clone()));
        let mut bad = a.to_bytes();
        bad.push(0);
        assert!(AccountState::from_bytes(&bad).is_err());
    }
}
