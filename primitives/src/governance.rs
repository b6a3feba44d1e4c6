//! Governance transactions: changes to the network's policy approved by a threshold of the
//! administrator keys named in genesis (docs/protocol/governance.md).
//!
//! A governance transaction carries one [`GovernanceAction`], a sequence number and Ed25519
//! approvals. It takes effect only if at least `threshold` distinct administrators approved
//! exactly this action, this sequence number and this network ([`GovernanceTx::sighash`]); the
//! ledger accepts sequence numbers in order, so an approved change cannot be replayed, and one
//! signed for another network (another genesis) cannot be used on this one.
//!
//! Encoding (integers little-endian): `version:u8 ‖ kind:u8 (= 3) ‖ seq:u64 ‖ action ‖
//! approvals:u8 ‖ (admin(32) ‖ signature(64))*`. Actions: `0 ‖ issuer(32) ‖ count:u8 ‖
//! asset:u64*` sets the assets an issuer may mint and redeem (none revokes it); `1 ‖ auditor(32)`
//! designates the auditor key every later transfer must encrypt its audit record to; `2 ‖
//! count:u8 ‖ (id:u16 ‖ key(32))*` names the next validator set (ids increasing; the ledger
//! accepts only removals that keep at least four members, with their keys unchanged); `3 ‖
//! id:u16 ‖ key(32) ‖ len:u8 ‖ address` adds a validator reached at `address`. Set changes
//! take effect at a checkpoint boundary. `4 ‖ key(32)` designates the account-tier auditor.
//! `5 ‖ len:u8 ‖ name ‖ identity(32) ‖ count:u8 ‖ address(64)*` registers a participant of
//! the consortium under `name`, or updates its entry; `6 ‖ len:u8 ‖ name` revokes it.
//! Escrowed recovery ([`crate::recovery`]): `7 ‖ agents` names the recovery agents (approved by
//! the administrators); `8 ‖ len:u8 ‖ name ‖ escrow` escrows a participant's seed and
//! `10 ‖ len:u8 ‖ name` cancels its open recovery (both signed by the participant's identity
//! key alone); `9 ‖ len:u8 ‖ name ‖ request key(32)` opens a recovery (signed by one agent) and
//! `11 ‖ len:u8 ‖ name ‖ agent:u8 ‖ share(80)` releases an agent's share (signed by that agent).
//! Those four carry exactly one signature, in the approvals' place
//! ([`GovernanceAction::authority`]).

use crate::audit::AuditPublicKey;
use crate::encoding::{EncodingError, Reader};
use crate::keys::Address;
use crate::note::AssetId;
use crate::recovery::{Escrow, RecoveryAgents, SEALED_SHARE_BYTES};
use crate::tx::{TxId, TX_VERSION};
use ed25519_dalek::Signer;
use std::collections::{BTreeMap, BTreeSet};

/// The kind byte of a governance transaction (after the shielded kinds 0–2).
pub const GOVERNANCE_KIND: u8 = 3;
/// Most assets one issuer registration lists.
pub const MAX_ISSUER_ASSETS: usize = 64;
/// Most approvals one governance transaction carries.
pub const MAX_APPROVALS: usize = 64;
/// Most validators a validator set names.
pub const MAX_VALIDATORS: usize = 64;
/// No governance transaction is longer than this.
pub const MAX_GOVERNANCE_BYTES: usize =
    2 + 8 + 1 + 1 + 34 * MAX_VALIDATORS + 1 + 96 * MAX_APPROVALS;

/// Longest participant name, in bytes (UTF-8).
pub const MAX_NAME_BYTES: usize = 64;
/// Most addresses one participant registers.
pub const MAX_PARTICIPANT_ADDRESSES: usize = 8;

/// Whether `name` can name a participant: 1 to [`MAX_NAME_BYTES`] bytes of UTF-8, no control
/// characters, no whitespace at either end, and not starting as an address does (`shoji1`), so a
/// wallet told to pay it cannot mistake one for the other.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.trim() == name
        && !name.chars().any(char::is_control)
        && !name.starts_with(crate::keys::ADDRESS_PREFIX)
}

/// A participant of the consortium as the registry lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// Its shielded addresses, 1 to [`MAX_PARTICIPANT_ADDRESSES`]; payments to its name go to
    /// the first.
    pub addresses: Vec<Address>,
    /// Its Ed25519 identity key, which signs its registry and recovery messages.
    pub identity: [u8; 32],
}

impl Participant {
    /// `identity(32) ‖ count:u8 ‖ address(64)*`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.identity);
        let n = self.addresses.len().min(MAX_PARTICIPANT_ADDRESSES);
        out.push(n as u8);
        for a in &self.addresses[..n] {
            out.extend_from_slice(&a.to_bytes());
        }
    }

    /// Strict decoding of [`Participant::write`]: 1 to [`MAX_PARTICIPANT_ADDRESSES`] valid
    /// addresses, none twice.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, EncodingError> {
        let identity = r.array()?;
        let n = r.u8()? as usize;
        if n == 0 || n > MAX_PARTICIPANT_ADDRESSES {
            return Err(EncodingError::Invalid("a participant has 1 to 8 addresses"));
        }
        let mut addresses: Vec<Address> = Vec::with_capacity(n);
        for _ in 0..n {
            let a = Address::from_bytes(&r.array()?)?;
            if addresses.contains(&a) {
                return Err(EncodingError::Invalid(
                    "a participant lists an address twice",
                ));
            }
            addresses.push(a);
        }
        Ok(Participant {
            addresses,
            identity,
        })
    }
}

