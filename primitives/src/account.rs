//! Confidential-account transactions and their encoding (docs/protocol/accounts.md,
//! "Transactions").
//!
//! Encoding: `version:u8 ‖ kind:u8 ‖ fields`, every field fixed-size, so each kind has one
//! length. Kinds 4–7 follow the shielded kinds (0–2) and governance (3):
//! - 4 open: `asset:u64 ‖ key(32) ‖ proof(64)`;
//! - 5 transfer: `asset ‖ sender(32) ‖ receiver(32) ‖ auditor(32) ‖ sequence:u64 ‖ credits:u64 ‖
//!   expiry_height:u64 ‖ spendable(64) ‖ amount(512) ‖ proof(1248)`;
//! - 6 mint: `asset ‖ account(32) ‖ value:u64 ‖ nonce(32) ‖ issuer(32) ‖ signature(64)`;
//! - 7 redeem: `asset ‖ account(32) ‖ issuer(32) ‖ value:u64 ‖ sequence ‖ credits ‖
//!   expiry_height ‖ spendable(64) ‖ proof(992)`.
//!
//! A transaction does not carry its network: every proof is made over
//! [`AccountTx::context`], which hashes the network id with every field but the proof (and a
//! transfer's amount, which its transcript absorbs itself), and a mint's signature is over
//! [`AccountTx::sighash`], which hashes the network id with every field but the signature; on
//! another network neither verifies.

use crate::encoding::{EncodingError, Reader};
use crate::note::{Amount, AssetId};
use crate::tx::{TxId, TX_VERSION};
use shoji_confidential::elgamal::{AMOUNT_CIPHERTEXT_BYTES, CIPHERTEXT_BYTES};
use shoji_confidential::{
    open, transfer, withdraw, AmountCiphertext, Ciphertext, PublicKey, SecretKey,
};

/// Kind byte of an account opening.
pub const OPEN_KIND: u8 = 4;
/// Kind byte of an account transfer.
pub const TRANSFER_KIND: u8 = 5;
/// Kind byte of an issuer's mint into an account.
pub const MINT_KIND: u8 = 6;
/// Kind byte of a redemption from an account to an issuer.
pub const REDEEM_KIND: u8 = 7;

/// Encoded length of an opening.
pub const OPEN_BYTES: usize = 2 + 8 + 32 + open::PROOF_BYTES;
/// Encoded length of a transfer.
pub const TRANSFER_BYTES: usize =
    2 + 8 + 3 * 32 + 3 * 8 + CIPHERTEXT_BYTES + AMOUNT_CIPHERTEXT_BYTES + transfer::PROOF_BYTES;
/// Encoded length of a mint.
pub const MINT_BYTES: usize = 2 + 8 + 32 + 8 + 32 + 32 + 64;
/// Encoded length of a redeem.
pub const REDEEM_BYTES: usize = 2 + 8 + 32 + 32 + 4 * 8 + CIPHERTEXT_BYTES + withdraw::PROOF_BYTES;
/// No account transaction is longer than this.
pub const MAX_ACCOUNT_TX_BYTES: usize = TRANSFER_BYTES;

/// Opens the account `(key, asset)`, proving knowledge of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The asset the account holds.
    pub asset: AssetId,
    /// The account's public key.
    pub key: PublicKey,
    /// Knowledge of the key, over [`AccountTx::context`].
    pub proof: open::OpenProof,
}

/// What a transfer does, before its amount is encrypted and proved: what its proof is made
/// over (with the network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferHeader {
    /// The asset of both accounts.
    pub asset: AssetId,
    /// The paying account's key.
    pub sender: PublicKey,
    /// The paid account's key.
    pub receiver: PublicKey,
    /// The auditor's account-tier key the amount is encrypted to: the one in force.
    pub auditor: PublicKey,
    /// The sender's sequence number: its count of outgoing transactions so far.
    pub sequence: u64,
    /// How many credits of the sender's `spendable` includes (see the ledger's accounts).
    pub credits: u64,
    /// Last block height at which this may be included.
    pub expiry_height: u64,
    /// The balance the proof spends from; the ledger checks it is the account's.
    pub spendable: Ciphertext,
}

