//! Escrowed recovery: a registered participant's wallet seed, shared `T`-of-`N` among the
//! consortium's recovery agents and kept on the ledger with its registry entry
//! (docs/protocol/recovery.md).
//!
//! What the ledger holds and checks is here: the agents and their threshold (a policy set by
//! governance), a participant's [`Escrow`] (the Feldman commitments of the sharing, the sealed
//! seed, one encrypted share per agent), and the sealed shares agents release to a recovery's
//! request key. The sharing itself (Shamir over the Ristretto scalar field, the sealing and the
//! encryption to an agent's key) is the wallet's guardian-share scheme; the ledger checks
//! shapes, points and signatures, never a share's content, which only its recipient can read
//! and which the commitments let it check.

use crate::encoding::{EncodingError, Reader};
use curve25519_dalek::ristretto::CompressedRistretto;

/// Most recovery agents a policy names.
pub const MAX_AGENTS: usize = 16;

/// Bytes of the sealed seed: the 32-byte seed, ChaCha20-Poly1305 under a key derived from the
/// shared secret (nonce zero: each key seals once), with its 16-byte tag.
pub const SEALED_SEED_BYTES: usize = 48;

/// Bytes of an encrypted share: an ephemeral Ristretto point, the 32-byte share value
/// encrypted with ChaCha20-Poly1305, and its tag.
pub const SEALED_SHARE_BYTES: usize = 80;

/// One recovery agent of the consortium.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryAgent {
    /// Its Ed25519 key: signs the recoveries it opens and the shares it releases.
    pub signing: [u8; 32],
    /// Its Ristretto key (compressed): the escrowed share for it is encrypted to it.
    pub encryption: [u8; 32],
}

/// The recovery agents and how many of them rebuild a seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryAgents {
    /// The agents, 1 to [`MAX_AGENTS`]; agent `i` holds share `i + 1` of every escrow.
    pub agents: Vec<RecoveryAgent>,
    /// How many agents' shares rebuild a seed (1 to the number of agents).
    pub threshold: u8,
    /// Blocks between the opening of a recovery and the first release it allows: the window in
    /// which the participant's identity key can cancel it.
    pub window_blocks: u64,
}

impl RecoveryAgents {
    /// `count:u8 ‖ (signing(32) ‖ encryption(32))* ‖ threshold:u8 ‖ window:u64`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let n = self.agents.len().min(MAX_AGENTS);
        out.push(n as u8);
        for a in &self.agents[..n] {
            out.extend_from_slice(&a.signing);
            out.extend_from_slice(&a.encryption);
        }
        out.push(self.threshold);
        out.extend_from_slice(&self.window_blocks.to_le_bytes());
    }

    /// Strict decoding of [`RecoveryAgents::write`]: 1 to [`MAX_AGENTS`] agents with valid
    /// Ed25519 and Ristretto keys, no key twice, a threshold between 1 and the number of
    /// agents, a window of at least one block.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, EncodingError> {
        let n = r.u8()? as usize;
        if n == 0 || n > MAX_AGENTS {
            return Err(EncodingError::Invalid("1 to 16 recovery agents"));
        }
        let mut agents: Vec<RecoveryAgent> = Vec::with_capacity(n);
        for _ in 0..n {
            let a = RecoveryAgent {
                signing: r.array()?,
                encryption: r.array()?,
            };
            if ed25519_dalek::VerifyingKey::from_bytes(&a.signing).is_err() {
                return Err(EncodingError::InvalidPoint("recovery agent signing key"));
            }
            if CompressedRistretto(a.encryption).decompress().is_none() {
                return Err(EncodingError::InvalidPoint("recovery agent encryption key"));
            }
            if agents
                .iter()
                .any(|b| b.signing == a.signing || b.encryption == a.encryption)
            {
                return Err(EncodingError::Invalid("a recovery agent key listed twice"));
            }
            agents.push(a);
        }
        let threshold = r.u8()?;
        if threshold == 0 || threshold as usize > n {
            return Err(EncodingError::Invalid(
                "a recovery threshold between 1 and the number of agents",
            ));
        }
        let window_blocks = r.u64()?;
        if window_blocks == 0 {
            return Err(EncodingError::Invalid(
                "a recovery window of at least one block",
            ));
        }
        Ok(RecoveryAgents {
            agents,
            threshold,
            window_blocks,
        })
    }

    /// What an escrow made for these agents records ([`Escrow::agents`]): a hash of the agents'
    /// keys and the threshold (the window may change without invalidating escrows).
    pub fn id(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("shoji 2026 recovery agents v1");
        h.update(&[self.threshold]);
        for a in &self.agents {
            h.update(&a.signing);
            h.update(&a.encryption);
        }
        *h.finalize().as_bytes()
    }
}

/// A participant's seed escrowed with the recovery agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escrow {
    /// The [`RecoveryAgents::id`] of the agents it was made for.
    pub agents: [u8; 32],
    /// The Feldman commitments to the sharing polynomial's coefficients (compressed Ristretto
    /// points), as many as the threshold: share `i` checks as `sᵢ·G = Σ iʲ·Cⱼ`.
    pub commitments: Vec<[u8; 32]>,
    /// The seed sealed under a key derived from the shared secret.
    pub sealed_seed: [u8; SEALED_SEED_BYTES],
    /// Share `i + 1`, encrypted to agent `i`'s encryption key, one per agent.
    pub shares: Vec<[u8; SEALED_SHARE_BYTES]>,
}

