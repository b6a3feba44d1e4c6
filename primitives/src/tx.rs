//! Transactions: the shielded bundle every kind shares, its canonical byte encoding, its public
//! inputs and the transaction binding (docs/protocol/transactions.md).
//!
//! Encoding (all integers little-endian, every field fixed-size, so every transaction of a kind has
//! one length): `version:u8 ‖ kind:u8 ‖ bundle ‖ kind-specific tail`. The bundle is
//! `anchor ‖ nf_0 ‖ nf_1 ‖ cm_0 ‖ cm_1 ‖ value_in:u64 ‖ value_out:u64 ‖ asset:u64 ‖ auditor(32) ‖
//! E(32) ‖ c_0..c_3 ‖ output_0 ‖ output_1 ‖ expiry_height:u64 ‖ network(32) ‖ proof(384)`. The tail is empty for a
//! transfer, `issuer(32) ‖ signature(64)` for a mint, `issuer(32)` for a redeem,
//! `account(32) ‖ sequence:u64 ‖ credits:u64 ‖ spendable(64) ‖ withdrawal proof(992)` for a
//! shield (kind 8) and `account(32)` for an unshield (kind 9).
//!
//! `tx_binding` hashes every field that is not already a public input — version, kind, expiry,
//! both outputs' ciphertexts and the party at the public boundary (a mint's or redeem's issuer,
//! the account a shield debits or an unshield credits) — into a field element that is a
//! public input of the proof, so none of them can be changed under a valid proof (docs/protocol/statement.md, Rule 2).
//! A shield's withdrawal proof is made over [`Transaction::withdraw_context`], which hashes every
//! field but the two proofs: the account owner authorizes exactly these notes.

use crate::audit::{AuditPublicKey, AuditRecord, AUDIT_ELEMENTS};
use crate::encoding::{fr_to_bytes, EncodingError, Reader};
use crate::encryption::{NoteCiphertext, NOTE_CIPHERTEXT_BYTES};
use crate::note::{Amount, AssetId};
use crate::Fr;
use ark_bls12_381::Bls12_381;
use ark_ff::PrimeField;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use shoji_confidential::{withdraw, Ciphertext, PublicKey};

/// The transaction format version this code reads and writes (2: the proof's points are
/// uncompressed; 3: the transaction names its network, and its id leaves the proof and the
/// issuer's signature out).
pub const TX_VERSION: u8 = 3;
/// An uncompressed Groth16 proof: `A` (96) ‖ `B` (192) ‖ `C` (96), each point `x ‖ y` in the
/// Zcash encoding ark-bls12-381 writes. Uncompressed because every validator decodes every
/// proof: checking that a point is on its curve costs a few multiplications, recovering `y`
/// from `x` a square root (docs/decisions/0022).
pub const PROOF_BYTES: usize = 384;
/// Number of public inputs of the transfer statement.
pub const NUM_PUBLIC_INPUTS: usize = 17;
/// Encoded length of a bundle.
pub const BUNDLE_BYTES: usize = 5 * 32
    + 3 * 8
    + 32
    + 32
    + AUDIT_ELEMENTS * 32
    + 2 * NOTE_CIPHERTEXT_BYTES
    + 8
    + 32
    + PROOF_BYTES;
/// Encoded length of a transfer.
pub const TRANSFER_BYTES: usize = 2 + BUNDLE_BYTES;
/// Encoded length of a mint.
pub const MINT_BYTES: usize = TRANSFER_BYTES + 32 + 64;
/// Encoded length of a redeem.
pub const REDEEM_BYTES: usize = TRANSFER_BYTES + 32;
/// Encoded length of a shield.
pub const SHIELD_BYTES: usize = TRANSFER_BYTES + AccountDebit::BYTES + withdraw::PROOF_BYTES;
/// Encoded length of an unshield.
pub const UNSHIELD_BYTES: usize = TRANSFER_BYTES + 32;
/// No transaction is longer than this.
pub const MAX_TX_BYTES: usize = SHIELD_BYTES;

