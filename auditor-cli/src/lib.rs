//! The auditor's core: decrypt every audit record designated to its key, report what was paid,
//! by whom, to whom, and disclose any one transfer with a proof anyone can check.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod disclosure_file;
pub mod records;

use shoji_ledger::CompactBlock;
use shoji_primitives::audit::disclosure::Disclosure;
use shoji_primitives::audit::{AuditPlaintext, AuditRecord, AuditSecretKey};
use shoji_primitives::encoding::{fr_to_hex, Reader};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{TxId, TxKind};
use shoji_primitives::Fr;
use std::collections::BTreeMap;

/// One transfer the auditor can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Transaction id.
    pub txid: TxId,
    /// Height of its block.
    pub height: u64,
    /// Its block's time (Unix milliseconds, agreed by the validators).
    pub time_ms: u64,
    /// Kind.
    pub kind: TxKind,
    /// The public amount of a mint or shield (brought in) or of a redeem or unshield (taken
    /// out); 0 for a transfer.
    pub public_value: Amount,
    /// What the record says.
    pub plaintext: AuditPlaintext,
    /// The record itself (for disclosure).
    pub record: AuditRecord,
}

/// What a report reads of one decrypted record: everything but the record itself (which only a
/// disclosure needs, and which is dear to decode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Transaction id.
    pub txid: TxId,
    /// Height of its block.
    pub height: u64,
    /// Its block's time (Unix milliseconds).
    pub time_ms: u64,
    /// Kind.
    pub kind: TxKind,
    /// The public amount of a mint, redeem, shield or unshield; 0 for a transfer.
    pub public_value: Amount,
    /// What the record says.
    pub plaintext: AuditPlaintext,
}

impl AuditEntry {
    /// The entry without its record.
    pub fn recorded(&self) -> Recorded {
        Recorded {
            txid: self.txid,
            height: self.height,
            time_ms: self.time_ms,
            kind: self.kind,
            public_value: self.public_value,
            plaintext: self.plaintext,
        }
    }
}

/// A payment in a report: one non-zero output that did not return to its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// Transaction id.
    pub txid: TxId,
    /// Height.
    pub height: u64,
    /// Block time (Unix milliseconds).
    pub time_ms: u64,
    /// Payer's name (or owner tag).
    pub from: String,
    /// Payee's name (or owner tag).
    pub to: String,
    /// Asset.
    pub asset: AssetId,
    /// Amount.
    pub amount: Amount,
}

