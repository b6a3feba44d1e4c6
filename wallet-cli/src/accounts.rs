//! The wallet's confidential accounts (docs/protocol/accounts.md): one per asset, under the
//! account key derived from the wallet seed. The wallet follows every applied account
//! transaction that touches its key in the certified compact blocks, keeping the ledger's own
//! state of each account ([`AccountState::follow`]) and the balance it decrypts, and checks
//! after each one that the state holds that balance.

use crate::{Wallet, WalletError};
use shoji_confidential::{PublicKey, Role};
use shoji_ledger::{AccountId, AccountState, CompactBlock};
use shoji_primitives::account::{AccountTx, RedeemHeader, TransferHeader};
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::Reader;
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::Address;
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{AccountDebit, Transaction, TxId, TxKind};
use shoji_prover::{ProvenTransaction, TransferBuilder, UnprovenTransaction};

/// One of the wallet's accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountBook {
    /// The ledger's state of the account, as the certified blocks made it.
    pub state: AccountState,
    /// Its balance, decrypted.
    pub balance: u64,
}

/// A payment in or out of one of the wallet's accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountEntry {
    /// The transaction id.
    pub txid: TxId,
    /// Its block height.
    pub height: u64,
    /// The asset.
    pub asset: AssetId,
    /// Value in (positive) or out (negative).
    pub value: i128,
    /// The other account's key (none for a mint, redemption, shield or unshield).
    pub counterparty: Option<PublicKey>,
}

impl Wallet {
    /// This wallet's account key (what others pay to).
    pub fn account_key(&self) -> PublicKey {
        self.account_secret.public()
    }

    /// The wallet's account for `asset`, if opened.
    pub fn account(&self, asset: AssetId) -> Option<&AccountBook> {
        self.accounts.get(&asset)
    }

    /// The wallet's accounts.
    pub fn accounts(&self) -> impl Iterator<Item = (&AssetId, &AccountBook)> {
        self.accounts.iter()
    }

    /// Payments in and out of the wallet's accounts, oldest first.
    pub fn account_history(&self) -> &[AccountEntry] {
        &self.account_history
    }