/// Writes `len:u8 ‖ name`.
pub fn write_name(out: &mut Vec<u8>, name: &str) {
    let b = &name.as_bytes()[..name.len().min(MAX_NAME_BYTES)];
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

/// Reads what [`write_name`] wrote, refusing a name [`valid_name`] refuses.
pub fn read_name(r: &mut Reader<'_>) -> Result<String, EncodingError> {
    let n = r.u8()? as usize;
    std::str::from_utf8(r.take(n)?)
        .ok()
        .filter(|s| valid_name(s))
        .map(str::to_string)
        .ok_or(EncodingError::Invalid("a participant name"))
}

/// A change of policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GovernanceAction {
    /// The issuer (an Ed25519 public key) may mint and redeem exactly these assets from now on;
    /// an empty set revokes it.
    SetIssuer {
        /// The issuer's Ed25519 public key.
        issuer: [u8; 32],
        /// The assets it may mint and redeem.
        assets: BTreeSet<AssetId>,
    },
    /// Every later transaction must encrypt its audit record to this key.
    SetAuditor {
        /// The auditor's public key.
        auditor: AuditPublicKey,
    },
    /// The validators (replica id → Ed25519 public key) of the next epoch, which begins at
    /// the first checkpoint boundary a full log window after the block that enacts this.
    SetValidators {
        /// The next epoch's members.
        validators: BTreeMap<u16, [u8; 32]>,
    },
    /// The next epoch's validators are the current ones and this one, a new member reached at
    /// `address`. It begins at the same boundary as [`GovernanceAction::SetValidators`]; from
    /// the block that enacts this until then, the new validator catches up (as a learner).
    AddValidator {
        /// Its replica id (unused in the current set).
        id: u16,
        /// Its Ed25519 public key (unused in the current set).
        key: [u8; 32],
        /// Where the other validators reach it: `IP:port` as Rust writes a socket address.
        address: String,
    },
    /// Every later account transfer must encrypt its amount to this account-tier auditor key
    /// (docs/protocol/accounts.md); on a network without accounts, this opens them.
    SetAccountAuditor {
        /// The auditor's account-tier public key (Ristretto).
        auditor: shoji_confidential::PublicKey,
    },
    /// Registers a participant under `name`, or replaces its entry (and lifts a revocation).
    RegisterParticipant {
        /// The name wallets pay and auditors report ([`valid_name`]).
        name: String,
        /// Its addresses and identity key.
        participant: Participant,
    },
    /// Revokes the participant registered under `name`: paying the name is refused from then
    /// on; the entry stays, marked revoked, so that its history still reads.
    RevokeParticipant {
        /// The registered name.
        name: String,
    },
    /// Names the consortium's recovery agents, their threshold and the challenge window
    /// (docs/protocol/recovery.md). Approved by the administrators.
    SetRecoveryAgents {
        /// The agents, the threshold and the window.
        agents: RecoveryAgents,
    },
    /// Escrows the participant's seed with the current recovery agents, replacing an earlier
    /// escrow. Signed by the participant's identity key.
    EscrowSeed {
        /// The registered name.
        name: String,
        /// The escrow.
        escrow: Escrow,
    },
    /// Opens a recovery of the participant's seed: after the window, agents may release their
    /// shares to `request_key`. Signed by one agent, which checked who asked out of band.
    OpenRecovery {
        /// The registered name.
        name: String,
        /// The Ristretto key (compressed) the shares are to be released to.
        request_key: [u8; 32],
    },
    /// Cancels the participant's open recovery. Signed by the participant's identity key.
    CancelRecovery {
        /// The registered name.
        name: String,
    },
    /// Releases agent `agent`'s share of the participant's escrow, encrypted to the open
    /// recovery's request key. Signed by that agent, once the window has passed.
    ReleaseShare {
        /// The registered name.
        name: String,
        /// The agent's index in the policy.
        agent: u8,
        /// The share, encrypted to the request key.
        share: [u8; SEALED_SHARE_BYTES],
    },
}

/// Whose signature authorizes a governance action ([`GovernanceAction::authority`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority<'a> {
    /// A threshold of the administrators ([`GovernanceTx::check_approvals`]).
    Admins,
    /// The identity key of the participant registered under this name.
    Participant(&'a str),
    /// Any one recovery agent.
    AnyAgent,
    /// The recovery agent of this index.
    Agent(u8),
}

