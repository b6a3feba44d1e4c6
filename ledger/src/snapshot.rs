//! State snapshots: the ledger state at one height, cut into chunks that a joining validator
//! fetches from its peers and checks against the state root of a checkpoint certificate, so
//! that it starts at that height instead of replaying every block from genesis.
//!
//! A snapshot is a [`SnapshotManifest`] and its chunks, in this order:
//!
//! 1. one **head** chunk: the commitment tree's frontier, the recent roots and the policy
//!    (when governance changed it). It is checked against the opening on arrival: the frontier
//!    must give the opening's tree size and root, the roots its recent-roots hash, the policy
//!    its policy hash.
//! 2. **nullifier** chunks: every revealed nullifier in order of revelation. Together they must
//!    fold into the opening's nullifier chain ([`chain_nullifier`]); the chain is sequential, so
//!    this is checked once every chunk is in.
//! 3. **account** chunks: every confidential account in id order; together they must hash to
//!    the opening's accounts root ([`accounts_root`]).
//!
//! The manifest names each chunk's kind, length and hash, so a chunk that was altered in
//! transit or by the peer that served it is refused on arrival ([`SnapshotError::ChunkHash`])
//! and can be fetched from another peer. The manifest itself is bound to the certified state
//! root by its opening ([`SnapshotAssembler::new`]); a manifest that lists chunks which do not
//! make that state is caught when the last chunk is in ([`SnapshotAssembler::finish`]), and the
//! whole snapshot is then fetched from another peer.

use crate::*;
use shoji_primitives::encoding::{fr_to_bytes, EncodingError, Reader};
use shoji_primitives::tree::{Frontier, DEPTH};
use shoji_primitives::Fr;
use std::collections::{BTreeMap, BTreeSet};

/// Format version of manifests and chunks; a snapshot of another version is refused.
pub const SNAPSHOT_FORMAT: u8 = 2;

/// The largest chunk a snapshot is cut into by default: well under the network's frame limit,
/// and small enough that a refused chunk costs little to fetch again.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// Most chunks a manifest may list (a 4 KiB-chunk snapshot of a billion nullifiers fits).
pub const MAX_CHUNKS: usize = 1 << 24;

/// What a chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum ChunkKind {
    /// Frontier, recent roots, policy.
    Head = 0,
    /// Nullifiers in order of revelation.
    Nullifiers = 1,
    /// Accounts in id order.
    Accounts = 2,
}

impl ChunkKind {
    fn from_u8(v: u8) -> Result<Self, EncodingError> {
        match v {
            0 => Ok(ChunkKind::Head),
            1 => Ok(ChunkKind::Nullifiers),
            2 => Ok(ChunkKind::Accounts),
            v => Err(EncodingError::Unknown {
                what: "snapshot chunk kind",
                value: v as u64,
            }),
        }
    }
}

/// One chunk as the manifest lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// What it holds.
    pub kind: ChunkKind,
    /// Its length in bytes.
    pub len: u32,
    /// [`chunk_hash`] of its bytes.
    pub hash: [u8; 32],
}

/// What a snapshot is of and how it is cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotManifest {
    /// The state's opening: its root is what a checkpoint certificate signs.
    pub opening: StateOpening,
    /// Number of nullifiers across the nullifier chunks.
    pub nullifiers: u64,
    /// Number of accounts across the account chunks.
    pub accounts: u64,
    /// The chunks, in order.
    pub chunks: Vec<ChunkInfo>,
}

