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

use crate::error::Ctx;
use crate::*;
use shoji_ledger::snapshot::{SnapshotManifest, SnapshotWriter, VerifiedSnapshot};

/// The stored state frozen at the height it had when the view was taken: later commits do not
/// change what it reads (a redb read transaction). A validator takes one right after committing
/// a snapshot height and writes the snapshot from it off the consensus thread.
pub struct StateView {
    txn: redb::ReadTransaction,
    head: LedgerHead,
    tree_root: Fr,
}

impl std::fmt::Debug for StateView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateView")
            .field("height", &self.head.height)
            .finish_non_exhaustive()
    }
}

impl StateView {
    pub(crate) fn new(txn: redb::ReadTransaction) -> Result<Self, StoreError> {
        let ledger = txn
            .open_table(LEDGER)
            .ctx(|| "opening table `ledger` for a snapshot".to_string())?;
        let head = read_head(&ledger)?;
        let tree_root = head.frontier.root();
        drop(ledger);
        Ok(StateView {
            txn,
            head,
            tree_root,
        })
    }

    /// The height the view is at.
    pub fn height(&self) -> u64 {
        self.head.height
    }

    /// The state root of the viewed state.
    pub fn state_root(&self) -> [u8; 32] {
        self.head.state_root_with(&self.tree_root)
    }

    /// Writes a snapshot of the viewed state in chunks of about `chunk_bytes`, each handed to
    /// `sink` with its index as it is made, and returns the manifest.
    pub fn write_snapshot(
        &self,
        chunk_bytes: usize,
        sink: impl FnMut(usize, &[u8]) -> std::io::Result<()>,
    ) -> Result<SnapshotManifest, StoreError> {
        let h = self.head.height;
        let io = |e: std::io::Error| StoreError::Io {
            context: format!("writing the snapshot of height {h}"),
            source: e,
        };
        let mut w =
            SnapshotWriter::new(&self.head, &self.tree_root, chunk_bytes, sink).map_err(io)?;
        let heights = self
            .txn
            .open_table(HEIGHTS)
            .ctx(|| "opening table `height_info` for a snapshot".to_string())?;
        let count = match read_info(&heights, h)? {
            Some(i) => i.nullifier_count,
            None => 0,
        };
        let log = self
            .txn
            .open_table(NULLIFIER_LOG)
            .ctx(|| "opening table `nullifier_log` for a snapshot".to_string())?;
        let mut next = 0u64;
        for item in log
            .range(0..count)
            .ctx(|| "reading table `nullifier_log`".to_string())?
        {
            let (k, v) = item.ctx(|| "reading table `nullifier_log`".to_string())?;
            if k.value() != next {
                return Err(StoreError::Inconsistent(format!(
                    "the nullifier log skips from {next} to {}",
                    k.value()
                )));
            }
            let nf = codec::decode_hash(v.value())
                .map_err(corrupt("nullifier_log", format!("position {next}")))?;
            w.nullifier(&nf).map_err(io)?;
            next += 1;
        }
        if next != count {
            return Err(StoreError::Inconsistent(format!(
                "{next} nullifiers logged, {count} recorded at height {h}"
            )));
        }
        let accounts = self
            .txn
            .open_table(ACCOUNTS)
            .ctx(|| "opening table `accounts` for a snapshot".to_string())?;
        for (id, state) in read_accounts(&accounts)? {
            w.account(&id, &state).map_err(io)?;
        }
        let manifest = w.finish().map_err(io)?;
        Ok(manifest)
    }
}

impl Store {
    /// The stored state as it is now, frozen ([`StateView`]).
    pub fn state_view(&self) -> Result<StateView, StoreError> {
        StateView::new(self.read()?)
    }

