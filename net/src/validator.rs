//! The validator endpoint: validator-to-validator messages and client requests.
//!
//! # Links between validators
//!
//! Each direction of a validator link is its own QUIC connection, dialed by the sender: the
//! dialer authenticates the receiver by its pinned key and presents its own certificate, from
//! which the receiver learns the sender's replica id. Two one-way connections per pair avoid
//! any tie-breaking between simultaneous dials and make reconnection the sender's business
//! alone.
//!
//! Every message travels on its **own unidirectional stream** holding one frame. QUIC streams
//! are cheap to open (no round trip), a lost packet of one message does not delay the others
//! (no head-of-line blocking), and a malformed or oversized frame costs only its stream.
//! Messages on different streams may be delivered out of order; consensus does not rely on
//! transport order.
//!
//! # Queues and backpressure
//!
//! - Outgoing: one bounded queue per peer ([`NetConfig::send_queue`]), drained by a task that
//!   owns the connection. [`PeerSender::send`] never waits: if the queue is full the message is
//!   **dropped** and [`Error::QueueFull`] returned, so one slow or unreachable peer never stalls
//!   the caller or the other links. While a peer is unreachable the task redials with
//!   exponential backoff ([`NetConfig::reconnect_initial`] doubling up to
//!   [`NetConfig::reconnect_max`]) and keeps the messages queued meanwhile. Delivery is
//!   best effort (at most once): a message written on a connection that dies may be lost.
//! - Incoming: one bounded queue for all validator messages ([`NetConfig::inbound_queue`]) and
//!   one for client requests ([`NetConfig::request_queue`]). When full, stream readers **wait**;
//!   the unread streams hold QUIC flow-control credit and stream slots
//!   ([`NetConfig::max_concurrent_streams`]), which pushes back on the senders.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, VarInt};
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, warn};

use crate::codes;
use crate::config::NetConfig;
use crate::error::{Error, FrameError};
use crate::frame::{read_frame, write_frame};
use crate::metrics::{Connected, NetMetrics, Refusal};
use crate::tls::{self, Identity, SERVER_NAME};

/// Identifier of a validator: its replica id, the same 16-bit number as the consensus core's
/// `ReplicaId` and the ledger's validator maps (the transport does not depend on either).
pub type ReplicaId = u16;

/// Key bytes of each member of the validator set, mapped to its replica id; replaced when the
/// set changes ([`ValidatorEndpoint::set_validators`]).
pub(crate) type Members = Arc<std::sync::RwLock<BTreeMap<[u8; 32], ReplicaId>>>;

/// QUIC transport parameters shared by every connection: limits, keep-alive, idle timeout.
pub(crate) fn transport_config(
    config: &NetConfig,
    accepts_streams: bool,
) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    let streams = if accepts_streams {
        VarInt::from_u32(config.max_concurrent_streams)
    } else {
        VarInt::from_u32(0)
    };
    t.max_concurrent_uni_streams(streams);
    t.max_concurrent_bidi_streams(streams);
    t.keep_alive_interval(Some(config.keep_alive_interval));
    // An idle timeout above QUIC's encodable range is treated as "no timeout".
    t.max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok());
    t
}

/// A client request handed to the application. Answer it with [`ClientRequest::respond`];
/// dropping it resets the client's stream with [`codes::NO_REPLY`].
#[derive(Debug)]
pub struct ClientRequest {
    body: Vec<u8>,
    from: SocketAddr,
    reply: oneshot::Sender<Arc<[u8]>>,
}

impl ClientRequest {
    /// The request's bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The client's address (informational: clients are not authenticated).
    pub fn remote_addr(&self) -> SocketAddr {
        self.from
    }

    /// Sends the response. A response larger than the maximum frame size resets the stream.
    /// One encoded response may be shared by many requests (an `Arc<[u8]>` clone).
    pub fn respond(self, response: impl Into<Arc<[u8]>>) {
        // The client may have gone away; nothing to do then.
        let _ = self.reply.send(response.into());
    }
}

/// A cloneable handle that sends messages to validators (see the module documentation for the
/// queueing policy).
#[derive(Clone, Debug)]
pub struct PeerSender {
    inner: Arc<SenderInner>,
}

