//! The snapshots a validator writes beside its database and serves to validators that join:
//! one directory per height under `snapshots/`, holding the manifest and one file per chunk
//! (see `shoji_ledger::snapshot`). A snapshot is written from a frozen view of the store on a
//! blocking thread, into a temporary directory renamed when complete, so a crash never leaves
//! a partial snapshot to serve; only the newest few are kept.

use shoji_ledger::snapshot::SnapshotManifest;
use shoji_store::StateView;
use std::path::{Path, PathBuf};

/// Name of the directory, in a validator's data directory, that holds its snapshots.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Name of a snapshot's manifest file.
const MANIFEST: &str = "manifest";

/// Where snapshots are written, and how many are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// The directory (normally `snapshots/` in the data directory).
    pub dir: PathBuf,
    /// Write one every this many blocks, at a checkpoint height (rounded up to a multiple of
    /// the checkpoint interval); 0: never.
    pub every_blocks: u64,
    /// How many to keep (at least 1).
    pub keep: usize,
    /// Chunk size in bytes.
    pub chunk_bytes: usize,
}

impl SnapshotOptions {
    /// Snapshots under `data_dir/snapshots`, every `every_blocks` blocks, the newest two kept,
    /// chunks of [`shoji_ledger::snapshot::DEFAULT_CHUNK_BYTES`].
    pub fn in_data_dir(data_dir: &Path, every_blocks: u64) -> Self {
        SnapshotOptions {
            dir: data_dir.join(SNAPSHOT_DIR),
            every_blocks,
            keep: 2,
            chunk_bytes: shoji_ledger::snapshot::DEFAULT_CHUNK_BYTES,
        }
    }
}

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFileError {
    /// The file system.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store.
    #[error(transparent)]
    Store(#[from] shoji_store::StoreError),
    /// A stored manifest does not decode.
    #[error("the snapshot manifest {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SnapshotFileError {
    let context = context.into();
    move |source| SnapshotFileError::Io { context, source }
}

/// Writes the snapshot of `view` under `options.dir/<height>` and removes all but the newest
/// `options.keep`. Returns the manifest.
pub fn write(
    view: &StateView,
    options: &SnapshotOptions,
) -> Result<SnapshotManifest, SnapshotFileError> {
    let h = view.height();
    let done = options.dir.join(h.to_string());
    let partial = options.dir.join(format!("{h}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(format!("removing {}", partial.display())))?;
    }
    std::fs::create_dir_all(&partial).map_err(io(format!("creating {}", partial.display())))?;
    let manifest = view.write_snapshot(options.chunk_bytes, |i, bytes| {
        std::fs::write(partial.join(i.to_string()), bytes)
    })?;
    let path = partial.join(MANIFEST);
    std::fs::write(&path, manifest.to_bytes())
        .map_err(io(format!("writing {}", path.display())))?;
    if done.exists() {
        std::fs::remove_dir_all(&done).map_err(io(format!("removing {}", done.display())))?;
    }
    std::fs::rename(&partial, &done).map_err(io(format!("renaming {}", partial.display())))?;
    let mut heights = list(&options.dir)?;
    heights.sort_unstable_by(|a, b| b.cmp(a));
    for old in heights.into_iter().skip(options.keep.max(1)) {
        let path = options.dir.join(old.to_string());
        std::fs::remove_dir_all(&path).map_err(io(format!("removing {}", path.display())))?;
    }
    Ok(manifest)
}

/// The heights of the complete snapshots in `dir`, in no particular order.
pub fn list(dir: &Path) -> Result<Vec<u64>, SnapshotFileError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
        if let Some(h) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            out.push(h);
        }
    }
    Ok(out)
}

