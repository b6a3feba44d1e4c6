//! Escrowed recovery, the cryptography (docs/protocol/recovery.md): a participant's seed shared
//! `T`-of-`N` with the recovery agents as an on-ledger [`Escrow`], an agent's release of its share
//! to a recovery's request key, and the recovering wallet's rebuilding of the seed from `T`
//! releases.
//!
//! It is the guardian-share scheme of [`crate::backup`] with the agents as guardians: an agent's
//! encryption key is the guardian key of its own wallet seed ([`crate::backup::guardian_public`]),
//! and so is a request key, of a fresh seed the recovering device generates. An escrow and its
//! releases are share files in a compact on-ledger form; every share is checked against the
//! escrow's Feldman commitments before an agent re-encrypts it and after the recovering wallet
//! opens it, so a wrong share is named rather than folded in.

use crate::backup::{self, BackupError, ShareFile, SHARE_FORMAT};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::keys::WalletSeed;
use shoji_primitives::recovery::{Escrow, RecoveryAgents, SEALED_SEED_BYTES, SEALED_SHARE_BYTES};
use std::collections::BTreeMap;

/// The Ed25519 key a recovery agent signs its openings and releases with, derived from the
/// agent's wallet seed (its encryption key is that seed's guardian key).
pub fn agent_signing_key(seed: &WalletSeed) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&blake3::derive_key(
        "shoji 2026 recovery agent signing key v1",
        &seed.0,
    ))
}

/// The Ed25519 identity key a participant registers under its name, derived from its wallet
/// seed: it signs the participant's escrow and can cancel a recovery of it. A wallet recovered
/// into a new seed has a new identity key, which governance registers again.
pub fn identity_key(seed: &WalletSeed) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&blake3::derive_key(
        "shoji 2026 participant identity key v1",
        &seed.0,
    ))
}

/// The Ristretto point of a guardian key (an agent's or a request's, compressed).
fn point(key: &[u8; 32]) -> Result<RistrettoPoint, BackupError> {
    CompressedRistretto(*key)
        .decompress()
        .ok_or_else(|| BackupError::BadGuardianKey(hex_encode(key)))
}

