//! The ledger state and its transition function (DESIGN §4, "stateful" validation).
//!
//! [`Ledger::apply_block`] takes a committed block's proposed time and its transactions in order,
//! with the results of their stateless checks, and applies the valid ones: anchor is a recent root, nullifiers are
//! unseen (including earlier in the same block), the auditor key is the one in force, the issuer
//! of a mint or redeem is registered for the asset, the transaction has not expired. An invalid
//! transaction is marked invalid with its reason — deterministically, so every validator reaches
//! the same state — and does not stall the block.
//!
//! Block time: the block's proposer chooses a time (Unix milliseconds); the ledger's time after
//! the block is the larger of that and its time before, so block times never go backwards, even
//! if a proposer's clock does. It is part of the head and of the state root.
//!
//! Governance: a block's governance transactions ([`GovernanceTx`]) are enacted after its
//! shielded transactions, in block order, so a policy change applies from the next block on. Each
//! must carry the next sequence number and the approvals of a threshold of the administrators
//! named in genesis. The policy in force (auditor key, issuers and their assets) is part of the
//! head; the state root commits to it through the chain of enacted governance transactions.
//!
//! No I/O: the node persists what this returns.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use shoji_primitives::audit::{AuditPublicKey, AuditRecord};
use shoji_primitives::encoding::{fr_to_bytes, point_to_bytes, EncodingError, Reader};
use shoji_primitives::encryption::{NoteCiphertext, NOTE_CIPHERTEXT_BYTES};
use shoji_primitives::governance::{
    GovernanceAction, GovernanceRules, GovernanceTx, IssuerRegistry, MAX_ISSUER_ASSETS,
};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tree::{Frontier, TreeError};
use shoji_primitives::tx::{Transaction, TxId, TxKind};
use shoji_primitives::Fr;
use shoji_verifier::TxError;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Why a transaction in a block was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Stateless validation failed.
    #[error("{0}")]
    Stateless(String),
    /// The anchor is not one of the recent roots.
    #[error("unknown or expired anchor")]
    UnknownAnchor,
    /// A nullifier was already spent (possibly earlier in this block).
    #[error("double spend: nullifier already revealed")]
    DoubleSpend,
    /// The audit record is for another key than the one in force.
    #[error("audit record is not encrypted to the auditor key in force")]
    WrongAuditor,
    /// The issuer is not registered for the asset.
    #[error("issuer is not registered for asset {0}")]
    UnauthorizedIssuer(u64),
    /// The transaction expired before this block.
    #[error("transaction expired at height {0}")]
    Expired(u64),
    /// The commitment tree has no room.
    #[error("commitment tree is full")]
    TreeFull,
    /// A governance transaction out of sequence (a replay, or one prepared against an older
    /// policy).
    #[error("governance sequence number {got}, expected {expected}")]
    GovernanceSequence {
        /// The next sequence number.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// A governance transaction without the approvals it needs.
    #[error("governance approvals: {0}")]
    Unapproved(String),
    /// A validator-set change that cannot be made.
    #[error("validator set: {0}")]
    ValidatorSet(String),
    /// The transaction names another network (another genesis): it was built for, or
    /// replayed from, a network that shares keys with this one.
    #[error("transaction is for another network")]
    WrongNetwork,
}

impl Rejection {
    /// The class of this rejection, as a block's compact form certifies it.
    pub fn code(&self) -> RejectionCode {
        match self {
            Rejection::Stateless(_) => RejectionCode::Invalid,
            Rejection::UnknownAnchor => RejectionCode::UnknownAnchor,
            Rejection::DoubleSpend => RejectionCode::DoubleSpend,
            Rejection::WrongAuditor => RejectionCode::WrongAuditor,
            Rejection::UnauthorizedIssuer(_) => RejectionCode::UnauthorizedIssuer,
            Rejection::Expired(_) => RejectionCode::Expired,
            Rejection::TreeFull => RejectionCode::TreeFull,
            Rejection::WrongNetwork => RejectionCode::WrongNetwork,
            Rejection::GovernanceSequence { .. }
            | Rejection::Unapproved(_)
            | Rejection::ValidatorSet(_) => RejectionCode::Governance,
        }
    }
}

/// Why a transaction was not applied, without the details a [`Rejection`] carries: what a
/// block's compact form records, so that the reason is certified with the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectionCode {
    /// Stateless validation failed (layout, signature or proof).
    Invalid = 1,
    /// [`Rejection::UnknownAnchor`].
    UnknownAnchor = 2,
    /// [`Rejection::DoubleSpend`].
    DoubleSpend = 3,
    /// [`Rejection::WrongAuditor`].
    WrongAuditor = 4,
    /// [`Rejection::UnauthorizedIssuer`].
    UnauthorizedIssuer = 5,
    /// [`Rejection::Expired`].
    Expired = 6,
    /// [`Rejection::TreeFull`].
    TreeFull = 7,
    /// [`Rejection::WrongNetwork`].
    WrongNetwork = 8,
    /// A governance rule (sequence, approvals, validator set).
    Governance = 9,
}

impl RejectionCode {
    /// The code of byte `b`.
    pub fn from_u8(b: u8) -> Result<Self, EncodingError> {
        Ok(match b {
            1 => Self::Invalid,
            2 => Self::UnknownAnchor,
            3 => Self::DoubleSpend,
            4 => Self::WrongAuditor,
            5 => Self::UnauthorizedIssuer,
            6 => Self::Expired,
            7 => Self::TreeFull,
            8 => Self::WrongNetwork,
            9 => Self::Governance,
            _ => return Err(EncodingError::Invalid("unknown rejection code")),
        })
    }
}

