//! Stored formats. Every value starts with a one-byte format version; integers are
//! little-endian fixed width; field elements are their canonical 32-byte little-endian
//! encoding; consensus structures are postcard (whose varints are little-endian base-128).
//! Decoding never panics: any malformed value is an error naming what was wrong.

use shoji_consensus::{Block, BlockHash, CheckpointCertificate, CommitCertificate};
use shoji_primitives::encoding::fr_to_bytes;
use shoji_primitives::tree::{Frontier, DEPTH};
use shoji_primitives::tx::TxId;
use shoji_primitives::Fr;

use crate::{CommittedTx, StoredOutcome, StoredTx};

/// Format version of every value written by this build.
pub(crate) const V1: u8 = 1;

/// Appends fields to a buffer.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn new() -> Self {
        Writer(vec![V1])
    }
    pub(crate) fn u8(&mut self, x: u8) -> &mut Self {
        self.0.push(x);
        self
    }
    pub(crate) fn u16(&mut self, x: u16) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    pub(crate) fn u32(&mut self, x: u32) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, x: u64) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn fr(&mut self, x: &Fr) -> &mut Self {
        self.raw(&fr_to_bytes(x))
    }
    /// A u32 length followed by the bytes.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32).raw(b)
    }
}

/// Reads fields from a stored value: the shared bounds-checked
/// [`shoji_primitives::encoding::Reader`] behind the version byte, with errors that name the
/// field (the caller adds table and key).
pub(crate) struct Reader<'a> {
    inner: shoji_primitives::encoding::Reader<'a>,
}

impl<'a> Reader<'a> {
    /// Checks the version byte.
    pub(crate) fn new(buf: &'a [u8]) -> Result<Self, String> {
        match buf.split_first() {
            None => Err("empty value".into()),
            Some((&V1, rest)) => Ok(Reader {
                inner: shoji_primitives::encoding::Reader::new("stored value", rest),
            }),
            Some((v, _)) => Err(format!("unknown format version {v} (expected {V1})")),
        }
    }
    /// Why a read of `n` bytes for `what` failed: only truncation can.
    fn truncated(&self, n: usize, what: &str) -> String {
        format!(
            "truncated: {what} needs {n} bytes, {} left",
            self.inner.remaining()
        )
    }
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let short = self.truncated(n, what);
        self.inner.take(n).map_err(|_| short)
    }
    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let short = self.truncated(N, what);
        self.inner.array().map_err(|_| short)
    }
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn fr(&mut self, what: &'static str) -> Result<Fr, String> {
        let short = self.truncated(32, what);
        match self.inner.fr(what) {
            Err(shoji_primitives::encoding::EncodingError::Invalid(_)) => Err(short),
            r => r.map_err(|e| e.to_string()),
        }
    }
    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    /// A u32 count, refused if the remaining bytes cannot hold `count * item` bytes.
    pub(crate) fn count(&mut self, item: usize, what: &str) -> Result<usize, String> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(item) > self.inner.remaining() {
            return Err(format!("{what}: count {n} exceeds the value's length"));
        }
        Ok(n)
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        self.inner.rest()
    }
    pub(crate) fn finish(&self) -> Result<(), String> {
        match self.inner.remaining() {
            0 => Ok(()),
            n => Err(format!("{n} trailing bytes")),
        }
    }
}

pub(crate) fn u64_value(x: u64) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(x);
    w.0
}

pub(crate) fn decode_u64(v: &[u8]) -> Result<u64, String> {
    let mut r = Reader::new(v)?;
    let x = r.u64("integer")?;
    r.finish()?;
    Ok(x)
}

pub(crate) fn hash_value(h: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(h);
    w.0
}

pub(crate) fn decode_hash(v: &[u8]) -> Result<[u8; 32], String> {
    let mut r = Reader::new(v)?;
    let x = r.array("digest")?;
    r.finish()?;
    Ok(x)
}

/// Frontier: size, then per level (0..=DEPTH) a one-byte count and that many nodes.
pub(crate) fn encode_frontier(f: &Frontier) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(f.size());
    for level in f.levels() {
        w.u8(level.len() as u8);
        for n in level {
            w.fr(n);
        }
    }
    w.0
}

pub(crate) fn decode_frontier(v: &[u8]) -> Result<Frontier, String> {
    let mut r = Reader::new(v)?;
    let size = r.u64("frontier size")?;
    let mut levels = Vec::with_capacity(DEPTH + 1);
    for l in 0..=DEPTH {
        let n = r.u8("frontier level count")?;
        if n > 3 {
            return Err(format!("frontier level {l} has {n} nodes (at most 3)"));
        }
        let mut nodes = Vec::with_capacity(n as usize);
        for _ in 0..n {
            nodes.push(r.fr("frontier node")?);
        }
        levels.push(nodes);
    }
    r.finish()?;
    Frontier::from_parts(size, levels)
        .ok_or_else(|| format!("frontier levels do not agree with its size {size}"))
}

