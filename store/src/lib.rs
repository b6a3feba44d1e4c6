//! The validator's storage layer: one redb database per node.
//!
//! The node hosts a [`shoji_consensus::Replica`] and a [`shoji_ledger::Ledger`]; this crate
//! keeps what both need across crashes and what clients read:
//!
//! - [`Store::commit_block`] writes everything one committed block changes — the block and its
//!   commit certificate, its transactions with their outcomes, the new nullifiers and
//!   commitments, the new frontier, recent roots and ledger metadata, and the consensus
//!   persisted state with [`PersistedState::record_commit`] applied — in **one** redb write
//!   transaction, so a crash leaves the node at height `h` or `h + 1`, never in between.
//! - [`Store::persist_consensus`] durably applies the replica's `Persist` deltas; the host
//!   calls it before sending the messages they justify. Every write transaction commits with
//!   redb's default durability (`Immediate`: synced to disk before the call returns).
//! - [`Store::load`] reads everything back on start and checks that it agrees with itself.
//! - Read APIs serve clients: blocks and certificates, transactions, compact blocks, the anchor.
//!
//! The ledger is rebuilt from storage on start: [`Store::load`] returns its head and nullifiers,
//! and the node restores it (`Ledger::restore`); [`snapshot`] says what is stored for it
//! ([`SnapshotLedger`]).
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"schema_version"` | u32 LE ([`SCHEMA_VERSION`]) |
//! | `meta` | `"genesis_hash"` | the genesis hash the database was created for ([`Store::check_genesis`]) |
//! | `meta` | `"base"` | height and block hash at and below which no block is kept (a snapshot's, or the checkpoint pruned to; absent: every block) |
//! | `ledger` | `"height"`, `"time_ms"`, `"nullifier_chain"`, `"scan_chain"`, `"frontier"`, `"recent_roots"`, `"accounts_root"`, `"policy"` (once governance changed it), `"accounts_lattice"` (once an account exists) | latest ledger head |
//! | `consensus` | `"persisted_state"` | [`PersistedState::encode`] of the replica's small state: view, stable checkpoint, last commit, own view changes, new view (its per-height maps empty) |
//! | `consensus_log` | (height, kind) | one per-height entry of [`PersistedState`]: pre-prepare (0), own PREPARE (1), own COMMIT (2), prepared certificate (3), own CHECKPOINT (4) |
//! | `blocks` | height | block and commit certificate (postcard) |
//! | `height_info` | height | block time, tree root, state root, tree size, nullifier count, nullifier chain, governance chain, scan chain, validator commitment, recent roots hash, policy hash, accounts root, applied txids |
//! | `transactions` | txid | height, index, outcome, transaction bytes |
//! | `compact_blocks` | height | the block's [`CompactBlock`] as clients receive it ([`CompactBlock::to_bytes`]), written with the block |
//! | `nullifiers` | nullifier (32 bytes) | height revealed (a mint into an account leaves one too) |
//! | `nullifier_log` | position in order of revelation (from 0) | nullifier: what a snapshot hashes into the nullifier chain |
//! | `policies` | height at which a policy came into force | the policy ([`shoji_ledger::Policy::to_bytes`]): what certified registry reads answer |
//! | `accounts` | account id: key (32) ‖ asset (u64) | the account's state ([`AccountState::to_bytes`]), rewritten when a block changes it |
//! | `commitments` | leaf index | commitment |
//! | `checkpoints` | height | stable checkpoint certificate |
//! | `events` | height | the height's public events, as the node encodes them (`shoji_client::events`), written with the block |
//! | `epoch_changes` | the last height of an epoch | the height that decided its end, and the next epoch's members ([`EpochChange`]) |
//!
//! Every value but the schema version starts with a format-version byte; integers are
//! little-endian (see `codec`). Keys are redb's native `u64` (little-endian) or raw bytes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod error;
pub mod snapshot;

use std::collections::BTreeSet;
use std::path::Path;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use shoji_consensus::{
    Block, BlockHash, CheckpointCertificate, CommitCertificate, PersistDelta, PersistedState,
};
use shoji_ledger::{
    AccountId, AccountState, BlockOutcome, CompactBlock, CompactRejection, CompactTx, TxOutcome,
};
use shoji_primitives::account::AccountTx;
use shoji_primitives::encoding::fr_to_bytes;
use shoji_primitives::tree::{Frontier, DEPTH};
use shoji_primitives::tx::{Transaction, TxId};
use shoji_primitives::Fr;

use codec::HeightInfo;
use error::Ctx;

pub use error::StoreError;
pub use snapshot::{chain_nullifier, LedgerHead, LedgerSnapshot, SnapshotLedger, StateView};

/// Schema version of the database layout; checked on open.
///
/// 2: blocks carry a proposed time, and the ledger head and height metadata the block time.
/// 3: the ledger head carries the governance policy.
/// 4: the consensus state's per-height entries live in `consensus_log`, one row each, so a
///    vote writes its own row rather than every block in flight.
/// 5: blocks hold transactions of format version 2 (uncompressed proofs) and are hashed over
///    their transactions' hashes; the certificates of an older store sign other hashes, so it
///    is refused rather than converted.
/// 6: consensus signatures cover the network's id (signing v2), so the certificates and votes
///    of an older store no longer verify; it is refused rather than converted.
/// 7: blocks are hashed as fixed-size headers over a digest of their transactions, and a
///    pre-prepare is signed over its view and header (signing v3), so that view changes carry
///    headers rather than blocks; the consensus log keeps each accepted proposal with the
///    blocks held for its height. An older store's hashes and signatures differ: refused.
/// 8: each block's compact form is stored with it (`compact_blocks`), ready to send, so reads
///    decode nothing; an older store lacks it.
/// 9: the state root covers the scan chain (the running hash of the compact blocks), kept in
///    the ledger head and, with the governance chain, at every height: an older store's state
///    roots and checkpoints differ.
/// 10: a compact block also lists the block's rejected transactions and why (certified with
///    the block through the scan chain, v2), and the state root (v5) commits to the validator
///    sets, with each decided change kept (`epoch_changes`) so that clients can follow
///    epochs: an older store's compact blocks and state roots differ.
/// 12: compact blocks end with the block's applied account transactions (scan chain v3),
///    so an older store's compact blocks and state roots differ.
/// 13: the state root (v6) also commits to the recent roots, the policy and the accounts, so
///    that a snapshot of the state can be checked against a checkpoint; the ledger head keeps
///    the accounts root, every height its hashes, and `nullifier_log` the nullifiers in order
///    of revelation. An older store's state roots and checkpoints differ: refused.
pub const SCHEMA_VERSION: u32 = 15;

const SCHEMA_KEY: &str = "schema_version";
const GENESIS_KEY: &str = "genesis_hash";
/// Height and block hash at and below which the store keeps no blocks: the snapshot it started
/// from, or the checkpoint it pruned up to (absent: it keeps every block from genesis).
const BASE_KEY: &str = "base";
/// Format-version byte of the stored genesis hash.
const GENESIS_FORMAT: u8 = 1;
const K_HEIGHT: &str = "height";
const K_TIME: &str = "time_ms";
const K_CHAIN: &str = "nullifier_chain";
const K_SCAN: &str = "scan_chain";
const K_FRONTIER: &str = "frontier";
const K_ROOTS: &str = "recent_roots";
const K_POLICY: &str = "policy";
const K_ACCOUNTS_ROOT: &str = "accounts_root";
/// The accounts' lattice ([`shoji_ledger::AccountsLattice`]), present once an account exists.
const K_ACCOUNTS_LATTICE: &str = "accounts_lattice";
const K_PERSISTED: &str = "persisted_state";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const LEDGER: TableDefinition<&str, &[u8]> = TableDefinition::new("ledger");
const CONSENSUS: TableDefinition<&str, &[u8]> = TableDefinition::new("consensus");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const HEIGHTS: TableDefinition<u64, &[u8]> = TableDefinition::new("height_info");
const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("transactions");
const NULLIFIERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nullifiers");
const COMMITMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("commitments");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
const EPOCH_CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("epoch_changes");
const CONSENSUS_LOG: TableDefinition<(u64, u8), &[u8]> = TableDefinition::new("consensus_log");
const COMPACT: TableDefinition<u64, &[u8]> = TableDefinition::new("compact_blocks");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const ACCOUNTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("accounts");
const NULLIFIER_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("nullifier_log");
const POLICIES: TableDefinition<u64, &[u8]> = TableDefinition::new("policies");

/// Kinds of `consensus_log` entries (the second half of the key).
const LOG_PRE_PREPARE: u8 = 0;
const LOG_PREPARE: u8 = 1;
const LOG_COMMIT: u8 = 2;
const LOG_PREPARED: u8 = 3;
const LOG_CHECKPOINT: u8 = 4;

/// A validator-set change as the ledger decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochChange {
    /// The height of the block that decided it.
    pub decided: u64,
    /// The last height the current set orders.
    pub last: u64,
    /// The next epoch's members.
    pub validators: shoji_ledger::Validators,
}

/// What happened to a stored transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredOutcome {
    /// Applied; its commitments are leaves `first_leaf` and `first_leaf + 1`.
    Applied {
        /// Position of the first output commitment.
        first_leaf: u64,
    },
    /// Not applied, with the ledger's reason in words.
    Rejected(String),
}

impl From<&TxOutcome> for StoredOutcome {
    fn from(o: &TxOutcome) -> Self {
        match o {
            TxOutcome::Applied { first_leaf } => StoredOutcome::Applied {
                first_leaf: *first_leaf,
            },
            TxOutcome::Rejected(r) => StoredOutcome::Rejected(r.to_string()),
            // Governance transactions are kept in their block, not indexed here.
            TxOutcome::Enacted => StoredOutcome::Rejected("not a shielded transaction".into()),
        }
    }
}

/// A committed transaction of either tier, as the `transactions` table keeps it (its bytes say
/// which: account kinds have their own kind bytes). One is read or written at a time, so the
/// size of the shielded variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommittedTx {
    /// A shielded transaction (shields and unshields among them).
    Shielded(Transaction),
    /// A confidential-account transaction.
    Account(AccountTx),
}

impl CommittedTx {
    /// Its encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            CommittedTx::Shielded(t) => t.to_bytes(),
            CommittedTx::Account(t) => t.to_bytes(),
        }
    }

    /// Strict decoding of either tier's encoding.
    pub fn from_bytes(
        bytes: &[u8],
    ) -> Result<CommittedTx, shoji_primitives::encoding::EncodingError> {
        match AccountTx::is_account(bytes) {
            true => AccountTx::from_bytes(bytes).map(CommittedTx::Account),
            false => Transaction::from_bytes(bytes).map(CommittedTx::Shielded),
        }
    }
}

/// A transaction as stored: where it was committed and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTx {
    /// The transaction.
    pub tx: CommittedTx,
    /// Height of the block that carried it.
    pub height: u64,
    /// Its index among the block's decoded transactions: the shielded ones first, then the
    /// account transactions.
    pub index: u32,
    /// Its outcome.
    pub outcome: StoredOutcome,
}

/// Everything one committed and executed block changes; the input of [`Store::commit_block`].
#[derive(Clone, Copy, Debug)]
pub struct CommittedBlock<'a> {
    /// The committed block (from `Action::Commit`).
    pub block: &'a Block,
    /// Its commit certificate.
    pub certificate: &'a CommitCertificate,
    /// The block's transactions as handed to `Ledger::apply_block`, in order (entries of
    /// `block.transactions` that do not decode are kept only in the block).
    pub transactions: &'a [Transaction],
    /// The block's account transactions as handed to `Ledger::apply_block_full`, in order.
    pub accounts: &'a [AccountTx],
    /// What `Ledger::apply_block` returned for them.
    pub outcome: &'a BlockOutcome,
    /// The ledger head after the block ([`SnapshotLedger::head`]).
    pub ledger: &'a LedgerHead,
    /// The height's public events, encoded by the node; stored as they are.
    pub events: &'a [u8],
}

/// The commitment tree as clients see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeState {
    /// Height of the last committed block.
    pub height: u64,
    /// The current root: the newest valid anchor.
    pub anchor: Fr,
    /// Number of commitments in the tree.
    pub size: u64,
}

/// What [`Store::load`] reads back on start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Height of the last committed block (0 if none).
    pub height: u64,
    /// The ledger's state root at that height.
    pub state_root: [u8; 32],
    /// What rebuilds the ledger ([`Recovered::restore_ledger`]).
    pub ledger: LedgerSnapshot,
    /// The replica's persisted state (genesis if none was stored yet).
    pub consensus: PersistedState,
}

impl Recovered {
    /// Rebuilds the ledger from the snapshot and checks its state root against the stored one.
    pub fn restore_ledger<L: SnapshotLedger>(
        &self,
        config: shoji_ledger::LedgerConfig,
    ) -> Result<L, StoreError> {
        let ledger = L::restore(config, self.ledger.clone()).map_err(StoreError::Restore)?;
        let root = ledger.head().state_root();
        if root != self.state_root {
            return Err(StoreError::Restore(format!(
                "restored ledger has state root {} but the store recorded {} at height {}",
                hex(&root),
                hex(&self.state_root),
                self.height
            )));
        }
        Ok(ledger)
    }
}

fn hex(b: &[u8]) -> String {
    shoji_primitives::encoding::hex_encode(b)
}

fn corrupt(table: &'static str, key: impl Into<String>) -> impl FnOnce(String) -> StoreError {
    let key = key.into();
    move |reason| StoreError::Corrupt { table, key, reason }
}

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidInput(msg)
}

/// Reads a value of a string-keyed table as owned bytes.
fn get_str<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
    table: &'static str,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(t.get(key)
        .ctx(|| format!("reading `{key}` from table `{table}`"))?
        .map(|g| g.value().to_vec()))
}

/// Reads a value of a height-keyed table as owned bytes.
fn get_u64<T: ReadableTable<u64, &'static [u8]>>(
    t: &T,
    table: &'static str,
    key: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(t.get(key)
        .ctx(|| format!("reading key {key} from table `{table}`"))?
        .map(|g| g.value().to_vec()))
}

/// Reads a value of a byte-keyed table as owned bytes.
fn get_bytes<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    table: &'static str,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(t.get(key)
        .ctx(|| format!("reading key {} from table `{table}`", hex(key)))?
        .map(|g| g.value().to_vec()))
}

fn last_key<T: ReadableTable<u64, &'static [u8]>>(
    t: &T,
    table: &'static str,
) -> Result<Option<u64>, StoreError> {
    Ok(t.last()
        .ctx(|| format!("reading the last key of table `{table}`"))?
        .map(|(k, _)| k.value()))
}

fn read_block<T: ReadableTable<u64, &'static [u8]>>(
    t: &T,
    height: u64,
) -> Result<Option<(Block, CommitCertificate)>, StoreError> {
    let Some(v) = get_u64(t, "blocks", height)? else {
        return Ok(None);
    };
    let (block, cert) =
        codec::decode_block(&v).map_err(corrupt("blocks", format!("height {height}")))?;
    if block.height != height {
        return Err(StoreError::Corrupt {
            table: "blocks",
            key: format!("height {height}"),
            reason: format!("the stored block has height {}", block.height),
        });
    }
    Ok(Some((block, cert)))
}

fn read_info<T: ReadableTable<u64, &'static [u8]>>(
    t: &T,
    height: u64,
) -> Result<Option<HeightInfo>, StoreError> {
    get_u64(t, "height_info", height)?
        .map(|v| codec::decode_info(&v).map_err(corrupt("height_info", format!("height {height}"))))
        .transpose()
}

/// The replica's small state (per-height maps empty); see [`read_consensus`] for all of it.
fn read_consensus_core<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
) -> Result<Option<PersistedState>, StoreError> {
    get_str(t, "consensus", K_PERSISTED)?
        .map(|v| codec::decode_consensus(&v).map_err(corrupt("consensus", K_PERSISTED)))
        .transpose()
}

/// The whole consensus state: the small state with the per-height entries of the log.
fn read_consensus<C, L>(core: &C, log: &L) -> Result<Option<PersistedState>, StoreError>
where
    C: ReadableTable<&'static str, &'static [u8]>,
    L: ReadableTable<(u64, u8), &'static [u8]>,
{
    let mut state = read_consensus_core(core)?;
    for entry in log
        .iter()
        .ctx(|| "reading table `consensus_log`".to_string())?
    {
        let (k, v) = entry.ctx(|| "reading table `consensus_log`".to_string())?;
        let (height, kind) = k.value();
        let s = state.get_or_insert_with(PersistedState::genesis);
        let bad = corrupt("consensus_log", format!("height {height}, kind {kind}"));
        let v = v.value();
        let key = (height, kind);
        let pre_prepare =
            |pp: &shoji_consensus::AcceptedProposal| Some((pp.proposal.height(), LOG_PRE_PREPARE));
        let prepared = |c: &shoji_consensus::PreparedCertificate| Some((c.height(), LOG_PREPARED));
        match kind {
            LOG_PRE_PREPARE => put_row(&mut s.pre_prepares, key, v, pre_prepare, bad)?,
            LOG_PREPARE => put_row(&mut s.prepares, key, v, vote_key, bad)?,
            LOG_COMMIT => put_row(&mut s.commits, key, v, vote_key, bad)?,
            LOG_PREPARED => put_row(&mut s.prepared, key, v, prepared, bad)?,
            LOG_CHECKPOINT => put_row(&mut s.checkpoints, key, v, vote_key, bad)?,
            other => return Err(bad(format!("unknown entry kind {other}"))),
        }
    }
    Ok(state)
}

/// Decodes one `consensus_log` row into its map, refusing an entry that is not the row's:
/// `key_of` says which row an entry belongs in.
fn put_row<T: serde::de::DeserializeOwned>(
    map: &mut std::collections::BTreeMap<u64, T>,
    key: (u64, u8),
    value: &[u8],
    key_of: impl Fn(&T) -> Option<(u64, u8)>,
    bad: impl FnOnce(String) -> StoreError,
) -> Result<(), StoreError> {
    let entry: T = match codec::decode_log(value) {
        Ok(e) => e,
        Err(e) => return Err(bad(e)),
    };
    if key_of(&entry) != Some(key) {
        return Err(bad(format!(
            "the entry belongs in row {:?}",
            key_of(&entry)
        )));
    }
    map.insert(key.0, entry);
    Ok(())
}

/// The row of one of the replica's own votes.
fn vote_key(sm: &shoji_consensus::SignedMessage) -> Option<(u64, u8)> {
    use shoji_consensus::Message;
    match &sm.message {
        Message::Prepare(v) => Some((v.height, LOG_PREPARE)),
        Message::Commit(v) => Some((v.height, LOG_COMMIT)),
        Message::Checkpoint(c) => Some((c.height, LOG_CHECKPOINT)),
        _ => None,
    }
}

/// The `consensus_log` row a delta writes, if it is a per-height entry.
fn log_row(delta: &PersistDelta) -> Option<((u64, u8), Vec<u8>)> {
    match delta {
        PersistDelta::PrePrepare(pp) => Some((
            (pp.proposal.height(), LOG_PRE_PREPARE),
            codec::encode_log(pp),
        )),
        PersistDelta::Prepared(cert) => {
            Some(((cert.height(), LOG_PREPARED), codec::encode_log(cert)))
        }
        PersistDelta::Vote(sm) => Some((vote_key(sm)?, codec::encode_log(sm))),
        _ => None,
    }
}

/// Writes `state` as the small state plus one log row per per-height entry, replacing what
/// was stored.
fn write_consensus(
    core: &mut redb::Table<&'static str, &'static [u8]>,
    log: &mut redb::Table<(u64, u8), &'static [u8]>,
    state: &PersistedState,
) -> Result<(), StoreError> {
    log.retain(|_, _| false)
        .ctx(|| "clearing table `consensus_log`".to_string())?;
    fn rows<T: serde::Serialize>(
        map: &std::collections::BTreeMap<u64, T>,
        kind: u8,
    ) -> impl Iterator<Item = ((u64, u8), Vec<u8>)> + '_ {
        map.iter()
            .map(move |(h, e)| ((*h, kind), codec::encode_log(e)))
    }
    let rows = rows(&state.pre_prepares, LOG_PRE_PREPARE)
        .chain(rows(&state.prepares, LOG_PREPARE))
        .chain(rows(&state.commits, LOG_COMMIT))
        .chain(rows(&state.prepared, LOG_PREPARED))
        .chain(rows(&state.checkpoints, LOG_CHECKPOINT));
    for (key, value) in rows {
        log.insert(key, &value[..])
            .ctx(|| format!("writing consensus log entry {key:?}"))?;
    }
    core.insert(
        K_PERSISTED,
        &codec::encode_consensus(&small_state(state))[..],
    )
    .ctx(|| "writing the consensus state".to_string())?;
    Ok(())
}

/// `state` without its per-height entries.
fn small_state(state: &PersistedState) -> PersistedState {
    PersistedState {
        view: state.view,
        view_changing: state.view_changing,
        stable_checkpoint: state.stable_checkpoint.clone(),
        last_committed: state.last_committed,
        last_committed_hash: state.last_committed_hash,
        view_changes: state.view_changes.clone(),
        new_view: state.new_view.clone(),
        ..PersistedState::genesis()
    }
}

/// Writes `record` of transaction `id` unless an applied record of that id is stored: a
/// transaction already applied keeps its record; otherwise the latest wins.
fn record_tx(
    txs: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    id: &TxId,
    record: &StoredTx,
) -> Result<(), StoreError> {
    let keep = matches!(
        read_tx(txs, id)?,
        Some(StoredTx {
            outcome: StoredOutcome::Applied { .. },
            ..
        })
    );
    if !keep {
        let rec = codec::encode_tx(record);
        txs.insert(&id.0[..], &rec[..])
            .ctx(|| format!("writing transaction {id} of block {}", record.height))?;
    }
    Ok(())
}

fn read_tx<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    id: &TxId,
) -> Result<Option<StoredTx>, StoreError> {
    get_bytes(t, "transactions", &id.0)?
        .map(|v| codec::decode_tx(&v).map_err(corrupt("transactions", format!("txid {id}"))))
        .transpose()
}

/// The ledger head as stored in the `ledger` table (genesis when nothing is stored).
fn read_head<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
) -> Result<LedgerHead, StoreError> {
    let Some(h) = get_str(t, "ledger", K_HEIGHT)? else {
        return Ok(LedgerHead::genesis());
    };
    let height = codec::decode_u64(&h).map_err(corrupt("ledger", K_HEIGHT))?;
    let need = |key: &'static str| -> Result<Vec<u8>, StoreError> {
        get_str(t, "ledger", key)?.ok_or_else(|| {
            StoreError::Inconsistent(format!(
                "table `ledger` has a height ({height}) but no `{key}`"
            ))
        })
    };
    let time_ms = codec::decode_u64(&need(K_TIME)?).map_err(corrupt("ledger", K_TIME))?;
    let nullifier_chain =
        codec::decode_hash(&need(K_CHAIN)?).map_err(corrupt("ledger", K_CHAIN))?;
    let scan_chain = codec::decode_hash(&need(K_SCAN)?).map_err(corrupt("ledger", K_SCAN))?;
    let frontier =
        codec::decode_frontier(&need(K_FRONTIER)?).map_err(corrupt("ledger", K_FRONTIER))?;
    let recent_roots = codec::decode_roots(&need(K_ROOTS)?).map_err(corrupt("ledger", K_ROOTS))?;
    let accounts_root =
        codec::decode_hash(&need(K_ACCOUNTS_ROOT)?).map_err(corrupt("ledger", K_ACCOUNTS_ROOT))?;
    let policy = get_str(t, "ledger", K_POLICY)?
        .map(|v| {
            shoji_ledger::Policy::from_bytes(&v)
                .map_err(|e| e.to_string())
                .map_err(corrupt("ledger", K_POLICY))
        })
        .transpose()?;
    Ok(LedgerHead {
        height,
        time_ms,
        frontier,
        recent_roots,
        nullifier_chain,
        scan_chain,
        policy,
        accounts_root,
    })
}

/// The accounts' lattice as stored (empty before the first account).
fn read_lattice<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
) -> Result<shoji_ledger::AccountsLattice, StoreError> {
    match get_str(t, "ledger", K_ACCOUNTS_LATTICE)? {
        None => Ok(shoji_ledger::AccountsLattice::new()),
        Some(v) => shoji_ledger::AccountsLattice::from_bytes(&v).ok_or_else(|| {
            corrupt("ledger", K_ACCOUNTS_LATTICE)(format!("{} bytes, not a lattice", v.len()))
        }),
    }
}

/// Writes `head` into the `ledger` table.
fn write_head(
    ledger: &mut redb::Table<'_, &'static str, &'static [u8]>,
    head: &LedgerHead,
) -> Result<(), StoreError> {
    let h = head.height;
    for (key, value) in [
        (K_HEIGHT, codec::u64_value(h)),
        (K_TIME, codec::u64_value(head.time_ms)),
        (K_CHAIN, codec::hash_value(&head.nullifier_chain)),
        (K_SCAN, codec::hash_value(&head.scan_chain)),
        (K_FRONTIER, codec::encode_frontier(&head.frontier)),
        (K_ROOTS, codec::encode_roots(&head.recent_roots)),
        (K_ACCOUNTS_ROOT, codec::hash_value(&head.accounts_root)),
    ] {
        ledger
            .insert(key, &value[..])
            .ctx(|| format!("writing `{key}` of table `ledger` at height {h}"))?;
    }
    if let Some(policy) = &head.policy {
        ledger
            .insert(K_POLICY, &policy.to_bytes()[..])
            .ctx(|| format!("writing `{K_POLICY}` of table `ledger` at height {h}"))?;
    }
    Ok(())
}

/// The snapshot base ([`Store::base`]).
fn read_base<T: ReadableTable<&'static str, &'static [u8]>>(
    meta: &T,
) -> Result<Option<(u64, BlockHash)>, StoreError> {
    let Some(v) = get_str(meta, "meta", BASE_KEY)? else {
        return Ok(None);
    };
    let mut r = codec::Reader::new(&v).map_err(corrupt("meta", BASE_KEY))?;
    let h = r.u64("base height").map_err(corrupt("meta", BASE_KEY))?;
    let hash = r
        .array("base block hash")
        .map_err(corrupt("meta", BASE_KEY))?;
    r.finish().map_err(corrupt("meta", BASE_KEY))?;
    Ok(Some((h, BlockHash(hash))))
}

/// The validator's database. A clone is another handle on the same database (write
/// transactions run one at a time).
#[derive(Clone)]
pub struct Store {
    db: std::sync::Arc<Database>,
}

/// A read-only handle on a [`Store`], to serve reads from other threads than the one that
/// writes: each read is one redb read transaction, a consistent snapshot that never waits for
/// the writer.
#[derive(Clone)]
pub struct StoreReader {
    db: std::sync::Arc<Database>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader").finish_non_exhaustive()
    }
}

fn read_checkpoint(
    r: &redb::ReadTransaction,
    height: u64,
) -> Result<Option<CheckpointCertificate>, StoreError> {
    let t = r
        .open_table(CHECKPOINTS)
        .ctx(|| "opening table `checkpoints`".to_string())?;
    get_u64(&t, "checkpoints", height)?
        .map(|v| {
            codec::decode_checkpoint(&v).map_err(corrupt("checkpoints", format!("height {height}")))
        })
        .transpose()
}

/// The state opening recorded at `height` in the read transaction `r`.
fn read_opening(
    r: &redb::ReadTransaction,
    height: u64,
) -> Result<Option<shoji_ledger::StateOpening>, StoreError> {
    let t = r
        .open_table(HEIGHTS)
        .ctx(|| "opening table `height_info`".to_string())?;
    Ok(read_info(&t, height)?.map(|i| shoji_ledger::StateOpening {
        height,
        time_ms: i.time_ms,
        tree_size: i.tree_size,
        tree_root: i.tree_root,
        nullifier_chain: i.nullifier_chain,
        governance_chain: i.governance_chain,
        scan_chain: i.scan_chain,
        validators: i.validators,
        recent_roots: i.recent_roots,
        policy: i.policy,
        accounts: i.accounts,
    }))
}

impl StoreReader {
    /// The policy in force after height `height`: `None` while it is genesis's (or above the
    /// stored height, where it is not known yet).
    pub fn policy_at(&self, height: u64) -> Result<Option<shoji_ledger::Policy>, StoreError> {
        let r = self
            .db
            .begin_read()
            .ctx(|| "starting a read transaction".to_string())?;
        let t = r
            .open_table(POLICIES)
            .ctx(|| "opening table `policies`".to_string())?;
        let last = t
            .range(..=height)
            .ctx(|| "reading table `policies`".to_string())?
            .next_back()
            .transpose()
            .ctx(|| "reading table `policies`".to_string())?;
        last.map(|(k, v)| {
            shoji_ledger::Policy::from_bytes(v.value())
                .map_err(|e| corrupt("policies", format!("height {}", k.value()))(e.to_string()))
        })
        .transpose()
    }

    /// The state root's preimage at `height` ([`Store::opening`]).
    pub fn opening(&self, height: u64) -> Result<Option<shoji_ledger::StateOpening>, StoreError> {
        let r = self
            .db
            .begin_read()
            .ctx(|| "beginning a read transaction".to_string())?;
        read_opening(&r, height)
    }

    /// The stable checkpoint certificate stored at `height` ([`Store::checkpoint`]).
    pub fn checkpoint(&self, height: u64) -> Result<Option<CheckpointCertificate>, StoreError> {
        let r = self
            .db
            .begin_read()
            .ctx(|| "starting a read transaction".to_string())?;
        read_checkpoint(&r, height)
    }

    /// The block committed at `height` and its commit certificate ([`Store::block`]).
    pub fn block(&self, height: u64) -> Result<Option<(Block, CommitCertificate)>, StoreError> {
        let r = self
            .db
            .begin_read()
            .ctx(|| "starting a read transaction".to_string())?;
        let t = r
            .open_table(BLOCKS)
            .ctx(|| "opening table `blocks`".to_string())?;
        read_block(&t, height)
    }

    /// A committed transaction ([`Store::transaction`]).
    pub fn transaction(&self, id: &TxId) -> Result<Option<StoredTx>, StoreError> {
        let r = self
            .db
            .begin_read()
            .ctx(|| "starting a read transaction".to_string())?;
        let t = r
            .open_table(TXS)
            .ctx(|| "opening table `transactions`".to_string())?;
        read_tx(&t, id)
    }

    /// The stored events of the heights from `from_height` on, in height order: at most `max`
    /// heights, and no more than `byte_budget` bytes in all (the first height whatever its
    /// size). Stops at the last stored height. Also returns the first height whose events are
    /// kept (`None` when none are).
    #[allow(clippy::type_complexity)]
    pub fn events(
        &self,
        from_height: u64,
        max: usize,
        byte_budget: usize,
    ) -> Result<(Option<u64>, Vec<(u64, Vec<u8>)>), StoreError> {
        let r = self
            .db
            .begin_read()
            .ctx(|| "starting a read transaction".to_string())?;
        let t = r
            .open_table(EVENTS)
            .ctx(|| "opening table `events`".to_string())?;
        let first = t
            .first()
            .ctx(|| "reading table `events`".to_string())?
            .map(|(k, _)| k.value());
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let range = t
            .range(from_height.max(1)..)
            .ctx(|| "reading table `events`".to_string())?;
        for entry in range.take(max) {
            let (k, v) = entry.ctx(|| "reading table `events`".to_string())?;
            let v = v.value();
            if !out.is_empty() && bytes + v.len() > byte_budget {
                break;
            }
            bytes += v.len();
            out.push((k.value(), v.to_vec()));
        }
        Ok((first, out))
    }

    /// The stored compact blocks from `from_height` on, in height order: at most `max`, and
    /// no more than `byte_budget` bytes in all, except that the first is returned whatever its
    /// size. Stops early at the last stored height. The bytes are [`CompactBlock::to_bytes`],
    /// as stored when the block was committed.
    pub fn compact_blocks(
        &self,
        from_height: u64,
        max: usize,
        byte_budget: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let r = self
            .db
            .begin_read()
            .ctx(|| "starting a read transaction".to_string())?;
        let t = r
            .open_table(COMPACT)
            .ctx(|| "opening table `compact_blocks`".to_string())?;
        let from = from_height.max(1);
        let meta = r
            .open_table(META)
            .ctx(|| "opening table `meta`".to_string())?;
        if let Some((base, _)) = read_base(&meta)? {
            if from <= base {
                return Err(StoreError::NotKept { first: base + 1 });
            }
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let range = t
            .range(from..)
            .ctx(|| "reading table `compact_blocks`".to_string())?;
        for (expect, entry) in (from..).zip(range.take(max)) {
            let (k, v) = entry.ctx(|| "reading table `compact_blocks`".to_string())?;
            if k.value() != expect {
                break;
            }
            let v = v.value();
            if !out.is_empty() && bytes + v.len() > byte_budget {
                break;
            }
            bytes += v.len();
            out.push(v.to_vec());
        }
        Ok(out)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `path`, creating it (and every table) if it does not exist, and
    /// checks its schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let db =
            Database::create(path).ctx(|| format!("opening the database {}", path.display()))?;
        Self::init(db)
    }

    /// Opens a database on any redb storage backend (an in-memory one for tests and tools).
    pub fn open_backend(backend: impl redb::StorageBackend) -> Result<Store, StoreError> {
        let db = Database::builder()
            .create_with_backend(backend)
            .ctx(|| "opening the database on its backend".to_string())?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Store, StoreError> {
        let txn = db
            .begin_write()
            .ctx(|| "starting the schema check".to_string())?;
        let has_tables = txn
            .list_tables()
            .ctx(|| "listing tables".to_string())?
            .next()
            .is_some();
        {
            let mut meta = txn
                .open_table(META)
                .ctx(|| "opening table `meta`".to_string())?;
            match get_str(&meta, "meta", SCHEMA_KEY)? {
                Some(v) => {
                    let found = <[u8; 4]>::try_from(v.as_slice())
                        .map(u32::from_le_bytes)
                        .map_err(|_| StoreError::Corrupt {
                            table: "meta",
                            key: SCHEMA_KEY.into(),
                            reason: format!("{} bytes, expected 4", v.len()),
                        })?;
                    if found != SCHEMA_VERSION {
                        return Err(StoreError::SchemaVersion {
                            found,
                            expected: SCHEMA_VERSION,
                        });
                    }
                }
                None if has_tables => return Err(StoreError::MissingSchemaVersion),
                None => {
                    meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_le_bytes()[..])
                        .ctx(|| "writing the schema version".to_string())?;
                }
            }
        }
        for def in [LEDGER, CONSENSUS] {
            txn.open_table(def)
                .ctx(|| format!("creating table `{}`", def.name()))?;
        }
        for def in [
            BLOCKS,
            HEIGHTS,
            COMMITMENTS,
            CHECKPOINTS,
            EPOCH_CHANGES,
            COMPACT,
            EVENTS,
            NULLIFIER_LOG,
            POLICIES,
        ] {
            txn.open_table(def)
                .ctx(|| format!("creating table `{}`", def.name()))?;
        }
        txn.open_table(CONSENSUS_LOG)
            .ctx(|| "creating table `consensus_log`".to_string())?;
        for def in [TXS, NULLIFIERS, ACCOUNTS] {
            txn.open_table(def)
                .ctx(|| format!("creating table `{}`", def.name()))?;
        }
        txn.commit()
            .ctx(|| "committing the schema check".to_string())?;
        Ok(Store {
            db: std::sync::Arc::new(db),
        })
    }

    /// A read-only handle on this store, for reads served off the writer's thread.
    pub fn reader(&self) -> StoreReader {
        StoreReader {
            db: self.db.clone(),
        }
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db
            .begin_read()
            .ctx(|| "starting a read transaction".to_string())
    }

    fn write(&self, what: &str) -> Result<redb::WriteTransaction, StoreError> {
        self.db
            .begin_write()
            .ctx(|| format!("starting the write transaction for {what}"))
    }

    /// Stores one committed, executed block and everything it changed, in one write
    /// transaction, and applies [`PersistedState::record_commit`] to the stored consensus state
    /// in that same transaction.
    ///
    /// Refuses (writing nothing) a block that is not the next height, does not link to the
    /// stored previous block, or whose outcome and ledger head disagree with each other or
    /// with the stored state (including a block time other than the larger of the block's
    /// proposed time and the stored block time).
    pub fn commit_block(&self, c: &CommittedBlock<'_>) -> Result<(), StoreError> {
        let h = c.block.height;
        if c.outcome.height != h || c.ledger.height != h {
            return Err(invalid(format!(
                "block height {h}, outcome height {}, ledger height {}",
                c.outcome.height, c.ledger.height
            )));
        }
        if c.outcome.time_ms != c.ledger.time_ms || c.outcome.compact.time_ms != c.ledger.time_ms {
            return Err(invalid(format!(
                "block {h}: outcome time {}, compact block time {}, ledger time {}",
                c.outcome.time_ms, c.outcome.compact.time_ms, c.ledger.time_ms
            )));
        }
        if c.transactions.len() != c.outcome.outcomes.len() {
            return Err(invalid(format!(
                "block {h}: {} transactions but {} outcomes",
                c.transactions.len(),
                c.outcome.outcomes.len()
            )));
        }
        // The decoded transactions are the block's, in order (undecodable entries skipped).
        let mut raw = c.block.transactions.iter();
        for (i, tx) in c.transactions.iter().enumerate() {
            let bytes = tx.to_bytes();
            if !raw.any(|r| *r == bytes) {
                return Err(invalid(format!(
                    "block {h}: transaction {i} is not in the block (or out of order)"
                )));
            }
        }
        // The frontier's root is the ledger's to compute (sixteen hashes); it must be the last
        // recent root, and `load` checks it against the frontier on every start.
        let tree_root = c.outcome.tree_root;
        if c.ledger.recent_roots.last() != Some(&tree_root) {
            return Err(invalid(format!(
                "block {h}: the outcome's tree root is not the ledger head's last recent root"
            )));
        }
        // The state root's preimage, computed once: its hashes are also the height's metadata.
        let opening = c.ledger.opening_with(&tree_root);
        let state_root = opening.root();
        if state_root != c.outcome.state_root {
            return Err(invalid(format!(
                "block {h}: the ledger head's state root {} is not the outcome's {}",
                hex(&state_root),
                hex(&c.outcome.state_root)
            )));
        }
        let block_bytes = codec::encode_block(c.block, c.certificate)
            .map_err(|e| invalid(format!("block {h}: {e}")))?;

        let txn = self.write(&format!("block {h}"))?;
        {
            let open = |name: &str| format!("opening table `{name}` to commit block {h}");
            let mut ledger = txn.open_table(LEDGER).ctx(|| open("ledger"))?;
            let mut blocks = txn.open_table(BLOCKS).ctx(|| open("blocks"))?;
            let mut heights = txn.open_table(HEIGHTS).ctx(|| open("height_info"))?;
            let mut txs = txn.open_table(TXS).ctx(|| open("transactions"))?;
            let mut nullifiers = txn.open_table(NULLIFIERS).ctx(|| open("nullifiers"))?;
            let mut commitments = txn.open_table(COMMITMENTS).ctx(|| open("commitments"))?;
            let mut consensus_t = txn.open_table(CONSENSUS).ctx(|| open("consensus"))?;
            let mut compact_t = txn.open_table(COMPACT).ctx(|| open("compact_blocks"))?;
            let mut events_t = txn.open_table(EVENTS).ctx(|| open("events"))?;
            let mut accounts_t = txn.open_table(ACCOUNTS).ctx(|| open("accounts"))?;
            let mut log_t = txn
                .open_table(NULLIFIER_LOG)
                .ctx(|| open("nullifier_log"))?;
            let mut policies_t = txn.open_table(POLICIES).ctx(|| open("policies"))?;
            let mut epoch_t = txn
                .open_table(EPOCH_CHANGES)
                .ctx(|| open("epoch_changes"))?;

            // Where the store stands.
            let prev = read_head(&ledger)?;
            if h != prev.height + 1 {
                return Err(invalid(format!(
                    "block {h} does not follow the stored height {}",
                    prev.height
                )));
            }
            let mut consensus =
                read_consensus_core(&consensus_t)?.unwrap_or_else(PersistedState::genesis);
            // The consensus state records the last stored block's hash; reading and hashing
            // the block itself is the fallback for a state that lags (it never should).
            let prev_hash = if consensus.last_committed == prev.height {
                consensus.last_committed_hash
            } else {
                match read_block(&blocks, prev.height)? {
                    Some((b, _)) => b.hash(),
                    None if prev.height == 0 => BlockHash::GENESIS,
                    None => {
                        return Err(StoreError::Inconsistent(format!(
                            "block {} is missing",
                            prev.height
                        )))
                    }
                }
            };
            if c.block.prev_hash != prev_hash {
                return Err(invalid(format!(
                    "block {h} does not link to the stored block {}",
                    prev.height
                )));
            }
            let time_ms = c.block.time_ms.max(prev.time_ms);
            if c.ledger.time_ms != time_ms {
                return Err(invalid(format!(
                    "block {h}: ledger time {} is not max(proposed {}, stored {})",
                    c.ledger.time_ms, c.block.time_ms, prev.time_ms
                )));
            }
            let prev_count = match read_info(&heights, prev.height)? {
                Some(i) => i.nullifier_count,
                None => 0,
            };

            // The block's effects, checked against the ledger head.
            let mut size = prev.frontier.size();
            let mut chain = prev.nullifier_chain;
            let mut applied = Vec::new();
            let mut compact_txs = Vec::new();
            let mut rejected = Vec::new();
            let mut count = prev_count;
            let height_value = codec::u64_value(h);
            for (i, (tx, outcome)) in c.transactions.iter().zip(&c.outcome.outcomes).enumerate() {
                let id = tx.id();
                if let TxOutcome::Applied { first_leaf } = outcome {
                    if *first_leaf != size {
                        return Err(invalid(format!(
                            "block {h}, transaction {i}: first leaf {first_leaf}, expected {size}"
                        )));
                    }
                    let b = tx.bundle();
                    for nf in &b.nullifiers {
                        let nf = fr_to_bytes(nf);
                        chain = chain_nullifier(&chain, &nf);
                        let old = nullifiers
                            .insert(&nf[..], &height_value[..])
                            .ctx(|| format!("writing a nullifier of block {h}"))?;
                        if old.is_some() {
                            return Err(invalid(format!(
                                "block {h}, transaction {i}: nullifier {} is already stored",
                                hex(&nf)
                            )));
                        }
                        log_t
                            .insert(count, &codec::hash_value(&nf)[..])
                            .ctx(|| format!("logging a nullifier of block {h}"))?;
                        count += 1;
                    }
                    for cm in &b.commitments {
                        let mut w = codec::Writer::new();
                        w.fr(cm);
                        commitments
                            .insert(size, &w.0[..])
                            .ctx(|| format!("writing commitment {size} of block {h}"))?;
                        size += 1;
                    }
                    applied.push(id);
                    compact_txs.push(CompactTx::of(tx));
                }
                if let TxOutcome::Rejected(why) = outcome {
                    rejected.push(CompactRejection::of(tx, why));
                }
                let record = StoredTx {
                    tx: CommittedTx::Shielded(*tx),
                    height: h,
                    index: i as u32,
                    outcome: outcome.into(),
                };
                record_tx(&mut txs, &id, &record)?;
            }
            if size != c.ledger.frontier.size() {
                return Err(invalid(format!(
                    "block {h}: outcomes append up to leaf {size} but the frontier has {} leaves",
                    c.ledger.frontier.size()
                )));
            }
            // Account transactions come after the shielded ones: a mint leaves a nullifier.
            let mut compact_accounts = Vec::new();
            if c.accounts.len() != c.outcome.accounts.len() {
                return Err(invalid(format!(
                    "block {h}: {} account transactions but {} outcomes",
                    c.accounts.len(),
                    c.outcome.accounts.len()
                )));
            }
            for (i, (tx, (id, outcome))) in c.accounts.iter().zip(&c.outcome.accounts).enumerate() {
                let record = StoredTx {
                    tx: CommittedTx::Account(tx.clone()),
                    height: h,
                    index: (c.transactions.len() + i) as u32,
                    outcome: outcome.into(),
                };
                record_tx(&mut txs, id, &record)?;
                match outcome {
                    TxOutcome::Rejected(why) => rejected.push(CompactRejection {
                        auth_id: tx.auth_id(),
                        code: why.code(),
                    }),
                    _ => {
                        if let AccountTx::Mint(_) = tx {
                            let nf = shoji_ledger::mint_nullifier(&tx.id());
                            chain = chain_nullifier(&chain, &nf);
                            let old = nullifiers
                                .insert(&nf[..], &height_value[..])
                                .ctx(|| format!("writing a mint nullifier of block {h}"))?;
                            if old.is_some() {
                                return Err(invalid(format!(
                                    "block {h}, account transaction {i}: the mint is already stored"
                                )));
                            }
                            log_t
                                .insert(count, &codec::hash_value(&nf)[..])
                                .ctx(|| format!("logging a mint nullifier of block {h}"))?;
                            count += 1;
                        }
                        compact_accounts.push(tx.clone());
                    }
                }
            }
            // The stored lattice, updated by the accounts this block changes: the root check
            // costs what the block changed, not every account.
            let mut lattice = read_lattice(&ledger)?;
            for (id, state) in &c.outcome.accounts_changed {
                let key = id.to_bytes();
                let old = accounts_t
                    .insert(&key[..], &state[..])
                    .ctx(|| format!("writing an account changed by block {h}"))?
                    .map(|old| old.value().to_vec());
                if let Some(old) = old {
                    lattice.remove(&key, &old);
                }
                lattice.insert(&key, state);
            }
            if !c.outcome.accounts_changed.is_empty() {
                if lattice.root() != c.ledger.accounts_root {
                    return Err(invalid(format!(
                        "block {h}: the ledger head's accounts root is not that of the stored accounts"
                    )));
                }
                ledger
                    .insert(K_ACCOUNTS_LATTICE, &lattice.to_bytes()[..])
                    .ctx(|| format!("writing `{K_ACCOUNTS_LATTICE}` at height {h}"))?;
            } else if c.ledger.accounts_root != prev.accounts_root {
                return Err(invalid(format!(
                    "block {h}: the accounts root changed but no account did"
                )));
            }
            if chain != c.ledger.nullifier_chain {
                return Err(invalid(format!(
                    "block {h}: the ledger head's nullifier chain does not extend the stored one by the block's nullifiers"
                )));
            }

            // What clients scan, stored ready to send: it must be what the ledger reported.
            let compact = CompactBlock {
                height: h,
                time_ms,
                txs: compact_txs,
                tree_root,
                rejected,
                accounts: compact_accounts,
            };
            if compact != c.outcome.compact {
                return Err(invalid(format!(
                    "block {h}: the outcome's compact block is not the block's applied and rejected transactions"
                )));
            }
            let compact_bytes = compact.to_bytes();
            let scan_chain = shoji_ledger::chain_compact(&prev.scan_chain, &compact_bytes);
            if scan_chain != c.ledger.scan_chain {
                return Err(invalid(format!(
                    "block {h}: the ledger head's scan chain does not extend the stored one by the block's compact form"
                )));
            }
            compact_t
                .insert(h, &compact_bytes[..])
                .ctx(|| format!("writing the compact block {h}"))?;
            events_t
                .insert(h, c.events)
                .ctx(|| format!("writing the events of block {h}"))?;
            blocks
                .insert(h, &block_bytes[..])
                .ctx(|| format!("writing block {h}"))?;
            // The time, tree size and chains were checked above to be the ledger head's, from
            // which the opening was made.
            let info = HeightInfo::of(&opening, count, applied);
            heights
                .insert(h, &codec::encode_info(&info)[..])
                .ctx(|| format!("writing the metadata of height {h}"))?;
            if let Some((last, validators)) = &c.outcome.validators_decided {
                let change = EpochChange {
                    decided: h,
                    last: *last,
                    validators: validators.clone(),
                };
                epoch_t
                    .insert(*last, &codec::encode_epoch_change(&change)[..])
                    .ctx(|| format!("writing the validator-set change decided at height {h}"))?;
            }
            write_head(&mut ledger, c.ledger)?;
            if let Some(p) = &c.ledger.policy {
                if prev.policy.as_ref() != Some(p) {
                    policies_t
                        .insert(h, &p.to_bytes()[..])
                        .ctx(|| format!("writing the policy in force from height {h}"))?;
                }
            }
            consensus.record_commit(c.block);
            consensus_t
                .insert(K_PERSISTED, &codec::encode_consensus(&consensus)[..])
                .ctx(|| format!("writing the consensus state at height {h}"))?;
        }
        txn.commit().ctx(|| format!("committing block {h}"))?;
        Ok(())
    }

    /// Durably applies the replica's `Persist` deltas, in order, to the stored consensus state
    /// (genesis if none) in one write transaction. A per-height entry (pre-prepare, vote,
    /// prepared certificate) writes its own row; a `StableCheckpoint` delta also stores its
    /// certificate in the checkpoints table and deletes the rows at or below its height.
    pub fn persist_consensus(&self, deltas: &[PersistDelta]) -> Result<(), StoreError> {
        let txn = self.write("consensus deltas")?;
        {
            let mut core_t = txn
                .open_table(CONSENSUS)
                .ctx(|| "opening table `consensus`".to_string())?;
            let mut log = txn
                .open_table(CONSENSUS_LOG)
                .ctx(|| "opening table `consensus_log`".to_string())?;
            let mut core: Option<PersistedState> = None;
            for d in deltas {
                if let Some((key, value)) = log_row(d) {
                    log.insert(key, &value[..])
                        .ctx(|| format!("writing consensus log entry {key:?}"))?;
                    continue;
                }
                let state = match &mut core {
                    Some(s) => s,
                    None => core.insert(
                        read_consensus_core(&core_t)?.unwrap_or_else(PersistedState::genesis),
                    ),
                };
                state.apply(d);
                if let PersistDelta::StableCheckpoint(cert) = d {
                    let v = codec::encode_checkpoint(cert)
                        .map_err(|e| invalid(format!("checkpoint {}: {e}", cert.height)))?;
                    let mut cp = txn
                        .open_table(CHECKPOINTS)
                        .ctx(|| "opening table `checkpoints`".to_string())?;
                    cp.insert(cert.height, &v[..])
                        .ctx(|| format!("writing checkpoint {}", cert.height))?;
                    // Garbage collection below the stable checkpoint: its rows go too.
                    let h = state.stable_checkpoint.height;
                    log.retain_in(..=(h, u8::MAX), |_, _| false)
                        .ctx(|| format!("collecting consensus log entries up to {h}"))?;
                }
            }
            if let Some(state) = core {
                core_t
                    .insert(K_PERSISTED, &codec::encode_consensus(&state)[..])
                    .ctx(|| "writing the consensus state".to_string())?;
            }
        }
        txn.commit()
            .ctx(|| "committing consensus deltas".to_string())
    }

    /// Replaces the stored consensus state (e.g. when a new epoch starts from a checkpoint).
    pub fn store_consensus_state(&self, state: &PersistedState) -> Result<(), StoreError> {
        let txn = self.write("the consensus state")?;
        {
            let mut core = txn
                .open_table(CONSENSUS)
                .ctx(|| "opening table `consensus`".to_string())?;
            let mut log = txn
                .open_table(CONSENSUS_LOG)
                .ctx(|| "opening table `consensus_log`".to_string())?;
            write_consensus(&mut core, &mut log, state)?;
        }
        txn.commit()
            .ctx(|| "committing the consensus state".to_string())
    }

    /// The stored consensus state, if any.
    pub fn consensus_state(&self) -> Result<Option<PersistedState>, StoreError> {
        let r = self.read()?;
        let core = r
            .open_table(CONSENSUS)
            .ctx(|| "opening table `consensus`".to_string())?;
        let log = r
            .open_table(CONSENSUS_LOG)
            .ctx(|| "opening table `consensus_log`".to_string())?;
        read_consensus(&core, &log)
    }

    /// The first validator-set change whose epoch ends at or after `height`: what a client
    /// that trusts the set ordering `height` needs to learn the next one.
    pub fn epoch_change_at_or_after(&self, height: u64) -> Result<Option<EpochChange>, StoreError> {
        let r = self.read()?;
        let t = r
            .open_table(EPOCH_CHANGES)
            .ctx(|| "opening table `epoch_changes`".to_string())?;
        let mut range = t
            .range(height..)
            .ctx(|| format!("reading table `epoch_changes` from {height}"))?;
        let Some(entry) = range.next() else {
            return Ok(None);
        };
        let (k, v) = entry.ctx(|| format!("reading table `epoch_changes` from {height}"))?;
        let last = k.value();
        codec::decode_epoch_change(last, v.value())
            .map(Some)
            .map_err(corrupt("epoch_changes", format!("height {last}")))
    }

    /// The stable checkpoint certificate stored at `height`.
    pub fn checkpoint(&self, height: u64) -> Result<Option<CheckpointCertificate>, StoreError> {
        read_checkpoint(&self.read()?, height)
    }

    /// Reads everything back on start. `None` for a fresh database (no block, no consensus
    /// state). Checks that the stored pieces agree: the last block, the height metadata and the
    /// ledger head are at the same height; the frontier holds as many leaves as there are
    /// stored commitments and has the recorded root; the nullifier set has the recorded size;
    /// the recent roots are the recorded roots of the last heights; the state root recomputed
    /// from the head is the recorded one; the consensus state's last commit is the last block.
    pub fn load(&self) -> Result<Option<Recovered>, StoreError> {
        let r = self.read()?;
        let open = |name: &str| format!("opening table `{name}` to load");
        let ledger = r.open_table(LEDGER).ctx(|| open("ledger"))?;
        let blocks = r.open_table(BLOCKS).ctx(|| open("blocks"))?;
        let heights = r.open_table(HEIGHTS).ctx(|| open("height_info"))?;
        let nullifiers = r.open_table(NULLIFIERS).ctx(|| open("nullifiers"))?;
        let accounts_t = r.open_table(ACCOUNTS).ctx(|| open("accounts"))?;
        let log_t_nf = r.open_table(NULLIFIER_LOG).ctx(|| open("nullifier_log"))?;
        let commitments = r.open_table(COMMITMENTS).ctx(|| open("commitments"))?;
        let consensus_t = r.open_table(CONSENSUS).ctx(|| open("consensus"))?;
        let log_t = r.open_table(CONSENSUS_LOG).ctx(|| open("consensus_log"))?;
        let meta = r.open_table(META).ctx(|| open("meta"))?;

        let head = read_head(&ledger)?;
        let (base, base_hash) = read_base(&meta)?.unwrap_or((0, BlockHash::GENESIS));
        let consensus = read_consensus(&consensus_t, &log_t)?;
        let h = head.height;
        let last_block = last_key(&blocks, "blocks")?;
        let last_info = last_key(&heights, "height_info")?;
        if h == 0 && consensus.is_none() && last_block.is_none() && last_info.is_none() {
            return Ok(None);
        }
        let inconsistent = |m: String| Err(StoreError::Inconsistent(m));
        if last_block.unwrap_or(base) != h || last_info.unwrap_or(0) != h || base > h {
            return inconsistent(format!(
                "ledger height {h}, last block {last_block:?}, last height metadata {last_info:?}"
            ));
        }
        let n_blocks = blocks.len().ctx(|| "counting blocks".to_string())?;
        if n_blocks != h - base {
            return inconsistent(format!(
                "{n_blocks} blocks stored for height {h} from a snapshot of height {base}"
            ));
        }
        // A store that started from a snapshot holds the commitments appended after it.
        let base_size = match base {
            0 => 0,
            b => {
                read_info(&heights, b)?
                    .ok_or_else(|| {
                        StoreError::Inconsistent(format!("no metadata for the snapshot height {b}"))
                    })?
                    .tree_size
            }
        };
        let n_commitments = commitments
            .len()
            .ctx(|| "counting commitments".to_string())?;
        let size = head.frontier.size();
        if size < base_size || n_commitments != size - base_size {
            return inconsistent(format!(
                "the frontier has {size} leaves but {n_commitments} commitments are stored after the {base_size} of the snapshot"
            ));
        }
        let last_leaf = commitments
            .last()
            .ctx(|| "reading the last key of table `commitments`".to_string())?
            .map(|(k, _)| k.value());
        if last_leaf != size.checked_sub(1).filter(|_| size > base_size) {
            return inconsistent(format!(
                "the frontier has {size} leaves but the last stored commitment is {last_leaf:?}"
            ));
        }
        if size > base_size && size % 4 != 0 {
            // The last stored commitment is the frontier's last leaf.
            let v = get_u64(&commitments, "commitments", size - 1)?.ok_or_else(|| {
                StoreError::Inconsistent(format!("commitment {} is missing", size - 1))
            })?;
            let cm = decode_commitment(&v, size - 1)?;
            if head.frontier.levels()[0].last() != Some(&cm) {
                return inconsistent(format!(
                    "commitment {} is not the frontier's last leaf",
                    size - 1
                ));
            }
        }
        let root = head.frontier.root();
        let state_root = head.state_root_with(&root);
        let mut nullifier_count = 0;
        if h > 0 {
            let info = read_info(&heights, h)?
                .ok_or_else(|| StoreError::Inconsistent(format!("no metadata for height {h}")))?;
            if info.tree_size != size || info.tree_root != root {
                return inconsistent(format!(
                    "height {h}: recorded tree size {} and root differ from the frontier's ({size})",
                    info.tree_size
                ));
            }
            if info.time_ms != head.time_ms {
                return inconsistent(format!(
                    "height {h}: recorded block time {} differs from the ledger's {}",
                    info.time_ms, head.time_ms
                ));
            }
            if info.nullifier_chain != head.nullifier_chain {
                return inconsistent(format!(
                    "height {h}: recorded nullifier chain differs from the ledger's"
                ));
            }
            if info.scan_chain != head.scan_chain {
                return inconsistent(format!(
                    "height {h}: recorded scan chain differs from the ledger's"
                ));
            }
            if info.state_root != state_root {
                return inconsistent(format!(
                    "height {h}: recorded state root {} but the stored ledger state gives {}",
                    hex(&info.state_root),
                    hex(&state_root)
                ));
            }
            nullifier_count = info.nullifier_count;
        }
        // Recent roots: the last one is the frontier's; each is the root recorded at its height.
        let n_roots = head.recent_roots.len() as u64;
        if n_roots == 0 || n_roots > h + 1 || head.recent_roots.last() != Some(&root) {
            return inconsistent(format!(
                "{n_roots} recent roots at height {h}, or the last is not the frontier root"
            ));
        }
        for (i, rr) in head.recent_roots.iter().enumerate() {
            let at = h + 1 - n_roots + i as u64;
            if at < base {
                // Before the snapshot: certified with it by the recent-roots hash.
                continue;
            }
            let expected = if at == 0 {
                Frontier::new().root()
            } else {
                read_info(&heights, at)?
                    .ok_or_else(|| {
                        StoreError::Inconsistent(format!("no metadata for height {at}"))
                    })?
                    .tree_root
            };
            if *rr != expected {
                return inconsistent(format!(
                    "recent root {i} is not the tree root recorded at height {at}"
                ));
            }
        }
        let mut set = BTreeSet::new();
        for item in nullifiers
            .iter()
            .ctx(|| "reading table `nullifiers`".to_string())?
        {
            let (k, v) = item.ctx(|| "reading table `nullifiers`".to_string())?;
            let key: [u8; 32] = k.value().try_into().map_err(|_| StoreError::Corrupt {
                table: "nullifiers",
                key: hex(k.value()),
                reason: "key is not 32 bytes".into(),
            })?;
            let at = codec::decode_u64(v.value()).map_err(corrupt("nullifiers", hex(&key)))?;
            if at == 0 || at > h {
                return inconsistent(format!(
                    "nullifier {} revealed at height {at}, beyond {h}",
                    hex(&key)
                ));
            }
            set.insert(key);
        }
        if set.len() as u64 != nullifier_count {
            return inconsistent(format!(
                "{} nullifiers stored, {nullifier_count} recorded at height {h}",
                set.len()
            ));
        }
        let logged = log_t_nf
            .len()
            .ctx(|| "counting the nullifier log".to_string())?;
        if logged != nullifier_count {
            return inconsistent(format!(
                "{logged} nullifiers logged, {nullifier_count} recorded at height {h}"
            ));
        }
        let accounts = read_accounts(&accounts_t)?;
        if shoji_ledger::accounts_root(&accounts) != head.accounts_root {
            return inconsistent(format!(
                "the stored accounts do not hash to the accounts root of height {h}"
            ));
        }
        let consensus = consensus.unwrap_or_else(PersistedState::genesis);
        let last_hash = match read_block(&blocks, h)? {
            Some((b, _)) => b.hash(),
            None if h == base => base_hash,
            None => return inconsistent(format!("block {h} is missing")),
        };
        if consensus.last_committed != h || consensus.last_committed_hash != last_hash {
            return inconsistent(format!(
                "the consensus state's last commit is height {} but the last stored block is {h} (or its hash differs)",
                consensus.last_committed
            ));
        }
        if h == 0 && head != LedgerHead::genesis() {
            return inconsistent("the ledger head at height 0 is not genesis".into());
        }
        Ok(Some(Recovered {
            height: h,
            state_root,
            ledger: LedgerSnapshot {
                head,
                nullifiers: set,
                accounts,
            },
            consensus,
        }))
    }

    /// Whether the store holds nothing yet: no ledger head, consensus state, block or height
    /// metadata (what [`Store::load`] answers `None` for), found without reading the state.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let r = self.read()?;
        let open = |name: &str| format!("opening table `{name}`");
        let ledger = r.open_table(LEDGER).ctx(|| open("ledger"))?;
        let consensus = r.open_table(CONSENSUS).ctx(|| open("consensus"))?;
        let log = r.open_table(CONSENSUS_LOG).ctx(|| open("consensus_log"))?;
        let blocks = r.open_table(BLOCKS).ctx(|| open("blocks"))?;
        let heights = r.open_table(HEIGHTS).ctx(|| open("height_info"))?;
        Ok(get_str(&ledger, "ledger", K_HEIGHT)?.is_none()
            && get_str(&consensus, "consensus", K_PERSISTED)?.is_none()
            && log
                .is_empty()
                .ctx(|| "reading table `consensus_log`".to_string())?
            && last_key(&blocks, "blocks")?.is_none()
            && last_key(&heights, "height_info")?.is_none())
    }

    /// Ties the database to one genesis: records `hash` the first time and refuses, from then
    /// on, to be opened for another ([`StoreError::GenesisMismatch`]), so a validator pointed at
    /// another network's data directory stops before it votes.
    pub fn check_genesis(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let txn = self.write("the genesis hash")?;
        {
            let mut meta = txn
                .open_table(META)
                .ctx(|| "opening table `meta`".to_string())?;
            match get_str(&meta, "meta", GENESIS_KEY)? {
                Some(v) => {
                    let stored = match v.split_first() {
                        Some((&GENESIS_FORMAT, rest)) if rest.len() == 32 => rest.to_vec(),
                        _ => {
                            return Err(StoreError::Corrupt {
                                table: "meta",
                                key: GENESIS_KEY.into(),
                                reason: format!(
                                    "{} bytes, expected a version byte and 32",
                                    v.len()
                                ),
                            })
                        }
                    };
                    if stored != hash {
                        return Err(StoreError::GenesisMismatch {
                            stored: shoji_primitives::encoding::hex_encode(&stored),
                            expected: shoji_primitives::encoding::hex_encode(hash),
                        });
                    }
                    return Ok(());
                }
                None => {
                    let mut v = vec![GENESIS_FORMAT];
                    v.extend_from_slice(hash);
                    meta.insert(GENESIS_KEY, &v[..])
                        .ctx(|| "writing the genesis hash".to_string())?;
                }
            }
        }
        txn.commit()
            .ctx(|| "committing the genesis hash".to_string())
    }

    /// Height of the last committed block (0 if none).
    pub fn height(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        let t = r
            .open_table(LEDGER)
            .ctx(|| "opening table `ledger`".to_string())?;
        match get_str(&t, "ledger", K_HEIGHT)? {
            Some(v) => codec::decode_u64(&v).map_err(corrupt("ledger", K_HEIGHT)),
            None => Ok(0),
        }
    }

    /// The block committed at `height` and its commit certificate.
    pub fn block(&self, height: u64) -> Result<Option<(Block, CommitCertificate)>, StoreError> {
        self.reader().block(height)
    }

    /// A committed transaction: its block height, index and outcome. A transaction included
    /// more than once reports its applied inclusion if there is one, else its latest.
    pub fn transaction(&self, id: &TxId) -> Result<Option<StoredTx>, StoreError> {
        self.reader().transaction(id)
    }

    /// The compact block of `height`, as stored when it was committed (`None` above the last
    /// height or at 0).
    pub fn compact_block(&self, height: u64) -> Result<Option<CompactBlock>, StoreError> {
        let r = self.read()?;
        let t = r
            .open_table(COMPACT)
            .ctx(|| "opening table `compact_blocks`".to_string())?;
        get_u64(&t, "compact_blocks", height)?
            .map(|v| {
                CompactBlock::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    table: "compact_blocks",
                    key: format!("height {height}"),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The state root's preimage at `height` ([`shoji_ledger::StateOpening`]; `None` above the
    /// last height or at 0): what a client checks against a checkpoint certificate.
    pub fn opening(&self, height: u64) -> Result<Option<shoji_ledger::StateOpening>, StoreError> {
        read_opening(&self.read()?, height)
    }

    /// The ledger's state root recorded at `height` (`None` above the last height or at 0).
    pub fn state_root(&self, height: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let r = self.read()?;
        let t = r
            .open_table(HEIGHTS)
            .ctx(|| "opening table `height_info`".to_string())?;
        Ok(read_info(&t, height)?.map(|i| i.state_root))
    }

    /// The current anchor (tree root) and tree size.
    pub fn tree_state(&self) -> Result<TreeState, StoreError> {
        let r = self.read()?;
        let ledger = r
            .open_table(LEDGER)
            .ctx(|| "opening table `ledger`".to_string())?;
        let heights = r
            .open_table(HEIGHTS)
            .ctx(|| "opening table `height_info`".to_string())?;
        let head = read_head(&ledger)?;
        let anchor = match read_info(&heights, head.height)? {
            Some(i) => i.tree_root,
            None => empty_tree_root(),
        };
        Ok(TreeState {
            height: head.height,
            anchor,
            size: head.frontier.size(),
        })
    }

    /// The commitment at leaf `index`.
    pub fn commitment(&self, index: u64) -> Result<Option<Fr>, StoreError> {
        let r = self.read()?;
        let t = r
            .open_table(COMMITMENTS)
            .ctx(|| "opening table `commitments`".to_string())?;
        get_u64(&t, "commitments", index)?
            .map(|v| decode_commitment(&v, index))
            .transpose()
    }

    /// The height at which nullifier `nf` was revealed, if it was.
    pub fn nullifier_height(&self, nf: &Fr) -> Result<Option<u64>, StoreError> {
        let r = self.read()?;
        let t = r
            .open_table(NULLIFIERS)
            .ctx(|| "opening table `nullifiers`".to_string())?;
        let key = fr_to_bytes(nf);
        get_bytes(&t, "nullifiers", &key)?
            .map(|v| codec::decode_u64(&v).map_err(corrupt("nullifiers", hex(&key))))
            .transpose()
    }
}

fn empty_tree_root() -> Fr {
    shoji_primitives::tree::empty_roots()[DEPTH]
}

fn decode_commitment(v: &[u8], index: u64) -> Result<Fr, StoreError> {
    let mut r = codec::Reader::new(v).map_err(corrupt("commitments", format!("leaf {index}")))?;
    let cm = r
        .fr("commitment")
        .and_then(|cm| r.finish().map(|()| cm))
        .map_err(corrupt("commitments", format!("leaf {index}")))?;
    Ok(cm)
}

#[cfg(test)]
mod tests;

fn read_accounts(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
) -> Result<std::collections::BTreeMap<AccountId, AccountState>, StoreError> {
    let mut out = std::collections::BTreeMap::new();
    for item in t.iter().ctx(|| "reading table `accounts`".to_string())? {
        let (k, v) = item.ctx(|| "reading table `accounts`".to_string())?;
        let id = AccountId::from_bytes(k.value())
            .map_err(|e| corrupt("accounts", hex(k.value()))(e.to_string()))?;
        let state = AccountState::from_bytes(v.value())
            .map_err(|e| corrupt("accounts", hex(k.value()))(e.to_string()))?;
        out.insert(id, state);
    }
    Ok(out)
}