/// Pays an encrypted amount from one account to another of the same asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Everything but the amount and the proof.
    pub header: TransferHeader,
    /// The amount, for sender, receiver and auditor.
    pub amount: AmountCiphertext,
    /// The transfer proof, over [`AccountTx::context`].
    pub proof: transfer::TransferProof,
}

/// An issuer's mint of a public value into an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mint {
    /// The asset minted.
    pub asset: AssetId,
    /// The account credited.
    pub account: PublicKey,
    /// The public value.
    pub value: Amount,
    /// Chosen by the issuer so that each mint is distinct (the ledger refuses a mint it has
    /// seen).
    pub nonce: [u8; 32],
    /// The issuer's Ed25519 key.
    pub issuer: [u8; 32],
    /// Ed25519 signature over [`AccountTx::sighash`].
    pub signature: [u8; 64],
}

/// What a redemption does: what its proof is made over (with the network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedeemHeader {
    /// The asset redeemed.
    pub asset: AssetId,
    /// The account debited.
    pub account: PublicKey,
    /// The issuer receiving the value.
    pub issuer: [u8; 32],
    /// The public value.
    pub value: Amount,
    /// The account's sequence number.
    pub sequence: u64,
    /// How many credits `spendable` includes.
    pub credits: u64,
    /// Last block height at which this may be included.
    pub expiry_height: u64,
    /// The balance the proof spends from.
    pub spendable: Ciphertext,
}

/// A redemption of a public value from an account to an issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redeem {
    /// Everything but the proof.
    pub header: RedeemHeader,
    /// The withdrawal proof, over [`AccountTx::context`].
    pub proof: withdraw::WithdrawProof,
}

/// A confidential-account transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountTx {
    /// Kind 4.
    Open(Open),
    /// Kind 5.
    Transfer(Box<Transfer>),
    /// Kind 6.
    Mint(Mint),
    /// Kind 7.
    Redeem(Box<Redeem>),
}

impl TransferHeader {
    /// The context a transfer with this header is proved over on `network`.
    pub fn context(&self, network: &[u8; 32]) -> [u8; 32] {
        let mut out = vec![TX_VERSION, TRANSFER_KIND];
        self.write(&mut out);
        context(network, &out)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.asset.0.to_le_bytes());
        out.extend_from_slice(&self.sender.to_bytes());
        out.extend_from_slice(&self.receiver.to_bytes());
        out.extend_from_slice(&self.auditor.to_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&self.credits.to_le_bytes());
        out.extend_from_slice(&self.expiry_height.to_le_bytes());
        out.extend_from_slice(&self.spendable.to_bytes());
    }
}

impl RedeemHeader {
    /// The context a redemption with this header is proved over on `network`.
    pub fn context(&self, network: &[u8; 32]) -> [u8; 32] {
        let mut out = vec![TX_VERSION, REDEEM_KIND];
        self.write(&mut out);
        context(network, &out)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.asset.0.to_le_bytes());
        out.extend_from_slice(&self.account.to_bytes());
        out.extend_from_slice(&self.issuer);
        out.extend_from_slice(&self.value.0.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&self.credits.to_le_bytes());
        out.extend_from_slice(&self.expiry_height.to_le_bytes());
        out.extend_from_slice(&self.spendable.to_bytes());
    }
}

/// The context of an opening of `(key, asset)` on `network`.
pub fn open_context(network: &[u8; 32], asset: AssetId, key: &PublicKey) -> [u8; 32] {
    let mut out = vec![TX_VERSION, OPEN_KIND];
    out.extend_from_slice(&asset.0.to_le_bytes());
    out.extend_from_slice(&key.to_bytes());
    context(network, &out)
}

fn context(network: &[u8; 32], fields: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 account proof context v1");
    h.update(network);
    h.update(fields);
    *h.finalize().as_bytes()
}

