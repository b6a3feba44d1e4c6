//! The disclosure file: one transaction's audit record, what it decrypts to and the proof that
//! they match, as JSON that anyone holding the auditor's public key checks against the chain
//! (docs/protocol/audit.md, "The disclosure"). The auditor's names for the participants ride
//! along as labels; they are not proven.

use crate::AuditEntry;
use serde::{Deserialize, Serialize};
use shoji_ledger::CompactBlock;
use shoji_primitives::audit::disclosure::Disclosure;
use shoji_primitives::audit::{AuditPlaintext, AuditPublicKey, AuditRecord};
use shoji_primitives::encoding::{fr_from_bytes, fr_to_bytes, hex_decode, hex_encode, Reader};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{TxId, TxKind};

/// The format name every disclosure file carries.
pub const DISCLOSURE_FORMAT: &str = "shoji-disclosure-v1";

/// A disclosure file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DisclosureFile {
    /// [`DISCLOSURE_FORMAT`].
    pub format: String,
    /// The transaction id, hex.
    pub txid: String,
    /// The height of its block.
    pub height: u64,
    /// Its kind ([`TxKind::name`]).
    pub kind: String,
    /// The auditor key the record is designated to, hex.
    pub auditor_public_key: String,
    /// The record, hex of its one encoding ([`AuditRecord::to_bytes`]).
    pub record: String,
    /// The proof that the record decrypts to `claim`, hex ([`Disclosure::to_bytes`]).
    pub proof: String,
    /// What the record decrypts to.
    pub claim: Claim,
    /// The auditor's names for the participants (not proven).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<serde_json::Value>,
}

/// The disclosed plaintext: owner tags (hex), amounts and asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The sender's owner tag.
    pub sender: String,
    /// The receivers' owner tags.
    pub receivers: [String; 2],
    /// The two outputs' amounts.
    pub amounts: [u64; 2],
    /// The asset.
    pub asset: u64,
}

/// Why a disclosure file does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureFileError {
    /// Another format, or a field that does not decode.
    #[error("malformed disclosure: {0}")]
    Malformed(String),
    /// The block does not hold the transaction.
    #[error("block {height} holds no transaction {txid}")]
    NotInBlock {
        /// The block.
        height: u64,
        /// The transaction.
        txid: TxId,
    },
    /// The transaction's record is designated to another key.
    #[error("the transaction is designated to another auditor key")]
    OtherAuditor,
    /// The quoted record is not the transaction's.
    #[error("the quoted record is not the transaction's record")]
    OtherRecord,
    /// The kind is not the transaction's.
    #[error("the disclosure calls the transaction a {claimed}, but it is a {actual}")]
    Kind {
        /// What the file says.
        claimed: String,
        /// What the block says.
        actual: &'static str,
    },
    /// The proof does not show that the record decrypts to the claim.
    #[error("{0}")]
    Proof(String),
}

fn malformed(what: &str, e: impl std::fmt::Display) -> DisclosureFileError {
    DisclosureFileError::Malformed(format!("{what}: {e}"))
}

impl Claim {
    /// The claim of a plaintext.
    pub fn of(p: &AuditPlaintext) -> Claim {
        Claim {
            sender: hex_encode(&fr_to_bytes(&p.sender)),
            receivers: [
                hex_encode(&fr_to_bytes(&p.receivers[0])),
                hex_encode(&fr_to_bytes(&p.receivers[1])),
            ],
            amounts: [p.values[0].0, p.values[1].0],
            asset: p.asset.0,
        }
    }

    /// The plaintext it claims.
    pub fn plaintext(&self) -> Result<AuditPlaintext, DisclosureFileError> {
        let f = |s: &str| {
            hex_decode("owner tag", s)
                .and_then(|b| fr_from_bytes("owner tag", &b))
                .map_err(|e| malformed("owner tag", e))
        };
        Ok(AuditPlaintext {
            sender: f(&self.sender)?,
            receivers: [f(&self.receivers[0])?, f(&self.receivers[1])?],
            values: [Amount(self.amounts[0]), Amount(self.amounts[1])],
            asset: AssetId(self.asset),
        })
    }
}

impl DisclosureFile {
    /// The file disclosing `entry`, designated to `key`, with its `proof` and the auditor's
    /// `names` for the participants.
    pub fn new(
        entry: &AuditEntry,
        key: &AuditPublicKey,
        proof: &Disclosure,
        names: Option<serde_json::Value>,
    ) -> DisclosureFile {
        DisclosureFile {
            format: DISCLOSURE_FORMAT.into(),
            txid: entry.txid.to_string(),
            height: entry.height,
            kind: TxKind::name(entry.kind).into(),
            auditor_public_key: hex_encode(&key.to_bytes()),
            record: hex_encode(&entry.record.to_bytes()),
            proof: hex_encode(&proof.to_bytes()),
            claim: Claim::of(&entry.plaintext),
            names,
        }
    }

    /// The transaction id it names.
    pub fn txid(&self) -> Result<TxId, DisclosureFileError> {
        let b = hex_decode("transaction id", self.txid.trim())
            .map_err(|e| malformed("transaction id", e))?;
        let id: [u8; 32] = b
            .try_into()
            .map_err(|_| malformed("transaction id", "not 32 bytes"))?;
        Ok(TxId(id))
    }