/// A Groth16 proof in its canonical uncompressed form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof(pub [u8; PROOF_BYTES]);

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proof({}…)", crate::encoding::hex_encode(&self.0[..8]))
    }
}

impl Proof {
    /// Encodes an arkworks proof.
    pub fn from_ark(p: &ark_groth16::Proof<Bls12_381>) -> Self {
        let mut out = [0u8; PROOF_BYTES];
        p.serialize_uncompressed(&mut out[..])
            .expect("an uncompressed proof is 384 bytes");
        Self(out)
    }

    /// Decodes, checking every point is canonically encoded, on its curve and in the
    /// prime-order subgroup.
    pub fn to_ark(&self) -> Result<ark_groth16::Proof<Bls12_381>, EncodingError> {
        ark_groth16::Proof::deserialize_with_mode(&self.0[..], Compress::No, Validate::Yes)
            .map_err(|_| EncodingError::InvalidPoint("proof"))
    }
}

/// What kind of transaction a bundle belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TxKind {
    /// Shielded transfer: no public value.
    Transfer = 0,
    /// Issuer-signed: public value in, shielded notes out.
    Mint = 1,
    /// Public value out to an issuer, authorized by the proof.
    Redeem = 2,
    /// Public value out of a confidential account into shielded notes, authorized by the
    /// account's withdrawal proof.
    Shield = 8,
    /// Public value out of shielded notes into a confidential account, authorized by the proof.
    Unshield = 9,
}

impl TxKind {
    /// `transfer`, `mint`, `redeem`, `shield` or `unshield`: the kind's name in metrics,
    /// reports, disclosures and the gateway's answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Transfer => "transfer",
            Self::Mint => "mint",
            Self::Redeem => "redeem",
            Self::Shield => "shield",
            Self::Unshield => "unshield",
        }
    }

    /// The kind with this encoding byte.
    pub fn from_u8(b: u8) -> Result<Self, EncodingError> {
        match b {
            0 => Ok(Self::Transfer),
            1 => Ok(Self::Mint),
            2 => Ok(Self::Redeem),
            8 => Ok(Self::Shield),
            9 => Ok(Self::Unshield),
            v => Err(EncodingError::Unknown {
                what: "transaction kind",
                value: v as u64,
            }),
        }
    }
}

/// The part every transaction kind shares: one proven 2-in-2-out statement and its ciphertexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShieldedBundle {
    /// A recent root of the commitment tree.
    pub anchor: Fr,
    /// Nullifiers of the two inputs.
    pub nullifiers: [Fr; 2],
    /// Commitments of the two outputs.
    pub commitments: [Fr; 2],
    /// Public value entering (mint).
    pub value_in: Amount,
    /// Public value leaving (redeem).
    pub value_out: Amount,
    /// The asset of the public values (zero when both are zero).
    pub asset: AssetId,
    /// The auditor the record is encrypted to.
    pub auditor: AuditPublicKey,
    /// The encrypted audit record.
    pub audit: AuditRecord,
    /// The outputs' note ciphertexts.
    pub outputs: [NoteCiphertext; 2],
    /// Last block height at which this may be included.
    pub expiry_height: u64,
    /// The network it is for (its genesis hash): bound by the proof, checked by validators,
    /// so a transaction of one network is refused on another.
    pub network: [u8; 32],
    /// The proof.
    pub proof: Proof,
}

/// Who authorizes a mint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssuerAuth {
    /// The issuer's Ed25519 public key.
    pub issuer: [u8; 32],
    /// Ed25519 signature over [`Transaction::sighash`].
    pub signature: [u8; 64],
}

/// What a shield does to the account it debits: what the proof binds and the ledger checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountDebit {
    /// The account's key (the account is this key and the bundle's asset).
    pub account: PublicKey,
    /// The account's sequence number: its count of outgoing transactions so far.
    pub sequence: u64,
    /// How many credits `spendable` includes (docs/protocol/accounts.md).
    pub credits: u64,
    /// The balance the withdrawal proof spends from; the ledger checks it is the account's.
    pub spendable: Ciphertext,
}