impl std::fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Invalid => "invalid transaction (layout, signature or proof)",
            Self::UnknownAnchor => "unknown or expired anchor",
            Self::DoubleSpend => "double spend: nullifier already revealed",
            Self::WrongAuditor => "audit record is not encrypted to the auditor key in force",
            Self::UnauthorizedIssuer => "issuer is not registered for the asset",
            Self::Expired => "transaction expired",
            Self::TreeFull => "commitment tree is full",
            Self::WrongNetwork => "transaction is for another network",
            Self::Governance => "governance rule",
        })
    }
}

/// A transaction of a block that was not applied, as the block's compact form certifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactRejection {
    /// The hash of the exact bytes ordered ([`Transaction::auth_id`]): what its submitter
    /// holds, whichever copy of the transaction other validators ordered.
    pub auth_id: TxId,
    /// Why it was not applied.
    pub code: RejectionCode,
}

impl CompactRejection {
    /// Encoded length: `auth_id ‖ code`.
    pub const BYTES: usize = 32 + 1;

    /// The record of `tx` rejected for `why`.
    pub fn of(tx: &Transaction, why: &Rejection) -> Self {
        Self {
            auth_id: tx.auth_id(),
            code: why.code(),
        }
    }
}

/// What happened to one transaction of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    /// Applied; its two commitments are leaves `first_leaf` and `first_leaf + 1`.
    Applied {
        /// Position of the first output commitment.
        first_leaf: u64,
    },
    /// A governance transaction, enacted.
    Enacted,
    /// Not applied.
    Rejected(Rejection),
}

/// What wallets and auditors need of one applied transaction, in tree order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactTx {
    /// The transaction id.
    pub txid: TxId,
    /// Its kind.
    pub kind: TxKind,
    /// The public asset of a mint or redeem (0 for a transfer).
    pub asset: AssetId,
    /// Public value brought in (a mint's amount; 0 otherwise).
    pub value_in: Amount,
    /// Public value taken out (a redeem's amount; 0 otherwise).
    pub value_out: Amount,
    /// Revealed nullifiers.
    pub nullifiers: [Fr; 2],
    /// New commitments (leaves `first_leaf` and `first_leaf + 1`).
    pub commitments: [Fr; 2],
    /// The outputs' ciphertexts.
    pub outputs: [NoteCiphertext; 2],
    /// The auditor the record is designated to.
    pub auditor: AuditPublicKey,
    /// The audit record.
    pub audit: AuditRecord,
}

impl CompactTx {
    /// The compact form of `tx`.
    pub fn of(tx: &Transaction) -> Self {
        let b = tx.bundle();
        Self {
            txid: tx.id(),
            kind: tx.kind(),
            asset: b.asset,
            value_in: b.value_in,
            value_out: b.value_out,
            nullifiers: b.nullifiers,
            commitments: b.commitments,
            outputs: b.outputs,
            auditor: b.auditor,
            audit: b.audit,
        }
    }
}

impl CompactTx {
    /// Encoded length.
    pub const BYTES: usize = 32 + 1 + 3 * 8 + 4 * 32 + 2 * NOTE_CIPHERTEXT_BYTES + 32 + 32 + 4 * 32;

    /// `txid ‖ kind ‖ asset ‖ value_in ‖ value_out ‖ nf_0 ‖ nf_1 ‖ cm_0 ‖ cm_1 ‖ output_0 ‖
    /// output_1 ‖ auditor ‖ E ‖ c_0..c_3` (integers little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.extend_from_slice(&self.txid.0);
        out.push(self.kind as u8);
        for v in [self.asset.0, self.value_in.0, self.value_out.0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for x in self.nullifiers.iter().chain(&self.commitments) {
            out.extend_from_slice(&fr_to_bytes(x));
        }
        for o in &self.outputs {
            out.extend_from_slice(&o.to_bytes());
        }
        out.extend_from_slice(&self.auditor.to_bytes());
        out.extend_from_slice(&point_to_bytes(&self.audit.epk));
        for c in &self.audit.ciphertext {
            out.extend_from_slice(&fr_to_bytes(c));
        }
        out
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, EncodingError> {
        let txid = TxId(r.array()?);
        let kind = TxKind::from_u8(r.u8()?)?;
        let asset = AssetId(r.u64()?);
        let value_in = Amount(r.u64()?);
        let value_out = Amount(r.u64()?);
        let nullifiers = [r.fr("nullifier")?, r.fr("nullifier")?];
        let commitments = [r.fr("commitment")?, r.fr("commitment")?];
        let outputs = [
            NoteCiphertext::from_bytes(&r.array()?),
            NoteCiphertext::from_bytes(&r.array()?),
        ];
        let auditor = AuditPublicKey::from_bytes(r.take(32)?)?;
        let epk = r.point("audit ephemeral key")?;
        let ciphertext = [
            r.fr("audit")?,
            r.fr("audit")?,
            r.fr("audit")?,
            r.fr("audit")?,
        ];
        Ok(Self {
            txid,
            kind,
            asset,
            value_in,
            value_out,
            nullifiers,
            commitments,
            outputs,
            auditor,
            audit: AuditRecord { epk, ciphertext },
        })
    }
}

impl CompactBlock {
    /// Length of the encoding before the transactions.
    pub const HEADER_BYTES: usize = 8 + 8 + 32 + 4;