impl GovernanceAction {
    /// Who must sign this action: the administrators for every change of policy; the
    /// participant itself for its escrow and for cancelling a recovery of it; a recovery agent
    /// for opening a recovery and releasing a share.
    pub fn authority(&self) -> Authority<'_> {
        match self {
            Self::EscrowSeed { name, .. } | Self::CancelRecovery { name } => {
                Authority::Participant(name)
            }
            Self::OpenRecovery { .. } => Authority::AnyAgent,
            Self::ReleaseShare { agent, .. } => Authority::Agent(*agent),
            _ => Authority::Admins,
        }
    }
}

/// Longest [`GovernanceAction::AddValidator`] address, in bytes.
pub const MAX_ADDRESS_BYTES: usize = 64;

/// Whether `address` is a socket address in its canonical form (`IP:port`, as
/// `SocketAddr`'s `Display` writes it) of at most [`MAX_ADDRESS_BYTES`].
pub fn canonical_address(address: &str) -> bool {
    address.len() <= MAX_ADDRESS_BYTES
        && address
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.to_string() == address)
}

impl std::fmt::Display for GovernanceAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SetIssuer { issuer, assets } if assets.is_empty() => {
                write!(f, "revoke issuer {}", crate::encoding::hex_encode(issuer))
            }
            Self::SetIssuer { issuer, assets } => {
                let list: Vec<String> = assets.iter().map(|a| a.0.to_string()).collect();
                write!(
                    f,
                    "issuer {} may mint and redeem assets {}",
                    crate::encoding::hex_encode(issuer),
                    list.join(", ")
                )
            }
            Self::SetAuditor { auditor } => write!(
                f,
                "designate auditor {}",
                crate::encoding::hex_encode(&auditor.to_bytes())
            ),
            Self::SetValidators { validators } => {
                let list: Vec<String> = validators
                    .iter()
                    .map(|(id, key)| format!("{id} ({})", short(key)))
                    .collect();
                write!(f, "next validator set: {}", list.join(", "))
            }
            Self::AddValidator { id, key, address } => {
                write!(f, "add validator {id} ({}) at {address}", short(key))
            }
            Self::SetAccountAuditor { auditor } => write!(
                f,
                "designate account auditor {}",
                crate::encoding::hex_encode(&auditor.to_bytes())
            ),
            Self::RegisterParticipant { name, participant } => {
                let list: Vec<String> = participant
                    .addresses
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                write!(
                    f,
                    "register participant {name:?} (identity {}) at {}",
                    short(&participant.identity),
                    list.join(", ")
                )
            }
            Self::RevokeParticipant { name } => write!(f, "revoke participant {name:?}"),
            Self::SetRecoveryAgents { agents } => {
                let list: Vec<String> = agents.agents.iter().map(|a| short(&a.signing)).collect();
                write!(
                    f,
                    "recovery agents {} (any {} of them), window {} blocks",
                    list.join(", "),
                    agents.threshold,
                    agents.window_blocks
                )
            }
            Self::EscrowSeed { name, escrow } => write!(
                f,
                "escrow the seed of {name:?} with the recovery agents ({} of {} shares)",
                escrow.commitments.len(),
                escrow.shares.len()
            ),
            Self::OpenRecovery { name, request_key } => write!(
                f,
                "open a recovery of {name:?} to request key {}",
                short(request_key)
            ),
            Self::CancelRecovery { name } => write!(f, "cancel the recovery of {name:?}"),
            Self::ReleaseShare { name, agent, .. } => {
                write!(f, "agent {agent} releases its share of {name:?}")
            }
        }
    }
}

/// One administrator's approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The administrator's Ed25519 public key.
    pub admin: [u8; 32],
    /// Its signature over [`GovernanceTx::sighash`].
    pub signature: [u8; 64],
}

/// A governance transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GovernanceTx {
    /// Its place in the sequence of governance transactions the ledger enacts (0 first).
    pub seq: u64,
    /// What it changes.
    pub action: GovernanceAction,
    /// Administrators' approvals, in any order.
    pub approvals: Vec<Approval>,
}

/// Who may approve governance transactions: fixed at genesis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GovernanceRules {
    /// The administrators' Ed25519 public keys.
    pub admins: BTreeSet<[u8; 32]>,
    /// How many distinct administrators must approve (0: governance is disabled).
    pub threshold: usize,
}

/// Why a governance transaction's approvals do not authorize it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// The network has no governance (no administrators or a zero threshold).
    #[error("this network has no governance administrators")]
    Disabled,
    /// An approval is by a key that is not an administrator.
    #[error("approval by {0}, which is not an administrator")]
    NotAnAdmin(String),
    /// An administrator approved twice.
    #[error("administrator {0} approved twice")]
    Duplicate(String),
    /// A signature does not verify.
    #[error("the approval of administrator {0} has an invalid signature")]
    BadSignature(String),
    /// A participant's or an agent's action carries no signature, or more than one.
    #[error("{0} signatures: this action is signed by exactly one key")]
    NotOneSignature(usize),
    /// A participant's or an agent's action signed by another key than the one it needs.
    #[error("signed by {0}, which may not sign this action")]
    WrongSigner(String),
    /// Too few approvals.
    #[error("{got} approvals, {needed} needed")]
    BelowThreshold {
        /// Valid approvals.
        got: usize,
        /// The threshold.
        needed: usize,
    },
}

