//! The auditor's core: decrypt every audit record designated to its key, read every
//! confidential-account transfer whose amount is encrypted to its account-tier key (derived
//! from the same secret), report what was paid, by whom, to whom, across both tiers, and
//! disclose any one note transfer with a proof anyone can check.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod account_disclosure;
pub mod disclosure_file;
pub mod records;

use shoji_confidential::Role;
use shoji_ledger::CompactBlock;
use shoji_primitives::account::AccountTx;
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

/// What the auditor read of one applied confidential-account transaction: a transfer whose
/// amount it decrypted with its account-tier key, or an issuer's mint into an account or
/// redemption from one (public amounts). Account keys are public; the amount of a transfer is
/// what the auditor alone (with the two parties) can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// Transaction id.
    pub txid: TxId,
    /// Height of its block.
    pub height: u64,
    /// Its block's time (Unix milliseconds).
    pub time_ms: u64,
    /// The account transaction kind byte (transfer, mint or redeem; see
    /// [`AccountRecord::kind_name`]).
    pub kind: u8,
    /// The asset.
    pub asset: AssetId,
    /// The paying account's key; `None` for a mint (the issuer).
    pub from: Option<[u8; 32]>,
    /// The paid account's key; `None` for a redemption (the issuer).
    pub to: Option<[u8; 32]>,
    /// The amount.
    pub amount: Amount,
}

impl AccountRecord {
    /// `account_transfer`, `account_mint` or `account_redeem`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            shoji_primitives::account::MINT_KIND => "account_mint",
            shoji_primitives::account::REDEEM_KIND => "account_redeem",
            _ => "account_transfer",
        }
    }

    /// What the auditor reads of `tx`, applied in `block`: `None` for an opening, and for a
    /// transfer whose amount is not encrypted to `key` (designated to another auditor).
    pub fn of(
        block: &CompactBlock,
        tx: &AccountTx,
        key: &shoji_confidential::SecretKey,
    ) -> Option<AccountRecord> {
        let (from, to, amount) = match tx {
            AccountTx::Open(_) => return None,
            AccountTx::Transfer(t) => {
                let h = &t.header;
                if h.auditor != key.public() {
                    return None;
                }
                let amount = t.amount.decrypt(Role::Auditor, key).ok()?;
                (
                    Some(h.sender.to_bytes()),
                    Some(h.receiver.to_bytes()),
                    amount,
                )
            }
            AccountTx::Mint(m) => (None, Some(m.account.to_bytes()), m.value.0),
            AccountTx::Redeem(r) => (Some(r.header.account.to_bytes()), None, r.header.value.0),
        };
        Some(AccountRecord {
            txid: tx.id(),
            height: block.height,
            time_ms: block.time_ms,
            kind: tx.kind(),
            asset: tx.asset(),
            from,
            to,
            amount: Amount(amount),
        })
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
    /// The account-tier key, derived from `key`'s secret.
    account_key: shoji_confidential::SecretKey,
    directory: BTreeMap<[u8; 32], String>,
    /// Names of account keys.
    accounts_directory: BTreeMap<[u8; 32], String>,
    entries: Vec<AuditEntry>,
    account_records: Vec<AccountRecord>,
    height: u64,
}

impl Auditor {
    /// An auditor with `key` and no names.
    pub fn new(key: AuditSecretKey) -> Self {
        Self {
            account_key: shoji_confidential::SecretKey::auditor(&key.to_bytes()),
            key,
            directory: BTreeMap::new(),
            accounts_directory: BTreeMap::new(),
            entries: Vec::new(),
            account_records: Vec::new(),
            height: 0,
        }
    }

    /// The account-tier key: what a network's `account_auditor_public_key` names (its public
    /// half), derived from the same secret as the note-tier key.
    pub fn account_key(&self) -> &shoji_confidential::SecretKey {
        &self.account_key
    }

    /// Takes the account records read since the last call (for appending to a database).
    pub fn take_account_records(&mut self) -> Vec<AccountRecord> {
        std::mem::take(&mut self.account_records)
    }

    /// Names the account whose key is `key` (encoded).
    pub fn name_account(&mut self, key: [u8; 32], name: &str) {
        self.accounts_directory.insert(key, name.to_string());
    }

    /// The name of the account `key` (or a short form of the key).
    pub fn account_participant(&self, key: &[u8; 32]) -> String {
        self.accounts_directory
            .get(key)
            .cloned()
            .unwrap_or_else(|| {
                format!(
                    "acct:{}",
                    &shoji_primitives::encoding::hex_encode(key)[..16]
                )
            })
    }