#[derive(Debug)]
struct SenderInner {
    me: ReplicaId,
    max_frame_size: usize,
    queues: std::sync::RwLock<BTreeMap<ReplicaId, mpsc::Sender<Vec<u8>>>>,
    local: mpsc::Sender<(ReplicaId, Vec<u8>)>,
}

impl PeerSender {
    /// Queues `message` for replica `to`. Messages to ourselves are delivered to our own
    /// [`ValidatorEndpoint::recv`] without touching the network. Never waits: a full queue
    /// drops the message and returns [`Error::QueueFull`].
    pub fn send(&self, to: ReplicaId, message: Vec<u8>) -> Result<(), Error> {
        let inner = &self.inner;
        if message.len() > inner.max_frame_size {
            return Err(Error::TooLarge {
                len: message.len(),
                max: inner.max_frame_size,
            });
        }
        if to == inner.me {
            return inner
                .local
                .try_send((to, message))
                .map_err(|e| queue_error(to, e));
        }
        let queue = inner
            .queues
            .read()
            .map_err(|_| Error::Closed)?
            .get(&to)
            .cloned()
            .ok_or(Error::UnknownPeer(to))?;
        queue.try_send(message).map_err(|e| queue_error(to, e))
    }

    /// Our own replica id.
    pub fn me(&self) -> ReplicaId {
        self.inner.me
    }
}

fn queue_error<T>(to: ReplicaId, e: mpsc::error::TrySendError<T>) -> Error {
    match e {
        mpsc::error::TrySendError::Full(_) => Error::QueueFull(to),
        mpsc::error::TrySendError::Closed(_) => Error::Closed,
    }
}

/// A validator's QUIC endpoint: dials the other validators, accepts their connections and
/// serves client connections, all on one UDP socket.
#[derive(Debug)]
pub struct ValidatorEndpoint {
    me: ReplicaId,
    endpoint: Endpoint,
    sender: PeerSender,
    inbox: Mutex<mpsc::Receiver<(ReplicaId, Vec<u8>)>>,
    requests: Mutex<mpsc::Receiver<ClientRequest>>,
    tasks: Vec<JoinHandle<()>>,
    identity: Identity,
    config: NetConfig,
    members: Members,
    /// The link to each peer: its key, address and sending task.
    links: std::sync::Mutex<BTreeMap<ReplicaId, LinkHandle>>,
    metrics: NetMetrics,
}

/// A running link ([`Link`]) and what it was started for.
#[derive(Debug)]
struct LinkHandle {
    key: [u8; 32],
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// What the accepting side shares between its tasks.
struct AcceptCtx {
    members: Members,
    config: NetConfig,
    inbox: mpsc::Sender<(ReplicaId, Vec<u8>)>,
    requests: mpsc::Sender<ClientRequest>,
    metrics: NetMetrics,
}

impl ValidatorEndpoint {
    /// Binds a UDP socket on `listen_addr` and starts the endpoint (see
    /// [`ValidatorEndpoint::from_socket`]).
    pub fn bind(
        identity: Identity,
        listen_addr: SocketAddr,
        validator_set: BTreeMap<ReplicaId, VerifyingKey>,
        peer_addrs: BTreeMap<ReplicaId, SocketAddr>,
        config: NetConfig,
    ) -> Result<ValidatorEndpoint, Error> {
        let socket = UdpSocket::bind(listen_addr).map_err(Error::Bind)?;
        Self::from_socket(identity, socket, validator_set, peer_addrs, config)
    }