impl AccountDebit {
    /// Encoded length: `account(32) ‖ sequence:u64 ‖ credits:u64 ‖ spendable(64)`.
    pub const BYTES: usize = 32 + 8 + 8 + 64;

    /// The encoding.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[..32].copy_from_slice(&self.account.to_bytes());
        out[32..40].copy_from_slice(&self.sequence.to_le_bytes());
        out[40..48].copy_from_slice(&self.credits.to_le_bytes());
        out[48..].copy_from_slice(&self.spendable.to_bytes());
        out
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, EncodingError> {
        Ok(Self {
            account: read_account_key(r)?,
            sequence: r.u64()?,
            credits: r.u64()?,
            spendable: Ciphertext::from_bytes(&r.array()?)
                .map_err(|_| EncodingError::InvalidPoint("spendable"))?,
        })
    }
}

fn read_account_key(r: &mut Reader<'_>) -> Result<PublicKey, EncodingError> {
    PublicKey::from_bytes(&r.array()?).map_err(|_| EncodingError::InvalidPoint("account key"))
}

/// Who stands at a transaction's public boundary, as [`tx_binding`] binds it: a mint's or
/// redeem's issuer, the account a shield debits, the account an unshield credits.
// One value at a time, on the stack: boxing the debit would put an allocation back on the
// verification path that this type exists to keep free of one.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// A mint's or redeem's issuer (its Ed25519 key).
    Issuer([u8; 32]),
    /// The account a shield debits.
    Debit(AccountDebit),
    /// The account an unshield credits.
    Account(PublicKey),
}

impl Boundary {
    /// Calls `f` with the bytes the binding hashes and the encoding carries: the issuer (32),
    /// the encoded debit ([`AccountDebit::BYTES`]) or the account key (32). No allocation.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Boundary::Issuer(i) => f(i),
            Boundary::Debit(d) => f(&d.to_bytes()),
            Boundary::Account(a) => f(&a.to_bytes()),
        }
    }
}

/// A shield's withdrawal proof, encoded ([`withdraw::WithdrawProof`]); decoded by the verifier.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WithdrawProofBytes(pub [u8; withdraw::PROOF_BYTES]);

impl std::fmt::Debug for WithdrawProofBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WithdrawProofBytes({}…)",
            crate::encoding::hex_encode(&self.0[..8])
        )
    }
}

/// A transaction.
// A shield is about 1 KB larger than the other kinds (its withdrawal proof). Boxing it would
// cost `Copy`, which batches, tests and the mempool use throughout; every value being ~2.7 KB
// instead of ~1.6 KB is the cheaper side.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transaction {
    /// A shielded transfer.
    Transfer(ShieldedBundle),
    /// An issuer's mint.
    Mint {
        /// The proven bundle (`value_in` > 0).
        bundle: ShieldedBundle,
        /// The issuer's signature.
        auth: IssuerAuth,
    },
    /// A redemption to an issuer.
    Redeem {
        /// The proven bundle (`value_out` > 0).
        bundle: ShieldedBundle,
        /// The issuer receiving the public value.
        issuer: [u8; 32],
    },
    /// A shield: `value_in` leaves a confidential account and enters the bundle's notes.
    Shield {
        /// The proven bundle (`value_in` > 0; its asset is the account's).
        bundle: ShieldedBundle,
        /// The account debited.
        debit: AccountDebit,
        /// The account owner's withdrawal proof of `value_in`, over
        /// [`Transaction::withdraw_context`].
        proof: WithdrawProofBytes,
    },
    /// An unshield: `value_out` leaves the bundle's spent notes and is credited to an account.
    Unshield {
        /// The proven bundle (`value_out` > 0).
        bundle: ShieldedBundle,
        /// The key of the account credited (the account is this key and the bundle's asset).
        account: PublicKey,
    },
}

