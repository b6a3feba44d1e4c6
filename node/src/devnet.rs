//! A local network: several validators in this process, over QUIC on loopback, each with its own
//! database under one directory, with development keys. For demos and tests only: the keys are
//! public constants.

use crate::{ed25519_dalek_key::SigningKey, Genesis, NodeCore, NodeError, PayloadPolicy};
use shoji_consensus::{ReplicaId, ValidatorSet};
use shoji_ledger::LedgerConfig;
use shoji_net::{Identity, NetConfig, ValidatorEndpoint};
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::note::AssetId;
use shoji_store::Store;
use shoji_verifier::Verifier;
use std::collections::{BTreeMap, BTreeSet};
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

/// The issuers of a development network: the development issuer
/// ([`shoji_client::network::insecure_devnet_issuer`]) of USD, asset 840.
pub fn dev_issuers() -> BTreeMap<[u8; 32], BTreeSet<AssetId>> {
    BTreeMap::from([(
        shoji_client::network::insecure_devnet_issuer()
            .verifying_key()
            .to_bytes(),
        BTreeSet::from([AssetId(840)]),
    )])
}

/// The genesis ledger configuration of `shoji-node devnet`: [`dev_issuers`],
/// [`dev_governance`], a checkpoint every 8 blocks, anchors valid for `anchor_window_blocks`,
/// and `auditor`. The development auditor reads the account tier too; another auditor's
/// account key is not derivable from its public key, so its network has no accounts.
pub fn dev_ledger(auditor: AuditPublicKey, anchor_window_blocks: usize) -> LedgerConfig {
    LedgerConfig {
        anchor_window_blocks,
        auditor,
        issuers: dev_issuers(),
        governance: dev_governance(),
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: (auditor == shoji_client::network::insecure_devnet_auditor().public_key())
            .then(|| shoji_client::network::insecure_devnet_account_auditor().public()),
    }
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
    pub addrs: BTreeMap<u16, SocketAddr>,
    /// The validator set.
    pub validators: ValidatorSet,
    /// The network's identifier (its genesis hash), which governance approvals sign.
    pub network_id: [u8; 32],
    /// The auditor's account-tier key, if the network has confidential accounts.
    pub account_auditor: Option<shoji_confidential::PublicKey>,
    /// Each validator's operations address (`/metrics`, `/livez`, `/readyz`), on loopback.
    pub operations: BTreeMap<u16, SocketAddr>,
    /// A switch per validator: set, the validator closes its endpoint and stops.
    stops: BTreeMap<u64, tokio::sync::watch::Sender<bool>>,
    /// What a validator started late needs.
    shared: Option<Shared>,
    /// The runtime the validators run on (as tasks).
    runtime: Option<tokio::runtime::Handle>,
    /// The delaying relays in front of the validators, if the network runs behind them.
    relays: Option<Relays>,
}

/// The delaying relays of a network ([`shoji_net::relay`]), one in front of each validator, on
/// a thread of their own that ends when this drops.
struct Relays {
    relays: BTreeMap<u16, shoji_net::relay::Relay>,
    /// Each validator's own socket address, which the relays of the others see it send from.
    behind: BTreeMap<u16, SocketAddr>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Relays {
    /// Relays for `n` validators: returns them with each validator's own socket (the relays'
    /// addresses are the ones everybody dials).
    fn start(
        n: u16,
        path: shoji_net::relay::PathConditions,
    ) -> Result<(Relays, Vec<std::net::UdpSocket>), DevnetError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("relays")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("relays".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        let _entered = handle.enter();
        let (mut relays, mut behind, mut sockets) = (BTreeMap::new(), BTreeMap::new(), Vec::new());
        for i in 0..n {
            let own = std::net::UdpSocket::bind("127.0.0.1:0")?;
            let target = own.local_addr()?;
            let public = std::net::UdpSocket::bind("127.0.0.1:0")?;
            relays.insert(i, shoji_net::relay::Relay::start(public, target, path)?);
            behind.insert(i, target);
            sockets.push(own);
        }
        Ok((
            Relays {
                relays,
                behind,
                _stop: stop,
            },
            sockets,
        ))
    }
}

impl LocalNetwork {
    /// The public key a client pins to talk to validator `id`.
    pub fn key(&self, id: u16) -> Option<shoji_consensus::ed25519_dalek::VerifyingKey> {
        self.validators.key(ReplicaId(id)).copied()
    }