    /// Checks the file against `block`, the certified compact block at [`DisclosureFile::height`]:
    /// the block holds the transaction, designated to the key the file names, with the record
    /// it quotes and of the kind it says, and the proof shows that the record decrypts to the
    /// claim. Returns the proven plaintext.
    pub fn check(&self, block: &CompactBlock) -> Result<AuditPlaintext, DisclosureFileError> {
        if self.format != DISCLOSURE_FORMAT {
            return Err(malformed("format", format!("unknown {:?}", self.format)));
        }
        let txid = self.txid()?;
        let key = hex_decode("auditor public key", &self.auditor_public_key)
            .map_err(|e| malformed("auditor public key", e))?;
        let pk =
            AuditPublicKey::from_bytes(&key).map_err(|e| malformed("auditor public key", e))?;
        let raw = hex_decode("record", &self.record).map_err(|e| malformed("record", e))?;
        let mut r = Reader::new("audit record", &raw);
        let record = AuditRecord::read(&mut r).map_err(|e| malformed("record", e))?;
        r.finish().map_err(|e| malformed("record", e))?;
        let proof = hex_decode("proof", &self.proof)
            .map_err(|e| malformed("proof", e))
            .and_then(|b| Disclosure::from_bytes(&b).map_err(|e| malformed("proof", e)))?;
        let claimed = self.claim.plaintext()?;
        let tx = block
            .txs
            .iter()
            .find(|t| t.txid == txid)
            .filter(|_| block.height == self.height)
            .ok_or(DisclosureFileError::NotInBlock {
                height: self.height,
                txid,
            })?;
        if tx.auditor != pk {
            return Err(DisclosureFileError::OtherAuditor);
        }
        if tx.audit != record {
            return Err(DisclosureFileError::OtherRecord);
        }
        if self.kind != TxKind::name(tx.kind) {
            return Err(DisclosureFileError::Kind {
                claimed: self.kind.clone(),
                actual: TxKind::name(tx.kind),
            });
        }
        proof
            .verify_claim(&pk, &record, &txid.0, &claimed)
            .map_err(|e| DisclosureFileError::Proof(e.to_string()))?;
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Auditor;
    use shoji_ledger::CompactTx;
    use shoji_primitives::audit::{encrypt, AuditEphemeral, AuditSecretKey};
    use shoji_primitives::encryption::{NoteCiphertext, NOTE_CIPHERTEXT_BYTES};
    use shoji_primitives::Fr;

    /// A block holding one transfer whose record is designated to `key`.
    fn block(key: &AuditSecretKey) -> CompactBlock {
        let rng = &mut rand_core::OsRng;
        let plaintext = AuditPlaintext {
            sender: Fr::from(11u64),
            receivers: [Fr::from(12u64), Fr::from(11u64)],
            values: [Amount(250), Amount(750)],
            asset: AssetId(840),
        };
        let tx = CompactTx {
            txid: TxId([7; 32]),
            kind: TxKind::Transfer,
            asset: AssetId(0),
            value_in: Amount(0),
            value_out: Amount(0),
            nullifiers: [Fr::from(1u64), Fr::from(2u64)],
            commitments: [Fr::from(3u64), Fr::from(4u64)],
            outputs: [NoteCiphertext::from_bytes(&[0; NOTE_CIPHERTEXT_BYTES]); 2],
            auditor: key.public_key(),
            audit: encrypt(&key.public_key(), &plaintext, &AuditEphemeral::random(rng)),
            account: None,
        };
        CompactBlock {
            height: 5,
            time_ms: 1_700_000_000_000,
            txs: vec![tx],
            tree_root: Fr::from(9u64),
            rejected: Vec::new(),
            accounts: Vec::new(),
        }
    }

    /// A disclosure the auditor writes checks against the block; each field changed is
    /// refused with the reason, and it survives its JSON form.
    #[test]
    fn a_disclosure_checks_against_its_block_and_every_tampering_is_refused() {
        let key = AuditSecretKey::random(&mut rand_core::OsRng);
        let block = block(&key);
        let mut auditor = Auditor::new(key.clone());
        auditor.scan(&block);
        let (entry, proof) = auditor
            .disclose(&TxId([7; 32]), &mut rand_core::OsRng)
            .expect("designated to this key");
        let file = DisclosureFile::new(&entry, &key.public_key(), &proof, None);
        let json = serde_json::to_string(&file).expect("json");
        let file: DisclosureFile = serde_json::from_str(&json).expect("parses");
        assert_eq!(file.check(&block).expect("valid"), entry.plaintext);

        let mut f = file.clone();
        f.claim.amounts[0] = 251;
        assert!(matches!(
            f.check(&block),
            Err(DisclosureFileError::Proof(_))
        ));
        let mut f = file.clone();
        f.claim.receivers[0] = f.claim.sender.clone();
        assert!(matches!(
            f.check(&block),
            Err(DisclosureFileError::Proof(_))
        ));
        let mut f = file.clone();
        f.kind = "mint".into();
        assert!(matches!(
            f.check(&block),
            Err(DisclosureFileError::Kind { .. })
        ));
        let mut f = file.clone();
        f.height = 6;
        assert!(matches!(
            f.check(&block),
            Err(DisclosureFileError::NotInBlock { .. })
        ));
        let other = AuditSecretKey::random(&mut rand_core::OsRng).public_key();
        let mut f = file.clone();
        f.auditor_public_key = hex_encode(&other.to_bytes());
        assert!(matches!(
            f.check(&block),
            Err(DisclosureFileError::OtherAuditor)
        ));
        let mut f = file.clone();
        let mut record = block.txs[0].audit;
        record.ciphertext[0] += Fr::from(1u64);
        f.record = hex_encode(&record.to_bytes());
        assert!(matches!(
            f.check(&block),
            Err(DisclosureFileError::OtherRecord)
        ));
        let mut f = file.clone();
        f.format = "shoji-disclosure-v0".into();
        assert!(matches!(
            f.check(&block),
            Err(DisclosureFileError::Malformed(_))
        ));
        let mut f = file;
        let flipped = if f.proof.starts_with('0') { "1" } else { "0" };
        f.proof.replace_range(0..1, flipped);
        assert!(f.check(&block).is_err());
    }
}