/// The values the proof is checked against, in the circuit's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferPublic {
    /// Commitment-tree root the inputs are proven under.
    pub anchor: Fr,
    /// Input nullifiers.
    pub nullifiers: [Fr; 2],
    /// Output commitments.
    pub commitments: [Fr; 2],
    /// Public value in.
    pub value_in: Amount,
    /// Public value out.
    pub value_out: Amount,
    /// Asset of the public values.
    pub asset: AssetId,
    /// Auditor key.
    pub auditor: AuditPublicKey,
    /// Audit record.
    pub audit: AuditRecord,
    /// Hash of everything else in the transaction.
    pub binding: Fr,
}

impl TransferPublic {
    /// The public inputs, in the order the circuit allocates them:
    /// anchor, nf_0, nf_1, cm_0, cm_1, value_in, value_out, asset, PK.x, PK.y, E.x, E.y, c_0..c_3,
    /// binding.
    pub fn to_field_elements(&self) -> Vec<Fr> {
        let mut v = Vec::with_capacity(NUM_PUBLIC_INPUTS);
        v.push(self.anchor);
        v.extend_from_slice(&self.nullifiers);
        v.extend_from_slice(&self.commitments);
        v.push(Fr::from(self.value_in.0));
        v.push(Fr::from(self.value_out.0));
        v.push(Fr::from(self.asset.0));
        v.push(self.auditor.0.x);
        v.push(self.auditor.0.y);
        v.push(self.audit.epk.x);
        v.push(self.audit.epk.y);
        v.extend_from_slice(&self.audit.ciphertext);
        v.push(self.binding);
        debug_assert_eq!(v.len(), NUM_PUBLIC_INPUTS);
        v
    }
}

/// The non-public fields the proof binds.
#[derive(Clone, Copy, Debug)]
pub struct BindingFields<'a> {
    /// Transaction kind.
    pub kind: TxKind,
    /// The network the transaction is for.
    pub network: &'a [u8; 32],
    /// Expiry height.
    pub expiry_height: u64,
    /// Output ciphertexts.
    pub outputs: &'a [NoteCiphertext; 2],
    /// The party at the public boundary; `None` for a transfer.
    pub boundary: Option<&'a Boundary>,
}

/// `tx_binding`: a field element hashing every transaction field that is not a public input.
pub fn tx_binding(f: &BindingFields<'_>) -> Fr {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 transaction binding v1");
    h.update(&[TX_VERSION, f.kind as u8]);
    h.update(f.network);
    h.update(&f.expiry_height.to_le_bytes());
    for o in f.outputs {
        h.update(&o.to_bytes());
    }
    match f.boundary {
        Some(b) => b.with_bytes(|bytes| {
            h.update(&[1]).update(bytes);
        }),
        None => {
            h.update(&[0]);
        }
    }
    let mut wide = [0u8; 64];
    h.finalize_xof().fill(&mut wide);
    Fr::from_le_bytes_mod_order(&wide)
}

/// Why a transaction's shape is wrong for its kind.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    /// A transfer carried public value.
    #[error("a transfer carries no public value and no public asset")]
    TransferWithPublicValue,
    /// A mint must bring value in and take none out.
    #[error("a mint must have value_in > 0 and value_out = 0")]
    MintValues,
    /// A redeem must take value out and bring none in.
    #[error("a redeem must have value_out > 0 and value_in = 0")]
    RedeemValues,
    /// A shield must bring value in and take none out.
    #[error("a shield must have value_in > 0 and value_out = 0")]
    ShieldValues,
    /// An unshield must take value out and bring none in.
    #[error("an unshield must have value_out > 0 and value_in = 0")]
    UnshieldValues,
    /// The two nullifiers are equal (an input spent twice in one transaction).
    #[error("the two inputs have the same nullifier")]
    DuplicateNullifier,
}