    /// The network file clients use for this network: every validator, the given auditor and
    /// issuers, no asset names, marked insecure (development keys and parameters).
    pub fn client_network(
        &self,
        auditor: shoji_primitives::audit::AuditPublicKey,
        issuers: BTreeMap<[u8; 32], std::collections::BTreeSet<shoji_primitives::note::AssetId>>,
    ) -> shoji_client::Network {
        shoji_client::Network {
            addrs: self
                .addrs
                .iter()
                .map(|(id, a)| (ReplicaId(*id), *a))
                .collect(),
            validators: self.validators.clone(),
            auditor,
            account_auditor: self.account_auditor,
            issuers,
            assets: BTreeMap::new(),
            insecure: Some("development keys and parameters: never use for real value".into()),
            network_id: self.network_id,
            parameters: shoji_client::ParameterPins::development(),
            archive: self.shared.as_ref().and_then(|s| s.archive.clone()),
        }
    }

    /// Stops validator `id` as a crash would, between two of its inputs: it closes its
    /// connections and stops answering. What it committed is on disk. Returns `false` for a
    /// validator this network does not run.
    pub fn stop(&self, id: u64) -> bool {
        self.stops.get(&id).is_some_and(|s| s.send(true).is_ok())
    }

    /// Splits a network running behind relays ([`DevnetOptions::path`]) into `groups`: no
    /// datagram passes between validators of different groups (clients still reach every
    /// validator). Returns `false` for a network without relays.
    pub fn partition(&self, groups: &[&[u16]]) -> bool {
        let Some(r) = &self.relays else {
            return false;
        };
        let group_of = |v: u16| groups.iter().position(|g| g.contains(&v));
        for (i, relay) in &r.relays {
            relay.cut(
                r.behind
                    .iter()
                    .filter(|(j, _)| group_of(**j) != group_of(*i))
                    .map(|(_, a)| *a),
            );
        }
        true
    }

    /// Joins a partitioned network again ([`LocalNetwork::partition`]).
    pub fn heal(&self) -> bool {
        let Some(r) = &self.relays else {
            return false;
        };
        r.relays.values().for_each(|relay| relay.heal());
        true
    }

    /// Each validator's own address, which reaches it without crossing its relay (the same as
    /// [`LocalNetwork::addrs`] for a network without relays), in the shape of
    /// [`shoji_client::Network::addrs`]: for clients beside their validator while the
    /// validators are far from each other.
    pub fn direct_addrs(&self) -> Vec<(ReplicaId, SocketAddr)> {
        let own = match &self.relays {
            Some(r) => &r.behind,
            None => &self.addrs,
        };
        own.iter().map(|(id, a)| (ReplicaId(*id), *a)).collect()
    }

    /// Changes the delay, jitter and loss of every relay.
    pub fn set_path(&self, path: shoji_net::relay::PathConditions) -> bool {
        let Some(r) = &self.relays else {
            return false;
        };
        r.relays
            .values()
            .for_each(|relay| relay.set_conditions(path));
        true
    }