impl Escrow {
    /// `agents(32) ‖ commitments:u8 ‖ point(32)* ‖ sealed seed(48) ‖ shares:u8 ‖ share(80)*`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.agents);
        let c = self.commitments.len().min(MAX_AGENTS);
        out.push(c as u8);
        for p in &self.commitments[..c] {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&self.sealed_seed);
        let s = self.shares.len().min(MAX_AGENTS);
        out.push(s as u8);
        for share in &self.shares[..s] {
            out.extend_from_slice(share);
        }
    }

    /// Strict decoding of [`Escrow::write`]: 1 to [`MAX_AGENTS`] commitments, each a valid
    /// point, and at least as many shares as commitments, at most [`MAX_AGENTS`], each share's
    /// ephemeral key a valid point.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, EncodingError> {
        let agents = r.array()?;
        let c = r.u8()? as usize;
        if c == 0 || c > MAX_AGENTS {
            return Err(EncodingError::Invalid("1 to 16 escrow commitments"));
        }
        let mut commitments = Vec::with_capacity(c);
        for _ in 0..c {
            let p: [u8; 32] = r.array()?;
            if CompressedRistretto(p).decompress().is_none() {
                return Err(EncodingError::InvalidPoint("escrow commitment"));
            }
            commitments.push(p);
        }
        let sealed_seed = r.array()?;
        let s = r.u8()? as usize;
        if s < c || s > MAX_AGENTS {
            return Err(EncodingError::Invalid(
                "as many escrow shares as agents, at least the threshold",
            ));
        }
        let mut shares = Vec::with_capacity(s);
        for _ in 0..s {
            let share = read_sealed_share(r)?;
            shares.push(share);
        }
        Ok(Escrow {
            agents,
            commitments,
            sealed_seed,
            shares,
        })
    }
}

/// Reads an encrypted share, refusing one whose ephemeral key is not a point.
pub fn read_sealed_share(r: &mut Reader<'_>) -> Result<[u8; SEALED_SHARE_BYTES], EncodingError> {
    let share: [u8; SEALED_SHARE_BYTES] = r.array()?;
    let mut ephemeral = [0u8; 32];
    ephemeral.copy_from_slice(&share[..32]);
    if CompressedRistretto(ephemeral).decompress().is_none() {
        return Err(EncodingError::InvalidPoint("sealed share ephemeral key"));
    }
    Ok(share)
}

/// A recovery under way for a participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The Ristretto key (compressed) the agents release their shares to: generated by whoever
    /// recovers, on the new device.
    pub request_key: [u8; 32],
    /// The height of the block that opened it.
    pub opened_at: u64,
    /// The agent (its index) that opened it, having checked who asked out of band.
    pub opened_by: u8,
    /// Cancelled by the participant's identity key: no release is accepted any more.
    pub cancelled: bool,
    /// Released shares, by agent index, each encrypted to the request key.
    pub releases: std::collections::BTreeMap<u8, [u8; SEALED_SHARE_BYTES]>,
}

impl Recovery {
    /// `request key(32) ‖ opened at:u64 ‖ opened by:u8 ‖ cancelled:u8 ‖ releases:u8 ‖
    /// (agent:u8 ‖ share(80))*` (agents increasing).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request_key);
        out.extend_from_slice(&self.opened_at.to_le_bytes());
        out.push(self.opened_by);
        out.push(u8::from(self.cancelled));
        let n = self.releases.len().min(MAX_AGENTS);
        out.push(n as u8);
        for (agent, share) in self.releases.iter().take(n) {
            out.push(*agent);
            out.extend_from_slice(share);
        }
    }

    /// Strict decoding of [`Recovery::write`].
    pub fn read(r: &mut Reader<'_>) -> Result<Self, EncodingError> {
        let request_key: [u8; 32] = r.array()?;
        if CompressedRistretto(request_key).decompress().is_none() {
            return Err(EncodingError::InvalidPoint("recovery request key"));
        }
        let opened_at = r.u64()?;
        let opened_by = r.u8()?;
        let cancelled = match r.u8()? {
            0 => false,
            1 => true,
            v => {
                return Err(EncodingError::Unknown {
                    what: "recovery cancellation flag",
                    value: v as u64,
                })
            }
        };
        let n = r.u8()? as usize;
        if n > MAX_AGENTS {
            return Err(EncodingError::Invalid("at most 16 releases"));
        }
        let mut releases = std::collections::BTreeMap::new();
        for _ in 0..n {
            let agent = r.u8()?;
            if releases.keys().next_back().is_some_and(|l| *l >= agent) {
                return Err(EncodingError::Invalid("recovery releases out of order"));
            }
            releases.insert(agent, read_sealed_share(r)?);
        }
        Ok(Recovery {
            request_key,
            opened_at,
            opened_by,
            cancelled,
            releases,
        })
    }
}