impl SnapshotManifest {
    /// `format:u8 ‖ opening ‖ nullifiers:u64 ‖ accounts:u64 ‖ count:u32 ‖ (kind:u8 ‖ len:u32 ‖
    /// hash(32))*` (integers little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + StateOpening::BYTES + 20 + 37 * self.chunks.len());
        out.push(SNAPSHOT_FORMAT);
        out.extend_from_slice(&self.opening.to_bytes());
        out.extend_from_slice(&self.nullifiers.to_le_bytes());
        out.extend_from_slice(&self.accounts.to_le_bytes());
        out.extend_from_slice(&(self.chunks.len() as u32).to_le_bytes());
        for c in &self.chunks {
            out.push(c.kind as u8);
            out.extend_from_slice(&c.len.to_le_bytes());
            out.extend_from_slice(&c.hash);
        }
        out
    }

    /// Strict decoding of [`SnapshotManifest::to_bytes`]: the format, and chunks in the order
    /// head, nullifiers, accounts with exactly one head.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut r = Reader::new("snapshot manifest", bytes);
        let format = r.u8()?;
        if format != SNAPSHOT_FORMAT {
            return Err(EncodingError::Unknown {
                what: "snapshot format",
                value: format as u64,
            });
        }
        let opening = StateOpening::from_bytes(r.take(StateOpening::BYTES)?)?;
        let nullifiers = r.u64()?;
        let accounts = r.u64()?;
        let n = r.u32()? as usize;
        if n > MAX_CHUNKS || n.saturating_mul(37) > r.remaining() {
            return Err(EncodingError::Invalid("snapshot manifest chunk count"));
        }
        let mut chunks = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = ChunkKind::from_u8(r.u8()?)?;
            if chunks.last().is_some_and(|c: &ChunkInfo| c.kind > kind) {
                return Err(EncodingError::Invalid("snapshot chunks out of order"));
            }
            chunks.push(ChunkInfo {
                kind,
                len: r.u32()?,
                hash: r.array()?,
            });
        }
        r.finish()?;
        let heads = chunks.iter().filter(|c| c.kind == ChunkKind::Head).count();
        if heads != 1 {
            return Err(EncodingError::Invalid(
                "a snapshot has exactly one head chunk",
            ));
        }
        Ok(SnapshotManifest {
            opening,
            nullifiers,
            accounts,
            chunks,
        })
    }
}

/// The hash a manifest lists for a chunk: blake3 (derived key "shoji 2026 snapshot chunk v1")
/// over its bytes.
pub fn chunk_hash(bytes: &[u8]) -> [u8; 32] {
    blake3::derive_key("shoji 2026 snapshot chunk v1", bytes)
}

/// Why a snapshot, or one of its chunks, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The manifest's opening does not hash to the certified state root.
    #[error("the snapshot is of state root {got}, the certificate signs {certified}")]
    OtherRoot {
        /// The manifest's state root (hex).
        got: String,
        /// The certified one (hex).
        certified: String,
    },
    /// No chunk has this index.
    #[error("the manifest has no chunk {0}")]
    NoSuchChunk(usize),
    /// A chunk does not hash to what the manifest lists.
    #[error("chunk {0} does not hash to what the manifest lists")]
    ChunkHash(usize),
    /// A chunk hashes right but does not decode.
    #[error("chunk {index}: {reason}")]
    Malformed {
        /// The chunk.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A chunk is missing at the end.
    #[error("chunk {0} of the snapshot is missing")]
    Missing(usize),
    /// The chunks together do not make the certified state.
    #[error("the snapshot does not make the certified state: {0}")]
    Mismatch(String),
}

/// Cuts a ledger state into a manifest and chunks; each chunk goes to `sink` as it is made, so
/// a large nullifier set is never held twice.
pub struct SnapshotWriter<S> {
    opening: StateOpening,
    chunk_bytes: usize,
    sink: S,
    chunks: Vec<ChunkInfo>,
    kind: ChunkKind,
    buf: Vec<u8>,
    items: u32,
    nullifiers: u64,
    accounts: u64,
}