fn short(key: &[u8; 32]) -> String {
    crate::encoding::hex_encode(&key[..8])
}

impl GovernanceTx {
    /// A transaction with no approvals yet.
    pub fn new(seq: u64, action: GovernanceAction) -> Self {
        Self {
            seq,
            action,
            approvals: Vec::new(),
        }
    }

    /// The encoding without approvals: what administrators approve.
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        let mut out = vec![TX_VERSION, GOVERNANCE_KIND];
        out.extend_from_slice(&self.seq.to_le_bytes());
        match &self.action {
            GovernanceAction::SetIssuer { issuer, assets } => {
                out.push(0);
                out.extend_from_slice(issuer);
                // Decoding and `check_limits` keep this below 256.
                out.push(assets.len().min(u8::MAX as usize) as u8);
                for a in assets.iter().take(u8::MAX as usize) {
                    out.extend_from_slice(&a.0.to_le_bytes());
                }
            }
            GovernanceAction::SetAuditor { auditor } => {
                out.push(1);
                out.extend_from_slice(&auditor.to_bytes());
            }
            GovernanceAction::SetValidators { validators } => {
                out.push(2);
                out.push(validators.len().min(u8::MAX as usize) as u8);
                for (id, key) in validators.iter().take(u8::MAX as usize) {
                    out.extend_from_slice(&id.to_le_bytes());
                    out.extend_from_slice(key);
                }
            }
            GovernanceAction::AddValidator { id, key, address } => {
                out.push(3);
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(key);
                // Decoding and `canonical_address` keep this within MAX_ADDRESS_BYTES.
                let a = &address.as_bytes()[..address.len().min(MAX_ADDRESS_BYTES)];
                out.push(a.len() as u8);
                out.extend_from_slice(a);
            }
            GovernanceAction::SetAccountAuditor { auditor } => {
                out.push(4);
                out.extend_from_slice(&auditor.to_bytes());
            }
            GovernanceAction::RegisterParticipant { name, participant } => {
                out.push(5);
                write_name(&mut out, name);
                participant.write(&mut out);
            }
            GovernanceAction::RevokeParticipant { name } => {
                out.push(6);
                write_name(&mut out, name);
            }
            GovernanceAction::SetRecoveryAgents { agents } => {
                out.push(7);
                agents.write(&mut out);
            }
            GovernanceAction::EscrowSeed { name, escrow } => {
                out.push(8);
                write_name(&mut out, name);
                escrow.write(&mut out);
            }
            GovernanceAction::OpenRecovery { name, request_key } => {
                out.push(9);
                write_name(&mut out, name);
                out.extend_from_slice(request_key);
            }
            GovernanceAction::CancelRecovery { name } => {
                out.push(10);
                write_name(&mut out, name);
            }
            GovernanceAction::ReleaseShare { name, agent, share } => {
                out.push(11);
                write_name(&mut out, name);
                out.push(*agent);
                out.extend_from_slice(share);
            }
        }
        out
    }

    /// What administrators sign: the unsigned encoding bound to the network's identifier (the
    /// hash of its genesis).
    pub fn sighash(&self, network_id: &[u8; 32]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("shoji 2026 governance approval v1");
        h.update(network_id);
        h.update(&self.unsigned_bytes());
        *h.finalize().as_bytes()
    }

    /// Adds `key`'s approval for `network_id` (replacing an earlier one by the same key).
    pub fn approve(&mut self, key: &ed25519_dalek::SigningKey, network_id: &[u8; 32]) {
        let admin = key.verifying_key().to_bytes();
        let signature = key.sign(&self.sighash(network_id)).to_bytes();
        self.approvals.retain(|a| a.admin != admin);
        self.approvals.push(Approval { admin, signature });
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.unsigned_bytes();
        out.push(self.approvals.len().min(u8::MAX as usize) as u8);
        for a in self.approvals.iter().take(u8::MAX as usize) {
            out.extend_from_slice(&a.admin);
            out.extend_from_slice(&a.signature);
        }
        out
    }

    /// The transaction id: blake3 of the whole encoding.
    pub fn id(&self) -> TxId {
        TxId(*blake3::hash(&self.to_bytes()).as_bytes())
    }

    /// Whether these bytes claim to be a governance transaction (version and kind bytes).
    pub fn is_governance(bytes: &[u8]) -> bool {
        bytes.len() >= 2 && bytes[0] == TX_VERSION && bytes[1] == GOVERNANCE_KIND
    }

    /// Strict decoding: known version, kind and action, at most [`MAX_ISSUER_ASSETS`] assets in
    /// increasing order, a valid auditor point, at most [`MAX_APPROVALS`] approvals, no trailing
    /// bytes. Signatures are checked by [`GovernanceTx::check_approvals`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        if bytes.len() > MAX_GOVERNANCE_BYTES {
            return Err(EncodingError::Length {
                what: "governance transaction",
                expected: MAX_GOVERNANCE_BYTES,
                got: bytes.len(),
            });
        }
        let mut r = Reader::new("governance transaction", bytes);
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(EncodingError::Unknown {
                what: "transaction version",
                value: version as u64,
            });
        }
        let kind = r.u8()?;
        if kind != GOVERNANCE_KIND {
            return Err(EncodingError::Unknown {
                what: "governance transaction kind",
                value: kind as u64,
            });
        }
        let seq = r.u64()?;
        let action = match r.u8()? {
            0 => {
                let issuer: [u8; 32] = r.array()?;
                let n = r.u8()? as usize;
                if n > MAX_ISSUER_ASSETS {
                    return Err(EncodingError::Invalid("too many assets for one issuer"));
                }
                let mut assets = BTreeSet::new();
                let mut last = None;
                for _ in 0..n {
                    let a = r.u64()?;
                    if last.is_some_and(|l| a <= l) {
                        return Err(EncodingError::Invalid(
                            "issuer assets must be listed once each, in increasing order",
                        ));
                    }
                    last = Some(a);
                    assets.insert(AssetId(a));
                }
                GovernanceAction::SetIssuer { issuer, assets }
            }
            1 => GovernanceAction::SetAuditor {
                auditor: AuditPublicKey::from_bytes(&r.array::<32>()?)?,
            },
            4 => GovernanceAction::SetAccountAuditor {
                auditor: shoji_confidential::PublicKey::from_bytes(&r.array::<32>()?)
                    .map_err(|_| EncodingError::InvalidPoint("account auditor key"))?,
            },
            2 => {
                let n = r.u8()? as usize;
                if n == 0 || n > MAX_VALIDATORS {
                    return Err(EncodingError::Invalid("a validator set of 1 to 64 members"));
                }
                let mut validators = BTreeMap::new();
                let mut last = None;
                for _ in 0..n {
                    let id = u16::from_le_bytes(r.array()?);
                    if last.is_some_and(|l| id <= l) {
                        return Err(EncodingError::Invalid(
                            "validator ids must be listed once each, in increasing order",
                        ));
                    }
                    last = Some(id);
                    validators.insert(id, r.array()?);
                }
                GovernanceAction::SetValidators { validators }
            }
            3 => {
                let id = u16::from_le_bytes(r.array()?);
                let key: [u8; 32] = r.array()?;
                let n = r.u8()? as usize;
                let address = std::str::from_utf8(r.take(n)?)
                    .ok()
                    .filter(|a| canonical_address(a))
                    .ok_or(EncodingError::Invalid(
                        "a validator address is IP:port in canonical form",
                    ))?
                    .to_string();
                GovernanceAction::AddValidator { id, key, address }
            }
            5 => GovernanceAction::RegisterParticipant {
                name: read_name(&mut r)?,
                participant: Participant::read(&mut r)?,
            },
            6 => GovernanceAction::RevokeParticipant {
                name: read_name(&mut r)?,
            },
            7 => GovernanceAction::SetRecoveryAgents {
                agents: RecoveryAgents::read(&mut r)?,
            },
            8 => GovernanceAction::EscrowSeed {
                name: read_name(&mut r)?,
                escrow: Escrow::read(&mut r)?,
            },
            9 => {
                let name = read_name(&mut r)?;
                let request_key: [u8; 32] = r.array()?;
                if curve25519_dalek::ristretto::CompressedRistretto(request_key)
                    .decompress()
                    .is_none()
                {
                    return Err(EncodingError::InvalidPoint("recovery request key"));
                }
                GovernanceAction::OpenRecovery { name, request_key }
            }
            10 => GovernanceAction::CancelRecovery {
                name: read_name(&mut r)?,
            },
            11 => GovernanceAction::ReleaseShare {
                name: read_name(&mut r)?,
                agent: r.u8()?,
                share: crate::recovery::read_sealed_share(&mut r)?,
            },
            v => {
                return Err(EncodingError::Unknown {
                    what: "governance action",
                    value: v as u64,
                })
            }
        };
        let n = r.u8()? as usize;
        if n > MAX_APPROVALS {
            return Err(EncodingError::Invalid("too many approvals"));
        }
        let mut approvals = Vec::with_capacity(n);
        for _ in 0..n {
            approvals.push(Approval {
                admin: r.array()?,
                signature: r.array()?,
            });
        }
        r.finish()?;
        Ok(Self {
            seq,
            action,
            approvals,
        })
    }

    /// Checks that this transaction carries exactly one approval, by `key`, and that it
    /// verifies for `network_id`: how a participant's or an agent's action is authorized
    /// ([`GovernanceAction::authority`]).
    pub fn check_signed_by(
        &self,
        key: &[u8; 32],
        network_id: &[u8; 32],
    ) -> Result<(), ApprovalError> {
        let [a] = self.approvals.as_slice() else {
            return Err(ApprovalError::NotOneSignature(self.approvals.len()));
        };
        if a.admin != *key {
            return Err(ApprovalError::WrongSigner(short(&a.admin)));
        }
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&a.admin)
            .map_err(|_| ApprovalError::BadSignature(short(&a.admin)))?;
        vk.verify_strict(
            &self.sighash(network_id),
            &ed25519_dalek::Signature::from_bytes(&a.signature),
        )
        .map_err(|_| ApprovalError::BadSignature(short(&a.admin)))
    }

    /// Checks that at least `rules.threshold` distinct administrators approved this
    /// transaction for `network_id`, and that every approval it carries is by an administrator
    /// and verifies (a transaction with one bad approval is refused whole, so nothing
    /// unverified is ever stored as part of an enacted change).
    pub fn check_approvals(
        &self,
        rules: &GovernanceRules,
        network_id: &[u8; 32],
    ) -> Result<(), ApprovalError> {
        if rules.threshold == 0 || rules.admins.is_empty() {
            return Err(ApprovalError::Disabled);
        }
        let msg = self.sighash(network_id);
        let mut seen = BTreeSet::new();
        for a in &self.approvals {
            if !rules.admins.contains(&a.admin) {
                return Err(ApprovalError::NotAnAdmin(short(&a.admin)));
            }
            if !seen.insert(a.admin) {
                return Err(ApprovalError::Duplicate(short(&a.admin)));
            }
            let key = ed25519_dalek::VerifyingKey::from_bytes(&a.admin)
                .map_err(|_| ApprovalError::BadSignature(short(&a.admin)))?;
            let sig = ed25519_dalek::Signature::from_bytes(&a.signature);
            key.verify_strict(&msg, &sig)
                .map_err(|_| ApprovalError::BadSignature(short(&a.admin)))?;
        }
        if seen.len() < rules.threshold {
            return Err(ApprovalError::BelowThreshold {
                got: seen.len(),
                needed: rules.threshold,
            });
        }
        Ok(())
    }
}