pub(crate) fn encode_roots(roots: &[Fr]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(roots.len() as u32);
    for r in roots {
        w.fr(r);
    }
    w.0
}

pub(crate) fn decode_roots(v: &[u8]) -> Result<Vec<Fr>, String> {
    let mut r = Reader::new(v)?;
    let n = r.count(32, "root count")?;
    let roots = (0..n)
        .map(|_| r.fr("recent root"))
        .collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(roots)
}

fn postcard_err(what: &str, e: postcard::Error) -> String {
    format!("{what}: {e}")
}

/// Block record: the block's postcard bytes (length-prefixed), then the certificate's.
pub(crate) fn encode_block(block: &Block, cert: &CommitCertificate) -> Result<Vec<u8>, String> {
    let b = postcard::to_allocvec(block).map_err(|e| postcard_err("block", e))?;
    let c = postcard::to_allocvec(cert).map_err(|e| postcard_err("certificate", e))?;
    let mut w = Writer::new();
    w.bytes(&b).bytes(&c);
    Ok(w.0)
}

pub(crate) fn decode_block(v: &[u8]) -> Result<(Block, CommitCertificate), String> {
    let mut r = Reader::new(v)?;
    let b = r.bytes("block")?;
    let c = r.bytes("certificate")?;
    r.finish()?;
    let block = postcard::from_bytes(b).map_err(|e| postcard_err("block", e))?;
    let cert = postcard::from_bytes(c).map_err(|e| postcard_err("certificate", e))?;
    Ok((block, cert))
}

/// Transaction record: height, index in block, outcome, transaction bytes.
pub(crate) fn encode_tx(t: &StoredTx) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(t.height).u32(t.index);
    match &t.outcome {
        StoredOutcome::Applied { first_leaf } => {
            w.u8(0).u64(*first_leaf);
        }
        StoredOutcome::Rejected(reason) => {
            w.u8(1).bytes(reason.as_bytes());
        }
    }
    w.bytes(&t.tx.to_bytes());
    w.0
}

pub(crate) fn decode_tx(v: &[u8]) -> Result<StoredTx, String> {
    let mut r = Reader::new(v)?;
    let height = r.u64("height")?;
    let index = r.u32("index")?;
    let outcome = match r.u8("outcome tag")? {
        0 => StoredOutcome::Applied {
            first_leaf: r.u64("first leaf")?,
        },
        1 => StoredOutcome::Rejected(
            String::from_utf8(r.bytes("reason")?.to_vec())
                .map_err(|_| "rejection reason is not UTF-8".to_string())?,
        ),
        t => return Err(format!("unknown outcome tag {t}")),
    };
    let tx = CommittedTx::from_bytes(r.bytes("transaction")?).map_err(|e| e.to_string())?;
    r.finish()?;
    Ok(StoredTx {
        tx,
        height,
        index,
        outcome,
    })
}

/// Ledger metadata of one height: block time, tree root, state root, tree size, nullifier count,
/// nullifier chain, applied txids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeightInfo {
    /// Block time (Unix ms) after clamping: what compact blocks report.
    pub(crate) time_ms: u64,
    pub(crate) tree_root: Fr,
    pub(crate) state_root: [u8; 32],
    pub(crate) tree_size: u64,
    pub(crate) nullifier_count: u64,
    pub(crate) nullifier_chain: [u8; 32],
    /// The governance chain and the scan chain after the block: with the fields above, the
    /// state root's whole preimage (an opening clients check against a certificate).
    pub(crate) governance_chain: [u8; 32],
    pub(crate) scan_chain: [u8; 32],
    /// [`shoji_ledger::validators_commitment`] after the block.
    pub(crate) validators: [u8; 32],
    /// [`shoji_ledger::recent_roots_hash`], [`shoji_ledger::policy_hash`] and the accounts
    /// root after the block.
    pub(crate) recent_roots: [u8; 32],
    pub(crate) policy: [u8; 32],
    pub(crate) accounts: [u8; 32],
    pub(crate) applied: Vec<TxId>,
}

impl HeightInfo {
    /// The metadata of the height whose state `opening` describes.
    pub(crate) fn of(
        opening: &shoji_ledger::StateOpening,
        nullifier_count: u64,
        applied: Vec<TxId>,
    ) -> HeightInfo {
        HeightInfo {
            time_ms: opening.time_ms,
            tree_root: opening.tree_root,
            state_root: opening.root(),
            tree_size: opening.tree_size,
            nullifier_count,
            nullifier_chain: opening.nullifier_chain,
            governance_chain: opening.governance_chain,
            scan_chain: opening.scan_chain,
            validators: opening.validators,
            recent_roots: opening.recent_roots,
            policy: opening.policy,
            accounts: opening.accounts,
            applied,
        }
    }
}