impl<S, E> SnapshotWriter<S>
where
    S: FnMut(usize, &[u8]) -> Result<(), E>,
{
    /// Starts a snapshot of the state whose head is `head` (its opening is computed from it,
    /// with `tree_root` its frontier's root), writing the head chunk; chunks of about
    /// `chunk_bytes` follow.
    pub fn new(head: &LedgerHead, tree_root: &Fr, chunk_bytes: usize, sink: S) -> Result<Self, E> {
        let mut w = SnapshotWriter {
            opening: head.opening_with(tree_root),
            chunk_bytes: chunk_bytes.max(1024),
            sink,
            chunks: Vec::new(),
            kind: ChunkKind::Head,
            buf: Vec::new(),
            items: 0,
            nullifiers: 0,
            accounts: 0,
        };
        let mut body = Vec::new();
        write_frontier(&mut body, &head.frontier);
        body.extend_from_slice(&(head.recent_roots.len() as u32).to_le_bytes());
        for r in &head.recent_roots {
            body.extend_from_slice(&fr_to_bytes(r));
        }
        match &head.policy {
            None => body.push(0),
            Some(p) => {
                body.push(1);
                body.extend_from_slice(&p.to_bytes());
            }
        }
        w.emit(ChunkKind::Head, &body)?;
        Ok(w)
    }

    fn emit(&mut self, kind: ChunkKind, body: &[u8]) -> Result<(), E> {
        let mut bytes = Vec::with_capacity(2 + body.len());
        bytes.push(SNAPSHOT_FORMAT);
        bytes.push(kind as u8);
        bytes.extend_from_slice(body);
        let index = self.chunks.len();
        self.chunks.push(ChunkInfo {
            kind,
            len: bytes.len() as u32,
            hash: chunk_hash(&bytes),
        });
        (self.sink)(index, &bytes)
    }

    fn flush(&mut self) -> Result<(), E> {
        if self.items == 0 {
            return Ok(());
        }
        let mut body = Vec::with_capacity(4 + self.buf.len());
        body.extend_from_slice(&self.items.to_le_bytes());
        body.append(&mut self.buf);
        self.items = 0;
        self.emit(self.kind, &body)
    }

    fn switch(&mut self, kind: ChunkKind) -> Result<(), E> {
        if self.kind != kind {
            self.flush()?;
            self.kind = kind;
        }
        Ok(())
    }

    /// Adds the next nullifier, in order of revelation. All nullifiers come before any account.
    pub fn nullifier(&mut self, nf: &[u8; 32]) -> Result<(), E> {
        debug_assert!(self.kind <= ChunkKind::Nullifiers);
        self.switch(ChunkKind::Nullifiers)?;
        self.buf.extend_from_slice(nf);
        self.items += 1;
        self.nullifiers += 1;
        if self.buf.len() + 32 > self.chunk_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds the next account, in increasing id order.
    pub fn account(&mut self, id: &AccountId, state: &AccountState) -> Result<(), E> {
        self.switch(ChunkKind::Accounts)?;
        let bytes = state.to_bytes();
        self.buf.extend_from_slice(&id.to_bytes());
        self.buf
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&bytes);
        self.items += 1;
        self.accounts += 1;
        if self.buf.len() >= self.chunk_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the last chunk and returns the manifest.
    pub fn finish(mut self) -> Result<SnapshotManifest, E> {
        self.flush()?;
        Ok(SnapshotManifest {
            opening: self.opening,
            nullifiers: self.nullifiers,
            accounts: self.accounts,
            chunks: self.chunks,
        })
    }
}

fn write_frontier(out: &mut Vec<u8>, f: &Frontier) {
    out.extend_from_slice(&f.size().to_le_bytes());
    for level in f.levels() {
        out.push(level.len() as u8);
        for n in level {
            out.extend_from_slice(&fr_to_bytes(n));
        }
    }
}

fn read_frontier(r: &mut Reader<'_>) -> Result<Frontier, EncodingError> {
    let size = r.u64()?;
    let mut levels = Vec::with_capacity(DEPTH + 1);
    for _ in 0..=DEPTH {
        let n = r.u8()?;
        if n > 3 {
            return Err(EncodingError::Invalid(
                "a frontier level holds at most 3 nodes",
            ));
        }
        let mut nodes = Vec::with_capacity(n as usize);
        for _ in 0..n {
            nodes.push(r.fr("frontier node")?);
        }
        levels.push(nodes);
    }
    Frontier::from_parts(size, levels).ok_or(EncodingError::Invalid(
        "frontier levels do not agree with its size",
    ))
}

/// A snapshot checked against a certified state root: what a validator restores its ledger
/// from, with the nullifiers also in order of revelation (what its store logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSnapshot {
    /// The state, ready for [`Ledger::restore`].
    pub state: LedgerSnapshot,
    /// The nullifiers in order of revelation.
    pub nullifier_log: Vec<[u8; 32]>,
    /// The opening the certificate signs.
    pub opening: StateOpening,
}

