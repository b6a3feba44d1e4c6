//! The auditor's core: decrypt every audit record designated to its key, report what was paid,
//! by whom, to whom, and disclose any one transfer with a proof anyone can check.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use shoji_ledger::CompactBlock;
use shoji_primitives::audit::disclosure::Disclosure;
use shoji_primitives::audit::{AuditPlaintext, AuditRecord, AuditSecretKey};
use shoji_primitives::encoding::fr_to_hex;
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
    /// Kind.
    pub kind: TxKind,
    /// What the record says.
    pub plaintext: AuditPlaintext,
    /// The record itself (for disclosure).
    pub record: AuditRecord,
}

/// A payment in a report: one non-zero output that did not return to its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// Transaction id.
    pub txid: TxId,
    /// Height.
    pub height: u64,
    /// Payer's name (or owner tag).
    pub from: String,
    /// Payee's name (or owner tag).
    pub to: String,
    /// Asset.
    pub asset: AssetId,
    /// Amount.
    pub amount: Amount,
}

/// The auditor: its key, a directory of participant names, what it has decrypted.
pub struct Auditor {
    key: AuditSecretKey,
    directory: BTreeMap<[u8; 32], String>,
    entries: Vec<AuditEntry>,
}

impl Auditor {
    /// An auditor with `key` and no names.
    pub fn new(key: AuditSecretKey) -> Self {
        Self {
            key,
            directory: BTreeMap::new(),
            entries: Vec::new(),
        }
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

    /// Decrypts every record in `block` designated to this key.
    pub fn scan(&mut self, block: &CompactBlock) {
        let pk = self.key.public_key();
        for tx in block.txs.iter().filter(|t| t.auditor == pk) {
            if let Ok(plaintext) = self.key.decrypt(&tx.audit) {
                self.entries.push(AuditEntry {
                    txid: tx.txid,
                    height: block.height,
                    kind: tx.kind,
                    plaintext,
                    record: tx.audit,
                });
            }
        }
    }

    /// Everything decrypted so far.
    pub fn entries(&self) -> &[AuditEntry] {
        &self.entries
    }

    /// Payments between heights `from..=to`: the non-zero outputs of transfers (mints excluded,
    /// see [`Auditor::issuances`]) to someone other than the sender.
    pub fn report(&self, from: u64, to: u64) -> Vec<Payment> {
        self.outputs(from, to, |k| k != TxKind::Mint)
    }

    /// Mints between heights `from..=to`: who received newly issued value.
    pub fn issuances(&self, from: u64, to: u64) -> Vec<Payment> {
        self.outputs(from, to, |k| k == TxKind::Mint)
    }

    fn outputs(&self, from: u64, to: u64, kind: impl Fn(TxKind) -> bool) -> Vec<Payment> {
        let mut out = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| (from..=to).contains(&e.height) && kind(e.kind))
        {
            let p = &e.plaintext;
            for j in 0..2 {
                if p.values[j].0 > 0 && (p.receivers[j] != p.sender || e.kind == TxKind::Mint) {
                    out.push(Payment {
                        txid: e.txid,
                        height: e.height,
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

    /// A disclosure of one transfer, bound to its transaction id.
    pub fn disclose(
        &self,
        txid: &TxId,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> Option<(AuditEntry, Disclosure)> {
        let e = self.entries.iter().find(|e| e.txid == *txid)?;
        Some((e.clone(), self.key.disclose(&e.record, &txid.0, rng)))
    }
}