impl Transaction {
    /// Kind.
    pub fn kind(&self) -> TxKind {
        match self {
            Self::Transfer(_) => TxKind::Transfer,
            Self::Mint { .. } => TxKind::Mint,
            Self::Redeem { .. } => TxKind::Redeem,
            Self::Shield { .. } => TxKind::Shield,
            Self::Unshield { .. } => TxKind::Unshield,
        }
    }

    /// The shielded bundle.
    pub fn bundle(&self) -> &ShieldedBundle {
        match self {
            Self::Transfer(b)
            | Self::Mint { bundle: b, .. }
            | Self::Redeem { bundle: b, .. }
            | Self::Shield { bundle: b, .. }
            | Self::Unshield { bundle: b, .. } => b,
        }
    }

    /// The shielded bundle, to change (tests that alter a transaction field by field).
    pub fn bundle_mut(&mut self) -> &mut ShieldedBundle {
        match self {
            Self::Transfer(b)
            | Self::Mint { bundle: b, .. }
            | Self::Redeem { bundle: b, .. }
            | Self::Shield { bundle: b, .. }
            | Self::Unshield { bundle: b, .. } => b,
        }
    }

    /// The party at the public boundary ([`tx_binding`] hashes it).
    pub fn boundary(&self) -> Option<Boundary> {
        match self {
            Self::Transfer(_) => None,
            Self::Mint { auth, .. } => Some(Boundary::Issuer(auth.issuer)),
            Self::Redeem { issuer, .. } => Some(Boundary::Issuer(*issuer)),
            Self::Shield { debit, .. } => Some(Boundary::Debit(*debit)),
            Self::Unshield { account, .. } => Some(Boundary::Account(*account)),
        }
    }

    /// The confidential account a shield debits or an unshield credits, and the public value.
    pub fn account_side(&self) -> Option<(PublicKey, Amount)> {
        match self {
            Self::Shield { bundle, debit, .. } => Some((debit.account, bundle.value_in)),
            Self::Unshield { bundle, account } => Some((*account, bundle.value_out)),
            _ => None,
        }
    }

    /// What a shield's withdrawal proof is made over: every field but the two proofs (the
    /// network among them). `None` for other kinds.
    pub fn withdraw_context(&self) -> Option<[u8; 32]> {
        matches!(self, Self::Shield { .. }).then(|| {
            blake3::derive_key(
                "shoji 2026 shield withdrawal context v1",
                &self.encode_fields(false),
            )
        })
    }

    /// The issuer named by a mint or redeem.
    pub fn issuer(&self) -> Option<&[u8; 32]> {
        match self {
            Self::Transfer(_) => None,
            Self::Mint { auth, .. } => Some(&auth.issuer),
            Self::Redeem { issuer, .. } => Some(issuer),
            _ => None,
        }
    }

    /// Checks what can be checked without state or proof: public values fit the kind, the
    /// nullifiers differ.
    pub fn check_shape(&self) -> Result<(), ShapeError> {
        let b = self.bundle();
        match self.kind() {
            TxKind::Transfer if b.value_in.0 != 0 || b.value_out.0 != 0 || b.asset.0 != 0 => {
                return Err(ShapeError::TransferWithPublicValue)
            }
            TxKind::Mint if b.value_in.0 == 0 || b.value_out.0 != 0 => {
                return Err(ShapeError::MintValues)
            }
            TxKind::Redeem if b.value_out.0 == 0 || b.value_in.0 != 0 => {
                return Err(ShapeError::RedeemValues)
            }
            TxKind::Shield if b.value_in.0 == 0 || b.value_out.0 != 0 => {
                return Err(ShapeError::ShieldValues)
            }
            TxKind::Unshield if b.value_out.0 == 0 || b.value_in.0 != 0 => {
                return Err(ShapeError::UnshieldValues)
            }
            _ => {}
        }
        if b.nullifiers[0] == b.nullifiers[1] {
            return Err(ShapeError::DuplicateNullifier);
        }
        Ok(())
    }