    /// Starts the endpoint on an already bound UDP socket. Must be called within a Tokio
    /// runtime.
    ///
    /// Our replica id is the one whose key in `validator_set` is `identity`'s key. Messages can
    /// be sent to every other member that has an address in `peer_addrs`; connections are
    /// accepted from every member of `validator_set`, and from clients.
    pub fn from_socket(
        identity: Identity,
        socket: UdpSocket,
        validator_set: BTreeMap<ReplicaId, VerifyingKey>,
        peer_addrs: BTreeMap<ReplicaId, SocketAddr>,
        config: NetConfig,
    ) -> Result<ValidatorEndpoint, Error> {
        config.validate()?;
        let mut members = BTreeMap::new();
        for (&id, key) in &validator_set {
            if let Some(other) = members.insert(key.to_bytes(), id) {
                return Err(Error::DuplicateKey(other, id));
            }
        }
        let me = *members
            .get(&identity.verifying_key().to_bytes())
            .ok_or(Error::NotInValidatorSet)?;
        let members: Members = Arc::new(std::sync::RwLock::new(members));

        let server_tls = tls::server_config(&identity, members.clone())?;
        let server_quic =
            QuicServerConfig::try_from(server_tls).map_err(|e| Error::Tls(e.to_string()))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_quic));
        server_config.transport_config(Arc::new(transport_config(&config, true)));
        let runtime = quinn::default_runtime()
            .ok_or_else(|| Error::Bind(std::io::Error::other("no async runtime")))?;
        let endpoint = Endpoint::new(
            identity.endpoint_config(),
            Some(server_config),
            socket,
            runtime,
        )
        .map_err(Error::Bind)?;

