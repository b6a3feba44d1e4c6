//! The wallet's core: it scans compact blocks, keeps its own commitment tree and a witness for
//! each of its notes (it never tells anyone which notes are its own), and builds payments.
//!
//! A note is marked spent only when a block that reveals its nullifier is scanned — never when a
//! payment is merely built or submitted — so a transaction that never commits loses nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
pub mod backup;
pub mod escrow;
mod settle;
pub use accounts::{AccountBook, AccountEntry};
pub use settle::{Answer, Settlement};

use rayon::prelude::*;
use shoji_ledger::{CompactBlock, CompactTx};
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::{fr_to_bytes, Reader};
use shoji_primitives::encryption::{
    try_decrypt_notes, try_recover_outgoing, Memo, TrialOutput, MEMO_BYTES,
};
use shoji_primitives::keys::{Address, SpendingKeys, WalletSeed};
use shoji_primitives::note::{output_rho, Amount, AssetId, Note};
use shoji_primitives::tree::{Frontier, IncrementalWitness, TreeError};
use shoji_primitives::tx::TxId;
use shoji_primitives::Fr;
use shoji_prover::{BuildError, SpendableNote, TransferBuilder, UnprovenTransaction};
use zeroize::Zeroizing;

/// A note this wallet received.
#[derive(Clone, Debug)]
pub struct OwnedNote {
    /// The note.
    pub note: Note,
    /// Its memo.
    pub memo: Memo,
    /// Its nullifier.
    pub nullifier: Fr,
    /// Its witness, kept current while scanning.
    pub witness: IncrementalWitness,
    /// The transaction that created it.
    pub txid: TxId,
    /// Height at which it was received.
    pub height: u64,
    /// Height of the block that spent it.
    pub spent_at: Option<u64>,
}

/// One line of history. Change returned to the wallet is not listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryEntry {
    /// A note received.
    Received {
        /// Transaction.
        txid: TxId,
        /// Height.
        height: u64,
        /// Block time (Unix milliseconds).
        time_ms: u64,
        /// Asset.
        asset: AssetId,
        /// Amount.
        value: Amount,
        /// Memo text.
        memo: String,
    },
    /// A payment this wallet made to someone else (change to itself is not listed).
    Sent {
        /// Transaction.
        txid: TxId,
        /// Height.
        height: u64,
        /// Block time (Unix milliseconds).
        time_ms: u64,
        /// Receiver.
        to: Address,
        /// Asset.
        asset: AssetId,
        /// Amount.
        value: Amount,
        /// Memo text.
        memo: String,
    },
}

/// Wallet errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// Not enough spendable value in at most two notes.
    #[error("insufficient funds: {available} of asset {asset} spendable in at most two notes, {needed} needed")]
    InsufficientFunds {
        /// Asset.
        asset: u64,
        /// Spendable in the two largest notes.
        available: u128,
        /// Requested.
        needed: u64,
    },
    /// A block out of order.
    #[error("expected block {expected}, got {got}: sync from the last scanned height")]
    OutOfOrder {
        /// The next height.
        expected: u64,
        /// The height given.
        got: u64,
    },
    /// The tree disagrees with the block's root: the node served inconsistent data.
    #[error("tree root after block {0} differs from the block's root: the validator served inconsistent blocks")]
    RootMismatch(u64),
    /// Tree error.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Building failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A saved wallet state is damaged.
    #[error("the wallet state is damaged: {0}")]
    Corrupt(&'static str),
    /// A saved wallet state is malformed.
    #[error("the wallet state is malformed: {0}")]
    Encoding(#[from] shoji_primitives::encoding::EncodingError),
    /// The wallet has no account for the asset.
    #[error("no account for asset {0}: open one first (shoji-wallet account open)")]
    NoAccount(u64),
    /// The wallet's account for the asset is already open.
    #[error("the account for asset {0} is already open")]
    AccountExists(u64),
    /// An account proof could not be made, or an amount not decrypted.
    #[error("account: {0}")]
    AccountProof(shoji_confidential::Error),
    /// After a certified block, the account's state does not hold the balance the wallet
    /// decrypted: the validators' blocks and this wallet disagree.
    #[error("after block {0}, the account's ciphertext does not hold the decrypted balance")]
    AccountMismatch(u64),
}

/// A transaction this wallet submitted that is not final yet. Its notes stay unspent (they
/// are only withheld from new payments) until a block reveals their nullifiers; if the
/// transaction expires uncommitted, they become spendable again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The transaction.
    pub txid: TxId,
    /// Nullifiers it reveals.
    pub nullifiers: [Fr; 2],
    /// Last height at which it can commit.
    pub expiry_height: u64,
    /// Asset.
    pub asset: AssetId,
    /// Amount paid (to someone else).
    pub amount: Amount,
    /// Receiver, if a payment.
    pub to: Option<Address>,
}