    /// `height ‖ time_ms ‖ tree_root ‖ count:u32 ‖ txs ‖ rejected_count:u32 ‖ rejected`
    /// (integers little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            Self::HEADER_BYTES
                + self.txs.len() * CompactTx::BYTES
                + 4
                + self.rejected.len() * CompactRejection::BYTES,
        );
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        out.extend_from_slice(&fr_to_bytes(&self.tree_root));
        out.extend_from_slice(&(self.txs.len() as u32).to_le_bytes());
        for t in &self.txs {
            out.extend_from_slice(&t.to_bytes());
        }
        out.extend_from_slice(&(self.rejected.len() as u32).to_le_bytes());
        for r in &self.rejected {
            out.extend_from_slice(&r.auth_id.0);
            out.push(r.code as u8);
        }
        out
    }

    /// Strict decoding of [`CompactBlock::to_bytes`]: the counts must match the length exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut r = Reader::new("compact block", bytes);
        let height = r.u64()?;
        let time_ms = r.u64()?;
        let tree_root = r.fr("tree root")?;
        let count = u32::from_le_bytes(r.array()?) as usize;
        let txs_end = Self::HEADER_BYTES.saturating_add(count.saturating_mul(CompactTx::BYTES));
        if bytes.len() < txs_end.saturating_add(4) {
            return Err(EncodingError::Invalid(
                "compact block length does not match its count",
            ));
        }
        let txs = (0..count)
            .map(|_| CompactTx::read(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let rejected_count = u32::from_le_bytes(r.array()?) as usize;
        if bytes.len()
            != (txs_end + 4).saturating_add(rejected_count.saturating_mul(CompactRejection::BYTES))
        {
            return Err(EncodingError::Invalid(
                "compact block length does not match its counts",
            ));
        }
        let rejected = (0..rejected_count)
            .map(|_| {
                Ok(CompactRejection {
                    auth_id: TxId(r.array()?),
                    code: RejectionCode::from_u8(r.u8()?)?,
                })
            })
            .collect::<Result<Vec<_>, EncodingError>>()?;
        r.finish()?;
        Ok(Self {
            height,
            time_ms,
            txs,
            tree_root,
            rejected,
        })
    }
}

/// A block as wallets scan it: its applied transactions in order, and which of its
/// transactions were rejected and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactBlock {
    /// Height.
    pub height: u64,
    /// Block time, Unix milliseconds: the proposer's time clamped to be at least the previous
    /// block's (see [`Ledger::apply_block`]).
    pub time_ms: u64,
    /// Applied transactions, in block order.
    pub txs: Vec<CompactTx>,
    /// Tree root after the block.
    pub tree_root: Fr,
    /// The block's transactions that were not applied, in block order.
    pub rejected: Vec<CompactRejection>,
}

/// The result of applying one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Height of the block.
    pub height: u64,
    /// Block time, Unix milliseconds: `max(proposed time, previous block time)`.
    pub time_ms: u64,
    /// One outcome per transaction, in block order.
    pub outcomes: Vec<TxOutcome>,
    /// Commitment-tree root after the block (a new valid anchor).
    pub tree_root: Fr,
    /// Digest of the whole ledger state after the block.
    pub state_root: [u8; 32],
    /// The block as wallets and auditors scan it.
    pub compact: CompactBlock,
    /// What happened to each governance transaction of the block, in order.
    pub governance: Vec<(TxId, TxOutcome)>,
    /// A validator-set change enacted by this block: the height after which it takes effect
    /// and the next epoch's members.
    pub validators_decided: Option<(u64, Validators)>,
    /// Set when this block is the last of its epoch: the new epoch number and its members,
    /// who order every block above this one.
    pub epoch_started: Option<(u64, Validators)>,
}

/// A validator set: replica id → Ed25519 public key.
pub type Validators = BTreeMap<u16, [u8; 32]>;

/// The ledger state without the nullifier set: what storage rewrites after every block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerHead {
    /// Height of the last applied block (0 at genesis).
    pub height: u64,
    /// Time of the last applied block, Unix milliseconds (0 at genesis).
    pub time_ms: u64,
    /// The commitment tree's frontier.
    pub frontier: Frontier,
    /// Roots of the last blocks, oldest first (the genesis root counts as height 0); the last
    /// one is `frontier.root()`.
    pub recent_roots: Vec<Fr>,
    /// Running hash of every revealed nullifier, in order of revelation.
    pub nullifier_chain: [u8; 32],
    /// Running hash of every block's [`CompactBlock`] (see [`chain_compact`]): what wallets and
    /// auditors scan, certified through the state root.
    pub scan_chain: [u8; 32],
    /// The policy in force, once governance has changed it (`None`: genesis's).
    pub policy: Option<Policy>,
}

/// The rules governance changes: who audits, who issues what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Governance transactions enacted so far (the next one must carry this number).
    pub seq: u64,
    /// Running hash of the ids of the enacted governance transactions (zero at genesis).
    pub chain: [u8; 32],
    /// The auditor key every transaction must encrypt its audit record to.
    pub auditor: AuditPublicKey,
    /// Registered issuers and the assets each may mint and redeem.
    pub issuers: IssuerRegistry,
    /// The validator-set epoch (0 at genesis).
    pub epoch: u64,
    /// The last height of the previous epoch (0 for the genesis epoch): the current validators
    /// order the blocks above it.
    pub epoch_start: u64,
    /// The current validators.
    pub validators: Validators,
    /// A decided change: the last height of the current epoch and the next one's validators.
    pub next_validators: Option<(u64, Validators)>,
    /// Where the validators added by governance are reached (the genesis ones' addresses are
    /// in the genesis): replica id → `IP:port`.
    pub addresses: BTreeMap<u16, String>,
}

impl Policy {
    /// The policy of a network at genesis.
    pub fn genesis(config: &LedgerConfig) -> Self {
        Policy {
            seq: 0,
            chain: [0; 32],
            auditor: config.auditor,
            issuers: config.issuers.clone(),
            epoch: 0,
            epoch_start: 0,
            validators: config.validators.clone(),
            next_validators: None,
            addresses: BTreeMap::new(),
        }
    }

