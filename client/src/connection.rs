//! A blocking client: one connection to one validator at a time, failing over to the next.

use crate::api::{Request, Response, Status, MAX_COMPACT_BLOCKS};
use crate::network::Network;
use shoji_consensus::CheckpointCertificate;
use shoji_consensus::{
    verify_commit_certificate_for, BlockHash, BlockSummary, CommitCertificate, ReplicaId,
};
use shoji_ledger::{chain_compact, CompactBlock, StateOpening};
use shoji_net::{ClientConnection, NetConfig};
use shoji_primitives::account::AccountTx;
use shoji_primitives::encoding::fr_from_bytes;
use shoji_primitives::tx::Transaction;
use shoji_primitives::Fr;
use std::time::Duration;

mod archive_check;
pub use archive_check::ArchiveCheck;

/// What can go wrong talking to a network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No validator could be reached.
    #[error("no validator is reachable ({0})")]
    Unreachable(String),
    /// The connection failed mid-request.
    #[error("validator {node} stopped answering: {reason}")]
    Connection {
        /// Which validator.
        node: u16,
        /// Why.
        reason: String,
    },
    /// The validator refused the transaction before ordering it.
    #[error("transaction refused: {0}")]
    Refused(String),
    /// The validator admitted the transaction, then dropped it unordered. It may still be
    /// ordered through another validator until its expiry height.
    #[error("transaction not ordered: {0}")]
    NotOrdered(String),
    /// The transaction was ordered into a block but is invalid there (for example a double
    /// spend ordered concurrently); it changed nothing.
    #[error("transaction rejected in block {height}: {reason}")]
    Rejected {
        /// The block.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The validator could not serve the request.
    #[error("validator error: {0}")]
    Server(String),
    /// The validator answered something that is not a valid answer.
    #[error("invalid answer from validator {node}: {reason}")]
    Protocol {
        /// Which validator.
        node: u16,
        /// What was wrong.
        reason: String,
    },
    /// The validator answered data the network did not certify: compact blocks or a tree root
    /// that a stable checkpoint's state root contradicts, or a checkpoint that does not verify.
    /// Ask another validator, and tell the operators.
    #[error("validator {node} answered what the network did not certify: {what}")]
    Lied {
        /// Which validator.
        node: u16,
        /// What it got wrong.
        what: String,
    },
    /// The events after `after` are no longer kept by the validator: it keeps them from height
    /// `first`. Resume from there (accepting the gap), or from a validator that keeps more.
    #[error("the events after {after} are no longer kept: validator {node} keeps them from height {first}")]
    EventsPruned {
        /// Which validator.
        node: u16,
        /// The cursor asked after.
        after: crate::events::Cursor,
        /// The first height whose events it keeps.
        first: u64,
    },
    /// The commit certificate does not verify against the network's validator set.
    #[error("the commit certificate from validator {node} does not verify: {reason}")]
    BadCertificate {
        /// Which validator.
        node: u16,
        /// Why.
        reason: String,
    },
    /// The validator no longer keeps the heights asked for: it keeps them from `first` on.
    #[error("validator {node} keeps blocks from height {first} on, and the network file names no archive to read older ones from")]
    NotKept {
        /// Which validator.
        node: u16,
        /// The first height it keeps.
        first: u64,
    },
    /// The network's archive could not be read.
    #[error("the history archive: {0}")]
    Archive(String),
    /// No participant is registered under this name (as of the certified state at `height`).
    #[error("no participant is registered as {name:?} (registry as certified at height {height})")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The height of the certified registry read.
        height: u64,
    },
    /// The participant registered under this name was revoked by governance.
    #[error("the participant {name:?} was revoked by governance (registry as certified at height {height}): it is no longer paid by name")]
    RevokedName {
        /// The name asked for.
        name: String,
        /// The height of the certified registry read.
        height: u64,
    },
}

/// The policy in force at a stable checkpoint, checked against its certified state root
/// ([`Client::certified_policy`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedPolicy {
    /// The checkpoint's height.
    pub height: u64,
    /// The policy, `None` while it is the genesis policy (which the network file describes and
    /// whose registry is empty).
    pub policy: Option<shoji_ledger::Policy>,
}

/// Checks a policy a validator sent against the opening of a certified state root: its hash
/// must be the opening's `policy` (zero, with nothing sent, for the genesis policy).
pub fn check_policy(
    opening: &StateOpening,
    policy: &[u8],
) -> Result<Option<shoji_ledger::Policy>, String> {
    let policy = match policy.is_empty() {
        true => None,
        false => Some(shoji_ledger::Policy::from_bytes(policy).map_err(|e| e.to_string())?),
    };
    if shoji_ledger::policy_hash(policy.as_ref()) != opening.policy {
        return Err(format!(
            "the policy sent is not the one the state at height {} commits to",
            opening.height
        ));
    }
    Ok(policy)
}

/// A transaction's finality: the block holding it, checked against its commit certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finality {
    /// Block height.
    pub height: u64,
    /// Block hash.
    pub block_hash: BlockHash,
    /// Number of validators whose commit signatures were checked.
    pub signatures: usize,
}

/// Compact blocks checked against a stable checkpoint: a quorum of the validator set signed the
/// state root whose opening gives the scan chain over every compact block up to `height`, and
/// the tree root there. No single validator can add, drop or alter one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedBlocks {
    /// The checkpoint height the blocks reach (the last asked-for height when nothing new is
    /// certified yet).
    pub height: u64,
    /// The blocks from the asked height to `height`, in order.
    pub blocks: Vec<CompactBlock>,
}

/// A block's summary (its header fields and transaction hashes), checked against its commit
/// certificate and the validator set of its epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedBlock {
    /// The summary.
    pub summary: BlockSummary,
    /// The block's hash ([`BlockSummary::hash`]), which the certificate signs.
    pub hash: BlockHash,
    /// The commit certificate.
    pub certificate: CommitCertificate,
}

/// Where a transaction was committed and what happened to it ([`Client::transaction`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxStatus {
    /// The block's height.
    pub height: u64,
    /// Its index among the block's transactions.
    pub index: u32,
    /// What it is.
    pub kind: crate::events::PayloadKind,
    /// `None`: applied. Otherwise why not: the certified rejection code's name
    /// ([`shoji_ledger::RejectionCode::name`]) when `certified`, else the validator's words.
    pub rejected: Option<String>,
    /// Whether the outcome was checked against the compact block of `height` certified by a
    /// stable checkpoint. `false` until the chain's next stable checkpoint reaches `height`
    /// (within one checkpoint interval): until then the outcome is the validator's word.
    pub certified: bool,
}

