//! The disclosure of a confidential-account transfer: the amount the auditor read and a proof,
//! made with its account-tier key, that the transfer's auditor handles hold it, as JSON anyone
//! checks against the certified block (docs/protocol/accounts.md, "The auditor"). The accounts
//! are public in the transaction; the file names them, and the check compares them with the
//! block. The auditor's names for them ride along as labels; they are not proven.

use crate::disclosure_file::DisclosureFileError;
use serde::{Deserialize, Serialize};
use shoji_confidential::{disclose, PublicKey, SecretKey};
use shoji_ledger::CompactBlock;
use shoji_primitives::account::{AccountTx, Transfer};
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::tx::TxId;

/// The format name every account disclosure file carries.
pub const ACCOUNT_DISCLOSURE_FORMAT: &str = "shoji-account-disclosure-v1";

/// A disclosure of one account transfer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountDisclosureFile {
    /// [`ACCOUNT_DISCLOSURE_FORMAT`].
    pub format: String,
    /// The transaction id, hex.
    pub txid: String,
    /// The height of its block.
    pub height: u64,
    /// The auditor's account-tier key the amount is encrypted to, hex.
    pub auditor_account_key: String,
    /// The paying account's key, hex.
    pub sender: String,
    /// The paid account's key, hex.
    pub receiver: String,
    /// The asset.
    pub asset: u64,
    /// The amount.
    pub amount: u64,
    /// The proof that the transfer's auditor handles hold `amount`, hex
    /// ([`disclose::DisclosureProof::to_bytes`]), made over the transaction id.
    pub proof: String,
    /// The auditor's names for the two accounts (not proven).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<serde_json::Value>,
}

fn malformed(what: &str, e: impl std::fmt::Display) -> DisclosureFileError {
    DisclosureFileError::Malformed(format!("{what}: {e}"))
}

fn key(what: &'static str, hex: &str) -> Result<PublicKey, DisclosureFileError> {
    let b = hex_decode(what, hex).map_err(|e| malformed(what, e))?;
    let b: [u8; 32] = b.try_into().map_err(|_| malformed(what, "not 32 bytes"))?;
    PublicKey::from_bytes(&b).map_err(|e| malformed(what, e))
}

/// The account transfer `txid` in `block`, if it holds one.
pub fn find_transfer<'a>(block: &'a CompactBlock, txid: &TxId) -> Option<&'a Transfer> {
    block.accounts.iter().find_map(|tx| match tx {
        AccountTx::Transfer(t) if tx.id() == *txid => Some(t.as_ref()),
        _ => None,
    })
}