    /// `seq:u64 ‖ chain(32) ‖ auditor(32) ‖ issuers:u32 ‖ (key(32) ‖ assets:u8 ‖ asset:u64*)* ‖
    /// epoch:u64 ‖ epoch_start:u64 ‖ validators ‖ next:u8 (0 or 1) ‖ [last height:u64 ‖
    /// validators] ‖ [addresses]` where `validators` is `count:u16 ‖ (id:u16 ‖ key(32))*` and
    /// `addresses`, present only when some validator was added, is `count:u16 ‖ (id:u16 ‖
    /// len:u8 ‖ IP:port)*` (little-endian), issuers, assets and ids in increasing order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.chain);
        out.extend_from_slice(&self.auditor.to_bytes());
        out.extend_from_slice(&(self.issuers.len() as u32).to_le_bytes());
        for (key, assets) in &self.issuers {
            out.extend_from_slice(key);
            out.push(assets.len().min(u8::MAX as usize) as u8);
            for a in assets.iter().take(u8::MAX as usize) {
                out.extend_from_slice(&a.0.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.epoch_start.to_le_bytes());
        write_validators(&mut out, &self.validators);
        match &self.next_validators {
            None => out.push(0),
            Some((h, v)) => {
                out.push(1);
                out.extend_from_slice(&h.to_le_bytes());
                write_validators(&mut out, v);
            }
        }
        if !self.addresses.is_empty() {
            out.extend_from_slice(
                &(self.addresses.len().min(u16::MAX as usize) as u16).to_le_bytes(),
            );
            for (id, a) in self.addresses.iter().take(u16::MAX as usize) {
                out.extend_from_slice(&id.to_le_bytes());
                let a = &a.as_bytes()[..a.len().min(u8::MAX as usize)];
                out.push(a.len() as u8);
                out.extend_from_slice(a);
            }
        }
        out
    }

    /// Strict decoding of [`Policy::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut r = Reader::new("policy", bytes);
        let seq = r.u64()?;
        let chain = r.array()?;
        let auditor = AuditPublicKey::from_bytes(&r.array::<32>()?)?;
        let mut count = [0u8; 4];
        count.copy_from_slice(r.take(4)?);
        let count = u32::from_le_bytes(count);
        let mut issuers = IssuerRegistry::new();
        let mut last: Option<[u8; 32]> = None;
        for _ in 0..count {
            let key: [u8; 32] = r.array()?;
            if last.is_some_and(|l| key <= l) {
                return Err(EncodingError::Invalid("policy issuers out of order"));
            }
            last = Some(key);
            let n = r.u8()? as usize;
            if n > MAX_ISSUER_ASSETS {
                return Err(EncodingError::Invalid("too many assets for one issuer"));
            }
            let mut assets = BTreeSet::new();
            for _ in 0..n {
                if !assets.insert(AssetId(r.u64()?)) {
                    return Err(EncodingError::Invalid("policy lists an asset twice"));
                }
            }
            issuers.insert(key, assets);
        }
        let epoch = r.u64()?;
        let epoch_start = r.u64()?;
        let validators = read_validators(&mut r)?;
        let next_validators = match r.u8()? {
            0 => None,
            1 => Some((r.u64()?, read_validators(&mut r)?)),
            v => {
                return Err(EncodingError::Unknown {
                    what: "pending validator change",
                    value: v as u64,
                })
            }
        };
        let mut addresses = BTreeMap::new();
        if r.remaining() > 0 {
            let n = u16::from_le_bytes(r.array()?);
            if n == 0 {
                return Err(EncodingError::Invalid(
                    "an empty address list is not written",
                ));
            }
            let mut last = None;
            for _ in 0..n {
                let id = u16::from_le_bytes(r.array()?);
                if last.is_some_and(|l| id <= l) {
                    return Err(EncodingError::Invalid("policy address ids out of order"));
                }
                last = Some(id);
                let len = r.u8()? as usize;
                let a = std::str::from_utf8(r.take(len)?)
                    .ok()
                    .filter(|a| shoji_primitives::governance::canonical_address(a))
                    .ok_or(EncodingError::Invalid("policy validator address"))?;
                addresses.insert(id, a.to_string());
            }
        }
        r.finish()?;
        Ok(Policy {
            seq,
            chain,
            auditor,
            issuers,
            epoch,
            epoch_start,
            validators,
            next_validators,
            addresses,
        })
    }
}

fn write_validators(out: &mut Vec<u8>, v: &Validators) {
    out.extend_from_slice(&(v.len().min(u16::MAX as usize) as u16).to_le_bytes());
    for (id, key) in v.iter().take(u16::MAX as usize) {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(key);
    }
}

fn read_validators(r: &mut Reader<'_>) -> Result<Validators, EncodingError> {
    let n = u16::from_le_bytes(r.array()?);
    let mut v = Validators::new();
    let mut last = None;
    for _ in 0..n {
        let id = u16::from_le_bytes(r.array()?);
        if last.is_some_and(|l| id <= l) {
            return Err(EncodingError::Invalid("policy validator ids out of order"));
        }
        last = Some(id);
        v.insert(id, r.array()?);
    }
    Ok(v)
}

impl LedgerHead {
    /// The head of [`Ledger::genesis`].
    pub fn genesis() -> Self {
        let frontier = Frontier::new();
        LedgerHead {
            height: 0,
            time_ms: 0,
            recent_roots: vec![frontier.root()],
            frontier,
            nullifier_chain: [0; 32],
            scan_chain: [0; 32],
            policy: None,
        }
    }

    /// The state root of a ledger with this head.
    pub fn state_root(&self) -> [u8; 32] {
        self.state_root_with(&self.frontier.root())
    }

    /// [`LedgerHead::state_root`] given the frontier's root (which costs sixteen hashes to
    /// compute), for callers that already hold it.
    pub fn state_root_with(&self, tree_root: &Fr) -> [u8; 32] {
        self.opening_with(tree_root).root()
    }

