//! The policy governance changes (auditor, issuers, validators) and its encoding.

use crate::*;
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::{EncodingError, Reader};
use shoji_primitives::governance::{
    read_name, write_name, IssuerRegistry, Participant, MAX_ISSUER_ASSETS,
};
use shoji_primitives::note::AssetId;
use shoji_primitives::recovery::{Escrow, Recovery, RecoveryAgents};
use std::collections::{BTreeMap, BTreeSet};

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
    /// The auditor's account-tier key every account transfer must encrypt its amount to;
    /// `None`: no confidential accounts.
    pub account_auditor: Option<shoji_confidential::PublicKey>,
    /// The consortium's participants, by name (docs/protocol/governance.md, "The participant
    /// registry").
    pub registry: BTreeMap<String, RegistryEntry>,
    /// The recovery agents participants escrow their seeds with (`None`: none named yet;
    /// docs/protocol/recovery.md).
    pub recovery_agents: Option<RecoveryAgents>,
}

/// A participant's entry in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    /// Its addresses and identity key.
    pub participant: Participant,
    /// Revoked by governance: its name is no longer paid.
    pub revoked: bool,
    /// Its seed, escrowed with the recovery agents.
    pub escrow: Option<Escrow>,
    /// The recovery of its seed under way (or the last one, cancelled or done).
    pub recovery: Option<Recovery>,
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
            account_auditor: config.account_auditor,
            registry: BTreeMap::new(),
            recovery_agents: None,
        }
    }

    /// `seq:u64 ‖ chain(32) ‖ auditor(32) ‖ issuers:u32 ‖ (key(32) ‖ assets:u8 ‖ asset:u64*)* ‖
    /// epoch:u64 ‖ epoch_start:u64 ‖ validators ‖ next:u8 (0 or 1) ‖ [last height:u64 ‖
    /// validators] ‖ account auditor:u8 (0 or 1) ‖ [key(32)] ‖ addresses ‖ registry` where
    /// `validators` is `count:u16 ‖ (id:u16 ‖ key(32))*`, `addresses` is `count:u16 ‖ (id:u16 ‖
    /// len:u8 ‖ IP:port)*`, `registry` is `count:u32 ‖ (len:u8 ‖ name ‖ revoked:u8 ‖
    /// identity(32) ‖ count:u8 ‖ address(64)* ‖ escrow:u8 (0 or 1) ‖ [escrow] ‖ recovery:u8 (0
    /// or 1) ‖ [recovery])*` and the policy ends with `agents:u8 (0 or 1) ‖ [agents]`
    /// ([`Escrow::write`], [`Recovery::write`], [`RecoveryAgents::write`]; little-endian),
    /// issuers, assets, ids and names in increasing order.
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
        match &self.account_auditor {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                out.extend_from_slice(&k.to_bytes());
            }
        }
        out.extend_from_slice(&(self.addresses.len().min(u16::MAX as usize) as u16).to_le_bytes());
        for (id, a) in self.addresses.iter().take(u16::MAX as usize) {
            out.extend_from_slice(&id.to_le_bytes());
            let a = &a.as_bytes()[..a.len().min(u8::MAX as usize)];
            out.push(a.len() as u8);
            out.extend_from_slice(a);
        }
        out.extend_from_slice(&(self.registry.len() as u32).to_le_bytes());
        for (name, e) in &self.registry {
            write_name(&mut out, name);
            out.push(u8::from(e.revoked));
            e.participant.write(&mut out);
            match &e.escrow {
                None => out.push(0),
                Some(escrow) => {
                    out.push(1);
                    escrow.write(&mut out);
                }
            }
            match &e.recovery {
                None => out.push(0),
                Some(r) => {
                    out.push(1);
                    r.write(&mut out);
                }
            }
        }
        match &self.recovery_agents {
            None => out.push(0),
            Some(a) => {
                out.push(1);
                a.write(&mut out);
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
        let account_auditor = match r.u8()? {
            0 => None,
            1 => Some(
                shoji_confidential::PublicKey::from_bytes(&r.array()?)
                    .map_err(|_| EncodingError::InvalidPoint("policy account auditor"))?,
            ),
            v => {
                return Err(EncodingError::Unknown {
                    what: "policy account auditor",
                    value: v as u64,
                })
            }
        };
        let mut addresses = BTreeMap::new();
        {
            let n = u16::from_le_bytes(r.array()?);
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
        let n = r.u32()? as usize;
        if n > r.remaining() / 100 {
            return Err(EncodingError::Invalid("policy registry count"));
        }
        let mut registry = BTreeMap::new();
        for _ in 0..n {
            let name = read_name(&mut r)?;
            if registry
                .keys()
                .next_back()
                .is_some_and(|l: &String| *l >= name)
            {
                return Err(EncodingError::Invalid("policy registry names out of order"));
            }
            let revoked = match r.u8()? {
                0 => false,
                1 => true,
                v => {
                    return Err(EncodingError::Unknown {
                        what: "registry revocation flag",
                        value: v as u64,
                    })
                }
            };
            let participant = Participant::read(&mut r)?;
            let escrow = optional(&mut r, "registry escrow flag", Escrow::read)?;
            let recovery = optional(&mut r, "registry recovery flag", Recovery::read)?;
            registry.insert(
                name,
                RegistryEntry {
                    participant,
                    revoked,
                    escrow,
                    recovery,
                },
            );
        }
        let recovery_agents =
            optional(&mut r, "policy recovery agents flag", RecoveryAgents::read)?;
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
            account_auditor,
            registry,
            recovery_agents,
        })
    }
}

/// Reads `0`, or `1` and then what `read` reads.
fn optional<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, EncodingError>,
) -> Result<Option<T>, EncodingError> {
    match r.u8()? {
        0 => Ok(None),
        1 => read(r).map(Some),
        v => Err(EncodingError::Unknown {
            what,
            value: v as u64,
        }),
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