    /// The proof's public inputs, with the binding recomputed from this transaction's fields.
    pub fn public_inputs(&self) -> TransferPublic {
        let b = self.bundle();
        let boundary = self.boundary();
        TransferPublic {
            anchor: b.anchor,
            nullifiers: b.nullifiers,
            commitments: b.commitments,
            value_in: b.value_in,
            value_out: b.value_out,
            asset: b.asset,
            auditor: b.auditor,
            audit: b.audit,
            binding: tx_binding(&BindingFields {
                kind: self.kind(),
                network: &b.network,
                expiry_height: b.expiry_height,
                outputs: &b.outputs,
                boundary: boundary.as_ref(),
            }),
        }
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.unsigned_bytes();
        if let Self::Mint { auth, .. } = self {
            out.extend_from_slice(&auth.signature);
        }
        out
    }

    /// The encoding without a mint's signature.
    fn unsigned_bytes(&self) -> Vec<u8> {
        self.encode_fields(true)
    }

    /// The fields in encoding order, the proof among them when `with_proof`.
    fn encode_fields(&self, with_proof: bool) -> Vec<u8> {
        let b = self.bundle();
        let mut out = Vec::with_capacity(MAX_TX_BYTES);
        out.push(TX_VERSION);
        out.push(self.kind() as u8);
        out.extend_from_slice(&fr_to_bytes(&b.anchor));
        for x in b.nullifiers.iter().chain(&b.commitments) {
            out.extend_from_slice(&fr_to_bytes(x));
        }
        out.extend_from_slice(&b.value_in.0.to_le_bytes());
        out.extend_from_slice(&b.value_out.0.to_le_bytes());
        out.extend_from_slice(&b.asset.0.to_le_bytes());
        out.extend_from_slice(&b.auditor.to_bytes());
        b.audit.write(&mut out);
        for o in &b.outputs {
            out.extend_from_slice(&o.to_bytes());
        }
        out.extend_from_slice(&b.expiry_height.to_le_bytes());
        out.extend_from_slice(&b.network);
        if with_proof {
            out.extend_from_slice(&b.proof.0);
        }
        if let Some(boundary) = self.boundary() {
            boundary.with_bytes(|b| out.extend_from_slice(b));
        }
        if let (Self::Shield { proof, .. }, true) = (self, with_proof) {
            out.extend_from_slice(&proof.0);
        }
        out
    }

    /// What an issuer signs to authorize a mint: everything but the signature.
    pub fn sighash(&self) -> [u8; 32] {
        blake3::derive_key("shoji 2026 issuer signature v1", &self.unsigned_bytes())
    }

    /// The transaction id: a hash of what the transaction does (every field but the proofs
    /// and a mint's signature, as ZIP-244 separates a transaction's effects from what
    /// authorizes them). A Groth16 proof can be rerandomized by anyone into other valid bytes:
    /// such a twin has the same id, so a sender recognizes its payment whatever proof bytes
    /// were ordered. Use it to name and report; use [`Transaction::auth_id`] to cache what was
    /// checked about exact bytes.
    pub fn id(&self) -> TxId {
        TxId(blake3::derive_key(
            "shoji 2026 transaction id v3",
            &self.encode_fields(false),
        ))
    }

    /// blake3 of the whole encoding: names these exact bytes, proof and signature included
    /// (two twins of one [`Transaction::id`] differ here). What a verification verdict or a
    /// decoded copy may be cached under.
    pub fn auth_id(&self) -> TxId {
        TxId(*blake3::hash(&self.to_bytes()).as_bytes())
    }