    /// The state root's preimage ([`StateOpening`]) given the frontier's root.
    pub fn opening_with(&self, tree_root: &Fr) -> StateOpening {
        StateOpening {
            height: self.height,
            time_ms: self.time_ms,
            tree_size: self.frontier.size(),
            tree_root: *tree_root,
            nullifier_chain: self.nullifier_chain,
            governance_chain: self.policy.as_ref().map_or([0; 32], |p| p.chain),
            scan_chain: self.scan_chain,
            validators: validators_commitment(self.policy.as_ref()),
        }
    }
}

/// Everything the state root hashes: given a certified state root (a stable checkpoint's), a
/// client checks an opening against it and then trusts each field, in particular the tree root
/// and the scan chain over every compact block up to `height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateOpening {
    /// Height.
    pub height: u64,
    /// Block time, Unix milliseconds.
    pub time_ms: u64,
    /// Commitments in the tree.
    pub tree_size: u64,
    /// The tree's root.
    pub tree_root: Fr,
    /// Running hash of the revealed nullifiers ([`chain_nullifier`]).
    pub nullifier_chain: [u8; 32],
    /// Running hash of the enacted governance transactions ([`chain_governance`]).
    pub governance_chain: [u8; 32],
    /// Running hash of the compact blocks ([`chain_compact`]).
    pub scan_chain: [u8; 32],
    /// The validator sets in force and decided ([`validators_commitment`]).
    pub validators: [u8; 32],
}

impl StateOpening {
    /// Encoded length.
    pub const BYTES: usize = 8 + 8 + 8 + 32 * 5;

    /// The state root these fields hash to.
    pub fn root(&self) -> [u8; 32] {
        state_root(
            self.height,
            self.time_ms,
            self.tree_size,
            &self.tree_root,
            &self.nullifier_chain,
            &self.governance_chain,
            &self.scan_chain,
            &self.validators,
        )
    }

    /// `height ‖ time_ms ‖ tree_size ‖ tree_root ‖ nullifier_chain ‖ governance_chain ‖
    /// scan_chain ‖ validators` (integers little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        out.extend_from_slice(&self.tree_size.to_le_bytes());
        out.extend_from_slice(&fr_to_bytes(&self.tree_root));
        out.extend_from_slice(&self.nullifier_chain);
        out.extend_from_slice(&self.governance_chain);
        out.extend_from_slice(&self.scan_chain);
        out.extend_from_slice(&self.validators);
        out
    }

    /// Strict decoding of [`StateOpening::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut r = Reader::new("state opening", bytes);
        let opening = StateOpening {
            height: r.u64()?,
            time_ms: r.u64()?,
            tree_size: r.u64()?,
            tree_root: r.fr("tree root")?,
            nullifier_chain: r.array()?,
            governance_chain: r.array()?,
            scan_chain: r.array()?,
            validators: r.array()?,
        };
        r.finish()?;
        Ok(opening)
    }
}

/// Everything needed to rebuild a ledger, given its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerSnapshot {
    /// The per-block part.
    pub head: LedgerHead,
    /// Every revealed nullifier (canonical 32-byte encodings).
    pub nullifiers: BTreeSet<[u8; 32]>,
}

/// Why a snapshot cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// No recent roots.
    #[error("snapshot has no recent roots")]
    NoRoots,
    /// More recent roots than the window keeps.
    #[error("snapshot has {got} recent roots, the window keeps {window}")]
    TooManyRoots {
        /// Given.
        got: usize,
        /// The configured window.
        window: usize,
    },
    /// The last recent root is not the frontier's root.
    #[error("the last recent root is not the tree's root")]
    RootMismatch,
}

/// The state root: blake3 (derived key "shoji 2026 state root v5") over height, block time and
/// tree size (u64 little-endian), tree root, nullifier chain, governance chain, scan chain and
/// validator commitment.
#[allow(clippy::too_many_arguments)]
pub fn state_root(
    height: u64,
    time_ms: u64,
    tree_size: u64,
    tree_root: &Fr,
    nullifier_chain: &[u8; 32],
    governance_chain: &[u8; 32],
    scan_chain: &[u8; 32],
    validators: &[u8; 32],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 state root v5");
    h.update(&height.to_le_bytes());
    h.update(&time_ms.to_le_bytes());
    h.update(&tree_size.to_le_bytes());
    h.update(&fr_to_bytes(tree_root));
    h.update(nullifier_chain);
    h.update(governance_chain);
    h.update(scan_chain);
    h.update(validators);
    *h.finalize().as_bytes()
}

/// What a state root says of the validator sets: zero while governance has changed nothing,
/// otherwise [`validator_sets_hash`] of the current members and the decided change.
pub fn validators_commitment(policy: Option<&Policy>) -> [u8; 32] {
    match policy {
        None => [0; 32],
        Some(p) => validator_sets_hash(
            &p.validators,
            p.next_validators.as_ref().map(|(last, next)| (*last, next)),
        ),
    }
}

/// blake3 (derived key "shoji 2026 validator sets v1") over the current members and the
/// decided change if any (`0`, or `1 ‖ last height of the epoch (u64 LE) ‖ members`), members
/// as `count:u32 ‖ (id:u16 ‖ key:32)*` in id order (integers little-endian). A client that
/// trusts an epoch's set checks a checkpoint of that set whose state has a change decided, and
/// learns from its opening the next set and the last height the current one signs for.
pub fn validator_sets_hash(validators: &Validators, next: Option<(u64, &Validators)>) -> [u8; 32] {
    fn members(h: &mut blake3::Hasher, v: &Validators) {
        h.update(&(v.len() as u32).to_le_bytes());
        for (id, key) in v {
            h.update(&id.to_le_bytes());
            h.update(key);
        }
    }
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 validator sets v1");
    members(&mut h, validators);
    match next {
        None => {
            h.update(&[0]);
        }
        Some((last, next)) => {
            h.update(&[1]);
            h.update(&last.to_le_bytes());
            members(&mut h, next);
        }
    }
    *h.finalize().as_bytes()
}