        let (inbox_tx, inbox_rx) = mpsc::channel(config.inbound_queue.max(1));
        let (req_tx, req_rx) = mpsc::channel(config.request_queue.max(1));
        let ctx = Arc::new(AcceptCtx {
            members: members.clone(),
            config: config.clone(),
            inbox: inbox_tx.clone(),
            requests: req_tx,
            metrics: NetMetrics::default(),
        });
        let metrics = ctx.metrics.clone();
        let tasks = vec![tokio::spawn(accept_loop(endpoint.clone(), ctx))];
        let sender = PeerSender {
            inner: Arc::new(SenderInner {
                me,
                max_frame_size: config.max_frame_size,
                queues: std::sync::RwLock::new(BTreeMap::new()),
                local: inbox_tx,
            }),
        };
        let ep = ValidatorEndpoint {
            me,
            endpoint,
            sender,
            inbox: Mutex::new(inbox_rx),
            requests: Mutex::new(req_rx),
            tasks,
            identity,
            config,
            members,
            links: std::sync::Mutex::new(BTreeMap::new()),
            metrics,
        };
        ep.start_links(&validator_set, &peer_addrs)?;
        Ok(ep)
    }

    /// Replaces the validator set (a governance change of the validator-set epoch): from now on
    /// connections are accepted from the members of `validator_set` only, and messages can be
    /// sent to every other member with an address in `peer_addrs`. Links to members that stay
    /// with the same key and address are kept (with their queued messages); links to members
    /// that left are closed; new members are dialed when first sent to. Must be called within
    /// a Tokio runtime. Our own key need not be in the new set (a validator removed by
    /// governance keeps serving clients).
    pub fn set_validators(
        &self,
        validator_set: BTreeMap<ReplicaId, VerifyingKey>,
        peer_addrs: BTreeMap<ReplicaId, SocketAddr>,
    ) -> Result<(), Error> {
        let mut keys = BTreeMap::new();
        for (&id, key) in &validator_set {
            if let Some(other) = keys.insert(key.to_bytes(), id) {
                return Err(Error::DuplicateKey(other, id));
            }
        }
        *self.members.write().map_err(|_| Error::Closed)? = keys;
        self.start_links(&validator_set, &peer_addrs)
    }

    /// The validator set connections are accepted from (replica id → key).
    pub fn validators(&self) -> BTreeMap<ReplicaId, VerifyingKey> {
        self.members
            .read()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, id)| VerifyingKey::from_bytes(k).ok().map(|k| (*id, k)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where each peer with a link is dialed.
    pub fn peer_addrs(&self) -> BTreeMap<ReplicaId, SocketAddr> {
        self.links
            .lock()
            .map(|l| l.iter().map(|(id, link)| (*id, link.addr)).collect())
            .unwrap_or_default()
    }

    /// Starts a link to every member but us with an address, unless one with the same key and
    /// address runs; stops the links to everyone else.
    fn start_links(
        &self,
        validator_set: &BTreeMap<ReplicaId, VerifyingKey>,
        peer_addrs: &BTreeMap<ReplicaId, SocketAddr>,
    ) -> Result<(), Error> {
        let mut links = self.links.lock().map_err(|_| Error::Closed)?;
        let mut queues = self
            .sender
            .inner
            .queues
            .write()
            .map_err(|_| Error::Closed)?;
        let wanted: BTreeMap<ReplicaId, (&VerifyingKey, SocketAddr)> = validator_set
            .iter()
            .filter(|(id, _)| **id != self.me)
            .filter_map(|(id, key)| peer_addrs.get(id).map(|a| (*id, (key, *a))))
            .collect();
        links.retain(|id, link| {
            let keep = wanted
                .get(id)
                .is_some_and(|(key, addr)| key.to_bytes() == link.key && *addr == link.addr);
            if !keep {
                link.task.abort();
                queues.remove(id);
            }
            keep
        });
        let dial_transport = Arc::new(transport_config(&self.config, false));
        for (id, (key, addr)) in wanted {
            if links.contains_key(&id) {
                continue;
            }
            let tls = tls::client_config(key, Some(&self.identity))?;
            let quic = QuicClientConfig::try_from(tls).map_err(|e| Error::Tls(e.to_string()))?;
            let mut client_config = quinn::ClientConfig::new(Arc::new(quic));
            client_config.transport_config(dial_transport.clone());
            let (tx, rx) = mpsc::channel(self.config.send_queue.max(1));
            queues.insert(id, tx);
            let link = Link {
                endpoint: self.endpoint.clone(),
                to: id,
                addr,
                client_config,
                config: self.config.clone(),
            };
            links.insert(
                id,
                LinkHandle {
                    key: key.to_bytes(),
                    addr,
                    task: tokio::spawn(link.run(rx)),
                },
            );
        }
        Ok(())
    }

    /// Our replica id.
    pub fn id(&self) -> ReplicaId {
        self.me
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.endpoint.local_addr().map_err(Error::Bind)
    }

    /// A cloneable handle for sending from other tasks.
    pub fn sender(&self) -> PeerSender {
        self.sender.clone()
    }

    /// Queues `message` for replica `to`; see [`PeerSender::send`].
    pub fn send(&self, to: ReplicaId, message: Vec<u8>) -> Result<(), Error> {
        self.sender.send(to, message)
    }

    /// The next message from a validator, with the sender's authenticated replica id. `None`
    /// once the endpoint is shut down.
    pub async fn recv(&self) -> Option<(ReplicaId, Vec<u8>)> {
        self.inbox.lock().await.recv().await
    }

    /// A validator message that has already arrived, if any: lets a host handle every waiting
    /// message in one turn (and persist what they change once).
    pub fn try_recv(&self) -> Option<(ReplicaId, Vec<u8>)> {
        self.inbox.try_lock().ok()?.try_recv().ok()
    }

    /// The next client request. `None` once the endpoint is shut down.
    pub async fn next_request(&self) -> Option<ClientRequest> {
        self.requests.lock().await.recv().await
    }

    /// A client request that has already arrived, if any: lets a host take every waiting
    /// request at once and hand them on together.
    pub fn try_next_request(&self) -> Option<ClientRequest> {
        self.requests.try_lock().ok()?.try_recv().ok()
    }

    /// The transport's metrics (shared handles: they keep counting).
    pub fn metrics(&self) -> NetMetrics {
        self.metrics.clone()
    }

    /// Closes every connection, waits (briefly) for the peers to be told, and releases the
    /// socket.
    pub async fn shutdown(self) {
        self.endpoint
            .close(VarInt::from_u32(codes::SHUTDOWN), b"shutdown");
        self.abort_tasks();
        let _ = timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

impl ValidatorEndpoint {
    fn abort_tasks(&self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Ok(links) = self.links.lock() {
            for link in links.values() {
                link.task.abort();
            }
        }
    }
}

impl Drop for ValidatorEndpoint {
    fn drop(&mut self) {
        self.endpoint
            .close(VarInt::from_u32(codes::SHUTDOWN), b"shutdown");
        self.abort_tasks();
    }
}

/// The sending side of one validator link: owns the connection to one peer.
struct Link {
    endpoint: Endpoint,
    to: ReplicaId,
    addr: SocketAddr,
    client_config: quinn::ClientConfig,
    config: NetConfig,
}

impl Link {
    async fn run(self, mut queue: mpsc::Receiver<Vec<u8>>) {
        let mut conn: Option<Connection> = None;
        let mut backoff = self.config.reconnect_initial;
        while let Some(message) = queue.recv().await {
            // Each message is tried on at most two established connections, then dropped;
            // dialing itself is retried with backoff for as long as it takes.
            let mut failures = 0;
            while failures < 2 {
                let c = match conn.as_ref().filter(|c| c.close_reason().is_none()) {
                    Some(c) => c.clone(),
                    None => match self.dial().await {
                        Ok(c) => {
                            backoff = self.config.reconnect_initial;
                            conn = Some(c.clone());
                            c
                        }
                        Err(e) => {
                            debug!(to = self.to, error = %e, ?backoff, "dial failed");
                            conn = None;
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(self.config.reconnect_max);
                            continue;
                        }
                    },
                };
                match timeout(self.config.stream_timeout, self.write(&c, &message)).await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => debug!(to = self.to, error = %e, "send failed"),
                    Err(_) => {
                        debug!(to = self.to, "send timed out");
                        c.close(VarInt::from_u32(codes::TIMEOUT), b"send timed out");
                    }
                }
                failures += 1;
                conn = None;
            }
            if failures == 2 {
                warn!(to = self.to, "message dropped after two failed connections");
            }
        }
    }

    async fn dial(&self) -> Result<Connection, Error> {
        let connecting =
            self.endpoint
                .connect_with(self.client_config.clone(), self.addr, SERVER_NAME)?;
        match timeout(self.config.stream_timeout, connecting).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Error::Timeout),
        }
    }

    async fn write(&self, conn: &Connection, message: &[u8]) -> Result<(), Error> {
        let mut stream = conn.open_uni().await?;
        write_frame(&mut stream, message, self.config.max_frame_size).await?;
        stream.finish()?;
        Ok(())
    }
}