    /// Strict decoding: exact length for the kind, canonical field elements, points on the curve
    /// and in the prime-order subgroup (the proof's points are checked by [`Proof::to_ark`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        Self::decode(bytes, true)
    }

    /// Decodes with every check of [`Transaction::from_bytes`] but the dearest one: the
    /// prime-order subgroup check of the audit record's ephemeral key `epk` (a Jubjub scalar
    /// multiplication). Only for callers that accept the transaction only if its proof
    /// verifies: the statement computes `epk = k·G` from multiples of the subgroup's generator,
    /// so a valid proof implies the check. On its own, the result may hold an `epk` outside the
    /// subgroup.
    pub fn from_bytes_proof_bound(bytes: &[u8]) -> Result<Self, EncodingError> {
        Self::decode(bytes, false)
    }

    /// The layout of a transaction, without decoding a field: the version byte, a known kind
    /// and the exact length of that kind. A pure function of the bytes and cheap, for
    /// consensus, where every validator must judge a block's payloads alike before anything
    /// is verified. Passing it says nothing of the fields' validity.
    pub fn check_layout(bytes: &[u8]) -> Result<TxKind, EncodingError> {
        let mut r = Reader::new("transaction", bytes);
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(EncodingError::Unknown {
                what: "transaction version",
                value: version as u64,
            });
        }
        let kind = TxKind::from_u8(r.u8()?)?;
        let expected = match kind {
            TxKind::Transfer => TRANSFER_BYTES,
            TxKind::Mint => MINT_BYTES,
            TxKind::Redeem => REDEEM_BYTES,
            TxKind::Shield => SHIELD_BYTES,
            TxKind::Unshield => UNSHIELD_BYTES,
        };
        if bytes.len() != expected {
            return Err(EncodingError::Length {
                what: "transaction",
                expected,
                got: bytes.len(),
            });
        }
        Ok(kind)
    }

    fn decode(bytes: &[u8], check_subgroup: bool) -> Result<Self, EncodingError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(EncodingError::Length {
                what: "transaction",
                expected: MAX_TX_BYTES,
                got: bytes.len(),
            });
        }
        let kind = Self::check_layout(bytes)?;
        let mut r = Reader::new("transaction", bytes);
        r.take(2)?;
        let anchor = r.fr("anchor")?;
        let nullifiers = [r.fr("nullifier")?, r.fr("nullifier")?];
        let commitments = [r.fr("commitment")?, r.fr("commitment")?];
        let value_in = Amount(r.u64()?);
        let value_out = Amount(r.u64()?);
        let asset = AssetId(r.u64()?);
        let auditor = AuditPublicKey::from_bytes(r.take(32)?)?;
        let audit = match check_subgroup {
            true => AuditRecord::read(&mut r)?,
            false => AuditRecord::read_proof_bound(&mut r)?,
        };
        let out0 = NoteCiphertext::from_bytes(&r.array()?);
        let out1 = NoteCiphertext::from_bytes(&r.array()?);
        let expiry_height = r.u64()?;
        let network = r.array()?;
        let proof = Proof(r.array()?);
        let bundle = ShieldedBundle {
            anchor,
            nullifiers,
            commitments,
            value_in,
            value_out,
            asset,
            auditor,
            audit,
            outputs: [out0, out1],
            expiry_height,
            network,
            proof,
        };
        let tx = match kind {
            TxKind::Transfer => Self::Transfer(bundle),
            TxKind::Mint => Self::Mint {
                bundle,
                auth: IssuerAuth {
                    issuer: r.array()?,
                    signature: r.array()?,
                },
            },
            TxKind::Redeem => Self::Redeem {
                bundle,
                issuer: r.array()?,
            },
            TxKind::Shield => Self::Shield {
                bundle,
                debit: AccountDebit::read(&mut r)?,
                proof: WithdrawProofBytes(r.array()?),
            },
            TxKind::Unshield => Self::Unshield {
                bundle,
                account: read_account_key(&mut r)?,
            },
        };
        r.finish()?;
        Ok(tx)
    }
}

/// A transaction id.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TxId(pub [u8; 32]);

impl std::fmt::Display for TxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::encoding::hex_encode(&self.0))
    }
}

impl std::fmt::Debug for TxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxId({self})")
    }
}