impl AccountDisclosureFile {
    /// Discloses the transfer `txid` of `block` with the auditor's account-tier `key`: decrypts
    /// its amount and proves it.
    pub fn new(
        block: &CompactBlock,
        txid: &TxId,
        key: &SecretKey,
        names: Option<serde_json::Value>,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<AccountDisclosureFile, DisclosureFileError> {
        let t = find_transfer(block, txid).ok_or(DisclosureFileError::NotInBlock {
            height: block.height,
            txid: *txid,
        })?;
        let h = &t.header;
        if h.auditor != key.public() {
            return Err(DisclosureFileError::OtherAuditor);
        }
        let (amount, proof) = disclose::disclose(key, &txid.0, &t.amount, rng)
            .map_err(|e| DisclosureFileError::Proof(e.to_string()))?;
        Ok(AccountDisclosureFile {
            format: ACCOUNT_DISCLOSURE_FORMAT.into(),
            txid: txid.to_string(),
            height: block.height,
            auditor_account_key: hex_encode(&key.public().to_bytes()),
            sender: hex_encode(&h.sender.to_bytes()),
            receiver: hex_encode(&h.receiver.to_bytes()),
            asset: h.asset.0,
            amount,
            proof: hex_encode(&proof.to_bytes()),
            names,
        })
    }

    /// The transaction id it names.
    pub fn txid(&self) -> Result<TxId, DisclosureFileError> {
        let b = hex_decode("transaction id", self.txid.trim())
            .map_err(|e| malformed("transaction id", e))?;
        Ok(TxId(b.try_into().map_err(|_| {
            malformed("transaction id", "not 32 bytes")
        })?))
    }

    /// Checks the file against `block`, the certified compact block at its height: the block
    /// holds the transfer, its accounts and asset are the file's, its amount is encrypted to
    /// the key the file names, and the proof shows the auditor handles hold `amount`.
    pub fn check(&self, block: &CompactBlock) -> Result<(), DisclosureFileError> {
        if self.format != ACCOUNT_DISCLOSURE_FORMAT {
            return Err(malformed("format", format!("unknown {:?}", self.format)));
        }
        let txid = self.txid()?;
        let auditor = key("auditor account key", &self.auditor_account_key)?;
        let (sender, receiver) = (
            key("sender", &self.sender)?,
            key("receiver", &self.receiver)?,
        );
        let proof = hex_decode("proof", &self.proof)
            .map_err(|e| malformed("proof", e))
            .and_then(|b| {
                disclose::DisclosureProof::from_bytes(&b).map_err(|e| malformed("proof", e))
            })?;
        let t = find_transfer(block, &txid)
            .filter(|_| block.height == self.height)
            .ok_or(DisclosureFileError::NotInBlock {
                height: self.height,
                txid,
            })?;
        let h = &t.header;
        if h.auditor != auditor {
            return Err(DisclosureFileError::OtherAuditor);
        }
        if h.sender != sender || h.receiver != receiver || h.asset.0 != self.asset {
            return Err(DisclosureFileError::Proof(
                "the accounts or the asset are not the transfer's".into(),
            ));
        }
        disclose::verify_one(&txid.0, &auditor, &t.amount, self.amount, &proof)
            .map_err(|e| DisclosureFileError::Proof(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use shoji_confidential::Ciphertext;
    use shoji_primitives::account::TransferHeader;
    use shoji_primitives::note::AssetId;
    use shoji_primitives::Fr;

    #[test]
    fn an_account_disclosure_checks_against_its_block_and_every_change_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let auditor = SecretKey::auditor(&[7; 32]);
        let (alice, bob) = (SecretKey::account(&[1; 32]), SecretKey::account(&[2; 32]));
        let header = TransferHeader {
            asset: AssetId(840),
            sender: alice.public(),
            receiver: bob.public(),
            auditor: auditor.public(),
            sequence: 0,
            credits: 1,
            expiry_height: 9,
            spendable: Ciphertext::public(1000),
        };
        let tx = AccountTx::transfer(&[4; 32], &alice, header, 1000, 321, &mut rng).unwrap();
        let block = CompactBlock {
            height: 3,
            time_ms: 0,
            txs: Vec::new(),
            tree_root: Fr::from(0u64),
            rejected: Vec::new(),
            accounts: vec![tx.clone()],
        };
        let file = AccountDisclosureFile::new(&block, &tx.id(), &auditor, None, &mut rng).unwrap();
        assert_eq!(file.amount, 321);
        file.check(&block).unwrap();
        // Through JSON and back.
        let again: AccountDisclosureFile =
            serde_json::from_str(&serde_json::to_string(&file).unwrap()).unwrap();
        again.check(&block).unwrap();

        let other = hex_encode(&SecretKey::account(&[3; 32]).public().to_bytes());
        type Tamper = Box<dyn Fn(&mut AccountDisclosureFile)>;
        let tamperings: Vec<(&str, Tamper)> = vec![
            ("amount", Box::new(|f| f.amount += 1)),
            ("amount by 2^16", Box::new(|f| f.amount += 1 << 16)),
            ("height", Box::new(|f| f.height += 1)),
            ("asset", Box::new(|f| f.asset += 1)),
            ("sender", {
                let o = other.clone();
                Box::new(move |f| f.sender = o.clone())
            }),
            ("receiver", {
                let o = other.clone();
                Box::new(move |f| f.receiver = o.clone())
            }),
            ("auditor", {
                let o = other.clone();
                Box::new(move |f| f.auditor_account_key = o.clone())
            }),
            ("txid", Box::new(|f| f.txid = TxId([5; 32]).to_string())),
            (
                "format",
                Box::new(|f| f.format = "shoji-disclosure-v1".into()),
            ),
            (
                "proof",
                Box::new(|f| {
                    let mut b = hex_decode("proof", &f.proof).unwrap();
                    b[64] ^= 1;
                    f.proof = hex_encode(&b);
                }),
            ),
        ];
        for (what, tamper) in tamperings {
            let mut bad = file.clone();
            tamper(&mut bad);
            assert!(bad.check(&block).is_err(), "{what}");
        }
        // Another auditor cannot disclose it.
        let stranger = SecretKey::auditor(&[8; 32]);
        assert!(matches!(
            AccountDisclosureFile::new(&block, &tx.id(), &stranger, None, &mut rng),
            Err(DisclosureFileError::OtherAuditor)
        ));
    }
}
