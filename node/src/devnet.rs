//! A local network: several validators in this process, over QUIC on loopback, each with its own
//! database under one directory, with development keys. For demos and tests only: the keys are
//! public constants.

use crate::{ed25519_dalek_key::SigningKey, Genesis, NodeCore, NodeError};
use shoji_consensus::{ReplicaId, ValidatorSet};
use shoji_ledger::LedgerConfig;
use shoji_net::{Identity, NetConfig, ValidatorEndpoint};
use shoji_store::Store;
use shoji_verifier::Verifier;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// Why the local network could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// Sockets or directories.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The transport.
    #[error("network: {0}")]
    Net(#[from] shoji_net::Error),
    /// Storage.
    #[error("storage: {0}")]
    Store(#[from] shoji_store::StoreError),
    /// A validator.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The validator set.
    #[error("validator set: {0}")]
    Consensus(#[from] shoji_consensus::Error),
}

/// The development key of validator `i` (a public constant: never use outside a local network).
pub fn dev_validator_key(i: u16) -> SigningKey {
    let mut seed = *b"shoji insecure devnet validator!";
    seed[30] = i as u8;
    seed[31] = (i >> 8) as u8;
    SigningKey::from_bytes(&seed)
}

/// The development governance administrator key `i` (a public constant: never use outside a
/// local network). A development network has three, two of which must approve.
pub fn dev_admin_key(i: u8) -> SigningKey {
    let mut seed = *b"shoji insecure devnet admin key!";
    seed[31] = i;
    SigningKey::from_bytes(&seed)
}

/// The governance of a development network: [`dev_admin_key`] 0, 1 and 2, threshold 2.
pub fn dev_governance() -> shoji_primitives::governance::GovernanceRules {
    shoji_primitives::governance::GovernanceRules {
        admins: (0..3)
            .map(|i| dev_admin_key(i).verifying_key().to_bytes())
            .collect(),
        threshold: 2,
    }
}

/// A running local network.
pub struct LocalNetwork {
    /// Validator addresses by replica id.
    pub addrs: BTreeMap<u64, SocketAddr>,
    /// The validator set.
    pub validators: ValidatorSet,
    /// The network's identifier (its genesis hash), which governance approvals sign.
    pub network_id: [u8; 32],
}

impl LocalNetwork {
    /// The public key a client pins to talk to validator `id`.
    pub fn key(&self, id: u16) -> Option<shoji_consensus::ed25519_dalek::VerifyingKey> {
        self.validators.key(ReplicaId(id)).copied()
    }
}

/// Starts `n` validators with [`dev_validator_key`]s and the genesis `ledger` configuration,
/// their databases under `dir`. Must be called inside a Tokio runtime: each validator runs as a
/// task on it.
pub fn start(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
) -> Result<LocalNetwork, DevnetError> {
    start_with(n, ledger, verifier, dir, false)
}

/// [`start`], with every validator in the benchmark mode of [`NodeCore::set_ordering_only`]
/// when `ordering_only` is set.
pub fn start_with(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    ordering_only: bool,
) -> Result<LocalNetwork, DevnetError> {
    let keys: Vec<SigningKey> = (0..n).map(dev_validator_key).collect();
    let validators = ValidatorSet::new(
        0,
        keys.iter()
            .enumerate()
            .map(|(i, k)| (ReplicaId(i as u16), k.verifying_key()))
            .collect(),
    )?;
    let genesis = Genesis::new(validators.clone(), ledger);
    let sockets = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let addrs: BTreeMap<u64, SocketAddr> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| Ok((i as u64, s.local_addr()?)))
        .collect::<Result<_, std::io::Error>>()?;
    let set: BTreeMap<u64, _> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (i as u64, k.verifying_key()))
        .collect();
    let peers: Vec<ReplicaId> = (0..n).map(ReplicaId).collect();
    for (i, socket) in sockets.into_iter().enumerate() {
        let node_dir = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&node_dir)?;
        let store = Store::open(node_dir.join("node.redb"))?;
        let (mut core, out) = NodeCore::open(store, &genesis, keys[i].clone(), verifier.clone())?;
        core.set_ordering_only(ordering_only);
        let endpoint = ValidatorEndpoint::from_socket(
            Identity::new(&keys[i])?,
            socket,
            set.clone(),
            addrs.clone(),
            NetConfig::default(),
        )?;
        let peers = peers.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::host::run(core, endpoint, out, peers).await {
                tracing::error!(validator = i, error = %e, "validator stopped");
            }
        });
    }
    Ok(LocalNetwork {
        addrs,
        validators,
        network_id: genesis.hash(),
    })
}