/// A wallet: keys, tree, notes, history.
pub struct Wallet {
    seed: WalletSeed,
    keys: SpendingKeys,
    frontier: Frontier,
    height: u64,
    notes: Vec<OwnedNote>,
    history: Vec<HistoryEntry>,
    pending: Vec<Pending>,
    /// The network its transactions are for ([`Wallet::set_network`]; not saved: it comes
    /// from the network file each time).
    network: [u8; 32],
    /// Pending transactions this process saw committed, with their heights (not saved).
    confirmed: Vec<(TxId, u64)>,
    /// The confidential-account key (derived from the seed).
    account_secret: shoji_confidential::SecretKey,
    /// The wallet's confidential accounts, by asset.
    accounts: std::collections::BTreeMap<AssetId, AccountBook>,
    /// Payments in and out of them.
    account_history: Vec<AccountEntry>,
}

/// What trial decryption found in one output.
/// Outputs trial-decrypted together (a multiple of the key agreement's lanes; small enough that
/// a short batch of blocks still spreads over every core).
const TRIAL_CHUNK: usize = 64;

struct Trial {
    /// The output is ours.
    mine: Option<(Note, Memo)>,
    /// We sent it (recovered with the outgoing key).
    sent: Option<(Note, Address, Memo)>,
}

/// Version of [`Wallet::to_bytes`] (2: the confidential accounts follow; a version-1 state,
/// which has none, is read and saved as version 2).
const STATE_VERSION: u8 = 2;

impl Wallet {
    /// A wallet for `seed` that has scanned nothing.
    pub fn new(seed: &WalletSeed) -> Self {
        Self {
            seed: WalletSeed(seed.0),
            keys: SpendingKeys::from_seed(seed),
            frontier: Frontier::new(),
            height: 0,
            notes: Vec::new(),
            history: Vec::new(),
            pending: Vec::new(),
            network: [0; 32],
            confirmed: Vec::new(),
            account_secret: shoji_confidential::SecretKey::account(&seed.0),
            accounts: std::collections::BTreeMap::new(),
            account_history: Vec::new(),
        }
    }

    /// Builds transactions for `network` (its genesis hash, from the network file): validators
    /// refuse a transaction for another network.
    pub fn set_network(&mut self, network: [u8; 32]) {
        self.network = network;
    }

    /// The height at which a block committed the pending transaction `txid`, if this wallet
    /// scanned that block since it was opened. Ids leave the proof out, so this finds the
    /// payment whatever proof bytes the network ordered (a faulty validator may rerandomize a
    /// proof and order its twin first; the sender's own copy is then refused as a double
    /// spend, but the payment happened).
    pub fn committed_height(&self, txid: &TxId) -> Option<u64> {
        self.confirmed
            .iter()
            .find(|(id, _)| id == txid)
            .map(|(_, h)| *h)
    }

    /// The seed (to show as a phrase once, at creation).
    pub fn seed(&self) -> &WalletSeed {
        &self.seed
    }

    /// Transactions submitted and not yet final.
    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// Records a submitted transaction: until it commits or expires, its input notes are not
    /// offered to new payments (they are still counted as the wallet's).
    pub fn add_pending(&mut self, p: Pending) {
        if !self.pending.iter().any(|q| q.txid == p.txid) {
            self.pending.push(p);
        }
    }