impl AccountTx {
    /// Opens the account `(key, asset)` on `network`.
    pub fn open(
        network: &[u8; 32],
        key: &SecretKey,
        asset: AssetId,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Self {
        let public = key.public();
        let proof = open::prove(key, &open_context(network, asset, &public), rng);
        AccountTx::Open(Open {
            asset,
            key: public,
            proof,
        })
    }

    /// Pays `amount` from the account of `key` (which holds `balance` in
    /// `header.spendable`) as `header` says, on `network`.
    pub fn transfer(
        network: &[u8; 32],
        key: &SecretKey,
        header: TransferHeader,
        balance: u64,
        amount: u64,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Self, shoji_confidential::Error> {
        let context = header.context(network);
        let st = transfer::Statement {
            context: &context,
            sender: &header.sender,
            receiver: &header.receiver,
            auditor: &header.auditor,
            spendable: &header.spendable,
        };
        let (amount, proof) = transfer::prove(key, &st, balance, amount, rng)?;
        Ok(AccountTx::Transfer(Box::new(Transfer {
            header,
            amount,
            proof,
        })))
    }

    /// Redeems `header.value` from the account of `key` (holding `balance`) on `network`.
    pub fn redeem(
        network: &[u8; 32],
        key: &SecretKey,
        header: RedeemHeader,
        balance: u64,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Self, shoji_confidential::Error> {
        let context = header.context(network);
        let st = withdraw::Statement {
            context: &context,
            owner: &header.account,
            spendable: &header.spendable,
            amount: header.value.0,
        };
        let proof = withdraw::prove(key, &st, balance, rng)?;
        Ok(AccountTx::Redeem(Box::new(Redeem { header, proof })))
    }

    /// An issuer's signed mint of `value` into `account` on `network`.
    pub fn mint(
        network: &[u8; 32],
        issuer: &ed25519_dalek::SigningKey,
        asset: AssetId,
        account: PublicKey,
        value: Amount,
        nonce: [u8; 32],
    ) -> Self {
        let mut m = Mint {
            asset,
            account,
            value,
            nonce,
            issuer: issuer.verifying_key().to_bytes(),
            signature: [0; 64],
        };
        let digest = AccountTx::Mint(m.clone()).sighash(network);
        m.signature = ed25519_dalek::Signer::sign(issuer, &digest).to_bytes();
        AccountTx::Mint(m)
    }
}

/// Which fields an encoding holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Everything: the transaction's bytes.
    All,
    /// All but the proof or signature: what the id and a mint's signature cover.
    Effects,
    /// All but the proof and a transfer's amount: what proofs are made over.
    Context,
}

impl AccountTx {
    /// Whether `bytes` claim to be an account transaction (version and kind bytes), before
    /// decoding.
    pub fn is_account(bytes: &[u8]) -> bool {
        bytes.len() >= 2 && bytes[0] == TX_VERSION && (OPEN_KIND..=REDEEM_KIND).contains(&bytes[1])
    }

    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            AccountTx::Open(_) => OPEN_KIND,
            AccountTx::Transfer(_) => TRANSFER_KIND,
            AccountTx::Mint(_) => MINT_KIND,
            AccountTx::Redeem(_) => REDEEM_KIND,
        }
    }

    /// The asset the transaction moves.
    pub fn asset(&self) -> AssetId {
        match self {
            AccountTx::Open(o) => o.asset,
            AccountTx::Transfer(t) => t.header.asset,
            AccountTx::Mint(m) => m.asset,
            AccountTx::Redeem(r) => r.header.asset,
        }
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode(Part::All)
    }