/// Issuers and the assets each may mint and redeem.
pub type IssuerRegistry = BTreeMap<[u8; 32], BTreeSet<AssetId>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditSecretKey;
    use rand_core::OsRng;

    const NET: [u8; 32] = [7; 32];

    fn admins(n: u8) -> Vec<ed25519_dalek::SigningKey> {
        (1..=n)
            .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i; 32]))
            .collect()
    }

    fn rules(keys: &[ed25519_dalek::SigningKey], threshold: usize) -> GovernanceRules {
        GovernanceRules {
            admins: keys.iter().map(|k| k.verifying_key().to_bytes()).collect(),
            threshold,
        }
    }

    fn set_issuer() -> GovernanceTx {
        GovernanceTx::new(
            4,
            GovernanceAction::SetIssuer {
                issuer: [9; 32],
                assets: [AssetId(840), AssetId(978)].into(),
            },
        )
    }

    #[test]
    fn validator_addresses_must_be_canonical() {
        for bad in [
            "validator-4:7004",
            "10.0.0.5",
            "10.0.0.5:07004",
            "010.0.0.5:7004",
            "",
        ] {
            let tx = GovernanceTx::new(
                0,
                GovernanceAction::AddValidator {
                    id: 4,
                    key: [4; 32],
                    address: bad.into(),
                },
            );
            assert!(!canonical_address(bad), "{bad}");
            assert!(GovernanceTx::from_bytes(&tx.to_bytes()).is_err(), "{bad}");
        }
        assert!(canonical_address("127.0.0.1:7004"));
    }

    fn participant(seeds: &[u8]) -> Participant {
        Participant {
            addresses: seeds
                .iter()
                .map(|i| {
                    crate::keys::SpendingKeys::from_seed(&crate::keys::WalletSeed([*i; 32]))
                        .address()
                })
                .collect(),
            identity: [7; 32],
        }
    }

    /// Registry actions round-trip; names that could pass for an address or are blank, and
    /// entries with no, too many or repeated addresses, do not decode.
    #[test]
    fn registry_actions_round_trip_and_refuse_bad_names_and_entries() {
        let register = |name: &str, p: Participant| {
            GovernanceTx::new(
                4,
                GovernanceAction::RegisterParticipant {
                    name: name.into(),
                    participant: p,
                },
            )
        };
        for tx in [
            register("Bank B", participant(&[1, 2])),
            register("銀行 C", participant(&[3])),
            GovernanceTx::new(
                5,
                GovernanceAction::RevokeParticipant {
                    name: "Bank B".into(),
                },
            ),
        ] {
            let bytes = tx.to_bytes();
            assert_eq!(GovernanceTx::from_bytes(&bytes), Ok(tx));
            for cut in 0..bytes.len() {
                assert!(GovernanceTx::from_bytes(&bytes[..cut]).is_err());
            }
        }
        let address = participant(&[1]).addresses[0].to_string();
        for bad in [
            "",
            " Bank B",
            "Bank B ",
            "Bank\nB",
            "shoji1bank",
            address.as_str(),
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
            if bad.len() <= MAX_NAME_BYTES {
                let bytes = register(bad, participant(&[1])).to_bytes();
                assert!(GovernanceTx::from_bytes(&bytes).is_err(), "{bad:?}");
            }
        }
        assert!(valid_name("Bank B"));
        for p in [participant(&[]), participant(&[1; 9]), participant(&[1, 1])] {
            let bytes = register("Bank B", p).to_bytes();
            assert!(GovernanceTx::from_bytes(&bytes).is_err());
        }
    }

    #[test]
    fn recovery_actions_round_trip_are_signed_by_one_key_and_refuse_bad_keys() {
        use crate::recovery::{RecoveryAgent, MAX_AGENTS};
        use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;
        use curve25519_dalek::scalar::Scalar;
        let point = |k: u64| (Scalar::from(k) * G).compress().to_bytes();
        let keys = admins(4);
        let agents = RecoveryAgents {
            agents: (0..3)
                .map(|i| RecoveryAgent {
                    signing: keys[i].verifying_key().to_bytes(),
                    encryption: point(10 + i as u64),
                })
                .collect(),
            threshold: 2,
            window_blocks: 5,
        };
        let mut share = [9u8; SEALED_SHARE_BYTES];
        share[..32].copy_from_slice(&point(3));
        let escrow = Escrow {
            agents: agents.id(),
            commitments: vec![point(1), point(2)],
            sealed_seed: [4; 48],
            shares: vec![share; 3],
        };
        let name = || "Bank B".to_string();
        let actions = [
            GovernanceAction::SetRecoveryAgents {
                agents: agents.clone(),
            },
            GovernanceAction::EscrowSeed {
                name: name(),
                escrow: escrow.clone(),
            },
            GovernanceAction::OpenRecovery {
                name: name(),
                request_key: point(5),
            },
            GovernanceAction::CancelRecovery { name: name() },
            GovernanceAction::ReleaseShare {
                name: name(),
                agent: 1,
                share,
            },
        ];
        for action in actions {
            let mut tx = GovernanceTx::new(7, action);
            tx.approve(&keys[3], &[1; 32]);
            let bytes = tx.to_bytes();
            assert_eq!(GovernanceTx::from_bytes(&bytes), Ok(tx.clone()));
            for cut in 0..bytes.len() {
                assert!(GovernanceTx::from_bytes(&bytes[..cut]).is_err());
            }
            // Exactly one signature, by the key the ledger names, over this network.
            let signer = keys[3].verifying_key().to_bytes();
            assert_eq!(tx.check_signed_by(&signer, &[1; 32]), Ok(()));
            assert!(tx.check_signed_by(&signer, &[2; 32]).is_err());
            assert!(matches!(
                tx.check_signed_by(&keys[0].verifying_key().to_bytes(), &[1; 32]),
                Err(ApprovalError::WrongSigner(_))
            ));
            tx.approve(&keys[0], &[1; 32]);
            assert!(matches!(
                tx.check_signed_by(&signer, &[1; 32]),
                Err(ApprovalError::NotOneSignature(2))
            ));
        }
        // Keys that are not points, a share whose ephemeral key is not one, a key twice, a
        // threshold or a count out of range: refused when decoding.
        let not_a_point = [0xff; 32];
        let mut bad = Vec::new();
        let mut a = agents.clone();
        a.agents[1].encryption = not_a_point;
        bad.push(GovernanceAction::SetRecoveryAgents { agents: a });
        let mut a = agents.clone();
        a.agents[2].signing = a.agents[0].signing;
        bad.push(GovernanceAction::SetRecoveryAgents { agents: a });
        for (threshold, window) in [(0, 5), (4, 5), (2, 0)] {
            let mut a = agents.clone();
            a.threshold = threshold;
            a.window_blocks = window;
            bad.push(GovernanceAction::SetRecoveryAgents { agents: a });
        }
        let mut a = agents.clone();
        a.agents = vec![a.agents[0]; MAX_AGENTS + 1];
        bad.push(GovernanceAction::SetRecoveryAgents { agents: a });
        let mut e = escrow.clone();
        e.commitments[0] = not_a_point;
        bad.push(GovernanceAction::EscrowSeed {
            name: name(),
            escrow: e,
        });
        let mut e = escrow.clone();
        e.shares.truncate(1);
        bad.push(GovernanceAction::EscrowSeed {
            name: name(),
            escrow: e,
        });
        bad.push(GovernanceAction::OpenRecovery {
            name: name(),
            request_key: not_a_point,
        });
        let mut s = share;
        s[..32].copy_from_slice(&not_a_point);
        bad.push(GovernanceAction::ReleaseShare {
            name: name(),
            agent: 0,
            share: s,
        });
        for action in bad {
            let what = action.to_string();
            let bytes = GovernanceTx::new(7, action).to_bytes();
            assert!(GovernanceTx::from_bytes(&bytes).is_err(), "{what}");
        }
    }

    #[test]
    fn encoding_round_trips_and_is_strict() {
        let keys = admins(3);
        let auditor = AuditSecretKey::random(&mut OsRng).public_key();
        for mut tx in [
            set_issuer(),
            GovernanceTx::new(0, GovernanceAction::SetAuditor { auditor }),
            GovernanceTx::new(
                2,
                GovernanceAction::SetValidators {
                    validators: [(0, [1; 32]), (3, [2; 32]), (7, [3; 32])].into(),
                },
            ),
            GovernanceTx::new(
                1,
                GovernanceAction::SetIssuer {
                    issuer: [3; 32],
                    assets: BTreeSet::new(),
                },
            ),
            GovernanceTx::new(
                5,
                GovernanceAction::AddValidator {
                    id: 4,
                    key: [4; 32],
                    address: "10.0.0.5:7004".into(),
                },
            ),
            GovernanceTx::new(
                6,
                GovernanceAction::AddValidator {
                    id: 9,
                    key: [5; 32],
                    address: "[::1]:7009".into(),
                },
            ),
            GovernanceTx::new(
                7,
                GovernanceAction::SetAccountAuditor {
                    auditor: shoji_confidential::SecretKey::auditor(&[6; 32]).public(),
                },
            ),
        ] {
            tx.approve(&keys[0], &NET);
            tx.approve(&keys[2], &NET);
            let bytes = tx.to_bytes();
            assert!(GovernanceTx::is_governance(&bytes));
            assert_eq!(GovernanceTx::from_bytes(&bytes), Ok(tx.clone()));
            // Truncated anywhere, or extended: refused.
            for cut in 0..bytes.len() {
                assert!(
                    GovernanceTx::from_bytes(&bytes[..cut]).is_err(),
                    "cut {cut}"
                );
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(GovernanceTx::from_bytes(&long).is_err());
            // A shielded transaction's decoder refuses it.
            assert!(crate::tx::Transaction::from_bytes(&bytes).is_err());
        }
        // An account auditor key that is no Ristretto point is refused.
        let mut bad = GovernanceTx::new(
            7,
            GovernanceAction::SetAccountAuditor {
                auditor: shoji_confidential::SecretKey::auditor(&[6; 32]).public(),
            },
        )
        .to_bytes();
        bad[11..43].copy_from_slice(&[0xff; 32]);
        assert!(GovernanceTx::from_bytes(&bad).is_err());
        // Unknown action, unknown kind, assets out of order.
        let mut b = set_issuer().to_bytes();
        b[10] = 12;
        assert!(matches!(
            GovernanceTx::from_bytes(&b),
            Err(EncodingError::Unknown { .. })
        ));
        let mut b = set_issuer().to_bytes();
        b[1] = 2;
        assert!(GovernanceTx::from_bytes(&b).is_err());
        let mut b = set_issuer().to_bytes();
        let first = 2 + 8 + 1 + 32 + 1;
        b[first..first + 8].copy_from_slice(&979u64.to_le_bytes());
        assert!(matches!(
            GovernanceTx::from_bytes(&b),
            Err(EncodingError::Invalid(_))
        ));
    }

    #[test]
    fn approvals_reach_the_threshold_or_are_refused() {
        let keys = admins(3);
        let r = rules(&keys, 2);
        let mut tx = set_issuer();
        tx.approve(&keys[0], &NET);
        assert_eq!(
            tx.check_approvals(&r, &NET),
            Err(ApprovalError::BelowThreshold { got: 1, needed: 2 })
        );
        tx.approve(&keys[1], &NET);
        assert_eq!(tx.check_approvals(&r, &NET), Ok(()));
        // Approving again replaces, it does not count twice.
        tx.approve(&keys[1], &NET);
        assert_eq!(tx.approvals.len(), 2);
        // A repeated approval smuggled in is refused.
        let mut dup = tx.clone();
        dup.approvals.push(dup.approvals[0]);
        assert!(matches!(
            dup.check_approvals(&r, &NET),
            Err(ApprovalError::Duplicate(_))
        ));
        // Another network's identifier: the signatures do not verify.
        assert!(matches!(
            tx.check_approvals(&r, &[8; 32]),
            Err(ApprovalError::BadSignature(_))
        ));
        // One flipped byte of a signature.
        let mut bad = tx.clone();
        bad.approvals[1].signature[5] ^= 1;
        assert!(matches!(
            bad.check_approvals(&r, &NET),
            Err(ApprovalError::BadSignature(_))
        ));
        // Changing what was approved (the sequence number, or an asset) voids the approvals.
        let mut moved = tx.clone();
        moved.seq += 1;
        assert!(moved.check_approvals(&r, &NET).is_err());
        let mut widened = tx.clone();
        if let GovernanceAction::SetIssuer { assets, .. } = &mut widened.action {
            assets.insert(AssetId(1));
        }
        assert!(widened.check_approvals(&r, &NET).is_err());
        // A stranger's approval.
        let mut stranger = tx.clone();
        stranger.approve(&ed25519_dalek::SigningKey::from_bytes(&[42; 32]), &NET);
        assert!(matches!(
            stranger.check_approvals(&r, &NET),
            Err(ApprovalError::NotAnAdmin(_))
        ));
        // No governance configured.
        assert_eq!(
            tx.check_approvals(&GovernanceRules::default(), &NET),
            Err(ApprovalError::Disabled)
        );
    }
}