/// One step of the scan chain: the chain after the block whose compact form encodes to
/// `compact` ([`CompactBlock::to_bytes`]). A client that holds the chain at one certified height
/// checks every compact block it receives up to the next.
pub fn chain_compact(chain: &[u8; 32], compact: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 scan chain v2");
    h.update(chain);
    h.update(compact);
    *h.finalize().as_bytes()
}

/// One step of the governance chain: the chain after enacting the transaction `id`.
pub fn chain_governance(chain: &[u8; 32], id: &TxId) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 governance chain v1");
    h.update(chain);
    h.update(&id.0);
    *h.finalize().as_bytes()
}

/// One step of the nullifier chain: the chain after revealing `nf`.
pub fn chain_nullifier(chain: &[u8; 32], nf: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 nullifier chain v1");
    h.update(chain);
    h.update(nf);
    *h.finalize().as_bytes()
}

/// Ledger parameters fixed at genesis.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// How many recent block roots are accepted as anchors.
    pub anchor_window_blocks: usize,
    /// The auditor key at genesis (governance may designate another).
    pub auditor: AuditPublicKey,
    /// Issuers (Ed25519 public keys) registered at genesis and the assets each may mint and
    /// redeem (governance may change them).
    pub issuers: IssuerRegistry,
    /// Who approves governance transactions.
    pub governance: GovernanceRules,
    /// The network's identifier (its genesis hash), which governance approvals sign.
    pub network_id: [u8; 32],
    /// The genesis validators (governance may replace them).
    pub validators: Validators,
    /// Consensus's checkpoint interval `K` and log window `L`: a validator-set change enacted
    /// at height `h` takes effect after height `round_up(h, K) + L`, the checkpoint boundary
    /// the consensus core stops the old epoch at.
    pub checkpoint_interval: u64,
    /// See `checkpoint_interval`.
    pub window_size: u64,
}

/// Fewest validators a set may have (`n = 3f + 1` with `f = 1`).
pub const MIN_VALIDATORS: usize = 4;

/// The ledger state: commitment tree, spent nullifiers, recent roots.
#[derive(Clone, Debug)]
pub struct Ledger {
    config: LedgerConfig,
    height: u64,
    /// Time of the last applied block (Unix ms), never decreasing.
    time_ms: u64,
    frontier: Frontier,
    nullifiers: BTreeSet<[u8; 32]>,
    /// Roots of the last blocks, oldest first, with a count of each for O(log n) lookup.
    recent_roots: VecDeque<Fr>,
    root_counts: BTreeMap<[u8; 32], usize>,
    /// Running hash of every nullifier in order of revelation.
    nullifier_chain: [u8; 32],
    /// Running hash of every block's compact form.
    scan_chain: [u8; 32],
    /// The policy in force.
    policy: Policy,
    /// `frontier.root()`, kept (a root is sixteen hashes).
    tree_root: Fr,
}

impl Ledger {
    /// The state at genesis (height 0, empty tree; its root is the first anchor).
    pub fn genesis(config: LedgerConfig) -> Self {
        let mut l = Self {
            policy: Policy::genesis(&config),
            config,
            height: 0,
            time_ms: 0,
            frontier: Frontier::new(),
            nullifiers: BTreeSet::new(),
            recent_roots: VecDeque::new(),
            root_counts: BTreeMap::new(),
            nullifier_chain: [0; 32],
            scan_chain: [0; 32],
            tree_root: Frontier::new().root(),
        };
        l.remember_root(l.tree_root);
        l
    }

    /// The commitment tree's current root.
    pub fn tree_root(&self) -> Fr {
        self.tree_root
    }

    /// Height of the last applied block (0 at genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Time of the last applied block, Unix milliseconds (0 at genesis).
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The commitment tree's frontier.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The genesis configuration.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// The policy in force (auditor, issuers, governance sequence).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether `nf` has been revealed.
    pub fn is_spent(&self, nf: &Fr) -> bool {
        self.nullifiers.contains(&fr_to_bytes(nf))
    }

    /// Whether `root` is an acceptable anchor now.
    pub fn is_recent_root(&self, root: &Fr) -> bool {
        self.root_counts.contains_key(&fr_to_bytes(root))
    }

    fn remember_root(&mut self, root: Fr) {
        self.recent_roots.push_back(root);
        *self.root_counts.entry(fr_to_bytes(&root)).or_default() += 1;
        while self.recent_roots.len() > self.config.anchor_window_blocks.max(1) {
            if let Some(old) = self.recent_roots.pop_front() {
                let key = fr_to_bytes(&old);
                if let Some(c) = self.root_counts.get_mut(&key) {
                    *c -= 1;
                    if *c == 0 {
                        self.root_counts.remove(&key);
                    }
                }
            }
        }
    }

    /// The stateful checks of one transaction against the current state (and the nullifiers of
    /// earlier transactions of the same block, already inserted).
    /// The stateful checks a block would apply to `tx` if it were the next block's only
    /// transaction: what admission to the mempool refuses early.
    pub fn admissible(&self, tx: &Transaction) -> Result<(), Rejection> {
        self.check(tx, self.height + 1)
    }