    fn encode(&self, part: Part) -> Vec<u8> {
        let with_auth = part == Part::All;
        let mut out = Vec::with_capacity(MAX_ACCOUNT_TX_BYTES);
        out.push(TX_VERSION);
        out.push(self.kind());
        match self {
            AccountTx::Open(o) => {
                out.extend_from_slice(&o.asset.0.to_le_bytes());
                out.extend_from_slice(&o.key.to_bytes());
                if with_auth {
                    out.extend_from_slice(&o.proof.to_bytes());
                }
            }
            AccountTx::Transfer(t) => {
                t.header.write(&mut out);
                if part != Part::Context {
                    out.extend_from_slice(&t.amount.to_bytes());
                }
                if with_auth {
                    out.extend_from_slice(&t.proof.to_bytes());
                }
            }
            AccountTx::Mint(m) => {
                out.extend_from_slice(&m.asset.0.to_le_bytes());
                out.extend_from_slice(&m.account.to_bytes());
                out.extend_from_slice(&m.value.0.to_le_bytes());
                out.extend_from_slice(&m.nonce);
                out.extend_from_slice(&m.issuer);
                if with_auth {
                    out.extend_from_slice(&m.signature);
                }
            }
            AccountTx::Redeem(r) => {
                r.header.write(&mut out);
                if with_auth {
                    out.extend_from_slice(&r.proof.to_bytes());
                }
            }
        }
        out
    }

    /// The id: a hash of every field but the proof or signature (what the transaction does,
    /// not what authorizes it).
    pub fn id(&self) -> TxId {
        TxId(blake3::derive_key(
            "shoji 2026 account transaction id v1",
            &self.encode(Part::Effects),
        ))
    }

    /// blake3 of the whole encoding: names these exact bytes (what a rejection certifies and a
    /// verdict may be cached under).
    pub fn auth_id(&self) -> TxId {
        TxId(*blake3::hash(&self.to_bytes()).as_bytes())
    }

    /// What every proof of the transaction is made over: the network id and every field but
    /// the proof and the amount ciphertext (which the prover makes with the proof, and the
    /// transfer transcript absorbs itself). Passed to the proofs as their `context`.
    pub fn context(&self, network: &[u8; 32]) -> [u8; 32] {
        context(network, &self.encode(Part::Context))
    }

    /// What an issuer signs for a mint: the network id and every field but the signature.
    pub fn sighash(&self, network: &[u8; 32]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("shoji 2026 account mint signature v1");
        h.update(network);
        h.update(&self.encode(Part::Effects));
        *h.finalize().as_bytes()
    }

    /// The encoded length of account kind `kind`, if it is one.
    pub fn encoded_len(kind: u8) -> Option<usize> {
        match kind {
            OPEN_KIND => Some(OPEN_BYTES),
            TRANSFER_KIND => Some(TRANSFER_BYTES),
            MINT_KIND => Some(MINT_BYTES),
            REDEEM_KIND => Some(REDEEM_BYTES),
            _ => None,
        }
    }