/// The connection budgets of an endpoint: handshakes in progress, then, once a connection says
/// what it is, client connections and validator connections apart; and per source address,
/// handshakes and client connections.
struct Budgets {
    handshakes: Arc<Semaphore>,
    clients: Arc<Semaphore>,
    validators: Arc<Semaphore>,
    handshakes_by_source: Arc<PerSource>,
    clients_by_source: Arc<PerSource>,
}

/// Slots in use per source IP address, each at most `limit`.
struct PerSource {
    limit: usize,
    used: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One slot of a [`PerSource`] budget, given back when dropped.
struct SourceSlot {
    budget: Arc<PerSource>,
    ip: std::net::IpAddr,
}

impl PerSource {
    fn new(limit: usize) -> Arc<PerSource> {
        Arc::new(PerSource {
            limit,
            used: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// A slot for `ip`, unless it holds `limit` already.
    fn take(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<SourceSlot> {
        let mut used = self.used.lock().ok()?;
        let n = used.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            budget: self.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Ok(mut used) = self.budget.used.lock() {
            if let Some(n) = used.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    used.remove(&self.ip);
                }
            }
        }
    }
}

/// Validator connections served at once, per member of the largest set a network may have
/// (a peer's dial and its redial may overlap).
const VALIDATOR_CONNECTIONS: usize = 4 * 64;

async fn accept_loop(endpoint: Endpoint, ctx: Arc<AcceptCtx>) {
    let budgets = Arc::new(Budgets {
        handshakes: Arc::new(Semaphore::new(ctx.config.max_handshakes)),
        clients: Arc::new(Semaphore::new(ctx.config.max_connections)),
        validators: Arc::new(Semaphore::new(VALIDATOR_CONNECTIONS)),
        handshakes_by_source: PerSource::new(ctx.config.max_handshakes_per_source),
        clients_by_source: PerSource::new(ctx.config.max_connections_per_source),
    });
    while let Some(incoming) = endpoint.accept().await {
        // Under pressure (half the handshake budget in use), an address that has not shown it
        // receives our packets is asked to (QUIC Retry): it costs us no state, an honest
        // dialer one round trip, and a flood from forged or unreachable addresses everything.
        let pressure = budgets.handshakes.available_permits() <= ctx.config.max_handshakes / 2;
        if pressure && !incoming.remote_address_validated() && incoming.may_retry() {
            if let Err(e) = incoming.retry() {
                e.into_incoming().refuse();
            }
            continue;
        }
        let Some(source) = budgets
            .handshakes_by_source
            .take(incoming.remote_address().ip())
        else {
            debug!(remote = %incoming.remote_address(), "handshakes from this address at the limit; refusing");
            ctx.metrics.refuse(Refusal::HandshakesPerSource);
            incoming.refuse();
            continue;
        };
        match budgets.handshakes.clone().try_acquire_owned() {
            Ok(handshake) => {
                let (ctx, budgets) = (ctx.clone(), budgets.clone());
                tokio::spawn(serve_connection(
                    incoming,
                    ctx,
                    budgets,
                    (handshake, source),
                ));
            }
            Err(_) => {
                debug!(remote = %incoming.remote_address(), "handshake limit reached; refusing");
                ctx.metrics.refuse(Refusal::Handshakes);
                incoming.refuse();
            }
        }
    }
}

async fn serve_connection(
    incoming: quinn::Incoming,
    ctx: Arc<AcceptCtx>,
    budgets: Arc<Budgets>,
    handshake: (tokio::sync::OwnedSemaphorePermit, SourceSlot),
) {
    let handshaken = timeout(ctx.config.handshake_timeout, incoming).await;
    drop(handshake);
    let conn = match handshaken {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            debug!(error = %e, "incoming handshake failed");
            return;
        }
        Err(_) => {
            debug!("incoming handshake timed out");
            return;
        }
    };
    let alpn = conn
        .handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol);
    match alpn.as_deref() {
        Some(p) if p == crate::ALPN_PEER => match peer_id(&conn, &ctx.members) {
            Some((id, key)) => match budgets.validators.clone().try_acquire_owned() {
                Ok(_slot) => {
                    let _connected = Connected::new(&ctx.metrics.validators_connected);
                    serve_peer(conn, id, key, ctx).await
                }
                Err(_) => {
                    ctx.metrics.refuse(Refusal::Validators);
                    conn.close(VarInt::from_u32(codes::BUSY), b"too many connections")
                }
            },
            None => {
                ctx.metrics.refuse(Refusal::NotAValidator);
                conn.close(
                    VarInt::from_u32(codes::NOT_A_VALIDATOR),
                    b"validator certificate required",
                )
            }
        },
        Some(p) if p == crate::ALPN_CLIENT => {
            let from_source = budgets.clients_by_source.take(conn.remote_address().ip());
            match (budgets.clients.clone().try_acquire_owned(), from_source) {
                (Ok(_slot), Some(_source)) => {
                    let _connected = Connected::new(&ctx.metrics.clients_connected);
                    serve_client(conn, ctx).await
                }
                (Err(_), _) => {
                    debug!(remote = %conn.remote_address(), "client limit reached; closing");
                    ctx.metrics.refuse(Refusal::Clients);
                    conn.close(VarInt::from_u32(codes::BUSY), b"too many clients")
                }
                (_, None) => {
                    debug!(remote = %conn.remote_address(), "client limit of this address reached; closing");
                    ctx.metrics.refuse(Refusal::ClientsPerSource);
                    conn.close(
                        VarInt::from_u32(codes::BUSY),
                        b"too many clients from this address",
                    )
                }
            }
        }
        _ => {
            ctx.metrics.refuse(Refusal::UnknownProtocol);
            conn.close(
                VarInt::from_u32(codes::UNKNOWN_PROTOCOL),
                b"unknown protocol",
            )
        }
    }
}

/// The replica id and key of a connection's verified client certificate.
fn peer_id(conn: &Connection, members: &Members) -> Option<(ReplicaId, [u8; 32])> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    let key = tls::ed25519_key_of(certs.first()?).ok()?;
    members.read().ok()?.get(&key).map(|id| (*id, key))
}