    /// Starts validator `id`, left out when the network started, on `socket` with an empty
    /// directory under `dir`: it first fetches the newest state snapshot the others serve,
    /// checked against its checkpoint certificate ([`crate::snapshots::sync_from_peers`]), then
    /// runs and catches up by state transfer. Blocking: call it outside the runtime.
    pub fn start_late(
        &mut self,
        id: u16,
        socket: std::net::UdpSocket,
        dir: &Path,
        verifier: Arc<Verifier>,
    ) -> Result<crate::snapshots::Synced, DevnetError> {
        let shared = self
            .shared
            .clone()
            .ok_or_else(|| std::io::Error::other("this network cannot start validators late"))?;
        let node_dir = dir.join(format!("validator-{id}"));
        std::fs::create_dir_all(&node_dir)?;
        let store = Store::open(node_dir.join("node.redb"))?;
        let addrs = shared
            .addrs
            .iter()
            .map(|(i, a)| (ReplicaId(*i), *a))
            .collect();
        let network = crate::snapshots::peers_network(&shared.genesis, &addrs);
        let synced = crate::snapshots::sync_from_peers(&store, &network, id)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        launch(self, &shared, id, socket, store, &node_dir, verifier)?;
        Ok(synced)
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

/// How the validators of a local network share the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Tasks of the caller's Tokio runtime: they stop with it.
    Tasks,
    /// Each validator on its own thread with its own runtime, as separate processes would be,
    /// so that one validator's long step (verifying a block's proofs) never holds up another's
    /// messages and timers in a shared scheduler. They run until the process exits.
    Threads,
}

/// [`start`], with every validator ordering opaque payloads too ([`PayloadPolicy::OrderingOnly`])
/// when `ordering_only` is set.
pub fn start_with(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    ordering_only: bool,
) -> Result<LocalNetwork, DevnetError> {
    start_placed(
        n,
        ledger,
        verifier,
        dir,
        ordering_only,
        Placement::Tasks,
        false,
    )
}

/// [`start_with`], placing the validators as `placement` says and, with `archive` set, copying
/// their committed blocks and checkpoints to the history archive in `dir/archive` (which
/// [`LocalNetwork::client_network`] then names).
pub fn start_placed(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    ordering_only: bool,
    placement: Placement,
    archive: bool,
) -> Result<LocalNetwork, DevnetError> {
    let options = DevnetOptions {
        ordering_only,
        placement,
        archive,
        path: None,
    };
    start_with_options(n, ledger, verifier, dir, &options)
}

/// How [`start_with_options`] runs a local network.
#[derive(Clone, Copy, Debug)]
pub struct DevnetOptions {
    /// Order opaque payloads too ([`PayloadPolicy::OrderingOnly`]).
    pub ordering_only: bool,
    /// Where the validators run.
    pub placement: Placement,
    /// Copy committed blocks and checkpoints to the history archive in `dir/archive`.
    pub archive: bool,
    /// Run every validator behind a delaying relay ([`shoji_net::relay`]) with these
    /// conditions: validators and clients reach each validator through its relay, which
    /// [`LocalNetwork::partition`] can also cut.
    pub path: Option<shoji_net::relay::PathConditions>,
}

/// Starts `n` validators as `options` say.
pub fn start_with_options(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    options: &DevnetOptions,
) -> Result<LocalNetwork, DevnetError> {
    let archive = options.archive.then(|| archive_in(dir)).transpose()?;
    let settings = Settings {
        ordering_only: options.ordering_only,
        placement: options.placement,
        absent: None,
        snapshot_every: 0,
        keep_blocks: 0,
        path: options.path,
    };
    start_set(n, ledger, verifier, dir, settings, archive).map(|(net, _)| net)
}

/// The URL of the directory `dir/archive`.
fn archive_in(dir: &Path) -> Result<String, DevnetError> {
    Ok(url::Url::from_directory_path(dir.join("archive"))
        .map_err(|()| std::io::Error::other("the archive directory is not an absolute path"))?
        .to_string())
}

/// [`start`] without running validator `absent`: its address is bound and returned, so that a
/// test can put a faulty double there that holds the validator's real key
/// ([`dev_validator_key`]).
pub fn start_without(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    absent: u16,
) -> Result<(LocalNetwork, std::net::UdpSocket), DevnetError> {
    let (net, socket) = start_inner(
        n,
        ledger,
        verifier,
        dir,
        false,
        Placement::Tasks,
        Some(absent),
    )?;
    let socket = socket
        .ok_or_else(|| std::io::Error::other(format!("no validator {absent} to leave out")))?;
    Ok((net, socket))
}

/// How [`start_inner`] runs the validators.
#[derive(Clone, Copy)]
struct Settings {
    ordering_only: bool,
    placement: Placement,
    absent: Option<u16>,
    /// Write a state snapshot every this many blocks (0: never).
    snapshot_every: u64,
    /// Prune block bodies older than this many blocks once archived (0: never).
    keep_blocks: u64,
    /// Behind delaying relays with these conditions.
    path: Option<shoji_net::relay::PathConditions>,
}

fn start_inner(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    ordering_only: bool,
    placement: Placement,
    absent: Option<u16>,
) -> Result<(LocalNetwork, Option<std::net::UdpSocket>), DevnetError> {
    start_set(
        n,
        ledger,
        verifier,
        dir,
        Settings {
            ordering_only,
            placement,
            absent,
            snapshot_every: 0,
            keep_blocks: 0,
            path: None,
        },
        None,
    )
}

/// What the validators of [`start_without_snapshotting`] do with their history.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Write a state snapshot every this many blocks (0: never).
    pub snapshot_every: u64,
    /// Prune block bodies older than this many blocks once archived (0: never).
    pub keep_blocks: u64,
    /// The history archive's URL (`None`: `dir/archive` on the local file system).
    pub archive: Option<String>,
}

/// [`start_without`], every validator writing a state snapshot every `history.snapshot_every`
/// blocks in its directory and serving it, and copying its committed blocks to the history
/// archive (which [`LocalNetwork::client_network`] names); [`LocalNetwork::start_late`] then
/// starts the absent one from the newest snapshot. With `history.keep_blocks` above 0 the
/// validators also prune block bodies older than that once archived.
pub fn start_without_snapshotting(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    absent: u16,
    history: &History,
) -> Result<(LocalNetwork, std::net::UdpSocket), DevnetError> {
    let archive = match &history.archive {
        Some(url) => url.clone(),
        None => archive_in(dir)?,
    };
    let (net, socket) = start_set(
        n,
        ledger,
        verifier,
        dir,
        Settings {
            ordering_only: false,
            placement: Placement::Tasks,
            absent: Some(absent),
            snapshot_every: history.snapshot_every,
            keep_blocks: history.keep_blocks,
            path: None,
        },
        Some(archive),
    )?;
    let socket = socket
        .ok_or_else(|| std::io::Error::other(format!("no validator {absent} to leave out")))?;
    Ok((net, socket))
}

/// What every validator of one local network shares.
#[derive(Clone)]
struct Shared {
    genesis: Genesis,
    set: BTreeMap<u16, shoji_consensus::ed25519_dalek::VerifyingKey>,
    addrs: BTreeMap<u16, SocketAddr>,
    peers: Vec<ReplicaId>,
    settings: Settings,
    archive: Option<String>,
}

/// Starts the network `settings` describes, its validators archiving to `archive` if given.
fn start_set(
    n: u16,
    ledger: LedgerConfig,
    verifier: Arc<Verifier>,
    dir: &Path,
    settings: Settings,
    archive: Option<String>,
) -> Result<(LocalNetwork, Option<std::net::UdpSocket>), DevnetError> {
    let keys: Vec<SigningKey> = (0..n).map(dev_validator_key).collect();
    let validators = ValidatorSet::new(
        0,
        keys.iter()
            .enumerate()
            .map(|(i, k)| (ReplicaId(i as u16), k.verifying_key()))
            .collect(),
    )?;
    let genesis = Genesis::new(validators.clone(), ledger);
    let (relays, sockets) = match settings.path {
        Some(path) => {
            let (relays, sockets) = Relays::start(n, path)?;
            (Some(relays), sockets)
        }
        None => (
            None,
            (0..n)
                .map(|_| std::net::UdpSocket::bind("127.0.0.1:0"))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    // Everybody dials a validator's relay when it has one.
    let addrs: BTreeMap<u16, SocketAddr> = match &relays {
        Some(r) => r.relays.iter().map(|(i, r)| (*i, r.addr())).collect(),
        None => sockets
            .iter()
            .enumerate()
            .map(|(i, s)| Ok((i as u16, s.local_addr()?)))
            .collect::<Result<_, std::io::Error>>()?,
    };
    let set: BTreeMap<u16, _> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (i as u16, k.verifying_key()))
        .collect();
    let shared = Shared {
        genesis: genesis.clone(),
        set,
        addrs: addrs.clone(),
        peers: (0..n).map(ReplicaId).collect(),
        settings,
        archive,
    };
    let mut net = LocalNetwork {
        addrs,
        validators: validators.on_network(genesis.hash()),
        network_id: genesis.hash(),
        account_auditor: genesis.ledger.account_auditor,
        operations: BTreeMap::new(),
        stops: BTreeMap::new(),
        shared: Some(shared.clone()),
        runtime: tokio::runtime::Handle::try_current().ok(),
        relays,
    };
    let mut left_out = None;
    for (i, socket) in sockets.into_iter().enumerate() {
        if settings.absent == Some(i as u16) {
            left_out = Some(socket);
            continue;
        }
        let node_dir = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&node_dir)?;
        let store = Store::open(node_dir.join("node.redb"))?;
        launch(
            &mut net,
            &shared,
            i as u16,
            socket,
            store,
            &node_dir,
            verifier.clone(),
        )?;
    }
    Ok((net, left_out))
}

/// Opens validator `i` on `store` and runs it on `socket`, as `shared` says.
fn launch(
    net: &mut LocalNetwork,
    shared: &Shared,
    i: u16,
    socket: std::net::UdpSocket,
    store: Store,
    node_dir: &Path,
    verifier: Arc<Verifier>,
) -> Result<(), DevnetError> {
    let key = dev_validator_key(i);
    let database = node_dir.join("node.redb");
    let (core, out) = NodeCore::open(store, &shared.genesis, key.clone(), verifier)?;
    let core = core.with_payloads(match shared.settings.ordering_only {
        true => PayloadPolicy::OrderingOnly,
        false => PayloadPolicy::Transactions,
    });
    let identity = Identity::new(&key)?;
    let ops = std::net::TcpListener::bind("127.0.0.1:0")?;
    ops.set_nonblocking(true)?;
    net.operations.insert(i, ops.local_addr()?);
    let (set, addrs, peers) = (
        shared.set.clone(),
        shared.addrs.clone(),
        shared.peers.clone(),
    );
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    net.stops.insert(i as u64, stop);
    let shutdown = async move {
        // Without its network (the switch dropped), the validator runs on.
        if stopped.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let options = crate::host::HostOptions {
        snapshots: (shared.settings.snapshot_every > 0).then(|| {
            crate::snapshots::SnapshotOptions::in_data_dir(node_dir, shared.settings.snapshot_every)
        }),
        archive: shared.archive.clone(),
        keep_blocks: shared.settings.keep_blocks,
        ..crate::host::HostOptions::default()
    };
    let serve = async move |endpoint: ValidatorEndpoint| {
        match tokio::net::TcpListener::from_std(ops) {
            Ok(listener) => {
                let (node, net) = (core.metrics().clone(), endpoint.metrics());
                tokio::spawn(async move {
                    let pending = std::future::pending::<()>();
                    if let Err(e) =
                        crate::operations::serve(listener, &node, &net, Some(database), pending)
                            .await
                    {
                        tracing::warn!(validator = i, error = %e, "the operations service stopped");
                    }
                });
            }
            Err(e) => tracing::warn!(validator = i, error = %e, "no operations service"),
        }
        let run = crate::host::run_until(core, endpoint, out, peers, options, shutdown);
        if let Err(e) = run.await {
            tracing::error!(validator = i, error = %e, "validator stopped");
        }
    };
    match shared.settings.placement {
        Placement::Tasks => {
            // The endpoint is made on the validators' runtime, also when this is called from
            // outside it ([`LocalNetwork::start_late`]).
            let _entered = net.runtime.as_ref().map(|rt| rt.enter());
            let endpoint =
                ValidatorEndpoint::from_socket(identity, socket, set, addrs, NetConfig::default())?;
            tokio::spawn(serve(endpoint));
        }
        Placement::Threads => {
            // The endpoint belongs to the validator's runtime: it is made there, and
            // whether that worked comes back before the next validator starts.
            let (started, result) = std::sync::mpsc::channel();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(format!("validator-{i}"))
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("validator-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        match ValidatorEndpoint::from_socket(
                            identity,
                            socket,
                            set,
                            addrs,
                            NetConfig::default(),
                        ) {
                            Ok(endpoint) => {
                                let _ = started.send(Ok(()));
                                serve(endpoint).await
                            }
                            Err(e) => {
                                let _ = started.send(Err(e));
                            }
                        }
                    })
                })?;
            result
                .recv()
                .map_err(|_| std::io::Error::other(format!("validator {i} did not start")))??;
        }
    }
    Ok(())
}