    /// The layout: version, a known account kind and that kind's exact length. Cheap, for
    /// consensus's payload rule.
    pub fn check_layout(bytes: &[u8]) -> Result<u8, EncodingError> {
        let mut r = Reader::new("account transaction", bytes);
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(EncodingError::Unknown {
                what: "transaction version",
                value: version as u64,
            });
        }
        let kind = r.u8()?;
        let expected = Self::encoded_len(kind).ok_or(EncodingError::Unknown {
            what: "account transaction kind",
            value: kind as u64,
        })?;
        if bytes.len() != expected {
            return Err(EncodingError::Length {
                what: "account transaction",
                expected,
                got: bytes.len(),
            });
        }
        Ok(kind)
    }

    /// Strict decoding: exact length for the kind, canonical points and scalars. Proofs and
    /// signatures are checked by the verifier.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let kind = Self::check_layout(bytes)?;
        let mut r = Reader::new("account transaction", bytes);
        r.take(2)?;
        let asset = AssetId(r.u64()?);
        let key = |r: &mut Reader<'_>, what: &'static str| -> Result<PublicKey, EncodingError> {
            PublicKey::from_bytes(&r.array()?).map_err(|_| EncodingError::InvalidPoint(what))
        };
        let ciphertext = |r: &mut Reader<'_>| -> Result<Ciphertext, EncodingError> {
            Ciphertext::from_bytes(&r.array()?)
                .map_err(|_| EncodingError::InvalidPoint("spendable"))
        };
        let tx = match kind {
            OPEN_KIND => AccountTx::Open(Open {
                asset,
                key: key(&mut r, "account key")?,
                proof: open::OpenProof::from_bytes(r.take(open::PROOF_BYTES)?)
                    .map_err(|_| EncodingError::Invalid("open proof"))?,
            }),
            TRANSFER_KIND => AccountTx::Transfer(Box::new(Transfer {
                header: TransferHeader {
                    asset,
                    sender: key(&mut r, "sender")?,
                    receiver: key(&mut r, "receiver")?,
                    auditor: key(&mut r, "auditor")?,
                    sequence: r.u64()?,
                    credits: r.u64()?,
                    expiry_height: r.u64()?,
                    spendable: ciphertext(&mut r)?,
                },
                amount: AmountCiphertext::from_bytes(r.take(AMOUNT_CIPHERTEXT_BYTES)?)
                    .map_err(|_| EncodingError::InvalidPoint("amount"))?,
                proof: transfer::TransferProof::from_bytes(r.take(transfer::PROOF_BYTES)?)
                    .map_err(|_| EncodingError::Invalid("transfer proof"))?,
            })),
            MINT_KIND => AccountTx::Mint(Mint {
                asset,
                account: key(&mut r, "account")?,
                value: Amount(r.u64()?),
                nonce: r.array()?,
                issuer: r.array()?,
                signature: r.array()?,
            }),
            _ => AccountTx::Redeem(Box::new(Redeem {
                header: RedeemHeader {
                    asset,
                    account: key(&mut r, "account")?,
                    issuer: r.array()?,
                    value: Amount(r.u64()?),
                    sequence: r.u64()?,
                    credits: r.u64()?,
                    expiry_height: r.u64()?,
                    spendable: ciphertext(&mut r)?,
                },
                proof: withdraw::WithdrawProof::from_bytes(r.take(withdraw::PROOF_BYTES)?)
                    .map_err(|_| EncodingError::Invalid("withdraw proof"))?,
            })),
        };
        r.finish()?;
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    const NET: [u8; 32] = [9; 32];

    fn samples(seed: u64) -> Vec<AccountTx> {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let sender = SecretKey::account(&[1; 32]);
        let receiver = SecretKey::account(&[2; 32]).public();
        let auditor = SecretKey::auditor(&[3; 32]).public();
        let asset = AssetId(840);
        let spendable = Ciphertext::public(1_000);
        let header = TransferHeader {
            asset,
            sender: sender.public(),
            receiver,
            auditor,
            sequence: 4,
            credits: 9,
            expiry_height: 100,
            spendable,
        };
        let st = transfer::Statement {
            context: &header.context(&NET),
            sender: &header.sender,
            receiver: &receiver,
            auditor: &auditor,
            spendable: &spendable,
        };
        let (amount, proof) = transfer::prove(&sender, &st, 1_000, 250, &mut rng).unwrap();
        let rh = RedeemHeader {
            asset,
            account: sender.public(),
            issuer: [5; 32],
            value: Amount(10),
            sequence: 5,
            credits: 9,
            expiry_height: 100,
            spendable,
        };
        let ws = withdraw::Statement {
            context: &rh.context(&NET),
            owner: &rh.account,
            spendable: &spendable,
            amount: 10,
        };
        let wproof = withdraw::prove(&sender, &ws, 1_000, &mut rng).unwrap();
        vec![
            AccountTx::Open(Open {
                asset,
                key: sender.public(),
                proof: open::prove(
                    &sender,
                    &open_context(&NET, asset, &sender.public()),
                    &mut rng,
                ),
            }),
            AccountTx::Transfer(Box::new(Transfer {
                header,
                amount,
                proof,
            })),
            AccountTx::Mint(Mint {
                asset,
                account: receiver,
                value: Amount(77),
                nonce: [6; 32],
                issuer: [5; 32],
                signature: [7; 64],
            }),
            AccountTx::Redeem(Box::new(Redeem {
                header: rh,
                proof: wproof,
            })),
        ]
    }

    #[test]
    fn lengths_are_the_documented_ones() {
        // docs/protocol/accounts.md, "Transactions".
        assert_eq!(
            [OPEN_BYTES, TRANSFER_BYTES, MINT_BYTES, REDEEM_BYTES],
            [106, 1954, 178, 1162]
        );
    }

    #[test]
    fn every_kind_round_trips_at_its_length_and_nothing_else_decodes() {
        for (tx, len) in
            samples(1)
                .into_iter()
                .zip([OPEN_BYTES, TRANSFER_BYTES, MINT_BYTES, REDEEM_BYTES])
        {
            let bytes = tx.to_bytes();
            assert_eq!(bytes.len(), len);
            assert!(AccountTx::is_account(&bytes));
            assert_eq!(AccountTx::from_bytes(&bytes), Ok(tx.clone()));
            for cut in [0, 1, 2, 10, len - 1] {
                assert!(AccountTx::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(AccountTx::from_bytes(&long).is_err());
            let mut old = bytes.clone();
            old[0] = TX_VERSION - 1;
            assert!(matches!(
                AccountTx::from_bytes(&old),
                Err(EncodingError::Unknown {
                    what: "transaction version",
                    ..
                })
            ));
            assert!(crate::tx::Transaction::from_bytes(&bytes).is_err());
            assert!(!crate::governance::GovernanceTx::is_governance(&bytes));
        }
    }

    #[test]
    fn proofs_are_over_the_context_and_the_context_over_every_field_and_the_network() {
        let txs = samples(1);
        let AccountTx::Transfer(t) = &txs[1] else {
            unreachable!()
        };
        let ctx = txs[1].context(&NET);
        assert_eq!(ctx, t.header.context(&NET));
        assert_ne!(ctx, txs[1].context(&[8; 32]));
        let st = |ctx: &[u8; 32], h: &TransferHeader| {
            transfer::verify_one(
                &transfer::Statement {
                    context: ctx,
                    sender: &h.sender,
                    receiver: &h.receiver,
                    auditor: &h.auditor,
                    spendable: &h.spendable,
                },
                &t.amount,
                &t.proof,
            )
        };
        assert_eq!(st(&ctx, &t.header), Ok(()));
        // Each plain field of the header changes the context, and the proof fails.
        let mut changed = Vec::new();
        let h = t.header;
        changed.push(TransferHeader {
            asset: AssetId(841),
            ..h
        });
        changed.push(TransferHeader { sequence: 5, ..h });
        changed.push(TransferHeader { credits: 10, ..h });
        changed.push(TransferHeader {
            expiry_height: 101,
            ..h
        });
        for h2 in changed {
            assert!(st(&h2.context(&NET), &t.header).is_err());
        }
        assert!(st(&t.header.context(&[8; 32]), &t.header).is_err());
        // Another encryption of the same transfer: the id (which covers the amount) differs,
        // the context (which leaves it to the transcript) does not.
        let AccountTx::Transfer(other) = &samples(2)[1] else {
            unreachable!()
        };
        assert_ne!(txs[1].id(), AccountTx::Transfer(other.clone()).id());
        assert_eq!(
            txs[1].context(&NET),
            AccountTx::Transfer(other.clone()).context(&NET)
        );
        let AccountTx::Open(o) = &txs[0] else {
            unreachable!()
        };
        assert_eq!(txs[0].context(&NET), open_context(&NET, o.asset, &o.key));
        assert_eq!(
            open::verify_one(&txs[0].context(&NET), &o.key, &o.proof),
            Ok(())
        );
        assert_ne!(txs[2].sighash(&NET), txs[2].sighash(&[8; 32]));
    }
}