    /// Forgets a pending transaction (for example one a validator refused outright).
    pub fn drop_pending(&mut self, txid: &TxId) {
        self.pending.retain(|p| p.txid != *txid);
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        self.keys.address()
    }

    /// The wallet's keys.
    pub fn keys(&self) -> &SpendingKeys {
        &self.keys
    }

    /// Last scanned height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The wallet's copy of the tree.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// Every note received, spent or not.
    pub fn notes(&self) -> &[OwnedNote] {
        &self.notes
    }

    /// The history, oldest first.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Scans the next block: marks spent notes, appends every commitment (keeping witnesses
    /// current), and trial-decrypts every output, as receiver and as sender. Checks the wallet's
    /// tree against the block's root.
    pub fn scan(&mut self, block: &CompactBlock) -> Result<(), WalletError> {
        self.scan_blocks(std::slice::from_ref(block))
    }

    /// Scans consecutive blocks, checking the tree against the root of the last one only (a
    /// root costs sixteen hashes; a chain of small blocks would spend most of its scan on
    /// them). On an error the wallet must be discarded: it may have scanned part of the batch.
    pub fn scan_blocks(&mut self, blocks: &[CompactBlock]) -> Result<(), WalletError> {
        // Trial decryption is independent per output: do it on every core, in chunks whose key
        // agreements are computed side by side, then apply the results in order.
        let outputs: Vec<(&CompactTx, usize)> = blocks
            .iter()
            .flat_map(|b| b.txs.iter())
            .flat_map(|tx| [(tx, 0), (tx, 1)])
            .collect();
        let keys = &self.keys;
        let chunks: Vec<Vec<Trial>> = outputs
            .par_chunks(TRIAL_CHUNK)
            .map(|chunk| {
                let inputs: Vec<TrialOutput<'_>> = chunk
                    .iter()
                    .map(|(tx, j)| TrialOutput {
                        ciphertext: &tx.outputs[*j],
                        cm: tx.commitments[*j],
                        rho: output_rho(&tx.nullifiers, *j),
                    })
                    .collect();
                try_decrypt_notes(keys, &inputs)
                    .into_iter()
                    .zip(&inputs)
                    .map(|(mine, o)| Trial {
                        mine,
                        sent: try_recover_outgoing(&keys.ovk, o.ciphertext, &o.cm, o.rho),
                    })
                    .collect()
            })
            .collect();
        let trials: Vec<Trial> = chunks.into_iter().flatten().collect();
        let mut trials = trials.into_iter();
        for block in blocks {
            self.scan_one(block, &mut trials)?;
        }
        if let Some(last) = blocks.last() {
            if self.frontier.root() != last.tree_root {
                return Err(WalletError::RootMismatch(last.height));
            }
        }
        Ok(())
    }