enum Part {
    Head(Box<LedgerHead>),
    Nullifiers(Vec<[u8; 32]>),
    Accounts(Vec<(AccountId, AccountState)>),
}

/// Collects a snapshot's chunks in any order, refusing on arrival each chunk that does not
/// match the manifest, and checks the whole against the certified state root at the end.
pub struct SnapshotAssembler {
    manifest: SnapshotManifest,
    parts: BTreeMap<usize, Part>,
}

impl SnapshotAssembler {
    /// Starts assembling the snapshot `manifest` describes, given the state root a checkpoint
    /// certificate signs; a manifest of another state is refused.
    pub fn new(
        manifest: SnapshotManifest,
        certified_root: &[u8; 32],
    ) -> Result<Self, SnapshotError> {
        let root = manifest.opening.root();
        if root != *certified_root {
            return Err(SnapshotError::OtherRoot {
                got: shoji_primitives::encoding::hex_encode(&root),
                certified: shoji_primitives::encoding::hex_encode(certified_root),
            });
        }
        Ok(SnapshotAssembler {
            manifest,
            parts: BTreeMap::new(),
        })
    }

    /// The manifest being assembled.
    pub fn manifest(&self) -> &SnapshotManifest {
        &self.manifest
    }

    /// The indexes of the chunks not yet accepted.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.manifest.chunks.len())
            .filter(|i| !self.parts.contains_key(i))
            .collect()
    }

    /// Accepts chunk `index`: it must hash to the manifest's entry and decode; the head chunk
    /// must also agree with the opening (tree, recent roots, policy).
    pub fn accept(&mut self, index: usize, bytes: &[u8]) -> Result<(), SnapshotError> {
        let info = *self
            .manifest
            .chunks
            .get(index)
            .ok_or(SnapshotError::NoSuchChunk(index))?;
        if bytes.len() != info.len as usize || chunk_hash(bytes) != info.hash {
            return Err(SnapshotError::ChunkHash(index));
        }
        let malformed = |e: EncodingError| SnapshotError::Malformed {
            index,
            reason: e.to_string(),
        };
        let part = decode_chunk(info.kind, bytes).map_err(malformed)?;
        if let Part::Head(head) = &part {
            self.check_head(head)?;
        }
        self.parts.insert(index, part);
        Ok(())
    }

    fn check_head(&self, head: &LedgerHead) -> Result<(), SnapshotError> {
        let o = &self.manifest.opening;
        let mismatch = |m: &str| Err(SnapshotError::Mismatch(m.to_string()));
        if head.frontier.size() != o.tree_size || head.frontier.root() != o.tree_root {
            return mismatch("the frontier is not the certified tree");
        }
        if head.recent_roots.last() != Some(&o.tree_root)
            || recent_roots_hash(head.recent_roots.iter()) != o.recent_roots
        {
            return mismatch("the recent roots are not the certified ones");
        }
        if policy_hash(head.policy.as_ref()) != o.policy {
            return mismatch("the policy is not the certified one");
        }
        if validators_commitment(head.policy.as_ref()) != o.validators
            || head.policy.as_ref().map_or([0; 32], |p| p.chain) != o.governance_chain
        {
            return mismatch(
                "the policy's validators or governance chain are not the certified ones",
            );
        }
        Ok(())
    }

    /// Checks the assembled state against the opening: every chunk is in, the nullifiers fold
    /// into the certified nullifier chain and the accounts hash to the certified root.
    pub fn finish(self) -> Result<VerifiedSnapshot, SnapshotError> {
        let o = self.manifest.opening;
        if let Some(i) = (0..self.manifest.chunks.len()).find(|i| !self.parts.contains_key(i)) {
            return Err(SnapshotError::Missing(i));
        }
        let mismatch = |m: String| Err(SnapshotError::Mismatch(m));
        let mut head = None;
        let mut log = Vec::with_capacity(self.manifest.nullifiers.min(1 << 26) as usize);
        let mut accounts = BTreeMap::new();
        let mut chain = [0u8; 32];
        for part in self.parts.into_values() {
            match part {
                Part::Head(h) => head = Some(*h),
                Part::Nullifiers(nfs) => {
                    for nf in nfs {
                        chain = chain_nullifier(&chain, &nf);
                        log.push(nf);
                    }
                }
                Part::Accounts(list) => {
                    for (id, state) in list {
                        if accounts.keys().next_back().is_some_and(|last| *last >= id) {
                            return mismatch("accounts out of order".into());
                        }
                        accounts.insert(id, state);
                    }
                }
            }
        }
        let Some(mut head) = head else {
            return mismatch("no head chunk".into());
        };
        if chain != o.nullifier_chain || log.len() as u64 != self.manifest.nullifiers {
            return mismatch(format!(
                "{} nullifiers that do not fold into the certified nullifier chain",
                log.len()
            ));
        }
        let nullifiers: BTreeSet<[u8; 32]> = log.iter().copied().collect();
        if nullifiers.len() != log.len() {
            return mismatch("a nullifier appears twice".into());
        }
        if accounts_root(&accounts) != o.accounts || accounts.len() as u64 != self.manifest.accounts
        {
            return mismatch("the accounts do not hash to the certified accounts root".into());
        }
        head.height = o.height;
        head.time_ms = o.time_ms;
        head.nullifier_chain = o.nullifier_chain;
        head.scan_chain = o.scan_chain;
        head.accounts_root = o.accounts;
        if head.opening_with(&o.tree_root) != o {
            return mismatch("the assembled head does not open to the certified state".into());
        }
        Ok(VerifiedSnapshot {
            state: LedgerSnapshot {
                head,
                nullifiers,
                accounts,
            },
            nullifier_log: log,
            opening: o,
        })
    }
}