/// Why a saved auditor state could not be read, or a block not scanned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditorError {
    /// A block out of order.
    #[error("expected block {expected}, got {got}")]
    OutOfOrder {
        /// The next height.
        expected: u64,
        /// The height given.
        got: u64,
    },
    /// The saved state is damaged.
    #[error("the auditor state is damaged: {0}")]
    Corrupt(&'static str),
    /// The saved state is malformed.
    #[error("the auditor state is malformed: {0}")]
    Encoding(#[from] shoji_primitives::encoding::EncodingError),
}

/// Version of [`Auditor::to_bytes`]: 2 holds the key alone (the records live in a database,
/// [`records`]); 1 also held every record, and is still read so that its records can be moved.
const STATE_VERSION: u8 = 2;

/// The auditor: its key, a directory of participant names, what it has decrypted.
pub struct Auditor {
    key: AuditSecretKey,
    directory: BTreeMap<[u8; 32], String>,
    entries: Vec<AuditEntry>,
    height: u64,
}

impl Auditor {
    /// An auditor with `key` and no names.
    pub fn new(key: AuditSecretKey) -> Self {
        Self {
            key,
            directory: BTreeMap::new(),
            entries: Vec::new(),
            height: 0,
        }
    }

    /// The auditor's key.
    pub fn key(&self) -> &AuditSecretKey {
        &self.key
    }

    /// Last scanned height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Continues scanning after `height` (what a records database says is scanned).
    pub fn resume_after(&mut self, height: u64) {
        self.height = height;
    }

    /// Takes the entries decrypted since the last call (for appending to a database).
    pub fn take_entries(&mut self) -> Vec<AuditEntry> {
        std::mem::take(&mut self.entries)
    }

    /// The entry of transaction `txid`, if it was designated to this key.
    pub fn entry(&self, txid: &TxId) -> Option<&AuditEntry> {
        self.entries.iter().find(|e| e.txid == *txid)
    }

    /// The name of the participant whose owner tag is `apk` (or a short tag).
    pub fn participant(&self, apk: &Fr) -> String {
        self.display(apk)
    }

    /// Names the participant whose owner tag is `apk`.
    pub fn name(&mut self, apk: Fr, name: &str) {
        self.directory.insert(
            shoji_primitives::encoding::fr_to_bytes(&apk),
            name.to_string(),
        );
    }

    fn display(&self, apk: &Fr) -> String {
        self.directory
            .get(&shoji_primitives::encoding::fr_to_bytes(apk))
            .cloned()
            .unwrap_or_else(|| format!("apk:{}", &fr_to_hex(apk)[..16]))
    }

    /// Scans the next block: decrypts every record designated to this key.
    pub fn scan_next(&mut self, block: &CompactBlock) -> Result<usize, AuditorError> {
        if block.height != self.height + 1 {
            return Err(AuditorError::OutOfOrder {
                expected: self.height + 1,
                got: block.height,
            });
        }
        let before = self.entries.len();
        self.scan(block);
        self.height = block.height;
        Ok(self.entries.len() - before)
    }

    /// Decrypts every record in `block` designated to this key (whatever its height), on
    /// every core: a scan is bound by decryption (a Jubjub scalar multiplication per record),
    /// not by storing what it finds. Entries keep block order.
    pub fn scan(&mut self, block: &CompactBlock) {
        use rayon::prelude::*;
        let pk = self.key.public_key();
        let key = &self.key;
        let found: Vec<AuditEntry> = block
            .txs
            .par_iter()
            .filter(|t| t.auditor == pk)
            .filter_map(|tx| {
                let plaintext = key.decrypt(&tx.audit).ok()?;
                Some(AuditEntry {
                    txid: tx.txid,
                    height: block.height,
                    time_ms: block.time_ms,
                    kind: tx.kind,
                    public_value: Amount(tx.value_in.0.max(tx.value_out.0)),
                    plaintext,
                    record: tx.audit,
                })
            })
            .collect();
        self.entries.extend(found);
    }

    /// Everything decrypted so far.
    pub fn entries(&self) -> &[AuditEntry] {
        &self.entries
    }

    /// Payments between heights `from..=to` among the entries in memory
    /// ([`Auditor::payments`]).
    pub fn report(&self, from: u64, to: u64) -> Vec<Payment> {
        let entries: Vec<Recorded> = self.in_range(from, to).map(AuditEntry::recorded).collect();
        self.payments(&entries)
    }

    /// Mints between heights `from..=to` among the entries in memory ([`Auditor::mints`]).
    pub fn issuances(&self, from: u64, to: u64) -> Vec<Payment> {
        let entries: Vec<Recorded> = self.in_range(from, to).map(AuditEntry::recorded).collect();
        self.mints(&entries)
    }

    fn in_range(&self, from: u64, to: u64) -> impl Iterator<Item = &AuditEntry> {
        self.entries
            .iter()
            .filter(move |e| (from..=to).contains(&e.height))
    }

    /// The payments of `entries`: the non-zero outputs of transfers, redeems and unshields to
    /// someone other than the sender and every non-zero output of a shield (value arriving in
    /// notes from an account; mints excluded, see [`Auditor::mints`]), and each redeem's or
    /// unshield's public amount, paid to `issuer` or `account`; in height order.
    pub fn payments(&self, entries: &[Recorded]) -> Vec<Payment> {
        let mut out = self.outputs(entries, |k| k != TxKind::Mint);
        for e in entries.iter().filter(|e| e.public_value.0 > 0) {
            let to = match e.kind {
                TxKind::Redeem => "issuer",
                TxKind::Unshield => "account",
                _ => continue,
            };
            out.push(Payment {
                txid: e.txid,
                height: e.height,
                time_ms: e.time_ms,
                from: self.display(&e.plaintext.sender),
                to: to.into(),
                asset: e.plaintext.asset,
                amount: e.public_value,
            });
        }
        out.sort_by_key(|p| p.height);
        out
    }

    /// The mints of `entries`: who received newly issued value.
    pub fn mints(&self, entries: &[Recorded]) -> Vec<Payment> {
        self.outputs(entries, |k| k == TxKind::Mint)
    }

    fn outputs(&self, entries: &[Recorded], kind: impl Fn(TxKind) -> bool) -> Vec<Payment> {
        let mut out = Vec::new();
        for e in entries.iter().filter(|e| kind(e.kind)) {
            let p = &e.plaintext;
            for j in 0..2 {
                let arriving = matches!(e.kind, TxKind::Mint | TxKind::Shield);
                if p.values[j].0 > 0 && (p.receivers[j] != p.sender || arriving) {
                    out.push(Payment {
                        txid: e.txid,
                        height: e.height,
                        time_ms: e.time_ms,
                        from: self.display(&p.sender),
                        to: self.display(&p.receivers[j]),
                        asset: p.asset,
                        amount: p.values[j],
                    });
                }
            }
        }
        out
    }

    /// The owner tag of the participant named `name` in the directory.
    pub fn named(&self, name: &str) -> Option<[u8; 32]> {
        self.directory
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(apk, _)| *apk)
    }

    /// A disclosure of one transfer, bound to its transaction id.
    pub fn disclose(
        &self,
        txid: &TxId,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Option<(AuditEntry, Disclosure)> {
        let e = self.entries.iter().find(|e| e.txid == *txid)?;
        Some((e.clone(), self.disclose_entry(e, rng)))
    }

    /// A disclosure of `entry` (one read back from a records database), bound to its id.
    pub fn disclose_entry(
        &self,
        entry: &AuditEntry,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Disclosure {
        self.key.disclose(&entry.record, &entry.txid.0, rng)
    }

    /// The key, for saving (inside an encrypted file); the records go to a database
    /// ([`records`]).
    ///
    /// The buffer is zeroized when dropped and allocated at its exact length, so no
    /// reallocation leaves a copy of the key behind in freed memory.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(1 + 32));
        out.push(STATE_VERSION);
        out.extend_from_slice(&self.key.to_bytes());
        out
    }

    /// Reads what [`Auditor::to_bytes`] wrote, or a version-1 state, whose records come back
    /// as the entries in memory (with its height) for the caller to move to a database. Each
    /// such record is decrypted again, so a saved state cannot claim a plaintext its record
    /// does not hold.
    pub fn from_bytes(bytes: &[u8]) -> Result<Auditor, AuditorError> {
        let mut r = Reader::new("auditor state", bytes);
        let version = r.u8()?;
        if version != STATE_VERSION && version != 1 {
            return Err(AuditorError::Corrupt("unsupported state version"));
        }
        let key = AuditSecretKey::from_bytes(&r.array()?)?;
        let mut a = Auditor::new(key);
        if version == STATE_VERSION {
            r.finish()?;
            return Ok(a);
        }
        a.height = r.u64()?;
        let n = r.u64()?;
        if n.saturating_mul(32 + 8 + 8 + 1 + 8 + 32 + 128) > r.remaining() as u64 {
            return Err(AuditorError::Corrupt("entry count exceeds the data"));
        }
        for _ in 0..n {
            let txid = TxId(r.array()?);
            let height = r.u64()?;
            let time_ms = r.u64()?;
            let kind = TxKind::from_u8(r.u8()?)?;
            let public_value = Amount(r.u64()?);
            let record = AuditRecord::read(&mut r)?;
            let plaintext = a
                .key
                .decrypt(&record)
                .map_err(|_| AuditorError::Corrupt("a saved record does not decrypt"))?;
            a.entries.push(AuditEntry {
                txid,
                height,
                time_ms,
                kind,
                public_value,
                plaintext,
                record,
            });
        }
        r.finish()?;
        Ok(a)
    }
}