    fn scan_one(
        &mut self,
        block: &CompactBlock,
        trials: &mut impl Iterator<Item = Trial>,
    ) -> Result<(), WalletError> {
        if block.height != self.height + 1 {
            return Err(WalletError::OutOfOrder {
                expected: self.height + 1,
                got: block.height,
            });
        }
        for tx in &block.txs {
            // Outputs of a transaction that spends our notes are change, not receipts.
            let ours = self
                .notes
                .iter()
                .any(|n| tx.nullifiers.contains(&n.nullifier));
            for n in self.notes.iter_mut() {
                if n.spent_at.is_none() && tx.nullifiers.contains(&n.nullifier) {
                    n.spent_at = Some(block.height);
                }
            }
            for j in 0..2 {
                let cm = tx.commitments[j];
                let Some(Trial { mine, sent }) = trials.next() else {
                    return Err(WalletError::Corrupt("trial decryptions out of step"));
                };
                let completed = if let Some((note, memo)) = mine {
                    let (witness, completed) = IncrementalWitness::append(&mut self.frontier, cm)?;
                    if note.value.0 > 0 && !ours {
                        self.history.push(HistoryEntry::Received {
                            txid: tx.txid,
                            height: block.height,
                            time_ms: block.time_ms,
                            asset: note.asset,
                            value: note.value,
                            memo: memo.to_text(),
                        });
                    }
                    self.notes.push(OwnedNote {
                        nullifier: note.nullifier(&self.keys.nk),
                        note,
                        memo,
                        witness,
                        txid: tx.txid,
                        height: block.height,
                        spent_at: None,
                    });
                    completed
                } else {
                    self.frontier.append(cm)?
                };
                for n in self.notes.iter_mut().filter(|n| n.spent_at.is_none()) {
                    n.witness.observe(&completed);
                }
                if let Some((note, to, memo)) = sent {
                    if to.apk != self.keys.apk && note.value.0 > 0 {
                        self.history.push(HistoryEntry::Sent {
                            txid: tx.txid,
                            height: block.height,
                            time_ms: block.time_ms,
                            to,
                            asset: note.asset,
                            value: note.value,
                            memo: memo.to_text(),
                        });
                    }
                }
            }
        }
        let committed: Vec<TxId> = block.txs.iter().map(|t| t.txid).collect();
        for p in &self.pending {
            if committed.contains(&p.txid) {
                self.confirmed.push((p.txid, block.height));
            }
        }
        self.pending
            .retain(|p| !committed.contains(&p.txid) && p.expiry_height > block.height);
        self.scan_accounts(block)?;
        self.height = block.height;
        Ok(())
    }

    /// Unspent value of `asset`. Each note holds at most 2^64 − 1, and a wallet may hold many:
    /// the sum is wider than a note's value, so it never wraps.
    pub fn balance(&self, asset: AssetId) -> u128 {
        self.unspent(asset).map(|n| n.note.value.0 as u128).sum()
    }

    /// Value of `asset` held in notes that a pending transaction spends (not spendable until it
    /// commits or expires); as wide as [`Wallet::balance`].
    pub fn pending_balance(&self, asset: AssetId) -> u128 {
        self.unspent(asset)
            .filter(|n| self.is_pending(n))
            .map(|n| n.note.value.0 as u128)
            .sum()
    }

    /// Assets this wallet has ever received.
    pub fn assets(&self) -> Vec<AssetId> {
        let mut a: Vec<AssetId> = self.notes.iter().map(|n| n.note.asset).collect();
        a.sort();
        a.dedup();
        a
    }

    fn is_pending(&self, n: &OwnedNote) -> bool {
        self.pending
            .iter()
            .any(|p| p.nullifiers.contains(&n.nullifier))
    }

    fn unspent(&self, asset: AssetId) -> impl Iterator<Item = &OwnedNote> {
        self.notes
            .iter()
            .filter(move |n| n.spent_at.is_none() && n.note.asset == asset && n.note.value.0 > 0)
    }

    /// The fewest, smallest notes not withheld by a pending transaction that cover `amount`
    /// (at most two).
    pub(crate) fn select(
        &self,
        asset: AssetId,
        amount: Amount,
    ) -> Result<Vec<&OwnedNote>, WalletError> {
        let mut candidates: Vec<&OwnedNote> = self
            .unspent(asset)
            .filter(|n| !self.is_pending(n))
            .collect();
        candidates.sort_by_key(|n| std::cmp::Reverse(n.note.value));
        let chosen: Vec<&OwnedNote> = match candidates.iter().rev().find(|n| n.note.value >= amount)
        {
            // The smallest single note that covers the amount.
            Some(n) => vec![*n],
            None => candidates.iter().take(2).copied().collect(),
        };
        let available: u128 = chosen.iter().map(|n| n.note.value.0 as u128).sum();
        if available < amount.0 as u128 {
            return Err(WalletError::InsufficientFunds {
                asset: asset.0,
                available,
                needed: amount.0,
            });
        }
        Ok(chosen)
    }

