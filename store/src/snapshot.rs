//! How the store rebuilds the [`shoji_ledger::Ledger`]: it keeps the ledger's head (height,
//! block time, frontier, recent roots, nullifier chain) and its nullifiers, and restores with
//! [`shoji_ledger::Ledger::restore`] and the genesis configuration (which is not stored here).
//! The [`SnapshotLedger`] trait lets tests wrap the ledger in a model.

pub use shoji_ledger::{chain_nullifier, LedgerHead, LedgerSnapshot};
use shoji_ledger::{Ledger, LedgerConfig};

/// What the store needs of a ledger: its head after a block, and a way back from a snapshot.
pub trait SnapshotLedger: Sized {
    /// The current head, after the last applied block.
    fn head(&self) -> LedgerHead;
    /// Rebuilds a ledger from its configuration and a snapshot; the error says why not.
    fn restore(config: LedgerConfig, snapshot: LedgerSnapshot) -> Result<Self, String>;
}

impl SnapshotLedger for Ledger {
    fn head(&self) -> LedgerHead {
        Ledger::head(self)
    }

    fn restore(config: LedgerConfig, snapshot: LedgerSnapshot) -> Result<Self, String> {
        Ledger::restore(config, snapshot).map_err(|e| e.to_string())
    }
}