/// The tree's state at a validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeState {
    /// Last committed height.
    pub height: u64,
    /// The current root (a valid anchor).
    pub anchor: Fr,
    /// Commitments in the tree.
    pub size: u64,
}

/// A blocking connection to a network. Dropping it closes the connection and tells the
/// validator, so that a command that exits frees its slot at once.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    conn: ClientConnection,
    node: ReplicaId,
    network: Network,
    /// The validator sets this client trusts, oldest first: the network file's, then each one
    /// learned from a checkpoint of the one before ([`Client::verify_in_epoch`],
    /// [`Client::learn_next_epoch`]).
    epochs: std::sync::Mutex<Vec<Epoch>>,
    /// The network's history archive, once opened ([`Client::archive`]).
    archive: std::sync::OnceLock<crate::archive::Archive>,
}

/// A validator set and the heights it orders: those above `after`, up to `last` when a
/// change is known.
#[derive(Clone, Debug)]
struct Epoch {
    after: u64,
    last: Option<u64>,
    set: shoji_consensus::ValidatorSet,
}

impl Drop for Client {
    fn drop(&mut self) {
        // The endpoint's driver runs on this runtime: close while it still runs, or the close
        // never leaves and the validator holds the connection until its idle timeout.
        self.runtime.block_on(self.conn.shutdown());
    }
}

/// How long a client waits for one answer; a submission waits for its commit. Longer than a
/// validator's own limit for answering (`NetConfig::answer_timeout`, 60 s), so the validator's
/// answer or reset arrives first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

/// How long [`Client::scan_certified`] waits for blocks above the last stable checkpoint to be
/// certified.
pub const CERTIFY_PATIENCE: Duration = Duration::from_secs(10);

impl Client {
    /// Connects to the first validator of `network` that answers, starting with `first` (or
    /// validator order). The validator's TLS key must be the one the network file pins.
    pub fn connect(network: &Network, first: Option<u16>) -> Result<Client, ClientError> {
        let mut order = network.addrs.clone();
        if let Some(first) = first {
            order.sort_by_key(|(id, _)| id.0 != first);
        }
        Self::connect_in_order(network, order)
    }

    /// Connects to the first validator of `network` that answers, leaving out those in `avoid`
    /// (validators caught answering what the network did not certify).
    pub fn connect_except(
        network: &Network,
        avoid: &std::collections::BTreeSet<u16>,
    ) -> Result<Client, ClientError> {
        let order = network
            .addrs
            .iter()
            .filter(|(id, _)| !avoid.contains(&id.0))
            .copied()
            .collect();
        Self::connect_in_order(network, order)
    }