/// The manifest of the snapshot of height `h` in `dir`, as stored (`None`: no such snapshot).
pub fn manifest(dir: &Path, h: u64) -> Result<Option<Vec<u8>>, SnapshotFileError> {
    let path = dir.join(h.to_string()).join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => {
            SnapshotManifest::from_bytes(&bytes).map_err(|e| SnapshotFileError::Corrupt {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// Chunk `index` of the snapshot of height `h` in `dir` (`None`: no such chunk).
pub fn chunk(dir: &Path, h: u64, index: u32) -> Result<Option<Vec<u8>>, SnapshotFileError> {
    let path = dir.join(h.to_string()).join(index.to_string());
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// The client's view of `genesis`'s network with the validators at `addrs`: what a joining
/// validator asks its peers for a snapshot through.
pub fn peers_network(
    genesis: &crate::Genesis,
    addrs: &std::collections::BTreeMap<shoji_consensus::ReplicaId, std::net::SocketAddr>,
) -> shoji_client::Network {
    shoji_client::Network {
        addrs: addrs.iter().map(|(id, a)| (*id, *a)).collect(),
        validators: genesis.validators.clone().on_network(genesis.hash()),
        auditor: genesis.ledger.auditor,
        account_auditor: genesis.ledger.account_auditor,
        issuers: genesis.ledger.issuers.clone(),
        assets: Default::default(),
        insecure: genesis
            .insecure
            .then(|| "development keys or parameters".to_string()),
        network_id: genesis.hash(),
        parameters: shoji_client::ParameterPins {
            verifying_key_hash: genesis.verifying_key_hash,
            proving_key_hash: None,
        },
        archive: None,
    }
}

/// What [`sync_from_peers`] did.
#[derive(Debug)]
pub enum Synced {
    /// The store already held a chain: nothing was fetched.
    NotEmpty,
    /// No validator offers a snapshot yet: start from genesis.
    NoSnapshot,
    /// The store now starts from the snapshot of this height.
    From {
        /// The snapshot's height.
        height: u64,
        /// Validators whose answers were refused, with why.
        refused: Vec<(u16, String)>,
    },
}

/// Why [`sync_from_peers`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The store.
    #[error(transparent)]
    Store(#[from] shoji_store::StoreError),
    /// Every validator was asked; none served a snapshot that checks.
    #[error("fetching a state snapshot: {0}")]
    Fetch(#[from] shoji_client::ClientError),
}

/// On an empty store, fetches the newest snapshot the validators of `network` (but `me`) offer,
/// checks it against its checkpoint certificate and installs it
/// ([`shoji_store::Store::install_snapshot`]): the validator then catches up from that height by
/// ordinary state transfer instead of replaying from genesis. Blocking: call it before the
/// validator's runtime starts, or on a thread of its own.
pub fn sync_from_peers(
    store: &shoji_store::Store,
    network: &shoji_client::Network,
    me: u16,
) -> Result<Synced, SyncError> {
    // A store made for another network is refused before anything is asked of this one.
    store.check_genesis(&network.network_id)?;
    if !store.is_empty()? {
        return Ok(Synced::NotEmpty);
    }
    // Every validator at once: at a network's birth the others may not listen yet, and each
    // unreachable one costs a connection timeout.
    let ids: Vec<u16> = network
        .addrs
        .iter()
        .map(|(id, _)| id.0)
        .filter(|id| *id != me)
        .collect();
    let clients: Vec<shoji_client::Client> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|&id| {
                let mut one = network.clone();
                one.addrs.retain(|(i, _)| i.0 == id);
                scope.spawn(move || (id, shoji_client::Client::connect(&one, None)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok((id, Ok(c))) if c.node() == id => Some(c),
                Ok((_, Ok(_))) => None,
                Ok((id, Err(e))) => {
                    tracing::info!(validator = id, error = %e, "no snapshot from this validator: unreachable");
                    None
                }
                Err(_) => None,
            })
            .collect()
    });
    let sources: Vec<&dyn shoji_client::snapshot::SnapshotSource> = clients
        .iter()
        .map(|c| c as &dyn shoji_client::snapshot::SnapshotSource)
        .collect();
    let Some(fetched) = shoji_client::snapshot::fetch_snapshot(&sources)? else {
        return Ok(Synced::NoSnapshot);
    };
    for (node, why) in &fetched.refused {
        tracing::warn!(validator = node, reason = %why, "refused a validator's snapshot answer");
    }
    store.install_snapshot(&fetched.snapshot, &fetched.checkpoint)?;
    Ok(Synced::From {
        height: fetched.checkpoint.height,
        refused: fetched.refused,
    })
}

/// A snapshot on disk, as [`inspect`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFiles {
    /// Its height.
    pub height: u64,
    /// The state root its manifest opens to.
    pub state_root: [u8; 32],
    /// Its chunks.
    pub chunks: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Nullifiers and accounts it holds.
    pub nullifiers: u64,
    /// Accounts it holds.
    pub accounts: u64,
}

/// Reads the snapshot of height `h` in `dir` and, with `check`, checks every chunk and the
/// whole against the manifest's opening (what a joining validator checks, less the
/// certificate: pass the certified root as `certified` to check that too).
pub fn inspect(
    dir: &Path,
    h: u64,
    check: bool,
    certified: Option<[u8; 32]>,
) -> Result<SnapshotFiles, SnapshotFileError> {
    let bytes = manifest(dir, h)?.ok_or_else(|| SnapshotFileError::Corrupt {
        path: dir.join(h.to_string()).display().to_string(),
        reason: "no such snapshot".into(),
    })?;
    let corrupt = |reason: String| SnapshotFileError::Corrupt {
        path: dir.join(h.to_string()).display().to_string(),
        reason,
    };
    let m = SnapshotManifest::from_bytes(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let state_root = m.opening.root();
    let files = SnapshotFiles {
        height: m.opening.height,
        state_root,
        chunks: m.chunks.len(),
        bytes: m.chunks.iter().map(|c| u64::from(c.len)).sum(),
        nullifiers: m.nullifiers,
        accounts: m.accounts,
    };
    if !check {
        return Ok(files);
    }
    let root = certified.unwrap_or(state_root);
    let mut a = shoji_ledger::snapshot::SnapshotAssembler::new(m, &root)
        .map_err(|e| corrupt(e.to_string()))?;
    for i in a.missing() {
        let c = chunk(dir, h, i as u32)?.ok_or_else(|| corrupt(format!("chunk {i} is missing")))?;
        a.accept(i, &c).map_err(|e| corrupt(e.to_string()))?;
    }
    a.finish().map_err(|e| corrupt(e.to_string()))?;
    Ok(files)
}