    fn check(&self, tx: &Transaction, height: u64) -> Result<(), Rejection> {
        let b = tx.bundle();
        if b.network != self.config.network_id {
            return Err(Rejection::WrongNetwork);
        }
        if b.expiry_height < height {
            return Err(Rejection::Expired(b.expiry_height));
        }
        if !self.is_recent_root(&b.anchor) {
            return Err(Rejection::UnknownAnchor);
        }
        if b.nullifiers.iter().any(|nf| self.is_spent(nf)) {
            return Err(Rejection::DoubleSpend);
        }
        if b.auditor != self.policy.auditor {
            return Err(Rejection::WrongAuditor);
        }
        if matches!(tx.kind(), TxKind::Mint | TxKind::Redeem) {
            let allowed = tx
                .issuer()
                .and_then(|i| self.policy.issuers.get(i))
                .is_some_and(|assets| assets.contains(&b.asset));
            if !allowed {
                return Err(Rejection::UnauthorizedIssuer(b.asset.0));
            }
        }
        Ok(())
    }

    /// The checks enacting `g` next would apply: what admission refuses early.
    pub fn admissible_governance(&self, g: &GovernanceTx) -> Result<(), Rejection> {
        if g.seq != self.policy.seq {
            return Err(Rejection::GovernanceSequence {
                expected: self.policy.seq,
                got: g.seq,
            });
        }
        g.check_approvals(&self.config.governance, &self.config.network_id)
            .map_err(|e| Rejection::Unapproved(e.to_string()))?;
        match &g.action {
            GovernanceAction::SetValidators { validators } => {
                self.check_validator_change(validators)?
            }
            GovernanceAction::AddValidator { id, key, address } => {
                self.check_addition(*id, key, address)?
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether validator `id` with `key` at `address` can join now: no change is pending, the
    /// id and the key are new, the address is canonical, and the set stays within
    /// [`shoji_primitives::governance::MAX_VALIDATORS`]. One joiner at a time keeps the members
    /// already caught up a quorum of the next set by themselves (n ≥ 4, so f ≥ 1 there).
    fn check_addition(&self, id: u16, key: &[u8; 32], address: &str) -> Result<(), Rejection> {
        let bad = |m: &str| Err(Rejection::ValidatorSet(m.into()));
        if self.policy.next_validators.is_some() {
            return bad("a change is already pending");
        }
        if self.policy.validators.contains_key(&id) {
            return bad("the id is already a validator's");
        }
        if self.policy.validators.values().any(|k| k == key) {
            return bad("the key is already a validator's");
        }
        match ed25519_dalek::VerifyingKey::from_bytes(key) {
            Err(_) => return bad("the key is not an Ed25519 public key"),
            Ok(k) if k.is_weak() => return bad("the key is of small order (weak)"),
            Ok(_) => {}
        }
        if !shoji_primitives::governance::canonical_address(address) {
            return bad("the address is not IP:port");
        }
        if self.policy.validators.len() >= shoji_primitives::governance::MAX_VALIDATORS {
            return bad("the set is full");
        }
        Ok(())
    }

    /// Whether a change to `next` can be made now: none is pending, and `next` keeps at least
    /// [`MIN_VALIDATORS`] of the current validators with their keys and adds none (additions
    /// go one at a time through `AddValidator`, which carries the joiner's address).
    fn check_validator_change(&self, next: &Validators) -> Result<(), Rejection> {
        let bad = |m: &str| Err(Rejection::ValidatorSet(m.into()));
        if self.policy.next_validators.is_some() {
            return bad("a change is already pending");
        }
        if next.len() < MIN_VALIDATORS {
            return bad("fewer than 4 validators (n = 3f + 1 with f >= 1)");
        }
        if next
            .iter()
            .any(|(id, key)| self.policy.validators.get(id) != Some(key))
        {
            return bad(
                "this action only removes validators: add one with AddValidator, re-keying is refused",
            );
        }
        if *next == self.policy.validators {
            return bad("the set is unchanged");
        }
        Ok(())
    }

    fn enact(&mut self, g: &GovernanceTx, height: u64) -> Result<(), Rejection> {
        self.admissible_governance(g)?;
        let next = match &g.action {
            GovernanceAction::SetValidators { validators } => {
                self.check_validator_change(validators)?;
                Some(validators.clone())
            }
            GovernanceAction::AddValidator { id, key, address } => {
                self.check_addition(*id, key, address)?;
                self.policy.addresses.insert(*id, address.clone());
                let mut next = self.policy.validators.clone();
                next.insert(*id, *key);
                Some(next)
            }
            _ => None,
        };
        if let Some(next) = next {
            let k = self.config.checkpoint_interval.max(1);
            let last = height.div_ceil(k) * k + self.config.window_size;
            self.policy.next_validators = Some((last, next));
        }
        match &g.action {
            GovernanceAction::SetIssuer { issuer, assets } => {
                if assets.is_empty() {
                    self.policy.issuers.remove(issuer);
                } else {
                    self.policy.issuers.insert(*issuer, assets.clone());
                }
            }
            GovernanceAction::SetAuditor { auditor } => self.policy.auditor = *auditor,
            GovernanceAction::SetValidators { .. } | GovernanceAction::AddValidator { .. } => {}
        }
        self.policy.seq += 1;
        self.policy.chain = chain_governance(&self.policy.chain, &g.id());
        Ok(())
    }

    /// Applies a committed block without governance transactions (see
    /// [`Ledger::apply_block_with_governance`]).
    pub fn apply_block(
        &mut self,
        time_ms: u64,
        txs: &[Transaction],
        stateless: &[Result<(), TxError>],
    ) -> BlockOutcome {
        self.apply_block_with_governance(time_ms, txs, stateless, &[])
    }

    /// Applies a committed block. `time_ms` is the time its proposer gave it (Unix ms; 0 for a
    /// block without one); the block's time is `max(time_ms, time of the previous block)`, so
    /// block times never decrease whatever proposers claim. `stateless[i]` is the result of
    /// stateless validation of `txs[i]` (from [`shoji_verifier::Verifier::verify_transactions`]);
    /// lengths must match. The block's governance transactions `governance` are enacted after
    /// its shielded transactions, in order; a policy change therefore applies from the next
    /// block.
    pub fn apply_block_with_governance(
        &mut self,
        time_ms: u64,
        txs: &[Transaction],
        stateless: &[Result<(), TxError>],
        governance: &[GovernanceTx],
    ) -> BlockOutcome {
        let height = self.height + 1;
        let time_ms = time_ms.max(self.time_ms);
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut compact = Vec::new();
        let mut rejected = Vec::new();
        for (i, tx) in txs.iter().enumerate() {
            let outcome = match stateless.get(i) {
                Some(Err(e)) => TxOutcome::Rejected(Rejection::Stateless(e.to_string())),
                None => TxOutcome::Rejected(Rejection::Stateless("not verified".into())),
                Some(Ok(())) => match self.check(tx, height).and_then(|()| self.apply(tx)) {
                    Ok(first_leaf) => {
                        compact.push(CompactTx::of(tx));
                        TxOutcome::Applied { first_leaf }
                    }
                    Err(r) => TxOutcome::Rejected(r),
                },
            };
            if let TxOutcome::Rejected(why) = &outcome {
                rejected.push(CompactRejection::of(tx, why));
            }
            outcomes.push(outcome);
        }
        let pending_before = self.policy.next_validators.is_some();
        let governance: Vec<(TxId, TxOutcome)> = governance
            .iter()
            .map(|g| {
                let outcome = match self.enact(g, height) {
                    Ok(()) => TxOutcome::Enacted,
                    Err(r) => TxOutcome::Rejected(r),
                };
                (g.id(), outcome)
            })
            .collect();
        let validators_decided = match pending_before {
            false => self.policy.next_validators.clone(),
            true => None,
        };
        let epoch_started = match self.policy.next_validators.take() {
            Some((last, next)) if last == height => {
                self.policy.validators = next;
                self.policy.epoch += 1;
                self.policy.epoch_start = height;
                Some((self.policy.epoch, self.policy.validators.clone()))
            }
            other => {
                self.policy.next_validators = other;
                None
            }
        };
        self.height = height;
        self.time_ms = time_ms;
        let tree_root = self.frontier.root();
        self.tree_root = tree_root;
        self.remember_root(tree_root);
        let compact = CompactBlock {
            height,
            time_ms,
            txs: compact,
            tree_root,
            rejected,
        };
        self.scan_chain = chain_compact(&self.scan_chain, &compact.to_bytes());
        BlockOutcome {
            height,
            time_ms,
            outcomes,
            tree_root,
            state_root: self.state_root(),
            compact,
            governance,
            validators_decided,
            epoch_started,
        }
    }

    fn apply(&mut self, tx: &Transaction) -> Result<u64, Rejection> {
        let b = tx.bundle();
        if self.frontier.size() + 2 > shoji_primitives::tree::CAPACITY {
            return Err(Rejection::TreeFull);
        }
        for nf in &b.nullifiers {
            let bytes = fr_to_bytes(nf);
            self.nullifiers.insert(bytes);
            self.nullifier_chain = chain_nullifier(&self.nullifier_chain, &bytes);
        }
        let first_leaf = self.frontier.size();
        for cm in &b.commitments {
            self.frontier
                .append(*cm)
                .map_err(|_: TreeError| Rejection::TreeFull)?;
        }
        Ok(first_leaf)
    }

    /// Digest of the state ([`StateOpening::root`]): height, block time, tree size and root,
    /// the chains of revealed nullifiers, governance transactions and compact blocks, and the
    /// validator sets.
    pub fn state_root(&self) -> [u8; 32] {
        state_root(
            self.height,
            self.time_ms,
            self.frontier.size(),
            &self.tree_root,
            &self.nullifier_chain,
            &self.policy.chain,
            &self.scan_chain,
            &validators_commitment((self.policy.seq > 0).then_some(&self.policy)),
        )
    }

    /// The head: everything but the nullifier set.
    pub fn head(&self) -> LedgerHead {
        LedgerHead {
            height: self.height,
            time_ms: self.time_ms,
            frontier: self.frontier.clone(),
            recent_roots: self.recent_roots.iter().copied().collect(),
            nullifier_chain: self.nullifier_chain,
            scan_chain: self.scan_chain,
            policy: (self.policy.seq > 0).then(|| self.policy.clone()),
        }
    }

    /// Rebuilds a ledger from its configuration and a snapshot.
    pub fn restore(config: LedgerConfig, snapshot: LedgerSnapshot) -> Result<Self, RestoreError> {
        let LedgerSnapshot { head, nullifiers } = snapshot;
        let window = config.anchor_window_blocks.max(1);
        if head.recent_roots.is_empty() {
            return Err(RestoreError::NoRoots);
        }
        if head.recent_roots.len() > window {
            return Err(RestoreError::TooManyRoots {
                got: head.recent_roots.len(),
                window,
            });
        }
        let tree_root = head.frontier.root();
        if head.recent_roots.last() != Some(&tree_root) {
            return Err(RestoreError::RootMismatch);
        }
        let mut l = Self {
            tree_root,
            policy: head.policy.unwrap_or_else(|| Policy::genesis(&config)),
            config,
            height: head.height,
            time_ms: head.time_ms,
            frontier: head.frontier,
            nullifiers,
            recent_roots: VecDeque::new(),
            root_counts: BTreeMap::new(),
            nullifier_chain: head.nullifier_chain,
            scan_chain: head.scan_chain,
        };
        for r in head.recent_roots {
            l.remember_root(r);
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests;
