//! The wallet's core: it scans compact blocks, keeps its own commitment tree and a witness for
//! each of its notes (it never tells anyone which notes are its own), and builds payments.
//!
//! A note is marked spent only when a block that reveals its nullifier is scanned — never when a
//! payment is merely built or submitted — so a transaction that never commits loses nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use shoji_ledger::CompactBlock;
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encryption::{try_decrypt_note, try_recover_outgoing, Memo};
use shoji_primitives::keys::{Address, SpendingKeys, WalletSeed};
use shoji_primitives::note::{output_rho, Amount, AssetId, Note};
use shoji_primitives::tree::{Frontier, IncrementalWitness, TreeError};
use shoji_primitives::tx::TxId;
use shoji_primitives::Fr;
use shoji_prover::{BuildError, SpendableNote, TransferBuilder, UnprovenTransaction};

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

/// One line of history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryEntry {
    /// A note received.
    Received {
        /// Transaction.
        txid: TxId,
        /// Height.
        height: u64,
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
    #[error("tree root after block {0} differs from the block's root")]
    RootMismatch(u64),
    /// Tree error.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Building failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// A wallet: keys, tree, notes, history.
pub struct Wallet {
    keys: SpendingKeys,
    frontier: Frontier,
    height: u64,
    notes: Vec<OwnedNote>,
    history: Vec<HistoryEntry>,
}

impl Wallet {
    /// A wallet for `seed` that has scanned nothing.
    pub fn new(seed: &WalletSeed) -> Self {
        Self {
            keys: SpendingKeys::from_seed(seed),
            frontier: Frontier::new(),
            height: 0,
            notes: Vec::new(),
            history: Vec::new(),
        }
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
    /// current), and trial-decrypts every output, as receiver and as sender.
    pub fn scan(&mut self, block: &CompactBlock) -> Result<(), WalletError> {
        if block.height != self.height + 1 {
            return Err(WalletError::OutOfOrder {
                expected: self.height + 1,
                got: block.height,
            });
        }
        for tx in &block.txs {
            for n in self.notes.iter_mut() {
                if n.spent_at.is_none() && tx.nullifiers.contains(&n.nullifier) {
                    n.spent_at = Some(block.height);
                }
            }
            for j in 0..2 {
                let cm = tx.commitments[j];
                let rho = output_rho(&tx.nullifiers, j);
                let mine = try_decrypt_note(&self.keys, &tx.outputs[j], &cm, rho);
                let completed = if let Some((note, memo)) = mine {
                    let (witness, completed) = IncrementalWitness::append(&mut self.frontier, cm)?;
                    if note.value.0 > 0 {
                        self.history.push(HistoryEntry::Received {
                            txid: tx.txid,
                            height: block.height,
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
                if let Some((note, to, memo)) =
                    try_recover_outgoing(&self.keys.ovk, &tx.outputs[j], &cm, rho)
                {
                    if to.apk != self.keys.apk && note.value.0 > 0 {
                        self.history.push(HistoryEntry::Sent {
                            txid: tx.txid,
                            height: block.height,
                            to,
                            asset: note.asset,
                            value: note.value,
                            memo: memo.to_text(),
                        });
                    }
                }
            }
        }
        if self.frontier.root() != block.tree_root {
            return Err(WalletError::RootMismatch(block.height));
        }
        self.height = block.height;
        Ok(())
    }

    /// Unspent value of `asset`.
    pub fn balance(&self, asset: AssetId) -> Amount {
        Amount(self.unspent(asset).map(|n| n.note.value.0).sum())
    }

    fn unspent(&self, asset: AssetId) -> impl Iterator<Item = &OwnedNote> {
        self.notes
            .iter()
            .filter(move |n| n.spent_at.is_none() && n.note.asset == asset && n.note.value.0 > 0)
    }

    /// Builds a payment of `amount` of `asset` to `to`: spends the fewest, largest notes that
    /// cover it (at most two), change back to this wallet. The anchor is the wallet's current root.
    pub fn pay(
        &self,
        to: Address,
        asset: AssetId,
        amount: Amount,
        memo: Memo,
        auditor: AuditPublicKey,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Result<UnprovenTransaction, WalletError> {
        let mut candidates: Vec<&OwnedNote> = self.unspent(asset).collect();
        candidates.sort_by_key(|n| std::cmp::Reverse(n.note.value));
        let chosen: Vec<&OwnedNote> = match candidates.iter().position(|n| n.note.value >= amount) {
            // The smallest single note that covers the amount.
            Some(_) => candidates
                .iter()
                .rev()
                .find(|n| n.note.value >= amount)
                .into_iter()
                .copied()
                .collect(),
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
        let anchor = self.frontier.root();
        let mut b = TransferBuilder::transfer(&self.keys, asset, anchor, auditor);
        for n in chosen {
            b.spend(SpendableNote {
                note: n.note,
                path: n.witness.path(&self.frontier)?,
            })?;
        }
        b.pay(to, amount, memo)?;
        Ok(b.build(rng)?)
    }
}