    /// The transaction that opens this wallet's account for `asset`.
    pub fn open_account(
        &self,
        asset: AssetId,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<AccountTx, WalletError> {
        if self.accounts.contains_key(&asset) {
            return Err(WalletError::AccountExists(asset.0));
        }
        Ok(AccountTx::open(
            &self.network,
            &self.account_secret,
            asset,
            rng,
        ))
    }

    fn book(&self, asset: AssetId, amount: u64) -> Result<&AccountBook, WalletError> {
        let book = self
            .accounts
            .get(&asset)
            .ok_or(WalletError::NoAccount(asset.0))?;
        if book.balance < amount {
            return Err(WalletError::InsufficientFunds {
                asset: asset.0,
                available: book.balance.into(),
                needed: amount,
            });
        }
        Ok(book)
    }

    /// A payment of `amount` of `asset` from this wallet's account to the account `to`, its
    /// amount encrypted for the auditor `auditor`, valid until `expiry_height`.
    pub fn account_send(
        &self,
        to: &PublicKey,
        asset: AssetId,
        amount: u64,
        auditor: &PublicKey,
        expiry_height: u64,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<AccountTx, WalletError> {
        let book = self.book(asset, amount)?;
        let header = TransferHeader {
            asset,
            sender: self.account_key(),
            receiver: *to,
            auditor: *auditor,
            sequence: book.state.sequence,
            credits: book.state.credits,
            expiry_height,
            spendable: book.state.balance(),
        };
        AccountTx::transfer(
            &self.network,
            &self.account_secret,
            header,
            book.balance,
            amount,
            rng,
        )
        .map_err(WalletError::AccountProof)
    }

    /// A redemption of `amount` of `asset` from this wallet's account to `issuer`.
    pub fn account_redeem(
        &self,
        issuer: [u8; 32],
        asset: AssetId,
        amount: u64,
        expiry_height: u64,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<AccountTx, WalletError> {
        let book = self.book(asset, amount)?;
        let header = RedeemHeader {
            asset,
            account: self.account_key(),
            issuer,
            value: Amount(amount),
            sequence: book.state.sequence,
            credits: book.state.credits,
            expiry_height,
            spendable: book.state.balance(),
        };
        AccountTx::redeem(
            &self.network,
            &self.account_secret,
            header,
            book.balance,
            rng,
        )
        .map_err(WalletError::AccountProof)
    }

    /// Builds a shield of `amount` of `asset` from this wallet's account into a note paid to
    /// `to` (this wallet's address for its own notes), with the note auditor `auditor`. Prove
    /// it, then finish it with [`Wallet::authorize_shield`].
    #[allow(clippy::too_many_arguments)]
    pub fn account_shield(
        &self,
        to: Address,
        asset: AssetId,
        amount: Amount,
        memo: Memo,
        auditor: AuditPublicKey,
        expiry_height: u64,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<UnprovenTransaction, WalletError> {
        let book = self.book(asset, amount.0)?;
        let debit = AccountDebit {
            account: self.account_key(),
            sequence: book.state.sequence,
            credits: book.state.credits,
            spendable: book.state.balance(),
        };
        let mut b = TransferBuilder::shield(
            &self.keys,
            asset,
            amount,
            self.frontier.root(),
            auditor,
            debit,
        );
        b.pay(to, amount, memo)?;
        b.expiry_height(expiry_height).network(self.network);
        Ok(b.build(rng)?)
    }

    /// Finishes a proven shield built by [`Wallet::account_shield`] with this wallet's
    /// withdrawal proof (nothing may be scanned in between: the proof spends the balance the
    /// shield names).
    pub fn authorize_shield(
        &self,
        proven: ProvenTransaction,
        asset: AssetId,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Transaction, WalletError> {
        let book = self
            .accounts
            .get(&asset)
            .ok_or(WalletError::NoAccount(asset.0))?;
        Ok(proven.authorize_shield(&self.account_secret, book.balance, rng)?)
    }

    /// Builds an unshield of `amount` of `asset` from this wallet's notes into the account
    /// `to` (change back to the wallet's notes), with the note auditor `auditor`.
    pub fn account_unshield(
        &self,
        to: &PublicKey,
        asset: AssetId,
        amount: Amount,
        auditor: AuditPublicKey,
        expiry_height: u64,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<UnprovenTransaction, WalletError> {
        if *to == self.account_key() && !self.accounts.contains_key(&asset) {
            return Err(WalletError::NoAccount(asset.0));
        }
        let chosen = self.select(asset, amount)?;
        let mut b = TransferBuilder::unshield(
            &self.keys,
            asset,
            amount,
            self.frontier.root(),
            auditor,
            *to,
        );
        self.spend_into(&mut b, &chosen)?;
        b.expiry_height(expiry_height).network(self.network);
        Ok(b.build(rng)?)
    }

    /// Follows a block's applied shields and unshields that debit or credit this wallet's
    /// accounts, then its applied account transactions that touch its key, in the ledger's
    /// order.
    pub(crate) fn scan_accounts(&mut self, block: &CompactBlock) -> Result<(), WalletError> {
        let me = self.account_key();
        for tx in &block.txs {
            let Some(id) = AccountState::bridged(tx) else {
                continue;
            };
            if id.key != me.to_bytes() {
                continue;
            }
            let Some(book) = self.accounts.get_mut(&id.asset) else {
                continue;
            };
            let change = match tx.kind {
                TxKind::Shield => -i128::from(tx.value_in.0),
                _ => i128::from(tx.value_out.0),
            };
            book.state.follow_bridge(&id, tx);
            self.record(block.height, id.asset, tx.txid, change, None)?;
        }
        for tx in &block.accounts {
            if let AccountTx::Open(o) = tx {
                if o.key == me {
                    self.accounts.insert(
                        o.asset,
                        AccountBook {
                            state: AccountState::new(),
                            balance: 0,
                        },
                    );
                }
                continue;
            }
            let asset = tx.asset();
            let id = AccountId::new(&me, asset);
            let Some(book) = self.accounts.get_mut(&asset) else {
                continue;
            };
            if !AccountState::touched(tx).contains(&id) {
                continue;
            }
            let (change, counterparty) = match tx {
                AccountTx::Transfer(t) => {
                    let h = &t.header;
                    let mut change = 0i128;
                    if h.sender == me {
                        change -= i128::from(
                            t.amount
                                .decrypt(Role::Sender, &self.account_secret)
                                .map_err(WalletError::AccountProof)?,
                        );
                    }
                    if h.receiver == me {
                        change += i128::from(
                            t.amount
                                .decrypt(Role::Receiver, &self.account_secret)
                                .map_err(WalletError::AccountProof)?,
                        );
                    }
                    let other = if h.sender == me { h.receiver } else { h.sender };
                    (change, Some(other))
                }
                AccountTx::Mint(m) => (i128::from(m.value.0), None),
                AccountTx::Redeem(r) => (-i128::from(r.header.value.0), None),
                AccountTx::Open(_) => (0, None),
            };
            book.state.follow(&id, tx);
            self.record(block.height, asset, tx.id(), change, counterparty)?;
        }
        Ok(())
    }

    /// After the account of `asset` followed a transaction that moved `change`: the new
    /// balance, checked against the ledger's ciphertext, and the history entry.
    fn record(
        &mut self,
        height: u64,
        asset: AssetId,
        txid: TxId,
        change: i128,
        counterparty: Option<PublicKey>,
    ) -> Result<(), WalletError> {
        let Some(book) = self.accounts.get_mut(&asset) else {
            return Ok(());
        };
        book.balance = u64::try_from(i128::from(book.balance) + change)
            .map_err(|_| WalletError::Corrupt("an account balance out of range"))?;
        if !book
            .state
            .balance()
            .holds(&self.account_secret, book.balance)
        {
            return Err(WalletError::AccountMismatch(height));
        }
        self.account_history.push(AccountEntry {
            txid,
            height,
            asset,
            value: change,
            counterparty,
        });
        Ok(())
    }
}

/// `count:u32 ‖ (asset:u64 ‖ balance:u64 ‖ len:u32 ‖ state)*` then
/// `count:u32 ‖ (txid ‖ height:u64 ‖ asset:u64 ‖ value:i128 ‖ has:u8 ‖ [key])*`.
pub(crate) fn write(w: &Wallet, out: &mut Vec<u8>) {
    out.extend_from_slice(&(w.accounts.len() as u32).to_le_bytes());
    for (asset, book) in &w.accounts {
        let state = book.state.to_bytes();
        out.extend_from_slice(&asset.0.to_le_bytes());
        out.extend_from_slice(&book.balance.to_le_bytes());
        out.extend_from_slice(&(state.len() as u32).to_le_bytes());
        out.extend_from_slice(&state);
    }
    out.extend_from_slice(&(w.account_history.len() as u32).to_le_bytes());
    for e in &w.account_history {
        out.extend_from_slice(&e.txid.0);
        out.extend_from_slice(&e.height.to_le_bytes());
        out.extend_from_slice(&e.asset.0.to_le_bytes());
        out.extend_from_slice(&e.value.to_le_bytes());
        match &e.counterparty {
            Some(k) => {
                out.push(1);
                out.extend_from_slice(&k.to_bytes());
            }
            None => out.push(0),
        }
    }
}

/// At least the length [`write`] gives.
pub(crate) fn bound(w: &Wallet) -> usize {
    let states: usize = w
        .accounts
        .values()
        .map(|b| 20 + b.state.to_bytes().len())
        .sum();
    8 + states + w.account_history.len() * (32 + 8 + 8 + 16 + 1 + 32)
}

pub(crate) fn read(w: &mut Wallet, r: &mut Reader<'_>) -> Result<(), WalletError> {
    let n = r.u32()?;
    for _ in 0..n {
        let asset = AssetId(r.u64()?);
        let balance = r.u64()?;
        let len = r.u32()? as usize;
        let state = AccountState::from_bytes(r.take(len)?)?;
        if !state.balance().holds(&w.account_secret, balance) {
            return Err(WalletError::Corrupt(
                "a saved account does not hold its saved balance",
            ));
        }
        w.accounts.insert(asset, AccountBook { state, balance });
    }
    let n = r.u32()?;
    for _ in 0..n {
        let txid = TxId(r.array()?);
        let height = r.u64()?;
        let asset = AssetId(r.u64()?);
        let value = i128::from_le_bytes(r.array()?);
        let counterparty = match r.u8()? {
            0 => None,
            1 => Some(
                PublicKey::from_bytes(&r.array()?)
                    .map_err(|_| WalletError::Corrupt("a saved account key"))?,
            ),
            _ => return Err(WalletError::Corrupt("a saved account entry")),
        };
        w.account_history.push(AccountEntry {
            txid,
            height,
            asset,
            value,
            counterparty,
        });
    }
    Ok(())
}