    /// The payments of account records: a transfer from one account to another, a mint from
    /// `issuer`, a redemption to `issuer`; with each row's kind name.
    pub fn account_payments(&self, records: &[AccountRecord]) -> Vec<(&'static str, Payment)> {
        let party = |k: &Option<[u8; 32]>| match k {
            Some(k) => self.account_participant(k),
            None => "issuer".to_string(),
        };
        records
            .iter()
            .map(|r| {
                (
                    r.kind_name(),
                    Payment {
                        txid: r.txid,
                        height: r.height,
                        time_ms: r.time_ms,
                        from: party(&r.from),
                        to: party(&r.to),
                        asset: r.asset,
                        amount: r.amount,
                    },
                )
            })
            .collect()
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

    /// Scans the next block: decrypts every record designated to this key and reads its
    /// account transactions; returns how many it found.
    pub fn scan_next(&mut self, block: &CompactBlock) -> Result<usize, AuditorError> {
        if block.height != self.height + 1 {
            return Err(AuditorError::OutOfOrder {
                expected: self.height + 1,
                got: block.height,
            });
        }
        let before = self.entries.len() + self.account_records.len();
        self.scan(block);
        self.height = block.height;
        Ok(self.entries.len() + self.account_records.len() - before)
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
        let accounts = block
            .accounts
            .iter()
            .filter_map(|tx| AccountRecord::of(block, tx, &self.account_key));
        self.account_records.extend(accounts);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use shoji_confidential::{Ciphertext, SecretKey};
    use shoji_primitives::account::{RedeemHeader, TransferHeader};

    /// The auditor reads the amount of a transfer designated to its account-tier key, the
    /// public amounts of mints and redemptions, and nothing of a transfer designated to
    /// another auditor or of an opening.
    #[test]
    fn the_auditor_reads_the_account_transfers_designated_to_it() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let net = [4; 32];
        let mut auditor = Auditor::new(AuditSecretKey::random(&mut rng));
        let other = SecretKey::auditor(&[8; 32]).public();
        let (alice, bob) = (SecretKey::account(&[1; 32]), SecretKey::account(&[2; 32]));
        let asset = AssetId(840);
        let header = |to: &shoji_confidential::PublicKey| TransferHeader {
            asset,
            sender: alice.public(),
            receiver: bob.public(),
            auditor: *to,
            sequence: 0,
            credits: 1,
            expiry_height: 9,
            spendable: Ciphertext::public(1000),
        };
        let ours = auditor.account_key().public();
        let issuer = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let redeem = RedeemHeader {
            asset,
            account: bob.public(),
            issuer: issuer.verifying_key().to_bytes(),
            value: Amount(40),
            sequence: 0,
            credits: 1,
            expiry_height: 9,
            spendable: Ciphertext::public(100),
        };
        let txs = vec![
            AccountTx::open(&net, &alice, asset, &mut rng),
            AccountTx::transfer(&net, &alice, header(&ours), 1000, 300, &mut rng).unwrap(),
            AccountTx::transfer(&net, &alice, header(&other), 1000, 77, &mut rng).unwrap(),
            AccountTx::mint(&net, &issuer, asset, alice.public(), Amount(1000), [0; 32]),
            AccountTx::redeem(&net, &bob, redeem, 100, &mut rng).unwrap(),
        ];
        let block = CompactBlock {
            height: 1,
            time_ms: 7,
            txs: Vec::new(),
            tree_root: Fr::from(0u64),
            rejected: Vec::new(),
            accounts: txs.clone(),
        };
        assert_eq!(auditor.scan_next(&block).unwrap(), 3);
        let read = auditor.take_account_records();
        type Row<'a> = (&'a str, Option<[u8; 32]>, Option<[u8; 32]>, u64);
        let seen: Vec<Row> = read
            .iter()
            .map(|r| (r.kind_name(), r.from, r.to, r.amount.0))
            .collect();
        let (a, b) = (alice.public().to_bytes(), bob.public().to_bytes());
        assert_eq!(
            seen,
            vec![
                ("account_transfer", Some(a), Some(b), 300),
                ("account_mint", None, Some(a), 1000),
                ("account_redeem", Some(b), None, 40),
            ]
        );
        assert_eq!(read[0].txid, txs[1].id());
        auditor.name_account(a, "Alice");
        let payments = auditor.account_payments(&read);
        assert_eq!(payments[0].1.from, "Alice");
        assert!(payments[0].1.to.starts_with("acct:"));
        assert_eq!(payments[2].1.to, "issuer");
    }
}