    fn connect_in_order(
        network: &Network,
        order: Vec<(ReplicaId, std::net::SocketAddr)>,
    ) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Unreachable(format!("cannot start a runtime: {e}")))?;
        let config = NetConfig {
            stream_timeout: REQUEST_TIMEOUT,
            ..NetConfig::default()
        };
        let mut failures = Vec::new();
        for (id, addr) in order {
            let Some(key) = network.validators.key(id) else {
                continue;
            };
            let attempt = runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(5),
                    ClientConnection::connect_with(addr, key, config.clone()),
                )
                .await
            });
            match attempt {
                Ok(Ok(conn)) => {
                    return Ok(Client {
                        runtime,
                        conn,
                        node: id,
                        network: network.clone(),
                        epochs: std::sync::Mutex::new(vec![Epoch {
                            after: 0,
                            last: None,
                            set: network.validators.clone(),
                        }]),
                        archive: std::sync::OnceLock::new(),
                    })
                }
                Ok(Err(e)) => failures.push(format!("validator {} at {addr}: {e}", id.0)),
                Err(_) => failures.push(format!("validator {} at {addr}: timed out", id.0)),
            }
        }
        Err(ClientError::Unreachable(failures.join("; ")))
    }

    /// The validator this client talks to.
    pub fn node(&self) -> u16 {
        self.node.0
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    fn ask(&self, req: &Request) -> Result<Response, ClientError> {
        let bytes = self
            .runtime
            .block_on(self.conn.request(&req.encode()))
            .map_err(|e| ClientError::Connection {
                node: self.node.0,
                reason: e.to_string(),
            })?;
        let resp = Response::decode(&bytes).map_err(|reason| self.protocol(reason))?;
        if let Response::Error(e) = resp {
            return Err(ClientError::Server(e));
        }
        Ok(resp)
    }

    /// Runs `verify` with the validator set that orders `height`. When the newest known set
    /// fails it for a height it is not known to end before, the validator is asked for the
    /// change that ends that set's epoch ([`Client::learn_next_epoch`]), and `verify` runs
    /// again with the next set if the change ends before `height`. The error says why the
    /// last try failed.
    fn verify_in_epoch<E: std::fmt::Display>(
        &self,
        height: u64,
        verify: impl Fn(&shoji_consensus::ValidatorSet) -> Result<(), E>,
    ) -> Result<(), String> {
        loop {
            let epochs = self
                .epochs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let Some(epoch) = epochs
                .iter()
                .find(|e| height > e.after && e.last.is_none_or(|l| height <= l))
            else {
                return Err(format!("no known validator set orders height {height}"));
            };
            let err = match verify(&epoch.set) {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if epoch.last.is_some() {
                return Err(format!("{err} (validator-set epoch {})", epoch.set.epoch));
            }
            match self.learn_next_epoch(epoch)? {
                Some(last) if last < height => continue,
                _ => {
                    return Err(format!(
                        "{err} (against validator-set epoch {}; the validator shows no change of the set before height {height})",
                        epoch.set.epoch
                    ))
                }
            }
        }
    }

    /// Asks for the change that ends `open`'s epoch and checks it ([`check_epoch_change`]);
    /// the next set then orders the heights above the epoch's last height. Returns that
    /// height, or `None` when the validator knows of no change.
    fn learn_next_epoch(&self, open: &Epoch) -> Result<Option<u64>, String> {
        let answer = self
            .ask(&Request::EpochChange {
                height: open.after + 1,
            })
            .map_err(|e| e.to_string())?;
        let Some((last, set)) = check_epoch_change(open, answer)? else {
            return Ok(None);
        };
        let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = epochs.last_mut().filter(|e| e.after == open.after) {
            e.last = Some(last);
            epochs.push(Epoch {
                after: last,
                last: None,
                set,
            });
        }
        Ok(Some(last))
    }

    fn protocol(&self, reason: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            node: self.node.0,
            reason: reason.into(),
        }
    }

    /// The highest stable checkpoint at or below `at_or_below`, checked: its certificate against
    /// the network's validator set, and the opening against the certified state root.
    fn certified_at(
        &self,
        at_or_below: u64,
    ) -> Result<(CheckpointCertificate, Option<StateOpening>), ClientError> {
        let (checkpoint, opening) = match self.ask(&Request::Certified { at_or_below })? {
            Response::Certified {
                checkpoint,
                opening,
            } => (checkpoint, opening),
            other => return Err(self.protocol(format!("expected a checkpoint, got {other:?}"))),
        };
        let (cert, opening) = self.check_certified(&checkpoint, &opening)?;
        if cert.height > at_or_below {
            return Err(self.protocol(format!(
                "checkpoint {} above the height asked for ({at_or_below})",
                cert.height
            )));
        }
        Ok((cert, opening))
    }

    /// A checkpoint certificate and the opening of its state root as a validator sent them,
    /// checked: the certificate against the validator set of its height (or genesis's, with no
    /// opening, at height 0), the opening against the certified state root.
    fn check_certified(
        &self,
        checkpoint: &[u8],
        opening: &[u8],
    ) -> Result<(CheckpointCertificate, Option<StateOpening>), ClientError> {
        let lied = |what: String| ClientError::Lied {
            node: self.node.0,
            what,
        };
        let cert: CheckpointCertificate = postcard::from_bytes(checkpoint)
            .map_err(|e| self.protocol(format!("checkpoint: {e}")))?;
        let genesis = CheckpointCertificate::genesis();
        if cert.height == 0 {
            return match cert == genesis && opening.is_empty() {
                true => Ok((cert, None)),
                false => Err(lied("a checkpoint at height 0 that is not genesis".into())),
            };
        }
        self.verify_in_epoch(cert.height, |set| cert.verify(set, &genesis))
            .map_err(|e| lied(format!("checkpoint {} does not verify: {e}", cert.height)))?;
        let opening =
            StateOpening::from_bytes(opening).map_err(|e| self.protocol(e.to_string()))?;
        if opening.height != cert.height || opening.root() != cert.state_root {
            return Err(lied(format!(
                "the state at height {} does not hash to the certified state root",
                cert.height
            )));
        }
        Ok((cert, Some(opening)))
    }

    /// The newest state snapshot this validator serves, with its checkpoint certificate checked
    /// against the validator set of its height (`None`: it serves none). The manifest is not
    /// yet checked against the certificate: [`crate::snapshot::fetch_snapshot`] does that.
    pub fn snapshot_offer(
        &self,
    ) -> Result<
        Option<(
            CheckpointCertificate,
            shoji_ledger::snapshot::SnapshotManifest,
        )>,
        ClientError,
    > {
        let (checkpoint, manifest) = match self.ask(&Request::Snapshot)? {
            Response::Snapshot {
                checkpoint,
                manifest,
            } => (checkpoint, manifest),
            other => return Err(self.protocol(format!("expected a snapshot, got {other:?}"))),
        };
        if checkpoint.is_empty() && manifest.is_empty() {
            return Ok(None);
        }
        let cert: CheckpointCertificate = postcard::from_bytes(&checkpoint)
            .map_err(|e| self.protocol(format!("checkpoint: {e}")))?;
        let manifest = shoji_ledger::snapshot::SnapshotManifest::from_bytes(&manifest)
            .map_err(|e| self.protocol(format!("snapshot manifest: {e}")))?;
        if cert.height == 0 {
            return Err(self.protocol("a snapshot at height 0"));
        }
        let genesis = CheckpointCertificate::genesis();
        self.verify_in_epoch(cert.height, |set| cert.verify(set, &genesis))
            .map_err(|e| ClientError::Lied {
                node: self.node.0,
                what: format!("checkpoint {} does not verify: {e}", cert.height),
            })?;
        Ok(Some((cert, manifest)))
    }

    /// The policy at the validator's latest stable checkpoint, checked: the certificate against
    /// the validator set of its height, the opening against the certified state root, and the
    /// policy against the opening. A validator that sends anything else is reported as
    /// [`ClientError::Lied`].
    pub fn certified_policy(&self) -> Result<CertifiedPolicy, ClientError> {
        let (checkpoint, opening, policy) = match self.ask(&Request::Policy)? {
            Response::Policy {
                checkpoint,
                opening,
                policy,
            } => (checkpoint, opening, policy),
            other => return Err(self.protocol(format!("expected a policy, got {other:?}"))),
        };
        let (cert, opening) = self.check_certified(&checkpoint, &opening)?;
        let policy = match opening {
            Some(o) => check_policy(&o, &policy),
            None if policy.is_empty() => Ok(None),
            None => Err("a policy at height 0 other than genesis's".into()),
        }
        .map_err(|what| ClientError::Lied {
            node: self.node.0,
            what,
        })?;
        Ok(CertifiedPolicy {
            height: cert.height,
            policy,
        })
    }

    /// The first address of the participant registered as `name`, from the certified registry
    /// ([`Client::certified_policy`]): never one validator's word. An unknown or revoked name
    /// is an error.
    pub fn resolve_name(&self, name: &str) -> Result<shoji_primitives::keys::Address, ClientError> {
        let c = self.certified_policy()?;
        let entry = c.policy.as_ref().and_then(|p| p.registry.get(name));
        match entry {
            None => Err(ClientError::UnknownName {
                name: name.to_string(),
                height: c.height,
            }),
            Some(e) if e.revoked => Err(ClientError::RevokedName {
                name: name.to_string(),
                height: c.height,
            }),
            Some(e) => e
                .participant
                .addresses
                .first()
                .copied()
                .ok_or_else(|| self.protocol("a registry entry without an address")),
        }
    }

    /// Chunk `index` of the snapshot of `height`, as the validator sends it (empty: it no
    /// longer has it). Check it with [`shoji_ledger::snapshot::SnapshotAssembler::accept`].
    pub fn snapshot_chunk(&self, height: u64, index: u32) -> Result<Vec<u8>, ClientError> {
        match self.ask(&Request::SnapshotChunk { height, index })? {
            Response::SnapshotChunk(bytes) => Ok(bytes),
            other => Err(self.protocol(format!("expected a snapshot chunk, got {other:?}"))),
        }
    }

    /// Compact blocks from `from_height`, as far as the highest stable checkpoint within `max`
    /// blocks of it, each checked against that checkpoint (see [`CertifiedBlocks`]): the scan
    /// chain is recomputed from the checkpoint at or below `from_height - 1` over every block
    /// up to the new one, and the last block's tree root compared with the certified one.
    /// Empty when no checkpoint above `from_height - 1` is within reach yet (an idle chain
    /// closes its checkpoint within a few blocks). A validator whose blocks do not match is
    /// reported as [`ClientError::Lied`].
    pub fn certified_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> Result<CertifiedBlocks, ClientError> {
        let have = from_height.saturating_sub(1);
        let (top, top_opening) = self.certified_at(have.saturating_add(max.max(1) as u64))?;
        let Some(top_opening) = top_opening.filter(|_| top.height > have) else {
            return Ok(CertifiedBlocks {
                height: have,
                blocks: Vec::new(),
            });
        };
        let (base, base_opening) = self.certified_at(have)?;
        let mut chain = base_opening.map_or([0; 32], |o| o.scan_chain);
        let mut next = base.height + 1;
        let mut tree_root = base_opening.map(|o| o.tree_root);
        let mut blocks = Vec::new();
        let mut from_archive = false;
        while next <= top.height {
            let want = (top.height - next + 1).min(MAX_COMPACT_BLOCKS as u64) as u32;
            let batch = match self.compact_blocks(next, want) {
                // Older than the validator keeps: from the archive, checked the same way.
                Err(ClientError::NotKept { first, .. }) if self.network.archive.is_some() => {
                    let got =
                        self.archived_compact_blocks(next, want.min((first - next) as u32))?;
                    if got.is_empty() {
                        return Err(ClientError::Archive(format!(
                            "height {next} is not in the archive"
                        )));
                    }
                    from_archive = true;
                    got
                }
                other => other?,
            };
            if batch.is_empty() {
                return Err(ClientError::Lied {
                    node: self.node.0,
                    what: format!(
                        "no compact block {next}, below its own stable checkpoint {}",
                        top.height
                    ),
                });
            }
            for b in batch {
                chain = chain_compact(&chain, &b.to_bytes());
                tree_root = Some(b.tree_root);
                next = b.height + 1;
                if b.height >= from_height {
                    blocks.push(b);
                }
            }
        }
        if (chain != top_opening.scan_chain || tree_root != Some(top_opening.tree_root))
            && from_archive
        {
            return Err(ClientError::Archive(format!(
                "compact blocks {}..={} (some from the archive) do not match the certified state at height {}",
                base.height + 1,
                top.height,
                top.height
            )));
        }
        if chain != top_opening.scan_chain || tree_root != Some(top_opening.tree_root) {
            return Err(ClientError::Lied {
                node: self.node.0,
                what: format!(
                    "compact blocks {}..={} do not match the certified state at height {}",
                    base.height + 1,
                    top.height,
                    top.height
                ),
            });
        }
        Ok(CertifiedBlocks {
            height: top.height,
            blocks,
        })
    }

    /// Scans certified blocks ([`Client::certified_blocks`]) from `from_height` until past
    /// `until`, `batch` at a time, handing each batch to `scan` with the id of the validator
    /// that served it. Blocks above the last stable checkpoint are certified when the chain
    /// reaches the next one, which an idle network does within a few blocks: this waits up to
    /// [`CERTIFY_PATIENCE`] for that, then returns what it has. A validator caught answering
    /// what the network did not certify is left for another (nothing it sent is scanned); the
    /// liars are returned, with what each got wrong, for the caller to report.
    pub fn scan_certified<E: From<ClientError>>(
        &self,
        from_height: u64,
        until: u64,
        batch: u32,
        mut scan: impl FnMut(&[CompactBlock], u16) -> Result<(), E>,
    ) -> Result<Vec<(u16, String)>, E> {
        let mut next = from_height;
        let mut other: Option<Client> = None;
        let mut liars = Vec::new();
        let deadline = std::time::Instant::now() + CERTIFY_PATIENCE;
        while next <= until {
            let c = other.as_ref().unwrap_or(self);
            let blocks = match c.certified_blocks(next, batch) {
                Ok(b) => b.blocks,
                Err(ClientError::Lied { node, what }) => {
                    liars.push((node, what));
                    let avoid = liars.iter().map(|(n, _)| *n).collect();
                    other = Some(Client::connect_except(&self.network, &avoid)?);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(last) = blocks.last() else {
                if std::time::Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            next = last.height + 1;
            scan(&blocks, c.node())?;
        }
        Ok(liars)
    }

    /// The validator's height, anchor and tree size.
    pub fn tree_state(&self) -> Result<TreeState, ClientError> {
        match self.ask(&Request::TreeState)? {
            Response::TreeState {
                height,
                anchor,
                size,
            } => Ok(TreeState {
                height,
                anchor: fr_from_bytes("anchor", &anchor)
                    .map_err(|e| self.protocol(e.to_string()))?,
                size,
            }),
            other => Err(self.protocol(format!("expected a tree state, got {other:?}"))),
        }
    }

    /// Where the validator stands: height, last block hash, state root, view, leader. The
    /// answer is the validator's word, not checked against certificates.
    pub fn status(&self) -> Result<Status, ClientError> {
        match self.ask(&Request::Status)? {
            Response::Status(s) => {
                if s.node != self.node.0 {
                    return Err(self.protocol(format!(
                        "status of validator {} from validator {}",
                        s.node, self.node.0
                    )));
                }
                Ok(s)
            }
            other => Err(self.protocol(format!("expected a status, got {other:?}"))),
        }
    }

    /// The public events after `after` whose kinds are in `kinds`, at most `max`, waiting up to
    /// `wait_ms` for a block when there are none yet; and the cursor to ask after next. The
    /// answer is checked to be in stream order, after `after`, of the kinds asked, and no
    /// longer than asked. [`ClientError::EventsPruned`] when the events after `after` are no
    /// longer kept.
    pub fn events(
        &self,
        after: crate::events::Cursor,
        kinds: crate::events::KindMask,
        max: u32,
        wait_ms: u32,
    ) -> Result<(Vec<crate::events::Event>, crate::events::Cursor), ClientError> {
        let max = max.clamp(1, crate::api::MAX_EVENTS);
        let request = Request::Events {
            after,
            kinds,
            max,
            wait_ms,
        };
        match self.ask(&request)? {
            Response::Events { events, next } => {
                if events.len() > max as usize {
                    return Err(self.protocol("more events than asked for"));
                }
                let mut last = after;
                for e in &events {
                    if e.cursor <= last {
                        return Err(self
                            .protocol(format!("event {} out of order (after {last})", e.cursor)));
                    }
                    if kinds & e.body.kind().bit() == 0 {
                        return Err(
                            self.protocol(format!("event {} of a kind not asked for", e.cursor))
                        );
                    }
                    last = e.cursor;
                }
                if next < last {
                    return Err(self.protocol(format!("resume cursor {next} before event {last}")));
                }
                Ok((events, next))
            }
            Response::EventsPruned { first } => Err(ClientError::EventsPruned {
                node: self.node.0,
                after,
                first,
            }),
            Response::Error(e) => Err(ClientError::Server(e)),
            other => Err(self.protocol(format!("expected events, got {other:?}"))),
        }
    }

    /// The block committed at `height` (`None` when none is yet, at this validator), its
    /// summary checked against its commit certificate: [`ClientError::BadCertificate`] when the
    /// certificate does not verify against the validator set of the block's epoch or is for
    /// another height.
    pub fn block(&self, height: u64) -> Result<Option<CertifiedBlock>, ClientError> {
        let (summary, certificate) = match self.ask(&Request::Block { height })? {
            Response::Block {
                summary,
                certificate,
            } => (summary, certificate),
            other => return Err(self.protocol(format!("expected a block, got {other:?}"))),
        };
        if summary.is_empty() && certificate.is_empty() {
            return Ok(None);
        }
        let summary: BlockSummary = postcard::from_bytes(&summary)
            .map_err(|e| self.protocol(format!("block summary: {e}")))?;
        let certificate: CommitCertificate = postcard::from_bytes(&certificate)
            .map_err(|e| self.protocol(format!("certificate: {e}")))?;
        let bad = |reason: String| ClientError::BadCertificate {
            node: self.node.0,
            reason,
        };
        if summary.height != height {
            return Err(bad(format!(
                "asked for block {height}, answered block {}",
                summary.height
            )));
        }
        let hash = summary.hash();
        self.verify_in_epoch(height, |set| {
            verify_certificate_once(set, height, hash, &certificate)
        })
        .map_err(bad)?;
        Ok(Some(CertifiedBlock {
            summary,
            hash,
            certificate,
        }))
    }

    /// Where the transaction `txid` ([`Transaction::id`]) was committed and its outcome
    /// (`None` when this validator has committed none with that id). The validator's answer
    /// carries the transaction as ordered, whose id is checked; once a stable checkpoint covers
    /// its height, the outcome is checked against the certified compact block there (the
    /// applied transactions' ids, the rejected ones' byte hashes and codes) and `certified` is
    /// set. A validator whose answer the certified block contradicts is reported as
    /// [`ClientError::Lied`].
    pub fn transaction(
        &self,
        txid: shoji_primitives::tx::TxId,
    ) -> Result<Option<TxStatus>, ClientError> {
        let record = match self.ask(&Request::Transaction { txid: txid.0 })? {
            Response::Transaction(record) => record,
            other => return Err(self.protocol(format!("expected a transaction, got {other:?}"))),
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let lied = |what: String| ClientError::Lied {
            node: self.node.0,
            what,
        };
        let (id, auth_id, kind) = if AccountTx::is_account(&record.tx) {
            let tx = AccountTx::from_bytes(&record.tx)
                .map_err(|e| self.protocol(format!("transaction: {e}")))?;
            (
                tx.id(),
                tx.auth_id(),
                crate::events::PayloadKind::of_account(&tx),
            )
        } else {
            let tx = Transaction::from_bytes(&record.tx)
                .map_err(|e| self.protocol(format!("transaction: {e}")))?;
            (
                tx.id(),
                tx.auth_id(),
                crate::events::PayloadKind::of(tx.kind()),
            )
        };
        if id != txid {
            return Err(lied(format!("answered transaction {id} for {txid}")));
        }
        let mut status = TxStatus {
            height: record.height,
            index: record.index,
            kind,
            rejected: record.rejected,
            certified: false,
        };
        let Some(block) = self.certified_block(record.height)? else {
            return Ok(Some(status));
        };
        status.rejected =
            certified_outcome(&block, &txid, &auth_id, status.rejected.is_some()).map_err(lied)?;
        status.certified = true;
        Ok(Some(status))
    }

    /// The compact block of `height`, checked against the first stable checkpoint at or above
    /// it (`None` while there is none yet). Looks for that checkpoint over a window that
    /// doubles, so it reads about one checkpoint interval of compact blocks.
    fn certified_block(&self, height: u64) -> Result<Option<CompactBlock>, ClientError> {
        let (latest, _) = self.certified_at(u64::MAX)?;
        if latest.height < height || height == 0 {
            return Ok(None);
        }
        let mut span = 1u32;
        loop {
            let certified = self.certified_blocks(height, span)?;
            if let Some(block) = certified.blocks.into_iter().find(|b| b.height == height) {
                return Ok(Some(block));
            }
            if span >= MAX_COMPACT_BLOCKS {
                return Err(ClientError::Lied {
                    node: self.node.0,
                    what: format!(
                        "no stable checkpoint within {MAX_COMPACT_BLOCKS} blocks of height {height}, below its latest ({})",
                        latest.height
                    ),
                });
            }
            span = span.saturating_mul(2).min(MAX_COMPACT_BLOCKS);
        }
    }

    /// Up to `max` compact blocks from `from_height` (fewer at the tip; none past it). Each is
    /// checked to be well formed and in sequence.
    pub fn compact_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> Result<Vec<CompactBlock>, ClientError> {
        let max = max.min(MAX_COMPACT_BLOCKS);
        match self.ask(&Request::CompactBlocks { from_height, max })? {
            Response::CompactBlocks(raw) => {
                if raw.len() > max as usize {
                    return Err(self.protocol("more compact blocks than asked for"));
                }
                let mut out = Vec::with_capacity(raw.len());
                for (i, b) in raw.iter().enumerate() {
                    let block = CompactBlock::from_bytes(b)
                        .map_err(|e| self.protocol(format!("compact block: {e}")))?;
                    if block.height != from_height + i as u64 {
                        return Err(self.protocol(format!(
                            "compact block {} out of sequence (expected {})",
                            block.height,
                            from_height + i as u64
                        )));
                    }
                    out.push(block);
                }
                Ok(out)
            }
            Response::NotKept { first } if first > from_height => Err(ClientError::NotKept {
                node: self.node.0,
                first,
            }),
            other => Err(self.protocol(format!("expected compact blocks, got {other:?}"))),
        }
    }

    /// Compact blocks `from_height..from_height + max` from the network's archive, decoded and
    /// in sequence; the caller checks them against a certified scan chain as it checks a
    /// validator's.
    fn archived_compact_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> Result<Vec<CompactBlock>, ClientError> {
        let Some(archive) = self.archive()? else {
            return Ok(Vec::new());
        };
        let objects = self
            .runtime
            .block_on(archive.objects(
                "compact",
                from_height..=from_height + u64::from(max.max(1)) - 1,
            ))
            .map_err(|e| ClientError::Archive(e.to_string()))?;
        let mut out = Vec::new();
        for (height, bytes) in (from_height..).zip(objects) {
            let Some(bytes) = bytes else { break };
            let block = CompactBlock::from_bytes(&bytes)
                .map_err(|e| ClientError::Archive(format!("compact block {height}: {e}")))?;
            if block.height != height {
                return Err(ClientError::Archive(format!(
                    "the object of height {height} holds block {}",
                    block.height
                )));
            }
            out.push(block);
        }
        Ok(out)
    }

    /// The network's archive (`None`: it names none), opened once.
    fn archive(&self) -> Result<Option<&crate::archive::Archive>, ClientError> {
        let Some(url) = &self.network.archive else {
            return Ok(None);
        };
        if let Some(a) = self.archive.get() {
            return Ok(Some(a));
        }
        let opened =
            crate::archive::Archive::open(url).map_err(|e| ClientError::Archive(e.to_string()))?;
        Ok(Some(self.archive.get_or_init(|| opened)))
    }

    /// Submits `tx` and waits until it is final: returns only when the block holding it comes
    /// with a commit certificate that verifies against the network's validator set and the
    /// block holds exactly these transaction bytes.
    pub fn submit(&self, tx: &Transaction) -> Result<Finality, ClientError> {
        self.submit_bytes(tx.to_bytes())
    }

    /// [`Client::submit`] for an encoded transaction of any kind (a governance transaction,
    /// for instance).
    pub fn submit_bytes(&self, bytes: Vec<u8>) -> Result<Finality, ClientError> {
        match self.ask(&Request::Submit { tx: bytes.clone() })? {
            Response::Refused(reason) => Err(ClientError::Refused(reason)),
            Response::Dropped(reason) => Err(ClientError::NotOrdered(reason)),
            Response::Committed {
                height,
                applied,
                reason,
                summary,
                certificate,
            } => {
                let summary: BlockSummary = postcard::from_bytes(&summary)
                    .map_err(|e| self.protocol(format!("block summary: {e}")))?;
                let cert: CommitCertificate = postcard::from_bytes(&certificate)
                    .map_err(|e| self.protocol(format!("certificate: {e}")))?;
                let block_hash = summary.hash();
                self.verify_in_epoch(summary.height, |set| {
                    verify_certificate_once(set, summary.height, block_hash, &cert)
                })
                .map_err(|e| ClientError::BadCertificate {
                    node: self.node.0,
                    reason: e,
                })?;
                if summary.height != height || !summary.contains(&bytes) {
                    return Err(ClientError::BadCertificate {
                        node: self.node.0,
                        reason: format!("block {} does not hold the transaction", summary.height),
                    });
                }
                if !applied {
                    return Err(ClientError::Rejected {
                        height,
                        reason: reason.unwrap_or_else(|| "no reason given".into()),
                    });
                }
                Ok(Finality {
                    height,
                    block_hash,
                    signatures: cert.signatures.len(),
                })
            }
            other => Err(self.protocol(format!("expected a commit, got {other:?}"))),
        }
    }
}

/// Checks an answer to [`Request::EpochChange`] for the epoch `open`: the checkpoint lies in
/// that epoch before its announced last height and verifies against its set, the opening
/// hashes to the certified state root, and the opening's validator commitment is that of
/// `open`'s members with the announced change ([`shoji_ledger::validator_sets_hash`]).
/// Returns the epoch's last height and the next set (epoch + 1, same network), or `None` when
/// the answer says no change is known.
fn check_epoch_change(
    open: &Epoch,
    answer: Response,
) -> Result<Option<(u64, shoji_consensus::ValidatorSet)>, String> {
    let Response::EpochChange {
        checkpoint,
        opening,
        last,
        validators,
    } = answer
    else {
        return Err(format!("expected an epoch change, got {answer:?}"));
    };
    if checkpoint.is_empty() {
        return Ok(None);
    }
    let cert: CheckpointCertificate =
        postcard::from_bytes(&checkpoint).map_err(|e| format!("epoch change checkpoint: {e}"))?;
    let opening = StateOpening::from_bytes(&opening).map_err(|e| e.to_string())?;
    if cert.height <= open.after || cert.height >= last {
        return Err(format!(
            "an epoch change certified at height {} for an epoch ordering heights {}..={last}",
            cert.height,
            open.after + 1
        ));
    }
    cert.verify(&open.set, &CheckpointCertificate::genesis())
        .map_err(|e| format!("the epoch change's checkpoint does not verify: {e}"))?;
    let members: shoji_ledger::Validators = open
        .set
        .members
        .iter()
        .map(|(id, key)| (id.0, key.to_bytes()))
        .collect();
    let next: shoji_ledger::Validators = validators.iter().copied().collect();
    if next.len() != validators.len()
        || opening.height != cert.height
        || opening.root() != cert.state_root
        || opening.validators != shoji_ledger::validator_sets_hash(&members, Some((last, &next)))
    {
        return Err(format!(
            "the validator-set change at height {last} is not the one the checkpoint at height {} certifies",
            cert.height
        ));
    }
    let keys = next
        .iter()
        .map(|(id, key)| {
            shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(key)
                .map(|k| (ReplicaId(*id), k))
                .map_err(|e| format!("validator {id}'s key: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let set = shoji_consensus::ValidatorSet::new(open.set.epoch + 1, keys)
        .map_err(|e| e.to_string())?
        .on_network(open.set.network);
    Ok(Some((last, set)))
}

/// Commit certificates this process has verified, each named by a hash of the validator set,
/// the block's hash and the certificate: the clients of one process (a load generator, a
/// wallet's connections) check a block's signatures once, however many of its transactions they
/// submitted. Bounded; the oldest entries go first.
struct VerifiedCertificates {
    known: std::collections::HashSet<[u8; 32]>,
    order: std::collections::VecDeque<[u8; 32]>,
}

/// How many verified certificates a process remembers.
const VERIFIED_CERTIFICATES_MAX: usize = 4096;

fn verified_certificates() -> &'static std::sync::Mutex<VerifiedCertificates> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<VerifiedCertificates>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| {
        std::sync::Mutex::new(VerifiedCertificates {
            known: Default::default(),
            order: Default::default(),
        })
    })
}

/// The outcome of `tx` in its certified compact `block`: `None` when the block applied it (an
/// applied transaction with its id), the rejection code's name when the block rejected these
/// exact bytes. An error, saying what, when the block contradicts the validator's claim
/// (`claimed_rejected`) or does not hold the transaction at all.
fn certified_outcome(
    block: &CompactBlock,
    txid: &shoji_primitives::tx::TxId,
    auth_id: &shoji_primitives::tx::TxId,
    claimed_rejected: bool,
) -> Result<Option<String>, String> {
    let applied =
        block.txs.iter().any(|t| t.txid == *txid) || block.accounts.iter().any(|t| t.id() == *txid);
    let rejection = block.rejected.iter().find(|r| r.auth_id == *auth_id);
    match (applied, rejection, claimed_rejected) {
        (true, _, false) => Ok(None),
        (false, Some(r), true) => Ok(Some(r.code.name().to_string())),
        (true, _, true) => Err(format!(
            "said {txid} was rejected in block {}, which applied it",
            block.height
        )),
        (false, Some(r), false) => Err(format!(
            "said {txid} was applied in block {}, which rejected it ({})",
            block.height,
            r.code.name()
        )),
        (false, None, _) => Err(format!(
            "said {txid} was in block {}, which does not hold it",
            block.height
        )),
    }
}

/// [`verify_commit_certificate_for`], skipped when this process already verified the same
/// certificate for the same block against the same validator set.
fn verify_certificate_once(
    validators: &shoji_consensus::ValidatorSet,
    height: u64,
    block_hash: BlockHash,
    cert: &CommitCertificate,
) -> Result<(), shoji_consensus::Error> {
    let mut h = blake3::Hasher::new();
    h.update(b"shoji.client.verified-certificate.v1");
    h.update(&postcard::to_allocvec(validators).unwrap_or_default());
    h.update(&height.to_le_bytes());
    h.update(&block_hash.0);
    h.update(&postcard::to_allocvec(cert).unwrap_or_default());
    let key = *h.finalize().as_bytes();
    // A poisoned lock only means another client panicked mid-insert: the set is still sound.
    let lock = |c: &'static std::sync::Mutex<VerifiedCertificates>| {
        c.lock().unwrap_or_else(|e| e.into_inner())
    };
    if lock(verified_certificates()).known.contains(&key) {
        return Ok(());
    }
    verify_commit_certificate_for(validators, height, block_hash, cert)?;
    let mut cache = lock(verified_certificates());
    if cache.known.insert(key) {
        cache.order.push_back(key);
        if cache.order.len() > VERIFIED_CERTIFICATES_MAX {
            if let Some(old) = cache.order.pop_front() {
                cache.known.remove(&old);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hex: &str) -> Transaction {
        let bytes = shoji_primitives::encoding::hex_decode("vector", hex.trim()).unwrap();
        Transaction::from_bytes(&bytes).unwrap()
    }

    /// A certified block that applied `applied` and rejected `rejected` as a double spend.
    fn block_with(applied: &[&Transaction], rejected: &[&Transaction]) -> CompactBlock {
        CompactBlock {
            height: 9,
            time_ms: 1,
            txs: applied
                .iter()
                .map(|t| shoji_ledger::CompactTx::of(t))
                .collect(),
            tree_root: Fr::from(3u64),
            rejected: rejected
                .iter()
                .map(|t| shoji_ledger::CompactRejection {
                    auth_id: t.auth_id(),
                    code: shoji_ledger::RejectionCode::DoubleSpend,
                })
                .collect(),
            accounts: Vec::new(),
        }
    }

    #[test]
    fn a_transactions_outcome_is_what_its_certified_block_says() {
        let transfer = stored(include_str!("../../verifier/testdata/transfer-v3.hex"));
        let mint = stored(include_str!("../../verifier/testdata/mint-v3.hex"));
        let applied = block_with(&[&transfer], &[&mint]);
        let outcome = |b: &CompactBlock, t: &Transaction, rejected: bool| {
            certified_outcome(b, &t.id(), &t.auth_id(), rejected)
        };
        // The claims the block bears out.
        assert_eq!(outcome(&applied, &transfer, false), Ok(None));
        assert_eq!(
            outcome(&applied, &mint, true),
            Ok(Some("double_spend".to_string()))
        );
        // A validator that flips the outcome either way, or names a block without it.
        let flipped = outcome(&applied, &transfer, true).unwrap_err();
        assert!(flipped.contains("which applied it"), "{flipped}");
        let flipped = outcome(&applied, &mint, false).unwrap_err();
        assert!(
            flipped.contains("which rejected it (double_spend)"),
            "{flipped}"
        );
        let elsewhere = block_with(&[&mint], &[]);
        let absent = outcome(&elsewhere, &transfer, false).unwrap_err();
        assert!(absent.contains("does not hold it"), "{absent}");
        // A rejection is matched on the exact bytes: another copy with the same id (a
        // rerandomized proof) rejected does not make this one rejected.
        let mut twin = transfer;
        if let Transaction::Transfer(b) = &mut twin {
            b.proof.0[10] ^= 1;
        }
        assert_eq!(twin.id(), transfer.id());
        let twin_rejected = block_with(&[], &[&twin]);
        assert!(outcome(&twin_rejected, &transfer, true).is_err());
    }
    use shoji_consensus::ed25519_dalek::SigningKey;
    use shoji_consensus::{Block, Message, SignedMessage, ValidatorSet, Vote};

    fn cached(
        validators: &ValidatorSet,
        block: &Block,
        cert: &CommitCertificate,
    ) -> Result<(), shoji_consensus::Error> {
        verify_certificate_once(validators, block.height, block.hash(), cert)
    }

    #[test]
    fn certificates_are_checked_once_and_a_bad_one_is_never_remembered() {
        let keys: Vec<SigningKey> = (0..4u8)
            .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
            .collect();
        let validators = ValidatorSet::new(
            3,
            (0..4u16)
                .map(|i| (ReplicaId(i), keys[i as usize].verifying_key()))
                .collect(),
        )
        .unwrap();
        let block = Block {
            height: 7,
            prev_hash: BlockHash([1; 32]),
            view: 0,
            proposer: ReplicaId(0),
            time_ms: 5,
            transactions: vec![vec![1, 2, 3]],
        };
        let vote = Vote {
            view: 0,
            height: 7,
            block_hash: block.hash(),
        };
        let cert = CommitCertificate {
            view: 0,
            signatures: (0..3u16)
                .map(|i| {
                    let sm = SignedMessage::sign(
                        &validators,
                        ReplicaId(i),
                        Message::Commit(vote),
                        &keys[i as usize],
                    );
                    (ReplicaId(i), sm.signature)
                })
                .collect(),
        };
        cached(&validators, &block, &cert).unwrap();
        // Remembered: the same check again passes.
        cached(&validators, &block, &cert).unwrap();

        // One flipped signature byte: refused, and still refused the second time.
        let mut forged = cert.clone();
        let mut sig = forged.signatures[1].1.to_bytes();
        sig[5] ^= 1;
        forged.signatures[1].1 = shoji_consensus::ed25519_dalek::Signature::from_bytes(&sig);
        assert!(cached(&validators, &block, &forged).is_err());
        assert!(cached(&validators, &block, &forged).is_err());

        // The remembered certificate does not vouch for another block...
        let mut other = block.clone();
        other.transactions.push(vec![4]);
        assert!(cached(&validators, &other, &cert).is_err());
        // ... nor for another validator set.
        let mut stranger = validators.clone();
        stranger.epoch = 4;
        assert!(cached(&stranger, &block, &cert).is_err());
    }

    /// An epoch change, as an honest validator answers it for the epoch of `keys[0..4]`
    /// (members 0..3, ordering heights above 8), with the next members 1..4 from height 25.
    fn epoch_change_answer(keys: &[SigningKey], signers: &[usize]) -> (Epoch, Response) {
        let set = |epoch, ids: std::ops::Range<u16>| {
            ValidatorSet::new(
                epoch,
                ids.map(|i| (ReplicaId(i), keys[i as usize].verifying_key()))
                    .collect(),
            )
            .unwrap()
            .on_network([7; 32])
        };
        let open = Epoch {
            after: 8,
            last: None,
            set: set(2, 0..4),
        };
        let members = |ids: std::ops::Range<u16>| -> shoji_ledger::Validators {
            ids.map(|i| (i, keys[i as usize].verifying_key().to_bytes()))
                .collect()
        };
        let opening = StateOpening {
            height: 16,
            time_ms: 1,
            tree_size: 2,
            tree_root: Fr::from(3u64),
            nullifier_chain: [4; 32],
            governance_chain: [5; 32],
            scan_chain: [6; 32],
            validators: shoji_ledger::validator_sets_hash(
                &members(0..4),
                Some((24, &members(1..5))),
            ),
            recent_roots: [7; 32],
            policy: [8; 32],
            accounts: [0; 32],
        };
        let vote = shoji_consensus::CheckpointVote {
            height: 16,
            block_hash: BlockHash([9; 32]),
            state_root: opening.root(),
        };
        let cert = CheckpointCertificate {
            height: 16,
            block_hash: vote.block_hash,
            state_root: vote.state_root,
            signatures: signers
                .iter()
                .map(|&i| {
                    let sm = SignedMessage::sign(
                        &open.set,
                        ReplicaId(i as u16),
                        Message::Checkpoint(vote),
                        &keys[i],
                    );
                    (ReplicaId(i as u16), sm.signature)
                })
                .collect(),
        };
        let answer = Response::EpochChange {
            checkpoint: postcard::to_allocvec(&cert).unwrap(),
            opening: opening.to_bytes(),
            last: 24,
            validators: members(1..5).into_iter().collect(),
        };
        (open, answer)
    }

    #[test]
    fn an_epoch_change_is_learned_only_from_a_checkpoint_of_the_ending_set() {
        let keys: Vec<SigningKey> = (0..5u8)
            .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
            .collect();
        let (open, honest) = epoch_change_answer(&keys, &[0, 1, 2]);
        let (last, next) = check_epoch_change(&open, honest.clone()).unwrap().unwrap();
        assert_eq!(last, 24);
        assert_eq!(next.epoch, 3);
        assert_eq!(next.network, [7; 32]);
        assert_eq!(
            next.members.keys().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );

        // No change known.
        let none = Response::EpochChange {
            checkpoint: Vec::new(),
            opening: Vec::new(),
            last: 0,
            validators: Vec::new(),
        };
        assert!(check_epoch_change(&open, none).unwrap().is_none());

        type Lie = fn(&mut u64, &mut Vec<(u16, [u8; 32])>, &mut Vec<u8>);
        let lies: [(&str, Lie); 4] = [
            ("another member", |_, v, _| v[0].1 = v[1].1),
            ("a member left out", |_, v, _| {
                v.pop();
            }),
            ("another last height", |l, _, _| *l = 32),
            ("another opening", |_, _, o| o[30] ^= 1),
        ];
        for (what, lie) in lies {
            let Response::EpochChange {
                checkpoint,
                mut opening,
                mut last,
                mut validators,
            } = honest.clone()
            else {
                unreachable!()
            };
            lie(&mut last, &mut validators, &mut opening);
            let forged = Response::EpochChange {
                checkpoint,
                opening,
                last,
                validators,
            };
            assert!(
                check_epoch_change(&open, forged).is_err(),
                "{what} accepted"
            );
        }

        // Signed by too few of the ending set, or by the next set instead.
        let (_, few) = epoch_change_answer(&keys, &[0, 1]);
        assert!(check_epoch_change(&open, few).is_err());
        let (_, strangers) = epoch_change_answer(&keys, &[2, 3, 4]);
        assert!(check_epoch_change(&open, strangers).is_err());
        // A checkpoint from before the epoch, or at its last height, is not its.
        let mut later = open.clone();
        later.after = 16;
        assert!(check_epoch_change(&later, honest).is_err());
    }

    /// A registry entry a validator forged (or a policy of another height) does not hash to
    /// what the certified opening commits to: refused.
    #[test]
    fn a_forged_registry_entry_is_caught_against_the_certified_opening() {
        let config = shoji_ledger::LedgerConfig {
            anchor_window_blocks: 3,
            auditor: shoji_primitives::audit::AuditSecretKey::random(&mut rand_core::OsRng)
                .public_key(),
            issuers: Default::default(),
            governance: Default::default(),
            network_id: [0; 32],
            validators: Default::default(),
            checkpoint_interval: 8,
            window_size: 16,
            account_auditor: None,
        };
        let address = |seed: u8| {
            shoji_primitives::keys::SpendingKeys::from_seed(&shoji_primitives::keys::WalletSeed(
                [seed; 32],
            ))
            .address()
        };
        let mut policy = shoji_ledger::Policy::genesis(&config);
        policy.seq = 1;
        policy.registry.insert(
            "Bank B".into(),
            shoji_ledger::RegistryEntry {
                participant: shoji_primitives::governance::Participant {
                    addresses: vec![address(1)],
                    identity: [1; 32],
                },
                revoked: false,
                escrow: None,
                recovery: None,
            },
        );
        let mut head = shoji_ledger::LedgerHead::genesis();
        head.height = 8;
        head.policy = Some(policy.clone());
        let opening = head.opening_with(&head.frontier.root());
        assert_eq!(
            check_policy(&opening, &policy.to_bytes()),
            Ok(Some(policy.clone()))
        );
        // The same entry pointing at the validator's own address.
        let mut forged = policy.clone();
        if let Some(e) = forged.registry.get_mut("Bank B") {
            e.participant.addresses = vec![address(2)];
        }
        assert!(check_policy(&opening, &forged.to_bytes()).is_err());
        // A revocation hidden, and the registry withheld altogether.
        let mut hidden = policy.clone();
        hidden.registry.clear();
        assert!(check_policy(&opening, &hidden.to_bytes()).is_err());
        assert!(check_policy(&opening, &[]).is_err());
    }
}