/// Escrows `seed` with `agents`: split `T`-of-`N` (the agents' threshold and number), share
/// `i + 1` encrypted to agent `i`.
pub fn escrow(
    seed: &WalletSeed,
    agents: &RecoveryAgents,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<Escrow, BackupError> {
    let keys = agents
        .agents
        .iter()
        .map(|a| point(&a.encryption))
        .collect::<Result<Vec<_>, _>>()?;
    let n = agents.agents.len() as u8;
    let files = backup::split(seed, agents.threshold, n, &keys, rng)?;
    let first = files.first().ok_or(BackupError::Parameters {
        threshold: agents.threshold,
        shares: n,
    })?;
    let corrupt = |why: &str| BackupError::Corrupted {
        name: "escrow".into(),
        why: why.into(),
    };
    let array = |hex: &str| -> Result<Vec<u8>, BackupError> {
        hex_decode("escrow", hex).map_err(|_| corrupt("not hex"))
    };
    let commitments = first
        .commitments
        .iter()
        .map(|c| {
            array(c)?
                .try_into()
                .map_err(|_| corrupt("a commitment is not 32 bytes"))
        })
        .collect::<Result<Vec<[u8; 32]>, _>>()?;
    let sealed_seed: [u8; SEALED_SEED_BYTES] = array(&first.sealed_seed)?
        .try_into()
        .map_err(|_| corrupt("the sealed seed is not 48 bytes"))?;
    let shares = files
        .iter()
        .map(|f| {
            array(f.encrypted_share.as_deref().unwrap_or_default())?
                .try_into()
                .map_err(|_| corrupt("an encrypted share is not 80 bytes"))
        })
        .collect::<Result<Vec<[u8; SEALED_SHARE_BYTES]>, _>>()?;
    Ok(Escrow {
        agents: agents.id(),
        commitments,
        sealed_seed,
        shares,
    })
}

/// Share `index` (1-based) of `escrow` as a share file, encrypted to `to` as `sealed`.
fn share_file(
    escrow: &Escrow,
    shares: u8,
    index: u8,
    to: &[u8; 32],
    sealed: &[u8; SEALED_SHARE_BYTES],
) -> ShareFile {
    let compressed: Vec<CompressedRistretto> = escrow
        .commitments
        .iter()
        .map(|c| CompressedRistretto(*c))
        .collect();
    ShareFile {
        format: SHARE_FORMAT.into(),
        set: backup::set_id(&compressed, &escrow.sealed_seed),
        index,
        threshold: escrow.commitments.len() as u8,
        shares,
        commitments: escrow.commitments.iter().map(|c| hex_encode(c)).collect(),
        sealed_seed: hex_encode(&escrow.sealed_seed),
        words: String::new(),
        encrypted_to: Some(hex_encode(to)),
        encrypted_share: Some(hex_encode(sealed)),
    }
}

/// What agent `agent` (0-based, its seed `agent_seed`) of `agents` releases of `escrow` to
/// `request_key`: its share, opened, checked against the commitments, and encrypted to the
/// request key.
pub fn release(
    agent_seed: &WalletSeed,
    agents: &RecoveryAgents,
    escrow: &Escrow,
    agent: u8,
    request_key: &[u8; 32],
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<[u8; SEALED_SHARE_BYTES], BackupError> {
    let name = format!("agent {agent}'s share");
    if escrow.agents != agents.id() {
        return Err(BackupError::Corrupted {
            name,
            why: "the escrow was made for other agents".into(),
        });
    }
    let shares = escrow.shares.len() as u8;
    let (Some(sealed), Some(to)) = (
        escrow.shares.get(usize::from(agent)),
        agents.agents.get(usize::from(agent)),
    ) else {
        return Err(BackupError::NotYours { name });
    };
    let file = share_file(escrow, shares, agent + 1, &to.encryption, sealed);
    let mut plain = backup::open_share(&file, &name, agent_seed)?;
    let (share, _, _) = backup::parse(&plain, &name)?;
    backup::wrap(&mut plain, &share.value, &point(request_key)?, rng)?;
    let out = hex_decode(
        "encrypted share",
        plain.encrypted_share.as_deref().unwrap_or_default(),
    )
    .ok()
    .and_then(|b| <[u8; SEALED_SHARE_BYTES]>::try_from(b).ok())
    .ok_or_else(|| BackupError::Corrupted {
        name,
        why: "the re-encrypted share is malformed".into(),
    })?;
    Ok(out)
}

/// Rebuilds the seed escrowed in `escrow` from the agents' `releases` (by agent index), opened
/// with `request_seed` (whose guardian key was the recovery's request key). A release that does
/// not open or does not check against the commitments is named; fewer than the threshold is
/// [`BackupError::TooFew`].
pub fn recover(
    request_seed: &WalletSeed,
    escrow: &Escrow,
    releases: &BTreeMap<u8, [u8; SEALED_SHARE_BYTES]>,
) -> Result<WalletSeed, BackupError> {
    let shares = escrow.shares.len() as u8;
    let to = hex_decode("guardian key", &backup::guardian_public(request_seed))
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| BackupError::BadGuardianKey("request key".into()))?;
    let mut opened = Vec::new();
    for (agent, sealed) in releases {
        let name = format!("the release of agent {agent}");
        let file = share_file(escrow, shares, agent + 1, &to, sealed);
        let plain = backup::open_share(&file, &name, request_seed)?;
        backup::check(&plain, &name)?;
        opened.push((name, plain));
    }
    backup::combine(&opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoji_primitives::recovery::RecoveryAgent;

    fn agent_seed(i: u8) -> WalletSeed {
        WalletSeed([0xa0 + i; 32])
    }

    fn key_of(seed: &WalletSeed) -> [u8; 32] {
        hex_decode("key", &backup::guardian_public(seed))
            .unwrap()
            .try_into()
            .unwrap()
    }

    fn agents() -> RecoveryAgents {
        RecoveryAgents {
            agents: (0..3)
                .map(|i| RecoveryAgent {
                    signing: agent_signing_key(&agent_seed(i)).verifying_key().to_bytes(),
                    encryption: key_of(&agent_seed(i)),
                })
                .collect(),
            threshold: 2,
            window_blocks: 10,
        }
    }

    /// Escrow with three agents, two release to a request key, the seed comes back; every way
    /// of getting it wrong is refused and named.
    #[test]
    fn two_of_three_agents_release_and_the_seed_comes_back() {
        let mut rng = rand_core::OsRng;
        let seed = WalletSeed([0x42; 32]);
        let e = escrow(&seed, &agents(), &mut rng).expect("escrow");
        // What the ledger stores decodes strictly as it was written.
        let mut bytes = Vec::new();
        e.write(&mut bytes);
        let mut r = shoji_primitives::encoding::Reader::new("escrow", &bytes);
        assert_eq!(Escrow::read(&mut r), Ok(e.clone()));
        assert_eq!(e.agents, agents().id());
        // A seed's identity key and agent key are distinct, and distinct from another seed's.
        let keys = |s: &WalletSeed| {
            [
                identity_key(s).verifying_key(),
                agent_signing_key(s).verifying_key(),
            ]
        };
        let [id, ag] = keys(&seed);
        assert_ne!(id, ag);
        assert!(!keys(&WalletSeed([0x43; 32])).contains(&id));

        let request = WalletSeed([0x77; 32]);
        let request_key = key_of(&request);
        let released = |agent: u8| {
            release(
                &agent_seed(agent),
                &agents(),
                &e,
                agent,
                &request_key,
                &mut rand_core::OsRng,
            )
            .expect("release")
        };
        let two = BTreeMap::from([(0, released(0)), (2, released(2))]);
        assert_eq!(recover(&request, &e, &two).expect("recovered").0, seed.0);

        // One release is too few; another request seed opens nothing.
        let one = BTreeMap::from([(0, released(0))]);
        assert!(matches!(
            recover(&request, &e, &one),
            Err(BackupError::TooFew {
                have: 1,
                need: 2,
                ..
            })
        ));
        assert!(recover(&WalletSeed([0x78; 32]), &e, &two).is_err());
        // An agent cannot open another agent's share.
        assert!(matches!(
            release(&agent_seed(1), &agents(), &e, 0, &request_key, &mut rng),
            Err(BackupError::NotYours { .. })
        ));
        // A release altered in a byte (or of another share) is refused, naming the agent.
        let mut bad = two.clone();
        bad.get_mut(&2).unwrap()[40] ^= 1;
        match recover(&request, &e, &bad) {
            Err(BackupError::Corrupted { name, .. }) => assert!(name.contains("agent 2"), "{name}"),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("an altered release rebuilt a seed"),
        }
        let mut swapped = BTreeMap::new();
        swapped.insert(1u8, released(0));
        swapped.insert(2u8, released(2));
        assert!(matches!(
            recover(&request, &e, &swapped),
            Err(BackupError::Corrupted { .. })
        ));
        // Agents other than those the escrow was made for release nothing.
        let mut others = agents();
        others.threshold = 3;
        assert!(matches!(
            release(&agent_seed(0), &others, &e, 0, &request_key, &mut rng),
            Err(BackupError::Corrupted { .. })
        ));
        // An escrow whose share for agent 1 was altered: agent 1 refuses to release it.
        let mut altered = e.clone();
        altered.shares[1][50] ^= 1;
        assert!(release(
            &agent_seed(1),
            &agents(),
            &altered,
            1,
            &request_key,
            &mut rng
        )
        .is_err());
    }
}