    /// Builds a payment of `amount` of `asset` to `to`: spends the fewest, smallest notes that
    /// cover it (at most two), change back to this wallet. The anchor is the wallet's current
    /// root; the transaction cannot commit after `expiry_height`.
    #[allow(clippy::too_many_arguments)]
    pub fn pay(
        &self,
        to: Address,
        asset: AssetId,
        amount: Amount,
        memo: Memo,
        auditor: AuditPublicKey,
        expiry_height: u64,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<UnprovenTransaction, WalletError> {
        let chosen = self.select(asset, amount)?;
        let mut b = TransferBuilder::transfer(&self.keys, asset, self.frontier.root(), auditor);
        self.spend_into(&mut b, &chosen)?;
        b.pay(to, amount, memo)?;
        b.expiry_height(expiry_height).network(self.network);
        Ok(b.build(rng)?)
    }

    /// Builds a redemption of `amount` of `asset` back to `issuer` (public value out), with
    /// change back to this wallet.
    pub fn redeem(
        &self,
        asset: AssetId,
        amount: Amount,
        issuer: [u8; 32],
        auditor: AuditPublicKey,
        expiry_height: u64,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<UnprovenTransaction, WalletError> {
        let chosen = self.select(asset, amount)?;
        let mut b = TransferBuilder::redeem(
            &self.keys,
            asset,
            amount,
            self.frontier.root(),
            auditor,
            issuer,
        );
        self.spend_into(&mut b, &chosen)?;
        b.expiry_height(expiry_height).network(self.network);
        Ok(b.build(rng)?)
    }

    /// Builds a mint of `amount` of `asset` to `to` (sign it with the issuer's key after proving).
    /// The wallet only supplies the dummy inputs; `anchor` may be any recent root.
    #[allow(clippy::too_many_arguments)]
    pub fn mint(
        &self,
        to: Address,
        asset: AssetId,
        amount: Amount,
        memo: Memo,
        anchor: Fr,
        auditor: AuditPublicKey,
        issuer: [u8; 32],
        expiry_height: u64,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<UnprovenTransaction, WalletError> {
        let mut b = TransferBuilder::mint(&self.keys, asset, amount, anchor, auditor, issuer);
        b.pay(to, amount, memo)?;
        b.expiry_height(expiry_height).network(self.network);
        Ok(b.build(rng)?)
    }

    pub(crate) fn spend_into(
        &self,
        b: &mut TransferBuilder<'_>,
        chosen: &[&OwnedNote],
    ) -> Result<(), WalletError> {
        for n in chosen {
            b.spend(SpendableNote {
                note: n.note,
                path: n.witness.path(&self.frontier)?,
            })?;
        }
        Ok(())
    }

    /// The wallet's whole state, for saving (inside an encrypted file: it holds the seed).
    ///
    /// The buffer is zeroized when dropped and sized up front for everything written, so no
    /// reallocation leaves a copy of the seed or the notes behind in freed memory.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.state_bytes_bound()));
        let capacity = out.capacity();
        out.push(STATE_VERSION);
        out.extend_from_slice(&self.seed.0);
        out.extend_from_slice(&self.height.to_le_bytes());
        self.frontier.write(&mut out);
        out.extend_from_slice(&(self.notes.len() as u64).to_le_bytes());
        for n in &self.notes {
            out.extend_from_slice(&n.note.asset.0.to_le_bytes());
            out.extend_from_slice(&n.note.value.0.to_le_bytes());
            for f in [n.note.owner, n.note.rho, n.note.rcm] {
                out.extend_from_slice(&fr_to_bytes(&f));
            }
            out.extend_from_slice(&n.memo.0);
            n.witness.write(&mut out);
            out.extend_from_slice(&n.txid.0);
            out.extend_from_slice(&n.height.to_le_bytes());
            out.extend_from_slice(&n.spent_at.map_or(0, |h| h + 1).to_le_bytes());
        }
        out.extend_from_slice(&(self.history.len() as u64).to_le_bytes());
        for h in &self.history {
            let (tag, txid, height, time_ms, to, asset, value, memo) = match h {
                HistoryEntry::Received {
                    txid,
                    height,
                    time_ms,
                    asset,
                    value,
                    memo,
                } => (0u8, txid, height, time_ms, None, asset, value, memo),
                HistoryEntry::Sent {
                    txid,
                    height,
                    time_ms,
                    to,
                    asset,
                    value,
                    memo,
                } => (1u8, txid, height, time_ms, Some(to), asset, value, memo),
            };
            out.push(tag);
            out.extend_from_slice(&txid.0);
            out.extend_from_slice(&height.to_le_bytes());
            out.extend_from_slice(&time_ms.to_le_bytes());
            if let Some(to) = to {
                out.extend_from_slice(&to.to_bytes());
            }
            out.extend_from_slice(&asset.0.to_le_bytes());
            out.extend_from_slice(&value.0.to_le_bytes());
            write_text(&mut out, memo);
        }
        out.extend_from_slice(&(self.pending.len() as u64).to_le_bytes());
        for p in &self.pending {
            out.extend_from_slice(&p.txid.0);
            out.extend_from_slice(&fr_to_bytes(&p.nullifiers[0]));
            out.extend_from_slice(&fr_to_bytes(&p.nullifiers[1]));
            out.extend_from_slice(&p.expiry_height.to_le_bytes());
            out.extend_from_slice(&p.asset.0.to_le_bytes());
            out.extend_from_slice(&p.amount.0.to_le_bytes());
            match &p.to {
                Some(to) => {
                    out.push(1);
                    out.extend_from_slice(&to.to_bytes());
                }
                None => out.push(0),
            }
        }
        accounts::write(self, &mut out);
        debug_assert_eq!(out.capacity(), capacity, "the state outgrew its bound");
        out
    }

    /// At least the length of [`Wallet::to_bytes`].
    fn state_bytes_bound(&self) -> usize {
        use shoji_primitives::tree::{ARITY, DEPTH};
        let frontier = 8 + (DEPTH + 1) * ARITY * 32;
        let witness = 8 + 32 + DEPTH * (1 + (ARITY - 1) * 32);
        let note = 8 + 8 + 3 * 32 + MEMO_BYTES + witness + 32 + 8 + 8;
        let history: usize = self
            .history
            .iter()
            .map(|h| match h {
                HistoryEntry::Received { memo, .. } | HistoryEntry::Sent { memo, .. } => {
                    1 + 32 + 8 + 8 + 64 + 8 + 8 + 8 + memo.len()
                }
            })
            .sum();
        let pending = 32 + 2 * 32 + 8 + 8 + 8 + 1 + 64;
        1 + 32
            + 8
            + frontier
            + 8
            + self.notes.len() * note
            + 8
            + history
            + 8
            + self.pending.len() * pending
            + accounts::bound(self)
    }

    /// Reads what [`Wallet::to_bytes`] wrote, checking that the notes belong to the seed and the
    /// witnesses lead to the saved tree's root.
    pub fn from_bytes(bytes: &[u8]) -> Result<Wallet, WalletError> {
        let mut r = Reader::new("wallet state", bytes);
        let version = r.u8()?;
        if version != STATE_VERSION && version != 1 {
            return Err(WalletError::Corrupt("unsupported wallet state version"));
        }
        let seed = WalletSeed(r.array()?);
        let mut w = Wallet::new(&seed);
        w.height = r.u64()?;
        w.frontier = Frontier::read(&mut r)?;
        let count = bounded_count(&mut r, 64)?;
        for _ in 0..count {
            let note = Note {
                asset: AssetId(r.u64()?),
                value: Amount(r.u64()?),
                owner: r.fr("note owner")?,
                rho: r.fr("note rho")?,
                rcm: r.fr("note rcm")?,
            };
            let memo = Memo(r.array()?);
            let witness = IncrementalWitness::read(&mut r)?;
            let txid = TxId(r.array()?);
            let height = r.u64()?;
            let spent_at = r.u64()?.checked_sub(1);
            if note.owner != w.keys.apk || note.commitment() != witness.leaf() {
                return Err(WalletError::Corrupt(
                    "a saved note does not belong to this wallet",
                ));
            }
            w.notes.push(OwnedNote {
                nullifier: note.nullifier(&w.keys.nk),
                note,
                memo,
                witness,
                txid,
                height,
                spent_at,
            });
        }
        let count = bounded_count(&mut r, 57)?;
        for _ in 0..count {
            let tag = r.u8()?;
            let txid = TxId(r.array()?);
            let height = r.u64()?;
            let time_ms = r.u64()?;
            let to = match tag {
                0 => None,
                1 => Some(Address::from_bytes(&r.array()?)?),
                _ => return Err(WalletError::Corrupt("unknown history entry")),
            };
            let asset = AssetId(r.u64()?);
            let value = Amount(r.u64()?);
            let memo = read_text(&mut r)?;
            w.history.push(match to {
                None => HistoryEntry::Received {
                    txid,
                    height,
                    time_ms,
                    asset,
                    value,
                    memo,
                },
                Some(to) => HistoryEntry::Sent {
                    txid,
                    height,
                    time_ms,
                    to,
                    asset,
                    value,
                    memo,
                },
            });
        }
        let count = bounded_count(&mut r, 129)?;
        for _ in 0..count {
            let txid = TxId(r.array()?);
            let nullifiers = [r.fr("pending nullifier")?, r.fr("pending nullifier")?];
            let expiry_height = r.u64()?;
            let asset = AssetId(r.u64()?);
            let amount = Amount(r.u64()?);
            let to = match r.u8()? {
                0 => None,
                1 => Some(Address::from_bytes(&r.array()?)?),
                _ => return Err(WalletError::Corrupt("bad pending entry")),
            };
            w.pending.push(Pending {
                txid,
                nullifiers,
                expiry_height,
                asset,
                amount,
                to,
            });
        }
        if version >= 2 {
            accounts::read(&mut w, &mut r)?;
        }
        r.finish()?;
        for n in w.notes.iter().filter(|n| n.spent_at.is_none()) {
            if n.witness.path(&w.frontier)?.root(n.note.commitment()) != w.frontier.root() {
                return Err(WalletError::Corrupt(
                    "a saved witness does not match the saved tree",
                ));
            }
        }
        Ok(w)
    }
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn read_text(r: &mut Reader<'_>) -> Result<String, WalletError> {
    let n = r.u64()?;
    if n > MEMO_BYTES as u64 * 4 {
        return Err(WalletError::Corrupt("memo too long"));
    }
    String::from_utf8(r.take(n as usize)?.to_vec())
        .map_err(|_| WalletError::Corrupt("memo is not UTF-8"))
}

/// A count of items at least `min_bytes` long each, refused if the remaining input cannot hold
/// that many (so a corrupt count cannot make us allocate without bound).
fn bounded_count(r: &mut Reader<'_>, min_bytes: u64) -> Result<u64, WalletError> {
    let n = r.u64()?;
    if n.saturating_mul(min_bytes) > r.remaining() as u64 {
        return Err(WalletError::Corrupt("item count exceeds the data"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two notes of 2^64 − 1 used to show a balance of 2^64 − 2 (the sum wrapped).
    #[test]
    fn balances_do_not_wrap() {
        let mut w = Wallet::new(&WalletSeed([3; 32]));
        for i in 0..2u64 {
            let note = Note {
                asset: AssetId(840),
                value: Amount(u64::MAX),
                owner: w.keys.apk,
                rho: Fr::from(i + 1),
                rcm: Fr::from(i + 7),
            };
            let (witness, _) =
                IncrementalWitness::append(&mut w.frontier, note.commitment()).expect("room");
            w.notes.push(OwnedNote {
                nullifier: note.nullifier(&w.keys.nk),
                note,
                memo: Memo::empty(),
                witness,
                txid: TxId([i as u8; 32]),
                height: 1,
                spent_at: None,
            });
        }
        assert_eq!(w.balance(AssetId(840)), 2 * u64::MAX as u128);
        assert_eq!(w.pending_balance(AssetId(840)), 0);
    }
}