fn stop_code(e: &FrameError) -> u32 {
    match e {
        FrameError::TooLarge { .. } => codes::FRAME_TOO_LARGE,
        FrameError::Truncated | FrameError::Io(_) => codes::MALFORMED_FRAME,
    }
}

async fn serve_peer(conn: Connection, from: ReplicaId, key: [u8; 32], ctx: Arc<AcceptCtx>) {
    debug!(from, "validator connected");
    // The number of streams alive at once, hence of these tasks, is bounded by
    // `max_concurrent_streams`.
    while let Ok(mut stream) = conn.accept_uni().await {
        // A validator the set no longer holds (under this id) is cut off.
        let member = ctx.members.read().is_ok_and(|m| m.get(&key) == Some(&from));
        if !member {
            debug!(from, "no longer a validator; closing its connection");
            conn.close(
                VarInt::from_u32(codes::NOT_A_VALIDATOR),
                b"no longer a validator",
            );
            return;
        }
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let max = ctx.config.max_frame_size;
            match timeout(ctx.config.stream_timeout, read_frame(&mut stream, max)).await {
                Ok(Ok(Some(message))) => {
                    // Waits when the application is behind: backpressure.
                    let _ = ctx.inbox.send((from, message)).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    debug!(from, error = %e, "bad frame; stopping stream");
                    ctx.metrics.refuse(Refusal::BadPeerFrame);
                    let _ = stream.stop(VarInt::from_u32(stop_code(&e)));
                }
                Err(_) => {
                    let _ = stream.stop(VarInt::from_u32(codes::TIMEOUT));
                }
            }
        });
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl RateLimit {
    fn per_second(rate: u32) -> RateLimit {
        let rate = f64::from(rate);
        RateLimit {
            rate,
            burst: 2.0 * rate,
            tokens: 2.0 * rate,
            last: tokio::time::Instant::now(),
        }
    }

    /// Takes a token if one is there.
    fn take(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn serve_client(conn: Connection, ctx: Arc<AcceptCtx>) {
    let from = conn.remote_address();
    let mut rate = RateLimit::per_second(ctx.config.client_requests_per_second);
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        if !rate.take() {
            debug!(%from, "client request rate exceeded; refusing the stream");
            ctx.metrics.refuse(Refusal::RateLimited);
            let code = VarInt::from_u32(codes::RATE_LIMITED);
            let _ = recv.stop(code);
            let _ = send.reset(code);
            continue;
        }
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let max = ctx.config.max_frame_size;
            let limit = ctx.config.stream_timeout;
            let read = read_frame(&mut recv, ctx.config.max_request_size);
            let body = match timeout(limit, read).await {
                Ok(Ok(Some(body))) => body,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    debug!(%from, error = %e, "bad request frame; closing stream");
                    ctx.metrics.refuse(Refusal::BadRequestFrame);
                    let code = VarInt::from_u32(stop_code(&e));
                    let _ = recv.stop(code);
                    let _ = send.reset(code);
                    return;
                }
                Err(_) => {
                    let code = VarInt::from_u32(codes::TIMEOUT);
                    let _ = recv.stop(code);
                    let _ = send.reset(code);
                    return;
                }
            };
            let (reply, answer) = oneshot::channel();
            let request = ClientRequest { body, from, reply };
            if ctx.requests.send(request).await.is_err() {
                let _ = send.reset(VarInt::from_u32(codes::SHUTDOWN));
                return;
            }
            let response = match timeout(ctx.config.answer_timeout, answer).await {
                Ok(Ok(response)) => response,
                Ok(Err(_)) => {
                    let _ = send.reset(VarInt::from_u32(codes::NO_REPLY));
                    return;
                }
                Err(_) => {
                    let _ = send.reset(VarInt::from_u32(codes::TIMEOUT));
                    return;
                }
            };
            let written = timeout(limit, async {
                write_frame(&mut send, &response[..], max).await?;
                send.finish().map_err(|e| FrameError::Io(e.into()))
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                let _ = send.reset(VarInt::from_u32(codes::MALFORMED_FRAME));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn test_config() -> NetConfig {
        NetConfig {
            stream_timeout: Duration::from_secs(2),
            ..NetConfig::default()
        }
    }

    fn two_validators() -> (Vec<SigningKey>, ValidatorEndpoint) {
        let keys = vec![
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        ];
        let set = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as ReplicaId, k.verifying_key()))
            .collect();
        let ep = ValidatorEndpoint::bind(
            Identity::new(&keys[0]).unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            set,
            BTreeMap::new(),
            test_config(),
        )
        .unwrap();
        (keys, ep)
    }

    /// Dials `server` expecting `server_key`, presenting `identity` (or no certificate) and
    /// offering the validator ALPN.
    async fn raw_dial(
        server: SocketAddr,
        server_key: &VerifyingKey,
        identity: Option<&Identity>,
    ) -> (Endpoint, Result<Connection, quinn::ConnectionError>) {
        let endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut tls = tls::client_config(server_key, identity).unwrap();
        tls.alpn_protocols = vec![crate::ALPN_PEER.to_vec()];
        let quic = QuicClientConfig::try_from(tls).unwrap();
        let config = quinn::ClientConfig::new(Arc::new(quic));
        let conn = endpoint
            .connect_with(config, server, SERVER_NAME)
            .unwrap()
            .await;
        (endpoint, conn)
    }

    /// The error that ended the connection, whether the handshake itself failed on our side or
    /// the server closed it right after.
    async fn refusal(conn: Result<Connection, quinn::ConnectionError>) -> quinn::ConnectionError {
        match conn {
            Err(e) => e,
            Ok(c) => {
                // Provoke traffic so a refusal is noticed promptly.
                if let Ok(mut s) = c.open_uni().await {
                    let _ = write_frame(&mut s, b"hello", 64).await;
                    let _ = s.finish();
                }
                timeout(Duration::from_secs(3), c.closed())
                    .await
                    .expect("connection was not refused")
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_client_certificate_fails_the_handshake() {
        let (keys, ep) = two_validators();
        let addr = ep.local_addr().unwrap();
        let outsider = Identity::new(&SigningKey::from_bytes(&[42; 32])).unwrap();
        let (_client, conn) = raw_dial(addr, &keys[0].verifying_key(), Some(&outsider)).await;
        match refusal(conn).await {
            // A TLS alert travels as a QUIC CRYPTO_ERROR (0x100 + alert), not an application
            // close: the refusal happened in the handshake.
            quinn::ConnectionError::ConnectionClosed(close) => {
                let code = u64::from(close.error_code);
                assert!((0x100..0x200).contains(&code), "{close:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(timeout(Duration::from_millis(300), ep.recv())
            .await
            .is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn validator_protocol_without_certificate_is_closed() {
        let (keys, ep) = two_validators();
        let addr = ep.local_addr().unwrap();
        let (_client, conn) = raw_dial(addr, &keys[0].verifying_key(), None).await;
        match refusal(conn).await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, VarInt::from_u32(codes::NOT_A_VALIDATOR));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(timeout(Duration::from_millis(300), ep.recv())
            .await
            .is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_frames_on_a_validator_link_stop_only_their_stream() {
        let (keys, ep) = two_validators();
        let addr = ep.local_addr().unwrap();
        let peer = Identity::new(&keys[1]).unwrap();
        let (_client, conn) = raw_dial(addr, &keys[0].verifying_key(), Some(&peer)).await;
        let conn = conn.unwrap();

        let mut s = conn.open_uni().await.unwrap();
        s.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).await.unwrap();
        let stopped = timeout(Duration::from_secs(3), s.stopped()).await.unwrap();
        assert_eq!(
            stopped.unwrap(),
            Some(VarInt::from_u32(codes::FRAME_TOO_LARGE))
        );

        let mut s = conn.open_uni().await.unwrap();
        s.write_all(&[9, 0, 0, 0, 1]).await.unwrap();
        s.finish().unwrap();

        let mut s = conn.open_uni().await.unwrap();
        write_frame(&mut s, b"valid", 64).await.unwrap();
        s.finish().unwrap();
        let (from, msg) = timeout(Duration::from_secs(3), ep.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((from, msg.as_slice()), (1, &b"valid"[..]));
        assert!(conn.close_reason().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_send_queue_drops() {
        let keys = [
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        ];
        let set = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as ReplicaId, k.verifying_key()))
            .collect();
        // Replica 1's address accepts nothing, so the link never drains its queue.
        let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ep = ValidatorEndpoint::bind(
            Identity::new(&keys[0]).unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            set,
            BTreeMap::from([(1, black_hole.local_addr().unwrap())]),
            NetConfig {
                send_queue: 4,
                ..test_config()
            },
        )
        .unwrap();
        let results: Vec<_> = (0..10u8).map(|i| ep.send(1, vec![i])).collect();
        assert!(results.iter().filter(|r| r.is_ok()).count() <= 5);
        assert!(matches!(results.last(), Some(Err(Error::QueueFull(1)))));
    }
}