    /// Fills an empty store with a snapshot checked against `checkpoint` (a stable checkpoint
    /// certificate whose state root the snapshot opens to): the ledger state, the nullifiers
    /// (recorded as revealed at the snapshot's height), the accounts, the height's metadata,
    /// the certificate, and a consensus state that starts from it. The store then holds blocks
    /// from the next height on ([`Store::base`]).
    pub fn install_snapshot(
        &self,
        snapshot: &VerifiedSnapshot,
        checkpoint: &CheckpointCertificate,
    ) -> Result<(), StoreError> {
        let head = &snapshot.state.head;
        let h = head.height;
        let tree_root = head.frontier.root();
        let opening = head.opening_with(&tree_root);
        if h == 0 || checkpoint.height != h || checkpoint.state_root != opening.root() {
            return Err(invalid(format!(
                "the snapshot of height {h} is not the state the checkpoint of height {} signs",
                checkpoint.height
            )));
        }
        if snapshot.nullifier_log.len() != snapshot.state.nullifiers.len() {
            return Err(invalid(
                "the snapshot's nullifier log and set differ".into(),
            ));
        }
        let txn = self.write(&format!("the snapshot of height {h}"))?;
        {
            let open = |name: &str| format!("opening table `{name}` to install a snapshot");
            let mut meta = txn.open_table(META).ctx(|| open("meta"))?;
            let mut ledger = txn.open_table(LEDGER).ctx(|| open("ledger"))?;
            if get_str(&ledger, "ledger", K_HEIGHT)?.is_some() {
                return Err(invalid(
                    "a snapshot is installed only into an empty store".into(),
                ));
            }
            let mut heights = txn.open_table(HEIGHTS).ctx(|| open("height_info"))?;
            let mut nullifiers = txn.open_table(NULLIFIERS).ctx(|| open("nullifiers"))?;
            let mut log = txn
                .open_table(NULLIFIER_LOG)
                .ctx(|| open("nullifier_log"))?;
            let mut accounts = txn.open_table(ACCOUNTS).ctx(|| open("accounts"))?;
            let mut checkpoints = txn.open_table(CHECKPOINTS).ctx(|| open("checkpoints"))?;
            let mut consensus_t = txn.open_table(CONSENSUS).ctx(|| open("consensus"))?;
            let height_value = codec::u64_value(h);
            // In key order: appending to the B-tree is several times faster than inserting in
            // the order of revelation, which is random.
            for nf in &snapshot.state.nullifiers {
                nullifiers
                    .insert(&nf[..], &height_value[..])
                    .ctx(|| "writing a snapshot's nullifier".to_string())?;
            }
            for (i, nf) in snapshot.nullifier_log.iter().enumerate() {
                log.insert(i as u64, &codec::hash_value(nf)[..])
                    .ctx(|| "logging a snapshot's nullifier".to_string())?;
            }
            let mut lattice = shoji_ledger::AccountsLattice::new();
            for (id, state) in &snapshot.state.accounts {
                let (key, value) = (id.to_bytes(), state.to_bytes());
                accounts
                    .insert(&key[..], &value[..])
                    .ctx(|| "writing a snapshot's account".to_string())?;
                lattice.insert(&key, &value);
            }
            if !lattice.is_empty() {
                ledger
                    .insert(K_ACCOUNTS_LATTICE, &lattice.to_bytes()[..])
                    .ctx(|| format!("writing a snapshot's `{K_ACCOUNTS_LATTICE}`"))?;
            }
            let info = HeightInfo::of(&opening, snapshot.nullifier_log.len() as u64, Vec::new());
            heights
                .insert(h, &codec::encode_info(&info)[..])
                .ctx(|| format!("writing the metadata of height {h}"))?;
            checkpoints
                .insert(
                    h,
                    &codec::encode_checkpoint(checkpoint).map_err(invalid)?[..],
                )
                .ctx(|| format!("writing the checkpoint of height {h}"))?;
            write_head(&mut ledger, head)?;
            if let Some(p) = &head.policy {
                let mut policies = txn.open_table(POLICIES).ctx(|| open("policies"))?;
                policies
                    .insert(h, &p.to_bytes()[..])
                    .ctx(|| format!("writing the policy in force at height {h}"))?;
            }
            let mut consensus = PersistedState::genesis();
            consensus.stable_checkpoint = checkpoint.clone();
            consensus.last_committed = h;
            consensus.last_committed_hash = checkpoint.block_hash;
            consensus_t
                .insert(K_PERSISTED, &codec::encode_consensus(&consensus)[..])
                .ctx(|| format!("writing the consensus state at height {h}"))?;
            let mut base = codec::Writer::new();
            base.u64(h).raw(&checkpoint.block_hash.0);
            meta.insert(BASE_KEY, &base.0[..])
                .ctx(|| "writing the snapshot base".to_string())?;
        }
        txn.commit()
            .ctx(|| format!("committing the snapshot of height {h}"))?;
        Ok(())
    }