pub(crate) fn encode_info(i: &HeightInfo) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(i.time_ms)
        .fr(&i.tree_root)
        .raw(&i.state_root)
        .u64(i.tree_size)
        .u64(i.nullifier_count)
        .raw(&i.nullifier_chain)
        .raw(&i.governance_chain)
        .raw(&i.scan_chain)
        .raw(&i.validators)
        .raw(&i.recent_roots)
        .raw(&i.policy)
        .raw(&i.accounts)
        .u32(i.applied.len() as u32);
    for id in &i.applied {
        w.raw(&id.0);
    }
    w.0
}

pub(crate) fn decode_info(v: &[u8]) -> Result<HeightInfo, String> {
    let mut r = Reader::new(v)?;
    let time_ms = r.u64("block time")?;
    let tree_root = r.fr("tree root")?;
    let state_root = r.array("state root")?;
    let tree_size = r.u64("tree size")?;
    let nullifier_count = r.u64("nullifier count")?;
    let nullifier_chain = r.array("nullifier chain")?;
    let governance_chain = r.array("governance chain")?;
    let scan_chain = r.array("scan chain")?;
    let validators = r.array("validator commitment")?;
    let recent_roots = r.array("recent roots hash")?;
    let policy = r.array("policy hash")?;
    let accounts = r.array("accounts root")?;
    let n = r.count(32, "applied count")?;
    let applied = (0..n)
        .map(|_| r.array("txid").map(TxId))
        .collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(HeightInfo {
        time_ms,
        tree_root,
        state_root,
        tree_size,
        nullifier_count,
        nullifier_chain,
        governance_chain,
        scan_chain,
        validators,
        recent_roots,
        policy,
        accounts,
        applied,
    })
}

/// Checkpoint record: state root, block hash, certificate (postcard).
pub(crate) fn encode_checkpoint(c: &CheckpointCertificate) -> Result<Vec<u8>, String> {
    let cert = postcard::to_allocvec(c).map_err(|e| postcard_err("checkpoint", e))?;
    let mut w = Writer::new();
    w.raw(&c.state_root).raw(&c.block_hash.0).bytes(&cert);
    Ok(w.0)
}

pub(crate) fn decode_checkpoint(v: &[u8]) -> Result<CheckpointCertificate, String> {
    let mut r = Reader::new(v)?;
    let state_root: [u8; 32] = r.array("state root")?;
    let block_hash: [u8; 32] = r.array("block hash")?;
    let cert: CheckpointCertificate =
        postcard::from_bytes(r.bytes("certificate")?).map_err(|e| postcard_err("checkpoint", e))?;
    r.finish()?;
    if cert.state_root != state_root || cert.block_hash != BlockHash(block_hash) {
        return Err("certificate disagrees with the record's state root or block hash".into());
    }
    Ok(cert)
}

/// Validator set: epoch, count, then (u16 id, 32-byte Ed25519 key) in id order.
pub(crate) fn encode_epoch_change(c: &crate::EpochChange) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(c.decided).u32(c.validators.len() as u32);
    for (id, key) in &c.validators {
        w.u16(*id).raw(key);
    }
    w.0
}

pub(crate) fn decode_epoch_change(last: u64, v: &[u8]) -> Result<crate::EpochChange, String> {
    let mut r = Reader::new(v)?;
    let decided = r.u64("decided height")?;
    let n = r.count(34, "member count")?;
    let mut validators = shoji_ledger::Validators::new();
    for _ in 0..n {
        let id = r.u16("replica id")?;
        if validators.insert(id, r.array("verifying key")?).is_some() {
            return Err(format!("replica {id} listed twice"));
        }
    }
    r.finish()?;
    Ok(crate::EpochChange {
        decided,
        last,
        validators,
    })
}

/// Consensus persisted state: the version byte, then [`shoji_consensus::PersistedState::encode`].
pub(crate) fn encode_consensus(s: &shoji_consensus::PersistedState) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&s.encode());
    w.0
}

pub(crate) fn decode_consensus(v: &[u8]) -> Result<shoji_consensus::PersistedState, String> {
    let mut r = Reader::new(v)?;
    shoji_consensus::PersistedState::decode(r.rest()).map_err(|e| e.to_string())
}

/// One `consensus_log` entry (a pre-prepare, a vote or a prepared certificate).
pub(crate) fn encode_log<T: serde::Serialize>(entry: &T) -> Vec<u8> {
    let mut w = Writer::new();
    // Serializing plain consensus data into a Vec cannot fail.
    w.raw(&postcard::to_allocvec(entry).unwrap_or_default());
    w.0
}

/// Decodes an entry written by [`encode_log`].
pub(crate) fn decode_log<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<T, String> {
    let mut r = Reader::new(v)?;
    postcard::from_bytes(r.rest()).map_err(|e| e.to_string())
}