fn decode_chunk(kind: ChunkKind, bytes: &[u8]) -> Result<Part, EncodingError> {
    let mut r = Reader::new("snapshot chunk", bytes);
    let format = r.u8()?;
    if format != SNAPSHOT_FORMAT {
        return Err(EncodingError::Unknown {
            what: "snapshot chunk format",
            value: format as u64,
        });
    }
    if ChunkKind::from_u8(r.u8()?)? != kind {
        return Err(EncodingError::Invalid(
            "the chunk is not of the kind the manifest lists",
        ));
    }
    let part = match kind {
        ChunkKind::Head => {
            let frontier = read_frontier(&mut r)?;
            let n = r.u32()? as usize;
            if n.saturating_mul(32) > r.remaining() {
                return Err(EncodingError::Invalid("recent roots count"));
            }
            let recent_roots = (0..n)
                .map(|_| r.fr("recent root"))
                .collect::<Result<Vec<_>, _>>()?;
            let policy = match r.u8()? {
                0 => None,
                1 => Some(Policy::from_bytes(r.rest())?),
                v => {
                    return Err(EncodingError::Unknown {
                        what: "snapshot policy flag",
                        value: v as u64,
                    })
                }
            };
            Part::Head(Box::new(LedgerHead {
                height: 0,
                time_ms: 0,
                frontier,
                recent_roots,
                nullifier_chain: [0; 32],
                scan_chain: [0; 32],
                policy,
                accounts_root: [0; 32],
            }))
        }
        ChunkKind::Nullifiers => {
            let n = r.u32()? as usize;
            if n == 0 || n.saturating_mul(32) != r.remaining() {
                return Err(EncodingError::Invalid("nullifier chunk length"));
            }
            Part::Nullifiers((0..n).map(|_| r.array()).collect::<Result<_, _>>()?)
        }
        ChunkKind::Accounts => {
            let n = r.u32()? as usize;
            if n == 0 || n > r.remaining() / 44 {
                return Err(EncodingError::Invalid("account chunk count"));
            }
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                let id = AccountId::from_bytes(r.take(40)?)?;
                let len = r.u32()? as usize;
                let state = AccountState::from_bytes(r.take(len)?)?;
                list.push((id, state));
            }
            Part::Accounts(list)
        }
    };
    r.finish()?;
    Ok(part)
}