    /// The height of the snapshot this store started from and its block's hash (`None`: it
    /// started at genesis and holds every block). Blocks, transactions and compact blocks at or
    /// below it are not stored.
    pub fn base(&self) -> Result<Option<(u64, BlockHash)>, StoreError> {
        let r = self.read()?;
        let meta = r
            .open_table(META)
            .ctx(|| "opening table `meta`".to_string())?;
        read_base(&meta)
    }
}

impl Store {
    /// Stops keeping block bodies at and below a stable checkpoint: moves the store's base
    /// ([`Store::base`]) up to the highest checkpoint at or below `up_to`, at most `max_heights`
    /// heights at a time (one bounded write transaction), deleting the blocks, their compact
    /// forms, events and transaction records, and the commitments below the base's tree. The
    /// state, every height's opening, the checkpoints, the nullifiers and their log stay.
    /// Returns the base after the call.
    pub fn prune(&self, up_to: u64, max_heights: u64) -> Result<u64, StoreError> {
        let txn = self.write("pruning")?;
        let new_base;
        {
            let open = |name: &str| format!("opening table `{name}` to prune");
            let mut meta = txn.open_table(META).ctx(|| open("meta"))?;
            let ledger = txn.open_table(LEDGER).ctx(|| open("ledger"))?;
            let tip = read_head(&ledger)?.height;
            let (base, _) = read_base(&meta)?.unwrap_or((0, BlockHash::GENESIS));
            let limit = up_to.min(tip).min(base.saturating_add(max_heights.max(1)));
            let checkpoints = txn.open_table(CHECKPOINTS).ctx(|| open("checkpoints"))?;
            let target = checkpoints
                .range(..=limit)
                .ctx(|| "reading table `checkpoints`".to_string())?
                .next_back()
                .transpose()
                .ctx(|| "reading table `checkpoints`".to_string())?
                .map(|(k, v)| (k.value(), v.value().to_vec()));
            let Some((c, cert)) = target.filter(|(c, _)| *c > base && *c < tip) else {
                return Ok(base);
            };
            let cert = codec::decode_checkpoint(&cert)
                .map_err(corrupt("checkpoints", format!("height {c}")))?;
            let heights = txn.open_table(HEIGHTS).ctx(|| open("height_info"))?;
            let size_at = |h: u64| -> Result<u64, StoreError> {
                Ok(match h {
                    0 => 0,
                    h => {
                        read_info(&heights, h)?
                            .ok_or_else(|| {
                                StoreError::Inconsistent(format!("no metadata for height {h}"))
                            })?
                            .tree_size
                    }
                })
            };
            let (from_leaf, to_leaf) = (size_at(base)?, size_at(c)?);
            let mut blocks = txn.open_table(BLOCKS).ctx(|| open("blocks"))?;
            let mut compact = txn.open_table(COMPACT).ctx(|| open("compact_blocks"))?;
            let mut events = txn.open_table(EVENTS).ctx(|| open("events"))?;
            let mut txs = txn.open_table(TXS).ctx(|| open("transactions"))?;
            let mut commitments = txn.open_table(COMMITMENTS).ctx(|| open("commitments"))?;
            for h in base + 1..=c {
                if let Some((block, _)) = read_block(&blocks, h)? {
                    for raw in &block.transactions {
                        let id = match Transaction::from_bytes(raw) {
                            Ok(tx) => tx.id(),
                            Err(_) => match AccountTx::from_bytes(raw) {
                                Ok(tx) => tx.id(),
                                Err(_) => continue,
                            },
                        };
                        if read_tx(&txs, &id)?.is_some_and(|t| t.height == h) {
                            txs.remove(&id.0[..])
                                .ctx(|| format!("pruning transaction {id}"))?;
                        }
                    }
                }
                blocks.remove(h).ctx(|| format!("pruning block {h}"))?;
                compact
                    .remove(h)
                    .ctx(|| format!("pruning compact block {h}"))?;
                events
                    .remove(h)
                    .ctx(|| format!("pruning the events of {h}"))?;
            }
            for leaf in from_leaf..to_leaf {
                commitments
                    .remove(leaf)
                    .ctx(|| format!("pruning commitment {leaf}"))?;
            }
            let mut w = codec::Writer::new();
            w.u64(c).raw(&cert.block_hash.0);
            meta.insert(BASE_KEY, &w.0[..])
                .ctx(|| "writing the store's base".to_string())?;
            new_base = c;
        }
        txn.commit().ctx(|| "committing the pruning".to_string())?;
        Ok(new_base)
    }
}
