//! The clients' read model: a block as wallets and auditors scan it ([`CompactBlock`]), one
//! encoding, hashed into the scan chain the state root certifies.

use crate::*;
use shoji_primitives::account::AccountTx;
use shoji_primitives::audit::{AuditPublicKey, AuditRecord};
use shoji_primitives::encoding::{fr_to_bytes, EncodingError, Reader};
use shoji_primitives::encryption::{NoteCiphertext, NOTE_CIPHERTEXT_BYTES};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{Transaction, TxId, TxKind};
use shoji_primitives::Fr;

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
    /// The confidential account's key, for a shield (debited `value_in`) or an unshield
    /// (credited `value_out`); `None` for the other kinds.
    pub account: Option<[u8; 32]>,
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
            account: tx.account_side().map(|(key, _)| key.to_bytes()),
        }
    }

    /// Whether a compact transaction of `kind` carries an account key.
    fn has_account(kind: TxKind) -> bool {
        matches!(kind, TxKind::Shield | TxKind::Unshield)
    }
}

impl CompactTx {
    /// Encoded length, without the account key a shield or unshield adds.
    pub const BYTES: usize = 32 + 1 + 3 * 8 + 4 * 32 + 2 * NOTE_CIPHERTEXT_BYTES + 32 + 32 + 4 * 32;

    /// `txid ‖ kind ‖ asset ‖ value_in ‖ value_out ‖ nf_0 ‖ nf_1 ‖ cm_0 ‖ cm_1 ‖ output_0 ‖
    /// output_1 ‖ auditor ‖ E ‖ c_0..c_3`, then `account(32)` for a shield or an unshield
    /// (integers little-endian).
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
        self.audit.write(&mut out);
        if let Some(account) = &self.account {
            out.extend_from_slice(account);
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
        let audit = AuditRecord::read(r)?;
        let account = match Self::has_account(kind) {
            true => Some(r.array()?),
            false => None,
        };
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
            audit,
            account,
        })
    }
}

impl CompactBlock {
    /// Length of the encoding before the transactions.
    pub const HEADER_BYTES: usize = 8 + 8 + 32 + 4;

    /// `height ‖ time_ms ‖ tree_root ‖ count:u32 ‖ txs ‖ rejected_count:u32 ‖ rejected ‖
    /// accounts_count:u32 ‖ account transactions` (integers little-endian; each account
    /// transaction in its own encoding, whose kind byte gives its length).
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
        out.extend_from_slice(&(self.accounts.len() as u32).to_le_bytes());
        for a in &self.accounts {
            out.extend_from_slice(&a.to_bytes());
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
        if r.remaining()
            < rejected_count
                .saturating_mul(CompactRejection::BYTES)
                .saturating_add(4)
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
        let accounts_count = u32::from_le_bytes(r.array()?) as usize;
        if r.remaining() < accounts_count.saturating_mul(2) {
            return Err(EncodingError::Invalid(
                "compact block length does not match its counts",
            ));
        }
        let accounts = (0..accounts_count)
            .map(|_| {
                let rest = r.rest();
                let len = rest
                    .get(1)
                    .and_then(|&kind| AccountTx::encoded_len(kind))
                    .ok_or(EncodingError::Invalid("compact block account transaction"))?;
                let tx = AccountTx::from_bytes(
                    rest.get(..len)
                        .ok_or(EncodingError::Invalid("compact block account transaction"))?,
                )?;
                r = Reader::new("compact block", &rest[len..]);
                Ok(tx)
            })
            .collect::<Result<Vec<_>, EncodingError>>()?;
        r.finish()?;
        Ok(Self {
            height,
            time_ms,
            txs,
            tree_root,
            rejected,
            accounts,
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
    /// The block's transactions that were not applied, in block order (shielded, then
    /// account transactions).
    pub rejected: Vec<CompactRejection>,
    /// Applied account transactions, in block order, whole: wallets track their accounts and
    /// auditors read the amounts from them.
    pub accounts: Vec<AccountTx>,
}
